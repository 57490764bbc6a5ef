"""Evaluators score architectures: table lookups and plain functions now; training,
supernets and proxies in later releases."""

from raynas.evaluators.base import Evaluator
from raynas.evaluators.function import FunctionEvaluator
from raynas.evaluators.tabular import TabularEvaluator

__all__ = ["Evaluator", "FunctionEvaluator", "TabularEvaluator"]
