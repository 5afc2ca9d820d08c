"""Every rule over real sockets: a real HTTP client -> the proxy -> the demo legacy backend.

Ground truth is computed from the generated firm itself, independently of the proxy's facts code.
Each rule is checked enforced, and in dry-run (the backend's answer, decisions only logged).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from demo_backend import REQUESTS_KEY, Firm, generate_firm, make_app
from tests.support.harness import RunningProxy, start_app, start_proxy

RITA = {"Authorization": "Bearer token-2"}
ADA = {"Authorization": "Bearer token-1"}
CONTACT_TYPES = {"Person", "Company", "Contact"}


def visible_contacts(firm: Firm, user: int) -> set[int]:
    """The 4.0.9 rule, from the firm's own data: created, or on a matter the user can see."""
    matters = {m for m in firm.matters if firm.can_access(user, m)}
    out = {c for c, rec in firm.contacts.items() if (rec.get("creator") or {}).get("id") == user}
    for m in matters:
        rec = firm.matters[m]
        if rec.get("client"):
            out.add(rec["client"]["id"])
        for value in rec.get("custom_field_values") or []:
            if value.get("field_type") == "contact" and value.get("contact"):
                out.add(value["contact"]["id"])
    for rel in firm.relationships.values():
        if rel.get("matter") and rel["matter"]["id"] in matters and rel.get("contact"):
            out.add(rel["contact"]["id"])
    return out


@dataclass
class Stack:
    firm: Firm
    backend: TestServer
    proxy: RunningProxy
    http: aiohttp.ClientSession

    @property
    def received(self) -> list[Any]:
        return self.backend.app[REQUESTS_KEY]

    async def get(self, path: str, headers: dict[str, str] = RITA, base: str | None = None) -> tuple[int, Any]:
        url = (base or str(self.proxy.url)) + path
        async with self.http.get(url, headers=headers) as r:
            return r.status, await r.json()

    async def walk(self, path: str, headers: dict[str, str] = RITA) -> tuple[list[Any], list[Any]]:
        """Every record of an index through its paging links, and each page's meta."""
        records: list[Any] = []
        metas: list[Any] = []
        url: str | None = str(self.proxy.url) + path
        while url:
            assert url.startswith(str(self.proxy.url)), url  # links point at the proxy
            async with self.http.get(url, headers=headers) as r:
                assert r.status == 200, await r.text()
                body = await r.json()
            records.extend(body["data"])
            metas.append(body["meta"])
            url = body["meta"]["paging"].get("next")
        return records, metas


async def make_stack(tmp_path: Path, settings_file: Path, mode: str) -> AsyncIterator[Stack]:
    firm = generate_firm(scale=1)
    backend = await start_app(make_app(firm))
    proxy = await start_proxy(backend.make_url("/"), settings_file, mode=mode)
    async with aiohttp.ClientSession() as http:
        yield Stack(firm, backend, proxy, http)
    await proxy.close()
    await backend.close()


@pytest.fixture
async def stack(tmp_path: Path, settings_file: Path) -> AsyncIterator[Stack]:
    async for s in make_stack(tmp_path, settings_file, "enforce"):
        yield s


@pytest.fixture
async def dry(tmp_path: Path, settings_file: Path) -> AsyncIterator[Stack]:
    async for s in make_stack(tmp_path, settings_file, "dry-run"):
        yield s


async def test_contacts_list_holds_only_visible_contacts_with_honest_count(stack: Stack) -> None:
    visible = visible_contacts(stack.firm, 2)
    records, metas = await stack.walk("/api/v4/contacts.json?fields=id,name&limit=50")
    assert {r["id"] for r in records} == visible
    assert all(m["records"] == len(visible) for m in metas)
    assert len(visible) < len(stack.firm.contacts)
    ada, _ = await stack.walk("/api/v4/contacts.json?fields=id&limit=200", headers=ADA)
    assert len(ada) == len(stack.firm.contacts)


