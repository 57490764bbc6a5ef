"""Experiment tracking. MLflow lives in one module and is imported only when used."""

from raynas.tracking.mlflow import (
    MlflowLogger,
    MlflowTracker,
    MlflowTuneCallback,
    default_uri,
    redact,
    replay_pending,
)

__all__ = ["MlflowLogger", "MlflowTracker", "MlflowTuneCallback", "default_uri", "redact",
           "replay_pending"]
