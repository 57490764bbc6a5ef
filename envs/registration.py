"""Factories behind the registered gymnasium ids.

* ``raynas/NB201-v0`` — :func:`make_nb201`: NB201 on a benchmark table (``table=``).
* ``raynas/NB201-Train-v0`` — :func:`make_nb201_train`: NB201 at reduced width, each
  architecture really trained (digits by default).
* ``raynas/NAS-v0`` — :func:`make_nas`: any space and evaluator.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from raynas.envs.nas_env import NASEnv


@lru_cache(maxsize=4)
def _load_table(path: str):
    from raynas.tables import BenchmarkTable

    return BenchmarkTable.load(path)


def nb201_table_evaluator(table=None, dataset: str = "cifar10"):
    """(space, evaluator) for an NB201 table (a path or a loaded table; ``None``: the one
    shipped with raynas, or ``$RAYNAS_NB201_TABLE``); the evaluator's metrics include the
    network's ``params`` and ``flops``."""
    from raynas.evaluators import TabularEvaluator
    from raynas.objectives.fronts import NB201_SHAPES
    from raynas.spaces.cost import LinearCostModel

    if table is None:
        from raynas.tables import default_table

        table = default_table()
    if isinstance(table, (str, Path)):
        table = _load_table(str(Path(table).resolve()))
    num_classes, input_size = NB201_SHAPES.get(dataset, (10, 32))
    cost = LinearCostModel(table.space, num_classes=num_classes, input_size=input_size)
    return table.space, TabularEvaluator(table, dataset, cost_model=cost)


def make_nb201(table=None, dataset: str = "cifar10", **kwargs: Any) -> NASEnv:
    """NB201 on a benchmark table (default: the one shipped with raynas): reward from the
    search metric (validation accuracy), normalised by the table's range. ``kwargs`` go
    to :class:`NASEnv`."""
    space, evaluator = nb201_table_evaluator(table, dataset)
    return NASEnv(space, evaluator, **kwargs)


def make_nb201_train(dataset: str = "digits", path: str | None = None, channels: int = 8,
                     cells_per_stage: int = 1, epochs: int = 2, input_size: int = 16,
                     batch_size: int = 64, seed: int = 0, **kwargs: Any) -> NASEnv:
    """NB201 at reduced width; every new architecture is trained for ``epochs`` on
    ``dataset`` (the embedded digits by default) and rewarded by its validation
    accuracy (running range)."""
    from raynas.data import load_dataset
    from raynas.evaluators import TrainingEvaluator
    from raynas.spaces import NB201Space

    space = NB201Space(channels=channels, cells_per_stage=cells_per_stage)
    data = load_dataset(dataset, path, input_size=input_size, seed=seed)
    evaluator = TrainingEvaluator(space, data, epochs=epochs, batch_size=batch_size, seed=seed)
    return NASEnv(space, evaluator, **kwargs)


def make_nas(space, evaluator, **kwargs: Any) -> NASEnv:
    """Any space (an object, or a registered name) and evaluator."""
    if isinstance(space, str):
        from raynas.spaces import get_space

        space = get_space(space)
    return NASEnv(space, evaluator, **kwargs)
