"""Bounded atheris runs of the fuzz targets in fuzz/ (checklist H10): each target runs as a subprocess
for a fixed number of executions or seconds, seeded with its corpus in fuzz/corpus/<target>/.

Skipped when atheris is not importable (CI installs it: `pip install atheris`). New corpus entries go
to a temporary directory, never into the repository. The executions are printed (`-s` shows them).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FUZZ = REPO / "fuzz"
RUNS = 100000
SECONDS = 15

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None, reason="atheris is not installed (CI: pip install atheris)"
)


def run_target(name: str, tmp_path: Path) -> tuple[int, str]:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            str(FUZZ / f"fuzz_{name}.py"),
            f"-atheris_runs={RUNS}",
            f"-max_total_time={SECONDS}",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
            str(FUZZ / "corpus" / name),
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 60,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    done = re.findall(r"Done (\d+) (?:runs )?in (\d+) second", output)
    print(
        f"fuzz_{name}: exit {result.returncode}, "
        + (f"{done[-1][0]} executions in {done[-1][1]} s" if done else "no 'Done' line")
    )
    return result.returncode, output


def test_fuzz_pipeline_only_documented_errors_and_no_hidden_name(tmp_path: Path) -> None:
    code, output = run_target("pipeline", tmp_path)
    assert code == 0, output[-3000:]
    assert re.search(r"Done \d+", output), output[-2000:]


def test_fuzz_writebody_errors_or_round_trips(tmp_path: Path) -> None:
    code, output = run_target("writebody", tmp_path)
    assert code == 0, output[-3000:]
    assert re.search(r"Done \d+", output), output[-2000:]
