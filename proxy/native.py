"""The compiled scanner's side of a plan: which answers it may decide, and its tables (issue 14).

`proxy._scan` (Cython, built by `pip install -e .`) decides one index record on its bytes. This module
compiles a `Judging` (a plan bound to a caller, in a mode) into a `Scanner` when every part of it has a
compiled form; otherwise, and when the extension did not load, the answer takes the pure-Python path
(`proxy.transform`), which is the definition both must agree with (tests/test_native.py).

What compiles: enforce mode, no shadow candidate or sentinel watching, every step judged by a rule that
offers a compiled form (`native()`: the four bundled respond actions) at the record itself, a member
(`vendor`) or up to two steps down (`attendees[]`, `custom_field_values[].contact`), seal places as
deep. A record the scanner is not sure of (an escape, a number orjson would spell otherwise, a list of
lists, a repeated key) falls back to the pure path one record at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cachetools import LRUCache

from .policy.fields import DECIDED, Added, Shaping

if TYPE_CHECKING:
    from .decide import Bound, Plan, Step
    from .transform import Seal

try:
    from . import _scan
except ImportError as error:  # not built (no compiler at install time): the pure path runs
    _scan = None  # type: ignore[assignment]
    UNAVAILABLE = f"{type(error).__name__}: {error}"
else:
    UNAVAILABLE = ""

FALLBACK: Any = _scan.FALLBACK if _scan is not None else object()
KINDS: dict[str, int] = _scan.KINDS if _scan is not None else {}
"""The judgement kinds the scanner knows, by the name a rule's `native()` gives."""
_APPENDED = frozenset({"quantity_redacted", "redacted"})
"""Members a redaction appends: augmentation never adds them, and the scanner strips only what it parsed."""
_MAX_INT = 2**63
_MAX_STEPS = 32  # proxy/_scan.pyx MAX_STEPS


def available() -> bool:
    return _scan is not None


_tables: LRUCache[int, tuple[Plan, Any]] = LRUCache(4096)


def scanner(bound: Bound, *, apply: bool, watched: bool, seal: Seal | None) -> Any:
    """The compiled program for this answer, or None when the pure path must decide it.

    `watched`: a shadow candidate or the sentinel looks at each record (the pure path shows them)."""
    if _scan is None or not apply or watched:
        return None
    plan = bound.plan
    if not plan.touches:
        return None  # nothing to decide: the records' own bytes (proxy.body), cheaper still
    cached = _tables.get(id(plan))
    if cached is None or cached[0] is not plan:
        cached = _tables[id(plan)] = (plan, _plan_tables(plan))
    tables = cached[1]
    if tables is None or len(bound.judged) > _MAX_STEPS:
        return None
    steps = []
    for (_, _, _, step) in bound.judged:
        form = _native(step, bound)
        if form is None:
            return None
        kind, params = form
        steps.append((KINDS[kind], place(step), params))
    return _scan.Scanner(steps, tables, seal)


def place(step: Step) -> bytes | tuple[bytes, bool, bytes | None] | None:
    """Where a step's objects are, as the scanner reads it: None (the record), a member's name, or
    (name, is a list, next name or None) for `a[]`, `a.b`, `a[].b`."""
    at = step.binding.at
    if at is None:
        return None
    if step.key is not None:
        return step.key.encode()
    (first, is_list), *rest = at.steps
    return first.encode(), is_list, rest[0][0].encode() if rest else None


def _compiles(step: Step) -> bool:
    """A place the scanner can walk: the record, `a`, `a[]`, `a.b`, `a[].b`."""
    at = step.binding.at
    if at is None or step.key is not None:
        return True
    steps = at.steps
    return (len(steps) == 1 and steps[0][1]) or (len(steps) == 2 and not steps[1][1])


def _native(step: Step, bound: Bound) -> tuple[str, tuple[Any, ...]] | None:
    native = getattr(step.rule, "native", None)  # a rule without a compiled form: the pure path
    if native is None:
        return None
    form: tuple[str, tuple[Any, ...]] | None = native(step.binding, bound.viewer)
    if form is None or form[0] not in KINDS:
        return None
    return form


def _plan_tables(plan: Plan) -> Any:
    """What of the plan does not depend on the caller, once per plan; None: it does not compile."""
    if not all(_compiles(step) for step in plan.steps):
        return None  # a place deeper than the scanner walks: the pure path
    seal_at: list[tuple[bytes, bool, bytes | None] | None] = []
    for at in plan.seal_at:
        if not at.steps:
            seal_at.append(None)
        elif len(at.steps) == 1:
            seal_at.append((at.steps[0][0].encode(), at.steps[0][1], None))
        elif len(at.steps) == 2 and not at.steps[1][1]:
            seal_at.append((at.steps[0][0].encode(), at.steps[0][1], at.steps[1][0].encode()))
        else:
            return None
    added: Added = plan.added
    if added.top & _APPENDED:
        return None
    assert _scan is not None
    return _scan.Tables(_shape(plan.shape), tuple(seal_at), _scan_names(added.top),
                        {name.encode(): _scan_names(subs) for name, subs in added.nested.items()})


def _shape(shaping: Shaping | None) -> tuple[Any, ...] | None:
    if shaping is None:
        return None
    nested: dict[bytes, tuple[int, Any, Any]] = {}
    for name, how in shaping.nested.items():
        if how is None:
            nested[name.encode()] = (0, None, None)
        elif how is DECIDED:
            nested[name.encode()] = (1, None, None)
        else:
            keep, decided = how
            nested[name.encode()] = (2, _scan_names(keep), _scan_names(decided))
    return (_scan_names(shaping.keep), nested)


def _scan_names(names: frozenset[str]) -> Any:
    assert _scan is not None
    return _scan.Names([n.encode() for n in sorted(names)])


def names(values: frozenset[str]) -> Any:
    """A set of member names as the scanner looks them up (built once, by the rule's module)."""
    return _scan_names(values) if _scan is not None else None


def as_int64(value: int) -> int | None:
    """A caller's id as the scanner compares it (an id past int64 names nothing: the pure path)."""
    return value if -_MAX_INT <= value < _MAX_INT else None
