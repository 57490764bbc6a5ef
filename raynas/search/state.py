"""The state of one search, shared by every engine and backend.

A :class:`SearchState` holds what a search knows: the evaluated-architecture cache,
the live :class:`~raynas.search.history.History`, the incumbent, the queries made, the
cost spent, the clock (real or simulated seconds) and the architectures that are being
evaluated right now (*pending*). The in-process loop (:class:`~raynas.search.Search`,
over any backend of :mod:`raynas.search.backends`) and the Tune adapter
(:class:`~raynas.tune.PolicySearcher`) record through it, so the cache, repeat handling
and incumbent rules exist once:

* a *query* is a real evaluation; a repeat of an evaluated architecture is answered
  from the cache for free and recorded with ``cached`` set;
* the incumbent is the best architecture by the search metric among results that are
  OK (a failed or early-stopped result never becomes the incumbent); it changes only
  on a strict improvement;
* an architecture is pending from :meth:`submit` to :meth:`record`;
* a policy that keeps proposing only evaluated architectures while nothing is pending
  has *stalled*: :meth:`note_ask` counts such asks in a row and says when there were
  :data:`STALL_ASKS` of them (``ask`` returning nothing ends a search at once).

Example:
    >>> from raynas.spaces import SearchSpace, Decision
    >>> from raynas.types import Objective, Result
    >>> state = SearchState(SearchSpace("toy", [Decision("a", ("x", "y"))]), Objective())
    >>> state.submit((1,))
    >>> row = state.record((1,), Result({"valid_acc": 90.0}, cost=2.0), time=2.0)
    >>> state.queries, state.incumbent, state.is_pending((1,))
    (1, ('|a=y|', 90.0), False)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from raynas.search.history import RESERVED, History
from raynas.types import Arch, Result, Status

if TYPE_CHECKING:
    from raynas.spaces import SearchSpace
    from raynas.types import Objective

STALL_ASKS = 1000
"""Asks in a row that proposed nothing new, with nothing pending, after which a search
ends as ``"stalled"``. Repeats are answered from the cache and told to the policy (a
learning policy learns from them, so they stay part of the contract); every policy
of raynas draws with exploration and leaves such a streak long before this, so only
a converged or broken third-party policy meets it."""


class SearchState:
    """Cache, history, incumbent, queries, cost, clock and pending architectures.

    Args:
        space: The search space (architecture strings come from it).
        objective: The search metric and its direction (the incumbent's).
    """

    def __init__(self, space: SearchSpace, objective: Objective) -> None:
        self.space, self.objective = space, objective
        self.history = History()
        self.cache: dict[Arch, tuple[Result, int]] = {}  # arch -> (result, its query)
        self.pending: dict[Arch, tuple[float, int]] = {}  # arch -> (clock, step) at submission
        self.queries = 0
        self.cost = 0.0
        self.clock = 0.0
        self.step = 0
        self.repeat_streak = 0  # asks in a row that proposed nothing new
        self.incumbent: tuple[str, float] | None = None  # (arch string, search metric)
        self._incumbent_score = -math.inf

    # -------------------------------------------------------------- queries
    def is_known(self, arch: Arch) -> bool:
        """Whether ``arch`` was evaluated already (its result is cached)."""
        return arch in self.cache

    def is_pending(self, arch: Arch) -> bool:
        return arch in self.pending

    def submit(self, arch: Arch, at: float | None = None, step: int | None = None) -> None:
        """``arch`` starts being evaluated (at clock ``at`` and step ``step``, default now);
        its row will carry that step."""
        self.pending[arch] = (self.clock if at is None else at,
                              self.step if step is None else step)

    def record(self, arch: Arch, result: Result, *, elapsed: float = 0.0,
               time: float | None = None) -> dict[str, Any]:
        """A real evaluation of ``arch`` finished (at clock ``time``); return its row."""
        _, step = self.pending.pop(arch, (None, self.step))
        if time is not None:
            self.clock = max(self.clock, float(time))
        self.queries += 1
        self.cost += result.cost
        self.cache[arch] = (result, self.queries)
        text = self.space.arch_str(arch)
        row = self.history.append(step=step, query=self.queries, arch=text, result=result,
                                  cached=False, elapsed=elapsed, time=self.clock)
        score = self.objective.score(result)
        if result.status is Status.OK and score > self._incumbent_score:
            self._incumbent_score = score
            self.incumbent = (text, result.metrics[self.objective.metric])
        return row

    def record_repeat(self, arch: Arch, *, elapsed: float = 0.0) -> dict[str, Any]:
        """A repeat of an evaluated architecture, answered from the cache; its row."""
        result, query = self.cache[arch]
        return self.history.append(step=self.step, query=query, arch=self.space.arch_str(arch),
                                   result=result, cached=True, elapsed=elapsed, time=self.clock)

    def note_ask(self, new: int) -> None:
        """Count an ask that proposed ``new`` new architectures (see :attr:`stalled`)."""
        self.repeat_streak = 0 if new else self.repeat_streak + 1

    @property
    def stalled(self) -> bool:
        """:data:`STALL_ASKS` asks in a row proposed nothing new, and nothing is pending."""
        return self.repeat_streak >= STALL_ASKS and not self.pending

    def result_of(self, arch: Arch) -> Result:
        return self.cache[arch][0]

    def incumbent_metrics(self) -> dict[str, float]:
        """All metrics of the incumbent so far (empty before the first success)."""
        if self.incumbent is None:
            return {}
        return dict(self.cache[self.space.from_str(self.incumbent[0])][0].metrics)

    # --------------------------------------------------------- persistence
    def position(self) -> dict[str, Any]:
        """What a checkpoint needs beside the history (JSON-able)."""
        return {"num_rows": len(self.history), "queries": self.queries, "cost": self.cost,
                "clock": self.clock, "step": self.step, "incumbent": self.incumbent,
                "repeat_streak": self.repeat_streak,
                "pending": [[list(a), t, s] for a, (t, s) in self.pending.items()]}

    def restore(self, history: History, position: dict[str, Any]) -> None:
        """Rebuild the state from a saved history and :meth:`position`."""
        self.history = history
        self.queries, self.cost, self.step = position["queries"], position["cost"], position["step"]
        self.clock = float(position.get("clock", self.cost))
        self.repeat_streak = int(position.get("repeat_streak", 0))
        self.incumbent = tuple(position["incumbent"]) if position["incumbent"] else None
        self._incumbent_score = (self.objective.sign * self.incumbent[1]
                                 if self.incumbent is not None else -math.inf)
        self.pending = {tuple(a): (float(t), int(s)) for a, t, s in position.get("pending", [])}
        self.cache = {}
        for row in history.rows:
            if not row["cached"]:
                metrics = {k: v for k, v in row.items() if k not in RESERVED}
                result = Result(metrics, row["cost"], row["status"], row["error"],
                                fidelity=row.get("fidelity"))
                self.cache[self.space.from_str(row["arch"])] = (result, row["query"])


class StateView:
    """The search state as callbacks read it: what a :class:`~raynas.search.Search` and
    a Tune search (:class:`~raynas.tune.runner.TuneSearch`) expose over their
    ``state`` (a :class:`SearchState`)."""

    state: SearchState

    @property
    def history(self) -> History:
        return self.state.history

    @property
    def queries(self) -> int:
        return self.state.queries

    @property
    def cost(self) -> float:
        return self.state.cost

    @property
    def clock(self) -> float:
        return self.state.clock

    @property
    def step(self) -> int:
        return self.state.step

    @property
    def incumbent(self) -> tuple[str, float] | None:
        return self.state.incumbent

    def incumbent_metrics(self) -> dict[str, float]:
        """All metrics of the incumbent so far (empty before the first success)."""
        return self.state.incumbent_metrics()
