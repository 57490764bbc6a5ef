"""Experiment tracking. MLflow lives in one module and is imported only when used."""

from raynas.tracking.mlflow import MlflowTracker, default_uri, redact, replay_pending

__all__ = ["MlflowTracker", "default_uri", "redact", "replay_pending"]
