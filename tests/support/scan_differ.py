"""The compiled scanner against the pure path on one record's bytes (issue 14): `differ(bound, seal, raw)`.

Shared by the atheris target fuzz/fuzz_scanner.py (hostile bytes, and its ASan/UBSan build in
tests/test_fuzz.py) and property tests over generated records. The pure path
(`proxy.transform.transform_element`) is the definition; where the scanner answers (not FALLBACK) it
must agree with it exactly:

- the scanner never raises;
- the same bytes out (None: the record dropped), byte for byte;
- the same decisions, in order: the step (by identity), the JSON path and the decided object's id as
  a decision is noted (`Decision.object_id`: an int id, else None), the scanner's as `proxy.body.Judging`
  notes them;
- the pure path does not raise: a record it refuses (UndecidableError) is one the scanner must have
  answered FALLBACK for.

Where the scanner answers FALLBACK the pure path decides alone: it may answer or refuse with a
documented error (a ProxyError), nothing else.

`plans()` gives the bound plans the fuzz target runs: plans of the bundled policies for user 2 of the
demo firm, restricted by every rule, each of which compiles to a scanner.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from proxy import native
from proxy.body import Judging
from proxy.decide import Bound, Decision, make_plan
from proxy.errors import ProxyError, UndecidableError
from proxy.etag import Sealer
from proxy.facts.settings import Settings
from proxy.facts.viewer import Viewer
from proxy.policy.fields import parse_fields
from proxy.policy.load import load_policies
from proxy.transform import Seal, transform_element
from tests.conftest import ALL, RESTRICTED

REPO = Path(__file__).resolve().parents[2]
PATH = "data[7]"
VISIBLE = frozenset(range(10000, 10200, 2))  # the demo firm's contacts are 10001..10150: half of them visible
RESPONSIBLE = frozenset(range(20001, 20041, 2))  # matters 20001..20040: every other one is user 2's
ACTIVITY_FIELDS = (  # bench/peers/page.py's page: nested shaping, vendor, hours and rate fields
    "id,etag,type,date,quantity,rounded_quantity,quantity_in_hours,rounded_quantity_in_hours,"
    "quantity_redacted,price,total,non_billable,non_billable_total,no_charge,billed,on_bill,flat_rate,"
    "contingency_fee,note,created_at,updated_at,matter{id,display_number},user{id,name},"
    "activity_description{id,name},expense_category{id,name},vendor{id,name,type},calendar_entry,"
    "communication,task"
)
PLANS: tuple[tuple[str, str, str | None, bool], ...] = (
    # name, route, ?fields=, sealed
    ("activities", "/activities", ACTIVITY_FIELDS, True),
    ("activities-unsealed", "/activities", ACTIVITY_FIELDS, False),
    ("activities-few", "/activities", "id,etag,type,quantity,price,total,user{id},matter{id},vendor", True),
    ("matter-contacts", "/matters/{matter_id}/contacts", "id,etag,name,type,company{id,name,etag}", True),
    ("bills", "/bills", "id,etag,state,total,client{id,name,etag}", True),
    # list places: participants (`attendees[]`) and `custom_field_values[].contact`
    ("calendar", "/calendar_entries", "id,etag,summary,attendees{id,type,name,etag}", True),
    ("matter-values", "/matters", "id,etag,client{id,name},custom_field_values{id,field_type,contact,value}", True),
)


def sealer() -> Seal:
    return Sealer.of(b"k" * 32, "caller", "v1").record_tag


@cache
def plans() -> tuple[tuple[str, Bound, Seal | None], ...]:
    """PLANS bound to user 2 (restricted by every rule); each compiles to a scanner (asserted)."""
    routes = {r.template: r for r in load_policies(REPO / "policies").routes}
    settings = Settings(ALL, {}, {2: RESTRICTED}, "differ").for_caller(2, ("Attorney",))
    viewer = Viewer(2, ("Attorney",), settings, VISIBLE, RESPONSIBLE)
    seal = sealer()
    out = []
    for name, template, fields, sealed in PLANS:
        plan = make_plan(routes[template], settings, parse_fields(fields) if fields else None, index=True)
        bound = plan.bind(viewer)
        assert scanner_of(bound, seal if sealed else None) is not None or not native.available(), name
        out.append((name, bound, seal if sealed else None))
    return tuple(out)


_scanners: dict[tuple[int, int], tuple[Bound, Seal | None, Any]] = {}


def scanner_of(bound: Bound, seal: Seal | None) -> Any:
    """The compiled scanner of (bound, seal), made once (the bound and the seal kept alive with it)."""
    key = (id(bound), id(seal))
    kept = _scanners.get(key)
    if kept is None or kept[0] is not bound or kept[1] is not seal:
        kept = _scanners[key] = (bound, seal, native.scanner(bound, apply=True, watched=False, seal=seal))
    return kept[2]


def _key(decision: Decision, steps: tuple[Any, ...]) -> tuple[int, str, tuple[type, Any]]:
    index = next(i for i, step in enumerate(steps) if step is decision.step)
    ident = decision.object_id  # the id a decision is noted (logged) by: an int, else None
    return index, decision.path, (type(ident), ident)


def differ(bound: Bound, seal: Seal | None, raw: bytes) -> str | None:
    """None when the scanner and the pure path agree on `raw` (or the scanner fell back and the pure
    path answered or refused as documented); else what differs."""
    scanner = scanner_of(bound, seal)
    if scanner is None:
        return "the plan does not compile to a scanner (or the extension is not built)"
    try:
        done = scanner.run(raw)
        page = scanner.run_all([raw])  # the buffered index's one call per page, over a page of one
        body = scanner.run_body(b'{"data": [' + raw + b'], "meta": {"records": 1}}')  # and over the whole body
    except Exception as error:  # any exception is a finding
        return f"the scanner raised {error!r}"
    if (page is native.FALLBACK) != (done is native.FALLBACK):
        return f"run and run_all disagree on falling back: {done!r} / {page!r}"
    if page is not native.FALLBACK:
        assert isinstance(page, tuple) and isinstance(done, tuple)
        if page != (b"[" + (done[0] or b"") + b"]", [(0, *d) for d in done[1]]):
            return f"run_all answered another page than run's record: {page!r} / {done!r}"
    # (not the other way round: bytes `run` refuses as one record, `{"id":1},{"id":2}` or blanks, can
    # be a page's records)
    if done is not native.FALLBACK:
        if body is native.FALLBACK:
            return f"run_body fell back on a page of the one record run answered: {done!r}"
        assert isinstance(body, tuple) and isinstance(done, tuple)
        record = (done[0] or b"").strip(b" \t\r\n")  # in a body, the record's own bytes are its value's
        if body != (b"[" + record + b"]", b'{"records": 1}', [(0, *d) for d in done[1]]):
            return f"run_body answered another body than run's record: {body!r} / {done!r}"
    pure: tuple[bytes | None, list[Decision]] | None = None
    try:
        pure = transform_element(raw, PATH, bound, enforce=True, seal=seal)
    except UndecidableError as error:
        refused: Exception = error
    except ProxyError as error:
        refused = error
    except Exception as error:  # the pure path raised an undocumented error
        return f"the pure path raised {error!r}"
    if done is native.FALLBACK:
        return None
    if not (isinstance(done, tuple) and len(done) == 2 and (done[0] is None or isinstance(done[0], bytes))
            and isinstance(done[1], list)):
        return f"the scanner answered {done!r}, neither FALLBACK nor (bytes or None, [decisions])"
    if pure is None:
        return f"the scanner answered {done[0]!r} where the pure path refused: {refused!r}"
    out, found = done
    pure_out, pure_decisions = pure
    if out != pure_out:
        return f"bytes differ:\n scanner {out!r}\n pure    {pure_out!r}"
    steps = bound.plan.steps
    try:
        noted: list[Decision] = []
        Judging(bound, True, noted.extend)._scanned([(PATH, *decision) for decision in found])
        scanned = [_key(d, steps) for d in noted]
    except Exception as error:  # a decision noting would fail in the proxy too
        return f"the scanner's decisions {found!r} cannot be noted: {error!r}"
    expected = [_key(d, steps) for d in pure_decisions]
    if scanned != expected:
        return f"decisions differ:\n scanner {scanned!r}\n pure    {expected!r}"
    return None
