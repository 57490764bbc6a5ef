"""The ``raynas search`` configuration: YAML in, validated frozen dataclasses out.

Every section is a frozen dataclass with a docstring per field. Unknown keys,
wrong types and unknown names raise :class:`ConfigError` with one line naming
the key (``evaluator.epcohs: unknown key; did you mean 'epochs'?``).

The default (no file) is the embedded search, ``examples/mnist1d/search.yaml``: a real
NAS on MNIST-1D (generated locally) over a 1-D CNN macro space written as a user writes
one (``examples/mnist1d/space.yaml`` and its builder), 20 trials of 8 epochs. A config
with no ``space`` section searches that space, except on images (digits, CIFAR, an image
folder: the NB201 cell at reduced width) and on a table (the table's space).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raynas.errors import ConfigError  # noqa: F401 - raynas.config.ConfigError stays importable


def default_space_file() -> str:
    """The embedded default's space: ``examples/mnist1d/space.yaml``, installed as the
    package ``raynas.mnist1d`` (absolute path)."""
    from importlib.resources import files

    return str(Path(str(files("raynas.mnist1d") / "space.yaml")).resolve())


IMAGE_DATASETS = ("digits", "cifar10", "cifar100", "folder")
"""Datasets of images: with no ``space`` section they search the NB201 cell."""
IMAGE_SPACE = {"channels": 8, "cells_per_stage": 1}
"""The NB201 cell's options for image datasets with no ``space`` section (reduced width
and depth; the benchmark's network has 16 channels and 5 cells per stage)."""


@dataclass(frozen=True)
class SpaceConfig:
    """The search space."""

    name: str = "custom"
    """Registered space: nb201, darts or transnas_micro; or ``custom``, a user's space:
    ``space: {file: myspace.yaml, builder: mypkg.models:build}`` (``name`` may be left
    out when ``file`` or ``decisions`` is given). Default: the MNIST-1D 1-D CNN space."""
    options: dict[str, Any] = field(default_factory=lambda: {"file": default_space_file()})
    """Constructor arguments of the space, e.g. ``channels`` and ``cells_per_stage`` for nb201,
    ``file`` (and ``builder``) for a custom space."""


@dataclass(frozen=True)
class PolicyConfig:
    """The search policy."""

    name: str = "rea"
    """A registered policy (``raynas --help`` lists them: random, rea, ls, tpe, manas,
    catch, npg, ...)."""
    options: dict[str, Any] = field(
        default_factory=lambda: {"population_size": 8, "sample_size": 3}
    )
    """The policy's hyperparameters, e.g. ``population_size`` for rea."""


@dataclass(frozen=True)
class EvaluatorConfig:
    """How architectures are scored."""

    kind: str = "training"
    """``training`` (real torch training as Tune trials), ``function`` (your own training
    function ``entrypoint`` as Tune trials), ``tabular`` (benchmark table) or
    ``supernet`` (paths of a pre-trained weight-sharing supernet, fine-tuned
    ``steps`` SGD steps per architecture, in process; the best one is retrained)."""
    entrypoint: str | None = None
    """``function``: ``module:function`` called as ``train_one(arch, context)`` (see
    :mod:`raynas.evaluators.user`); ``epochs`` is how many reports a full evaluation
    makes, and ``search_metric`` must be among what it reports."""
    dataset: str = "mnist1d"
    """mnist1d (embedded, generated locally), digits (embedded),
    cifar10 or cifar100 (from ``path``), ``folder`` (an image
    folder at ``path``: one sub-folder per class), ``npz`` (arrays ``x``/``y`` in the
    file ``path``), a ``module:function`` returning (train, valid, test) Datasets, or a
    dataset of the table."""
    path: str | None = None
    """CIFAR or image folder, ``.npz`` file (training) or benchmark table file (tabular;
    default: the NB201 table shipped with raynas, or ``$RAYNAS_NB201_TABLE``)."""
    input_size: int = 16
    """Image side for digits (resized from 8x8) and image folders."""
    epochs: int = 8
    """Training epochs per architecture."""
    lr: float = 0.02
    """Initial SGD learning rate (cosine schedule)."""
    batch_size: int = 64
    """Training batch size."""
    weight_decay: float = 5e-4
    """SGD weight decay."""
    measure_latency: bool = True
    """Measure each network's inference latency."""
    steps: int = 50
    """Supernet: SGD steps fine-tuning the shared weights on each sampled path."""
    pretrain_steps: int = 200
    """Supernet: one-shot pre-training steps (uniformly sampled paths) before the search."""
    retrain: bool = True
    """Supernet: train the best architecture from scratch (``epochs``) and export it."""
    search_metric: str = "valid_acc"
    """The metric the search optimises, on validation data (never test): for a table
    a metric it has for ``dataset`` (``<dataset>_<metric>`` columns); for training and
    supernet searches one the evaluator reports (see ``REPORTED_METRICS``)."""
    report_metric: str = "test_acc"
    """The metric reported for the incumbent (test data)."""
    mode: str = "max"
    """``max`` or ``min``: the direction of ``search_metric`` (and of ``report_metric``)."""
    cost_metric: str | None = None
    """Tabular: the table's cost column each evaluation takes, in seconds (the clock of
    ``budget.seconds`` and ``budget.workers``); default with workers: ``train_time``."""


