"""Load the policy directory, validate every file against the closed vocabulary, compile a PolicySet.

Every problem is reported at once with file:line:column and the key at fault. Nothing here runs
per request.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from ..rules import BUNDLED
from ..rules.base import SpecReader
from ..rules.registry import Registry
from ..yamldoc import Doc, Problems, load_yaml
from .model import (
    Binding,
    FactsQuery,
    Location,
    Name,
    PolicySet,
    Route,
    Shape,
    Waiver,
)

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
PERMISSIONS = BUNDLED.permissions
"""The permissions a settings file may grant, with the bundled rules."""
_SEGMENT = re.compile(r"[a-z_][a-z0-9_]*\Z")
_PARAM = re.compile(r"\{([a-z_]+)\}\Z")
_LOCATION = re.compile(r"[a-z_][a-z0-9_]*(\[\])?(\.[a-z_][a-z0-9_]*(\[\])?)?\Z")
_FILE_KEYS = {"family", "seed", "checks", "routes", "waive"}
_WAIVER_KEYS = {"family", "route", "at", "methods", "reason"}
_ROUTE_KEYS = {"route", "shape", "methods", "respond", "checks", "refreshes_facts"}
_BINDING_KEYS = {"rule", "action", "at", "seed", "methods"}
"""Keys of every policy line; an action's spec adds its own (`ActionDef.params`)."""


