"""proxy.memory: the heap slack is set where glibc is, and an operator's own setting wins."""

from __future__ import annotations

import subprocess
import sys

import pytest

from proxy.memory import keep_heap_slack

PROBE = "from proxy.memory import keep_heap_slack; print(keep_heap_slack())"


def test_set_on_glibc() -> None:
    if not sys.platform.startswith("linux") or "glibc" not in " ".join(__import__("platform").libc_ver()):
        pytest.skip("glibc only")
    assert keep_heap_slack() is True


def test_an_operators_setting_wins() -> None:
    env = {"MALLOC_TOP_PAD_": "0", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
