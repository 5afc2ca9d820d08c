"""Throughput of proxy.jsonstream.IndexSplitter on a ~50 MB index body, next to orjson.

Run: .venv/bin/python bench/jsonstream_speed.py [megabytes]
"""

from __future__ import annotations

import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

import orjson

# Run from a checkout without installing: the package lives one directory up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proxy.jsonstream import IndexSplitter

CHUNK = 64 * 1024
WORDS = ["call", "ACME", "Q3", "budget", "renewal", "Zoë", "Müller", "naïve", "façade", "東京", "🚀", "]", "}", "{"]


def _text(rng: random.Random, words: int) -> str:
    # Quotes, backslashes, brackets and newlines are what make string scanning hard, so the
    # free text carries plenty of them.
    parts = [rng.choice(WORDS) for _ in range(words)]
    if rng.random() < 0.5:
        parts.insert(rng.randrange(len(parts) + 1), '"quoted \\ path C:\\tmp"\n')
    return " ".join(parts)


def _record(rng: random.Random, i: int) -> dict[str, Any]:
    person = None if rng.random() < 0.3 else {
        "id": rng.randrange(10**6),
        "name": f"{rng.choice(WORDS)} O'{rng.choice(WORDS)}",
        "email": [{"value": f"user{i}@example.com", "primary": True, "label": "work"}],
        "phone": [{"value": f"+49 30 {rng.randrange(10**7):07d}", "primary": False}],
    }
    return {
        "id": i,
        "type": rng.choice(["call", "meeting", "task", "email"]),
        "subject": _text(rng, rng.randint(2, 8)),
        "done": rng.random() < 0.3,
        "due_date": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "duration": rng.choice(["00:30", "01:00", None]),
        "user_id": rng.randrange(500),
        "org": {"id": rng.randrange(10**5), "name": _text(rng, 2), "address": None},
        "person": person,
        "participants": [{"person_id": rng.randrange(10**6), "primary_flag": j == 0} for j in range(rng.randint(0, 3))],
        "location": {"lat": rng.uniform(-90, 90), "lng": rng.uniform(-180, 180)},
        "note": _text(rng, rng.choice([0, 5, 20, 80, 200])),
        "update_time": "2024-05-01 10:00:00",
        "marked_as_done_time": None,
    }


def build_body(megabytes: float) -> tuple[bytes, list[int]]:
    """The body, and the size of each of its elements."""
    rng = random.Random(20240501)
    # One growing buffer: a list of orjson outputs would hold far more memory than their length
    # (each keeps its over-sized allocation), which would swamp the RSS figure below.
    body = bytearray(b'{"meta":{"paging":{"next":"http://backend/v1/activities?start=500"}},"data":[')
    sizes: list[int] = []
    while len(body) < megabytes * 1e6:
        raw = orjson.dumps(_record(rng, len(sizes)))
        body += raw + b","
        sizes.append(len(raw))
    body[-1:] = b"]}"
    return bytes(body), sizes


def split(body: bytes) -> tuple[int, int]:
    splitter = IndexSplitter()
    count = total = 0
    view = memoryview(body)
    for start in range(0, len(body), CHUNK):
        # Outputs are dropped at once, as the proxy would after writing them on.
        for item in splitter.feed(bytes(view[start : start + CHUNK])):
            count += 1
            total += len(item.raw)
    splitter.finish()
    return count, total


def best_of(runs: int, fn: Any, *args: Any) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - started)
    return best


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    megabytes = float(sys.argv[1]) if len(sys.argv) > 1 else 50.0
    body, sizes = build_body(megabytes)
    mb = len(body) / 1e6
    print(f"body: {mb:.1f} MB, {len(sizes)} records, element bytes min/avg/max: "
          f"{min(sizes)}/{sum(sizes) // len(sizes)}/{max(sizes)}")
    count, _ = split(body)
    assert count == len(sizes) + 1, count  # every element plus the meta member
    rss_before = peak_rss_mb()
    seconds = best_of(3, split, body)
    print(f"IndexSplitter, {CHUNK // 1024} KB chunks: {mb / seconds:7.1f} MB/s  ({seconds * 1000:.0f} ms)")
    print(f"peak RSS after splitting: {peak_rss_mb():.0f} MB (body and its generation included; "
          f"{peak_rss_mb() - rss_before:.0f} MB added by timed runs)")
    seconds = best_of(3, lambda: orjson.dumps(orjson.loads(body)))
    print(f"orjson.loads+dumps, whole body: {mb / seconds:7.1f} MB/s  ({seconds * 1000:.0f} ms)")
    print(f"peak RSS after orjson: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
