"""Billing rate visibility (4.0.5): `price` and `total` are removed and `redacted: true` added.

Seed row: 4.0.5 "Redact price and total fields of Activity records based on a user's Billing Rate
Visibility setting". `own` hides other users' entries, `none` hides all.
"""

from __future__ import annotations

from typing import Any

from ..errors import UndecidableError
from ..facts.settings import BillingRateVisibility, UserSettings
from ..facts.viewer import Viewer
from ..policy.model import Binding, Rule
from .base import Judge, ref_id

RATE_FIELDS = ("price", "total")


class RateRedaction:
    rule: Rule = Rule.BILLING_RATE_VISIBILITY
    targets: frozenset[str] | None = frozenset(RATE_FIELDS) | {"redacted"}

    def active(self, settings: UserSettings) -> bool:
        return settings.billing_rate_visibility is not BillingRateVisibility.ALL

    def reads(self, binding: Binding, settings: UserSettings) -> tuple[tuple[str, str | None], ...]:
        if settings.billing_rate_visibility is BillingRateVisibility.NONE:
            return ()
        return (("user", "id"),)

    def judge(self, binding: Binding, viewer: Viewer) -> Judge:
        none = viewer.settings.billing_rate_visibility is BillingRateVisibility.NONE
        me = viewer.user_id

        def hidden(obj: Any) -> bool:
            if not isinstance(obj, dict):
                raise UndecidableError("expected an activity object")
            return none or ref_id(obj, "user") != me

        return hidden

    def redact(self, obj: dict[str, Any]) -> dict[str, Any]:
        for name in RATE_FIELDS:
            obj.pop(name, None)
        obj["redacted"] = True
        return obj
