"""proxy.memory: the heap slack is set where glibc is, and an operator's own setting wins; `serve`
settles the garbage collector once it listens."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.memory import GEN0_THRESHOLD, keep_heap_slack, settle_heap
from tests.support.process import free_port

REPO = Path(__file__).resolve().parent.parent

PROBE = "from proxy.memory import keep_heap_slack; print(keep_heap_slack())"


def test_set_on_glibc() -> None:
    if not sys.platform.startswith("linux") or "glibc" not in " ".join(__import__("platform").libc_ver()):
        pytest.skip("glibc only")
    assert keep_heap_slack() is True


def test_an_operators_setting_wins() -> None:
    env = {"MALLOC_TOP_PAD_": "0", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


SERVE_PROBE = """
import gc, os, signal, sys, threading, time, urllib.request
from proxy.cli import main

def probe(admin: str) -> None:
    while True:
        try:
            urllib.request.urlopen(f"http://{admin}/healthz", timeout=2).read()
            break
        except OSError:
            time.sleep(0.05)
    print("gc:", gc.get_threshold()[0], gc.get_freeze_count() > 0, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=probe, args=(sys.argv[-1],), daemon=True).start()
sys.exit(main(sys.argv[1:]))
"""


def test_serve_settles_the_heap_once_listening(settings_file: Path) -> None:
    """Issue 14: once `serve` listens, the start-up heap is frozen and young collections run every
    GEN0_THRESHOLD allocations (read from inside the serving process, by a thread that waits for
    /healthz to answer and then stops it with SIGTERM)."""
    argv = ["serve", "--upstream", "http://127.0.0.1:1", "--settings", str(settings_file), "--shutdown-grace", "1",
            "--watch-interval", "0", "--listen", f"127.0.0.1:{free_port()}",
            "--admin-listen", f"127.0.0.1:{free_port()}"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REDACTION_PROXY_")}
    out = subprocess.run([sys.executable, "-c", SERVE_PROBE, *argv], capture_output=True, text=True, timeout=60,
                         env={**clean, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    probed = [line.split() for line in out.stdout.splitlines() if line.startswith("gc: ")]
    assert probed == [["gc:", str(GEN0_THRESHOLD), "True"]], out.stdout


def test_settle_heap_freezes_and_raises_the_young_threshold() -> None:
    threshold = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (GEN0_THRESHOLD, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
