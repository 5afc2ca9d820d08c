"""The rollout tools over real sockets: a dry-run (or enforcing) proxy in front of the demo backend,
driven as several users; the report (/report, /report.html in a real headless chromium, and
`redaction-proxy report LOG...` over two replicas' logs) checked against the decisions actually logged,
and /decisions/{request_id} against what the proxy did.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from demo_backend import Firm, generate_firm, make_app
from proxy.cli import main
from proxy.config import ConfigValueError
from proxy.report import Report
from tests.conftest import RESTRICTED, write_settings
from tests.support.harness import RunningProxy, start_app, start_proxy
from tests.test_rules_demo import CONTACT_TYPES, visible_contacts

RESTRICTED_USERS = (2, 3)
USERS = (1, 2, 3)
COMMUNICATIONS = "/api/v4/communications.json?fields=id,senders{id,name,type},receivers{id,name,type}&limit=50"
CONTACTS = "/api/v4/contacts.json?fields=id,name&limit=100"
ACTIVITIES = "/api/v4/activities.json?fields=id,type,quantity,price,total,user{id},matter{id}&limit=100"


def caller(user: int) -> dict[str, str]:
    return {"Authorization": f"Bearer token-{user}"}


@dataclass
class Rig:
    firm: Firm
    backend: TestServer
    proxies: list[RunningProxy]
    http: aiohttp.ClientSession

    @property
    def proxy(self) -> RunningProxy:
        return self.proxies[0]

    async def get(self, path: str, user: int, proxy: RunningProxy | None = None, **kw: Any) -> tuple[int, Any]:
        async with self.http.get(f"{(proxy or self.proxy).url}{path}", headers=caller(user), **kw) as r:
            return r.status, await r.json()

    async def admin(self, path: str, proxy: RunningProxy | None = None) -> tuple[int, Any]:
        async with self.http.get(f"{(proxy or self.proxy).admin_url}{path}") as r:
            return r.status, await r.json()


@asynccontextmanager
async def make_rig(tmp_path: Path, mode: str, replicas: int = 1, **options: Any) -> AsyncIterator[Rig]:
    firm = generate_firm(scale=1)
    backend = await start_app(make_app(firm))
    settings = write_settings(tmp_path, {u: RESTRICTED for u in RESTRICTED_USERS})
    proxies: list[RunningProxy] = []
    try:
        for _ in range(replicas):
            proxies.append(await start_proxy(backend.make_url("/"), settings, mode=mode, **options))
        async with aiohttp.ClientSession() as http:
            yield Rig(firm, backend, proxies, http)
    finally:  # closed even when an assertion fails inside, so no later test inherits open sockets
        for proxy in proxies:
            await proxy.close()
        await backend.close()


@pytest.fixture
async def dry(tmp_path: Path) -> AsyncIterator[Rig]:
    async with make_rig(tmp_path, "dry-run") as rig:
        yield rig


@pytest.fixture
async def enforce(tmp_path: Path) -> AsyncIterator[Rig]:
    async with make_rig(tmp_path, "enforce") as rig:
        yield rig


async def drive(rig: Rig, proxy: RunningProxy | None = None) -> None:
    """Traffic from every user: reads that redact and drop, a refused read and a refused write."""
    for user in USERS:
        for path in (COMMUNICATIONS, CONTACTS, ACTIVITIES):
            status, _ = await rig.get(path, user, proxy)
            assert status == 200
    hidden = sorted(c for c in rig.firm.contacts if c not in visible_contacts(rig.firm, 2))
    status, _ = await rig.get(f"/api/v4/contacts/{hidden[0]}.json", 2, proxy)
    assert status in (200, 404)  # dry-run forwards it, enforce hides it
    matter = next(m for m in rig.firm.matters if rig.firm.can_access(2, m))
    payload = {"data": {"name": "t", "matter": {"id": matter}, "assignee": {"id": hidden[1], "type": "Contact"}}}
    async with rig.http.post(f"{(proxy or rig.proxy).url}/api/v4/tasks.json", json=payload, headers=caller(2)) as r:
        assert r.status in (201, 422)


def expected_rows(lines: list[str]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """The report's rows recomputed from the log lines by hand: decision summaries and blocked lines."""
    rows: dict[tuple[str, str, str, str], dict[str, Any]] = defaultdict(
        lambda: {"records": 0, "requests": set(), "users": set()})
    for event in map(json.loads, lines):
        if event["event"] == "decisions":
            for entry in event["decided"]:
                row = rows[(event["route"], entry["rule"], entry["action"], entry["outcome"])]
                row["records"] += entry["records"]
                row["requests"].add(event["request_id"])
                row["users"].add(event["user_id"])
        elif event["event"] == "blocked":
            row = rows[(event["route"], event["rule"], event["action"], event["outcome"])]
            row["records"] += 1
            row["requests"].add(event["request_id"])
            row["users"].add(event["user_id"])
    return rows


