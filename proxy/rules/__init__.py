"""The closed vocabulary of rules: one module per seed rule, registered here by action.

Adding a kind of rule is one module plus a line in RESPOND_RULES or in `proxy.check`.
"""

from __future__ import annotations

from ..policy.model import Action
from .activity_hours import HoursRedaction
from .base import RespondRule
from .billing_rate import RateRedaction
from .contacts import ContactFilter, ContactRedaction

RESPOND_RULES: dict[Action, RespondRule] = {
    Action.REDACT_CONTACT: ContactRedaction(),
    Action.FILTER_CONTACTS: ContactFilter(),
    Action.REDACT_HOURS: HoursRedaction(),
    Action.REDACT_RATE: RateRedaction(),
}
