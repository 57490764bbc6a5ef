"""The MLflow client raynas logs through, with its pending queue and its replay.

* :class:`MlflowLogger` — a tree of MLflow runs in one experiment. If MLflow fails (a
  server down, a full disk), the search goes on: it warns once and appends what it
  could not send to ``<out_dir>/mlflow-pending.jsonl`` (each record with its
  experiment). A tracking server is probed once with a :data:`PROBE_SECONDS` timeout
  before the first call: one that does not answer costs seconds, and the search goes
  on with the pending file at once. For a server that answered, raynas lowers
  MLflow's HTTP retries and timeout (``MLFLOW_HTTP_REQUEST_MAX_RETRIES=2``,
  ``MLFLOW_HTTP_REQUEST_TIMEOUT=20``) unless they are set.
* :func:`replay_pending` (``raynas report --sync``) sends the pending records later,
  and can be retried safely.

The tracking URI defaults to ``sqlite:///<abs out_dir>/mlflow.db`` (artifacts in
``<out_dir>/mlartifacts``); any URI works, e.g. ``http://127.0.0.1:5000``. Credentials
in URIs are never printed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

from raynas.errors import TrackingError, WriteError, require
from raynas.files import write_text

logger = logging.getLogger(__name__)

PENDING_FILE = "mlflow-pending.jsonl"
DEFAULT_EXPERIMENT = "raynas"
PARENT_TAG = "mlflow.parentRunId"
OUT_DIR_TAG = "raynas.out_dir"
TRIAL_TAG = "raynas.trial_id"
_LOCAL = "local-"  # id prefix of runs not created in MLflow (yet)
_BATCH = 900  # MLflow accepts up to 1000 metrics per log_batch
PROBE_SECONDS = 3.0  # how long the first request to a tracking server may take


# MLflow 3's UI opens an experiment by its kind: without this tag it guesses, and an
# experiment with no traces may open on the GenAI (traces) page. raynas's experiments
# are model training ("Machine learning" in the UI).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def redact(uri: str) -> str:
    """``uri`` with any ``user:password@`` removed, for messages."""
    return re.sub(r"//[^/@]+@", "//***@", uri)


def default_uri(out_dir: str | Path) -> str:
    """The default tracking store: SQLite inside ``out_dir``, as an absolute URI."""
    return f"sqlite:///{(Path(out_dir).resolve() / 'mlflow.db').as_posix()}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def seed_sqlite_store(path: Path) -> None:
    """Start a new SQLite tracking store as a copy of an empty, migrated one.

    MLflow creates a new SQLite store by running its schema migrations, about 3.5 s,
    longer than a whole table search. The first new store of an MLflow version is
    created that way once, as ``<cache>/mlflow/empty-<version>.db`` (see
    :func:`raynas.files.cache_dir`); later new stores copy it (milliseconds). An existing
    store, or one that cannot be seeded, is left to MLflow as usual.
    """
    import shutil

    import mlflow

    from raynas.files import cache_dir

    if not path.is_absolute() or path.exists():
        return
    template = cache_dir() / "mlflow" / f"empty-{mlflow.__version__}.db"
    try:
        if not template.is_file():
            template.parent.mkdir(parents=True, exist_ok=True)
            fresh = template.with_name(f"{template.stem}.{os.getpid()}.tmp.db")
            mlflow.MlflowClient(tracking_uri=f"sqlite:///{fresh}").search_experiments()
            os.replace(fresh, template)
        path.parent.mkdir(parents=True, exist_ok=True)
        copy = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        shutil.copyfile(template, copy)
        os.replace(copy, path)
    except Exception as exc:  # noqa: BLE001 - MLflow creates the store itself then
        logger.debug("could not seed %s from %s: %s", path, template, exc)


class MlflowLogger:
    """A tree of MLflow runs in one experiment, with a warn-once local fallback.

    Every method returns normally whatever MLflow does; what could not be sent is
    appended to ``<out_dir>/mlflow-pending.jsonl``.
    """

    def __init__(self, out_dir: str | Path, tracking_uri: str | None = None,
                 experiment: str = DEFAULT_EXPERIMENT) -> None:
        self.out_dir = Path(out_dir).resolve()
        self.tracking_uri = tracking_uri or default_uri(self.out_dir)
        self.experiment = experiment
        self.failed = False
        self._client = None
        self._experiment_id: str | None = None
        self._probed: bool | None = None  # whether the server answered the first request
        self._probe_error = ""

    def _pending(self, record: dict[str, Any]) -> None:
        path = self.out_dir / PENDING_FILE
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as f:
                f.write(json.dumps({**record, "experiment": self.experiment}) + "\n")
        except OSError as exc:
            raise WriteError(path, exc) from exc

    def _try(self, record: dict[str, Any], fn, *args, **kwargs):
        """Run ``fn`` unless tracking already failed or ``record`` is about a run that
        exists only locally; otherwise (or if ``fn`` fails) keep ``record`` for replay."""
        local_run = "start" not in record and str(record.get("run_id", "")).startswith(_LOCAL)
        if not self.failed and not local_run:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - tracking must never stop a search
                self.failed = True
                logger.warning(
                    "MLflow tracking at %s failed (%s: %s); the search goes on and pending "
                    "records go to %s", redact(self.tracking_uri), type(exc).__name__,
                    redact(str(exc))[:200], self.out_dir / PENDING_FILE,
                )
        self._pending(record)
        return None

    def _probe(self) -> None:
        """One quick request to a tracking server before anything else: an unreachable
        server is found in seconds, not after minutes of MLflow's retries with back-off."""
        if self._probed is None:
            import requests

            try:
                requests.get(f"{self.tracking_uri.rstrip('/')}/health", timeout=PROBE_SECONDS)
                self._probed = True
            except requests.RequestException as exc:
                self._probed = False
                self._probe_error = f"{type(exc).__name__}: {redact(str(exc))[:200]}"
        if not self._probed:
            raise ConnectionError(f"the tracking server does not answer ({self._probe_error})")

    def _connect(self) -> None:
        mlflow = require("mlflow", "dev")
        if self.tracking_uri.startswith(("http://", "https://")):
            self._probe()
            # A server that dies mid-search should cost seconds per call, not minutes.
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        if self.tracking_uri.startswith("sqlite:///"):
            seed_sqlite_store(Path(self.tracking_uri.removeprefix("sqlite:///")))
        self._client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        experiment = self._client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            self._experiment_id = experiment.experiment_id
            if EXPERIMENT_KIND_TAG not in experiment.tags:  # never overrides a user's choice
                self._client.set_experiment_tag(self._experiment_id, EXPERIMENT_KIND_TAG,
                                                EXPERIMENT_KIND)
            return
        location = None
        if self.tracking_uri.startswith("sqlite:"):
            location = (self.out_dir / "mlartifacts").as_uri()
        self._experiment_id = self._client.create_experiment(
            self.experiment, location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})

    @property
    def experiment_id(self) -> str | None:
        """The experiment's id once connected (``None`` before, or when MLflow failed)."""
        return self._experiment_id

    @property
    def client(self):
        """The MLflow client, connected (and the experiment created) on first use."""
        if self._client is None:
            self._connect()
        return self._client

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks: drop the connection
        return {**self.__dict__, "_client": None, "_probed": None}

    def _create(self, params, tags, run_name):
        run = self.client.create_run(self._experiment_id, tags=tags, run_name=run_name)
        if params:
            self.client.log_batch(run.info.run_id, params=_params(params))
        return run.info.run_id

    def start_run(self, params: dict[str, Any], tags: dict[str, str],
                  run_name: str | None = None, parent: str | None = None) -> str:
        """Create a run (nested under ``parent`` if given); return its id."""
        tags = {**tags, **({PARENT_TAG: parent} if parent else {})}
        local = f"{_LOCAL}{uuid.uuid4().hex}"
        record = {"run_id": local, "start": {"params": params, "tags": tags, "name": run_name}}
        if parent is not None and parent.startswith(_LOCAL):
            self._pending(record)  # the parent is pending: so is its child
            return local
        run_id = self._try(record, self._create, params, tags, run_name)
        return run_id or local

    def log_metrics(self, run_id: str, metrics: list[tuple[str, float, int, int]]) -> None:
        """``(key, value, timestamp_ms, step)`` tuples, sent in batches."""
        from mlflow.entities import Metric

        for i in range(0, len(metrics), _BATCH):
            chunk = metrics[i : i + _BATCH]
            self._try({"run_id": run_id, "metrics": chunk}, lambda c=chunk: self.client.log_batch(
                run_id, metrics=[Metric(k, v, ts, s) for k, v, ts, s in c]))

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Parameters of a run that exists already (constants, logged once)."""
        self._try({"run_id": run_id, "params": params},
                  lambda: self.client.log_batch(run_id, params=_params(params)))

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """Tags of a run that exists already (set again, they change); one request."""
        self._try({"run_id": run_id, "tags": tags},
                  lambda: self.client.log_batch(run_id, tags=_tags(tags)))

    def log_artifact(self, run_id: str, path: str | Path) -> None:
        self._try({"run_id": run_id, "artifact": str(path)},
                  lambda: self.client.log_artifact(run_id, str(path)))

    def log_model(self, run_id: str, model_dir: str | Path, registered_name: str | None,
                  description: str | None = None, tags: dict[str, str] | None = None) -> None:
        """Attach a saved MLflow model folder to the run as ``model/`` and, if
        ``registered_name`` is given, register it as that model's next version (with
        ``description`` and ``tags``)."""
        self._try({"run_id": run_id, "model": str(model_dir), "register": registered_name,
                   "description": description, "tags_of_version": tags},
                  self._log_model, run_id, model_dir, registered_name, description, tags)

    def _log_model(self, run_id: str, model_dir: str | Path, registered_name: str | None,
                   description: str | None = None, tags: dict[str, str] | None = None) -> None:
        from mlflow.exceptions import MlflowException

        self.client.log_artifacts(run_id, str(model_dir), "model")
        if not registered_name:
            return
        try:
            self.client.create_registered_model(registered_name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        versions = self.client.search_model_versions(f"name = '{registered_name}'")
        if any(v.run_id == run_id for v in versions):
            return  # registered already (a replay after a partial one)
        source = f"{self.client.get_run(run_id).info.artifact_uri}/model"
        self.client.create_model_version(registered_name, source, run_id=run_id,
                                         description=description,
                                         tags={k: str(v) for k, v in (tags or {}).items()})

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self._try({"run_id": run_id, "end": status},
                  lambda: self.client.set_terminated(run_id, status))

    def reopen(self, run_id: str) -> int:
        """Mark a run of an interrupted search RUNNING again; return the last
        ``evaluations`` step it recorded (what a resumed search need not send again)."""
        self._try({"run_id": run_id, "reopen": True},
                  lambda: self.client.update_run(run_id, status="RUNNING"))
        if self.failed or run_id.startswith(_LOCAL):
            return 0
        try:
            steps = [m.step for m in self.client.get_metric_history(run_id, "evaluations")]
        except Exception:  # noqa: BLE001 - then everything is sent again (MLflow dedupes)
            return 0
        return max(steps, default=0)

    def last_value(self, run_id: str, key: str) -> float | None:
        """The value of ``key`` at the run's last step (``None``: none, or unreachable)."""
        if self.failed or run_id.startswith(_LOCAL):
            return None
        try:
            history = self.client.get_metric_history(run_id, key)
        except Exception:  # noqa: BLE001 - then the value is logged again
            return None
        return max(history, key=lambda m: (m.step, m.timestamp)).value if history else None


