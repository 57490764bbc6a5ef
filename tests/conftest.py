"""Shared fixtures. The NB201 table is ``$RAYNAS_NB201_TABLE`` when set (any table of
the shared schema), else the one shipped with raynas (``raynas.tables.NB201_TABLE``)."""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from raynas.search.policy import Policy

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# The cost-model cache of this test session (its subprocesses and Ray workers inherit it),
# not the user's ~/.cache/raynas.
os.environ.setdefault("RAYNAS_CACHE_DIR", tempfile.mkdtemp(prefix="raynas-test-cache-"))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="module")
def ray_local():
    """A local 2-CPU Ray instance for one test module, without the dashboard."""
    import logging

    import ray

    # address="local": a new instance even when a cluster runs on this machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             configure_logging=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def table_path() -> Path:
    from raynas.tables import default_table

    path = default_table()
    if not path.is_file():
        pytest.fail(f"NB201 table not found at {path}; set RAYNAS_NB201_TABLE")
    return path


@pytest.fixture(scope="session")
def nb201_table(table_path):
    from raynas.tables import BenchmarkTable

    return BenchmarkTable.load(table_path)


@pytest.fixture(scope="session")
def cifar10(nb201_table):
    from raynas.evaluators import TabularEvaluator

    return TabularEvaluator(nb201_table, "cifar10")


def write_cifar_batch(path: Path, n: int, rng, label_key: str = "labels", classes: int = 10):
    """Write a tiny CIFAR python-version batch file (random images)."""
    batch = {
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        label_key.encode(): rng.integers(0, classes, n).tolist(),
    }
    path.write_bytes(pickle.dumps(batch, protocol=2))


def write_cifar10(folder: Path, train_per_batch: int = 8, test: int = 8, seed: int = 0) -> Path:
    """A tiny CIFAR-10 folder: data_batch_1..5 and test_batch."""
    rng = np.random.default_rng(seed)
    for i in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{i}", train_per_batch, rng)
    write_cifar_batch(folder / "test_batch", test, rng)
    return folder


# ------------------------------------------------ real servers: a Ray head, an MLflow server
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def free_port():
    """A function returning a free TCP port on 127.0.0.1."""
    return _free_port


def _ray_env() -> dict[str, str]:
    """Every Ray process and client of these tests: no token auth on loopback (Ray ≥ 2.59
    turns it on once a token file exists), no usage stats, this venv's `raynas` on PATH."""
    env = dict(os.environ)
    env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0",
               RAY_ENABLE_UV_RUN_RUNTIME_ENV="0", MPLBACKEND="Agg",
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture
def ray_env() -> dict[str, str]:
    return _ray_env()


@pytest.fixture
def user_code_env():
    """A function: the environment of a ``raynas`` command run on a user's own code in
    ``folder`` (its modules on ``PYTHONPATH``, as the README tells users; a trust key of
    that folder's), with ``extra`` variables."""

    def env(folder, **extra: str) -> dict[str, str]:
        base = _ray_env()
        path = os.pathsep.join(p for p in (str(folder), base.get("PYTHONPATH", "")) if p)
        return {**base, "RAYNAS_TRUST_KEY": str(Path(folder) / "trust-key"),
                "PYTHONPATH": path, **extra}

    return env


@dataclass(frozen=True)
class Head:
    """A running head node: its jobs API (dashboard) and its GCS address (``--address``)."""

    dashboard: str
    gcs: str


def _stop_head(head: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(head.pid, sig)
        except ProcessLookupError:
            break
        try:
            head.wait(grace)
            os.killpg(head.pid, signal.SIGKILL)  # children outlive the `ray start` process
        except (subprocess.TimeoutExpired, ProcessLookupError):
            continue
        break


class _PortTaken(Exception):
    """``ray start --head`` lost a port it was given to another process."""


@pytest.fixture
def head_node(tmp_path):
    """A real head node (`ray start --head`) on 127.0.0.1 with the dashboard (jobs API) on
    free ports; its whole process group is killed afterwards (`ray stop` would also stop
    other Ray instances of this machine). A port found free can be taken by another
    process (one of the head's own components included) before the head binds it: then
    the head is started again on other ports, up to three times."""
    import ray

    if ray.is_initialized():  # a driver left over from an earlier test would connect here
        ray.shutdown()
    for attempt in range(3):
        dashboard, port = _free_port(), _free_port()
        command = [
            str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
            f"--port={port}", f"--ray-client-server-port={_free_port()}",
            f"--dashboard-port={dashboard}", "--dashboard-host=127.0.0.1",
            "--include-dashboard=true", "--num-cpus=2", "--object-store-memory=200000000",
            "--disable-usage-stats",
        ]
        path = tmp_path / f"head-{attempt}.log"
        log = path.open("w")
        head = subprocess.Popen(command, env=_ray_env(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        address = f"http://127.0.0.1:{dashboard}"
        try:
            _wait_for_jobs_api(address, head, path, retry_taken_port=attempt < 2)
        except _PortTaken:
            _stop_head(head)
            log.close()
            continue
        except BaseException:
            _stop_head(head)
            log.close()
            raise
        break
    try:
        yield Head(address, f"127.0.0.1:{port}")
    finally:
        _stop_head(head)
        log.close()


def _wait_for_jobs_api(address: str, head: subprocess.Popen, log: Path, timeout: float = 120,
                       retry_taken_port: bool = False) -> None:
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if head.poll() is not None:
            if retry_taken_port and "address already in use" in log.read_text():
                raise _PortTaken(log)
            pytest.fail(f"ray start --head exited with {head.returncode}:\n{log.read_text()[-3000:]}")
        try:
            JobSubmissionClient(address).list_jobs()
            return
        except Exception:
            time.sleep(1)
    pytest.fail(f"the jobs API at {address} did not answer within {timeout:.0f} s")


class MlflowServer:
    """A real ``mlflow server`` process on 127.0.0.1 with a SQLite store in ``folder``."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port, self.uri = folder, port, f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
             "--backend-store-uri", f"sqlite:///{folder.resolve()}/server.db",
             "--artifacts-destination", str(folder.resolve() / "artifacts"), "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
            if self.proc.poll() is not None:
                raise RuntimeError("mlflow server exited at start-up")
        self.proc.kill()
        raise RuntimeError("mlflow server did not start in 120 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def mlflow_server():
    """Start real MLflow servers: ``mlflow_server(folder, port)``; all stop afterwards."""
    started: list[MlflowServer] = []

    def start(folder: Path, port: int) -> MlflowServer:
        started.append(MlflowServer(folder, port))
        return started[-1]

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.stop()


class OnlyFirst(Policy):
    """A converged (or broken) third-party policy: it proposes one architecture forever."""

    name = "only-first"

    def ask(self, n=1):
        return [self.space.from_str("|x=a|")]

    def tell(self, archs, results):
        pass
