"""Issue 10: the spec walk, `redaction-proxy coverage`, waivers, and policy mistakes failing closed in
`check` and in the load path start-up and SIGHUP reload share."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from proxy.cli import main
from proxy.policy.coverage import Status, cover
from proxy.policy.load import load_policies
from proxy.policy.spec import BUNDLED, SPECS, Kind, index_openapi
from proxy.serve import load
from proxy.yamldoc import ConfigError
from tests.support.harness import POLICIES

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "clio"
needs_shared = pytest.mark.skipif(not (SHARED / "openapi.json").is_file(), reason="../shared/clio is not beside")


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


# A small OpenAPI 3 document with every construct the walker must follow.
DOC: dict[str, Any] = {
    "openapi": "3.0.0",
    "servers": [{"url": "https://api.example.test/api/v4"}],
    "paths": {
        "/widgets.json": {"get": {"responses": {"200": {"content": {"application/json; charset=utf-8": {
            "schema": ref("Widget_List")}}}}}},
        "/widgets/{widget_id}": {"patch": {
            "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                "data": {"type": "object", "properties": {"owner": ref("Contact_base")}}}}}}},
            "responses": {"200": {"content": {"application/json": {"schema": ref("Widget_Show")}}}}}},
        "/gadgets/{gadget}/parts.json": {"get": {"responses": {"200": {"content": {"application/json": {
            "schema": {"type": "object", "properties": {"data": {"type": "array", "items": {
                "type": "object", "properties": {"entry": ref("Activity_base"),
                                                 "note": ref("Note_base")}}}}}}}}}}},
    },
    "components": {"schemas": {
        "Widget_List": {"type": "object", "properties": {"data": {"type": "array", "items": ref("Widget")}}},
        "Widget_Show": {"type": "object", "properties": {"data": ref("Widget")}},
        "Widget": {"allOf": [ref("Widget_base"), {"type": "object", "properties": {
            "owner": ref("Contact_base"),
            "people": {"type": "array", "items": {"oneOf": [ref("Participant_base")]}},
            "deep": {"type": "object", "properties": {"holder": ref("Contact_base")}},
            "lines": {"type": "array", "items": {"anyOf": [ref("Line")]}},
        }}]},
        "Widget_base": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
        "Line": {"type": "object", "properties": {"activity": ref("Activity_base"),
                                                 "inner": ref("Inner")}},
        "Inner": {"type": "object", "properties": {"contact": ref("Contact_base")}},
        "Contact_base": {"type": "object", "properties": {
            "id": {"type": "integer"}, "type": {"type": "string", "enum": ["Company", "Person"]}}},
        "Participant_base": {"type": "object", "properties": {
            "id": {"type": "integer"}, "type": {"type": "string", "enum": ["Person", "Company", "User"]}}},
        "Activity_base": {"type": "object", "properties": {
            "id": {"type": "integer"}, "type": {"type": "string", "enum": ["TimeEntry", "ExpenseEntry"]},
            "price": {"type": "number"}, "total": {"type": "number"}}},
        "Note_base": {"type": "object", "properties": {"type": {"type": "string", "enum": ["Matter", "Contact"]}}},
    }},
}


def places_of(doc: dict[str, Any]) -> set[tuple[str, str, str, Kind]]:
    from proxy.policy.coverage import places

    return {(p.method, p.template, p.at, p.kind) for p in places(index_openapi(doc, "doc.json"))}


def test_the_walker_follows_refs_allof_oneof_anyof_arrays_nesting_and_any_parameter_name() -> None:
    index = index_openapi(DOC, "doc.json")
    assert index.base == "/api/v4"
    found = places_of(DOC)
    assert {
        ("GET", "/widgets", "owner", Kind.CONTACT),
        ("GET", "/widgets", "people[]", Kind.PARTICIPANT),
        ("GET", "/widgets", "deep.holder", Kind.CONTACT),              # an inline nested object
        ("GET", "/widgets", "lines[].activity", Kind.TIME_ENTRY),
        ("GET", "/widgets", "lines[].activity", Kind.RATED),
        ("PATCH", "/widgets/{id}", "owner", Kind.CONTACT),             # `{widget_id}`, no `.json`
        ("GET", "/gadgets/{id}/parts", "entry", Kind.TIME_ENTRY),      # an inline array answer
    } <= found
    # Three levels down the API returns defaults only: listed, not a gap.
    assert ("GET", "/widgets", "lines[].inner.contact", Kind.CONTACT) in found
    # A note typed `Contact` is a note about a contact, not a contact.
    assert not [p for p in found if p[2] == "note"]
    assert [o.request for o in index.operations if o.method == "PATCH"] == ["PATCH /widgets/{id} request data"]


def test_a_third_level_place_is_nested_defaults_not_a_gap(tmp_path: Path) -> None:
    spec = index_openapi(DOC, "doc.json")
    statuses = {(f.place.at, f.status) for f in cover(load_policies(POLICIES), spec)}
    assert ("lines[].inner.contact", Status.NESTED_DEFAULTS) in statuses
    assert ("owner", Status.NOT_COVERED) in statuses


@needs_shared
@pytest.mark.parametrize("spec_name", sorted(BUNDLED))
def test_the_bundled_index_is_the_walk_of_the_public_spec(spec_name: str) -> None:
    regenerated = index_openapi(json.loads((SHARED / spec_name).read_text()), spec_name).to_json()
    assert regenerated == (SPECS / BUNDLED[spec_name]).read_text()


def test_coverage_of_both_bundled_specs_has_no_gap(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage"]) == 0
    out = capsys.readouterr().out
    assert "NOT COVERED" not in out
    assert "GET /clio_payments/links at destination_contact [contact]: covered: " in out
    assert "GET /matters/{id} at matter_bill_recipients[].recipient [contact]: covered: " in out
    assert "GET /billable_matters/ids at client [contact]: waived: " in out and "matter ids only" in out
    for source in BUNDLED:
        assert f"# {source}: " in out


@needs_shared
def test_coverage_reads_an_openapi_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", "--openapi", str(SHARED / "openapi.json"), "--policies", str(POLICIES)]) == 0
    assert "GET /clio_payments/payments/{id} at contact [contact]: covered: " in capsys.readouterr().out


def copy_policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    return target


def test_a_removed_step_is_named_not_covered_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policies = copy_policies(tmp_path)
    path = policies / "matters.yaml"
    lines = [line for line in path.read_text().splitlines(keepends=True)
             if not ("matter_bill_recipients" in line and "redact_contact" in line)]
    path.write_text("".join(lines))
    assert main(["coverage", "--policies", str(policies)]) == 1
    out = capsys.readouterr().out
    assert "GET /matters/{id} at matter_bill_recipients[].recipient [contact]: NOT COVERED" in out
    assert "GET /matters at matter_bill_recipients[].recipient [contact]: NOT COVERED" in out


def test_a_waiver_covers_a_place_and_the_report_shows_its_reason(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policies = copy_policies(tmp_path)
    path = policies / "log_entries.yaml"
    path.write_text(path.read_text().replace("      - {rule: contacts_visibility, action: redact_contact, at: item",
                                             "      - {rule: contacts_visibility, action: redact_contact, at: user"))
    (policies / "waivers.yaml").write_text(
        "waive:\n  - {route: /log_entries, at: item, methods: [GET], reason: \"our backend never logs contacts\"}\n")
    assert main(["coverage", "--policies", str(policies)]) == 0
    out = capsys.readouterr().out
    assert "GET /log_entries at item [participant]: waived: " in out
    assert "waivers.yaml:2:5 our backend never logs contacts" in out


def test_a_waiver_needs_a_reason(tmp_path: Path) -> None:
    policies = copy_policies(tmp_path)
    (policies / "waivers.yaml").write_text("waive:\n  - {route: /log_entries, at: item}\n"
                                           "  - {family: contacts, reason: ok}\n")
    with pytest.raises(ConfigError) as err:
        load_policies(policies)
    assert [p.split(": ", 1)[0].rsplit("/", 1)[-1] for p in err.value.problems] == [
        "waivers.yaml:2:5", "waivers.yaml:3:24"]


SETTINGS = Path(__file__).resolve().parents[1] / "deploy" / "demo-settings.yaml"


def test_check_refuses_a_location_naming_no_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policies = copy_policies(tmp_path)
    notes = policies / "notes.yaml"
    notes.write_text(notes.read_text().replace("at: contact,", "at: contatc,"))
    assert main(["check", "--settings", str(SETTINGS), "--policies", str(policies)]) == 2
    err = capsys.readouterr().err
    assert f"{notes}:12:9: at: `contatc` names no field the API has at /notes " in err
    assert "GET /notes at contact [contact]: NOT COVERED" in err
    # Start-up and SIGHUP reload go through the same load: the typo is refused there too.
    with pytest.raises(ConfigError, match="contatc"):
        load(policies, SETTINGS)


def test_check_refuses_a_dropped_family(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policies = copy_policies(tmp_path)
    (policies / "contacts.yaml").unlink()
    assert main(["check", "--settings", str(SETTINGS), "--policies", str(policies)]) == 2
    err = capsys.readouterr().err
    assert f"{policies / 'contacts.yaml'}:1:1: family contacts is policed by the bundled policies (" in err
    assert "contacts.yaml:9:5)" in err
    assert "GET /contacts/{id} at . [contact]: NOT COVERED" in err
    with pytest.raises(ConfigError, match="family contacts"):
        load(policies, SETTINGS)


def test_a_dropped_family_may_be_waived_with_a_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policies = copy_policies(tmp_path)
    (policies / "log_entries.yaml").write_text(
        "waive:\n  - {family: log_entries, reason: \"our backend has no log entries endpoint\"}\n")
    assert main(["check", "--settings", str(SETTINGS), "--policies", str(policies)]) == 0
    assert capsys.readouterr().out.startswith("ok: ")


def test_check_with_an_openapi_document_reports_its_uncovered_places(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(DOC))
    assert main(["check", "--settings", str(SETTINGS), "--openapi", str(spec)]) == 2
    assert "GET /widgets at owner [contact]: NOT COVERED" in capsys.readouterr().err


def test_the_bundled_policies_pass_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--settings", str(SETTINGS)]) == 0


def test_check_refuses_a_created_contacts_query_without_the_caller(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without `{caller_id}` the created-contacts fact lists every contact: all would count as the
    caller's own, and a restricted caller would see them all."""
    policies = copy_policies(tmp_path)
    facts = policies / "facts.yaml"
    facts.write_text(facts.read_text().replace("{caller_id}", "2"))
    assert main(["check", "--settings", str(SETTINGS), "--policies", str(policies)]) == 2
    assert "facts.created_contacts.query: must filter by the caller" in capsys.readouterr().err
