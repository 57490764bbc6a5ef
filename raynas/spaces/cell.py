"""Four-node cell spaces: NAS-Bench-201 and TransNAS-Bench-101 (micro).

Both cells are DAGs over nodes 0..3 with the six edges
``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2`` (the order of an :data:`~raynas.types.Arch`),
one op per edge. They differ in their ops, their string format and their macro
skeleton.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from raynas.errors import ArgumentError, ArgumentTypeError
from raynas.spaces.base import Decision, SearchSpace
from raynas.types import Arch

if TYPE_CHECKING:
    from torch import nn

CELL_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
TRANSNAS_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")


def _cell_decisions(ops: tuple[str, ...]) -> list[Decision]:
    return [Decision(f"edge_{dst}<-{src}", ops) for src, dst in CELL_EDGES]


class NB201Space(SearchSpace):
    """The NAS-Bench-201 cell: 6 edges x 5 ops, 15,625 architectures.

    Strings use the benchmark's own format,
    ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, where ``op~j`` on the i-th group is
    the op of edge ``i <- j``.

    Example:
        >>> space = NB201Space()
        >>> arch = space.from_str("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|")
        >>> arch
        (3, 0, 1, 0, 0, 4)
        >>> space.to_str(arch).startswith("|nor_conv_3x3~0|+")
        True
    """

    ops = NB201_OPS
    _TOKEN = re.compile(r"^(?P<op>[a-z0-9_]+)~(?P<src>\d+)$")
    _TOKENS = {f"{op}~{src}": i for i, op in enumerate(NB201_OPS) for src in range(3)}

    cell_networks = True

    def __init__(self, channels: int = 16, cells_per_stage: int = 5) -> None:
        """``channels`` and ``cells_per_stage`` size :meth:`build`'s network; the
        defaults are the benchmark's (16 and 5)."""
        if channels < 1 or cells_per_stage < 1:
            raise ArgumentError(
                f"nb201: channels and cells_per_stage must be >= 1, got {channels}, {cells_per_stage}"
            )
        super().__init__("nb201", _cell_decisions(self.ops))
        self.channels = channels
        self.cells_per_stage = cells_per_stage

    def describe(self) -> dict:
        return {**super().describe(), "channels": self.channels,
                "cells_per_stage": self.cells_per_stage}

    def to_str(self, arch: Arch) -> str:
        groups, i = [], 0
        for dst in (1, 2, 3):
            tokens = [f"{self.ops[arch[i + src]]}~{src}" for src in range(dst)]
            groups.append("|" + "|".join(tokens) + "|")
            i += dst
        return "+".join(groups)

    def string_layout(self) -> tuple[str, list[str | list[str]]]:
        """``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` split on ``|``."""
        parts: list[str | list[str]] = [""]
        for dst in (1, 2, 3):
            if dst > 1:
                parts.append("+")
            parts += [[f"{op}~{src}" for op in self.ops] for src in range(dst)]
        return "|", [*parts, ""]

    def from_str(self, text: str) -> Arch:
        if not isinstance(text, str):
            raise ArgumentTypeError(f"nb201: expected an architecture string, got {type(text).__name__}")
        groups = text.strip().split("+")
        if len(groups) != 3:
            raise ArgumentError(f"nb201: malformed string {text!r}: expected 3 '+'-separated nodes")
        arch: list[int] = []
        for dst, group in enumerate(groups, start=1):
            if not (group.startswith("|") and group.endswith("|")):
                raise ArgumentError(f"nb201: malformed node {group!r} in {text!r}")
            tokens = group[1:-1].split("|")
            if len(tokens) != dst:
                raise ArgumentError(
                    f"nb201: node {dst} needs {dst} inputs, got {len(tokens)} in {text!r}"
                )
            for src, token in enumerate(tokens):
                op_index = self._TOKENS.get(token)
                if op_index is None or not token.endswith(f"~{src}"):
                    arch.append(self._parse_token(token, src, len(arch), text))
                else:
                    arch.append(op_index)
        return self.validate(arch)

    def _parse_token(self, token: str, src: int, edge: int, text: str) -> int:
        match = self._TOKEN.match(token)
        if not match or int(match["src"]) != src:
            raise ArgumentError(f"nb201: expected '<op>~{src}', got {token!r} in {text!r}")
        try:
            return self.choice_index(self.decisions[edge], match["op"])
        except ValueError as exc:
            raise ArgumentError(f"nb201: {exc} (in {text!r})") from None

    def graph_key(self, arch: Arch) -> str:
        """The cell's computation graph, the same for isomorphic cells: ``none`` edges
        dropped, then every node that the input does not reach or that does not reach
        the output (its edges compute nothing the output sees), and nodes 1 and 2
        swapped when no edge joins them (the graph is then symmetric in them). A cell
        whose output is always zero is ``"zero"``.

        Example:
            >>> space = NB201Space()
            >>> a = space.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")
            >>> b = space.from_str("|none~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|none~1|skip_connect~2|")
            >>> c = space.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|")
            >>> space.graph_key(a) == space.graph_key(b) != space.graph_key(c)
            True
        """
        arch = self.validate(arch)
        edges = {(src, dst): self.ops[op] for (src, dst), op in zip(CELL_EDGES, arch)
                 if self.ops[op] != "none"}
        reached, reaching = {0}, {3}
        for dst in (1, 2, 3):
            if any((src, dst) in edges for src in reached):
                reached.add(dst)
        for src in (2, 1, 0):
            if any((src, dst) in edges for dst in list(reaching)):
                reaching.add(src)
        live = reached & reaching
        kept = sorted((s, d, op) for (s, d), op in edges.items() if s in live and d in live)
        if 0 not in live:
            return "zero"
        if not any((s, d) == (1, 2) for s, d, _ in kept):
            swap = {0: 0, 1: 2, 2: 1, 3: 3}
            kept = min(kept, sorted((swap[s], swap[d], op) for s, d, op in kept))
        return ";".join(f"{s}>{d}:{op}" for s, d, op in kept)

    def build(self, arch: Arch, num_classes: int, in_channels: int = 3,
              input_shape: tuple[int, ...] | None = None) -> nn.Module:
        """The benchmark's network: 16-channel stem, 3 stages x 5 cells, residual reductions."""
        from raynas.spaces.networks import CellNetwork

        ops = [self.ops[i] for i in self.validate(arch)]
        return CellNetwork(
            ops, list(CELL_EDGES), num_classes, in_channels,
            channels=self.channels, cells_per_stage=self.cells_per_stage,
        )


