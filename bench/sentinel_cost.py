"""CPU the relay's JSON work costs on one 100 KB page of 130 records with nested contacts: the paging
link rewrite (every relayed JSON answer) and the sentinel's scan (a restricted caller, sentinel on).

Run: .venv/bin/python bench/sentinel_cost.py
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from typing import Any

import orjson
from yarl import URL

from proxy.http.relay_links import PagingLinkRewriter
from proxy.sentinel import Finding, scan

records = [{"id": i, "type": "TimeEntry", "note": "n" * 560, "quantity": 3600,
            "user": {"id": 3, "name": "A User", "type": "User"},
            "matter": {"id": 5, "display_number": "00001",
                       "client": {"id": 900 + i % 7, "name": "Client", "type": "Company"}},
            "contact": {"id": 950 + i % 3, "name": "Some Person", "type": "Person"}} for i in range(130)]
page = orjson.dumps({"data": records, "meta": {"paging": {"next": "http://backend:3000/api/v4/x.json?page_token=a"},
                                               "records": 130}})
visible = frozenset(range(900, 951))
up, pub = URL("http://backend:3000"), URL("http://proxy:8080")
n = 500


def hidden(contact: int) -> bool:
    return contact not in visible


def sentinel_report() -> tuple[Any, list[Finding]]:
    doc = orjson.loads(page)
    return scan(doc, hidden, redact=False)


def sentinel_redact() -> bytes:
    doc, _ = scan(orjson.loads(page), hidden, redact=True)
    return orjson.dumps(doc)


def links() -> bytes:
    r = PagingLinkRewriter(up, pub)
    return r.feed(page) + r.finish()


def main() -> None:
    print(f"page {len(page)} bytes, findings {len(sentinel_report()[1])}")
    cases: list[tuple[str, Callable[[], object]]] = [
        ("paging-link rewrite (every relayed JSON answer)", links),
        ("sentinel report: loads + scan", sentinel_report),
        ("sentinel redact: loads + scan + stub + dumps", sentinel_redact),
    ]
    for name, fn in cases:
        best = min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6
        print(f"{name}: {best:.0f} us")
    doc0 = orjson.loads(page)
    print("orjson.loads alone:", min(timeit.repeat(lambda: orjson.loads(page), number=n, repeat=5)) / n * 1e6)
    print("scan alone:",
          min(timeit.repeat(lambda: scan(doc0, hidden, redact=False), number=n, repeat=5)) / n * 1e6)


if __name__ == "__main__":
    main()
