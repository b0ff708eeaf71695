"""Across incidents: one row per incident, and totals by severity and by month. Pure.

Time to detect = declared − impact start; time to resolve = impact end − impact start; time to
close = closed − declared. All from aware UTC datetimes, in whole minutes (None when unknown)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.domain.models import CloseForm, Incident, Task, TaskStatus


@dataclass(frozen=True)
class IncidentRow:
    ref: str
    title: str
    severity: str
    private: bool
    declared_at: datetime
    impact_start: datetime | None
    impact_end: datetime | None
    closed_at: datetime | None
    time_to_detect_min: int | None
    time_to_resolve_min: int | None
    time_to_close_min: int | None
    tasks_open: int
    tasks_done: int
    tasks_overdue: int


def incident_row(incident: Incident, form: CloseForm | None, tasks: Sequence[Task], today: date) -> IncidentRow:
    start = form.impact_start if form else incident.impact_started_at
    end = form.impact_end if form else incident.impact_ended_at
    open_tasks = [t for t in tasks if t.status is TaskStatus.OPEN]
    return IncidentRow(
        ref=incident.ref,
        title=incident.title,
        severity=incident.severity.value,
        private=incident.is_private,
        declared_at=incident.started_at,
        impact_start=start,
        impact_end=end,
        closed_at=incident.closed_at,
        time_to_detect_min=_minutes(start, incident.started_at),
        time_to_resolve_min=_minutes(start, end),
        time_to_close_min=_minutes(incident.started_at, incident.closed_at),
        tasks_open=len(open_tasks),
        tasks_done=len(tasks) - len(open_tasks),
        tasks_overdue=sum(1 for t in open_tasks if t.due_date is not None and t.due_date < today),
    )


def _minutes(since: datetime | None, until: datetime | None) -> int | None:
    if since is None or until is None:
        return None
    # A team that declared before the impact began detected it at once, not in negative time.
    return max(0, int((until - since).total_seconds() // 60))


def totals(rows: Sequence[IncidentRow], month_of: Any) -> dict[str, Any]:
    """Counts, medians and 90th percentiles by severity and by month (`month_of(row)` -> "YYYY-MM")."""
    return {
        "count": len(rows),
        "by_severity": {sev: group_figures(group) for sev, group in _grouped(rows, lambda r: r.severity)},
        "by_month": {month: group_figures(group) for month, group in _grouped(rows, month_of)},
        "tasks_completion_rate": completion_rate(rows),
    }


def group_figures(rows: Sequence[IncidentRow]) -> dict[str, Any]:
    detect = [r.time_to_detect_min for r in rows if r.time_to_detect_min is not None]
    resolve = [r.time_to_resolve_min for r in rows if r.time_to_resolve_min is not None]
    return {
        "count": len(rows),
        "time_to_detect_median_min": median(detect),
        "time_to_detect_p90_min": p90(detect),
        "time_to_resolve_median_min": median(resolve),
        "time_to_resolve_p90_min": p90(resolve),
        "tasks_completion_rate": completion_rate(rows),
    }


def median(values: Sequence[int]) -> float | None:
    return float(statistics.median(values)) if values else None


def p90(values: Sequence[int]) -> int | None:
    """The nearest-rank 90th percentile: a value that occurred, not an interpolation."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def completion_rate(rows: Iterable[IncidentRow]) -> float | None:
    done = total = 0
    for row in rows:
        done += row.tasks_done
        total += row.tasks_done + row.tasks_open
    return round(done / total, 3) if total else None


def _grouped(rows: Sequence[IncidentRow], key: Any) -> list[tuple[str, list[IncidentRow]]]:
    groups: dict[str, list[IncidentRow]] = {}
    for row in rows:
        groups.setdefault(str(key(row)), []).append(row)
    return sorted(groups.items())