class TransNASMicroSpace(SearchSpace):
    """TransNAS-Bench-101's micro (cell-level) space: 6 edges x 4 ops, 4,096 architectures.

    Strings use the benchmark's format ``<macro>-<cell>``, e.g. ``64-41414-3_13_333``:
    the cell part lists the op index of each node's input edges, nodes separated
    by ``_`` (0 ``none``, 1 ``skip_connect``, 2 ``nor_conv_1x1``, 3 ``nor_conv_3x3``).
    The macro part ``64-41414`` is the base width and one digit per module:
    1 keeps the shape, 2 doubles the channels, 3 halves the resolution, 4 does both.

    Example:
        >>> TransNASMicroSpace().from_str("64-41414-3_13_333")
        (3, 1, 3, 3, 3, 3)
    """

    ops = TRANSNAS_OPS

    cell_networks = True

    def __init__(self, macro: str = "64-41414") -> None:
        if not re.fullmatch(r"\d+-[1-4]+", macro):
            raise ArgumentError(f"transnas_micro: macro must look like '64-41414', got {macro!r}")
        super().__init__("transnas_micro", _cell_decisions(self.ops))
        self.macro = macro

    def to_str(self, arch: Arch) -> str:
        a = arch
        return f"{self.macro}-{a[0]}_{a[1]}{a[2]}_{a[3]}{a[4]}{a[5]}"

    def from_str(self, text: str) -> Arch:
        if not isinstance(text, str):
            raise ArgumentTypeError(f"transnas_micro: expected a string, got {type(text).__name__}")
        match = re.fullmatch(r"(?P<macro>\d+-\d+)-(?P<a>\d)_(?P<b>\d\d)_(?P<c>\d\d\d)", text.strip())
        if not match:
            raise ArgumentError(
                f"transnas_micro: malformed string {text!r}; expected e.g. '{self.macro}-3_13_333'"
            )
        if match["macro"] != self.macro:
            raise ArgumentError(
                f"transnas_micro: macro {match['macro']!r} in {text!r} differs from the "
                f"space's {self.macro!r}"
            )
        return self.validate([int(c) for c in match["a"] + match["b"] + match["c"]])

    def build(self, arch: Arch, num_classes: int, in_channels: int = 3,
              input_shape: tuple[int, ...] | None = None) -> nn.Module:
        """The micro cell stacked by the macro code, then global pooling and a linear head."""
        from raynas.spaces.networks import MacroCellNetwork

        ops = [self.ops[i] for i in self.validate(arch)]
        width, code = self.macro.split("-")
        return MacroCellNetwork(ops, list(CELL_EDGES), int(width), code, num_classes, in_channels)
