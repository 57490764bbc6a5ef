"""Weight-sharing supernets: every architecture of a cell space is a path through one network.

* :class:`Supernet` — ``space.build`` with every edge's op replaced by a
  :class:`ChoiceOp` holding all candidate ops. In ``sampled`` mode only the chosen
  op of each edge runs forward and backward (MANAS: memory O(N) in the number of
  edges); in ``mixed`` mode every op runs, weighted by a softmax over
  architecture parameters (the DARTS baseline: memory O(N·K)).
* :class:`SupernetEvaluator` — an evaluator whose ``evaluate(arch)`` fine-tunes the
  shared weights for ``steps`` SGD steps on that architecture's path, writes them
  back, and returns the path's validation accuracy (MANAS's reward, after its step
  5; NPG-NAS's "continuously fine-tuned pre-trained shared model"), its test
  accuracy and the stand-alone network's params/FLOPs. ``pretrain_steps`` first
  trains the supernet on uniformly sampled paths (one-shot pre-training).
* MANAS's Algorithm 1 with any policy is a :class:`~raynas.search.Search` over a
  :class:`SupernetEvaluator` (sample, train the path, reward the agents), with the
  same :class:`~raynas.search.SearchResult`, checkpoints and tracking as any search
  (``evaluator: {kind: supernet}`` in a config); a MANAS policy's derived
  architecture is its most likely one (:meth:`~policies.manas.MANAS.most_likely`).
* :func:`run_mixed_search` — the DARTS baseline (first order): alternate SGD steps on
  the mixed supernet's weights (training batches) and Adam steps on its alphas
  (validation batches); the derived architecture is the largest alpha per edge.

Cell spaces only (NB201, TransNAS micro, DARTS): the network's cells must be
:class:`~raynas.spaces.ops.DAGCell` s. In DARTS, reduction cells take the second
half of the decisions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from raynas.errors import ArgumentError
from raynas.spaces.ops import DAGCell, make_op
from raynas.types import Arch, Result


class ChoiceOp(nn.Module):
    """All candidate ops of one edge; runs the chosen one, or a weighted mixture."""

    def __init__(self, candidates: Sequence[nn.Module], decision: int) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(candidates)
        self.decision = decision
        self.choice = 0
        self.weights: torch.Tensor | None = None  # mixed mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weights is None:
            return self.candidates[self.choice](x)
        return sum(w * op(x) for w, op in zip(self.weights, self.candidates))


class Supernet(nn.Module):
    """Every architecture of ``space`` as a path through one network (see the module doc).

    Args:
        space: A cell space (NB201, TransNAS micro or DARTS).
        num_classes: Classifier outputs.
        in_channels: Input channels.
        mode: ``sampled`` (one op per edge runs) or ``mixed`` (all ops, softmax-weighted
            by :attr:`alphas`, one row per decision).
    """

    def __init__(self, space, num_classes: int, in_channels: int = 3, mode: str = "sampled") -> None:
        super().__init__()
        if mode not in ("sampled", "mixed"):
            raise ArgumentError(f"mode must be 'sampled' or 'mixed', got {mode!r}")
        self.space, self.mode = space, mode
        self.net = space.build(tuple(0 for _ in space.num_choices), num_classes, in_channels)
        names = space.decisions[0].choices
        self.choice_ops: list[ChoiceOp] = []
        for cell in (m for m in self.net.modules() if isinstance(m, DAGCell)):
            offset = len(cell.edges) if cell.reduce_inputs else 0
            for j, (src, _) in enumerate(cell.edges):
                stride = 2 if cell.reduce_inputs and src < cell.num_inputs else 1
                op = ChoiceOp([make_op(name, cell.c, stride) for name in names], offset + j)
                cell.ops[j] = op
                self.choice_ops.append(op)
        if not self.choice_ops:
            raise ArgumentError(f"{space.name}: no DAG cells to share weights in")
        self.alphas = nn.Parameter(1e-3 * torch.randn(len(space.num_choices), len(names)),
                                   requires_grad=mode == "mixed")

    def set_arch(self, arch: Arch) -> None:
        """Route every edge through the op ``arch`` chooses (sampled mode)."""
        arch = self.space.validate(arch)
        for op in self.choice_ops:
            op.choice, op.weights = arch[op.decision], None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "mixed":
            weights = torch.softmax(self.alphas, dim=-1)
            for op in self.choice_ops:
                op.weights = weights[op.decision]
        return self.net(x)

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name != "alphas"]

    def derived(self) -> Arch:
        """The mixed supernet's architecture: the largest alpha per decision."""
        return tuple(int(i) for i in self.alphas.argmax(dim=-1))


