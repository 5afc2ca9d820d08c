"""The body contract of policed answers: what the backend's bytes may be, and what goes out.

Pure and synchronous; the responders (proxy/http/respond.py) only read, write and rewrite the meta.

- One duplicate-key policy (`proxy.jsonkeys`): a key repeated anywhere is refused, on every path.
- One envelope for an index, `{"data": [...], "meta": {...}}`, whether the body is read whole
  (`index_whole`: up to BUFFER_INDEX_BELOW, sized or chunked) or streamed (`IndexStream`): the same
  bytes give the same records and meta, or a refusal on both (tests/test_body_contract.py).
- One definition of "pass the backend's bytes": a record nothing changed (not shaped, decided,
  sealed or stripped) goes out as the backend's exact bytes, on every path, decided by the compiled
  scanner (`proxy/_scan.pyx`, through `Judging.native`) or the pure path (`proxy.transform`) alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from .decide import Bound, Decision, Step
from .envelope import decode_meta, split_index
from .errors import UndecidableError
from .jsonkeys import refuse_repeated_keys
from .jsonstream import Element, EnvelopeError, IndexSplitter
from .native import FALLBACK
from .sentinel import GapScan
from .transform import Observe, Seal, transform_element, transform_record, unchanged

Note = Callable[[list[Decision]], None]
"""Where each record's decisions go (`Exchange.note`): counted, kept for the trail, maybe logged."""

NO_META: Any = msgspec.UNSET
"""An index without a meta member."""


@dataclass(frozen=True, slots=True)
class Judging:
    """What every record of one answer goes through: the plan bound to the caller, whether decisions
    are applied, where they are noted, and what watches each record beside the live set (a shadow
    candidate deciding on it before it is changed, and settling against the live decisions; the
    sentinel's scan of places no step reads)."""

    bound: Bound
    apply: bool                      # the mode's effects: decisions applied (enforce) or only taken
    note: Note
    seal: Seal | None = None
    observe: Observe | None = None
    settle: Note | None = None
    gaps: GapScan | None = None
    native: Any = None  # the compiled scanner of this answer (proxy.native.scanner), or None: the pure path

    @property
    def untouched(self) -> bool:
        """No rule reads a record and no sentinel scans it: the records' own bytes, once validated."""
        return not self.bound.plan.touches and self.gaps is None

    def record(self, record: Any, path: str) -> dict[str, Any] | None:
        out, decisions = transform_record(record, path, self.bound, enforce=self.apply, seal=self.seal,
                                          observe=self.observe, gaps=self.gaps)
        self._noted(decisions)
        return out

    def element(self, raw: bytes, path: str) -> bytes | None:
        if self.native is not None:
            done = self.native.run(raw)
            if done is not FALLBACK:  # else a record the scanner is not sure of: the pure path below
                out, found = done
                if found:
                    self._scanned([(path, *decision) for decision in found])
                return out  # type: ignore[no-any-return]
        out, decisions = transform_element(raw, path, self.bound, enforce=self.apply, seal=self.seal,
                                           observe=self.observe, gaps=self.gaps)
        self._noted(decisions)
        return out

    def noted_page(self, found: list[tuple[int, int, int | None, int]], first: int = 0) -> None:
        """A page's (or a streamed chunk's) decisions from the scanner, (record index, step index,
        object id, index in a list place or -1); `first`: the index of the chunk's first record."""
        self._scanned([(f"data[{first + record}]", *decision) for record, *decision in found])

    def _scanned(self, found: list[tuple[Any, ...]]) -> None:
        """The scanner's decisions, (record's JSON path, step index, object id, index in a list
        place or -1), noted as decide's are: the step, the path and the object's id (its values stay
        in the scanner)."""
        steps = self.bound.plan.steps
        out = []
        for path, index, object_id, where in found:
            step = steps[index]
            if step.key is not None:
                path = f"{path}.{step.key}"
            elif not step.whole:
                path += _suffix(step, where)
            out.append(Decision(step, path, None, ident=object_id))
        self._noted(out)


    def _noted(self, decisions: list[Decision]) -> None:
        if decisions:
            self.note(decisions)
        if self.settle is not None:
            self.settle(decisions)


def _suffix(step: Step, where: int) -> str:
    """A list place's path below the record, as Location.find writes it (`.attendees[2]`)."""
    at = step.binding.at
    assert at is not None
    return "".join(f".{key}[{where}]" if is_list else f".{key}" for key, is_list in at.steps)


