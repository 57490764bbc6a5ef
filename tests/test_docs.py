"""Docstring examples run, imported under their installed names (raynas.policies.*, ...)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import raynas
import raynas.envs
import raynas.policies


def _modules() -> list[str]:
    """Every module of raynas, including the mapped raynas.envs and raynas.policies."""
    names = {"raynas.envs", "raynas.policies"}
    for package in (raynas, raynas.envs, raynas.policies):
        prefix = package.__name__ + "."
        names.update(info.name for info in pkgutil.walk_packages(package.__path__, prefix))
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
