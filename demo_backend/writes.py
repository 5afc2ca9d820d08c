"""Applying a write body `{"data": {...}}` to a record: references resolved to the real objects (names
and types included, so later reads show them), plain fields copied, unknown fields ignored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from . import write_lists as lists
from .errors import ApiError, argument_error, not_found, unprocessable
from .model import Firm, Record
from .resources import Resource, is_visible
from .shapes import attorney_ref, calendar_owner, contact_ref, matter_ref, user_ref


@dataclass
class WriteContext:
    firm: Firm
    caller: Record
    accessible: frozenset[int] | None  # matters the caller can access (None: all)
    deferred: dict[str, Any] = field(default_factory=dict)  # fields a hook applies after storing


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise argument_error("The request body is not valid JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        raise unprocessable('The request body must be {"data": {...}}')
    data: dict[str, Any] = document["data"]
    return data


def _matter(ctx: WriteContext, value: Any) -> Record | None:
    if value is None:
        return None
    matter = ctx.firm.matters.get(lists.ref_id(value, "matter"))
    # Legacy matter access: a matter the caller cannot access does not exist for them.
    if matter is None or not is_visible("matters", matter, ctx.accessible):
        raise not_found("Matter not found")
    return matter_ref(matter)


def _resolve(ctx: WriteContext, kind: str, key: str, value: Any, current: Any) -> tuple[str, Any]:
    """(field to set, stored value) for one body field of the given kind."""
    firm = ctx.firm
    if kind == "matter":
        return key, _matter(ctx, value)
    if value is None and kind in ("contact", "user", "attorney", "folder", "participant"):
        return key, None
    if kind == "contact":
        return key, contact_ref(lists.contact_record(firm, lists.ref_id(value, key)))
    if kind == "user":
        return key, user_ref(lists.user_record(firm, lists.ref_id(value, key)))
    if kind == "user_id":
        return "user", user_ref(lists.user_record(firm, lists.ref_id({"id": value}, key)))
    if kind == "attorney":
        return key, attorney_ref(lists.user_record(firm, lists.ref_id(value, key)))
    if kind == "participant":
        return key, lists.participant(firm, value, key)
    if kind == "participants":
        return key, lists.participants(firm, value, key)
    if kind == "attendees":
        return key, lists.attendees(firm, value)
    if kind == "calendar_owner":
        return key, calendar_owner(lists.user_record(firm, lists.ref_id(value, key) - 5000))
    if kind == "folder":
        folder = firm.folders.get(lists.ref_id(value, key))
        if folder is None:
            raise unprocessable("Folder not found")
        return key, {"id": folder["id"], "name": folder["name"], "type": "Folder"}
    if kind == "conversation":
        conversation = firm.conversations.get(lists.ref_id(value, key))
        if conversation is None or not is_visible("conversations", conversation, ctx.accessible):
            raise not_found("Conversation not found")
        return key, {"id": conversation["id"], "subject": conversation["subject"]}
    if kind == "sublist":
        return key, lists.sublist(firm, key, current or [], value)
    if kind == "custom_fields":
        return key, lists.custom_fields(firm, current or [], value)
    if kind in ("medical_records", "medical_bills"):
        return key, lists.medical_items(firm, kind, current or [], value)
    raise AssertionError(f"unknown write kind {kind}")


def apply_write(ctx: WriteContext, resource: Resource, record: Record, data: dict[str, Any]) -> None:
    """Validate every reference first, then change the record (a rejected write changes nothing)."""
    changes: dict[str, Any] = {}
    for key, value in data.items():
        kind = resource.writes.get(key)
        if kind is None:
            continue
        if kind == "deferred":
            ctx.deferred[key] = value
            continue
        try:
            target, stored = _resolve(ctx, kind, key, value, record.get(key))
        except ApiError:
            raise
        except (TypeError, ValueError, AttributeError):
            raise unprocessable(f"Invalid value for {key}") from None
        changes[target] = stored
    lists.apply_scalars(record, {k: v for k, v in data.items() if k not in resource.writes})
    for key, value in changes.items():
        if key in record:
            record[key] = value
