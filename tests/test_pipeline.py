"""One pipeline, one mode value (issue 13, item 4).

What a mode applies is asked of one value (proxy/effects.py), never of the mode itself on the request
path; every error answer the proxy builds comes from proxy/http/answers.py. The behaviour of each
effect is tested end to end in tests/test_dry_run.py (dry-run) and the enforce suites.
"""

from __future__ import annotations

import ast
from pathlib import Path

from proxy.config import Mode
from proxy.effects import DRY_RUN, ENFORCE

PROXY = Path(__file__).resolve().parents[1] / "proxy"
REQUEST_PATH = [*sorted((PROXY / "http").glob("*.py")), PROXY / "transform.py", PROXY / "body.py"]


def test_each_mode_says_what_it_applies() -> None:
    assert Mode.ENFORCE.effects is ENFORCE and Mode.DRY_RUN.effects is DRY_RUN
    assert ENFORCE.block and ENFORCE.apply and ENFORCE.fail_closed and ENFORCE.word == "refused"
    # Dry-run takes every decision and changes nothing: nothing blocked, applied or refused.
    assert not (DRY_RUN.block or DRY_RUN.apply or DRY_RUN.fail_closed) and DRY_RUN.word == "would_refuse"


def _mode_tests(path: Path) -> list[str]:
    """Where a module asks the mode (or the `enforce` shortcut) instead of the effects."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in ("ENFORCE", "DRY_RUN", "enforce") and (
            not isinstance(node.value, ast.Name) or node.value.id != "self"
        ):
            found.append(f"{path.name}:{node.lineno}: .{node.attr}")
    return found


def test_the_request_path_asks_the_effects_not_the_mode() -> None:
    assert [line for path in REQUEST_PATH for line in _mode_tests(path)] == []


def test_error_answers_are_built_in_one_place() -> None:
    builders = []
    for path in sorted(PROXY.rglob("*.py")):
        if "demo_backend" in path.parts or path.name in ("answers.py", "errors.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and "error_body" in (
                getattr(node.func, "id", None), getattr(node.func, "attr", None)
            ):
                builders.append(f"{path.relative_to(PROXY)}:{node.lineno}")
    assert builders == []
