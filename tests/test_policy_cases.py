"""Policy cases as data: one YAML file per seed row, run through the real proxy over real sockets.

Each case is run three ways: enforced (the expected answer), in dry-run (the backend's answer, less
any fields the proxy added, and writes forwarded), and enforced under policies with the case's own
binding removed, where the answer must differ: a case that would pass without its rule proves nothing.
The case format and the runner are the package's (`proxy/policytest/`), as `redaction-proxy test` runs them.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from proxy.config import Mode
from proxy.policy.load import load_policies
from proxy.policy.model import PolicySet
from proxy.policytest.case import load_case
from proxy.policytest.runner import OPEN_SETTINGS, judge, run_case
from tests.support.harness import POLICIES

ERROR_TYPES = {400: "BadRequest", 403: "ForbiddenError", 404: "NotFound", 422: "UnprocessableEntity"}
CASES = sorted((Path(__file__).parent / "policy_cases").glob("*.yaml"))


@functools.cache
def bundled() -> PolicySet:
    return load_policies(POLICIES)


def without_binding(seed: str, tmp: Path) -> Path:
    """A copy of the bundled policies with every binding citing `seed` removed."""
    target = tmp / "mutated"
    shutil.copytree(POLICIES, target)
    found = 0
    for path in target.glob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        for route in doc.get("routes", []) if isinstance(doc, dict) else []:
            for key in ("respond", "checks"):
                kept = [b for b in route.get(key, []) if b.get("seed") != seed]
                found += len(route.get(key, [])) - len(kept)
                route[key] = kept
        if isinstance(doc, dict) and "checks" in doc:
            kept = [b for b in doc["checks"] if b.get("seed") != seed]
            found += len(doc["checks"]) - len(kept)
            doc["checks"] = kept
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert found, f"no binding cites {seed!r}"
    return target


def is_projection(answer: Any, upstream: Any) -> bool:
    """The answer is the upstream's, with at most some keys left out (the ones the proxy added)."""
    if isinstance(answer, dict) and isinstance(upstream, dict):
        return all(k in upstream and is_projection(v, upstream[k]) for k, v in answer.items())
    if isinstance(answer, list) and isinstance(upstream, list):
        return len(answer) == len(upstream) and all(map(is_projection, answer, upstream))
    return bool(answer == upstream)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
async def test_policy_case(path: Path, tmp_path: Path, http: aiohttp.ClientSession) -> None:
    case = load_case(path)
    expect = case.expect
    answer = await run_case(case, bundled(), OPEN_SETTINGS, http)
    assert not judge(case, answer), "\n".join(judge(case, answer))
    if answer.status >= 400:
        assert answer.body["error"]["type"] == ERROR_TYPES[answer.status]

    dry = await run_case(case, bundled(), OPEN_SETTINGS, http, mode=Mode.DRY_RUN)
    assert dry.forwarded, "dry-run forwards everything"
    if case.upstream is not None:
        assert dry.status == case.upstream.status
        if case.upstream.body is not None:
            assert is_projection(dry.body, case.upstream.body)

    assert case.binding, "a bundled case names the binding it is about"
    mutated = load_policies(without_binding(case.binding, tmp_path))
    # The sentinel off: it would stub a hidden contact a missing binding left at a selected place, and
    # the case must prove its own rule, not the safety net behind it (tests/test_sentinel_policed.py).
    mutant = await run_case(case, mutated, OPEN_SETTINGS, http, sentinel="off")
    assert (mutant.status, mutant.body) != (expect.status, expect.body if expect.has_body else mutant.body), \
        "the case passes without its rule"
