"""Search spaces: what a valid architecture is, and how to sample, mutate, encode and build it.

Registered spaces (:func:`get_space`): ``nb201``, ``darts``, ``transnas_micro``, and
``custom`` (a config's ``space: {file: myspace.yaml, builder: mypkg.models:build}``).
User-defined spaces come from :class:`CustomSpace` (Python or YAML), with an optional
network builder of the user's.

Example:
    >>> from raynas.spaces import get_space
    >>> get_space("nb201").size
    15625
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from raynas.errors import unknown_name
from raynas.spaces.base import Decision, SearchSpace
from raynas.spaces.cell import NB201Space, TransNASMicroSpace
from raynas.spaces.custom import CustomSpace, custom_space
from raynas.spaces.darts import DARTSSpace

SPACES: dict[str, Callable[[], SearchSpace]] = {
    "nb201": NB201Space,
    "darts": DARTSSpace,
    "transnas_micro": TransNASMicroSpace,
    "custom": custom_space,  # space: {file: myspace.yaml, builder: mypkg.models:build}
}


def get_space(name: str) -> SearchSpace:
    """A registered space by name, or a :class:`CustomSpace` from a ``.yaml``/``.yml`` path."""
    if name.endswith((".yaml", ".yml")):
        return CustomSpace.from_yaml(Path(name))
    if name not in SPACES or name == "custom":
        raise unknown_name("search space", name, [n for n in SPACES if n != "custom"])
    return SPACES[name]()


__all__ = [
    "SPACES",
    "CustomSpace",
    "custom_space",
    "DARTSSpace",
    "Decision",
    "NB201Space",
    "SearchSpace",
    "TransNASMicroSpace",
    "get_space",
]
