"""The rollout report for people: a self-contained HTML page (inline CSS, no script, no external asset)
and a terminal table, both from `Report.snapshot()`'s JSON data. Every value is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

_COLUMNS = ("route", "rule", "action", "outcome", "records", "requests", "users", "examples")
_REFUSAL_COLUMNS = ("route", "outcome", "requests", "users", "examples")
_SHADOW_COLUMNS = ("route", "rule", "kind", "records", "requests", "users", "examples")
_TOTALS = (
    ("requests", "requests seen"), ("policed_requests", "on policed routes"),
    ("affected_requests", "requests affected"), ("users", "distinct users affected"),
    ("redacted", "objects redacted"), ("dropped", "records dropped"), ("refused", "requests refused by a rule"),
    ("undecidable_or_refused", "undecidable or refused by the proxy"),
)
_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#1d2330;background:#fff}
h1{font-size:1.5rem;margin:0 0 .3rem}h2{font-size:1.15rem;margin:1.8rem 0 .5rem}
.meta{color:#4a5568;margin:0 0 1.2rem}.meta b{color:#1d2330}
.mode{display:inline-block;padding:.1rem .55rem;border-radius:.8rem;font-weight:600;font-size:.85rem}
.mode-dry-run{background:#fff3cd;color:#7a5a00}.mode-enforce{background:#d4edda;color:#155724}
.mode-mixed{background:#e2e3e5;color:#383d41}
table{border-collapse:collapse;width:100%;margin:.3rem 0 1rem}
th,td{border-bottom:1px solid #e2e8f0;padding:.35rem .6rem;text-align:left;vertical-align:top}
th{background:#f7fafc;font-weight:600;font-size:.85rem;text-transform:uppercase;letter-spacing:.03em}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;color:#4a5568}
.totals td{font-weight:600}.none{color:#718096;font-style:italic}
dl{display:grid;grid-template-columns:max-content max-content;gap:.2rem 1.5rem}
dt{color:#4a5568}dd{margin:0;font-weight:600;text-align:right;font-variant-numeric:tabular-nums}
"""


def render_html(report: dict[str, Any]) -> str:
    mode = str(report.get("mode") or "no traffic yet")
    version = str(report.get("policy_version") or "unknown")
    since = str(report.get("since") or "the first line read")
    until = report.get("until")
    totals = report["totals"]
    title = f"Rollout report: {mode}, policy version {version}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f'<h1>Rollout report <span class="mode mode-{escape(mode.replace(" ", "-"))}" id="mode">'
        f"{escape(mode)}</span></h1>",
        f'<p class="meta">Policy version <b id="policy-version">{escape(version)}</b> &middot; since '
        f'<b id="since">{escape(since)}</b>' + (f" until <b>{escape(str(until))}</b>" if until else "") + "</p>",
        "<h2>Totals</h2>", '<dl id="totals">',
        *(f'<dt>{escape(label)}</dt><dd id="total-{escape(key)}">{int(totals.get(key, 0))}</dd>'
          for key, label in _TOTALS),
        "</dl>",
        "<h2>By route, rule and action</h2>",
        _table("rows", _COLUMNS, report["rows"], totals_row=True),
        "<h2>Undecidable or refused by the proxy</h2>",
        _table("refusals", _REFUSAL_COLUMNS, report["undecidable_or_refused"]),
    ]
    shadow = report.get("shadow_differences") or []
    if shadow or report.get("shadow_policy_version"):
        parts += [
            "<h2>Shadow differences</h2>",
            '<p class="meta">Where the candidate policy set <b id="shadow-policy-version">'
            f'{escape(str(report.get("shadow_policy_version") or "unknown"))}</b> decided otherwise than the '
            "live one (never applied): <code>only_shadow</code> the candidate alone, <code>only_live</code> "
            "the live set alone.</p>",
            _table("shadow", _SHADOW_COLUMNS, shadow, totals_row=True),
        ]
    notes = []
    if report.get("users_capped"):
        notes.append("distinct users past the counting cap: user counts are lower bounds")
    if report.get("overflow_events"):
        notes.append(f"{int(report['overflow_events'])} events past the row cap were not counted")
    if report.get("unreadable_lines"):
        notes.append(f"{int(report['unreadable_lines'])} log lines were not JSON and were skipped")
    parts.extend(f'<p class="none">{escape(n)}</p>' for n in notes)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _table(name: str, columns: tuple[str, ...], rows: list[dict[str, Any]], *, totals_row: bool = False) -> str:
    if not rows:
        return f'<p class="none" id="{name}-empty">Nothing yet.</p>'
    head = "".join(f'<th class="{_align(c)}">{escape(c)}</th>' for c in columns)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(f'<td class="{_align(c)}" data-col="{c}">{_cell(c, row)}</td>' for c in columns)
        body.append(f'<tr id="{name}-{i}">{cells}</tr>')
    if totals_row:
        # Records only: a request can touch several rows, so summing their requests would overcount.
        sums = {"records": sum(int(r["records"]) for r in rows)}
        cells = "".join(f'<td class="{_align(c)}" data-col="{c}">{sums.get(c, "Total" if c == "route" else "")}</td>'
                        for c in columns)
        body.append(f'<tr class="totals" id="{name}-total">{cells}</tr>')
    return f'<table id="{name}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _cell(column: str, row: dict[str, Any]) -> str:
    value = row.get(column)
    if column == "examples":
        return " ".join(f"<code>{escape(str(v))}</code>" for v in value or ())
    if column == "users" and row.get("users_capped"):
        return f"&ge;{int(value or 0)}"
    if column in ("records", "requests", "users"):
        return str(int(value or 0))
    return escape(str(value))


