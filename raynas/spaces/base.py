"""The :class:`SearchSpace` base class: decisions, validity, sampling and encoding.

A space is a list of :class:`Decision` s. An architecture picks one choice per
decision and is stored as a tuple of choice indices (:data:`raynas.types.Arch`).
Validity lives in one place, :meth:`SearchSpace.is_valid`; ``sample``, ``mutate``
and ``neighbors`` all go through it.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from raynas.errors import ArgumentError, ArgumentTypeError, RaynasError
from raynas.types import Arch

if TYPE_CHECKING:
    import torch

    from raynas.spaces.cost import Cost

_MAX_REJECTIONS = 10_000


@dataclass(frozen=True)
class Decision:
    """One decision of a space, e.g. the op on one edge of a cell.

    Attributes:
        name: Unique name within the space (``"edge_1<-0"``).
        choices: The options, as names (``"nor_conv_3x3"``).
    """

    name: str
    choices: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(str(c) for c in self.choices))
        if len(self.choices) < 1:
            raise ArgumentError(f"decision {self.name!r} needs at least one choice")
        if len(set(self.choices)) != len(self.choices):
            raise ArgumentError(f"decision {self.name!r} has duplicate choices: {self.choices}")


class SearchSpace:
    """A discrete search space.

    Subclasses set ``name`` and pass their decisions to ``__init__``; they
    override :meth:`to_str` / :meth:`from_str` for a canonical string format,
    :meth:`is_valid` for constraints, and :meth:`build` when architectures can be
    turned into networks.

    Example:
        >>> space = SearchSpace("toy", [Decision("a", ("x", "y")), Decision("b", ("u", "v", "w"))])
        >>> arch = space.sample(np.random.default_rng(0))
        >>> space.from_str(space.to_str(arch)) == arch
        True
    """

    name: str = "space"
    cell_networks: bool = False
    """Whether :meth:`build` makes a benchmark's convolutional cell networks (images in,
    any size); a user's builder takes whatever input shape its data has."""

    def __init__(self, name: str, decisions: Sequence[Decision]) -> None:
        if not decisions:
            raise ArgumentError("a search space needs at least one decision")
        names = [d.name for d in decisions]
        if len(set(names)) != len(names):
            raise ArgumentError(f"decision names must be unique, got {names}")
        self.name = name
        self.decisions: tuple[Decision, ...] = tuple(decisions)
        self.num_choices: tuple[int, ...] = tuple(len(d.choices) for d in decisions)
        self._offsets = np.concatenate([[0], np.cumsum(self.num_choices)]).astype(np.int64)

    # ----------------------------------------------------------------- basics
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_str_cache", None)  # rebuilt where it is used
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, decisions={len(self.decisions)})"

    @property
    def size(self) -> int:
        """Number of architectures, constraints ignored (the product of choice counts)."""
        return math.prod(self.num_choices)

    @property
    def encoding_size(self) -> int:
        """Length of :meth:`encode`'s one-hot vector."""
        return int(self._offsets[-1])

    def validate(self, arch: Sequence[int]) -> Arch:
        """Return ``arch`` as an :data:`Arch`, or raise ``ValueError`` saying what is wrong."""
        if type(arch) is tuple and len(arch) == len(self.num_choices):  # the common case, fast
            for a, k in zip(arch, self.num_choices):
                if type(a) is not int or not 0 <= a < k:
                    break
            else:
                if not self.constrained or self.is_valid(arch):
                    return arch
        if isinstance(arch, (str, bytes)) or not isinstance(arch, Sequence | np.ndarray):
            raise ArgumentTypeError(
                f"{self.name}: an architecture is a sequence of choice indices (ints), got "
                f"{arch!r}" + ("; parse a string with from_str" if isinstance(arch, str) else "")
            )
        bad = [a for a in arch if isinstance(a, (bool, np.bool_))
               or not isinstance(a, (numbers.Integral, np.integer))]
        if bad:
            raise ArgumentTypeError(
                f"{self.name}: choice indices must be ints, got {bad[0]!r} "
                f"({type(bad[0]).__name__}) in {list(arch)!r}"
            )
        arch = tuple(int(a) for a in arch)
        if len(arch) != len(self.decisions):
            raise ArgumentError(
                f"{self.name}: expected {len(self.decisions)} choices, got {len(arch)}: {arch}"
            )
        for decision, k, index in zip(self.decisions, self.num_choices, arch):
            if not 0 <= index < k:
                raise ArgumentError(
                    f"{self.name}: choice {index} out of range [0, {k}) for {decision.name!r}"
                )
        if not self.is_valid(arch):
            raise ArgumentError(f"{self.name}: {self.to_str(arch)!r} violates the space's constraints")
        return arch

    def is_valid(self, arch: Arch) -> bool:
        """Whether an in-range architecture satisfies the space's constraints (default: all do)."""
        return True

    @property
    def constrained(self) -> bool:
        """Whether :meth:`is_valid` can reject an in-range architecture."""
        return type(self).is_valid is not SearchSpace.is_valid

    # --------------------------------------------------------------- sampling
    def sample(self, rng: np.random.Generator) -> Arch:
        """Draw a valid architecture uniformly at random."""
        for _ in range(_MAX_REJECTIONS):
            arch = tuple(int(rng.integers(k)) for k in self.num_choices)
            if self.is_valid(arch):
                return arch
        raise RaynasError(f"{self.name}: no valid architecture in {_MAX_REJECTIONS} draws")

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """Change one random decision to another choice, keeping the result valid: a
        uniform draw from :meth:`neighbors` (for an unconstrained space without building
        the list: the same draw, the same result)."""
        if not self.constrained:
            total = sum(self.num_choices) - len(self.num_choices)
            if total > 0:
                index = int(rng.integers(total))
                for i, k in enumerate(self.num_choices):
                    if index < k - 1:  # the index-th choice of decision i other than arch[i]
                        choice = index if index < arch[i] else index + 1
                        return arch[:i] + (choice,) + arch[i + 1:]
                    index -= k - 1
        candidates = self.neighbors(arch)
        if not candidates:
            raise RaynasError(f"{self.name}: {self.to_str(arch)!r} has no valid mutation")
        return candidates[int(rng.integers(len(candidates)))]

    def neighbors(self, arch: Arch) -> list[Arch]:
        """All valid architectures that differ from ``arch`` in exactly one decision."""
        out = []
        for i, k in enumerate(self.num_choices):
            for choice in range(k):
                if choice != arch[i]:
                    other = arch[:i] + (choice,) + arch[i + 1 :]
                    if self.is_valid(other):
                        out.append(other)
        return out

    def __iter__(self) -> Iterator[Arch]:
        """Every valid architecture, in lexicographic order of choice indices."""
        for arch in itertools.product(*(range(k) for k in self.num_choices)):
            if self.is_valid(arch):
                yield arch

    def encode(self, arch: Arch) -> np.ndarray:
        """One-hot encoding: the concatenation of one one-hot block per decision."""
        out = np.zeros(self.encoding_size, dtype=np.float32)
        out[self._offsets[:-1] + np.asarray(arch, dtype=np.int64)] = 1.0
        return out

    # ---------------------------------------------------------------- strings
    def arch_str(self, arch: Arch) -> str:
        """:meth:`to_str`, remembered (up to 2**18 architectures per space): a search
        writes every evaluated architecture's string into its history."""
        cache = self.__dict__.setdefault("_str_cache", {})
        text = cache.get(arch)
        if text is None:
            if len(cache) >= 1 << 18:
                cache.clear()
            text = cache[arch] = self.to_str(arch)
        return text

    def to_str(self, arch: Arch) -> str:
        """Canonical string of ``arch`` (default ``|name=choice|...|``)."""
        parts = (f"{d.name}={d.choices[i]}" for d, i in zip(self.decisions, arch))
        return "|" + "|".join(parts) + "|"

    def string_layout(self) -> tuple[str, list[str | list[str]]] | None:
        """How :meth:`to_str` lays an architecture out, for parsing a whole column at
        once (:func:`raynas.tables.parse.parse_arch_strings`): ``(sep, parts)``, where
        the string split on ``sep`` gives ``parts`` in order, each a literal or, for the
        next decision, the token of each of its choices. ``None``: parse one by one.
        Spaces that override :meth:`to_str` override this too (or return ``None``)."""
        if type(self).to_str is not SearchSpace.to_str:
            return None
        return "|", ["", *([f"{d.name}={c}" for c in d.choices] for d in self.decisions), ""]

    def from_str(self, text: str) -> Arch:
        """Parse :meth:`to_str`'s format; raise ``ValueError`` naming what is malformed."""
        if not isinstance(text, str):
            raise ArgumentTypeError(f"{self.name}: expected an architecture string, got {type(text)}")
        body = text.strip()
        if not (body.startswith("|") and body.endswith("|")) or len(body) < 2:
            raise ArgumentError(f"{self.name}: malformed architecture string {text!r}")
        parts = body[1:-1].split("|")
        if len(parts) != len(self.decisions):
            raise ArgumentError(
                f"{self.name}: {text!r} has {len(parts)} decisions, expected {len(self.decisions)}"
            )
        arch = []
        for part, decision in zip(parts, self.decisions):
            name, sep, choice = part.partition("=")
            if not sep or name != decision.name:
                raise ArgumentError(
                    f"{self.name}: expected '{decision.name}=<choice>' in {text!r}, got {part!r}"
                )
            arch.append(self.choice_index(decision, choice))
        return self.validate(arch)

    @staticmethod
    def choice_index(decision: Decision, choice: str) -> int:
        """Index of ``choice`` in ``decision``; unknown names raise with a suggestion."""
        try:
            return decision.choices.index(choice)
        except ValueError:
            from raynas.errors import unknown_name

            raise unknown_name(f"choice for {decision.name!r}", choice, decision.choices) from None

    def arch_dict(self, arch: Arch) -> dict[str, Any]:
        """``arch`` as ``{decision name: chosen choice}`` (what a user's builder or
        training function receives; a :class:`CustomSpace` gives its typed values)."""
        return {d.name: d.choices[i] for d, i in zip(self.decisions, arch)}

    # -------------------------------------------------------------- networks
    def build(self, arch: Arch, num_classes: int, in_channels: int = 3,
              input_shape: tuple[int, ...] | None = None) -> torch.nn.Module:
        """Build the torch network of ``arch`` for inputs of ``input_shape`` (one example:
        ``(C, H, W)``, ``(C, L)``, ``(F,)``; the cell spaces need only ``in_channels``).
        Spaces without a network raise ``RaynasError``."""
        raise RaynasError(f"the {self.name!r} space has no network builder")

    def cost(
        self,
        arch: Arch,
        num_classes: int = 10,
        input_size: int = 32,
        in_channels: int = 3,
        measure_latency: bool = False,
    ) -> Cost:
        """Parameters (M), FLOPs (M multiply-adds) and optionally latency (ms) of the network."""
        from raynas.spaces.cost import network_cost

        model = self.build(self.validate(arch), num_classes=num_classes, in_channels=in_channels)
        return network_cost(model, (in_channels, input_size, input_size), measure_latency)

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (name and decisions), for logs and checkpoints."""
        return {"name": self.name, "decisions": {d.name: list(d.choices) for d in self.decisions}}
