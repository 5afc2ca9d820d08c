#!/usr/bin/env python3
"""atheris target: hostile bytes as one policed index record through the compiled scanner (issue 14).

Input: one byte choosing the plan (`0`, `1`...: tests/support/scan_differ.py PLANS: the restricted activities page
sealed and unsealed, a smaller activities selection, a matter's contacts, bills), then the record's
bytes. The oracle is `differ` (tests/support/scan_differ.py): the scanner never raises; where it answers
(not FALLBACK) the pure path (`proxy.transform.transform_element`, same bound and seal) answers the same
bytes and the same decisions (step, path, object id) and does not raise; a record the pure path refuses
is one the scanner answered FALLBACK for.

Mutations: half of them libFuzzer's byte mutations, half structural ones on a record that parses (a
value swapped for an edge case, a member repeated or dropped, keys reordered, whitespace, a string's
characters escaped), so the bytes keep reaching the scanner's judges rather than its tokenizer only.

Seeds: fuzz/corpus/scanner/ (records of the demo backend, as the proxy asks for them, plan byte first).
SCAN_EXTENSION=path/to/_scan.so loads that build of proxy._scan instead (the sanitizer build of
tests/test_fuzz.py); the path loaded is printed at start.

Run: .venv/bin/python fuzz/fuzz_scanner.py -atheris_runs=20000 OUTDIR fuzz/corpus/scanner
"""

from __future__ import annotations

