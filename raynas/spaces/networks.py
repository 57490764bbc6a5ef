"""Macro skeletons that turn a cell into a full network.

* :class:`CellNetwork` — NAS-Bench-201: stem, 3 stages of N cells, residual reductions.
* :class:`MacroCellNetwork` — TransNAS-Bench-101 micro: cells stacked by a macro code.
* :class:`DARTSNetwork` — DARTS: normal and reduction cells over two inputs each.
"""

from __future__ import annotations

import torch
from torch import nn

from raynas.spaces.ops import DAGCell, FactorizedReduce, ReLUConvBN, ResNetBasicBlock


class _Head(nn.Module):
    """BN-ReLU (optional), global average pooling and a linear classifier."""

    def __init__(self, c: int, num_classes: int, pre_activation: bool) -> None:
        super().__init__()
        self.lastact = (
            nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True)) if pre_activation else None
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.lastact is not None:
            x = self.lastact(x)
        return self.classifier(torch.flatten(self.pool(x), 1))


class CellNetwork(nn.Module):
    """NAS-Bench-201's network: a 16-channel stem, then ``stages`` stages of
    ``cells_per_stage`` cells at C, 2C, 4C channels joined by residual reduction
    blocks, then BN-ReLU, global pooling and a linear layer."""

    def __init__(
        self,
        ops: list[str],
        edges: list[tuple[int, int]],
        num_classes: int,
        in_channels: int = 3,
        channels: int = 16,
        cells_per_stage: int = 5,
        stages: int = 3,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = []
        c = channels
        for stage in range(stages):
            if stage > 0:
                layers.append(ResNetBasicBlock(c, 2 * c))
                c *= 2
            layers.extend(DAGCell(edges, ops, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.head = _Head(c, num_classes, pre_activation=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cells(self.stem(x)))


class MacroCellNetwork(nn.Module):
    """Cells stacked by a TransNAS-Bench-101 macro code such as ``41414``.

    Each digit is one module: 1 keeps the shape, 2 doubles the channels, 3 halves
    the resolution, 4 does both. A shape change is made by a ReLU-Conv-BN before
    the module's cell.
    """

    def __init__(
        self,
        ops: list[str],
        edges: list[tuple[int, int]],
        width: int,
        code: str,
        num_classes: int,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )
        modules: list[nn.Module] = []
        c = width
        for digit in code:
            stride = 2 if digit in "34" else 1
            c_out = 2 * c if digit in "24" else c
            if stride != 1 or c_out != c:
                modules.append(ReLUConvBN(c, c_out, 3, stride, 1))
            modules.append(DAGCell(edges, ops, c_out))
            c = c_out
        self.body = nn.Sequential(*modules)
        self.head = _Head(c, num_classes, pre_activation=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)))


class _DARTSCell(nn.Module):
    def __init__(
        self,
        ops: list[str],
        edges: list[tuple[int, int]],
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        self.preprocess0 = (
            FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1)
        )
        self.preprocess1 = ReLUConvBN(c_prev, c, 1)
        self.dag = DAGCell(edges, ops, c, num_inputs=2, output="concat", reduce_inputs=reduction)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        return self.dag(self.preprocess0(s0), self.preprocess1(s1))


class DARTSNetwork(nn.Module):
    """The DARTS network: a 3C stem, ``layers`` cells with reduction cells at 1/3
    and 2/3 of the depth, global pooling and a linear classifier."""

    def __init__(
        self,
        normal_ops: list[str],
        reduce_ops: list[str],
        edges: list[tuple[int, int]],
        num_classes: int,
        in_channels: int = 3,
        channels: int = 16,
        layers: int = 8,
    ) -> None:
        super().__init__()
        num_nodes = max(dst for _, dst in edges) - 1
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 3 * channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(3 * channels),
        )
        c_pp, c_p, c = 3 * channels, 3 * channels, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c *= 2
            ops = reduce_ops if reduction else normal_ops
            self.cells.append(_DARTSCell(ops, edges, c_pp, c_p, c, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, num_nodes * c
        self.head = _Head(c_p, num_classes, pre_activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.head(s1)
