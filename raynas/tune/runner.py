"""Ray Tune as a backend of the one engine: the experiment and the policy as its searcher.

* :class:`PolicySearcher` — any raynas policy as a Ray Tune ``Searcher``, recording
  every trial through the shared :class:`~raynas.search.state.SearchState` as it
  finishes (the history grows live; ``Tuner.restore`` rebuilds it from the saved one);
* :func:`run_tune` — the Tune experiment of a real-training search: its checks, the
  trainable (:mod:`raynas.tune.trial`), resume and restore, returning the same
  :class:`~raynas.search.SearchResult` as every engine.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune.search import Searcher

from raynas.config import ResourcesConfig
from raynas.errors import ArgumentError, CheckpointError, SearchInterrupted, StartupError
from raynas.search.history import History
from raynas.search.search import HISTORY_FILE, Budget, SearchResult, _count
from raynas.search.state import SearchState, StateView
from raynas.tune.experiment import (
    IDENTITY_FILE,
    TUNER_FILE,
    check_experiment,
    read_identity,
    search_identity,
    write_identity,
)
from raynas.types import Arch, Result, Status

if TYPE_CHECKING:
    from raynas.evaluators import TrainingEvaluator
    from raynas.search.callbacks import Callback
    from raynas.search.policy import Policy
    from raynas.tune.trial import TrialTracking

logger = logging.getLogger(__name__)

EXPERIMENT = "tune"


# ------------------------------------------------------------- the policy as searcher
ARCH_KEY = "arch"
# Tuner.restore unpickles its own copy of the searcher from the experiment. By search id:
# the copy Tune drives (the last one to be restored, asked or told), for the runner to read
# after fit(); and the results folder the runner gives it (it may have moved).
_ACTIVE: dict[str, PolicySearcher] = {}
_OUT_DIRS: dict[str, str] = {}
# By search id: who hears each row the search state records (raynas callbacks, through
# run_tune); like _OUT_DIRS, never pickled with the searcher.
_LISTENERS: dict[str, Callable[[list[dict[str, Any]]], None]] = {}
# Fields Tune adds to every reported result; they are not the architecture's metrics.
TUNE_FIELDS = frozenset({
    "timestamp", "done", "training_iteration", "time_this_iter_s", "time_total_s", "pid",
    "time_since_restore", "iterations_since_restore", "timesteps_total", "episodes_total",
    "timesteps_since_restore", "warmup_time",
})


class PolicySearcher(Searcher):
    """Drive a raynas :class:`~raynas.search.Policy` from Ray Tune.

    Each Tune trial trains one architecture: ``suggest`` asks the policy for one
    architecture and returns ``{"arch": "<canonical string>"}``; when the trial
    ends, ``on_trial_complete`` tells the policy its final metrics (an errored
    trial is a failed result). Architectures the search has already evaluated
    are answered from its cache without a new trial. ``save``/``restore`` write
    the policy's state and the live trials as JSON, so ``Tuner.restore`` resumes
    the policy where it stopped.

    Args:
        policy: The wrapped policy; its objective's metric and mode are Tune's.
        max_trials: Trials to start in all; then ``suggest`` says FINISHED.

    Example:
        >>> searcher = PolicySearcher(make_policy("rea", space), max_trials=20)  # doctest: +SKIP
        >>> tune.TuneConfig(search_alg=searcher, num_samples=20)                  # doctest: +SKIP
    """

    def __init__(self, policy: Policy, max_trials: int, out_dir: str | Path | None = None,
                 search_id: str | None = None, max_fidelity: float | None = None) -> None:
        if max_trials < 1:
            raise ArgumentError(f"max_trials must be >= 1, got {max_trials}")
        objective = policy.objective
        super().__init__(metric=objective.metric, mode=objective.mode)
        self.policy = policy
        self.space = policy.space
        self.max_trials = max_trials
        self.out_dir = str(out_dir) if out_dir is not None else None
        self.max_fidelity = max_fidelity
        self.search_id = search_id or uuid.uuid4().hex
        self.state = SearchState(self.space, objective)
        self.started = 0
        self.exhausted = False  # the policy stopped proposing new architectures
        self.stalled = False  # ... because it only repeated evaluated ones (see SearchState)
        self.live: dict[str, Arch] = {}
        self.repeats = 0  # cached answers given to the policy
        self.began = time.time()  # the history's clock: wall seconds since the search began
        self.staging_dir: str | None = None  # where Tune last saved the experiment state
        self._space_size: int | None = None
        _ACTIVE[self.search_id] = self

    @staticmethod
    def active(search_id: str) -> PolicySearcher | None:
        """The searcher of ``search_id`` that Tune drives in this process (after
        ``Tuner.restore``, Tune's unpickled copy), or ``None``."""
        return _ACTIVE.get(search_id)

    @staticmethod
    def set_out_dir(search_id: str, out_dir: str | Path | None) -> None:
        """Where the searcher of ``search_id`` writes ``history.parquet`` (``None``: forget)."""
        if out_dir is None:
            _OUT_DIRS.pop(search_id, None)
            _ACTIVE.pop(search_id, None)
        else:
            _OUT_DIRS[search_id] = str(out_dir)

    @staticmethod
    def set_listener(search_id: str,
                     listener: Callable[[list[dict[str, Any]]], None] | None) -> None:
        """Call ``listener(rows)`` with every history row the search of ``search_id``
        records, as it records it (``None``: stop)."""
        if listener is None:
            _LISTENERS.pop(search_id, None)
        else:
            _LISTENERS[search_id] = listener

    def _emit(self, row: dict[str, Any]) -> None:
        listener = _LISTENERS.get(self.search_id)
        if listener is not None:
            listener([row])

    @property
    def history_dir(self) -> str | None:
        return _OUT_DIRS.get(self.search_id, self.out_dir)

    @property
    def finished(self) -> dict[Arch, Result]:
        """Every evaluated architecture's result."""
        return {arch: result for arch, (result, _) in self.state.cache.items()}

    @property
    def done(self) -> bool:
        """Whether the search has nothing left to start or wait for."""
        return not self.live and (self.started >= self.max_trials or self.exhausted)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        # The policy's objective is the source of truth; accept only a matching metric.
        return metric in (None, self.metric) and mode in (None, self.mode)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        _ACTIVE[self.search_id] = self
        if self.started >= self.max_trials or self.exhausted:
            return Searcher.FINISHED
        state = self.state
        while not self._space_exhausted():
            self.policy.in_flight = frozenset(state.pending)
            archs = self.policy.ask(1)
            if not archs:
                break
            arch = self.space.validate(archs[0])
            state.step += 1
            if state.is_known(arch):  # answered from the cache, free
                self.repeats += 1
                row = state.record_repeat(arch, elapsed=0.0)
                self.policy.tell([arch], [state.result_of(arch)])
                self._emit(row)
            if state.is_known(arch) or state.is_pending(arch):
                state.note_ask(0)
                if state.stalled:
                    self.stalled = self.exhausted = True
                    return Searcher.FINISHED
                if self.live:
                    return None  # wait for a running trial before asking again
                continue
            state.note_ask(1)
            self.started += 1
            self.live[trial_id] = arch
            state.submit(arch, at=self._now(), step=state.step - 1)
            return {ARCH_KEY: self.space.to_str(arch)}
        self.exhausted = True  # every architecture evaluated, or the policy offers none
        return Searcher.FINISHED

    def _space_exhausted(self) -> bool:
        if self._space_size is None:
            self._space_size = _count(self.space)
        return 0 < self._space_size <= len(self.state.cache) + len(self.state.pending)

    def _now(self) -> float:
        return time.time() - self.began

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        _ACTIVE[self.search_id] = self
        arch = self.live.pop(trial_id, None)
        if arch is None:
            return
        outcome = to_result(result, error, self.max_fidelity)
        if error:  # where Tune wrote the traceback, relative to the experiment folder
            outcome = Result.failed(f"the trial errored; its traceback is in "
                                    f"trial_{trial_id}/error.txt of Tune's experiment")
        row = self.state.record(arch, outcome,
                                elapsed=float((result or {}).get("time_total_s", 0.0)),
                                time=self._now())
        self.policy.tell([arch], [outcome])
        if self.history_dir is not None:
            self.history().save(Path(self.history_dir) / HISTORY_FILE)
        self._emit(row)

    def history(self) -> History:
        """The search's :class:`~raynas.search.history.History`: one row per finished
        trial, in the order they finished, and one per repeat answered from the cache."""
        return self.state.history

    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        self.staging_dir = checkpoint_dir  # Tune's staging folder (see raynas.tune.trust)
        super().save_to_dir(checkpoint_dir, session_str)

    # ------------------------------------------------------------ persistence
    def save(self, checkpoint_path: str) -> None:
        state = {
            "policy": self.policy.name,
            "policy_state": self.policy.state_dict(),
            "started": self.started,
            "exhausted": self.exhausted,
            "stalled": self.stalled,
            "repeats": self.repeats,
            "began": self.began,
            "live": {tid: list(arch) for tid, arch in self.live.items()},
            "history": self.state.history.rows,
            "position": self.state.position(),
        }
        with open(checkpoint_path, "w") as f:
            json.dump(state, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            state = json.load(f)
        if state["policy"] != self.policy.name:
            raise ArgumentError(
                f"searcher state is for policy {state['policy']!r}, not {self.policy.name!r}"
            )
        self.policy.load_state_dict(state["policy_state"])
        self.started, self.repeats = state["started"], state["repeats"]
        self.exhausted = bool(state.get("exhausted", False))
        self.stalled = bool(state.get("stalled", False))
        self.began = float(state.get("began", self.began))
        self.live = {tid: tuple(arch) for tid, arch in state["live"].items()}
        self.state = SearchState(self.space, self.policy.objective)
        self.state.restore(History(state["history"]), state["position"])
        _ACTIVE[self.search_id] = self


def to_result(reported: dict[str, Any] | None, error: bool = False,
              max_fidelity: float | None = None) -> Result:
    """A Tune trial's last reported metrics as a :class:`Result` (numbers only).

    The result's fidelity is the epochs the trial reached; a trial that ended before
    ``max_fidelity`` epochs without an error was stopped by a scheduler (ASHA): its
    result is :attr:`~raynas.types.Status.STOPPED`, never the incumbent, and a failure
    to the policy's model (its metrics are kept in the history)."""
    if error or not reported:
        return Result.failed("the trial errored" if error else "the trial reported nothing")
    metrics = {
        k: float(v) for k, v in reported.items()
        if k not in TUNE_FIELDS and isinstance(v, (int, float)) and not isinstance(v, bool)
        and math.isfinite(v)
    }
    epochs = metrics.get("epoch")
    stopped = max_fidelity is not None and epochs is not None and epochs < max_fidelity
    return Result(metrics, cost=float(reported.get("train_seconds", 0.0)),
                  status=Status.STOPPED if stopped else Status.OK, fidelity=epochs,
                  error=f"stopped by the scheduler after {epochs:g} of {max_fidelity:g} epochs"
                  if stopped else "")


# ------------------------------------------------------------------- the experiment


@dataclass(frozen=True)
class TuneSettings(ResourcesConfig):
    """How Tune runs the trials: a config's ``resources`` section (every field of
    :class:`~raynas.config.ResourcesConfig`, documented there, written once) plus what
    the Python API also sets.

    Attributes:
        num_trials: Architectures to train (Tune trials); a config's ``budget``.
        keep_checkpoints: Checkpoints kept per trial (``None``: all).
    """

    num_trials: int = 20
    keep_checkpoints: int | None = 2

    @classmethod
    def from_config(cls, resources: ResourcesConfig, num_trials: int) -> TuneSettings:
        """The settings of a config's ``resources`` and ``budget``."""
        return cls(num_trials=num_trials, **{f.name: getattr(resources, f.name)
                                             for f in fields(ResourcesConfig)})

    def __post_init__(self) -> None:
        if self.num_trials < 1 or self.max_concurrent_trials < 1:
            raise ArgumentError("num_trials and max_concurrent_trials must be >= 1")
        if self.max_failures < -1:
            raise ArgumentError(f"max_failures must be >= -1 (-1: retry forever), got {self.max_failures}")


ASHA_FACTOR = 4  # ASHA's reduction factor (Tune's default)


def asha_rungs(grace_period: int, max_t: int, factor: int = ASHA_FACTOR) -> frozenset[int]:
    """The epochs at which ASHA compares trials (``grace_period * factor**k`` up to
    ``max_t``): trials always report there, whatever their report interval."""
    rungs, t = set(), grace_period
    while t <= max_t:
        rungs.add(int(t))
        t *= factor
    return frozenset(rungs)


def _check_resources(settings: TuneSettings) -> None:
    """A trial that asks for more CPUs, GPUs or custom resources than one node of the
    cluster has would stay pending forever; on an autoscaling cluster, nodes that have
    them may start later. Starts a local Ray instance first if none is up."""
    from raynas.cluster import connect, largest_node

    connect()
    wanted = {"CPU": float(settings.cpus_per_trial), **settings.custom_resources}
    if settings.gpus_per_trial > 0:
        wanted["GPU"] = settings.gpus_per_trial
    for name, amount in wanted.items():
        available = largest_node(name)
        if available >= amount:
            continue
        if name == "CPU":
            problem = (f"cpus_per_trial={amount:g} but the largest node of the Ray cluster has "
                       f"{available:g} CPU(s), and a trial runs on one node; lower "
                       "resources.cpus_per_trial")
        elif name == "GPU":
            problem = (f"gpus_per_trial={amount:g} but the Ray cluster has {available:g} GPU(s) "
                       "on any node; set gpus_per_trial to 0 to train on CPUs")
        else:
            problem = (f"custom_resources needs {name}={amount:g} per trial but the Ray cluster "
                       f"has {available:g} on any node; start nodes with --resources "
                       f"'{{\"{name}\": N}}'")
        if not settings.autoscaling:
            raise StartupError(problem + " (or set resources.autoscaling: true when the "
                               "cluster launches such nodes on demand)")
        logger.warning("%s; waiting for the autoscaler to launch nodes that have it", problem)


def _hyper_scheduler(settings: TuneSettings, evaluator: TrainingEvaluator, out_dir: Path):
    """The HyperScheduler of ``settings.hyper_controller``, checked against what the
    trainable can change and report."""
    from raynas.evaluators.training import HYPERPARAMETERS
    from raynas.policies.hyper_controller import HyperController
    from raynas.tune.hyper_scheduler import HyperScheduler

    path = settings.hyper_controller
    controller = HyperController.load(path)
    unknown = [p.name for p in controller.params if p.name not in HYPERPARAMETERS]
    if unknown:
        raise ArgumentError(f"{path}: schedules {unknown}, but training trials can only change "
                         f"{list(HYPERPARAMETERS)}")
    reported = {"valid_acc", "test_acc", "train_loss", "lr"}
    missing = sorted(set(controller.metrics) - reported)
    if missing:
        raise ArgumentError(f"{path}: observes {missing}, which training trials do not report "
                         f"(they report {sorted(reported)})")
    return HyperScheduler(controller, evaluator.epochs, settings.hyper_interval,
                          log_path=out_dir / "hyper_decisions.jsonl")


def tune_storage(out_dir: Path, settings: TuneSettings) -> str:
    """The ``storage_path`` Tune gets for a search in ``out_dir``: the folder itself, or
    ``<settings.storage_path>/<out_dir name>`` (a path or a cloud URI)."""
    if settings.storage_path is None:
        return str(out_dir)
    return f"{settings.storage_path.rstrip('/')}/{out_dir.name}"


def _trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"


class TuneSearch(StateView):
    """What raynas callbacks of a Tune search see: the parts of a
    :class:`~raynas.search.Search` they read (space, policy, evaluator, budget, the
    state's history, queries, cost and incumbent), over the searcher Tune drives (after
    ``Tuner.restore``, Tune's unpickled copy).

    Attributes:
        resumed: The search continues a Tune experiment.
        completed: It ran to its end (set when it ends).
    """

    def __init__(self, policy, evaluator, num_trials: int, out_dir: Path, resumed: bool) -> None:
        self.space, self.policy, self.evaluator = policy.space, policy, evaluator
        self.budget = Budget(max_queries=num_trials)
        self.out_dir, self.resumed = out_dir, resumed
        self.completed = False
        self.search_id: str | None = None
        self.searcher: PolicySearcher | None = None
        self._empty = SearchState(policy.space, policy.objective)

    @property
    def state(self) -> SearchState:
        searcher = self.searcher or (PolicySearcher.active(self.search_id)
                                     if self.search_id else None)
        return searcher.state if searcher is not None else self._empty


def run_tune(
    policy: Policy,
    evaluator: TrainingEvaluator,
    settings: TuneSettings,
    out_dir: str | Path,
    *,
    verbose: int = 1,
    callbacks: Sequence[Callback] = (),
    tune_callbacks: Sequence = (),
    trial_tracking: TrialTracking | Callable[[], TrialTracking] | None = None,
    resume: bool = False,
    trust_folder: bool = False,
    on_start: Callable[[], None] | None = None,
    progress: bool = False,
) -> SearchResult:
    """Train ``settings.num_trials`` architectures proposed by ``policy`` as Tune trials.

    Tune's experiment lives in ``<out_dir>/tune``, or under ``settings.storage_path``
    (``result.json``, ``progress.csv``, TensorBoard events, checkpoints);
    ``<out_dir>/history.parquet`` gets one row per finished trial, as trials finish.

    A new search (``resume=False``) refuses a place that already holds a Tune
    experiment. With ``resume``, the experiment there is restored: only if raynas
    recorded this search's identity in it (space, policy and its hyperparameters, seed,
    evaluator) and its files carry this machine's signatures (:mod:`raynas.tune.trust`;
    ``trust_folder`` skips that check). The policy's state comes back and unfinished
    trials resume from their checkpoints; with no experiment there yet, the search
    starts. ``on_start`` is called once the search is set up, just before the first
    trial.

    ``callbacks`` are raynas :class:`~raynas.search.Callback` s, fed by the search state
    as in an in-process search (an :class:`~raynas.tracking.MlflowTracker`): their
    ``search`` is a :class:`TuneSearch`, ``on_step`` gets each row as a trial finishes.
    ``tune_callbacks`` are extra ``ray.tune.Callback`` s (what only Tune sees: epochs,
    checkpoints); with ``trial_tracking`` (or a function returning it, called once
    the callbacks have started) every trial logs its own MLflow child run. ``verbose``
    is Tune's (1: its live trial table); ``progress`` adds raynas's console (a line per
    finished trial and, with ``verbose=0``, a progress bar with an ETA).

    Returns:
        The same :class:`~raynas.search.SearchResult` as an in-process search, with
        Tune's ``ResultGrid`` as ``grid`` (checkpoints, per-epoch results).

    Raises:
        SearchInterrupted: Tune stopped on SIGINT (Ctrl+C) before every trial finished;
            the state is saved and ``resume=True`` continues it.
        CheckpointError: The experiment there is another search's, or not raynas's.
        UntrustedFolderError: Its files are not signed by this machine's raynas.
    """
    from raynas.tune import trust

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    storage = tune_storage(out_dir, settings)
    experiment = f"{storage}/{EXPERIMENT}"
    objective = policy.objective
    if objective.metric != evaluator.search_metric:
        raise ArgumentError(
            f"the policy optimises {objective.metric!r} but the evaluator's search metric is "
            f"{evaluator.search_metric!r}"
        )
    identity = search_identity(policy, evaluator)
    restore = check_experiment(experiment, identity, resume)
    if resume and not restore and (out_dir / HISTORY_FILE).is_file():
        raise CheckpointError(f"cannot resume {out_dir}: it has {HISTORY_FILE} but Tune's "
                              f"experiment is missing from {experiment}")
    set_aside = []
    if restore:  # before anything starts: nothing of the folder is unpickled unchecked
        set_aside = trust.verify_experiment(out_dir, experiment, trust=trust_folder)
    _check_resources(settings)
    # Checkpointing every epoch of short trials trips Tune's snapshot-frequency warning.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    view = TuneSearch(policy, evaluator, settings.num_trials, out_dir, resumed=bool(restore))
    if progress:
        from raynas.search.callbacks import ProgressBar

        callbacks = [*callbacks, ProgressBar(bar=not verbose)]
    for cb in callbacks:
        cb.on_search_start(view)
    try:
        return _fit(view, callbacks, tune_callbacks, settings, policy, evaluator, out_dir,
                    experiment, storage, identity, restore, verbose, trial_tracking, on_start,
                    set_aside)
    finally:
        for cb in callbacks:
            cb.on_search_end(view)


@contextlib.contextmanager
def _tune_output(verbose: int):
    """At ``verbose=0`` Tune's fit prints nothing: its new output engine prints the
    "Configuration for experiment" box and a TensorBoard hint into Ray's temporary
    folder at every verbosity, so ``fit`` runs on Tune's legacy reporter, which is
    silent at 0 (``RAY_AIR_NEW_OUTPUT=0``, Tune's documented switch). raynas's console
    prints the right ``tensorboard --logdir`` line. A value the user set is kept."""
    if verbose or "RAY_AIR_NEW_OUTPUT" in os.environ:
        yield
        return
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        yield
    finally:
        os.environ.pop("RAY_AIR_NEW_OUTPUT", None)


def _fit(view, callbacks, tune_callbacks, settings, policy, evaluator, out_dir, experiment,
         storage, identity, restore, verbose, trial_tracking, on_start, set_aside):
    """``run_tune`` once its checks passed and its callbacks started."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from raynas.tune import trust
    from raynas.tune.trial import make_trainable

    objective = policy.objective
    if callable(trial_tracking):
        trial_tracking = trial_tracking()
    asha = settings.asha and settings.hyper_controller is None
    grace = min(settings.grace_period, evaluator.epochs)
    trainable = make_trainable(
        evaluator, settings.cpus_per_trial, settings.gpus_per_trial, settings.checkpoint_every,
        trial_tracking, settings.custom_resources, checkpoint_seconds=settings.checkpoint_seconds,
        report_seconds=settings.report_seconds,
        report_epochs=asha_rungs(grace, evaluator.epochs) if asha else frozenset(),
    )
    if restore:
        logger.info("restoring the Tune experiment in %s%s", experiment,
                    f" ({len(set_aside)} unsigned trial file(s) set aside)" if set_aside else "")
        tuner = tune.Tuner.restore(
            experiment, trainable=trainable, resume_unfinished=True, resume_errored=True
        )
        trust.sign_files(out_dir, experiment, [TUNER_FILE, IDENTITY_FILE])
    else:
        scheduler = None
        if settings.hyper_controller is not None:
            scheduler = _hyper_scheduler(settings, evaluator, out_dir)
        elif asha:  # trials report by time: ASHA counts epochs, not reports
            scheduler = ASHAScheduler(time_attr="epoch", max_t=evaluator.epochs,
                                      grace_period=grace, reduction_factor=ASHA_FACTOR)
        searcher = PolicySearcher(policy, max_trials=settings.num_trials, out_dir=out_dir,
                                  max_fidelity=evaluator.epochs)
        identity_with_id = {**identity, "search_id": searcher.search_id}
        write_identity(experiment, identity_with_id)
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                metric=objective.metric, mode=objective.mode,
                search_alg=searcher,
                scheduler=scheduler, num_samples=settings.num_trials,
                max_concurrent_trials=settings.max_concurrent_trials,
                reuse_actors=True, trial_dirname_creator=_trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=EXPERIMENT, storage_path=storage, verbose=verbose,
                callbacks=[*tune_callbacks, trust.TuneSigner(searcher, out_dir)],
                failure_config=tune.FailureConfig(max_failures=settings.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=settings.keep_checkpoints),
            ),
        )
        trust.sign_files(out_dir, experiment, [TUNER_FILE, IDENTITY_FILE])
    search_id = (read_identity(experiment) or {}).get("search_id")
    if not search_id:
        raise CheckpointError(f"{experiment}/{IDENTITY_FILE} names no raynas search id")
    PolicySearcher.set_out_dir(search_id, out_dir)
    view.search_id = search_id
    if callbacks:
        PolicySearcher.set_listener(
            search_id, lambda rows: [cb.on_step(view, rows) for cb in callbacks])
    handler = signal.getsignal(signal.SIGINT)  # Tune's fit() leaves its own installed
    try:
        if on_start is not None:
            on_start()
        try:
            with _tune_output(verbose):
                results = tuner.fit()
        finally:
            if handler is not None and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, handler)  # a later Ctrl+C is raynas's again
        searcher = PolicySearcher.active(search_id)
        if searcher is None:
            raise CheckpointError(f"{experiment}: Tune ran no raynas searcher for search "
                                  f"{search_id}")
    finally:
        PolicySearcher.set_out_dir(search_id, None)
        PolicySearcher.set_listener(search_id, None)
    view.searcher = searcher
    history = searcher.history()
    history.save(out_dir / HISTORY_FILE)
    view.completed = searcher.done
    if not searcher.done:
        raise SearchInterrupted(
            f"{searcher.state.queries} of {settings.num_trials} trials finished before the "
            f"interrupt ({len(searcher.live)} were running); Tune saved the rest of the state "
            f"in {experiment}",
            out_dir, searcher.state.queries,
        )
    state = searcher.state
    return SearchResult(
        history=history.to_arrow(),
        incumbent=state.incumbent[0] if state.incumbent else None,
        incumbent_metrics=state.incumbent_metrics(),
        queries=state.queries,
        stopped=("stalled" if searcher.stalled else
                 "exhausted" if searcher.exhausted else "budget"),
        grid=results,
    )
