"""Real training: build the architecture's network and train it with SGD + cosine."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from raynas.errors import ArgumentError
from raynas.types import Arch, Result

HYPERPARAMETERS = ("lr", "lr_scale", "weight_decay", "batch_size")
"""What a hyper-scheduler may change during training (see ``TrainingEvaluator.fit``)."""

if TYPE_CHECKING:
    import torch

    from raynas.data import DataSplits
    from raynas.spaces import SearchSpace

EpochHook = Callable[[dict[str, float], Callable[[], dict[str, Any]]], None]
"""``on_epoch(metrics, get_state)``: called after every epoch with that epoch's metrics and
a function returning a copy of the resumable training state (for checkpoints)."""


def arch_seed(seed: int, arch: Arch) -> int:
    """The seed of one architecture's training: the same arch and seed, the same run."""
    return int(np.random.SeedSequence([seed, *arch]).generate_state(1)[0] % (2**31))


class TrainingEvaluator:
    """Train each architecture on a dataset and score it on the validation split.

    The network is ``space.build(arch, num_classes, in_channels, input_shape=...)`` (a
    cell space's, or a user builder's for a :class:`~raynas.spaces.CustomSpace`); it is
    trained
    with SGD (Nesterov momentum) and a cosine learning-rate schedule. After every
    epoch it measures train loss, validation accuracy and test accuracy (the
    search uses validation; test is only reported). Every epoch's metrics also
    hold params (M), FLOPs (M) and, if asked, the measured inference latency (ms),
    taken once before training; a result's cost is the training wall time
    (``train_seconds``); ``compute_seconds`` is all the evaluator's own work: building
    the network, its cost and latency, training and evaluation.

    Args:
        space: The search space (it must have a network builder).
        data: Train/valid/test splits.
        epochs: Training epochs of every evaluation (:meth:`fit` takes others).
        lr: Initial learning rate.
        batch_size: Training batch size.
        weight_decay: L2 weight decay.
        momentum: SGD momentum (Nesterov).
        seed: Seeds weight init and batch order, mixed with the architecture.
        device: ``"auto"`` (CUDA when visible, else CPU), ``"cpu"`` or ``"cuda"``.
        num_threads: ``torch.set_num_threads`` for CPU training (e.g. the trial's CPUs).
        measure_latency: Measure inference latency of the trained network.
        search_metric: The metric a search optimises (a validation metric it reports:
            ``valid_acc``, ``train_loss``, ``params``, ``flops``, ``latency_ms``).
        report_metric: The metric reported for the incumbent.

    Example:
        >>> from raynas.data import load_digits
        >>> from raynas.spaces import NB201Space
        >>> space = NB201Space(channels=4, cells_per_stage=1)
        >>> ev = TrainingEvaluator(space, load_digits(input_size=8), epochs=1)
        >>> ev.evaluate([(3, 3, 3, 3, 3, 3)])[0].metrics["valid_acc"] > 10
        True
    """

    def __init__(
        self,
        space: SearchSpace,
        data: DataSplits,
        *,
        epochs: int = 4,
        lr: float = 0.1,
        batch_size: int = 64,
        weight_decay: float = 5e-4,
        momentum: float = 0.9,
        seed: int = 0,
        device: str = "auto",
        num_threads: int | None = None,
        measure_latency: bool = False,
        search_metric: str = "valid_acc",
        report_metric: str = "test_acc",
    ) -> None:
        if epochs < 1 or batch_size < 1 or lr <= 0 or weight_decay < 0:
            raise ArgumentError(
                f"need epochs >= 1, batch_size >= 1, lr > 0, weight_decay >= 0; got {epochs}, "
                f"{batch_size}, {lr}, {weight_decay}"
            )
        if device not in ("auto", "cpu", "cuda"):
            raise ArgumentError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
        if space.cell_networks and data.train_x.ndim != 4:
            raise ArgumentError(
                f"{space.name} builds convolutional cell networks for images (C, H, W); the "
                f"{data.name} data has examples of shape {data.input_shape}")
        self.space, self.data = space, data
        self.epochs, self.lr, self.batch_size = epochs, lr, batch_size
        self.weight_decay, self.momentum, self.seed = weight_decay, momentum, seed
        self.device_name, self.num_threads = device, num_threads
        self.measure_latency = measure_latency
        self.search_metric, self.report_metric = search_metric, report_metric

    # -------------------------------------------------------------- training
    def device(self) -> torch.device:
        import torch

        if self.device_name == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device_name)

    def fit(
        self,
        arch: Arch,
        epochs: int | None = None,
        on_epoch: EpochHook | None = None,
        state: dict[str, Any] | None = None,
        hyper: Mapping[str, float] | None = None,
        scheduled: bool = False,
    ) -> Result:
        """Train ``arch`` (resuming from ``state`` if given) and return its final result.

        ``hyper`` overrides ``lr``, ``weight_decay`` and ``batch_size`` (e.g. a Tune
        search over them): ``lr`` is then the cosine schedule's initial rate, and
        ``lr_scale`` (default 1) multiplies the whole schedule. With ``scheduled`` a
        hyper-scheduler owns them: they apply from this call on, also over a resumed
        ``state``. If it schedules ``lr_scale``, the cosine schedule stays and the
        learning rate from here on is the cosine schedule's times the new scale (a
        *residual* schedule: scale 1 throughout is the cosine run, exactly); otherwise
        the learning rate stays at ``hyper["lr"]`` (no cosine schedule). The values in
        force (the learning rate each epoch trained with) are reported with every epoch.
        """
        import torch
        from torch import nn

        from raynas.spaces.cost import network_cost

        epochs = epochs or self.epochs
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        device = self.device()
        seed = arch_seed(self.seed, arch)
        torch.manual_seed(seed)
        setup_start = time.perf_counter()
        data = self.data
        model = self.space.build(arch, data.num_classes, data.in_channels,
                                 input_shape=data.input_shape).to(device)
        hyper = dict(hyper or {})
        unknown = set(hyper) - set(HYPERPARAMETERS)
        if unknown:
            raise ArgumentError(f"cannot schedule {sorted(unknown)}; known: {HYPERPARAMETERS}")
        lr = float(hyper.get("lr", self.lr))
        residual = "lr_scale" in hyper
        lr_scale = float(hyper.get("lr_scale", 1.0))
        if lr_scale <= 0:
            raise ArgumentError(f"lr_scale must be > 0, got {lr_scale}")
        weight_decay = float(hyper.get("weight_decay", self.weight_decay))
        batch_size = int(hyper.get("batch_size", self.batch_size))
        optimizer = torch.optim.SGD(
            model.parameters(), lr=lr * lr_scale, momentum=self.momentum, nesterov=True,
            weight_decay=weight_decay,
        )
        schedule = (None if scheduled and not residual
                    else torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs))
        start_epoch, elapsed, compute = 0, 0.0, 0.0
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if schedule is not None and state.get("schedule") is not None:
                schedule.load_state_dict(state["schedule"])
            start_epoch, elapsed = int(state["epoch"]), float(state["train_seconds"])
            compute = float(state["metrics"].get("compute_seconds", elapsed))
        if scheduled:  # a scheduler's new values win over the resumed state's
            # the cosine schedule is chainable (each step multiplies the rate), so
            # rescaling the resumed rate makes the rest of it cosine x the new scale
            rescale = lr_scale / float(state.get("lr_scale", 1.0)) if state is not None else 1.0
            for group in optimizer.param_groups:
                group["lr"] = group["lr"] * rescale if residual else lr
                group["weight_decay"] = weight_decay
        reported = ({"lr": lr, "weight_decay": weight_decay, "batch_size": float(batch_size)}
                    if hyper else {})
        if residual:
            reported["lr_scale"] = lr_scale
        cost = network_cost(model, data.input_shape, measure=self.measure_latency,
                            any_layer=not self.space.cell_networks).as_metrics()
        compute += time.perf_counter() - setup_start
        loss_fn = nn.CrossEntropyLoss()
        metrics: dict[str, float] = dict(state["metrics"]) if state is not None else {}
        for epoch in range(start_epoch, epochs):
            start = time.perf_counter()
            if hyper:  # the learning rate this epoch trains with
                reported["lr"] = float(optimizer.param_groups[0]["lr"])
            train_loss = self._train_epoch(model, optimizer, loss_fn, device, seed + epoch,
                                           batch_size)
            if schedule is not None:
                schedule.step()
            elapsed += time.perf_counter() - start
            valid_acc = self._accuracy(model, data.valid_x, data.valid_y, device)
            test_acc = self._accuracy(model, data.test_x, data.test_y, device)
            compute += time.perf_counter() - start
            metrics = {
                "epoch": float(epoch + 1),
                "train_loss": train_loss,
                "valid_acc": valid_acc,
                "test_acc": test_acc,
                "train_seconds": elapsed,
                "compute_seconds": compute,
                **cost,
                **reported,
            }
            if on_epoch is not None:
                done = epoch + 1

                def get_state(done=done, elapsed=elapsed, metrics=metrics) -> dict[str, Any]:
                    # a copy: training goes on mutating the live tensors
                    return copy.deepcopy({
                        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict() if schedule is not None else None,
                        "epoch": done, "train_seconds": elapsed, "lr_scale": lr_scale,
                        "metrics": metrics,
                    })

                on_epoch(dict(metrics), get_state)
        return Result(metrics, cost=elapsed, fidelity=float(epochs))

    def _train_epoch(self, model, optimizer, loss_fn, device, seed: int, batch_size: int) -> float:
        import torch

        from raynas.data import augment_batch

        data = self.data
        model.train()
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(data.train_y), generator=generator)
        total, count = 0.0, 0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            x, y = data.train_x[idx], data.train_y[idx]
            if data.augment:
                x = augment_batch(x, generator)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(y)
            count += len(y)
        return total / count

    @staticmethod
    def _accuracy(model, x, y, device, batch_size: int = 512) -> float:
        import torch

        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(y), batch_size):
                logits = model(x[i : i + batch_size].to(device))
                correct += int((logits.argmax(1).cpu() == y[i : i + batch_size]).sum())
        return 100.0 * correct / len(y)

    # ------------------------------------------------------------- contract
    def evaluate(self, archs: Sequence[Arch]) -> list[Result]:
        """Train each architecture for ``epochs`` epochs.

        A failure of one architecture (e.g. out of memory) is a failed result.
        """
        results = []
        for arch in archs:
            try:
                results.append(self.fit(arch))
            except (RuntimeError, ValueError) as exc:
                results.append(Result.failed(f"{type(exc).__name__}: {exc}"))
        return results

    def describe(self) -> dict[str, Any]:
        return {
            "evaluator": "training",
            **self.data.describe(),
            "epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size,
            "weight_decay": self.weight_decay, "momentum": self.momentum, "seed": self.seed,
        }
