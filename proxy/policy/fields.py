"""The API's `fields` mini-language: parse, add what decisions need, strip what was added.

Grammar (stricter than the backend's, on purpose): `name(,name)*` where a name may carry one brace
level of sub-names, `client{id,name}`. Names are lower-case identifiers. Anything else is a 400.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import compress
from operator import not_
from typing import Any

from ..errors import BadRequestError

_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
_ITEM = re.compile(r"([a-z_][a-z0-9_]*)(?:\{([^{}]*)\})?")
DEFAULT_NESTED = frozenset({"id", "etag", "type"})
"""What the backend returns for a nested object selected without braces (its identity)."""
_NESTED_BRACES = ("id", "etag", "type")


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    sub: tuple[str, ...] | None = None  # None: no braces, the nested object comes with its defaults

    def render(self) -> str:
        return self.name if self.sub is None else f"{self.name}{{{','.join(self.sub)}}}"


Selection = tuple[Field, ...]
DEFAULT_SELECTION: Selection = (Field("id"), Field("etag"))
"""Without `fields`, the API returns only `id` and `etag`."""


@functools.lru_cache(maxsize=1024)
def parse_fields(text: str) -> Selection:
    """Parse a `fields` value; any deviation from the grammar is a 400 (never a guess).

    Cached: clients repeat the same few `fields` texts, and a Selection is immutable. Errors are
    raised again each time (lru_cache keeps only results)."""
    if not text:
        raise BadRequestError("fields must not be empty")
    out: list[Field] = []
    seen: set[str] = set()
    pos = 0
    while True:
        m = _ITEM.match(text, pos)
        if m is None:
            raise BadRequestError("fields is malformed")
        name, inner = m.group(1), m.group(2)
        sub: tuple[str, ...] | None = None
        if inner is not None:
            parts = inner.split(",")
            if not all(_NAME.match(p) for p in parts) or len(set(parts)) != len(parts):
                raise BadRequestError("fields is malformed")
            sub = tuple(parts)
        if name in seen:
            raise BadRequestError("fields names a field twice")
        seen.add(name)
        out.append(Field(name, sub))
        pos = m.end()
        if pos == len(text):
            return tuple(out)
        if text[pos] != ",":
            raise BadRequestError("fields is malformed")
        pos += 1


def render_fields(selection: Selection) -> str:
    return ",".join(f.render() for f in selection)


@dataclass(frozen=True, slots=True)
class Need:
    """A field a decision reads: `name` at the record's top, or `name{sub}` one level down.

    `always`: needed whenever the rule looks at the record (an activity's `type`); otherwise only
    when the client selected `name` itself (a vendor nobody asked for needs no decision).
    """

    name: str
    sub: str | None = None
    always: bool = False


@dataclass(frozen=True, slots=True)
class Added:
    """What augmentation added, so it can be stripped from every record before answering."""

    top: frozenset[str] = frozenset()
    nested: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.top or self.nested)


def augment(selection: Selection, needs: Iterable[Need]) -> tuple[Selection, Added]:
    """Add what `needs` ask for and is missing; return the new selection and what was added."""
    fields: dict[str, Field] = {f.name: f for f in selection}
    top: set[str] = set()
    nested: dict[str, set[str]] = {}
    for need in needs:
        current = fields.get(need.name)
        if current is None:
            if not need.always:
                continue
            fields[need.name] = Field(need.name, (need.sub,) if need.sub else None)
            top.add(need.name)
            continue
        if need.sub is None or need.name in top:
            if need.sub is not None and current.sub is not None and need.sub not in current.sub:
                fields[need.name] = Field(need.name, (*current.sub, need.sub))
            continue
        if current.sub is None:
            if need.sub != "id" and need.sub in DEFAULT_NESTED:
                # A participant's `type`: backends differ on whether a brace-less nested object
                # carries it, so it is asked for by name. The braces list exactly the nested
                # defaults, the representation the client chose: nothing to strip afterwards.
                fields[need.name] = Field(need.name, _NESTED_BRACES)
                continue
            # An id always comes with the nested defaults; anything else would change the
            # representation the client chose, so it is not added: the decision will find it
            # missing and refuse, never guess.
            continue
        if need.sub not in current.sub:
            fields[need.name] = Field(need.name, (*current.sub, need.sub))
            nested.setdefault(need.name, set()).add(need.sub)
    added = Added(frozenset(top), {k: frozenset(v) for k, v in nested.items()})
    return tuple(fields.values()), added


def strip_added(record: dict[str, Any], added: Added) -> bool:
    """Remove what augmentation added from one record, in place; whether anything was there."""
    stripped = False
    for name in added.top:
        stripped |= record.pop(name, _ABSENT) is not _ABSENT
    for name, subs in added.nested.items():
        value = record.get(name)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                for sub in subs:
                    stripped |= item.pop(sub, _ABSENT) is not _ABSENT
    return stripped


_ABSENT: Any = object()


@dataclass(frozen=True, slots=True)
class Shaping:
    """What a restricted caller's records keep: the selection asked of the backend, and the nested
    places a rule of the plan decides on (`("client",)`, `("custom_field_values", "contact")`),
    whose objects keep their own members for that rule (a stub, or hours redaction) instead of being
    cut to the nested defaults; objects nested inside them are cut (DECIDED)."""

    selection: Selection
    decided: frozenset[tuple[str, ...]] = frozenset()
    # Derived once per plan, read per record (not part of the value):
    keep: frozenset[str] = field(init=False, compare=False, repr=False)  # the top-level names kept
    # Per top-level name, what its objects keep: None for the nested defaults (named without
    # braces), else (the sub-members listed, those of them whose objects a rule decides on); a name
    # a rule decides on, named without braces: DECIDED.
    nested: Mapping[str, tuple[frozenset[str], frozenset[str]] | None] = field(
        init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        nested: dict[str, tuple[frozenset[str], frozenset[str]] | None] = {}
        for f in self.selection:
            if f.sub is None:
                nested[f.name] = DECIDED if (f.name,) in self.decided else None
            else:
                nested[f.name] = (frozenset(f.sub), frozenset(k for k in f.sub if (f.name, k) in self.decided))
        object.__setattr__(self, "keep", frozenset(f.name for f in self.selection))
        object.__setattr__(self, "nested", nested)


def shape_record(record: dict[str, Any], shaping: Shaping) -> bool:
    """Keep, in place, only what was asked for, as the API renders it: top-level members the
    selection names; inside a member named with braces, the sub-members listed; inside one named
    without braces, and in objects one level further down, the nested defaults (id, etag, type),
    except where a rule decides.

    A backend that ignores `fields` (or adds members) could otherwise carry a hidden contact or
    hidden hours in a member no decision looks at. Values that are not objects are left for the
    decisions, which refuse a shape they do not expect.

    Cheap when the backend obeyed `fields`: a key-set comparison (in C) per object, and a look at
    each member's value. Returns whether anything was cut.
    """
    cut = _cut(record, shaping.keep)
    nested = shaping.nested
    for name in _containers(record):  # only nested values change below, never the record's keys
        value = record[name]
        if not isinstance(value, _NESTED) or name not in nested:
            continue
        sub = nested[name]
        if sub is None:
            cut |= _keep_only(value, DEFAULT_NESTED)
            continue
        if sub is DECIDED:
            cut |= _inner_defaults(value)
            continue
        keep, decided = sub
        for item in (value,) if isinstance(value, dict) else _objects(value):
            cut |= _cut(item, keep)
            for key in _containers(item):
                inner = item[key]
                if not isinstance(inner, _NESTED):
                    continue
                if key in decided:
                    cut |= _inner_defaults(inner)
                else:
                    cut |= _keep_only(inner, DEFAULT_NESTED)
    return cut


DECIDED: Any = ("decided",)
"""Shaping.nested's mark of a place a rule decides on (a contact): the rule judges the object itself
(a hidden one becomes a stub, built from an allowlist), so its own members stay; but a visible one is
shown, so whatever objects a backend nested in it (a company, another contact) keep only the nested
defaults, as the API renders an object two levels down."""


def _inner_defaults(value: dict[str, Any] | list[Any]) -> bool:
    cut = False
    for item in _objects(value):
        for key in _containers(item):
            inner = item[key]
            if isinstance(inner, _NESTED):
                cut |= _keep_only(inner, DEFAULT_NESTED)
    return cut


_NESTED = (dict, list)
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _containers(obj: dict[str, Any]) -> Iterator[str]:
    """The keys of `obj` whose values are not JSON scalars (of exactly a scalar's type), in order.

    Found in C (no Python-level step per member): most members of a record are scalars."""
    return compress(obj, map(not_, map(_SCALARS.__contains__, map(type, obj.values()))))


def _cut(item: dict[str, Any], keep: frozenset[str]) -> bool:
    """Remove the members of `item` not in `keep`, in place (the others keep their order)."""
    if item.keys() <= keep:
        return False
    for key in [k for k in item if k not in keep]:
        del item[key]
    return True


def _objects(value: dict[str, Any] | list[Any]) -> list[dict[str, Any]]:
    """The objects of a nested value: itself, or the objects of a list (lists of lists included:
    such a shape hides nothing from shaping)."""
    if isinstance(value, dict):
        return [value]
    out: list[dict[str, Any]] = []
    for item in value:
        if isinstance(item, (dict, list)):
            out.extend(_objects(item))
    return out


def _keep_only(value: dict[str, Any] | list[Any], keep: frozenset[str]) -> bool:
    if isinstance(value, dict):
        return _cut(value, keep)
    cut = False
    for item in _objects(value):
        cut |= _cut(item, keep)
    return cut


def selected_names(selection: Selection) -> frozenset[str]:
    return frozenset(f.name for f in selection)
