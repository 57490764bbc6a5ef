"""The bench's result files: one Parquet file per finished search, keyed by its settings.

A search's file is ``<out>/runs/<policy>__<dataset>__<seed index>__<key>.parquet``. The
key is a hash of everything that changes the search's result (:func:`search_settings`:
the table's contents, space, dataset, policy and its hyperparameters, the search seed,
budget, batch size, metrics, mode, objectives, transfer settings, raynas's version), so a
rerun reuses only searches made with identical settings; the settings are also kept in
the file's schema metadata (``raynas.settings``). Files are written atomically; an
unreadable one is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from raynas.files import write_atomically

if TYPE_CHECKING:
    from raynas.bench.runner import BenchConfig

logger = logging.getLogger(__name__)


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (a table's identity: the same path may hold another table)."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _key(settings: dict[str, Any]) -> str:
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# Bumped when the same settings start to give other results, so a rerun recomputes
# instead of reusing them (2: a table's own cost columns over modelled params/FLOPs;
# 3: noisy tables, one run drawn per query, where their run columns were ignored).
RESULTS_VERSION = 3


def search_settings(config: BenchConfig, table_digest: str, policy: str, dataset: str,
                    seed_index: int) -> dict[str, Any]:
    """Everything that changes the result of one bench search (see :func:`search_key`)."""
    from raynas import __version__
    from raynas.bench.runner import search_seed

    settings = {
        "raynas": __version__, "results": RESULTS_VERSION, "table": table_digest,
        "space": config.space, "dataset": dataset, "policy": policy,
        "policy_kwargs": config.policy_kwargs.get(policy, {}),
        "seed": search_seed(config.base_seed, seed_index), "budget": config.budget,
        "batch_size": config.batch_size, "workers": config.workers, "clock": config.clock,
        "synchronous": config.synchronous, "search_metric": config.search_metric,
        "report_metric": config.report_metric, "mode": config.mode,
        "objectives": [list(o) for o in config.objectives],
    }
    if policy == "catch" and config.transfer:
        settings["transfer"] = meta_settings(config, table_digest, dataset)
    return settings


def search_key(config: BenchConfig, table_digest: str, policy: str, dataset: str,
               seed_index: int) -> str:
    """The key of one bench search's result file: a hash of :func:`search_settings`."""
    return _key(search_settings(config, table_digest, policy, dataset, seed_index))


def meta_settings(config: BenchConfig, table_digest: str, dataset: str) -> dict[str, Any]:
    """Everything that changes the CATCH checkpoint meta-trained without ``dataset``."""
    from raynas import __version__

    return {"raynas": __version__, "table": table_digest, "space": config.space,
            "left_out": dataset, "seed": config.base_seed, "meta": config.meta,
            "catch": config.policy_kwargs.get("catch", {}),
            "search_metric": config.search_metric, "report_metric": config.report_metric}


def meta_checkpoint(config: BenchConfig, dataset: str, table_digest: str | None = None) -> Path:
    """Where the CATCH checkpoint meta-trained without ``dataset`` is cached (named by
    the key of :func:`meta_settings`, so other settings never reuse it)."""
    digest = table_digest or file_digest(config.benchmark)
    key = _key(meta_settings(config, digest, dataset))
    return Path(config.out).resolve() / "catch" / f"without-{dataset}__{key}.json"


def run_file(out: Path, policy: str, dataset: str, seed: int, key: str) -> Path:
    return out / "runs" / f"{policy}__{dataset}__{seed}__{key}.parquet"


def write_run(table: pa.Table, path: Path, metadata: dict[str, Any]) -> None:
    """Write Parquet through a temporary file and a rename: a crash or a full disk never
    leaves a truncated result file that a rerun would take for a finished search."""
    table = table.replace_schema_metadata({"raynas.settings": json.dumps(metadata, default=str)})
    write_atomically(path, lambda tmp: pq.write_table(table, tmp))


def read_run(path: Path) -> pa.Table | None:
    """A finished search's file, or ``None`` (with a warning) when it is unreadable."""
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        logger.warning("%s is unreadable (%s); recomputing that search", path, exc)
        return None