import importlib.util
import os
import random
import sys
from pathlib import Path
from typing import Any

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _load_extension(path: str) -> None:
    """proxy._scan from `path` (before proxy.native imports it)."""
    import proxy

    spec = importlib.util.spec_from_file_location("proxy._scan", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules["proxy._scan"] = module
    spec.loader.exec_module(module)
    proxy._scan = module


if os.environ.get("SCAN_EXTENSION"):
    _load_extension(os.environ["SCAN_EXTENSION"])

with atheris.instrument_imports(include=["proxy", "tests.support.scan_differ"]):
    import orjson

    from proxy import native
    from tests.support.scan_differ import differ, plans

PLANS = plans()
EDGES: tuple[Any, ...] = (
    None, True, False, 0, -0.0, 1.5, 1.50, 2**63, -(2**63), 2**53 + 1, 1e16, 1e-7, 0.1, "", "é", "\u2028",
    "\x00", "\\", '"', "/", "TimeEntry", "ExpenseEntry", "Person", "Company", "User", {}, [], [[]], {"id": 2},
    {"id": 10002, "type": "Person", "name": "n"}, {"id": 10001, "type": "Company", "name": "n", "etag": "e"},
    {"id": 20001}, {"id": 20002}, {"id": "2"}, {"id": 2.0}, {"id": None}, [{"id": 1}], "\ud7ff",
)


def _mutate_value(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        out = dict(value)
        roll = rng.random()
        if roll < 0.15:
            del out[key]
        elif roll < 0.3:
            out[rng.choice(["id", "type", "etag", "name", "user", "matter", "vendor", "quantity", "price",
                            "redacted", "quantity_redacted", "zzz"])] = rng.choice(EDGES)
        else:
            out[key] = _mutate_value(value[key], rng)
        return out
    if isinstance(value, list) and value and rng.random() < 0.7:
        out_list = list(value)
        at = rng.randrange(len(out_list))
        out_list[at] = _mutate_value(out_list[at], rng)
        return out_list
    return rng.choice(EDGES)


def _spaced(text: bytes, rng: random.Random) -> bytes:
    """Whitespace after some structural bytes (outside strings)."""
    out = bytearray()
    in_string = escaped = False
    for byte in text:
        out.append(byte)
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in b",:[]{}" and rng.random() < 0.3:
            out += rng.choice([b" ", b"\n", b"\t", b"\r\n  "])
    return bytes(out)


def _escaped(text: bytes, rng: random.Random) -> bytes:
    """A string's first plain character escaped (as \\uXXXX or \\/)."""
    at = text.find(b'"', rng.randrange(max(1, len(text))))
    if at < 0 or at + 1 >= len(text) or not (0x20 <= text[at + 1] < 0x7F) or text[at + 1] in b'"\\':
        return text
    spelled = b"\\/" if text[at + 1] == 0x2F else b"\\u%04x" % text[at + 1]
    return text[: at + 1] + spelled + text[at + 2 :]


def _repeated(text: bytes, rng: random.Random) -> bytes:
    """A member of the record written twice (the second value an edge case)."""
    record = orjson.loads(text)
    if not isinstance(record, dict) or not record:
        return text
    key = rng.choice(list(record))
    member: bytes = b'"' + key.encode() + b'":' + orjson.dumps(rng.choice([record[key], *EDGES]))
    return text[:-1] + b"," + member + b"}"


def _structural(record: bytes, rng: random.Random) -> bytes:
    try:
        value = orjson.loads(record)
    except orjson.JSONDecodeError:
        return record
    if not isinstance(value, dict):
        return record
    roll = rng.random()
    if roll < 0.5:
        value = _mutate_value(value, rng)
    elif roll < 0.6:
        items = list(value.items())
        rng.shuffle(items)
        value = dict(items)
    text = orjson.dumps(value)
    roll = rng.random()
    if roll < 0.2:
        text = _spaced(text, rng)
    elif roll < 0.35:
        text = _escaped(text, rng)
    elif roll < 0.45:
        text = _repeated(text, rng)
    return text


def CustomMutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if len(data) > 1 and rng.random() < 0.5:
        out: bytes = data[:1] + _structural(data[1:], rng)
        if rng.random() < 0.1:
            out = bytes([rng.randrange(256)]) + out[1:]
        if len(out) <= max_size:
            return out
    mutated: bytes = atheris.Mutate(data, max_size)
    return mutated


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    name, bound, seal = PLANS[(data[0] - 0x30) % len(PLANS)]  # an ASCII digit names the plan (the seeds)
    problem = differ(bound, seal, data[1:])
    if problem is not None:
        raise AssertionError(f"{name}: {problem}\n record: {data[1:][:600]!r}")


def _bytes_mutated(data: bytes, rng: random.Random) -> bytes:
    """A few byte edits (libFuzzer's own mutations, without libFuzzer)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        at = rng.randrange(len(out) + 1)
        if roll < 0.3 and at < len(out):
            out[at] = rng.randrange(256)
        elif roll < 0.5 and at < len(out):
            del out[at : at + rng.randint(1, 8)]
        elif roll < 0.7:
            out[at:at] = bytes(rng.choice(b'{}[]",:\\0-.eE \x80\xc3\xff') for _ in range(rng.randint(1, 3)))
        elif len(out) > 1:
            start = rng.randrange(len(out))
            out[at:at] = out[start : start + rng.randint(1, 32)]
    return bytes(out)


def drive(runs: int, directories: list[str]) -> None:
    """`--drive RUNS DIR...`: TestOneInput over every file of the directories, then `runs` mutations of
    them (structural and byte edits, seeded: the same inputs every time), without libFuzzer. For the
    sanitizer build (tests/test_fuzz.py): a preloaded ASan runtime takes over the coverage callbacks
    atheris needs, so there libFuzzer would mutate blind from a one-byte input."""
    seeds = sorted(p.read_bytes() for d in directories for p in Path(d).iterdir() if p.is_file())
    assert seeds, directories
    for data in seeds:
        TestOneInput(data)
    rng = random.Random(14)
    for _ in range(runs):
        data = rng.choice(seeds)
        for _ in range(rng.randint(1, 3)):
            data = (data[:1] + _structural(data[1:], rng)) if rng.random() < 0.5 else _bytes_mutated(data, rng)
        TestOneInput(data)
    print(f"Done {len(seeds) + runs} inputs (driven)", flush=True)


def main() -> None:
    if not native.available():
        raise SystemExit(f"the compiled scanner is not built: {native.UNAVAILABLE}")
    import proxy._scan

    print(f"scanner: {proxy._scan.__file__}", flush=True)
    if sys.argv[1:2] == ["--drive"]:
        drive(int(sys.argv[2]), sys.argv[3:])
        return
    atheris.Setup(sys.argv, TestOneInput, custom_mutator=CustomMutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