def _align(column: str) -> str:
    return "num" if column in ("records", "requests", "users") else "text"


def render_table(report: dict[str, Any]) -> str:
    """The same summary as aligned text for a terminal."""
    lines = [
        f"Rollout report: mode {report.get('mode') or 'unknown'}, policy version "
        f"{report.get('policy_version') or 'unknown'}, since {report.get('since') or 'unknown'}"
        + (f" until {report['until']}" if report.get("until") else ""),
        "",
    ]
    lines.extend(_text_table(_COLUMNS, report["rows"]) or ["(no decisions or refusals)"])
    if report["undecidable_or_refused"]:
        lines += ["", "Undecidable or refused by the proxy:"]
        lines.extend(_text_table(_REFUSAL_COLUMNS, report["undecidable_or_refused"]))
    if report.get("shadow_differences"):
        lines += ["", f"Shadow differences (candidate policy version {report.get('shadow_policy_version')}):"]
        lines.extend(_text_table(_SHADOW_COLUMNS, report["shadow_differences"]))
    totals = report["totals"]
    lines += ["", "Totals:"]
    lines.extend(f"  {label}: {int(totals.get(key, 0))}" for key, label in _TOTALS)
    if report.get("unreadable_lines"):
        lines.append(f"  ({int(report['unreadable_lines'])} lines were not JSON and were skipped)")
    if report.get("overflow_events"):
        lines.append(f"  ({int(report['overflow_events'])} events past the row cap were not counted)")
    return "\n".join(lines) + "\n"


def _text_table(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []

    def text(column: str, row: dict[str, Any]) -> str:
        value = row.get(column)
        if column == "examples":
            return ",".join(str(v) for v in value or ())
        if column == "users" and row.get("users_capped"):
            return f">={value}"
        return str(value)

    table = [list(columns), *([text(c, r) for c in columns] for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    out = []
    for line in table:
        cells = [v.rjust(w) if _align(c) == "num" else v.ljust(w)
                 for c, v, w in zip(columns, line, widths, strict=True)]
        out.append("  ".join(cells).rstrip())
    return out
