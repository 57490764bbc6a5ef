"""Torch building blocks shared by the cell spaces (NB201, TransNAS micro, DARTS).

Imported lazily by ``SearchSpace.build`` so that ``import raynas`` stays free of torch.
"""

from __future__ import annotations

import torch
from torch import nn

from raynas.errors import ArgumentError


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv2d (no bias) -> BatchNorm2d."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The ``none`` op: outputs zeros of the right shape."""

    def __init__(self, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset stride-2 1x1 convs, concatenated."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        if c_out % 2:
            raise ArgumentError(f"FactorizedReduce needs an even c_out, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class SepConv(nn.Sequential):
    """DARTS separable conv: (ReLU, depthwise, pointwise, BN) twice."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, 1, bias=False),
            nn.BatchNorm2d(c_in),
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, 1, padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )


class DilConv(nn.Sequential):
    """DARTS dilated separable conv: ReLU, dilated depthwise, pointwise, BN."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )


class ResNetBasicBlock(nn.Module):
    """NAS-Bench-201's residual reduction block between stages (stride 2)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 2) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def make_op(name: str, c: int, stride: int = 1) -> nn.Module:
    """The op ``name`` with ``c`` channels in and out; ``stride`` 2 halves the resolution."""
    if name == "none":
        return Zero(stride)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    if name == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1, stride, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3, stride, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name in ("sep_conv_3x3", "sep_conv_5x5"):
        k = int(name[-1])
        return SepConv(c, c, k, stride, k // 2)
    if name in ("dil_conv_3x3", "dil_conv_5x5"):
        k = int(name[-1])
        return DilConv(c, c, k, stride, k - 1, 2)
    raise ArgumentError(f"unknown op {name!r}")


class DAGCell(nn.Module):
    """A cell DAG: node ``i`` is the sum of ``op(j -> i)(node j)`` over its in-edges.

    Args:
        edges: ``(src, dst)`` pairs in the order of ``ops``.
        ops: Op name per edge.
        c: Channels of every node.
        num_inputs: Nodes fed from outside (1 for NB201, 2 for DARTS).
        output: ``"last"`` returns the last node (NB201); ``"concat"`` concatenates
            the intermediate nodes along channels (DARTS).
        reduce_inputs: Stride-2 the edges leaving input nodes (DARTS reduction cells).
    """

    def __init__(
        self,
        edges: list[tuple[int, int]],
        ops: list[str],
        c: int,
        num_inputs: int = 1,
        output: str = "last",
        reduce_inputs: bool = False,
    ) -> None:
        super().__init__()
        self.edges = list(edges)
        self.c, self.reduce_inputs = c, reduce_inputs  # a supernet rebuilds the edges' ops
        self.num_inputs = num_inputs
        self.num_nodes = max(dst for _, dst in edges) + 1
        self.output = output
        self.ops = nn.ModuleList(
            make_op(op, c, 2 if reduce_inputs and src < num_inputs else 1)
            for (src, _), op in zip(edges, ops)
        )

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = list(inputs)
        for dst in range(self.num_inputs, self.num_nodes):
            total = None
            for (src, d), op in zip(self.edges, self.ops):
                if d != dst:
                    continue
                out = op(nodes[src])
                total = out if total is None else total + out
            nodes.append(total)
        if self.output == "concat":
            return torch.cat(nodes[self.num_inputs :], dim=1)
        return nodes[-1]