async def test_filtered_contact_list_counts_honestly(stack: Stack) -> None:
    visible = visible_contacts(stack.firm, 2)
    records, metas = await stack.walk("/api/v4/contacts.json?fields=id,type&type=Company&limit=20")
    companies = {c for c in visible if stack.firm.contacts[c]["type"] == "Company"}
    assert {r["id"] for r in records} == companies
    assert metas[0]["records"] == len(companies)


async def test_nested_contacts_are_stubs_and_the_rest_is_untouched(stack: Stack) -> None:
    visible = visible_contacts(stack.firm, 2)
    path = "/api/v4/communications.json?fields=id,senders{id,name,type},receivers{id,name,type}&limit=200"
    through, _ = await stack.walk(path)
    _, direct = await stack.get(path, base=str(stack.backend.make_url("/")).rstrip("/"))
    redacted = 0
    for got, raw in zip(through, direct["data"], strict=True):
        for key in ("senders", "receivers"):
            for g, r in zip(got[key], raw[key], strict=True):
                if r["type"] in CONTACT_TYPES and r["id"] not in visible:
                    assert g == {"id": r["id"], "name": "****", "type": r["type"], "redacted": True}
                    redacted += 1
                else:
                    assert g == r
    assert redacted > 0


async def test_hidden_contact_by_id_is_404_and_never_forwarded(stack: Stack) -> None:
    hidden = next(c for c in stack.firm.contacts if c not in visible_contacts(stack.firm, 2))
    status, _ = await stack.get(f"/api/v4/contacts/{hidden}.json?fields=id,name")
    assert status == 404
    for method in ("PATCH", "DELETE"):
        async with stack.http.request(method, f"{stack.proxy.url}/api/v4/contacts/{hidden}",
                                      headers={**RITA, "Content-Type": "application/json"},
                                      data=b'{"data":{"name":"x"}}' if method == "PATCH" else None) as r:
            assert r.status == 404
    assert not [r for r in stack.received if f"/contacts/{hidden}" in r.path_qs]
    assert hidden in stack.firm.contacts  # the DELETE never happened


@pytest.mark.parametrize("path,body,status", [
    ("/api/v4/tasks.json", {"name": "t", "assignee": {"id": "{hidden}", "type": "Contact"}}, 422),
    ("/api/v4/calendar_entries.json", {"summary": "s", "attendees": [{"id": "{hidden}", "type": "Contact"}]}, 422),
    ("/api/v4/communications.json", {"subject": "s", "senders": [{"id": "{hidden}", "type": "Contact"}]}, 404),
    ("/api/v4/activities.json", {"type": "HardCostEntry", "vendor": {"id": "{hidden}"}}, 422),
    ("/api/v4/conversation_messages.json", {"body": "b", "receivers": [{"id": "{hidden}", "type": "Contact"}]}, 422),
])
async def test_writes_naming_hidden_contacts_never_reach_the_backend(
    stack: Stack, path: str, body: dict[str, Any], status: int
) -> None:
    hidden = next(c for c in stack.firm.contacts if c not in visible_contacts(stack.firm, 2))
    payload = json.loads(json.dumps({"data": body}).replace('"{hidden}"', str(hidden)))
    async with stack.http.post(stack.proxy.url.with_path(path.split("?")[0]), json=payload, headers=RITA) as r:
        assert r.status == status, await r.text()
    assert not [r for r in stack.received if r.method == "POST"]


async def test_a_write_naming_a_visible_contact_goes_through(stack: Stack) -> None:
    visible = sorted(visible_contacts(stack.firm, 2))[0]
    matter = next(m for m in stack.firm.matters if stack.firm.can_access(2, m))
    payload = {"data": {"name": "call", "matter": {"id": matter}, "assignee": {"id": visible, "type": "Contact"}}}
    async with stack.http.post(f"{stack.proxy.url}/api/v4/tasks.json?fields=id,assignee{{id}}", json=payload,
                               headers=RITA) as r:
        assert r.status == 201, await r.text()
        assert (await r.json())["data"]["assignee"] == {"id": visible}
    assert len([r for r in stack.received if r.method == "POST"]) == 1