@dataclass(frozen=True)
class ResourcesConfig:
    """How Ray Tune runs training trials."""

    cpus_per_trial: float = 1
    """CPUs per trial (also torch's thread count)."""
    gpus_per_trial: float = 0
    """GPUs per trial; fractions share a GPU (0.25: four trials per GPU)."""
    max_concurrent_trials: int = 2
    """Trials running at once."""
    max_failures: int = 2
    """Retries of a failed trial, from its last checkpoint."""
    checkpoint_every: int | None = None
    """Epochs between a trial's checkpoints (and after its last): at most this many
    epochs are lost when a trial crashes. Default: by time (``checkpoint_seconds``)."""
    checkpoint_seconds: float = 60.0
    """Without ``checkpoint_every``: a trial checkpoints the first epoch that ends this
    long after its last checkpoint (and its last epoch): a crash loses at most this
    much training plus one epoch, and short epochs do not each pay a checkpoint.
    Trials a hyper-controller schedules checkpoint every epoch (it resumes them from
    the epoch it paused them at)."""
    report_seconds: float = 5.0
    """A trial reports to Tune (its live table, results, schedulers) the first epoch that
    ends this long after its last report, and always at ASHA's rungs, its checkpoints
    and its last epoch; 0: every epoch. Each report costs a round trip to the driver
    (about 6 ms); MLflow's child runs get every epoch either way. Trials a
    hyper-controller schedules report every epoch."""
    asha: bool = False
    """Stop bad trials early with ASHA on the validation accuracy."""
    grace_period: int = 1
    """ASHA's minimum epochs before it may stop a trial."""
    hyper_controller: str | None = None
    """A trained hyper-controller (JSON, ``HyperController.save``) that adjusts every
    trial's ``lr`` / ``lr_scale`` / ``weight_decay`` / ``batch_size`` during training
    (pause, new config, resume from the epoch's checkpoint); not with ``asha``."""
    hyper_interval: int = 1
    """Epochs between the hyper-controller's decisions."""
    custom_resources: dict[str, float] = field(default_factory=dict)
    """Custom Ray resources each trial needs, e.g. ``{gpu_node: 1}``: trials run only on
    nodes started with that resource (``ray start --resources``)."""
    storage_path: str | None = None
    """Where Tune keeps the trials' checkpoints (``<storage_path>/<out folder name>``);
    default: the results folder. On a multi-node cluster every node must see it: a
    shared file system (NFS), or a cloud URI such as ``s3://bucket/raynas``."""
    autoscaling: bool = False
    """The Ray cluster launches nodes on demand (autoscaler, KubeRay): GPUs or custom
    resources it does not have yet are waited for instead of failing the search."""


@dataclass(frozen=True)
class TrackingConfig:
    """Experiment tracking."""

    mlflow: bool = True
    """Log the search to MLflow (a parent run; a child run per training trial)."""
    uri: str | None = None
    """Tracking URI; default ``sqlite:///<abs out dir>/mlflow.db``. Any MLflow URI
    works, e.g. ``http://127.0.0.1:5000``."""
    experiment: str = "raynas"
    """MLflow experiment name."""
    register_model: bool = True
    """Training searches: log the best network as an MLflow model (with its signature)
    and register it in the model registry."""
    model_name: str | None = None
    """Registered model name; default ``raynas-<space>-<dataset>``."""
    child_runs: bool | None = None
    """A nested child run per evaluated architecture. Default: yes for training
    searches, no for table searches (thousands of lookups go into the parent run in
    metric batches and the ``history.parquet`` artifact instead)."""
    log_from: str = "driver"
    """Training searches: ``driver`` (a Tune callback logs every trial) or ``trials``
    (each trial logs its own child run from its worker, e.g. on a cluster)."""