def find_trial_run(mlflow: MlflowLogger, parent: str, trial_id: str) -> str | None:
    """The id of the child run of ``trial_id`` under ``parent``, if MLflow has one."""
    if parent.startswith(_LOCAL):
        return None
    try:
        experiment = mlflow.client.get_experiment_by_name(mlflow.experiment)
        runs = mlflow.client.search_runs(
            [experiment.experiment_id], max_results=1,
            filter_string=f"tags.`{TRIAL_TAG}` = '{trial_id}' and tags.`{PARENT_TAG}` = '{parent}'",
        )
    except Exception:  # noqa: BLE001 - then the trial starts a new run (or records it)
        return None
    return runs[0].info.run_id if runs else None


def replay_pending(out_dir: str | Path, tracking_uri: str | None = None) -> int:
    """Send the records of ``<out_dir>/mlflow-pending.jsonl`` (and of the trials' own
    ``<out_dir>/tune/trial_*/mlflow-pending.jsonl``) to MLflow; return how many.

    Each record goes to the experiment it was made for. Records of runs that exist go to
    them; runs that were never created are created now (children under their replayed
    parent). Replay is idempotent: its progress is kept in ``mlflow-replay.json``, so a
    replay that fails midway (the server goes down again) continues where it stopped
    when it is retried, and a run it created is found again by its ``raynas.local_id``
    tag rather than created twice; a model version is registered once. The pending files
    are removed once every record is sent.
    """
    out_dir = Path(out_dir).resolve()
    paths = [p for p in [out_dir / PENDING_FILE, *sorted(out_dir.glob(f"tune/trial_*/{PENDING_FILE}"))]
             if p.exists()]
    if not paths:
        return 0
    records = [json.loads(line) for path in paths
               for line in path.read_text().splitlines() if line.strip()]
    progress_path = out_dir / REPLAY_FILE
    progress = {"done": 0, "prefix": "", "runs": {}}
    if progress_path.is_file():
        saved = json.loads(progress_path.read_text())
        if saved.get("prefix") == _digest(records[: saved.get("done", 0)]):
            progress = saved  # the same records as the replay that stopped: go on from there
    uri = tracking_uri or default_uri(out_dir)
    sinks: dict[str, MlflowLogger] = {}
    already = progress["done"]
    for i in range(already, len(records)):
        record = records[i]
        name = record.get("experiment", DEFAULT_EXPERIMENT)
        if name not in sinks:
            sinks[name] = MlflowLogger(out_dir / ".replay", uri, name)
            sinks[name].out_dir = out_dir  # a failure here must not write a second pending file
        try:
            _replay_record(sinks[name], record, progress["runs"])
        except Exception as exc:  # noqa: BLE001 - the server, a moved file: stop, keep the rest
            raise TrackingError(
                f"the sync stopped at record {i + 1} of {len(records)} ({type(exc).__name__}: "
                f"{redact(str(exc))[:200]}); {len(records) - i} record(s) stay pending; retry "
                f"with: raynas report {out_dir} --sync (records already sent are not sent "
                "twice)") from exc
        progress["done"] = i + 1
        progress["prefix"] = _digest(records[: i + 1])
        write_text(progress_path, json.dumps(progress))
    for path in paths:
        path.unlink()
    progress_path.unlink(missing_ok=True)
    return len(records) - already


