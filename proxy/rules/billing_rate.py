"""Billing rate visibility (4.0.5): `price` and `total` are removed and `redacted: true` added.

Seed row: 4.0.5 "Redact price and total fields of Activity records based on a user's Billing Rate
Visibility setting". `own` hides other users' entries, `none` hides all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import UndecidableError
from ..native import as_int64
from ..policy.model import Binding
from .base import ActionDef, Hiding, Judge, Native, RuleDef, Setting, no_spec, ref_id

if TYPE_CHECKING:
    from ..facts.settings import UserSettings
    from ..facts.viewer import Viewer

RATE_FIELDS = ("price", "total")
SETTING = Setting("billing_rate_visibility", ("all", "own", "none"), default="all")


def restricted(settings: UserSettings) -> bool:
    return settings[SETTING.key] != "all"


class RateRedaction:
    targets: frozenset[str] | None = frozenset(RATE_FIELDS) | {"redacted"}
    keeps: frozenset[str] | None = None

    def active(self, settings: UserSettings) -> bool:
        return restricted(settings)

    def reads(self, binding: Binding[None], settings: UserSettings) -> tuple[tuple[str, str | None], ...]:
        if settings[SETTING.key] == "none":
            return ()
        return (("user", "id"),)

    def judge(self, binding: Binding[None], viewer: Viewer) -> Judge:
        none = viewer.settings[SETTING.key] == "none"
        me = viewer.user_id

        def hidden(obj: Any) -> bool:
            if not isinstance(obj, dict):
                raise UndecidableError("expected an activity object")
            return none or ref_id(obj, "user") != me

        return hidden

    def native(self, binding: Binding[None], viewer: Viewer) -> Native | None:
        """judge and redact as the compiled scanner's table (proxy.native)."""
        me = as_int64(viewer.user_id)
        if me is None:
            return None
        return "rate", (viewer.settings[SETTING.key] == "none", me, tuple(n.encode() for n in RATE_FIELDS))

    def redact(self, obj: dict[str, Any]) -> dict[str, Any]:
        for name in RATE_FIELDS:
            obj.pop(name, None)
        obj["redacted"] = True
        return obj


def _hides(binding: Binding[None], family: str) -> Hiding:
    return Hiding(frozenset(RATE_FIELDS))


RULE = RuleDef(
    "billing_rate_visibility",
    SETTING,
    (
        # after hours: `total` is removed, not left null
        ActionDef("redact_rate", spec=no_spec, respond=RateRedaction(), order=3, hides=_hides,
                  covers=frozenset({"rated"})),
    ),
    restricted,
)
"""Billing rate visibility (4.0.5), everything the proxy knows about it."""
