"""One record through the policy: decide, apply (enforce only), strip what augmentation added.

Pure and synchronous: every path of the body contract (`proxy.body`: show, whole index, streamed index) calls this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

from .decide import Bound, Decision, Plan, apply, decide
from .envelope import check_record
from .errors import UndecidableError
from .jsonkeys import refuse_repeated_keys
from .policy.fields import shape_record, strip_added
from .policy.model import Location
from .sentinel import GapScan

Seal = Callable[[str], str]
"""The backend's etag of a record -> the proxy's tag for it (`proxy.etag.Sealer.record_tag`)."""
Observe = Callable[[Any, str], None]
"""Shown each record (and its JSON path) before anything changes it: the candidate set decides there."""


def transform_record(
    record: Any, path: str, bound: Bound, *, enforce: bool, seal: Seal | None = None, observe: Observe | None = None,
    gaps: GapScan | None = None
) -> tuple[dict[str, Any] | None, list[Decision]]:
    """The record to send (None: filtered out) and the decisions taken on it.

    A restricted caller's record is first shaped to what was asked of the backend: members a backend
    added (or kept though `fields` left them out) are removed before anything is decided, so nothing
    reaches the client undecided. Dry-run changes nothing, so it does not shape. With `seal`, each
    object a decision changed carries the proxy's tag in its `etag` instead of the backend's. With `gaps`
    (the sentinel, for a restricted caller whose plan has unread places), those places are scanned
    after the decisions.
    """
    out, decisions, _ = _transform(record, path, bound, enforce, seal, observe, gaps)
    return out, decisions


def _transform(
    record: Any, path: str, bound: Bound, enforce: bool, seal: Seal | None, observe: Observe | None,
    gaps: GapScan | None,
) -> tuple[dict[str, Any] | None, list[Decision], bool]:
    """transform_record, and whether anything of the record changed (shaped, decided, sealed, stripped)."""
    if not isinstance(record, dict):
        raise UndecidableError("a record is not an object")
    if observe is not None:
        observe(record, path)
    plan = bound.plan
    changed = enforce and plan.shape is not None and shape_record(record, plan.shape)
    decisions = decide(record, path, bound) if plan.steps else []
    out: dict[str, Any] | None = record
    if enforce and decisions:
        out = apply(record, decisions)
        changed = True
    stubbed = gaps.check(out, path, plan.unread, decisions) if gaps is not None and out is not None else []
    if enforce and seal is not None and out is not None and (decisions or plan.seal_at or stubbed):
        changed |= _reseal(out, decisions, plan.seal_at, seal, stubbed)
    if out is not None and plan.strips:
        changed |= strip_added(out, plan.added)
    return out, decisions, changed or bool(stubbed)


def _reseal(
    record: dict[str, Any], decisions: list[Decision], seal_at: tuple[Location, ...], seal: Seal, stubbed: list[Any],
) -> bool:
    """The backend's etag of a changed object digests its hidden values, and so do the etags of the
    objects holding it (a task's etag covers its assignee's name): a caller could confirm guesses of
    them offline. Each is replaced by the proxy's tag, which still works for If-Match. The bundled
    policies' locations are at most two levels deep (`a[].b`): the record, the decided object's
    container and the object itself are every level there is. `seal_at`: where a rule the client's
    `fields` kept from deciding may still have left hidden values in an etag (Plan.seal_at).
    `stubbed`: the objects the sentinel changed (GapScan.check). Whether any etag was replaced."""
    done: set[int] = set()  # one object changed twice (hours, then rate) is sealed once
    sealed = False
    for obj in (*_changed(record, decisions, seal_at), *stubbed):
        if not isinstance(obj, dict) or id(obj) in done:
            continue
        done.add(id(obj))
        etag = obj.get("etag")
        if isinstance(etag, str):
            obj["etag"] = seal(etag)
            sealed = True
        elif etag is not None:
            raise UndecidableError("an etag is not a string")
    return sealed


def _changed(record: dict[str, Any], decisions: list[Decision], seal_at: tuple[Location, ...]) -> Iterator[Any]:
    if decisions:
        yield record
    for decision in decisions:
        if decision.container is not None:
            yield decision.container
            # After apply: the redacted object (a stub has no etag), unless a later decision on the
            # record removed the member altogether (a hidden entry keeps only the schema's fields).
            yield decision.container.get(decision.key) if isinstance(decision.container, dict) else (
                decision.container[decision.key])
    for at in seal_at:
        try:
            found = at.find(record)
        except TypeError:
            raise UndecidableError(f"`{at.text}` has an unexpected shape") from None
        for _, _, _, obj in found:
            yield obj


def unchanged(plan: Plan, *, enforce: bool) -> bool:
    """Whether nothing can change any record of a plan: no rule reads them (`plan.touches` is false),
    or decisions are only taken (dry-run shapes, applies and seals nothing) and augmentation added no
    member to strip. A show answer asks this; index records are sent as they came whenever nothing
    changed the record itself (transform_element, and the compiled scanner alike)."""
    return not plan.touches or (not enforce and not plan.strips)


def transform_element(
    raw: bytes, path: str, bound: Bound, *, enforce: bool, seal: Seal | None = None, observe: Observe | None = None,
    gaps: GapScan | None = None
) -> tuple[bytes | None, list[Decision]]:
    """Like transform_record, over the raw bytes of one element of an index body."""
    plan = bound.plan
    if not plan.touches and gaps is None:
        check_record(raw)  # nothing to decide or strip: the backend's own bytes, once validated
        if observe is not None:
            observe(parsed_or_none(raw), path)  # parsed for the observer only; the bytes go out as they came
        return raw, []
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UndecidableError("a record is not valid JSON") from None
    refuse_repeated_keys(raw, record, "a record")
    out, decisions, changed = _transform(record, path, bound, enforce, seal, observe, gaps)
    if out is None:
        return None, decisions
    if not changed:
        return raw, decisions  # nothing changed it (or nothing could: dry-run, only watched): as it came
    return orjson.dumps(out), decisions


def parsed_or_none(raw: bytes) -> Any:
    """A record's value, or None when orjson refuses what msgspec accepted (a number past a double, 1e400)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
