"""Every Python code block of README.md runs as written, in a fresh interpreter and an
empty folder; the only thing set is ``$RAYNAS_NB201_TABLE`` (the table under test, which
the examples' default table then is)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
# A README example must finish in about a minute on 2 CPUs; the limit leaves room for a
# loaded CI machine and Ray's start-up.
LIMIT_S = 240


def python_blocks() -> list[tuple[int, str]]:
    """(first line number, code) of each ```python block of the README."""
    text = README.read_text()
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
        blocks.append((text[: match.start()].count("\n") + 2, match.group(1)))
    return blocks


BLOCKS = python_blocks()


def test_the_readme_has_its_examples():
    assert len(BLOCKS) >= 5
    for line, code in BLOCKS:
        compile(code, f"README.md:{line}", "exec")


@pytest.mark.slow
@pytest.mark.parametrize("line,code", BLOCKS, ids=[f"line{line}" for line, _ in BLOCKS])
def test_readme_block_runs_as_written(line, code, table_path, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "RAYNAS_NB201_TABLE": str(Path(table_path).resolve())}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, text=True,
                          capture_output=True, timeout=LIMIT_S)
    took = time.perf_counter() - start
    assert proc.returncode == 0, (
        f"README.md line {line} failed after {took:.0f} s:\n{proc.stdout[-3000:]}\n"
        f"{proc.stderr[-3000:]}")
    if "print(" in code:
        assert proc.stdout.strip(), f"README.md line {line} printed nothing"
    print(f"README.md line {line}: {took:.1f} s")
