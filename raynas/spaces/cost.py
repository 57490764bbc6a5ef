"""Model cost: parameters, FLOPs and measured latency of a torch network.

FLOPs follow NAS-Bench-201's convention: multiply-adds of convolutions and
linear layers (biases, batch norms, activations and pooling are not counted).
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from raynas.errors import ArgumentError

if TYPE_CHECKING:  # torch is imported where networks are built: a cached model needs none
    import torch
    from torch import nn

logger = logging.getLogger(__name__)
COST_CACHE_VERSION = 1  # bump when network building or FLOP counting changes
_COSTS: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # this process's cost models


@dataclass(frozen=True)
class Cost:
    """Size and speed of one network.

    Attributes:
        params: Trainable parameters, in millions.
        flops: Multiply-adds of one forward pass on one input, in millions.
        latency_ms: Median CPU/GPU forward latency of one input in milliseconds,
            or ``None`` when it was not measured.
    """

    params: float
    flops: float
    latency_ms: float | None = None

    def as_metrics(self) -> dict[str, float]:
        """The cost as result metrics (``params``, ``flops`` and ``latency_ms`` if measured)."""
        out = {"params": self.params, "flops": self.flops}
        if self.latency_ms is not None:
            out["latency_ms"] = self.latency_ms
        return out


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of conv and linear layers for one input of ``input_shape`` (C, H, W)."""
    import torch
    from torch import nn

    total = 0

    def conv_hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kernel_ops = module.kernel_size[0] * module.kernel_size[1] * module.in_channels
        total += output.numel() // output.shape[0] * kernel_ops // module.groups

    def linear_hook(module: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() // output.shape[0] * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total


def measure_latency(
    model: nn.Module, input_shape: tuple[int, ...], repeats: int = 20, warmup: int = 3
) -> float:
    """Median forward latency in ms of one input on the model's device."""
    import torch

    device = next(model.parameters(), torch.zeros(())).device
    x = torch.zeros(1, *input_shape, device=device)
    was_training = model.training
    model.eval()
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1e3)
    model.train(was_training)
    return statistics.median(times)


def count_any_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass on one input of ``input_shape``, any layers
    (``torch.utils.flop_counter``: matrix products and convolutions of any dimension,
    attention; its FLOPs are 2 per multiply-add)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    device = next(model.parameters(), torch.zeros(())).device
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2


def network_cost(model: nn.Module, input_shape: tuple[int, ...], measure: bool = False,
                 any_layer: bool = False) -> Cost:
    """:class:`Cost` of ``model`` for inputs of ``input_shape`` (one example: (C, H, W),
    ...). FLOPs count conv2d and linear layers (NAS-Bench-201's convention), or with
    ``any_layer`` every layer torch's FLOP counter knows (a user's network)."""
    flops = count_any_flops if any_layer else count_flops
    return Cost(
        params=count_params(model) / 1e6,
        flops=flops(model, input_shape) / 1e6,
        latency_ms=measure_latency(model, input_shape) if measure else None,
    )