REPLAY_FILE = "mlflow-replay.json"
LOCAL_ID_TAG = "raynas.local_id"


def _params(params: dict[str, Any]) -> list:
    """MLflow ``Param`` s (values as text, cut to MLflow's length limit)."""
    from mlflow.entities import Param

    return [Param(k, str(v)[:6000]) for k, v in params.items()]


def _tags(tags: dict[str, Any]) -> list:
    from mlflow.entities import RunTag

    return [RunTag(k, str(v)[:5000]) for k, v in tags.items()]


def _digest(records: list[dict[str, Any]]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()


def _replay_record(sink: MlflowLogger, record: dict[str, Any], mapping: dict[str, str]) -> None:
    """Send one pending record; ``mapping`` takes local run ids to the real ones."""
    from mlflow.entities import Metric

    run_id = mapping.get(record["run_id"], record["run_id"])
    client = sink.client
    if "start" in record:
        start = record["start"]
        tags = {**start["tags"], LOCAL_ID_TAG: record["run_id"]}
        if PARENT_TAG in tags:
            tags[PARENT_TAG] = mapping.get(tags[PARENT_TAG], tags[PARENT_TAG])
        found = client.search_runs([sink._experiment_id], max_results=1,
                                   filter_string=f"tags.`{LOCAL_ID_TAG}` = '{record['run_id']}'")
        mapping[record["run_id"]] = (found[0].info.run_id if found
                                     else sink._create(start["params"], tags, start["name"]))
    elif "metrics" in record:
        client.log_batch(run_id, metrics=[Metric(k, v, ts, s) for k, v, ts, s in record["metrics"]])
    elif "params" in record:
        client.log_batch(run_id, params=_params(record["params"]))
    elif "tags" in record:
        client.log_batch(run_id, tags=_tags(record["tags"]))
    elif "artifact" in record:
        client.log_artifact(run_id, record["artifact"])
    elif "model" in record:
        sink._log_model(run_id, record["model"], record["register"], record.get("description"),
                        record.get("tags_of_version"))
    elif "reopen" in record:
        client.update_run(run_id, status="RUNNING")
    elif "end" in record:
        client.set_terminated(run_id, record["end"])
