"""Policy cases as data: one YAML file per seed row, run through the real proxy over real sockets.

Each case is run three ways: enforced (the expected answer), in dry-run (the backend's answer, less
any fields the proxy added, and writes forwarded), and enforced under policies with the case's own
binding removed, where the answer must differ: a case that would pass without its rule proves nothing.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml

from tests.conftest import ALL, write_settings
from tests.support.harness import POLICIES, start_app, start_proxy
from tests.support.scripted import Script, make_scripted_app

ERROR_TYPES = {400: "BadRequest", 403: "ForbiddenError", 404: "NotFound", 422: "UnprocessableEntity"}
CASES = sorted((Path(__file__).parent / "policy_cases").glob("*.yaml"))


async def run_case(case: dict[str, Any], policies: Path, tmp: Path, mode: str,
                   http: aiohttp.ClientSession) -> tuple[int, Any, Script]:
    facts = case.get("facts", {})
    caller = case["caller"]
    script = Script(
        caller=caller, matters=facts.get("matters", []), relationships=facts.get("relationships", []),
        created_contacts=facts.get("created_contacts", []),
        default_answer=(case["upstream"]["status"], case["upstream"].get("body")) if "upstream" in case else None,
    )
    settings = write_settings(tmp, {caller["id"]: {**ALL, **case.get("settings", {})}})
    backend = await start_app(make_scripted_app(script))
    proxy = await start_proxy(backend.make_url("/"), settings, policies=policies, mode=mode)
    request = case["request"]
    body = request.get("body")
    try:
        async with http.request(
            request["method"], str(proxy.url) + request["path"],
            headers={"Authorization": f"Bearer token-{caller['id']}",
                     **({"Content-Type": "application/json"} if body is not None else {})},
            data=orjson.dumps(body) if body is not None else None,
        ) as response:
            raw = await response.read()
            payload = orjson.loads(raw) if raw else None
            return response.status, payload, script
    finally:
        await proxy.close()
        await backend.close()


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


PROXY_TAG = re.compile(r'"rp\.[0-9a-f]{32}"\Z')


def proxy_tags_named(doc: Any) -> Any:
    """The proxy's etags (a MAC under a random key) spelled `<proxy etag>`, as a case writes them."""
    if isinstance(doc, dict):
        return {k: proxy_tags_named(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [proxy_tags_named(v) for v in doc]
    return "<proxy etag>" if isinstance(doc, str) and PROXY_TAG.match(doc) else doc


def is_projection(answer: Any, upstream: Any) -> bool:
    """The answer is the upstream's, with at most some keys left out (the ones the proxy added)."""
    if isinstance(answer, dict) and isinstance(upstream, dict):
        return all(k in upstream and is_projection(v, upstream[k]) for k, v in answer.items())
    if isinstance(answer, list) and isinstance(upstream, list):
        return len(answer) == len(upstream) and all(map(is_projection, answer, upstream))
    return bool(answer == upstream)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
async def test_policy_case(path: Path, tmp_path: Path, http: aiohttp.ClientSession) -> None:
    case = yaml.safe_load(path.read_text())
    expect = case["expect"]
    status, body, script = await run_case(case, POLICIES, tmp_path, "enforce", http)
    assert status == expect["status"], body
    if "body" in expect:
        assert proxy_tags_named(body) == expect["body"]
    own = [r for r in script.forwarded if r.method == case["request"]["method"]]
    assert bool(own) == expect.get("forwarded", True), "a blocked request reached the backend"
    if status >= 400:
        assert body["error"]["type"] == ERROR_TYPES[status]
    for fragment in expect.get("forwarded_query_has", []):
        assert fragment in script.forwarded[0].path_qs

    (tmp_path / "dry").mkdir()
    status, body, script = await run_case(case, POLICIES, tmp_path / "dry", "dry-run", http)
    assert script.forwarded, "dry-run forwards everything"
    if "upstream" in case:
        assert status == case["upstream"]["status"]
        if case["upstream"].get("body") is not None:
            assert is_projection(body, case["upstream"]["body"])

    (tmp_path / "mutant").mkdir()
    mutated = without_binding(case["binding"], tmp_path / "mutant")
    status, body, _ = await run_case(case, mutated, tmp_path / "mutant", "enforce", http)
    assert (status, body) != (expect["status"], expect.get("body", body)), "the case passes without its rule"
