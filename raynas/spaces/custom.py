"""User-defined spaces: decisions and choices given in Python or YAML, and optionally
a network builder, so raynas trains *your* network.

A YAML file looks like::

    name: my_space
    decisions:
      depth: [2, 3, 4]
      width: [16, 32, 64]
      kernel: [3, 5]
      act: [relu, gelu]
    builder: mypkg.models:build      # optional: module:function

The builder is called as ``build(arch, num_classes, input_shape)`` with ``arch`` a
dict from decision name to the chosen value (as typed in the YAML: ints stay ints),
``num_classes`` and the shape of one example (``(C, H, W)``, ``(C, L)``, ``(F,)``),
and returns a ``torch.nn.Module`` mapping a batch to ``(batch, num_classes)`` logits.
With a builder the space trains under :class:`~raynas.evaluators.TrainingEvaluator`
like the cell spaces: Tune trials, ASHA, checkpoints, resume, MLflow, ONNX export; its
params are counted and its FLOPs measured on the built network. The builder's module
must be importable where trials run (installed, on ``PYTHONPATH``, or shipped with a
Ray ``runtime_env``).

**Conditional decisions** (the width of layer 3 only when depth >= 3) use the
always-present idiom: declare every decision, and let the builder ignore the ones the
architecture does not use (``arch["width3"]`` read only when ``arch["depth"] >= 3``).
Architectures that differ only in ignored decisions are then the same network trained
twice; to avoid that, give the space a constraint (``CustomSpace(...,
constraint=lambda arch: ...)`` in Python, where ``arch`` is the same dict) and such
duplicates are never sampled, mutated into or proposed.

Without a builder, policies and tabular or function evaluators work on the space all
the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from raynas.errors import ArgumentError, RaynasError
from raynas.spaces.base import Decision, SearchSpace
from raynas.types import Arch

_RESERVED = set("|=")


class CustomSpace(SearchSpace):
    """A space made of named decisions, with strings ``|name=choice|...|``.

    Example:
        >>> spec = {"name": "toy", "decisions": {"depth": [2, 4], "act": ["relu", "gelu"]}}
        >>> space = CustomSpace.from_dict(spec)
        >>> space.from_str("|depth=4|act=relu|")
        (1, 0)
    """

    def __init__(self, name: str, decisions: Mapping[str, Sequence[Any]],
                 builder: str | Callable[..., Any] | None = None,
                 constraint: Callable[[dict[str, Any]], bool] | None = None) -> None:
        if not isinstance(decisions, Mapping) or not decisions:
            raise ArgumentError(f"custom space {name!r}: 'decisions' must be a non-empty mapping")
        built = []
        for key, choices in decisions.items():
            if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
                raise ArgumentError(
                    f"custom space {name!r}: choices of {key!r} must be a list, got {choices!r}"
                )
            for text in [str(key), *map(str, choices)]:
                if not text or _RESERVED & set(text):
                    raise ArgumentError(
                        f"custom space {name!r}: {text!r} is empty or contains '|' or '='"
                    )
            built.append(Decision(str(key), tuple(str(c) for c in choices)))
            if len(set(map(str, choices))) != len(choices):
                raise ArgumentError(f"custom space {name!r}: {key!r} has duplicate choices")
        super().__init__(name, built)
        self.values = {str(k): tuple(v) for k, v in decisions.items()}  # as typed
        if builder is not None and not (isinstance(builder, str) or callable(builder)):
            raise ArgumentError(f"custom space {name!r}: builder must be module:function or "
                                f"a callable, got {builder!r}")
        if isinstance(builder, str):
            from raynas.data.files import load_entrypoint

            load_entrypoint(builder, f"space {name!r} builder")  # fail now, not in a trial
        self.builder = builder
        self.constraint = constraint

    def arch_dict(self, arch: Arch) -> dict[str, Any]:
        """``arch`` as ``{decision name: chosen value}`` (what a builder receives).

        Example:
            >>> space = CustomSpace("toy", {"depth": [2, 4], "act": ["relu", "gelu"]})
            >>> space.arch_dict((1, 0))
            {'depth': 4, 'act': 'relu'}
        """
        return {d.name: self.values[d.name][i] for d, i in zip(self.decisions, arch)}

    def is_valid(self, arch: Arch) -> bool:
        return self.constraint is None or bool(self.constraint(self.arch_dict(arch)))

    @property
    def constrained(self) -> bool:
        return self.constraint is not None

    def build(self, arch: Arch, num_classes: int, in_channels: int = 3,
              input_shape: tuple[int, ...] | None = None):
        """The user builder's network of ``arch`` for examples of ``input_shape``."""
        from torch import nn

        if self.builder is None:
            raise RaynasError(f"the custom space {self.name!r} has no network builder; give "
                              "it one (builder: module:function) to train its networks")
        if input_shape is None:
            raise ArgumentError(f"custom space {self.name!r}: building a network needs the "
                                "input_shape of one example")
        build = self.builder
        if isinstance(build, str):
            from raynas.data.files import load_entrypoint

            build = load_entrypoint(build, f"space {self.name!r} builder")
        model = build(self.arch_dict(self.validate(arch)), int(num_classes),
                      tuple(int(d) for d in input_shape))
        if not isinstance(model, nn.Module):
            raise ArgumentError(f"space {self.name!r} builder returned "
                                f"{type(model).__name__}, not a torch.nn.Module")
        return model

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if isinstance(self.builder, str):
            out["builder"] = self.builder
        elif self.builder is not None:
            out["builder"] = f"{self.builder.__module__}:{self.builder.__qualname__}"
        return out

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], builder: str | None = None) -> CustomSpace:
        """Build from ``{"name": ..., "decisions": {name: [choices]}, "builder": ...}``
        (``builder`` given here wins over the spec's)."""
        if not isinstance(spec, Mapping) or "decisions" not in spec:
            raise ArgumentError(f"a custom space spec needs a 'decisions' mapping, got {spec!r}")
        unknown = set(spec) - {"name", "decisions", "builder"}
        if unknown:
            raise ArgumentError(f"custom space: unknown key(s) {sorted(unknown)}; known: "
                                "name, decisions, builder")
        return cls(str(spec.get("name", "custom")), spec["decisions"],
                   builder=builder or spec.get("builder"))

    @classmethod
    def from_yaml(cls, path: str | Path, builder: str | None = None) -> CustomSpace:
        """Build from a YAML file of :meth:`from_dict`'s shape (a key given twice is an
        error)."""
        import yaml

        from raynas.files import load_yaml

        path = Path(path)
        if not path.is_file():
            raise ArgumentError(f"custom space file not found: {path}")
        try:
            spec = load_yaml(path.read_text())
        except yaml.YAMLError as exc:
            raise ArgumentError(f"{path}: not valid YAML: {exc}") from None
        try:
            return cls.from_dict(spec, builder=builder)
        except ArgumentError as exc:
            raise ArgumentError(f"{path}: {exc}") from None


def custom_space(file: str | None = None, decisions: Mapping[str, Sequence[Any]] | None = None,
                 builder: str | None = None, name: str = "custom") -> CustomSpace:
    """The config's ``space: {file: myspace.yaml, builder: mypkg.models:build}`` (or the
    decisions inline: ``space: {decisions: {depth: [2, 3]}, builder: ...}``)."""
    if (file is None) == (decisions is None):
        raise ArgumentError("a custom space needs either file (a YAML space) or decisions")
    if file is not None:
        return CustomSpace.from_yaml(file, builder=builder)
    return CustomSpace(name, decisions, builder=builder)
