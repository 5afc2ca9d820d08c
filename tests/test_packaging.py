"""The bundled policies and demo settings are found from an installed wheel, not only a checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_carries_and_finds_the_bundled_policies(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr
    wheel = next(tmp_path.glob("redaction_proxy-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    policies = sorted(n for n in names if n.startswith("proxy/_bundled/policies/"))
    assert {Path(n).name for n in policies} == {p.name for p in (REPO / "policies").glob("*.yaml")}
    assert "proxy/_bundled/demo-settings.yaml" in names
    probe = ("from proxy.policy.load import bundled_policies, load_policies; from proxy.demo import demo_settings;"
             "p = bundled_policies(); print(p); print(demo_settings()); print(len(load_policies(p).routes))")
    found = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(site)}, timeout=60)
    assert found.returncode == 0, found.stderr
    policies_dir, settings, routes = found.stdout.split()
    assert policies_dir.startswith(str(site)) and settings.startswith(str(site)) and int(routes) > 40
    # The spec data `coverage` and `check` default to travels in the wheel too (no ../shared needed).
    assert {"proxy/policy/specs/clio-v4-2025-05.json", "proxy/policy/specs/clio-v4-2022-11.json"} <= set(names)
    covered = subprocess.run([sys.executable, "-m", "proxy.cli", "coverage"], cwd=tmp_path, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(site)}, timeout=60)
    assert covered.returncode == 0, covered.stdout[-2000:] + covered.stderr
    assert str(site) in covered.stdout  # the policy steps named are the wheel's own files
    # The demo backend is a sibling top-level package of the same wheel, runnable on its own.
    assert "demo_backend/__init__.py" in names and "demo_backend/__main__.py" in names
    assert not any(n.startswith("proxy/demo_backend/") for n in names)
    helped = subprocess.run([sys.executable, "-m", "demo_backend", "--help"], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(site)}, timeout=60)
    assert helped.returncode == 0 and "--listen" in helped.stdout, helped.stderr


def test_proxy_imports_the_demo_backend_only_to_run_it() -> None:
    """Serving, checking and the CLI itself load no demo code; only `demo` and `demo-backend` import it, lazily."""
    probe = ("import sys, proxy.cli, proxy.serve, proxy.demo, proxy.policytest.command; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'demo_backend'))")
    found = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"
