"""Bounded atheris runs of the fuzz targets in fuzz/ (checklist H10): each target runs as a subprocess
for a fixed number of executions or seconds, seeded with its corpus in fuzz/corpus/<target>/.

Skipped when atheris is not importable (CI installs it: `pip install atheris`). New corpus entries go
to a temporary directory, never into the repository. The executions are printed (`-s` shows them).

The compiled scanner's target (fuzz/fuzz_scanner.py, issue 14) also runs against a build of
proxy/_scan.pyx with AddressSanitizer and UndefinedBehaviorSanitizer (gcc), over its corpus and seeded
mutations of it; skipped when the extension is not built, or gcc or its libasan is missing.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from proxy import native

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


@pytest.mark.skipif(not native.available(), reason=f"the compiled scanner is not built: {native.UNAVAILABLE}")
def test_fuzz_scanner_answers_as_the_pure_path_or_falls_back(tmp_path: Path) -> None:
    code, output = run_target("scanner", tmp_path)
    assert code == 0, output[-3000:]
    assert re.search(r"Done \d+", output), output[-2000:]


SANITIZER_RUNS = 20000
SANITIZED = ("-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer")


def _gcc_runtime(name: str) -> str | None:
    """The path of gcc's runtime library `name`, or None (gcc prints the bare name when it has none)."""
    found = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return found if os.path.isabs(found) and os.path.exists(found) else None


def build_sanitized_scanner(out: Path) -> Path:
    """proxy/_scan.pyx through cython, then gcc with ASan and UBSan: the extension's path."""
    source = out / "_scan.c"
    subprocess.run([sys.executable, "-m", "cython", "-3", str(REPO / "proxy" / "_scan.pyx"), "-o", str(source)],
                   check=True, capture_output=True, timeout=120)
    built = out / f"_scan{sysconfig.get_config_var('EXT_SUFFIX')}"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-g", *SANITIZED, f"-I{sysconfig.get_paths()['include']}",
                    str(source), "-o", str(built)], check=True, capture_output=True, timeout=180)
    return built


@pytest.mark.slow
@pytest.mark.skipif(not native.available(), reason=f"the compiled scanner is not built: {native.UNAVAILABLE}")
@pytest.mark.skipif(shutil.which("gcc") is None or _gcc_runtime("libasan.so") is None,
                    reason="gcc or its AddressSanitizer runtime (libasan) is not installed")
def test_scanner_under_address_and_undefined_behaviour_sanitizers(tmp_path: Path) -> None:
    """The scanner target over its corpus and SANITIZER_RUNS seeded mutations, against the sanitizer
    build (fuzz_scanner.py --drive: a preloaded ASan runtime would take over atheris' coverage). Any
    sanitizer report, or a difference from the pure path, fails."""
    built = build_sanitized_scanner(tmp_path)
    preload = [_gcc_runtime("libasan.so"), _gcc_runtime("libstdc++.so")]  # libstdc++: ASan's __cxa_throw hook
    env = {
        **os.environ,
        "LD_PRELOAD": " ".join(p for p in preload if p),
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:exitcode=86",  # Python itself leaks by design
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=87",
        "SCAN_EXTENSION": str(built),
    }
    result = subprocess.run(
        [sys.executable, str(FUZZ / "fuzz_scanner.py"), "--drive", str(SANITIZER_RUNS),
         str(FUZZ / "corpus" / "scanner")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )
    output = result.stdout + result.stderr
    print(re.findall(r"Done .*", output)[-1:] or output[-500:])
    assert f"scanner: {built}" in output, output[-3000:]  # the sanitizer build ran, not the worktree's
    for report in ("ERROR: AddressSanitizer", "runtime error:", "SUMMARY: AddressSanitizer", "SUMMARY: Undefined"):
        assert report not in output, output[-6000:]
    assert result.returncode == 0, output[-6000:]
    assert re.search(r"Done \d+ inputs \(driven\)", output), output[-3000:]
