"""A toy rule, as a new rule module would be written: `notes_visibility: hidden` callers get notes
without their `detail`. It exists to prove that a rule is one module, one registry line and its
policy lines (tests/test_registry.py), with no other product file touched."""

from __future__ import annotations

from typing import Any

from proxy.facts.settings import UserSettings
from proxy.facts.viewer import Viewer
from proxy.policy.model import Binding
from proxy.rules.base import ActionDef, Hiding, Judge, RuleDef, Setting, no_spec

SETTING = Setting("notes_visibility", ("all", "hidden"), default="all")


def hidden(settings: UserSettings) -> bool:
    return settings[SETTING.key] == "hidden"


class DetailRedaction:
    targets: frozenset[str] | None = frozenset({"detail", "detail_redacted"})
    keeps: frozenset[str] | None = None

    def active(self, settings: UserSettings) -> bool:
        return hidden(settings)

    def reads(self, binding: Binding[None], settings: UserSettings) -> tuple[tuple[str, str | None], ...]:
        return ()

    def judge(self, binding: Binding[None], viewer: Viewer) -> Judge:
        return lambda obj: True  # every note's detail is hidden from such a caller

    def redact(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj.pop("detail", None)
        obj["detail_redacted"] = True
        return obj


def _hides(binding: Binding[None], family: str) -> Hiding:
    return Hiding(frozenset({"detail"}))


RULE = RuleDef(
    "notes_visibility",
    SETTING,
    (ActionDef("redact_detail", spec=no_spec, respond=DetailRedaction(), order=10, hides=_hides),),
    hidden,
)
