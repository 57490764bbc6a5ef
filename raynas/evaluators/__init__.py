"""Evaluators score architectures: table lookups now; training, supernets and proxies later."""

from raynas.evaluators.base import Evaluator
from raynas.evaluators.tabular import TabularEvaluator

__all__ = ["Evaluator", "TabularEvaluator"]
