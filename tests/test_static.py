"""Everything we write type-checks under mypy --strict and passes ruff: the proxy, the demo backend, the
tests, the benchmarks and their peers, the fuzz targets. Run as tests so CI cannot skip them."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


CHECKED = ("proxy", "demo_backend", "tests", "bench", "fuzz")


def test_mypy_strict() -> None:
    result = run("mypy")  # the files are pyproject's [tool.mypy] files, which must name every checked tree
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_checks_every_tree() -> None:
    files = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    assert sorted(files) == sorted(CHECKED)


def test_ruff() -> None:
    result = run("ruff", "check", *CHECKED)
    assert result.returncode == 0, result.stdout + result.stderr
