"""What a rule is: its setting, its actions (each with a typed spec of what a policy line may say for
it), the facts it needs. A rule module exports one `RuleDef`; the registry (`proxy.rules.registry`)
is the one place the loader, the settings schema, the facts service, the checks and decide ask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ..errors import BLOCK_ERRORS, BadRequestError, ProxyError, UndecidableError
from ..policy.model import Binding, Location, Name

if TYPE_CHECKING:
    from ..facts.settings import UserSettings
    from ..facts.viewer import Viewer
    from ..yamldoc import Doc, Problems

Judge = Callable[[Any], bool | None]
Native = tuple[str, tuple[Any, ...]]
"""A respond rule's judgement and redaction as the compiled scanner's table (`native(binding, viewer)`,
optional: proxy.native lists the kinds); a rule without one is decided by the pure path."""
S = TypeVar("S")

VIEWER_FACTS: dict[str, tuple[str, ...]] = {
    "visible_contacts": ("matters", "relationships", "created_contacts"),
    "responsible_matters": ("matters",),
}
"""The caller's facts the facts service can resolve, and the policy's fact queries each crawls."""

COVERED_KINDS = frozenset({"contact", "participant", "time_entry", "rated"})
"""What coverage finds in the API's answers (`proxy.policy.spec.Kind`): an action says which it covers."""


@dataclass(frozen=True, slots=True)
class Setting:
    """A rule's key in the settings file: its values, least to most restrictive, and the value a
    caller has when no entry sets it (so a new rule does not break an existing settings file)."""

    key: str
    values: tuple[str, ...]
    default: str


class RespondRule(Protocol):
    targets: frozenset[str] | None
    """Fields the rule changes; None: it replaces the whole object. A binding whose targets the
    client did not select has nothing to change and is skipped."""
    keeps: frozenset[str] | None
    """The allowlist a redacted object is cut to, if any (a hidden time entry keeps the schema's
    fields): a selection naming a field outside it has something to change too (`quantity_v2`)."""

    def active(self, settings: UserSettings) -> bool:
        """Whether the caller's settings make this rule apply at all (plans depend on settings only,
        so they can be cached per settings)."""

    def reads(self, binding: Binding[Any], settings: UserSettings) -> tuple[tuple[str, str | None], ...]:
        """Fields of the object the judgement reads: (name, None) or (name, nested name)."""

    def judge(self, binding: Binding[Any], viewer: Viewer) -> Judge:
        """The judgement of one object for this caller, built once per request (the caller's ids
        and visible sets captured): True: redact; False: leave; None: not an object of this rule
        (a user among participants). Raises UndecidableError on a shape it cannot judge."""

    def redact(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The redacted object: `obj` changed in place, or a replacement (a contact stub)."""


class SpecReader:
    """What one policy line says beyond rule, action, seed, at and methods, read by its action's spec:
    each problem is reported at the key's file:line:column."""

    def __init__(self, doc: Doc, raw: dict[str, Any], at: tuple[str | int, ...], problems: Problems,
                 route_params: tuple[str, ...], location: Location | None, permissions: frozenset[str]) -> None:
        self._doc, self._raw, self._at, self._problems = doc, raw, at, problems
        self.route_params = route_params
        self.location = location
        self.permissions = permissions

    def get(self, key: str, default: Any = None) -> Any:
        return self._raw.get(key, default)

    def problem(self, key: str, message: str) -> None:
        self._problems.add(self._doc.where(*self._at, key), message)


@dataclass(frozen=True, slots=True)
class Hiding:
    """What a response action hides for ordering and filtering: `names` under its location, or, with
    None, every field but what a stub keeps."""

    names: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class RecordCheck(Generic[S]):
    """A check that needs the record as the backend has it (an edit of hidden hours): `wants` says
    whether this write triggers it, `fields` is what to fetch, `refuse` judges the fetched record."""

    fields: str
    wants: Callable[[Binding[S], Any, Viewer], bool]  # (binding, body or None, viewer)
    refuse: Callable[[Binding[S], Any, Viewer], ProxyError | None]


@dataclass(frozen=True, slots=True)
class ActionDef(Generic[S]):
    """One action of a rule. A respond action has `respond` and an apply `order`; a check action has
    `check` (needs only the request and the caller's facts) or `record_check`. `params` are the keys a
    policy line may give beyond the common ones, read by `spec` into the line's typed spec."""

    name: str
    params: frozenset[str] = frozenset()
    spec: Callable[[SpecReader], S] | None = None
    # on responses
    respond: RespondRule | None = None
    order: int | None = None          # apply order among all respond actions (lower first)
    filters: bool = False             # drops records from an index (at `.` of an index route only)
    hides: Callable[[Binding[S], str], Hiding | None] | None = None  # (binding, family): for query_check
    # on requests
    # (binding, route params, body or None, viewer) -> the refusal and the object it names, or None;
    # may raise ProxyError (a malformed body), which refuses as well
    check: Callable[[Binding[S], dict[str, int], Any, Viewer], tuple[ProxyError, int | None] | None] | None = None
    record_check: RecordCheck[S] | None = None
    needs_at: bool = False            # the policy line must say where in the body (`at:`)
    # coverage
    covers: frozenset[str] = frozenset()
    covers_by_id: bool = False        # covers the record a route shows by its one id (`/contacts/{id}`)
    # the index-meta rewrite of a filtering action: the index whose unfiltered records are exactly
    # `visible` (its honest count needs no crawl), and the visible ids the count is taken over
    whole_index: str | None = None
    visible: Callable[[Viewer], frozenset[int]] | None = None

    @property
    def is_respond(self) -> bool:
        return self.respond is not None or self.order is not None


@dataclass(frozen=True, slots=True)
class RuleDef:
    """Everything about one rule, in one value."""

    name: str
    setting: Setting | None                  # None: the rule has no setting of its own (a permission gate)
    actions: tuple[ActionDef[Any], ...]
    active: Callable[[UserSettings], bool]   # whether a caller's settings put them under the rule
    facts: tuple[str, ...] = ()              # caller facts (VIEWER_FACTS) it needs when active
    permissions: frozenset[str] = frozenset()  # permissions it adds to the settings' vocabulary

    @property
    def rule(self) -> Name:
        return Name(self.name)


def no_spec(reader: SpecReader) -> None:
    """The spec of an action a policy line says nothing more about."""
    return None


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


def read_status(reader: SpecReader) -> int:
    """`status:` of a refusing action: one of the statuses a policy may choose (BLOCK_ERRORS)."""
    status = reader.get("status", 0)
    if status not in BLOCK_ERRORS or isinstance(status, bool):
        reader.problem("status", f"status: must be one of {sorted(BLOCK_ERRORS)}")
        return 0
    return int(status)


def refusal(binding: Binding[Any], status: int, message: str) -> ProxyError:
    return BLOCK_ERRORS[status](f"{binding.rule}: {message}", rule=binding.rule)


def body_data(body: Any) -> dict[str, Any]:
    """The `data` object of a write body; anything else is a 400."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise BadRequestError('the body must be {"data": {...}}')
    data: dict[str, Any] = body["data"]
    return data
