"""One record through the policy: decide, apply (enforce only), strip what augmentation added.

Pure and synchronous: the streaming and buffered responders, and offline replay, all call this.
"""

from __future__ import annotations

from typing import Any

import orjson

from .decide import Bound, Decision, apply, decide
from .envelope import check_record
from .errors import UndecidableError
from .jsonkeys import refuse_repeated_keys
from .policy.fields import shape_record, strip_added


def transform_record(
    record: Any, path: str, bound: Bound, *, enforce: bool
) -> tuple[dict[str, Any] | None, list[Decision]]:
    """The record to send (None: filtered out) and the decisions taken on it.

    A restricted caller's record is first shaped to what was asked of the backend: members a backend
    added (or kept though `fields` left them out) are removed before anything is decided, so nothing
    reaches the client undecided. Dry-run changes nothing, so it does not shape.
    """
    if not isinstance(record, dict):
        raise UndecidableError("a record is not an object")
    plan = bound.plan
    if enforce and plan.shape is not None:
        shape_record(record, plan.shape)
    decisions = decide(record, path, bound) if plan.steps else []
    out: dict[str, Any] | None = record
    if enforce and decisions:
        out = apply(record, decisions)
    if out is not None and plan.strips:
        strip_added(out, plan.added)
    return out, decisions


def transform_element(
    raw: bytes, path: str, bound: Bound, *, enforce: bool
) -> tuple[bytes | None, list[Decision]]:
    """Like transform_record, over the raw bytes of one element of an index body."""
    plan = bound.plan
    if not plan.touches:
        check_record(raw)  # nothing to decide or strip: the backend's own bytes, once validated
        return raw, []
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UndecidableError("a record is not valid JSON") from None
    refuse_repeated_keys(raw, record, "a record")
    out, decisions = transform_record(record, path, bound, enforce=enforce)
    if out is None:
        return None, decisions
    if not enforce and not plan.strips:
        return raw, decisions  # dry-run changes nothing: the backend's own bytes
    return orjson.dumps(out), decisions
