"""What a response rule is: which callers it binds, what it reads, how it judges and redacts one object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..errors import UndecidableError
from ..facts.settings import UserSettings
from ..facts.viewer import Viewer
from ..policy.model import Binding, Rule

Judge = Callable[[Any], bool | None]


class RespondRule(Protocol):
    rule: Rule
    targets: frozenset[str] | None
    """Fields the rule changes; None: it replaces the whole object. A binding whose targets the
    client did not select has nothing to change and is skipped."""

    def active(self, settings: UserSettings) -> bool:
        """Whether the caller's settings make this rule apply at all (plans depend on settings only,
        so they can be cached per settings)."""

    def reads(self, binding: Binding, settings: UserSettings) -> tuple[tuple[str, str | None], ...]:
        """Fields of the object the judgement reads: (name, None) or (name, nested name)."""

    def judge(self, binding: Binding, viewer: Viewer) -> Judge:
        """The judgement of one object for this caller, built once per request (the caller's ids
        and visible sets captured): True: redact; False: leave; None: not an object of this rule
        (a user among participants). Raises UndecidableError on a shape it cannot judge."""

    def redact(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The redacted object: `obj` changed in place, or a replacement (a contact stub)."""


_MISSING: Any = object()


def ref_id(obj: dict[str, Any], name: str) -> int | None:
    """The id of a nested reference (`user`, `matter`): None when the reference is null."""
    ref = obj.get(name, _MISSING)
    if type(ref) is dict:  # the common case first: one lookup each, no isinstance chain
        value = ref.get("id")
        if type(value) is int:
            return value
    if ref is None:
        return None
    if ref is _MISSING:
        raise UndecidableError(f"the backend's answer lacks `{name}`")
    return object_id(ref)


def object_id(obj: Any) -> int:
    """An object's integer id; anything else is undecidable (a string id could alias another).

    `type(...) is int` also refuses bool, which is an int subclass.
    """
    if not isinstance(obj, dict):
        raise UndecidableError("expected an object")
    value = obj.get("id")
    if type(value) is not int:
        raise UndecidableError("an object lacks an integer id")
    return value