@dataclass(frozen=True)
class FrontConfig:
    """A multi-objective search: the Pareto front it reports (off when ``objectives`` is empty).

    The policy optimises the first objective; the history records every metric, and
    the front is chosen on ``objectives`` and scored on ``report`` (search on
    validation, report test).
    """

    objectives: dict[str, str] = field(default_factory=dict)
    """Metric -> ``max`` or ``min``, in order, e.g. ``{valid_acc: max, params: min}``."""
    report: list[str] | None = None
    """The metric each objective is reported with; default: ``valid_*`` -> ``test_*``,
    others unchanged."""
    reference: list[float] | None = None
    """Hypervolume reference point in report space; default: 0 for ``max`` objectives;
    for ``min`` ones on a table, the largest value of the table's cost column
    (``params``, ``latency``, ...), else the space's largest network for ``params`` /
    ``flops``."""


@dataclass(frozen=True)
class BudgetConfig:
    """When a search stops, and how many evaluations run at once (``budget: {queries:
    200, workers: 16}``; a plain number is ``queries``)."""

    queries: int | None = 20
    """Architectures to evaluate (trials for training, queries for tabular)."""
    seconds: float | None = None
    """Seconds on the search's clock: with ``workers``, simulated seconds of the table's
    ``evaluator.cost_metric`` (``train_time``)."""
    workers: int = 1
    """Tabular searches: simulated workers evaluating at once on the table's clock,
    asynchronously (training searches run ``resources.max_concurrent_trials`` trials)."""
    synchronous: bool = False
    """With ``workers``: rounds of ``workers`` that wait for the slowest."""


@dataclass(frozen=True)
class SearchConfig:
    """One search: what to search, with what, how long."""

    space: SpaceConfig = field(default_factory=SpaceConfig)
    """The search space."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """The search policy."""
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    """How architectures are scored."""
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    """Tune resources (training only)."""
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    """Experiment tracking."""
    front: FrontConfig = field(default_factory=FrontConfig)
    """Objectives of a multi-objective search (its Pareto front)."""
    budget: int | BudgetConfig = 20
    """Architectures to evaluate (trials for training, queries for tabular), or a
    mapping with ``queries``, ``seconds``, ``workers`` and ``synchronous``."""
    seed: int = 0
    """Seeds the policy, the data split and the training."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """The config as YAML, every key written (what ``config.yaml`` holds and
        ``raynas search --print-config`` prints)."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @property
    def limits(self) -> BudgetConfig:
        """The budget as a :class:`BudgetConfig` (a plain number is its ``queries``)."""
        if isinstance(self.budget, BudgetConfig):
            return self.budget
        return BudgetConfig(queries=self.budget)


EVALUATOR_KINDS = ("training", "function", "tabular", "supernet")
REPORTED_METRICS = {
    "training": ("valid_acc", "test_acc", "train_loss", "params", "flops", "latency_ms"),
    "supernet": ("valid_acc", "valid_loss", "test_acc", "params", "flops"),
}
"""What training and supernet evaluations report, per architecture."""

# ------------------------------------------------------------------ parsing
_NAMED_SECTIONS = ("space", "policy")  # their extra keys are constructor options