def bundled_policies() -> Path:
    """The bundled policies: inside the installed wheel, or at the top of a checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_bundled" / "policies", here.parent / "policies"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("bundled policies not found")


def load_policies(directory: Path, registry: Registry = BUNDLED) -> PolicySet:
    """Load and compile every *.yaml in `directory` against the registry's rules; raise ConfigError
    listing every problem."""
    problems = Problems()
    files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    if not files:
        problems.add(str(directory), "no policy files (*.yaml) found")
    docs = [d for d in (load_yaml(f, problems) for f in files) if d is not None]
    facts_docs = [d for d in docs if isinstance(d.value, dict) and "facts" in d.value]
    base: tuple[str, ...] = ()
    facts: dict[str, FactsQuery] = {}
    if len(facts_docs) != 1:
        problems.add(str(directory), "exactly one file must hold `base` and `facts`")
    else:
        base, facts = _compile_facts(facts_docs[0], problems, registry.fact_queries)
    routes: list[Route] = []
    waivers: list[Waiver] = []
    seen: dict[tuple[str | None, ...], str] = {}
    for doc in docs:
        if doc in facts_docs:
            continue
        waivers.extend(_compile_waivers(doc, problems))
        if isinstance(doc.value, dict) and set(doc.value) == {"waive"}:
            continue  # a file of waivers only
        for route in _compile_family(doc, problems, registry):
            if route.segments in seen:
                problems.add(route.source, f"route {route.template} is also defined at {seen[route.segments]}")
            seen[route.segments] = route.source
            routes.append(route)
    problems.raise_if_any()
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:12]
    return PolicySet(base, tuple(routes), facts, digest, tuple(f.name for f in files), tuple(waivers))


def _compile_facts(
    doc: Doc, problems: Problems, known: tuple[str, ...]
) -> tuple[tuple[str, ...], dict[str, FactsQuery]]:
    value = doc.value
    _unknown_keys(doc, value, {"base", "facts"}, (), problems)
    base_text = value.get("base")
    if not isinstance(base_text, str) or not base_text.startswith("/"):
        problems.add(doc.where("base"), "base: must be a path like /api/v4")
        base_text = "/"
    base = tuple(s for s in base_text.lower().split("/") if s)
    facts: dict[str, FactsQuery] = {}
    entries = value.get("facts")
    if not isinstance(entries, dict):
        problems.add(doc.where("facts"), "facts: must be a mapping")
        return base, facts
    for name in known:
        if name not in entries:
            problems.add(doc.where("facts"), f"facts: missing {name!r}")
    for name, entry in entries.items():
        where = doc.where("facts", name)
        if name not in known:
            problems.add(where, f"facts: unknown fact {name!r} (known: {', '.join(known)})")
            continue
        if not isinstance(entry, dict):
            problems.add(where, f"facts.{name}: must be a mapping")
            continue
        _unknown_keys(doc, entry, {"path", "query"}, ("facts", name), problems)
        path, query = entry.get("path"), entry.get("query", {})
        if not isinstance(path, str) or not all(_SEGMENT.match(s) for s in path.split("/")):
            problems.add(doc.where("facts", name, "path"), f"facts.{name}.path: must be like users/who_am_i")
            continue
        if not isinstance(query, dict) or not all(isinstance(v, str | int) for v in query.values()):
            problems.add(doc.where("facts", name, "query"), f"facts.{name}.query: must map names to strings")
            continue
        names_caller = any("{caller_id}" in str(v) for v in query.values())
        if name == "created_contacts" and not names_caller:
            # Without the caller in its filter this query lists every contact: all would count as
            # created by the caller, and a restricted caller would see them all.
            problems.add(doc.where("facts", name, "query"),
                         "facts.created_contacts.query: must filter by the caller ({caller_id})")
            continue
        if name != "created_contacts" and names_caller:
            problems.add(doc.where("facts", name, "query"), f"facts.{name}.query: {{caller_id}} is known only "
                         "to created_contacts")
            continue
        facts[name] = FactsQuery(path, tuple((k, str(v)) for k, v in query.items()))
    return base, facts


def _compile_family(doc: Doc, problems: Problems, registry: Registry) -> list[Route]:
    value = doc.value
    if not isinstance(value, dict):
        problems.add(doc.where(), "a policy file must be a mapping")
        return []
    _unknown_keys(doc, value, _FILE_KEYS, (), problems)
    family = value.get("family")
    if not isinstance(family, str) or not _SEGMENT.match(family):
        problems.add(doc.where("family"), "family: must name the endpoint family, like contacts")
        return []
    seed = value.get("seed")
    if not isinstance(seed, list) or not seed or not all(isinstance(s, str) for s in seed):
        problems.add(doc.where("seed"), "seed: must list the changelog rows this file encodes")
    common = value.get("checks", [])
    routes = value.get("routes")
    if not isinstance(routes, list) or not routes:
        problems.add(doc.where("routes"), "routes: must be a non-empty list")
        return []
    out = []
    for i, entry in enumerate(routes):
        route = _compile_route(doc, family, i, entry, common, problems, registry)
        if route is not None:
            out.append(route)
    return out


def _compile_route(
    doc: Doc, family: str, i: int, entry: Any, common: Any, problems: Problems, registry: Registry
) -> Route | None:
    at = ("routes", i)
    if not isinstance(entry, dict):
        problems.add(doc.where(*at), "a route must be a mapping")
        return None
    _unknown_keys(doc, entry, _ROUTE_KEYS, at, problems)
    template = entry.get("route")
    parsed = _parse_template(template) if isinstance(template, str) else None
    if parsed is None or not isinstance(template, str):
        problems.add(doc.where(*at, "route"), "route: must be like /contacts/{id}")
        return None
    segments, params = parsed
    if segments[0] != family:
        problems.add(doc.where(*at, "route"), f"route: {template} is outside family {family!r}")
    try:
        shape = Shape(str(entry.get("shape")))
    except ValueError:
        problems.add(doc.where(*at, "shape"), f"shape: must be one of {', '.join(Shape)}")
        return None
    methods = _methods(doc, entry.get("methods"), at, problems) or frozenset()
    respond: list[Binding[Any]] = []
    for j, raw in enumerate(_list(doc, entry.get("respond", []), (*at, "respond"), problems)):
        if b := _binding(doc, raw, (*at, "respond", j), registry, True, params, methods, problems):
            respond.append(b)
    common_checks = _list(doc, common, ("checks",), problems)
    own_checks = _list(doc, entry.get("checks", []), (*at, "checks"), problems)
    sources: list[tuple[tuple[str | int, ...], Any]] = [(("checks", j), c) for j, c in enumerate(common_checks)]
    sources += [((*at, "checks", j), c) for j, c in enumerate(own_checks)]
    checks: list[Binding[Any]] = []
    for path, raw in sources:
        if b := _binding(doc, raw, path, registry, False, params, methods, problems):
            checks.append(b)
    for b in respond:
        if b.definition.filters and (shape is not Shape.INDEX or b.at is not None):
            problems.add(b.source, f"{b.action} applies at `.` of an index route only")
    if shape is Shape.RELAY and respond:
        problems.add(doc.where(*at, "shape"), "a relay route cannot have respond rules")
    refreshes = entry.get("refreshes_facts", False)
    if not isinstance(refreshes, bool):
        problems.add(doc.where(*at, "refreshes_facts"), "refreshes_facts: must be true or false")
        refreshes = False
    return Route(family, template, segments, params, shape, methods, tuple(respond), tuple(checks), refreshes,
                 doc.where(*at))


def _compile_waivers(doc: Doc, problems: Problems) -> list[Waiver]:
    """`waive:` entries: `{family, reason}` or `{route, at, [methods], reason}`; the reason is required."""
    value = doc.value
    if not isinstance(value, dict) or "waive" not in value:
        return []
    out: list[Waiver] = []
    for i, raw in enumerate(_list(doc, value["waive"], ("waive",), problems)):
        at = ("waive", i)
        where = doc.where(*at)
        if not isinstance(raw, dict):
            problems.add(where, "a waiver must be a mapping with a reason")
            continue
        _unknown_keys(doc, raw, _WAIVER_KEYS, at, problems)
        reason = raw.get("reason")
        if not isinstance(reason, str) or len(reason.split()) < 3:
            problems.add(doc.where(*at, "reason"), "reason: must say, in a few words, why nothing needs redacting")
            continue
        family = raw.get("family")
        if family is not None:
            if not isinstance(family, str) or not _SEGMENT.match(family) or {"route", "at", "methods"} & set(raw):
                problems.add(doc.where(*at, "family"), "family: must name a family alone, like contacts")
                continue
            out.append(Waiver(reason, where, family=family))
            continue
        template = raw.get("route")
        parsed = _parse_template(template) if isinstance(template, str) else None
        if parsed is None or not isinstance(template, str):
            problems.add(doc.where(*at, "route"), "route: must be like /contacts/{id} (or give family:)")
            continue
        location = raw.get("at", ".")
        if location != "." and (not isinstance(location, str) or not _LOCATION.match(location)):
            problems.add(doc.where(*at, "at"), "at: must be `.`, `name`, `name[]` or `name[].name`")
            continue
        methods = _methods(doc, raw["methods"], at, problems) if "methods" in raw else frozenset()
        out.append(Waiver(reason, where, None, parsed[0], template, str(location), methods or frozenset()))
    return out


def _parse_template(template: str) -> tuple[tuple[str | None, ...], tuple[str, ...]] | None:
    if not template.startswith("/"):
        return None
    segments: list[str | None] = []
    params: list[str] = []
    for part in template[1:].split("/"):
        if m := _PARAM.match(part):
            segments.append(None)
            params.append(m.group(1))
        elif _SEGMENT.match(part):
            segments.append(part)
        else:
            return None
    if segments[0] is None or len(set(params)) != len(params):
        return None
    return tuple(segments), tuple(params)


def _binding(
    doc: Doc,
    raw: Any,
    at: tuple[str | int, ...],
    registry: Registry,
    respond: bool,
    params: tuple[str, ...],
    route_methods: frozenset[str],
    problems: Problems,
) -> Binding[Any] | None:
    """One policy line: the common keys here, the rest read by its action's spec (the rule's)."""
    where = doc.where(*at)
    if not isinstance(raw, dict):
        problems.add(where, "must be a mapping with rule and action")
        return None
    vocabulary = registry.respond_actions() if respond else registry.check_actions()
    found = registry.actions.get(str(raw.get("action")))
    if found is None or found[1].is_respond is not respond:
        every = _BINDING_KEYS.union(*(a.params for _, a in registry.actions.values()))
        _unknown_keys(doc, raw, every, at, problems)
        problems.add(doc.where(*at, "action"), f"action: must be one of {', '.join(vocabulary)}")
        return None
    rule, action = found
    _unknown_keys(doc, raw, _BINDING_KEYS | action.params, at, problems)
    if str(raw.get("rule")) not in registry.by_rule:
        problems.add(doc.where(*at, "rule"), f"rule: must be one of {', '.join(registry.rule_names)}")
        return None
    if raw.get("rule") != rule.name:
        problems.add(doc.where(*at, "rule"), f"rule: {action.name} belongs to {rule.name}, not {raw.get('rule')}")
    seed = raw.get("seed")
    if not isinstance(seed, str) or not seed:
        problems.add(doc.where(*at, "seed"), "seed: must cite the changelog row")
        seed = ""
    location = _location(doc, raw.get("at", "."), (*at, "at"), problems)
    methods = route_methods
    if "methods" in raw:
        methods = _methods(doc, raw["methods"], at, problems) or frozenset()
        if not methods <= route_methods:
            problems.add(doc.where(*at, "methods"), "methods: not all allowed on this route")
    if action.needs_at and location is None:
        problems.add(doc.where(*at, "at"), "at: must name where the reference lives in the body")
    assert action.spec is not None  # the registry refuses an action without one
    spec = action.spec(SpecReader(doc, raw, at, problems, params, location, registry.permissions))
    return Binding(Name(rule.name), Name(action.name), seed, where, location, methods, spec, action)


def _location(doc: Doc, raw: Any, at: tuple[str | int, ...], problems: Problems) -> Location | None:
    if raw == ".":
        return None
    if not isinstance(raw, str) or not _LOCATION.match(raw):
        problems.add(doc.where(*at), "at: must be `.`, `name`, `name[]` or `name[].name`")
        return None
    steps = tuple((p.removesuffix("[]"), p.endswith("[]")) for p in raw.split("."))
    return Location(steps, raw)


def _methods(doc: Doc, raw: Any, at: tuple[str | int, ...], problems: Problems) -> frozenset[str] | None:
    if not isinstance(raw, list) or not raw or not all(m in METHODS for m in raw):
        problems.add(doc.where(*at, "methods"), f"methods: must list some of {sorted(METHODS)}")
        return None
    return frozenset(raw)


def _list(doc: Doc, raw: Any, at: tuple[str | int, ...], problems: Problems) -> list[Any]:
    if not isinstance(raw, list):
        problems.add(doc.where(*at), "must be a list")
        return []
    return raw


def _unknown_keys(
    doc: Doc, value: dict[str, Any], known: set[str], at: tuple[str | int, ...], problems: Problems
) -> None:
    for key in value:
        if key not in known:
            problems.add(doc.where(*at, key), f"unknown key {key!r}")
