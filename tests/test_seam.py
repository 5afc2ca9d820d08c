"""One upstream seam (issue 13, item 3): only proxy/http/upstream.py talks aiohttp's client.

The shell above it (policed, respond, relay, facts) sees `UpstreamResponse` and the proxy's own
errors; no private attribute of aiohttp's client is used (the replay is stopped by a public client
middleware, tests/test_relay.py::test_no_request_is_replayed_after_the_upstream_drops).
"""

from __future__ import annotations

import ast
from pathlib import Path

PROXY = Path(__file__).resolve().parents[1] / "proxy"
SEAM = PROXY / "http" / "upstream.py"
# Clients of the proxy itself (the policy test runner; the --workers supervisor asking its workers'
# admin sockets, proxy/http/fanout.py) and a server (the demo backend) are not the shell.
OUTSIDE = ("policytest", "demo_backend", "fanout.py")
# What the shell may take from aiohttp: its server side.
SERVER_NAMES = frozenset({"web", "HttpVersion10", "HttpVersion11", "http_parser"})  # the request parser check (cli)
SERVER_MODULES = ("aiohttp.web", "aiohttp.http_exceptions")


def _shell_modules() -> list[Path]:
    return [p for p in sorted(PROXY.rglob("*.py"))
            if p != SEAM and not any(part in OUTSIDE for part in p.relative_to(PROXY).parts)]


def _client_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] == "aiohttp"]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            if node.module == "aiohttp":
                found += [f"from aiohttp import {a.name}" for a in node.names if a.name not in SERVER_NAMES]
            elif node.module.startswith("aiohttp.") and not node.module.startswith(SERVER_MODULES):
                found.append(f"from {node.module} import ...")
    return [f"{path.relative_to(PROXY.parent)}: {line}" for line in found]


def test_only_the_seam_imports_aiohttp_client() -> None:
    shell = _shell_modules()
    assert any(p.name == "policed.py" for p in shell) and any(p.name == "respond.py" for p in shell)
    leaks = [line for path in shell for line in _client_imports(path)]
    assert leaks == []


def test_the_seam_is_where_the_client_is() -> None:
    # The check above would pass vacuously if the seam moved: it must still hold the client.
    assert any(line.split(": ", 1)[1] == "import aiohttp" for line in _client_imports(SEAM))


def test_no_private_attribute_of_the_client_is_used() -> None:
    for path in PROXY.rglob("*.py"):
        assert "_retry_connection" not in path.read_text(), path