class SupernetEvaluator:
    """Score architectures as paths of a shared, continuously fine-tuned supernet.

    ``evaluate([arch])`` trains the shared weights for ``steps`` SGD steps on
    ``arch``'s path (training batches continue across calls; the weights stay
    shared, so every evaluation fine-tunes the model the next one starts from), then
    measures that path's validation accuracy and loss (``valid_acc``,
    ``valid_loss``: the search metric) and test accuracy (``test_acc``: reported
    only), plus the stand-alone network's ``params`` and ``flops`` (M), so
    multi-objective policies can trade accuracy for size. Deterministic from
    ``seed`` and the sequence of calls.

    Args:
        space: A cell space.
        data: Train/valid/test splits.
        steps: SGD steps per evaluation (50 in NPG-NAS's fine-tuning).
        pretrain_steps: One-shot pre-training before the first evaluation: this many
            SGD steps, each on a uniformly sampled path.
        lr, momentum, weight_decay, batch_size: The shared weights' SGD.
        seed: Seeds the weights, the batch order and the pre-training paths.
        search_metric, report_metric: What a search optimises and reports (any metric
            above; default ``valid_acc`` and ``test_acc``).
    """

    def __init__(self, space, data, *, steps: int = 10, pretrain_steps: int = 0,
                 lr: float = 0.05, momentum: float = 0.9, weight_decay: float = 3e-4,
                 batch_size: int = 64, seed: int = 0, search_metric: str = "valid_acc",
                 report_metric: str = "test_acc") -> None:
        from raynas.spaces.cost import LinearCostModel

        if steps < 1 or batch_size < 1 or pretrain_steps < 0:
            raise ArgumentError("need steps >= 1, batch_size >= 1 and pretrain_steps >= 0")
        torch.manual_seed(seed)
        self.search_metric, self.report_metric = search_metric, report_metric
        self.space, self.data, self.steps, self.batch_size = space, data, steps, batch_size
        self.pretrain_steps = pretrain_steps
        self.supernet = Supernet(space, data.num_classes, data.in_channels)
        self.optimizer = torch.optim.SGD(self.supernet.weight_parameters(), lr=lr,
                                         momentum=momentum, weight_decay=weight_decay)
        self.rng = np.random.default_rng(seed)
        self._order, self._cursor = self.rng.permutation(len(data.train_y)), 0
        self.evaluations = 0
        self.pretrained = pretrain_steps == 0
        self.costs = LinearCostModel(space, data.num_classes, data.input_size, data.in_channels)

    def pretrain(self) -> float:
        """One-shot pre-training (``pretrain_steps`` steps on uniformly sampled paths);
        the mean training loss. Runs once; later calls return 0."""
        if self.pretrained:
            return 0.0
        losses = [self._sgd_step(tuple(int(self.rng.integers(k)) for k in self.space.num_choices))
                  for _ in range(self.pretrain_steps)]
        self.pretrained = True
        return float(np.mean(losses))

    def state_dict(self) -> dict[str, Any]:
        """Everything the next evaluation depends on: weights, optimiser, batch order."""
        return {"supernet": self.supernet.state_dict(), "optimizer": self.optimizer.state_dict(),
                "rng": json.dumps(self.rng.bit_generator.state),
                "order": torch.as_tensor(self._order),
                "cursor": self._cursor, "evaluations": self.evaluations,
                "pretrained": self.pretrained}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.supernet.load_state_dict(state["supernet"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = json.loads(state["rng"])
        self._order, self._cursor = np.asarray(state["order"]), int(state["cursor"])
        self.evaluations, self.pretrained = int(state["evaluations"]), bool(state["pretrained"])

    def save(self, path) -> None:
        """Write :meth:`state_dict` to ``path`` (atomically)."""
        from pathlib import Path

        path = Path(path)
        tmp = path.with_suffix(".tmp")
        torch.save(self.state_dict(), tmp)
        tmp.replace(path)

    def load(self, path) -> None:
        """Restore what :meth:`save` wrote (``weights_only``: no pickled code runs)."""
        self.load_state_dict(torch.load(path, weights_only=True))

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cursor + self.batch_size > len(self._order):
            self._order, self._cursor = self.rng.permutation(len(self.data.train_y)), 0
        idx = torch.as_tensor(self._order[self._cursor : self._cursor + self.batch_size])
        self._cursor += self.batch_size
        return self.data.train_x[idx], self.data.train_y[idx]

    def _sgd_step(self, arch: Arch) -> float:
        self.supernet.set_arch(arch)
        self.supernet.train()
        x, y = self._batch()
        loss = nn.functional.cross_entropy(self.supernet(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def train_path(self, arch: Arch) -> float:
        """``steps`` SGD steps on ``arch``'s path; the mean training loss."""
        return float(np.mean([self._sgd_step(arch) for _ in range(self.steps)]))

    @torch.no_grad()
    def validate(self, arch: Arch, split: str = "valid") -> tuple[float, float]:
        """Accuracy (%) and loss of ``arch``'s path on ``split`` (``valid`` or ``test``)."""
        x, y = getattr(self.data, f"{split}_x"), getattr(self.data, f"{split}_y")
        self.supernet.set_arch(arch)
        self.supernet.eval()
        logits = self.supernet(x)
        loss = nn.functional.cross_entropy(logits, y).item()
        return (logits.argmax(1) == y).float().mean().item() * 100, loss

    def evaluate(self, archs: Sequence[Arch]) -> list[Result]:
        self.pretrain()
        results = []
        for arch in archs:
            start = time.perf_counter()
            train_loss = self.train_path(arch)
            valid_acc, valid_loss = self.validate(arch)
            test_acc, _ = self.validate(arch, "test")
            self.evaluations += 1
            results.append(Result({
                "valid_acc": valid_acc, "valid_loss": valid_loss, "test_acc": test_acc,
                "train_loss": train_loss, "params": float(self.costs.params([arch])[0]),
                "flops": float(self.costs.flops([arch])[0]),
            }, cost=time.perf_counter() - start))
        return results

    def describe(self) -> dict[str, Any]:
        return {"evaluator": "supernet", "space": self.space.name, "steps": self.steps,
                "pretrain_steps": self.pretrain_steps, "batch_size": self.batch_size,
                **self.data.describe()}


def run_mixed_search(space, data, steps: int, *, batch_size: int = 64, lr: float = 0.05,
                     alpha_lr: float = 3e-3, seed: int = 0, retrain=None) -> dict[str, Any]:
    """First-order DARTS on the mixed-op supernet for ``steps`` weight/alpha steps.

    Returns ``{"derived": arch string, "valid_acc": [...] (the mixture's validation
    accuracy after each step), "retrained": metrics | None}``.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = Supernet(space, data.num_classes, data.in_channels, mode="mixed")
    weights = torch.optim.SGD(net.weight_parameters(), lr=lr, momentum=0.9, weight_decay=3e-4)
    alphas = torch.optim.Adam([net.alphas], lr=alpha_lr, betas=(0.5, 0.999), weight_decay=1e-3)
    accuracies = []
    for _ in range(steps):
        for x_all, y_all, optimizer in ((data.train_x, data.train_y, weights),
                                        (data.valid_x, data.valid_y, alphas)):
            idx = torch.as_tensor(rng.choice(len(y_all), size=min(batch_size, len(y_all)),
                                             replace=False))
            net.train()
            loss = nn.functional.cross_entropy(net(x_all[idx]), y_all[idx])
            weights.zero_grad(set_to_none=True)
            alphas.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            net.eval()
            logits = net(data.valid_x)
            accuracies.append((logits.argmax(1) == data.valid_y).float().mean().item() * 100)
    derived = net.derived()
    retrained = dict(retrain.evaluate([derived])[0].metrics) if retrain is not None else None
    return {"derived": space.to_str(derived), "valid_acc": accuracies, "retrained": retrained}