def _type_ok(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is dict or annotation is dict:
        key_type, value_type = typing.get_args(annotation) or (Any, Any)
        return isinstance(value, dict) and all(
            _type_ok(k, key_type) and _type_ok(v, value_type) for k, v in value.items()
        )
    if origin is list:
        (item,) = typing.get_args(annotation)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is Any:
        return True
    return isinstance(value, annotation)


def _type_name(annotation: Any) -> str:
    if typing.get_args(annotation):  # dict[str, float], list[int], int | None: say it all
        return str(annotation).replace("typing.", "")
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _unknown_key(where: str, key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
    return ConfigError(f"{where}{key}: unknown key{hint}")


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    data = dict(data)
    if cls.__name__.lower().removesuffix("config") in _NAMED_SECTIONS:
        # Extra keys are constructor options. Naming a space or policy starts from its
        # own defaults, not from the embedded default's options.
        extra = {k: data.pop(k) for k in list(data) if k not in names}
        if "name" in data or extra:
            data["options"] = {**data.get("options", {}), **extra}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise _unknown_key(where, key, names)
        annotation = hints[key]
        members = [a for a in typing.get_args(annotation) if dataclasses.is_dataclass(a)]
        if members and isinstance(value, dict):  # e.g. budget: int | BudgetConfig
            annotation = members[0]
        if dataclasses.is_dataclass(annotation):
            kwargs[key] = _build(annotation, value, f"{where}{key}.")
        elif not _type_ok(value, annotation):
            if members:  # int | BudgetConfig: name the plain type, then the mapping's keys
                plain = " | ".join(_type_name(a) for a in typing.get_args(annotation)
                                   if a not in members)
                keys = ", ".join(f.name for f in dataclasses.fields(members[0]))
                raise ConfigError(f"{where}{key}: expected {plain}, got {type(value).__name__} "
                                  f"{value!r} (or a mapping of {keys})")
            raise ConfigError(
                f"{where}{key}: expected {_type_name(annotation)}, got {type(value).__name__} "
                f"{value!r}"
            )
        else:
            kwargs[key] = value
    return cls(**kwargs)


def _check_options(where: str, factory: Any, options: dict[str, Any]) -> None:
    """Options must be keyword arguments of ``factory`` (seed and objective are set by raynas)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = [
        name for name, p in inspect.signature(factory).parameters.items()
        if p.kind in kinds and name not in ("self", "space", "seed", "objective")
    ]
    for key in options:
        if key not in params:
            raise _unknown_key(where, key, params)


def validate(config: SearchConfig) -> SearchConfig:
    """Check names and ranges that types alone cannot; return ``config``."""
    from raynas.errors import unknown_name
    from raynas.policies import POLICIES
    from raynas.spaces import SPACES

    def named(where: str, name: str, registry: dict) -> None:
        if name not in registry:
            raise ConfigError(f"{where}: {unknown_name(where.split('.')[0], name, registry)}")

    named("space.name", config.space.name, SPACES)
    named("policy.name", config.policy.name, POLICIES)
    _check_options("space.", SPACES[config.space.name], config.space.options)
    _check_options("policy.", POLICIES[config.policy.name], config.policy.options)
    ev = config.evaluator
    if ev.kind not in EVALUATOR_KINDS:
        raise ConfigError(f"evaluator.kind: expected one of {', '.join(EVALUATOR_KINDS)}, got "
                          f"{ev.kind!r}")
    for key in ("epochs", "batch_size", "input_size", "steps"):
        if getattr(ev, key) < 1:
            raise ConfigError(f"evaluator.{key}: must be >= 1, got {getattr(ev, key)}")
    if ev.pretrain_steps < 0:
        raise ConfigError(f"evaluator.pretrain_steps: must be >= 0, got {ev.pretrain_steps}")
    if ev.mode not in ("max", "min"):
        raise ConfigError(f"evaluator.mode: expected 'max' or 'min', got {ev.mode!r}")
    if ev.search_metric.startswith("test"):
        raise ConfigError(f"evaluator.search_metric: {ev.search_metric!r} is measured on test "
                          "data; a search optimises a validation metric and only reports test")
    if (ev.kind == "function") != (ev.entrypoint is not None):
        raise ConfigError("evaluator.entrypoint: a function evaluator needs one "
                          "(module:function), and only a function evaluator takes one")
    if (ev.kind in ("training", "supernet") and ev.dataset == "mnist1d"
            and getattr(SPACES[config.space.name], "cell_networks", False)):
        raise ConfigError(f"evaluator.dataset: mnist1d holds 1-D sequences (1, 40), and the "
                          f"{config.space.name} space builds cell networks for images "
                          f"(C, H, W); pick an image dataset (digits, cifar10, cifar100, "
                          f"folder), or leave out the space section for the 1-D CNN space")
    # a table's metrics are checked against its columns when loaded, a function's
    # against its first report
    if ev.kind in REPORTED_METRICS:
        for key in ("search_metric", "report_metric"):
            if getattr(ev, key) not in REPORTED_METRICS[ev.kind]:
                raise ConfigError(
                    f"evaluator.{key}: {ev.kind} evaluations report "
                    f"{', '.join(REPORTED_METRICS[ev.kind])}; got {getattr(ev, key)!r}")
    limits = config.limits
    if limits.queries is None and limits.seconds is None:
        raise ConfigError("budget: give queries and/or seconds")
    if limits.queries is not None and limits.queries < 1:
        raise ConfigError(f"budget: must be >= 1 queries, got {limits.queries}")
    if limits.seconds is not None and limits.seconds <= 0:
        raise ConfigError(f"budget.seconds: must be > 0, got {limits.seconds}")
    if limits.workers < 1:
        raise ConfigError(f"budget.workers: must be >= 1, got {limits.workers}")
    if ev.kind != "tabular" and (limits.workers > 1 or limits.seconds is not None
                                 or limits.synchronous):
        raise ConfigError(f"budget: workers, seconds and synchronous are for tabular searches; "
                          f"a {ev.kind} search runs resources.max_concurrent_trials at once and "
                          "counts queries")
    if ev.kind != "tabular" and limits.queries is None:
        raise ConfigError(f"budget.queries: a {ev.kind} search needs its number of trials")
    res = config.resources
    if res.cpus_per_trial <= 0 or res.gpus_per_trial < 0 or res.max_concurrent_trials < 1:
        raise ConfigError(
            "resources: need cpus_per_trial > 0, gpus_per_trial >= 0, max_concurrent_trials >= 1"
        )
    if res.hyper_controller is not None and res.asha:
        raise ConfigError("resources.hyper_controller: cannot be combined with asha (both "
                          "schedule the trials); choose one")
    if res.hyper_interval < 1:
        raise ConfigError(f"resources.hyper_interval: must be >= 1, got {res.hyper_interval}")
    if res.checkpoint_every is not None and res.checkpoint_every < 1:
        raise ConfigError(f"resources.checkpoint_every: must be >= 1, got {res.checkpoint_every}")
    if not res.report_seconds >= 0:
        raise ConfigError(f"resources.report_seconds: must be >= 0, got {res.report_seconds}")
    if not res.checkpoint_seconds > 0:
        raise ConfigError(f"resources.checkpoint_seconds: must be > 0, got "
                          f"{res.checkpoint_seconds}")
    for name, amount in res.custom_resources.items():
        if name in ("CPU", "GPU", "memory", "cpu", "gpu"):
            raise ConfigError(f"resources.custom_resources.{name}: set CPUs and GPUs with "
                              "cpus_per_trial and gpus_per_trial")
        if amount <= 0:  # a number: the type check of dict[str, float] came first
            raise ConfigError(f"resources.custom_resources.{name}: expected a number > 0, got "
                              f"{amount!r}")
    _check_front(config.front, (ev.search_metric, ev.mode))
    tracking = config.tracking
    if tracking.log_from not in ("driver", "trials"):
        raise ConfigError(f"tracking.log_from: expected 'driver' or 'trials', got {tracking.log_from!r}")
    if tracking.log_from == "trials" and tracking.child_runs is False:
        raise ConfigError("tracking.log_from: trials log their own child runs; it needs "
                          "child_runs true (or unset)")
    return config


def _check_front(front: FrontConfig, search: tuple[str, str]) -> None:
    if not front.objectives:
        if front.report or front.reference:
            raise ConfigError("front.objectives: needed when front.report or front.reference is set")
        return
    n = len(front.objectives)
    if n < 2:
        raise ConfigError(f"front.objectives: a front needs >= 2 objectives, got {n}")
    first = next(iter(front.objectives.items()))
    if first != search:
        raise ConfigError(f"front.objectives: the first objective is the one the policy "
                          f"optimises, the search metric {search[0]} ({search[1]}, "
                          f"evaluator.search_metric and evaluator.mode); got {first[0]} "
                          f"({first[1]})")
    for metric, mode in front.objectives.items():
        if mode not in ("max", "min"):
            raise ConfigError(f"front.objectives.{metric}: expected 'max' or 'min', got {mode!r}")
    for key in ("report", "reference"):
        value = getattr(front, key)
        if value is not None and len(value) != n:
            raise ConfigError(f"front.{key}: expected {n} values (one per objective), got "
                              f"{len(value)}")


def space_label(config: SearchConfig) -> str:
    """The space's name for people: a registered space's name; a user's space by the
    ``name`` in its file (else the file's stem) or its given name."""
    options = config.space.options
    if config.space.name != "custom":
        return config.space.name
    if options.get("file"):
        import yaml

        from raynas.files import load_yaml

        try:
            spec = load_yaml(Path(options["file"]).read_text())
        except (OSError, yaml.YAMLError):
            spec = None
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            return spec["name"]
        return Path(options["file"]).stem
    return str(options.get("name", "custom"))


def from_dict(data: dict[str, Any] | None) -> SearchConfig:
    """A validated :class:`SearchConfig`; missing keys take the embedded defaults, except
    that with no ``space`` section a tabular search searches NB201 at its own defaults
    (the benchmark's networks) and a training search on images (``IMAGE_DATASETS``)
    the NB201 cell at reduced width (``IMAGE_SPACE``), and a ``space`` with ``file`` or ``decisions``
    but no ``name`` is ``custom``. A tabular evaluator without ``path`` gets
    :func:`raynas.tables.default_table` (the NB201 table shipped with raynas, or
    ``$RAYNAS_NB201_TABLE``), written into the config, so a resumed search reads the
    same table whatever the environment then."""
    space = (data or {}).get("space")
    if isinstance(space, dict) and "name" not in space and ({"file", "decisions"} & set(space)):
        data = {**data, "space": {"name": "custom", **space}}  # a user's own space
    config = validate(_build(SearchConfig, data or {}, ""))
    if config.evaluator.kind == "tabular" and "space" not in (data or {}):
        # a table's networks are the benchmark's own (what params/FLOPs are modelled
        # for), not the space of the embedded training default
        config = dataclasses.replace(config, space=SpaceConfig("nb201", {}))
    elif config.evaluator.dataset in IMAGE_DATASETS and "space" not in (data or {}):
        # images: the NB201 cell at reduced width (the 1-D CNN default takes sequences)
        config = dataclasses.replace(config, space=SpaceConfig("nb201", dict(IMAGE_SPACE)))
    if config.evaluator.kind == "tabular" and config.evaluator.path is None:
        from raynas.tables import default_table

        config = dataclasses.replace(config, evaluator=dataclasses.replace(
            config.evaluator, path=str(default_table().resolve())))
    return config


def override(config: SearchConfig, *, budget: int | None = None, seed: int | None = None,
             policy: str | None = None) -> SearchConfig:
    """``config`` with the command line's overrides (``None``: kept), validated again.

    ``budget`` is the number of architectures (a ``budget:`` mapping keeps its other
    keys: seconds, workers); ``policy`` keeps the config's policy options only when it
    names the same policy.
    """
    data = config.to_dict()
    if budget is not None:
        data["budget"] = ({**data["budget"], "queries": budget}
                          if isinstance(data["budget"], dict) else budget)
    if seed is not None:
        data["seed"] = seed
    if policy is not None and policy != config.policy.name:
        data["policy"] = {"name": policy}
    return from_dict(data)


def load(path: str | Path | None) -> SearchConfig:
    """Read and validate a YAML config; ``None`` gives the embedded default.

    Relative file paths in the config (``evaluator.path``, ``resources.hyper_controller``,
    a local ``resources.storage_path``, ``policy.checkpoint``) are relative to the config
    file's folder, not to the current directory; they are stored absolute, so the
    ``config.yaml`` a search saves resumes from anywhere. An empty file is an error: the
    embedded default runs with no config at all. A key given twice is an error.
    """
    import yaml

    from raynas.files import load_yaml

    if path is None:
        return from_dict({})
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc}") from None
    if data is None:
        raise ConfigError(f"{path}: the config is empty; to run the embedded default search, "
                          "run `raynas search` with no config file (examples/ has configs to "
                          "start from)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (space, policy, evaluator, "
                          f"...), got {type(data).__name__}")
    return resolve_paths(from_dict(data), path.resolve().parent)


def _is_uri(text: str) -> bool:
    return "://" in text


def resolve_paths(config: SearchConfig, base: Path) -> SearchConfig:
    """``config`` with its relative file paths made absolute against ``base`` (``~``
    expanded); URIs (``s3://...``) are left alone."""

    def absolute(value: str | None) -> str | None:
        if value is None or _is_uri(value):
            return value
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (base / path).resolve())

    ev, res = config.evaluator, config.resources
    options = dict(config.policy.options)
    if isinstance(options.get("checkpoint"), str):
        options["checkpoint"] = absolute(options["checkpoint"])
    space = dict(config.space.options)
    if isinstance(space.get("file"), str):
        space["file"] = absolute(space["file"])
    return dataclasses.replace(
        config,
        space=dataclasses.replace(config.space, options=space),
        evaluator=dataclasses.replace(ev, path=absolute(ev.path)),
        resources=dataclasses.replace(res, hyper_controller=absolute(res.hyper_controller),
                                      storage_path=absolute(res.storage_path)),
        policy=dataclasses.replace(config.policy, options=options),
    )


def dump(config: SearchConfig, path: str | Path) -> None:
    """Write ``config`` as YAML (what ``--resume`` reads back)."""

    from raynas.files import write_text

    write_text(path, config.to_yaml())
