"""The rules: one module per rule, each exporting one `RULE` (`proxy.rules.base.RuleDef`) that says
everything about it, collected here in the bundled registry.

Adding a rule is one module, one line below, and its policy lines and tests.
"""

from __future__ import annotations

from . import activity_hours, billing_rate, contacts, personal_injury
from .registry import Registry

BUNDLED = Registry((
    contacts.RULE,
    activity_hours.RULE,
    billing_rate.RULE,
    personal_injury.RULE,
))