def by_key(report: dict[str, Any]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    return {(r["route"], r["rule"], r["action"], r["outcome"]): r for r in report["rows"]}


def assert_matches_logs(report: dict[str, Any], lines: list[str]) -> None:
    expected = expected_rows(lines)
    got = by_key(report)
    assert set(got) == set(expected)
    for key, want in expected.items():
        row = got[key]
        assert row["records"] == want["records"], key
        assert row["requests"] == len(want["requests"]), key
        assert row["users"] == len(want["users"]), key
        assert set(row["examples"]) <= want["requests"] and 1 <= len(row["examples"]) <= 3, key


async def test_the_report_counts_what_the_dry_run_logged_for_several_users(dry: Rig) -> None:
    await drive(dry)
    status, report = await dry.admin("/report")
    assert status == 200
    lines = dry.proxy.log_lines()
    assert_matches_logs(report, lines)
    assert report["mode"] == "dry-run" and report["policy_version"] == dry.proxy.services.live.current.policies.version
    got = by_key(report)
    # Each rule shows up where it acts, and only the restricted users are ever affected.
    assert {(k[1], k[2], k[3]) for k in got} >= {
        ("contacts_visibility", "redact_contact", "would_redact"),
        ("contacts_visibility", "filter_contacts", "would_drop"),
        ("activity_hours_visibility", "redact_hours", "would_redact"),
        ("billing_rate_visibility", "redact_rate", "would_redact"),
        ("contacts_visibility", "hide_contact", "would_refuse"),
        ("contacts_visibility", "refuse_contact_reference", "would_refuse"),
    }
    assert got[("/contacts", "contacts_visibility", "filter_contacts", "would_drop")]["users"] == 2
    assert got[("/tasks", "contacts_visibility", "refuse_contact_reference", "would_refuse")] | {"examples": 0} == {
        "route": "/tasks", "rule": "contacts_visibility", "action": "refuse_contact_reference",
        "outcome": "would_refuse", "records": 1, "requests": 1, "users": 1, "users_capped": False, "examples": 0}
    # The numbers against the ground truth too: the contacts user 2 would not see on one page.
    hidden_on_page = min(100, len(dry.firm.contacts)) - len(
        [c for c in sorted(dry.firm.contacts)[:100] if c in visible_contacts(dry.firm, 2)])
    summaries = [json.loads(line) for line in lines if '"event":"decisions"' in line]
    drops_for_2 = sum(e["records"] for s in summaries if s["user_id"] == 2 and s["route"] == "/contacts"
                      for e in s["decided"] if e["action"] == "filter_contacts")
    assert drops_for_2 == hidden_on_page > 0
    affected_users = {json.loads(line).get("user_id") for line in lines
                      if '"event":"decisions"' in line or '"event":"blocked"' in line}
    assert affected_users == set(RESTRICTED_USERS)
    totals = report["totals"]
    assert totals["users"] == 2 and totals["requests"] == sum('"event":"request"' in line for line in lines)
    assert totals["dropped"] == sum(r["records"] for r in report["rows"] if r["outcome"] == "would_drop")
    assert totals["refused"] == 2 and totals["undecidable_or_refused"] == 0
    # A reset starts again from nothing; a GET cannot reset.
    async with dry.http.get(f"{dry.proxy.admin_url}/report/reset") as r:
        assert r.status == 405
    async with dry.http.post(f"{dry.proxy.admin_url}/report/reset") as r:
        assert r.status == 200
    _, after = await dry.admin("/report")
    assert after["rows"] == [] and after["totals"]["requests"] == 0 and after["since"] > report["since"]


async def test_undecidable_dry_run_requests_are_reported(tmp_path: Path) -> None:
    async with make_rig(tmp_path, "dry-run") as rig:
        assert (await rig.get(CONTACTS, 2))[0] == 200
        _, report = await rig.admin("/report")
        assert report["undecidable_or_refused"] == []  # nothing undecidable yet
        # A write body that is not JSON cannot be checked: dry-run passes it on, and it is reported.
        async with rig.http.post(f"{rig.proxy.url}/api/v4/tasks.json", data=b"{not json",
                                 headers={**caller(2), "Content-Type": "application/json"}) as r:
            assert r.status < 500
        _, report = await rig.admin("/report")
        [row] = report["undecidable_or_refused"]
        assert (row["route"], row["outcome"], row["requests"], row["users"]) == (
            "/tasks", "undecidable_passed_on", 1, 0)
        assert report["totals"]["undecidable_or_refused"] == 1


def _chromium_or_skip() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path is None:
        if os.environ.get("CI") or os.environ.get("REQUIRE_BROWSER_TESTS"):
            pytest.fail("chromium is missing in CI: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); CI installs it")
    return path


async def _chromium(binary: str, profile: Path, *args: str) -> str:
    """Run headless chromium without blocking the loop that serves the page it loads."""
    process = await asyncio.create_subprocess_exec(
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


async def test_the_report_page_shows_the_logged_numbers_in_a_real_browser(dry: Rig, tmp_path: Path) -> None:
    binary = _chromium_or_skip()
    await drive(dry)
    _, report = await dry.admin("/report")
    assert_matches_logs(report, dry.proxy.log_lines())
    url = f"{dry.proxy.admin_url}/report.html"
    async with dry.http.get(url) as r:
        assert r.status == 200 and r.content_type == "text/html"
        page = await r.text()
    assert "<script" not in page and "http://" not in page.replace(url, "") and "https://" not in page
    dom = await _chromium(binary, tmp_path / "profile", "--dump-dom", url)
    assert '<span class="mode mode-dry-run" id="mode">dry-run</span>' in dom
    assert f'<b id="policy-version">{report["policy_version"]}</b>' in dom
    for key in ("requests", "users", "redacted", "dropped", "refused"):
        assert f'<dd id="total-{key}">{report["totals"][key]}</dd>' in dom, key
    for i, row in enumerate(report["rows"]):
        start = dom.index(f'<tr id="rows-{i}">')
        cells = dom[start:dom.index("</tr>", start)]
        for column in ("route", "rule", "action", "outcome", "records", "requests", "users"):
            assert f'data-col="{column}">{row[column]}</td>' in cells, (i, column)
        assert all(example in cells for example in row["examples"])
    total = sum(r["records"] for r in report["rows"])
    assert f'data-col="records">{total}</td>' in dom[dom.index('<tr class="totals"'):]
    shot = tmp_path / "report.png"
    await _chromium(binary, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1280,900", url)
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("REPORT_SCREENSHOT")  # to look at the page: REPORT_SCREENSHOT=/tmp/report.png
    if keep:
        shutil.copyfile(shot, keep)


async def test_report_command_sums_two_replicas_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with make_rig(tmp_path, "dry-run", replicas=2) as rig:
        a, b = rig.proxies
        await drive(rig, a)
        for user in (2, 3):
            assert (await rig.get(CONTACTS, user, b))[0] == 200
        lives = [(await rig.admin("/report", p))[1] for p in (a, b)]
        files = []
        for i, proxy in enumerate(rig.proxies):
            path = tmp_path / f"replica-{i}.log"
            path.write_text("\n".join(proxy.log_lines()) + "\nnot json\n")
            files.append(str(path))
    assert main(["report", "--json", *files], environ={}) == 0
    offline = json.loads(capsys.readouterr().out)
    assert_matches_logs(offline, [line for f in files for line in Path(f).read_text().splitlines()
                                  if line.startswith("{")])
    assert offline["unreadable_lines"] == 2 and offline["mode"] == "dry-run"
    summed: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for live in lives:
        for key, row in by_key(live).items():
            summed[key][0] += row["records"]
            summed[key][1] += row["requests"]
    assert {k: [r["records"], r["requests"]] for k, r in by_key(offline).items()} == summed
    contacts = ("/contacts", "contacts_visibility", "filter_contacts", "would_drop")
    assert by_key(offline)[contacts]["users"] == 2  # users 2 and 3 on both replicas: distinct, not summed
    assert offline["totals"]["requests"] == sum(live["totals"]["requests"] for live in lives)
    # The same summary as a terminal table, from standard input too.
    assert main(["report", files[0], files[1]], environ={}) == 0
    table = capsys.readouterr().out
    row = by_key(offline)[contacts]
    assert any(line.split()[:7] == [*contacts, str(row["records"]), str(row["requests"]), "2"]
               for line in table.splitlines())
    assert f"objects redacted: {offline['totals']['redacted']}" in table
    assert main(["report", str(tmp_path / "missing.log")], environ={}) == 2
    assert "cannot read" in capsys.readouterr().err


async def test_decisions_of_a_recent_request_name_rule_path_and_id_never_a_value(enforce: Rig) -> None:
    base = str(enforce.backend.make_url("/")).rstrip("/")
    async with enforce.http.get(f"{base}{COMMUNICATIONS}", headers=caller(2)) as r:
        raw = await r.json()
    visible = visible_contacts(enforce.firm, 2)
    hidden = {(f"data[{i}].{k}[{j}]", p["id"]) for i, c in enumerate(raw["data"]) for k in ("senders", "receivers")
              for j, p in enumerate(c[k]) if p["type"] in CONTACT_TYPES and p["id"] not in visible}
    async with enforce.http.get(f"{enforce.proxy.url}{COMMUNICATIONS}",
                                headers={**caller(2), "X-Request-Id": "support-case-17"}) as r:
        assert r.status == 200 and r.headers["X-Request-Id"] == "support-case-17"
    status, entry = await enforce.admin("/decisions/support-case-17")
    assert status == 200
    assert (entry["route"], entry["method"], entry["user_id"], entry["mode"], entry["status"]) == (
        "/communications", "GET", 2, "enforce", 200)
    assert {(d["path"], d["object_id"]) for d in entry["decisions"]} == hidden and hidden
    assert {(d["rule"], d["action"]) for d in entry["decisions"]} == {("contacts_visibility", "redact_contact")}
    assert all(set(d) == {"rule", "action", "path", "object_id"} for d in entry["decisions"])
    names = {p["name"] for c in raw["data"] for k in ("senders", "receivers") for p in c[k]}
    text = json.dumps(entry)
    assert names and not any(name in text for name in names)
    # A refused write is explained too; an unknown id is a 404.
    hidden_contact = next(c for c in enforce.firm.contacts if c not in visible)
    matter = next(m for m in enforce.firm.matters if enforce.firm.can_access(2, m))
    payload = {"data": {"name": "t", "matter": {"id": matter}, "assignee": {"id": hidden_contact, "type": "Contact"}}}
    async with enforce.http.post(f"{enforce.proxy.url}/api/v4/tasks.json", json=payload,
                                 headers={**caller(2), "X-Request-Id": "write-1"}) as r:
        assert r.status == 422
    _, entry = await enforce.admin("/decisions/write-1")
    [blocked] = [json.loads(line) for line in enforce.proxy.log_lines() if '"event":"blocked"' in line]
    assert entry["refused"] == [{"rule": "contacts_visibility", "action": "refuse_contact_reference",
                                 "status": 422, "object_id": blocked["object_id"]}] and entry["decisions"] == []
    status, body = await enforce.admin("/decisions/no-such-request")
    assert status == 404 and body["error"]["type"] == "NotFound"


async def test_the_decisions_ring_keeps_only_the_last_n_requests(tmp_path: Path) -> None:
    async with make_rig(tmp_path, "enforce", decisions_ring=2) as rig:
        for n in range(3):
            async with rig.http.get(f"{rig.proxy.url}{CONTACTS}", headers={**caller(2), "X-Request-Id": f"r-{n}"}):
                pass
        assert (await rig.admin("/decisions/r-0"))[0] == 404
        assert [(await rig.admin(f"/decisions/r-{n}"))[0] for n in (1, 2)] == [200, 200]
        assert len(rig.proxy.services.recent) == 2


async def test_per_decision_lines_are_sampled_at_the_operators_rate(tmp_path: Path) -> None:
    async with make_rig(tmp_path, "dry-run", decision_log_sample=1) as rig:
        assert (await rig.get(COMMUNICATIONS, 2))[0] == 200
        events = [json.loads(line) for line in rig.proxy.log_lines()]
        each = [e for e in events if e["event"] == "decision"]
        [summary] = [e for e in events if e["event"] == "decisions"]
        assert len(each) == summary["decided"][0]["records"] > 5
        assert all(e["user_id"] == 2 and e["route"] == "/communications" and e["level"] == "info" for e in each)


def test_the_sample_rate_and_ring_size_are_checked(settings_file: Path) -> None:
    import argparse

    from proxy.config import SERVE_OPTIONS, build_config

    base = {o.dest: None for o in SERVE_OPTIONS}
    args = argparse.Namespace(**{**base, "upstream": "http://127.0.0.1:3000", "settings": str(settings_file)})
    config = build_config(args, environ={"REDACTION_PROXY_DECISION_LOG_SAMPLE": "0.25"})
    assert config.decision_log_sample == 0.25 and config.decisions_ring == 1000
    with pytest.raises(ConfigValueError) as bad:
        build_config(args, environ={"REDACTION_PROXY_DECISION_LOG_SAMPLE": "2",
                                    "REDACTION_PROXY_DECISIONS_RING": "x"})
    assert bad.value.problems == ["REDACTION_PROXY_DECISION_LOG_SAMPLE: must be between 0 and 1",
                                  "REDACTION_PROXY_DECISIONS_RING: 'x' is not a number"]


def test_the_report_stays_bounded_whatever_the_traffic() -> None:
    report = Report()
    for n in range(20_000):
        report.add({"event": "decisions", "request_id": f"r{n}", "mode": "enforce", "route": "/contacts",
                    "user_id": n, "decided": [{"rule": "contacts_visibility", "action": "filter_contacts",
                                               "records": 2}]})
        report.add({"event": "blocked", "request_id": f"b{n}", "route": f"/made-up-{n}", "rule": "x",
                    "action": "y", "user_id": n})
    snapshot = report.snapshot()
    [row] = [r for r in snapshot["rows"] if r["route"] == "/contacts"]
    assert (row["records"], row["requests"], row["outcome"]) == (40_000, 20_000, "dropped")
    assert row["users"] == 1000 and row["users_capped"] and row["examples"] == ["r19997", "r19998", "r19999"]
    assert len(snapshot["rows"]) == 4096 and snapshot["overflow_events"] == 20_000 - 4095
    assert snapshot["users_capped"] and snapshot["totals"]["users"] == 10_000


async def test_a_huge_request_keeps_only_the_first_decisions_and_counts_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import proxy.http.exchange

    monkeypatch.setattr(proxy.http.exchange, "PER_REQUEST", 3)
    async with make_rig(tmp_path, "enforce") as rig:
        async with rig.http.get(f"{rig.proxy.url}{COMMUNICATIONS}", headers={**caller(2), "X-Request-Id": "big"}):
            pass
        _, entry = await rig.admin("/decisions/big")
        [summary] = [json.loads(line) for line in rig.proxy.log_lines() if '"event":"decisions"' in line]
        [decided] = summary["decided"]
        assert decided["outcome"] == "redacted" and decided["records"] > 3  # enforce: done, not "would"
        assert len(entry["decisions"]) == 3 and entry["truncated"] == decided["records"] - 3
