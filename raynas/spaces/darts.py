"""The DARTS cell space in the MANAS formulation: every edge picks one op."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from raynas.errors import ArgumentError, ArgumentTypeError
from raynas.spaces.base import Decision, SearchSpace
from raynas.types import Arch

if TYPE_CHECKING:
    from torch import nn

DARTS_OPS = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
# Nodes 0 and 1 are the cell's inputs; nodes 2..5 each take every earlier node.
DARTS_EDGES: tuple[tuple[int, int], ...] = tuple(
    (src, dst) for dst in range(2, 6) for src in range(dst)
)
CELL_TYPES = ("normal", "reduce")


class DARTSSpace(SearchSpace):
    """DARTS normal + reduction cells: 2 x 14 edges x 8 ops (``none`` included).

    As in MANAS, every edge picks exactly one op, so an architecture has 28
    choices: the 14 normal-cell edges, then the 14 reduction-cell edges.
    Strings are ``normal:|op~0|op~1|+|op~0|op~1|op~2|+...;reduce:|...|``, one
    ``+``-separated group per intermediate node.

    Args:
        channels: Initial channels C of :meth:`build`'s network (stem has 3C).
        layers: Number of cells in :meth:`build`'s network.

    Example:
        >>> space = DARTSSpace()
        >>> len(space.decisions), space.num_choices[0]
        (28, 8)
    """

    ops = DARTS_OPS

    cell_networks = True

    def __init__(self, channels: int = 16, layers: int = 8) -> None:
        if layers < 3:
            raise ArgumentError(f"darts: layers must be >= 3 (two reduction cells), got {layers}")
        decisions = [
            Decision(f"{cell}_{dst}<-{src}", self.ops)
            for cell in CELL_TYPES
            for src, dst in DARTS_EDGES
        ]
        super().__init__("darts", decisions)
        self.channels = channels
        self.layers = layers

    def to_str(self, arch: Arch) -> str:
        n = len(DARTS_EDGES)
        cells = []
        for k, cell in enumerate(CELL_TYPES):
            ops = arch[k * n : (k + 1) * n]
            groups, i = [], 0
            for dst in range(2, 6):
                groups.append("|" + "|".join(f"{self.ops[ops[i + s]]}~{s}" for s in range(dst)) + "|")
                i += dst
            cells.append(f"{cell}:" + "+".join(groups))
        return ";".join(cells)

    def from_str(self, text: str) -> Arch:
        if not isinstance(text, str):
            raise ArgumentTypeError(f"darts: expected an architecture string, got {type(text).__name__}")
        cells = text.strip().split(";")
        if len(cells) != 2:
            raise ArgumentError(f"darts: malformed string {text!r}: expected 'normal:...;reduce:...'")
        arch: list[int] = []
        for cell, part in zip(CELL_TYPES, cells):
            prefix = f"{cell}:"
            if not part.startswith(prefix):
                raise ArgumentError(f"darts: expected {prefix!r} at {part[:12]!r} in {text!r}")
            groups = part[len(prefix) :].split("+")
            if len(groups) != 4:
                raise ArgumentError(f"darts: {cell} cell needs 4 nodes, got {len(groups)}")
            for dst, group in enumerate(groups, start=2):
                tokens = group.strip("|").split("|")
                if not (group.startswith("|") and group.endswith("|")) or len(tokens) != dst:
                    raise ArgumentError(f"darts: node {dst} needs {dst} inputs, got {group!r}")
                for src, token in enumerate(tokens):
                    match = re.fullmatch(r"([a-z0-9_]+)~(\d+)", token)
                    if not match or int(match[2]) != src:
                        raise ArgumentError(f"darts: expected '<op>~{src}', got {token!r}")
                    arch.append(self.choice_index(self.decisions[len(arch)], match[1]))
        return self.validate(arch)

    def build(self, arch: Arch, num_classes: int, in_channels: int = 3,
              input_shape: tuple[int, ...] | None = None) -> nn.Module:
        """The DARTS network with ``channels`` and ``layers`` given at construction."""
        from raynas.spaces.networks import DARTSNetwork

        names = [self.ops[i] for i in self.validate(arch)]
        n = len(DARTS_EDGES)
        return DARTSNetwork(
            names[:n], names[n:], list(DARTS_EDGES), num_classes, in_channels,
            channels=self.channels, layers=self.layers,
        )
