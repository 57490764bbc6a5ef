"""Evaluators score architectures: table lookups, real training, plain functions.

``TrainingEvaluator`` imports torch when used; importing this package does not."""

from raynas.evaluators.base import Evaluator
from raynas.evaluators.function import FunctionEvaluator
from raynas.evaluators.tabular import TabularEvaluator
from raynas.evaluators.training import TrainingEvaluator

__all__ = ["Evaluator", "FunctionEvaluator", "TabularEvaluator", "TrainingEvaluator"]
