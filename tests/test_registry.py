"""The rule registry: one place for each rule's knowledge (issue 13, item 1).

A toy rule (tests/support/toy_rule.py: one module) is added by one registry line and its policy
lines, with no other product file touched, and a real request through the proxy obeys it. The
registry refuses an incomplete rule at start-up; a rule's setting may be left out of a settings file.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from proxy.facts.settings import load_settings
from proxy.http.state import Loaded
from proxy.policy.load import load_policies
from proxy.rules import BUNDLED
from proxy.rules.base import ActionDef, RuleDef, Setting, no_spec
from proxy.rules.registry import Registry
from proxy.yamldoc import ConfigError
from tests.conftest import ALL
from tests.support import toy_rule
from tests.support.harness import POLICIES, start_app, start_proxy
from tests.support.scripted import Script, make_scripted_app

TOY = Registry((*BUNDLED.rules, toy_rule.RULE))  # the registry line

NOTES_POLICY = """\
family: notes
seed: ["toy: notes_visibility hides a note's detail"]
routes:
  - route: /notes
    shape: index
    methods: [GET]
    respond:
      - {rule: notes_visibility, action: redact_detail, at: ".", seed: "toy"}
  - route: /notes/{id}
    shape: show
    methods: [GET]
    respond:
      - {rule: notes_visibility, action: redact_detail, at: ".", seed: "toy"}
"""

NOTES = {"data": [{"id": 1, "subject": "call", "detail": "SENTINEL-DETAIL-1"},
                  {"id": 2, "subject": "memo", "detail": "SENTINEL-DETAIL-2"}],
         "meta": {"records": 2}}


def toy_policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    shutil.copy(POLICIES / "facts.yaml", directory / "facts.yaml")
    (directory / "notes.yaml").write_text(NOTES_POLICY)
    return directory


def toy_settings(tmp_path: Path) -> Path:
    """Defaults without `notes_visibility` (the rule's default holds); user 2 has it hidden."""
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"defaults": ALL, "users": {"2": {"notes_visibility": "hidden"}}}))
    return path


async def test_a_toy_rule_added_by_one_registry_line_redacts_through_the_proxy(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    policies, settings = toy_policies(tmp_path), toy_settings(tmp_path)
    loaded = Loaded(load_policies(policies, TOY), load_settings(settings, TOY), "toy")
    script = Script(caller={"id": 2, "roles": []}, answers={("GET", "/api/v4/notes.json"): (200, NOTES)})
    backend = await start_app(make_scripted_app(script))
    proxy = await start_proxy(backend.make_url("/"), settings, policies=policies, loaded=loaded)
    try:
        async with http.get(proxy.url.with_path("/api/v4/notes.json").with_query(fields="id,subject,detail"),
                            headers={"Authorization": "Bearer token-2"}) as response:
            assert response.status == 200
            text = await response.text()
        body: dict[str, Any] = yaml.safe_load(text)
        assert "SENTINEL-DETAIL" not in text
        assert [n.get("detail_redacted") for n in body["data"]] == [True, True]
        assert [n["subject"] for n in body["data"]] == ["call", "memo"]
        # ordering by the hidden field is refused before the backend (the rule says what it hides)
        before = len(script.forwarded)
        async with http.get(proxy.url.with_path("/api/v4/notes.json").with_query(order="detail(asc)"),
                            headers={"Authorization": "Bearer token-2"}) as response:
            assert response.status == 400
        assert len(script.forwarded) == before
    finally:
        await proxy.close()
        await backend.close()


async def test_the_toy_rule_leaves_callers_at_its_default_alone(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    policies, settings = toy_policies(tmp_path), toy_settings(tmp_path)
    loaded = Loaded(load_policies(policies, TOY), load_settings(settings, TOY), "toy")
    script = Script(caller={"id": 3, "roles": []}, answers={("GET", "/api/v4/notes.json"): (200, NOTES)})
    backend = await start_app(make_scripted_app(script))
    proxy = await start_proxy(backend.make_url("/"), settings, policies=policies, loaded=loaded)
    try:
        async with http.get(proxy.url.with_path("/api/v4/notes.json").with_query(fields="id,subject,detail"),
                            headers={"Authorization": "Bearer token-3"}) as response:
            assert response.status == 200
            assert "SENTINEL-DETAIL-1" in await response.text()
    finally:
        await proxy.close()
        await backend.close()


def test_the_bundled_registry_knows_nothing_of_the_toy_rule(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="notes_visibility"):
        load_settings(toy_settings(tmp_path))
    with pytest.raises(ConfigError, match=r"action: must be one of .*redact_contact"):
        load_policies(toy_policies(tmp_path))


def test_a_settings_file_without_a_rules_setting_takes_the_rules_default(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"permissions": ["matters"]}}))
    resolved = load_settings(path).for_caller(7, ())
    assert [resolved[rule.setting.key] for rule in BUNDLED.rules if rule.setting] == ["all", "all", "all"]


