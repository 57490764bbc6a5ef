"""The installed layout: envs/ and policies/ import only as raynas.envs / raynas.policies."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("raynas", "envs", "policies", "tests", "benchmarks")


def test_subpackages_map_to_top_level_folders():
    import raynas.envs
    import raynas.policies

    assert Path(raynas.envs.__file__).resolve().parent == REPO / "envs"
    assert Path(raynas.policies.__file__).resolve().parent == REPO / "policies"
    import raynas.mnist1d.cnn1d  # the embedded default's space, a user's example folder

    assert Path(raynas.mnist1d.cnn1d.__file__).resolve().parent == REPO / "examples" / "mnist1d"


def test_every_package_folder_is_listed_for_installation():
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(path.parent.relative_to(REPO).parts)
             for path in (REPO / "raynas").rglob("__init__.py")}
    found |= {"raynas.envs", "raynas.policies", "raynas.policies.catch", "raynas.mnist1d"}
    assert found == listed, f"pyproject.toml lists {sorted(listed)}, the tree has {sorted(found)}"


def test_no_shadowing_folders_inside_raynas():
    assert not (REPO / "raynas" / "envs").exists()
    assert not (REPO / "raynas" / "policies").exists()


@pytest.mark.parametrize("bare", ["envs", "policies"])
def test_bare_top_level_import_fails_outside_the_repo(bare, tmp_path):
    code = f"import raynas.{bare}\ntry:\n import {bare}\nexcept ModuleNotFoundError:\n print('ok')"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "ok", out.stderr


def test_no_source_file_imports_bare_envs_or_policies():
    offenders = []
    for folder in SOURCE_DIRS:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                offenders += [
                    f"{path.relative_to(REPO)}:{node.lineno} imports {n}"
                    for n in names
                    if n.split(".")[0] in ("envs", "policies")
                ]
    assert not offenders, offenders


def test_core_import_stays_light():
    """Importing the core and the policies must pull neither torch nor ray."""
    code = (
        "import sys, raynas.spaces, raynas.policies, raynas.search, raynas.tables;"
        "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_console_script_reports_version():
    script = Path(sys.executable).parent / "raynas"
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("raynas ")
