"""Which Ray cluster a raynas command runs on, and whether it can run the trials.

``ray.init()`` with no address joins any cluster that a ``ray start`` left running on the
machine; a search then runs on somebody else's cluster without saying so. raynas never
does that by accident: with no address it starts a new local instance, and it joins a
running cluster only when told to (``--address auto`` or ``host:port``, or
``RAY_ADDRESS``, which ``ray job submit`` sets for the jobs it runs).
"""

from __future__ import annotations

import logging
import os

from raynas.errors import ArgumentError, StartupError

logger = logging.getLogger(__name__)

LOCAL = "local"


def connect(address: str | None = None, num_cpus: int | None = None) -> str:
    """Start or join the Ray cluster; return a line saying which (also logged).

    Args:
        address: ``None``: ``$RAY_ADDRESS`` if set, else a new local instance. ``"local"``:
            a new local instance, even when a cluster runs on this machine. ``"auto"``: the
            cluster running on this machine. Otherwise ``host:port`` or ``ray://host:port``.
        num_cpus: CPUs of a new local instance (``None``: all); not for an existing cluster.

    Raises:
        StartupError: The cluster cannot be reached or started.
        ArgumentError: ``num_cpus`` with an existing cluster.

    If Ray is already initialised in this process (a test, a notebook), that instance
    is kept.
    """
    import ray

    if ray.is_initialized():
        return _describe("the Ray instance of this process", log=False)
    address = address or os.environ.get("RAY_ADDRESS") or LOCAL
    if address != LOCAL and num_cpus is not None:
        raise ArgumentError(f"--num-cpus sets up a new local Ray instance; it cannot resize the "
                            f"cluster at {address} (drop --num-cpus, or use --address local)")
    kwargs = {"logging_level": logging.WARNING, "configure_logging": False}
    if address not in (LOCAL, "auto"):
        _probe(address)
    try:
        if address == LOCAL:
            ray.init(address=LOCAL, num_cpus=num_cpus, include_dashboard=False, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any failure to start or join is a start-up failure
        what = "start a local Ray instance" if address == LOCAL else (
            f"connect to the Ray cluster at {address}")
        raise StartupError(f"cannot {what}: {type(exc).__name__}: {str(exc)[:300]}") from exc
    where = "a new local Ray instance"
    if address != LOCAL:
        gcs = ray.get_runtime_context().gcs_address
        where = f"the Ray cluster at {address}" + (f" (GCS {gcs})" if gcs != address else "")
    return _describe(where)


def _probe(address: str, timeout: float = 5.0) -> None:
    """A TCP connection to ``host:port`` first: Ray itself keeps retrying an unreachable
    cluster for minutes."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ArgumentError(f"--address: expected host:port, ray://host:port, auto or local; "
                            f"got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise StartupError(f"cannot connect to the Ray cluster at {address}: nothing answers "
                           f"there ({exc.strerror or exc})") from None


def _describe(where: str, log: bool = True) -> str:
    import ray

    resources = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    line = (f"Ray: {where} ({nodes} node{'s' if nodes != 1 else ''}, "
            f"{resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs)")
    if log:
        logger.info(line)
    return line


def largest_node(resource: str) -> float:
    """The most of ``resource`` (``"CPU"``, ``"GPU"``, a custom one) that one alive node
    of the cluster has: a trial must fit on one node."""
    import ray

    return max((float(n["Resources"].get(resource, 0)) for n in ray.nodes() if n.get("Alive")),
               default=0.0)