def test_the_permissions_are_still_required(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"contacts_visibility": "all"}}))
    with pytest.raises(ConfigError, match="must set 'permissions'"):
        load_settings(path)


def _toy(**changes: Any) -> RuleDef:
    action = ActionDef("redact_detail", spec=no_spec, respond=toy_rule.DetailRedaction(), order=10)
    fields: dict[str, Any] = {"name": "notes_visibility", "setting": toy_rule.SETTING, "actions": (action,),
                              "active": toy_rule.hidden}
    return RuleDef(**{**fields, **changes})


@pytest.mark.parametrize(("rule", "problem"), [
    (_toy(actions=(ActionDef("redact_detail", spec=no_spec, respond=toy_rule.DetailRedaction()),)),
     "action redact_detail: has no apply order"),
    (_toy(actions=(ActionDef("redact_detail", respond=toy_rule.DetailRedaction(), order=10),)),
     "action redact_detail: has no spec"),
    (_toy(actions=(ActionDef("redact_detail", spec=no_spec, respond=toy_rule.DetailRedaction(), order=1),)),
     "apply order 1 is also redact_contact's"),
    (_toy(actions=(ActionDef("redact_detail", spec=no_spec),)), "neither responds nor checks anything"),
    (_toy(actions=(ActionDef("redact_contact", spec=no_spec, respond=toy_rule.DetailRedaction(), order=10),)),
     "already an action of contacts_visibility"),
    (_toy(actions=()), "has no action"),
    (_toy(setting=Setting("notes_visibility", ("all", "hidden"), default="none")), "the default 'none'"),
    (_toy(setting=Setting("contacts_visibility", ("all",), default="all")), "is already taken"),
    (_toy(facts=("visible_notes",)), "needs fact 'visible_notes', which nothing resolves"),
    (_toy(name="contacts_visibility", setting=None), "rule contacts_visibility: defined twice"),
])
def test_an_incomplete_rule_is_refused_at_start(rule: RuleDef, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        BUNDLED.with_rule(rule)
    assert any(problem in p for p in info.value.problems), info.value.problems


def test_the_bundled_registry_is_complete() -> None:
    assert [r.name for r in BUNDLED.rules] == [
        "contacts_visibility", "activity_hours_visibility", "billing_rate_visibility", "personal_injury"]
    assert BUNDLED.fact_queries == ("who_am_i", "matters", "relationships", "created_contacts")
    assert BUNDLED.permissions == {"matters", "documents", "contacts", "personal_injury", "billing"}


def test_a_policy_line_may_say_only_what_its_action_takes(tmp_path: Path) -> None:
    """Each action's spec names its keys: `status` means nothing to redact_contact and is an error,
    not a silently ignored word."""
    directory = tmp_path / "policies"
    directory.mkdir()
    shutil.copy(POLICIES / "facts.yaml", directory / "facts.yaml")
    (directory / "contacts.yaml").write_text(
        "family: contacts\nseed: [x]\nroutes:\n  - route: /contacts\n    shape: index\n    methods: [GET]\n"
        "    respond:\n      - {rule: contacts_visibility, action: redact_contact, at: company, status: 422,"
        " seed: x}\n")
    with pytest.raises(ConfigError, match="unknown key 'status'"):
        load_policies(directory)
