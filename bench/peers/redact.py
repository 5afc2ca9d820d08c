"""The restricted caller's redaction of an activities page, hard-coded: no policy, no facts.

Shared by both peers (and by bench/run.py, which checks their pages with the same fields and caller).
Only orjson is needed, so the mitmproxy venv can import it too.
"""

from __future__ import annotations

from typing import Any

import orjson

HOURS: tuple[str, ...] = ("quantity", "rounded_quantity", "quantity_in_hours", "rounded_quantity_in_hours", "total",
                          "non_billable_total")
CALLER = 2
CALLER_AUTHORIZATION = f"Bearer token-{CALLER}"


def redact(body: bytes) -> bytes:
    """Hide the hours, price and total of every activity not the caller's own, as the proxy does for token-2."""
    doc: dict[str, Any] = orjson.loads(body)
    for activity in doc.get("data", []):
        if (activity.get("user") or {}).get("id") == CALLER:
            continue
        if activity.get("type") == "TimeEntry":
            for key in HOURS:
                if key in activity:
                    activity[key] = None
            activity["quantity_redacted"] = True
        activity.pop("price", None)
        activity.pop("total", None)
        activity["redacted"] = True
    return orjson.dumps(doc)
