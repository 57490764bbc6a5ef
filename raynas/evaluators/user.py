"""A user's own training function as the evaluator (``evaluator: {kind: function,
entrypoint: mypkg.train:train_one}``), for models raynas should not train itself.

raynas calls ``train_one(arch, context)`` once per architecture: ``arch`` is the
space's choices as a dict (a :class:`~raynas.spaces.CustomSpace` gives the values as
typed in its YAML; other spaces their choice names), ``context`` a
:class:`TrialContext` with the trial's ``device``, ``seed``, ``max_epochs``, the
``checkpoint`` to resume from (``None`` on a fresh start) and ``report(metrics,
checkpoint=None)``. Call ``report`` once per epoch (or per evaluation round): in a Tune
trial it is Tune's report, its checkpoint a Tune checkpoint (ASHA can stop the trial
after any report; a retried or resumed trial gets the last checkpoint back); in
process it records the metrics. A checkpoint is any tree of tensors, numbers, strings,
lists and dicts (it is saved with ``torch.save`` and read back with
``weights_only=True``). A function that never reports may return its metrics.

The same function runs in process (``Search``) and as a Tune trial, with the same
seed, so the same architecture gets the same result either way when the function is
deterministic for a seed. The search metric must be among what the function reports:
the first report without it stops that evaluation with an error naming both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from raynas.errors import ArgumentError
from raynas.types import Arch, Result


class MetricMismatchError(ArgumentError):
    """The user's function reported metrics without the search metric."""


@dataclass
class TrialContext:
    """What ``train_one(arch, context)`` gets.

    Attributes:
        device: ``"cuda"`` when the trial has a GPU, else ``"cpu"``.
        seed: This architecture's seed (the search seed mixed with the architecture).
        max_epochs: The config's ``evaluator.epochs``: how many reports make a full
            evaluation (ASHA's maximum fidelity).
        checkpoint: The last checkpoint reported by this trial before it was stopped,
            retried or resumed; ``None`` on a fresh start.
        epoch: Reports made so far (a resumed trial starts from its checkpoint's).
    """

    device: str
    seed: int
    max_epochs: int
    checkpoint: Any = None
    epoch: int = 0
    _sink: Callable[[dict[str, float], Any], None] | None = field(default=None, repr=False)

    def report(self, metrics: Mapping[str, float], checkpoint: Any = None) -> None:
        """Report one epoch's ``metrics`` (numbers), with an optional ``checkpoint``."""
        self.epoch += 1
        clean = {"epoch": float(self.epoch)}
        for key, value in dict(metrics).items():
            try:
                clean[str(key)] = float(value)
            except (TypeError, ValueError):
                raise ArgumentError(f"report: metric {key!r} is not a number ({value!r})") from None
        if self._sink is not None:
            self._sink(clean, checkpoint)


