"""`incident-bot report` as Markdown, CSV or JSON. Pure: rows and totals in, text out."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.domain.report import IncidentRow

# The contract's columns first (DESIGN §1), then what else a row knows.
CSV_COLUMNS = [
    "ref", "title", "severity", "private", "declared_at", "impact_start", "impact_end",
    "time_to_detect_min", "time_to_resolve_min", "tasks_open", "tasks_done",
    "closed_at", "time_to_close_min", "tasks_overdue",
]  # fmt: skip
FORMATS = ("markdown", "csv", "json")


def render(rows: Sequence[IncidentRow], totals: dict[str, Any], fmt: str) -> str:
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "json":
        return json.dumps({"incidents": [row_dict(r) for r in rows], "totals": totals}, indent=2, sort_keys=True) + "\n"
    return to_markdown(rows, totals)


def row_dict(row: IncidentRow) -> dict[str, Any]:
    return {name: _value(getattr(row, name)) for name in CSV_COLUMNS}


def _value(value: object) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")  # ISO 8601, UTC (storage is UTC)
    return value


def to_csv(rows: Sequence[IncidentRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = row_dict(row)
        writer.writerow(["" if values[c] is None else str(values[c]).lower() if isinstance(values[c], bool)
                         else values[c] for c in CSV_COLUMNS])  # fmt: skip
    return out.getvalue()


def to_markdown(rows: Sequence[IncidentRow], totals: dict[str, Any]) -> str:
    head = "| ref | title | severity | declared | detect (min) | resolve (min) | close (min) | tasks done/open/late |"
    lines = ["# Incident report", "", f"{totals['count']} incident(s).", "", head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        title = _cell(r.title) + (" (private)" if r.private else "")
        tasks = f"{r.tasks_done}/{r.tasks_open}/{r.tasks_overdue}"
        lines.append(
            f"| {r.ref} | {title} | {r.severity.upper()} | {_value(r.declared_at)} | {_num(r.time_to_detect_min)} | "
            f"{_num(r.time_to_resolve_min)} | {_num(r.time_to_close_min)} | {tasks} |"
        )
    lines += ["", *_totals_table("By severity", totals["by_severity"])]
    lines += ["", *_totals_table("By month", totals["by_month"])]
    rate = totals["tasks_completion_rate"]
    lines += ["", f"Tasks completed: {_percent(rate)}."]
    return "\n".join(lines) + "\n"


def _totals_table(title: str, groups: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"## {title}", "", "| | count | detect median | detect p90 | resolve median | resolve p90 | tasks done |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, g in groups.items():
        label = name.upper() if name.startswith("sev") else name
        lines.append(
            f"| {label} | {g['count']} | {_num(g['time_to_detect_median_min'])} | "
            f"{_num(g['time_to_detect_p90_min'])} | {_num(g['time_to_resolve_median_min'])} | "
            f"{_num(g['time_to_resolve_p90_min'])} | {_percent(g['tasks_completion_rate'])} |"
        )
    return lines


def _num(value: float | int | None) -> str:
    if value is None:
        return "–"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.0f} %"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