async def test_other_users_hours_are_null_top_level_and_nested(stack: Stack) -> None:
    responsible = {m for m, rec in stack.firm.matters.items()
                   if (rec.get("responsible_attorney") or {}).get("id") == 2}
    records, _ = await stack.walk("/api/v4/activities.json?fields=id,type,quantity,quantity_in_hours,total&limit=200")
    hidden = 0
    for got in records:
        rec = stack.firm.activities[got["id"]]
        own = rec["user"]["id"] == 2 or (rec.get("matter") and rec["matter"]["id"] in responsible)
        if rec["type"] == "TimeEntry" and not own:
            assert got["quantity"] is None and got["quantity_in_hours"] is None and got["quantity_redacted"] is True
            hidden += 1
        else:
            assert got["quantity"] == rec["quantity"]
        assert set(got) <= {"id", "type", "quantity", "quantity_in_hours", "total", "quantity_redacted", "redacted"}
    assert hidden > 0
    nested, _ = await stack.walk("/api/v4/calendar_entries.json?fields=id,time_entries{id,quantity}&limit=200")
    for entry in nested:
        for te in entry.get("time_entries") or []:
            rec = stack.firm.activities[te["id"]]
            own = rec["user"]["id"] == 2 or (rec.get("matter") and rec["matter"]["id"] in responsible)
            assert (te["quantity"] is None) == (rec["type"] == "TimeEntry" and not own)
            assert set(te) <= {"id", "quantity", "quantity_redacted"}


async def test_editing_hidden_hours_is_403_and_not_forwarded(stack: Stack) -> None:
    responsible = {m for m, rec in stack.firm.matters.items()
                   if (rec.get("responsible_attorney") or {}).get("id") == 2}
    target = next(a for a, rec in stack.firm.activities.items()
                  if rec["type"] == "TimeEntry" and rec["user"]["id"] != 2 and rec.get("matter")
                  and stack.firm.can_access(2, rec["matter"]["id"]) and rec["matter"]["id"] not in responsible)
    for body in ({"quantity": 60}, {"user_id": 2}, {"user": {"id": 2}}):
        async with stack.http.patch(f"{stack.proxy.url}/api/v4/activities/{target}.json", json={"data": body},
                                    headers=RITA) as r:
            assert r.status == 403
    assert not [r for r in stack.received if r.method == "PATCH"]
    async with stack.http.patch(f"{stack.proxy.url}/api/v4/activities/{target}.json", json={"data": {"note": "n"}},
                                headers=RITA) as r:
        assert r.status == 200  # other fields of the entry may still be edited


async def test_rates_of_other_users_are_removed(stack: Stack) -> None:
    records, _ = await stack.walk("/api/v4/activities.json?fields=id,price,total&limit=200")
    for got in records:
        if stack.firm.activities[got["id"]]["user"]["id"] == 2:
            assert "price" in got and "redacted" not in got
        else:
            assert "price" not in got and "total" not in got and got["redacted"] is True


async def test_personal_injury_needs_the_permission(stack: Stack) -> None:
    for path in ("/api/v4/damages.json", "/api/v4/medical_records_details.json"):
        assert (await stack.get(path))[0] == 403
        assert (await stack.get(path, headers=ADA))[0] == 200
    async with stack.http.delete(f"{stack.proxy.url}/api/v4/medical_bills/220001.json", headers=RITA) as r:
        assert r.status == 403
    assert not [r for r in stack.received if "medical" in r.path_qs or "damages" in r.path_qs
                if "token-2" in dict(r.headers).get("Authorization", "")]


