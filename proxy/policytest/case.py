"""A policy case: one YAML file (a request, the caller's facts, the backend's answer, the expected
answer), validated into a frozen value. Every problem is reported at once with file:line:column, and
an unknown key is one: a misspelt `expect` must not make a case that checks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..facts.settings import _entry as settings_entry
from ..yamldoc import ConfigError, Doc, Problems, load_yaml

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_CASE_KEYS = {"row", "binding", "caller", "settings", "facts", "request", "upstream", "expect"}
_CALLER_KEYS = {"id", "roles"}
_FACTS_KEYS = {"matters", "relationships", "created_contacts"}
_MATTER_KEYS = {"id", "client", "responsible_attorney", "contact_fields"}
_RELATIONSHIP_KEYS = {"contact", "matter"}
_REQUEST_KEYS = {"method", "path", "body"}
_UPSTREAM_KEYS = {"status", "body"}
_EXPECT_KEYS = {"status", "body", "forwarded", "forwarded_query_has"}


@dataclass(frozen=True, slots=True)
class CaseRequest:
    method: str
    path: str                        # path and query, as the client sends it: /api/v4/contacts.json?fields=id
    body: Any = None                 # sent as JSON; None: no body


@dataclass(frozen=True, slots=True)
class CaseUpstream:
    status: int
    body: Any = None                 # None: an empty body


@dataclass(frozen=True, slots=True)
class CaseExpect:
    status: int
    has_body: bool                   # no `body` key: the answer's body is not compared
    body: Any = None
    forwarded: bool = True           # whether the request reached the backend (False: blocked by a check)
    forwarded_query_has: tuple[str, ...] = ()  # fragments of the query the backend got (the fields added)


@dataclass(frozen=True, slots=True)
class Case:
    file: str
    caller_id: int
    caller_roles: tuple[str, ...]
    settings: dict[str, Any]         # the caller's own settings entry (validated as the settings file's)
    request: CaseRequest
    expect: CaseExpect
    upstream: CaseUpstream | None = None   # None: the backend answers 404 to anything but facts
    matters: tuple[dict[str, Any], ...] = ()
    relationships: tuple[dict[str, Any], ...] = ()
    created_contacts: tuple[int, ...] = ()
    row: str | None = None           # the changelog row the case encodes, for people
    binding: str | None = None       # the `seed` of the binding the case is about (the test suite removes it)


def load_case(path: Path) -> Case:
    """Load and validate one case file; raise ConfigError listing every problem."""
    problems = Problems()
    doc = load_yaml(path, problems)
    problems.raise_if_any()
    assert doc is not None
    case = _case(doc, problems)
    problems.items.sort(key=_position)  # in the file's order, as a reader goes through it
    problems.raise_if_any()
    assert case is not None
    return case


def find_cases(paths: list[Path]) -> list[Path]:
    """The case files named: a file as given, a directory's *.yaml and *.yml (recursively, sorted).
    Any file name is accepted; raise ConfigError for a path that is missing or holds no case."""
    found: list[Path] = []
    problems = Problems()
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            if not inside:
                problems.add(str(path), "no case files (*.yaml, *.yml) in this directory")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            problems.add(str(path), "no such file or directory")
    problems.raise_if_any()
    return list(dict.fromkeys(found))


def _case(doc: Doc, problems: Problems) -> Case | None:
    value = doc.value
    if not isinstance(value, dict):
        problems.add(doc.where(), "a case must be a mapping with caller, request and expect")
        return None
    _known(doc, value, _CASE_KEYS, (), problems)
    for key in ("caller", "request", "expect"):
        if key not in value:
            problems.add(doc.where(), f"missing {key!r}")
    row = _text(doc, value, "row", (), problems)
    binding = _text(doc, value, "binding", (), problems)

    caller = _mapping(doc, value.get("caller", {}), ("caller",), _CALLER_KEYS, problems)
    caller_id = _int(doc, caller, "id", ("caller",), problems, required="caller" in value)
    roles = _list(doc, caller.get("roles", []), ("caller", "roles"), problems)
    for i, role in enumerate(roles):
        if not isinstance(role, str):
            problems.add(doc.where("caller", "roles", i), "a role must be a string")

    settings: dict[str, Any] = {}
    if value.get("settings") is not None:
        if isinstance(value["settings"], dict):
            settings = settings_entry(doc, value["settings"], ("settings",), problems)
        else:
            problems.add(doc.where("settings"), "settings: must be a mapping")

    facts = _mapping(doc, value.get("facts", {}), ("facts",), _FACTS_KEYS, problems)
    matters = _list(doc, facts.get("matters", []), ("facts", "matters"), problems)
    for i, matter in enumerate(matters):
        at = ("facts", "matters", i)
        entry = _mapping(doc, matter, at, _MATTER_KEYS, problems)
        _int(doc, entry, "id", at, problems, required=True)
        _int(doc, entry, "client", at, problems)
        _int(doc, entry, "responsible_attorney", at, problems)
        _ints(doc, entry.get("contact_fields", []), (*at, "contact_fields"), problems)
    relationships = _list(doc, facts.get("relationships", []), ("facts", "relationships"), problems)
    for i, relationship in enumerate(relationships):
        at = ("facts", "relationships", i)
        entry = _mapping(doc, relationship, at, _RELATIONSHIP_KEYS, problems)
        _int(doc, entry, "contact", at, problems, required=True)
        _int(doc, entry, "matter", at, problems, required=True)
    created = _ints(doc, facts.get("created_contacts", []), ("facts", "created_contacts"), problems)

    raw_request = _mapping(doc, value.get("request", {}), ("request",), _REQUEST_KEYS, problems)
    method = raw_request.get("method")
    if method not in METHODS:
        problems.add(doc.where("request", "method"), f"method: must be one of {', '.join(METHODS)}")
    path = raw_request.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        problems.add(doc.where("request", "path"), "path: must be a path starting with / (a query may follow)")

    upstream = None
    if "upstream" in value:
        raw_upstream = _mapping(doc, value["upstream"], ("upstream",), _UPSTREAM_KEYS, problems)
        status = _status(doc, raw_upstream, ("upstream",), problems)
        upstream = CaseUpstream(status, raw_upstream.get("body"))

    raw_expect = _mapping(doc, value.get("expect", {}), ("expect",), _EXPECT_KEYS, problems)
    expect_status = _status(doc, raw_expect, ("expect",), problems)
    forwarded = raw_expect.get("forwarded", True)
    if not isinstance(forwarded, bool):
        problems.add(doc.where("expect", "forwarded"), "forwarded: must be true or false")
    fragments = _list(doc, raw_expect.get("forwarded_query_has", []), ("expect", "forwarded_query_has"), problems)
    for i, fragment in enumerate(fragments):
        if not isinstance(fragment, str):
            problems.add(doc.where("expect", "forwarded_query_has", i), "a query fragment must be a string")

    if problems.items:
        return None
    return Case(
        file=doc.file, caller_id=caller_id, caller_roles=tuple(roles), settings=settings,
        request=CaseRequest(str(method), str(path), raw_request.get("body")),
        expect=CaseExpect(expect_status, "body" in raw_expect, raw_expect.get("body"), bool(forwarded),
                          tuple(fragments)),
        upstream=upstream, matters=tuple(matters), relationships=tuple(relationships),
        created_contacts=tuple(created), row=row, binding=binding,
    )


def _position(problem: str) -> tuple[int, int]:
    parts = problem.split(": ", 1)[0].rsplit(":", 2)
    return (int(parts[1]), int(parts[2])) if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit() else (0, 0)


def _known(doc: Doc, value: dict[str, Any], known: set[str], at: tuple[str | int, ...], problems: Problems) -> None:
    for key in value:
        if key not in known:
            problems.add(doc.where(*at, key), f"unknown key {key!r} (known: {', '.join(sorted(known))})")


def _mapping(
    doc: Doc, raw: Any, at: tuple[str | int, ...], known: set[str], problems: Problems
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        problems.add(doc.where(*at), f"must be a mapping with some of {', '.join(sorted(known))}")
        return {}
    _known(doc, raw, known, at, problems)
    return raw


def _list(doc: Doc, raw: Any, at: tuple[str | int, ...], problems: Problems) -> list[Any]:
    if not isinstance(raw, list):
        problems.add(doc.where(*at), "must be a list")
        return []
    return raw


def _int(
    doc: Doc, entry: dict[str, Any], key: str, at: tuple[str | int, ...], problems: Problems,
    *, required: bool = False,
) -> int:
    raw = entry.get(key)
    if raw is None:
        if required:
            problems.add(doc.where(*at), f"missing {key!r}")
        return 0
    if type(raw) is not int:
        problems.add(doc.where(*at, key), f"{key}: must be a whole number")
        return 0
    return raw


def _ints(doc: Doc, raw: Any, at: tuple[str | int, ...], problems: Problems) -> list[int]:
    items = _list(doc, raw, at, problems)
    for i, item in enumerate(items):
        if type(item) is not int:
            problems.add(doc.where(*at, i), "must be a whole number (an id)")
    return items


def _status(doc: Doc, entry: dict[str, Any], at: tuple[str | int, ...], problems: Problems) -> int:
    status = entry.get("status")
    if type(status) is not int or not 100 <= status <= 599:
        problems.add(doc.where(*at, "status") if "status" in entry else doc.where(*at),
                     "status: must be an HTTP status (100-599)")
        return 0
    return status


def _text(doc: Doc, value: dict[str, Any], key: str, at: tuple[str | int, ...], problems: Problems) -> str | None:
    raw = value.get(key)
    if raw is not None and not isinstance(raw, str):
        problems.add(doc.where(*at, key), f"{key}: must be a string")
        return None
    return raw


__all__ = ["Case", "CaseExpect", "CaseRequest", "CaseUpstream", "ConfigError", "find_cases", "load_case"]
