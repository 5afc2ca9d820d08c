"""`redaction-proxy test`, as an operator runs it: the bundled cases pass (a real subprocess), a broken
case fails with a diff and exit 1, a policy step no case exercised is named, an invalid case is one
line with file:line:column and exit 2, and a settings file combines with a case's own settings.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from proxy.cli import main
from proxy.policytest.case import find_cases, load_case
from proxy.yamldoc import ConfigError
from tests.support.harness import POLICIES
from tests.test_cli import run_cli

CASES = Path(__file__).parent / "policy_cases"
PRICE_NONE = CASES / "v4.0.5_activities_get_price_none.yaml"  # GET /activities/16 as user 2; price and total redacted
VENDOR_PATCH = CASES / "v4.0.9_activities_patch_vendor.yaml"  # a PATCH naming a hidden vendor: 422, never forwarded


def run(argv: list[str], capsys: pytest.CaptureFixture[str], **environ: str) -> tuple[int, str, str]:
    code = main(["test", *argv], environ=environ)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_bundled_cases_pass_through_the_command() -> None:
    result = run_cli("test", str(CASES))
    total = len(list(CASES.glob("*.yaml")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"PASS: {total}/{total}" in result.stdout
    assert "FAIL" not in result.stdout and result.stderr == ""


def test_a_broken_case_fails_with_a_readable_diff_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    case = yaml.safe_load(PRICE_NONE.read_text())
    case["expect"]["body"]["data"]["quantity"] = 9999  # the proxy answers 2197, as the backend does
    broken.write_text(yaml.safe_dump(case))
    code, out, _ = run([str(broken), str(VENDOR_PATCH)], capsys)
    assert code == 1
    assert f"{broken}: FAIL" in out
    assert ": PASS" not in out  # a passing case is not listed without -v
    lines = out.splitlines()
    assert '    -    "quantity": 9999,' in lines and '    +    "quantity": 2197,' in lines, out
    assert "    --- expected" in lines and "    +++ actual" in lines
    assert '"redacted": true' in out  # context lines: the rest of the body, pretty-printed with sorted keys
    assert "PASS: 1/2" in lines and "FAIL: 1/2" in lines


def test_a_wrong_status_and_a_forwarded_write_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = yaml.safe_load(VENDOR_PATCH.read_text())
    case["facts"]["relationships"].append({"contact": 950, "matter": 500})  # the vendor is visible after all
    path = tmp_path / "visible_vendor.yaml"
    path.write_text(yaml.safe_dump(case))
    code, out, _ = run([str(path)], capsys)
    assert code == 1
    assert "status: expected 422, got 200" in out
    assert "forwarded: expected the request to be refused before the backend; it reached it" in out


def test_verbose_lists_passes_too(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([str(PRICE_NONE), "-v"], capsys)
    assert code == 0 and "v4.0.5_activities_get_price_none.yaml: PASS" in out
    code, out, _ = run([str(PRICE_NONE)], capsys, REDACTION_PROXY_VERBOSE="on")
    assert code == 0 and "v4.0.5_activities_get_price_none.yaml: PASS" in out
    code, out, _ = run([str(PRICE_NONE)], capsys)
    assert code == 0 and "PASS: 1/1" in out and ": PASS" not in out


def test_a_step_no_case_exercised_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    family = policies / "activities.yaml"
    lines = family.read_text().splitlines()
    anchor = next(i for i, line in enumerate(lines) if "action: redact_rate" in line)
    lines.insert(anchor + 1, '      - {rule: contacts_visibility, action: redact_contact, at: client_contact, '
                             'seed: "an extra step"}')
    family.write_text("\n".join(lines) + "\n")
    code, out, _ = run([str(PRICE_NONE), "--policies", str(policies)], capsys)
    assert code == 0, out  # the cases still pass: an unexercised step is reported, not a failure
    report = out.split("NOT EXERCISED: ", 1)[1].splitlines()
    extra = f"{family}:{anchor + 2}:9  contacts_visibility  redact_contact  (seed: an extra step)"
    assert extra in [line.strip() for line in report], out
    exercised = f"{family}:{anchor + 1}:9  billing_rate_visibility  redact_rate"
    assert not any(exercised in line for line in report), "the step the case exercised is listed"
    blocking = f"{family}:{anchor + 4}:9"  # the POST vendor check: a GET never runs it
    assert any(blocking in line for line in report)


def test_a_check_that_blocks_counts_as_exercised(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([str(VENDOR_PATCH)], capsys)
    assert code == 0
    missed = out.split("NOT EXERCISED", 1)[1]
    assert "refuse_contact_reference  (seed: 4.0.9 activities/{activity_id} PATCH vendor)" not in missed, out
    assert "refuse_contact_reference  (seed: 4.0.9 activities POST vendor)" in missed


def test_an_unknown_key_in_a_case_is_exit_2_with_its_position(tmp_path: Path) -> None:
    case = tmp_path / "typo.yaml"
    case.write_text(PRICE_NONE.read_text().replace("expect:\n  status: 200\n  body:", "expect:\n  status: 200\n  bdy:"))
    line = case.read_text().splitlines().index("  bdy:") + 1
    result = run_cli("test", str(case))
    assert result.returncode == 2, result
    assert result.stderr.splitlines() == [
        f"{case}:{line}:3: unknown key 'bdy' (known: body, forwarded, forwarded_query_has, status)"]
    assert result.stdout == ""  # nothing ran


def test_every_problem_of_every_case_is_listed_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "caller: {id: 2, roles: [Attorney]}\n"
        "facts:\n  matters: [{id: 500, clinet: 900}]\n"
        "settings: {contacts_visibility: sometimes}\n"
        "request: {method: FETCH, path: /api/v4/contacts.json}\n"
        "expect: {status: 200, forwarded: maybe}\n")
    (tmp_path / "b.yaml").write_text("caller: {id: two}\nrequest: {method: GET, path: /x}\nexpect: {status: 1200}\n")
    with pytest.raises(ConfigError):
        load_case(tmp_path / "a.yaml")
    result = run_cli("test", str(tmp_path))
    assert result.returncode == 2
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert result.stderr.splitlines() == [
        f"{a}:3:23: unknown key 'clinet' (known: client, contact_fields, id, responsible_attorney)",
        f"{a}:4:12: contacts_visibility: 'sometimes' is not one of ['all', 'restricted']",
        f"{a}:5:11: method: must be one of GET, HEAD, POST, PUT, PATCH, DELETE",
        f"{a}:6:23: forwarded: must be true or false",
        f"{b}:1:10: id: must be a whole number",
        f"{b}:3:10: status: must be an HTTP status (100-599)",
    ]


def test_missing_paths_and_empty_directories_are_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    code, out, err = run([str(tmp_path / "nowhere.yaml"), str(tmp_path / "empty")], capsys)
    assert code == 2 and out == ""
    assert err.splitlines() == [f"{tmp_path / 'nowhere.yaml'}: no such file or directory",
                                f"{tmp_path / 'empty'}: no case files (*.yaml, *.yml) in this directory"]


def test_any_file_name_is_a_case() -> None:
    assert find_cases([PRICE_NONE]) == [PRICE_NONE]
    assert PRICE_NONE in find_cases([CASES]) and all(p.suffix == ".yaml" for p in find_cases([CASES]))


@pytest.mark.parametrize(("file_entry", "case_settings", "passes"), [
    ({}, None, False),                                           # the file lets user 2 see rates
    ({"billing_rate_visibility": "none"}, None, True),           # the file's user entry applies
    ({"billing_rate_visibility": "all"}, {"billing_rate_visibility": "none"}, True),  # the case's wins
    ({"billing_rate_visibility": "none"}, {"billing_rate_visibility": "all"}, False),
])
def test_a_settings_file_is_the_base_and_a_case_updates_its_callers_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], file_entry: dict[str, str],
    case_settings: dict[str, str] | None, passes: bool,
) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump({
        "defaults": {"contacts_visibility": "all", "activity_hours_visibility": "all",
                     "billing_rate_visibility": "all", "permissions": ["matters", "contacts"]},
        "users": {"2": file_entry} if file_entry else {},
    }))
    case = yaml.safe_load(PRICE_NONE.read_text())
    case.pop("settings")
    if case_settings is not None:
        case["settings"] = case_settings
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(case))
    code, out, _ = run([str(path), "--settings", str(settings)], capsys)
    assert code == (0 if passes else 1), out


def test_a_case_without_settings_runs_with_everything_visible(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = yaml.safe_load(PRICE_NONE.read_text())
    case.pop("settings")
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(case))
    code, out, _ = run([str(path)], capsys)
    assert code == 1 and '+    "price": 350.0,' in out


def test_invalid_policies_or_settings_are_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text("defaults: {contacts_visibility: all}\nusers: {'2': {colour: blue}}\n")
    code, out, err = run([str(PRICE_NONE), "--settings", str(settings), "--policies", str(tmp_path / "none")],
                         capsys)
    assert code == 2 and out == ""
    assert any("colour" in line for line in err.splitlines())
    assert any(str(tmp_path / "none") in line for line in err.splitlines())


def test_the_readmes_example_case_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("### Policy tests"):]
    example = section[section.index("```yaml\n") + 8:section.index("```\n", section.index("```yaml\n") + 8)]
    path = tmp_path / "example.yaml"
    path.write_text(example)
    code, out, _ = run([str(path)], capsys)
    assert code == 0, out


def test_a_head_case_counts_the_get_the_proxy_forwards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = yaml.safe_load(PRICE_NONE.read_text())
    case["request"]["method"] = "HEAD"
    del case["expect"]["body"]  # a HEAD answer has none
    path = tmp_path / "head.yaml"
    path.write_text(yaml.safe_dump(case))
    code, out, _ = run([str(path)], capsys)
    assert code == 0, out