async def test_concurrent_cold_requests_share_one_facts_crawl(stack: Stack) -> None:
    results = await asyncio.gather(*(stack.get("/api/v4/contacts.json?fields=id&limit=5") for _ in range(50)))
    assert all(status == 200 for status, _ in results)
    who = [r for r in stack.received if "who_am_i" in r.path_qs]
    matters = [r for r in stack.received
               if r.path_qs.startswith("/api/v4/matters.json") and "responsible_attorney" in r.path_qs]
    relationships = [r for r in stack.received if r.path_qs.startswith("/api/v4/relationships.json")]
    assert len(who) == 1 and len(relationships) == 1 and len(matters) == 1


async def test_a_write_that_changes_visibility_refreshes_the_callers_facts(stack: Stack) -> None:
    await stack.get("/api/v4/contacts.json?fields=id&limit=5")  # facts now cached
    async with stack.http.post(f"{stack.proxy.url}/api/v4/contacts.json?fields=id",
                               json={"data": {"type": "Person", "first_name": "New", "last_name": "Person"}},
                               headers=RITA) as r:
        assert r.status == 201
        created = (await r.json())["data"]["id"]
    status, body = await stack.get(f"/api/v4/contacts/{created}.json?fields=id,name")
    assert status == 200 and body["data"]["id"] == created


async def test_dry_run_answers_as_the_backend_and_logs_one_summary_of_its_decisions(dry: Stack) -> None:
    base = str(dry.backend.make_url("/")).rstrip("/")
    path = "/api/v4/communications.json?fields=id,senders{id,name,type},receivers{id,name,type}&limit=50"
    status, through = await dry.get(path)
    _, direct = await dry.get(path, base=base)
    assert status == 200 and through["data"] == direct["data"]
    hidden = [(i, k, j) for i, c in enumerate(direct["data"]) for k in ("senders", "receivers")
              for j, p in enumerate(c[k])
              if p["type"] in CONTACT_TYPES and p["id"] not in visible_contacts(dry.firm, 2)]
    hidden_names = {direct["data"][i][k][j]["name"] for i, k, j in hidden}
    lines = [json.loads(line) for line in dry.proxy.log_lines()]
    assert not [e for e in lines if e["event"] == "decision"]  # no line per decision by default
    [summary] = [e for e in lines if e["event"] == "decisions"]
    [request] = [e for e in lines if e["event"] == "request" and e["route"] == "/communications"]
    assert summary["mode"] == "dry-run" and summary["route"] == "/communications" and summary["method"] == "GET"
    assert summary["user_id"] == 2 == request["user_id"] and summary["request_id"] == request["request_id"]
    [entry] = summary["decided"]
    assert (entry["rule"], entry["action"], entry["outcome"]) == ("contacts_visibility", "redact_contact",
                                                                  "would_redact")
    assert entry["records"] == len(hidden) == request["decisions"] > 5
    # The paths are sampled and capped: five of the hidden objects' paths, not all of them.
    paths = entry["paths"]
    assert len(paths) == len(set(paths)) == 5 and set(paths) <= {f"data[{i}].{k}[{j}]" for i, k, j in hidden}
    logs = dry.proxy.logs.getvalue()
    assert hidden_names and not any(name in logs for name in hidden_names)
    assert "token-2" not in logs


async def test_dry_run_forwards_what_enforce_would_block(dry: Stack) -> None:
    hidden = next(c for c in dry.firm.contacts if c not in visible_contacts(dry.firm, 2))
    matter = next(m for m in dry.firm.matters if dry.firm.can_access(2, m))
    payload = {"data": {"name": "t", "matter": {"id": matter}, "assignee": {"id": hidden, "type": "Contact"}}}
    async with dry.http.post(f"{dry.proxy.url}/api/v4/tasks.json", json=payload, headers=RITA) as r:
        assert r.status == 201
    status, _ = await dry.get(f"/api/v4/contacts/{hidden}.json")
    assert status == 200
    assert '"outcome":"would_refuse"' in dry.proxy.logs.getvalue()
    metrics = dry.proxy.services.metrics.registry.get_sample_value(
        "redaction_proxy_blocked_total",
        {"rule": "contacts_visibility", "status": "422", "mode": "dry-run", "route": "/tasks"})
    assert metrics == 1
