"""`incident-bot report`: across incidents, from the database alone (read-only, like export)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.domain import rules
from bot.domain.report import IncidentRow, incident_row, totals
from bot.ui.report import render
from storage import Database, Store


async def build_report(settings: Settings, since: date | None, until: date | None, fmt: str) -> str:
    """The report, or a line starting with 'error: ' saying why there is none. The period is in
    local days (TIMEZONE), both ends included."""
    tz = settings.tz
    db = Database(settings.database_url)
    await db.open_existing()
    try:
        found = await Store(db).reports.declared_between(_start(since, tz), _start(until, tz, next_day=True))
    finally:
        await db.close()
    if not found:
        return f"error: no incident was declared {describe(since, until)}"
    today = rules.local_day(datetime.now(tz), tz)
    rows = [incident_row(incident, form, tasks, today) for incident, form, tasks in found]
    return render(rows, totals(rows, lambda r: _month(r, tz)), fmt)


def _start(day: date | None, tz: ZoneInfo, next_day: bool = False) -> datetime | None:
    if day is None:
        return None
    return datetime.combine(day + timedelta(days=1) if next_day else day, time(0), tzinfo=tz)


def _month(row: IncidentRow, tz: ZoneInfo) -> str:
    return row.declared_at.astimezone(tz).strftime("%Y-%m")


def describe(since: date | None, until: date | None) -> str:
    if since and until:
        return f"from {since} to {until}"
    if since:
        return f"since {since}"
    if until:
        return f"until {until}"
    return "yet"
