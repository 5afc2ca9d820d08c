"""Activity hours visibility (4.0.8): other users' time-entry hours are null, and cannot be edited.

Seed rows: 4.0.8 activities GET and PATCH (SPEC 2.2: also its type and matter); calendar_entries,
communications, notes, tasks GET `time_entries`. A TimeEntry is hidden unless its user is the caller
or the caller is the responsible attorney of its matter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import BadRequestError, ProxyError, UndecidableError
from ..native import as_int64, names
from ..policy.model import Binding
from .base import (
    ActionDef,
    Hiding,
    Judge,
    Native,
    RecordCheck,
    RuleDef,
    Setting,
    SpecReader,
    body_data,
    no_spec,
    read_status,
    ref_id,
    refusal,
)

if TYPE_CHECKING:
    from ..facts.settings import UserSettings
    from ..facts.viewer import Viewer

SETTING = Setting("activity_hours_visibility", ("all", "own_and_responsible_attorney"), default="all")

HOURS_FIELDS = (
    "quantity",
    "rounded_quantity",
    "rounded_quantity_in_hours",
    "quantity_in_hours",
    "total",
    "non_billable_total",
)

PROTECTED_FIELDS = frozenset({
    *HOURS_FIELDS,
    # what makes an entry hidden: changing its user, matter or type would show its hours
    "user", "user_id", "matter", "matter_id", "type",
})
"""A PATCH of a hidden time entry that sets any of these is refused (403), whatever the policy lists:
retyping it to an ExpenseEntry, moving it to a matter the caller is responsible for or giving it to the
caller would make the hours visible as surely as editing them."""

KNOWN_FIELDS = frozenset({
    # The Activity schema of the public spec (clio/openapi.json), scalars and nested references.
    "id", "etag", "type", "date", "created_at", "updated_at", "quantity", "rounded_quantity",
    "quantity_in_hours", "rounded_quantity_in_hours", "quantity_redacted", "price", "total", "non_billable",
    "non_billable_total", "no_charge", "billed", "on_bill", "flat_rate", "contingency_fee", "note",
    "reference", "tax_setting", "currency", "redacted", "matter", "user", "activity_description",
    "expense_category", "vendor", "bill", "communication", "calendar_entry", "task", "matter_note",
    "contact_note", "timer", "document_version", "subject", "utbms_expense", "utbms_activity", "utbms_task",
})
"""A hidden entry keeps only fields the schema names: a field a newer backend adds (`quantity_v2`)
could carry the hours again, so on a hidden entry the allowlist wins."""


_KNOWN, _HOURS = names(KNOWN_FIELDS), names(frozenset(HOURS_FIELDS))


def restricted(settings: UserSettings) -> bool:
    return settings[SETTING.key] != "all"


def hours_judge(viewer: Viewer) -> Callable[[Any], bool]:
    """Whether an activity's hours are hidden from this caller (also used to refuse edits)."""
    me = viewer.user_id
    responsible = viewer.responsible_matters

    def hidden(activity: Any) -> bool:
        if not isinstance(activity, dict):
            raise UndecidableError("expected an activity object")
        kind = activity.get("type")
        if kind != "TimeEntry":
            if not isinstance(kind, str):
                raise UndecidableError("an activity lacks its type")
            return False
        if ref_id(activity, "user") == me:
            return False
        if responsible is None:
            raise UndecidableError("responsible matters were not resolved")
        matter = ref_id(activity, "matter")
        return matter is None or matter not in responsible

    return hidden


class HoursRedaction:
    targets: frozenset[str] | None = frozenset(HOURS_FIELDS) | {"quantity_redacted"}
    keeps: frozenset[str] | None = KNOWN_FIELDS

    def active(self, settings: UserSettings) -> bool:
        return restricted(settings)

    def reads(self, binding: Binding[None], settings: UserSettings) -> tuple[tuple[str, str | None], ...]:
        return (("type", None), ("user", "id"), ("matter", "id"))

    def judge(self, binding: Binding[None], viewer: Viewer) -> Judge:
        return hours_judge(viewer)

    def redact(self, obj: dict[str, Any]) -> dict[str, Any]:
        if not KNOWN_FIELDS.issuperset(obj):
            for name in obj.keys() - KNOWN_FIELDS:
                del obj[name]
        for name in HOURS_FIELDS:
            if name in obj:
                obj[name] = None
        obj["quantity_redacted"] = True
        return obj

    def native(self, binding: Binding[None], viewer: Viewer) -> Native | None:
        """hours_judge and redact as the compiled scanner's table (proxy.native)."""
        me = as_int64(viewer.user_id)
        return None if me is None else ("hours", (me, viewer.responsible_matters, _KNOWN, _HOURS))