class LinearCostModel:
    """Params and FLOPs of every architecture of a cell space, from a few builds.

    In the cell spaces (NB201, TransNAS micro, DARTS) each decision only picks the
    op of its own edge, so a network's params and FLOPs are those of the all-first-op
    network plus one independent term per decision. The model builds that network
    and one network per (decision, choice) and then prices any architecture as
    ``base + encode(arch) @ deltas``. It checks this additivity on ``check``
    random architectures at construction and raises ``ValueError`` if it fails.

    The 28 builds of an NB201 model take seconds (more on a busy machine), so the
    model of a raynas space is cached per (space, its options, classes, input size,
    channels): in the process, and as numbers in a JSON file under
    ``$RAYNAS_CACHE_DIR`` (default ``~/.cache/raynas``)``/costs/``. A file that does not
    parse or has the wrong shape is recomputed and rewritten; a cache that cannot be
    written is skipped. User spaces (:class:`~raynas.spaces.CustomSpace`) are never
    cached: their networks are the user's code, which may change between runs.

    Example:
        >>> from raynas.spaces import NB201Space
        >>> model = LinearCostModel(NB201Space(), num_classes=10, input_size=32)
        >>> round(float(model.params([(3, 3, 3, 3, 3, 3)])[0]), 4)
        1.5315
    """

    def __init__(
        self, space, num_classes: int = 10, input_size: int = 32, in_channels: int = 3,
        check: int = 3, seed: int = 0,
    ) -> None:
        self.space = space
        shape = dict(num_classes=num_classes, input_size=input_size, in_channels=in_channels)
        key = _cost_key(space, shape)
        cached = _COSTS.get(key) if key else None
        if cached is None and key:
            cached = _read_costs(key, space.encoding_size)
        if cached is not None:
            self._base, self._deltas = cached
            _COSTS[key] = cached
            return
        self._fit(space, shape, check, seed)
        if key:
            _COSTS[key] = (self._base, self._deltas)
            _write_costs(key, self._base, self._deltas)

    def _fit(self, space, shape: dict[str, int], check: int, seed: int) -> None:
        """Build the all-first-op network and one per (decision, choice); check additivity."""
        base_arch = (0,) * len(space.decisions)
        base = space.cost(base_arch, **shape)
        deltas = np.zeros((space.encoding_size, 2))
        offset = 0
        for i, k in enumerate(space.num_choices):
            for choice in range(1, k):
                arch = base_arch[:i] + (choice,) + base_arch[i + 1 :]
                cost = space.cost(arch, **shape)
                deltas[offset + choice] = (cost.params - base.params, cost.flops - base.flops)
            offset += k
        self._base = np.array([base.params, base.flops])
        self._deltas = deltas
        rng = np.random.default_rng(seed)
        for _ in range(check):
            arch = space.sample(rng)
            real = space.cost(arch, **shape)
            predicted = self._predict([arch])[0]
            if not np.allclose(predicted, [real.params, real.flops], rtol=1e-9, atol=1e-9):
                raise ArgumentError(f"{space.name}: costs are not additive over decisions")

    def _predict(self, archs) -> np.ndarray:
        encoded = np.stack([self.space.encode(a) for a in archs]).astype(np.float64)
        return self._base + encoded @ self._deltas

    def params(self, archs) -> np.ndarray:
        """Parameters (M) of each architecture."""
        return self._predict(archs)[:, 0]

    def flops(self, archs) -> np.ndarray:
        """FLOPs (M multiply-adds) of each architecture."""
        return self._predict(archs)[:, 1]

    def largest(self, metric: str) -> float:
        """The largest ``params`` or ``flops`` of any architecture of the space (exact:
        each decision takes its costliest choice independently).

        Example:
            >>> from raynas.spaces import NB201Space
            >>> round(LinearCostModel(NB201Space()).largest("params"), 4)
            1.5315
        """
        column = {"params": 0, "flops": 1}.get(metric)
        if column is None:
            raise ArgumentError(f"metric must be 'params' or 'flops', got {metric!r}")
        total, offset = self._base[column], 0
        for k in self.space.num_choices:
            total += max(0.0, self._deltas[offset : offset + k, column].max())
            offset += k
        return float(total)


def _cost_key(space, shape: dict[str, int]) -> str | None:
    """The cache key of a raynas space's cost model, or ``None`` (not cacheable)."""
    if not type(space).__module__.startswith("raynas.spaces.") or type(space).__name__ == "CustomSpace":
        return None
    from raynas import __version__

    options = {k: v for k, v in sorted(vars(space).items())
               if isinstance(v, (int, float, str, bool)) and not k.startswith("_")}
    text = json.dumps([COST_CACHE_VERSION, __version__, type(space).__qualname__,
                       space.describe(), options, shape], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _cache_file(key: str) -> Path:
    from raynas.files import cache_dir

    return cache_dir() / "costs" / f"{key}.json"


def _read_costs(key: str, encoding_size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A cached model's ``(base, deltas)``, or ``None`` if absent or unusable (JSON
    numbers only: nothing in the cache is executed)."""
    path = _cache_file(key)
    try:
        data = json.loads(path.read_text())
        base = np.asarray(data["base"], dtype=np.float64)
        deltas = np.asarray(data["deltas"], dtype=np.float64)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        logger.warning("cost cache %s is unreadable; recomputing it", path)
        return None
    if base.shape != (2,) or deltas.shape != (encoding_size, 2) or not (
            np.isfinite(base).all() and np.isfinite(deltas).all()):
        logger.warning("cost cache %s does not fit the space; recomputing it", path)
        return None
    return base, deltas


def _write_costs(key: str, base: np.ndarray, deltas: np.ndarray) -> None:
    from raynas.files import write_text

    path = _cache_file(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps({"base": base.tolist(), "deltas": deltas.tolist()}))
    except OSError as exc:
        logger.debug("cost cache %s not written: %s", path, exc)