class UserFunctionEvaluator:
    """Evaluate architectures with the user's ``train_one(arch, context)``.

    Args:
        entrypoint: ``module:function`` (or the function itself, in Python).
        space: The search space.
        epochs: Reports a full evaluation makes (``context.max_epochs``).
        search_metric: The metric the search optimises; must be reported.
        report_metric: The metric reported for the incumbent (a test metric, if the
            function reports one; else whatever it reports).
        seed: Mixed with each architecture into ``context.seed``.
        device: ``auto`` (CUDA when visible), ``cpu`` or ``cuda``.

    Example:
        >>> from raynas.spaces import CustomSpace
        >>> space = CustomSpace("toy", {"width": [1, 2, 3]})
        >>> def train_one(arch, context):
        ...     for epoch in range(context.max_epochs):
        ...         context.report({"valid_acc": 10.0 * arch["width"] + epoch})
        >>> ev = UserFunctionEvaluator(train_one, space, epochs=2)
        >>> ev.evaluate([(1,)])[0].metrics["valid_acc"]    # width 2, last of 2 epochs
        21.0
    """

    def __init__(self, entrypoint: str | Callable[..., Any], space, *, epochs: int = 4,
                 search_metric: str = "valid_acc", report_metric: str = "test_acc",
                 seed: int = 0, device: str = "auto") -> None:
        if isinstance(entrypoint, str):
            from raynas.data.files import load_entrypoint

            load_entrypoint(entrypoint, "evaluator.entrypoint")  # fail now, not in a trial
        elif not callable(entrypoint):
            raise ArgumentError(f"entrypoint must be module:function or a callable, got "
                                f"{entrypoint!r}")
        if epochs < 1:
            raise ArgumentError(f"epochs must be >= 1, got {epochs}")
        if device not in ("auto", "cpu", "cuda"):
            raise ArgumentError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
        self.entrypoint, self.space, self.epochs = entrypoint, space, epochs
        self.search_metric, self.report_metric = search_metric, report_metric
        self.seed, self.device_name = seed, device
        self.num_threads: int | None = None
        self.data = None  # no dataset of raynas's: the function owns its data

    def _function(self) -> Callable[..., Any]:
        if isinstance(self.entrypoint, str):
            from raynas.data.files import load_entrypoint

            return load_entrypoint(self.entrypoint, "evaluator.entrypoint")
        return self.entrypoint

    def fit(self, arch: Arch, epochs: int | None = None, on_epoch=None,
            state: dict[str, Any] | None = None, hyper: Mapping[str, float] | None = None,
            scheduled: bool = False) -> Result:
        """Run the function on ``arch``; ``on_epoch(metrics, get_state)`` gets every
        report (as :meth:`TrainingEvaluator.fit`'s hook does), ``state`` is a resumed
        trial's last checkpoint state."""
        import torch

        from raynas.evaluators.training import arch_seed

        if hyper:
            raise ArgumentError(f"a function evaluator cannot schedule {sorted(hyper)}")
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        device = ("cuda" if torch.cuda.is_available() else "cpu") if self.device_name == "auto" \
            else self.device_name
        last: dict[str, float] = dict(state["metrics"]) if state else {}

        def sink(metrics: dict[str, float], checkpoint: Any) -> None:
            if self.search_metric not in metrics:
                raise MetricMismatchError(
                    f"{self._name()} reported {sorted(k for k in metrics if k != 'epoch')}"
                    f" but not the search metric {self.search_metric!r} (evaluator."
                    "search_metric)")
            last.clear()
            last.update(metrics)
            if on_epoch is not None:
                snapshot = {"user": checkpoint, "epoch": int(metrics["epoch"]),
                            "metrics": dict(metrics)}
                on_epoch(dict(metrics), lambda: snapshot)

        context = TrialContext(device=device, seed=arch_seed(self.seed, arch),
                               max_epochs=epochs or self.epochs,
                               checkpoint=state.get("user") if state else None,
                               epoch=int(state["epoch"]) if state else 0, _sink=sink)
        returned = self._function()(self.space.arch_dict(arch), context)
        if isinstance(returned, Mapping) and context.epoch == 0:
            context.report(returned)
        if not last:
            raise MetricMismatchError(f"{self._name()} reported nothing and returned "
                                      f"{type(returned).__name__}, not metrics")
        return Result(dict(last), cost=0.0, fidelity=float(last.get("epoch", 1)))

    def evaluate(self, archs: Sequence[Arch]) -> list[Result]:
        """Run the function on each architecture; an exception of the function is a
        failed result; a function that does not report the search metric stops the
        search with :class:`MetricMismatchError`."""
        results = []
        for arch in archs:
            try:
                results.append(self.fit(arch))
            except MetricMismatchError:
                raise
            except Exception as exc:  # noqa: BLE001 - a user function may raise anything
                results.append(Result.failed(f"{type(exc).__name__}: {exc}"))
        return results

    def _name(self) -> str:
        if isinstance(self.entrypoint, str):
            return self.entrypoint
        return f"{self.entrypoint.__module__}:{self.entrypoint.__qualname__}"

    def describe(self) -> dict[str, Any]:
        return {"evaluator": "function", "entrypoint": self._name(), "epochs": self.epochs,
                "search_metric": self.search_metric, "report_metric": self.report_metric,
                "seed": self.seed}
