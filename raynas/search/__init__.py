"""The search loop: the policy contract, the driver, its history and callbacks."""

from raynas.search.backends import Backend, InProcess, RayTasks, Simulated
from raynas.search.callbacks import Callback, ProgressBar
from raynas.search.history import History, incumbent_curve
from raynas.search.policy import Policy
from raynas.search.search import Budget, Search, SearchResult
from raynas.search.state import SearchState

__all__ = [
    "Backend",
    "Budget",
    "Callback",
    "History",
    "InProcess",
    "Policy",
    "ProgressBar",
    "RayTasks",
    "Search",
    "SearchResult",
    "SearchState",
    "Simulated",
    "incumbent_curve",
]