def parse_json(raw: bytes, what: str) -> Any:
    """A whole JSON document under the one duplicate-key policy; malformed or repeating: refused."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UndecidableError(f"{what} is not valid JSON") from None
    refuse_repeated_keys(raw, doc, what)
    return doc


@dataclass(frozen=True, slots=True)
class Show:
    body: bytes              # what the client gets (before gzip)
    backend_etag: Any        # the record's own `etag` member as the backend sent it (read before redaction)


def show_body(raw: bytes, judging: Judging, *, record_id: int | None = None) -> Show:
    """A single object `{"data": {...}}`: decided, and redacted when enforcing.

    `record_id`: the answer about /contacts/5 must be contact 5; another record (a hidden one) is refused."""
    doc = parse_json(raw, "the backend's answer")
    if not isinstance(doc, dict) or set(doc) != {"data"}:
        raise UndecidableError("the backend's answer is not {\"data\": {...}}")
    data = doc["data"]
    if record_id is not None and (not isinstance(data, dict) or type(data.get("id")) is not int
                                  or data["id"] != record_id):
        raise UndecidableError("the backend answered with another record than the one asked for")
    backend_etag = data.get("etag") if isinstance(data, dict) else None
    stubs = judging.gaps.redacted if judging.gaps is not None else 0
    record = judging.record(data, "data")
    if record is None:
        raise UndecidableError("a single object cannot be filtered")
    kept = judging.gaps is None or judging.gaps.redacted == stubs  # the sentinel changed nothing
    body = raw if unchanged(judging.bound.plan, enforce=judging.apply) and kept else orjson.dumps({"data": record})
    return Show(body, backend_etag)


@dataclass(frozen=True, slots=True)
class Index:
    data: bytes   # the `data` array as sent: `[...]`
    meta: Any     # the backend's meta, decoded (NO_META when absent), for the responder to rewrite


def index_whole(raw: bytes, judging: Judging) -> Index:
    """An index body read whole: by the scanner in one call (envelope, records, meta) where it
    compiled; else sliced by msgspec into its records' own bytes (validated), then judged in one call
    per page or record by record as a streamed one is (`Judging.element`): the same bytes either way."""
    if judging.native is not None:
        whole = judging.native.run_body(raw)  # the envelope and every record in one call
        if whole is not FALLBACK:  # else anything the scanner is not sure of: split as below
            data, meta_raw, found = whole
            if found:
                judging.noted_page(found)
            return Index(data, decode_meta(meta_raw) if meta_raw is not None else NO_META)
    records, meta = split_index(raw)
    if judging.untouched and judging.observe is None:
        return Index(_RAW_LIST.encode(records), meta)
    if judging.native is not None:
        done = judging.native.run_all(records)  # the whole page in one call
        if done is not FALLBACK:  # else a record the scanner is not sure of: record by record below
            data, found = done
            if found:
                judging.noted_page(found)
            return Index(data, meta)
    out = []
    for i, record in enumerate(records):
        element = judging.element(bytes(record), f"data[{i}]")
        if element is not None:
            out.append(element)
    return Index(b"[" + b",".join(out) + b"]", meta)


_RAW_LIST = msgspec.json.Encoder()


class IndexStream:
    """An index body fed chunk by chunk: the records to send as each completes, then the meta."""

    def __init__(self, judging: Judging, *, max_element: int) -> None:
        self._splitter = IndexSplitter(max_element_bytes=max_element)
        self._judging = judging
        self._index = 0
        self.meta: Any = NO_META

    def feed(self, chunk: bytes) -> list[bytes]:
        try:
            return self._take(self._splitter.feed(chunk))
        except EnvelopeError:
            raise UndecidableError("the backend's index body is malformed") from None

    def finish(self) -> list[bytes]:
        try:
            return self._take(self._splitter.finish())
        except EnvelopeError:
            raise UndecidableError("the backend's index body is malformed") from None

    def _take(self, pieces: list[Any]) -> list[bytes]:
        """The records of one chunk, judged: by the scanner in one call where it compiled (the
        chunk's records joined as one piece), else record by record."""
        judging = self._judging
        records = []
        for piece in pieces:
            if isinstance(piece, Element):
                records.append(piece.raw)
            elif piece.key == "meta":
                self.meta = parse_json(piece.raw, "the index meta")
            else:
                raise UndecidableError("the index has an unexpected member")
        first = self._index
        self._index += len(records)
        if records and judging.native is not None:
            done = judging.native.run_all(records)
            if done is not FALLBACK:  # else a record the scanner is not sure of: record by record below
                data, found = done
                if found:
                    judging.noted_page(found, first)
                return [data[1:-1]] if len(data) > 2 else []
        out: list[bytes] = []
        for i, raw in enumerate(records, first):
            element = judging.element(raw, f"data[{i}]")
            if element is not None:
                out.append(element)
        return out
