"""A Tune experiment and the search it belongs to.

raynas records the identity of the search that made a Tune experiment (space, policy
and its hyperparameters, seed, evaluator, and a search id) in ``raynas-search.json``
beside Tune's files. A new search refuses a place that already holds an experiment; a
resumed one restores only an experiment whose identity matches, as the in-process
:class:`~raynas.search.Search` checks its checkpoint. The experiment may live on a local
path or a cloud URI (``s3://...``): every access goes through a pyarrow file system.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raynas.errors import CheckpointError
from raynas.types import Objective

if TYPE_CHECKING:
    from raynas.evaluators import TrainingEvaluator
    from raynas.search.policy import Policy

logger = logging.getLogger(__name__)

IDENTITY_FILE = "raynas-search.json"
TUNER_FILE = "tuner.pkl"


def filesystem(uri: str):
    """``(pyarrow file system, path)`` of a local path or a URI."""
    import pyarrow.fs as pafs

    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), str(Path(uri).resolve())


def search_identity(policy: Policy, evaluator: TrainingEvaluator) -> dict[str, Any]:
    """What makes a training search this search: a Tune experiment is restored only into
    the search that made it (as the in-process :class:`~raynas.search.Search` checks its
    checkpoint)."""
    return json.loads(json.dumps({
        "space": evaluator.space.describe(), "policy": policy.name,
        "policy_hyperparameters": policy.hyperparameters(), "seed": policy.seed,
        "evaluator": evaluator.describe(),
        **({} if policy.objective == Objective() else {
            "objective": [policy.objective.metric, policy.objective.mode]}),
    }, default=str))


def read_identity(experiment: str) -> dict[str, Any] | None:
    """The identity raynas recorded in a Tune experiment (plain JSON), if any."""
    import pyarrow.fs as pafs

    fs, root = filesystem(experiment)
    path = f"{root}/{IDENTITY_FILE}"
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    try:
        with fs.open_input_stream(path) as f:
            return json.loads(f.read())
    except (ValueError, OSError):
        return None


def write_identity(experiment: str, identity: dict[str, Any]) -> None:
    fs, root = filesystem(experiment)
    fs.create_dir(root, recursive=True)
    with fs.open_output_stream(f"{root}/{IDENTITY_FILE}") as f:
        f.write(json.dumps(identity, indent=1).encode())


def _difference(there: dict[str, Any], here: dict[str, Any]) -> str:
    for key, value in here.items():
        if there.get(key) != value:
            return f"{key} is {there.get(key)!r} there, {value!r} here"
    return "its recorded identity differs"


def _never_ran(experiment: str) -> bool:
    """Whether a Tune experiment holds no state and no trial (the driver stopped between
    building the ``Tuner`` and its first step); such a folder is removed, unread."""
    import pyarrow.fs as pafs

    fs, root = filesystem(experiment)
    names = [i.base_name for i in fs.get_file_info(pafs.FileSelector(root))]
    if any(n.startswith(("experiment_state-", "trial_")) for n in names):
        return False
    logger.info("removing %s: a Tune experiment that never started (%s)", experiment,
                ", ".join(names))
    fs.delete_dir(root)
    return True


def check_experiment(experiment: str, identity: dict[str, Any], resume: bool) -> bool:
    """Whether to restore ``experiment``; refuse one that is not this search's."""
    from ray import tune

    if not tune.Tuner.can_restore(experiment):
        return False
    if not resume and _never_ran(experiment):
        return False  # a Tuner was built, and nothing more: no trial, no state to keep
    recorded = read_identity(experiment)
    if recorded is not None:
        recorded = {k: v for k, v in recorded.items() if k != "search_id"}
    if not resume:
        whose = "another search's" if recorded != identity else "a same-settings search's"
        raise CheckpointError(
            f"{experiment} already holds {whose} experiment; a new search never takes over "
            "results it did not make. Resume that search with raynas search --resume <its "
            "folder>, or give this one another --out (or resources.storage_path)"
        )
    if recorded is None:
        raise CheckpointError(f"{experiment} holds a Tune experiment that raynas did not start "
                              f"(no {IDENTITY_FILE}); refusing to adopt it")
    if recorded != identity:
        raise CheckpointError(f"{experiment} belongs to another search: "
                              f"{_difference(recorded, identity)}")
    return True