_FIELD = re.compile(r"[a-z_][a-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class Edit:
    """refuse_hours_edit: the status to refuse with, and fields protected beyond PROTECTED_FIELDS
    (`fields` can only add to them, so a policy line cannot forget one)."""

    status: int
    fields: frozenset[str] = frozenset()


def _edit_spec(reader: SpecReader) -> Edit:
    status = read_status(reader)
    fields = reader.get("fields", [])
    if not isinstance(fields, list) or not all(isinstance(f, str) and _FIELD.match(f) for f in fields):
        reader.problem("fields", "fields: must list field names that may not be set")
        fields = []
    return Edit(status, PROTECTED_FIELDS.union(fields))


def _edit_wanted(binding: Binding[Edit], body: Any, viewer: Viewer) -> bool:
    """Whether this write sets a protected field: only then is the activity fetched and judged."""
    if not restricted(viewer.settings) or body is None:
        return False
    data = body_data(body)
    return any(f in data for f in binding.spec.fields)


def _edit_refused(binding: Binding[Edit], activity: Any, viewer: Viewer) -> ProxyError | None:
    if hours_judge(viewer)(activity):
        return refusal(binding, binding.spec.status, "the hours of this time entry cannot be changed by you")
    return None


def _hides(binding: Binding[None], family: str) -> Hiding:
    return Hiding(frozenset(HOURS_FIELDS))


@dataclass(frozen=True, slots=True)
class Appoint:
    """refuse_attorney_change: the status to refuse with."""

    status: int


def _appoint_spec(reader: SpecReader) -> Appoint:
    return Appoint(read_status(reader))


def _refuse_appointment(
    binding: Binding[Appoint], params: dict[str, int], body: Any, viewer: Viewer
) -> tuple[ProxyError, int | None] | None:
    """A matter's responsible attorney sees its time entries' hours (4.0.8): a caller whose hours are
    restricted who makes themselves that attorney of a matter they are not would widen what they see,
    so the write is refused (SPEC 2.2: changing what makes an entry hidden)."""
    if not restricted(viewer.settings) or body is None or not params:
        return None
    from .contacts import reference_id  # the id as the backend would read it (an int or digit string)

    data = body_data(body)
    named: list[Any] = []
    if "responsible_attorney" in data:
        ref = data["responsible_attorney"]
        if ref is not None and not isinstance(ref, dict):
            raise BadRequestError("`responsible_attorney` must be an object")
        if isinstance(ref, dict) and ref.get("id") is not None:
            named.append(ref["id"])
    if data.get("responsible_attorney_id") is not None:
        named.append(data["responsible_attorney_id"])
    matter = params[next(iter(params))]
    responsible = viewer.responsible_matters
    if responsible is None:
        raise UndecidableError("responsible matters were not resolved")
    if any(reference_id(value) == viewer.user_id for value in named) and matter not in responsible:
        return refusal(binding, binding.spec.status, "you cannot make yourself the responsible attorney of this "
                       "matter (it would show you its time entries' hours)"), matter
    return None


RULE = RuleDef(
    "activity_hours_visibility",
    SETTING,
    (
        ActionDef("redact_hours", spec=no_spec, respond=HoursRedaction(), order=2, hides=_hides,
                  covers=frozenset({"time_entry"})),
        ActionDef("refuse_hours_edit", frozenset({"status", "fields"}), _edit_spec,
                  # the activity as the backend has it, with what the hours judgement reads
                  record_check=RecordCheck("id,type,user{id},matter{id}", _edit_wanted, _edit_refused)),
        ActionDef("refuse_attorney_change", frozenset({"status"}), _appoint_spec, check=_refuse_appointment),
    ),
    restricted,
    facts=("responsible_matters",),
)
"""Activity hours visibility (4.0.8), everything the proxy knows about it."""
