"""The command line as an operator meets it: start-up failures are one line and exit 2 (real
subprocesses), every command reads its environment variables, unknown variables are refused,
--version, and help written for operators.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.cli import build_parser, main
from tests.support.harness import POLICIES
from tests.support.process import free_port

REPO = Path(__file__).resolve().parent.parent


def run_cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REDACTION_PROXY_")}
    return subprocess.run([sys.executable, "-m", "proxy.cli", *argv], capture_output=True, text=True, timeout=60,
                          env={**clean, "PYTHONPATH": str(REPO), **(env or {})})


def serve_argv(settings: Path, listen: int, admin: int, upstream: str = "http://127.0.0.1:1") -> list[str]:
    return ["serve", "--upstream", upstream, "--settings", str(settings),
            "--listen", f"127.0.0.1:{listen}", "--admin-listen", f"127.0.0.1:{admin}"]


def assert_one_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ------------------------------------------------------------------------ start-up failures (processes)

@pytest.mark.parametrize("which", ["listen", "admin"])
def test_a_port_in_use_is_one_line_and_exit_2(settings_file: Path, which: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = (port, free_port()) if which == "listen" else (free_port(), port)
        result = run_cli(*serve_argv(settings_file, *ports))
    assert_one_line(result, f"cannot listen on 127.0.0.1:{port}", "in use")


def test_a_bad_upstream_is_one_line_and_exit_2(settings_file: Path) -> None:
    result = run_cli(*serve_argv(settings_file, free_port(), free_port(), "http://127.0.0.1:notaport"))
    assert_one_line(result, "--upstream: 'http://127.0.0.1:notaport' must be an origin")


def test_a_bad_upstream_from_the_environment_is_named_as_the_variable(settings_file: Path) -> None:
    argv = serve_argv(settings_file, free_port(), free_port())
    argv = argv[:1] + argv[3:]  # no --upstream flag
    result = run_cli(*argv, env={"REDACTION_PROXY_UPSTREAM": "http://127.0.0.1:notaport"})
    assert_one_line(result, "REDACTION_PROXY_UPSTREAM: 'http://127.0.0.1:notaport' must be an origin")
    assert "--upstream" not in result.stderr


def test_a_missing_settings_file_and_a_bad_policy_directory_are_one_line_each(tmp_path: Path) -> None:
    result = run_cli(*serve_argv(tmp_path / "missing.yaml", free_port(), free_port()))
    assert_one_line(result, "missing.yaml", "cannot read")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "x.yaml").write_text("routes: [\n")
    result = run_cli(*serve_argv(REPO / "deploy" / "demo-settings.yaml", free_port(), free_port()),
                     "--policies", str(tmp_path / "policies"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert all(line.startswith(str(tmp_path / "policies")) for line in result.stderr.splitlines()), result.stderr


def test_demo_backend_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("demo-backend", env={"REDACTION_PROXY_LISTEN": f"127.0.0.1:{port}"})
    assert_one_line(result, "cannot start", str(port))


def test_an_unknown_flag_is_one_line() -> None:
    assert_one_line(run_cli("serve", "--upstrem", "http://x:1"), "unrecognized arguments: --upstrem", "--help")


# ------------------------------------------------------------------------------- environment variables

def test_check_reads_its_environment(settings_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"REDACTION_PROXY_SETTINGS": str(settings_file), "REDACTION_PROXY_POLICIES": str(POLICIES)}
    assert main(["check"], environ=env) == 0
    assert capsys.readouterr().out.startswith("ok:")
    assert main(["check"], environ={**env, "REDACTION_PROXY_SETTINGS": "/nonexistent.yaml"}) == 2
    assert "/nonexistent.yaml" in capsys.readouterr().err
    assert main(["check"], environ={}) == 2
    assert "--settings is required" in capsys.readouterr().err


def test_a_flag_wins_over_its_variable(settings_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"REDACTION_PROXY_SETTINGS": "/nonexistent.yaml"}
    assert main(["check", "--settings", str(settings_file)], environ=env) == 0


@pytest.mark.parametrize("typo,suggestion", [
    ("REDACTION_PROXY_SETINGS", "REDACTION_PROXY_SETTINGS"),
    ("REDACTION_PROXY_TRUSTED_HOP", "REDACTION_PROXY_TRUSTED_HOPS"),
    ("REDACTION_PROXY_UPSTREAM_TIMEOUT", None),
])
def test_an_unknown_variable_is_refused_and_named(
    settings_file: Path, capsys: pytest.CaptureFixture[str], typo: str, suggestion: str | None
) -> None:
    assert main(["check", "--settings", str(settings_file)], environ={typo: "1"}) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{typo}: not a redaction-proxy variable")
    if suggestion:
        assert f"did you mean {suggestion}?" in line


def test_kubernetes_service_link_variables_are_not_typos(settings_file: Path) -> None:
    """A Service named redaction-proxy makes Kubernetes inject these into every pod of its namespace."""
    injected = {"REDACTION_PROXY_SERVICE_HOST": "10.0.0.1", "REDACTION_PROXY_SERVICE_PORT": "8080",
                "REDACTION_PROXY_SERVICE_PORT_HTTP": "8080", "REDACTION_PROXY_PORT": "tcp://10.0.0.1:8080",
                "REDACTION_PROXY_PORT_8080_TCP": "tcp://10.0.0.1:8080",
                "REDACTION_PROXY_PORT_8080_TCP_ADDR": "10.0.0.1", "REDACTION_PROXY_PORT_8080_TCP_PROTO": "tcp"}
    assert main(["check", "--settings", str(settings_file)], environ=injected) == 0


def test_demo_backend_reads_its_environment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo-backend"], environ={"REDACTION_PROXY_SCALE": "0"}) == 2
    assert capsys.readouterr().err.strip() == "REDACTION_PROXY_SCALE: must be 1 or more"
    assert main(["demo"], environ={"REDACTION_PROXY_BACKEND_LISTEN": "nowhere"}) == 2
    assert capsys.readouterr().err.strip() == "REDACTION_PROXY_BACKEND_LISTEN: 'nowhere' must be HOST:PORT"


def test_a_bad_permission_name_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text("defaults:\n  permissions: [matters, personal_injry]\n")
    assert main(["check", "--settings", str(settings)], environ={}) == 2
    err = capsys.readouterr().err
    assert "'personal_injry'" in err and "'matters'" not in err.split("not among")[0], err


# -------------------------------------------------------------------------------------- version, help

def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("redaction-proxy ") and out.split()[1][0].isdigit(), out


def test_help_speaks_to_operators() -> None:
    parser = build_parser()
    top = parser.format_help()
    assert "RunConfig" not in top and "argv" not in top
    assert "REDACTION_PROXY_" in top and "Exit status" in top
    subparsers = parser._subparsers._group_actions[0]  # type: ignore[union-attr]
    assert isinstance(subparsers, argparse._SubParsersAction)
    for choice in subparsers._choices_actions:
        assert choice.help, f"{choice.dest} has no help line"
    for name, sub in subparsers.choices.items():
        assert sub.description, f"{name} has no description"
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and "[env REDACTION_PROXY_" in action.help, (name, action.option_strings)
