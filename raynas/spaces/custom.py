"""User-defined spaces: decisions and choices given in Python or YAML.

A YAML file looks like::

    name: my_space
    decisions:
      optimizer: [sgd, adam]
      depth: [2, 4, 8]
      width: [32, 64]

Such a space has no network builder; policies and tabular or custom evaluators
work on it all the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from raynas.errors import ArgumentError
from raynas.spaces.base import Decision, SearchSpace

_RESERVED = set("|=")


class CustomSpace(SearchSpace):
    """A space made of named decisions, with strings ``|name=choice|...|``.

    Example:
        >>> spec = {"name": "toy", "decisions": {"depth": [2, 4], "act": ["relu", "gelu"]}}
        >>> space = CustomSpace.from_dict(spec)
        >>> space.from_str("|depth=4|act=relu|")
        (1, 0)
    """

    def __init__(self, name: str, decisions: Mapping[str, Sequence[Any]]) -> None:
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
        super().__init__(name, built)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> CustomSpace:
        """Build from ``{"name": ..., "decisions": {name: [choices]}}``."""
        if not isinstance(spec, Mapping) or "decisions" not in spec:
            raise ArgumentError(f"a custom space spec needs a 'decisions' mapping, got {spec!r}")
        return cls(str(spec.get("name", "custom")), spec["decisions"])

    @classmethod
    def from_yaml(cls, path: str | Path) -> CustomSpace:
        """Build from a YAML file of :meth:`from_dict`'s shape."""
        import yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"custom space file not found: {path}")
        return cls.from_dict(yaml.safe_load(path.read_text()))
