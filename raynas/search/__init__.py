"""The search loop: the policy contract, the driver, its history and callbacks."""

from raynas.search.callbacks import Callback, ProgressBar
from raynas.search.history import History, incumbent_curve
from raynas.search.policy import Policy
from raynas.search.search import Budget, Search, SearchResult

__all__ = [
    "Budget",
    "Callback",
    "History",
    "Policy",
    "ProgressBar",
    "Search",
    "SearchResult",
    "incumbent_curve",
]
