"""`incident-bot import`: one channel of a Slack export becomes an incident with its timeline,
closed with the answers of `--close FILE`, or resolved and awaiting `/incident close`. Nothing is
sent to Slack: the channel is history. A repeated import changes nothing and names the incident."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from bot import slack_messages
from bot.config import Settings
from bot.domain import rules
from bot.domain.models import CloseForm, Incident, NewTask, Severity, Status, TimelineEntry
from bot.domain.rules import ts_to_datetime
from bot.slack_export import ExportChannel, ExportError, SlackExport
from storage import Database, Store

IMPORTED_TEAM = "TIMPORTED"  # a database no workspace has used yet
KEY_EVENT_REACTION = "pushpin"
CHUNK = 500
CLOSE_FIELDS = {"impact", "impact_start", "impact_end", "root_cause", "resolution"}


class ImportProblem(ValueError):
    """Bad input: one line for the operator, exit code 2."""


async def import_channel(
    settings: Settings,
    export_path: Path,
    channel_name: str,
    since: date | None,
    until: date | None,
    close_file: Path | None,
    title: str | None,
    severity: Severity,
) -> tuple[str, bool]:
    """(INC-<n>, whether it is new)."""
    export = _open(export_path)
    channel = _channel(export, channel_name)
    days = export.day_files(channel, since, until)
    first, last = _check_days(export, days)  # every file read once before anything is written
    if first is None or last is None:
        raise ImportProblem(f"#{channel.name} has no messages in the period")
    answers = _close_answers(close_file) if close_file else None
    db = Database(settings.database_url)
    await db.start()
    store = Store(db)
    try:
        team = await store.sole_team() or IMPORTED_TEAM
        existing = await store.incident_by_channel(team, channel.id)
        if existing is not None:
            return existing.ref, False
        names = export.user_names()
        incident = await _create(store, team, channel, first, title, severity)
        for n, day in enumerate(days, 1):  # a day file at a time: memory stays flat for any size
            recorded = await _record(store, team, incident, channel, export.day(day))
            print(f"import: {day} ({n}/{len(days)}): {recorded} entries", file=sys.stderr)
        await _save_names(store, team, names)
        await _finish(store, incident, last, answers, export.user_handles(), settings)
        return incident.ref, True
    finally:
        await store.close()
        await db.close()


def _open(path: Path) -> SlackExport:
    try:
        return SlackExport(path)
    except ExportError as exc:
        raise ImportProblem(str(exc)) from None
    except OSError as exc:
        raise ImportProblem(f"cannot read {path}: {exc.strerror or exc}") from None


def _channel(export: SlackExport, name: str) -> ExportChannel:
    try:
        return export.channel(name)
    except ExportError as exc:
        raise ImportProblem(str(exc)) from None


def _check_days(export: SlackExport, days: list[str]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Reads every day file once to refuse a bad one before anything is stored; returns the first
    and the last message of the period."""
    first = last = None
    for day in days:
        try:
            messages = export.day(day)
        except ExportError as exc:
            raise ImportProblem(str(exc)) from None
        if messages:
            first = first or messages[0]
            last = messages[-1]
    return first, last


async def _create(store: Store, team: str, channel: ExportChannel, first: dict[str, Any],
                  title: str | None, severity: Severity) -> Incident:  # fmt: skip
    declared = ts_to_datetime(str(first["ts"]))
    who = str(first.get("user") or "U0IMPORT")
    incident = await store.create_incident(team, {
        "title": (title or channel.purpose or channel.name)[:200], "description": "Imported from a Slack export.",
        "severity": severity, "status": Status.INVESTIGATING, "is_private": channel.is_private,
        "commander_id": who, "declared_by": who, "started_at": declared, "last_activity_at": declared,
    })  # fmt: skip
    return await store.update_incident(incident.id, state="open", channel_id=channel.id, channel_name=channel.name)


async def _record(store: Store, team: str, incident: Incident, channel: ExportChannel,
                  messages: list[dict[str, Any]]) -> int:  # fmt: skip
    """What people and integrations said, each once at its own time; joins, leaves and topic
    changes left out; a 📌 reaction marks a key event. Returns how many entries were new."""
    now = datetime.now(UTC)
    entries = [_entry(m, channel.id, incident.id) for m in messages if slack_messages.is_recorded_message(m)]
    new = 0
    for start in range(0, len(entries), CHUNK):
        stored = await asyncio.gather(*(store.record_entry(team, e, None, now) for e in entries[start : start + CHUNK]))
        new += sum(stored)
    return new


def _entry(message: dict[str, Any], channel_id: str, incident_id: int) -> TimelineEntry:
    entry = slack_messages.entry_from_message(message, channel_id, incident_id)
    pinned = any(r.get("name") == KEY_EVENT_REACTION for r in message.get("reactions") or [] if isinstance(r, dict))
    return entry.model_copy(update={"is_key": pinned})


async def _save_names(store: Store, team: str, names: dict[str, str]) -> None:
    now = datetime.now(UTC)
    for user_id, name in names.items():
        await store.save_name(team, user_id, name, now)


async def _finish(store: Store, incident: Incident, last_message: dict[str, Any],
                  answers: dict[str, Any] | None, handles: dict[str, str], settings: Settings) -> None:  # fmt: skip
    last = ts_to_datetime(str(last_message["ts"]))
    if answers is None:
        await store.update_incident(incident.id, status=Status.RESOLVED, resolved_at=last, impact_ended_at=last)
        return
    form, tasks = _form(answers, incident, last, handles)
    today = rules.local_day(datetime.now(UTC), settings.tz)
    planned = [(t, rules.first_reminder_day(t.due_date, today)) for t in tasks]
    if await store.close_incident(incident, form, planned) is None:
        raise ImportProblem(f"{incident.ref} could not be closed")


def _close_answers(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ImportProblem(f"cannot read --close {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError):
        raise ImportProblem(f"--close {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}") from None
    if not isinstance(data, dict):
        raise ImportProblem(f"--close {path} must hold the close form's fields ({', '.join(sorted(CLOSE_FIELDS))})")
    missing = sorted(f for f in CLOSE_FIELDS - {"impact_start", "impact_end"} if not str(data.get(f) or "").strip())
    if missing:
        raise ImportProblem(f"--close {path} lacks {', '.join(missing)}")
    return data


def _form(data: dict[str, Any], incident: Incident, last: datetime,
          handles: dict[str, str]) -> tuple[CloseForm, list[NewTask]]:  # fmt: skip
    start = _moment(data.get("impact_start"), "impact_start") or incident.started_at
    end = _moment(data.get("impact_end"), "impact_end") or last
    if end < start:
        raise ImportProblem("--close: impact_end is before impact_start")
    improvements = data.get("improvements") or []
    if isinstance(improvements, str):
        improvements = [line for line in improvements.splitlines() if line.strip()]
    form = CloseForm(
        impact=str(data["impact"]).strip(), impact_start=start, impact_end=end,
        root_cause=str(data["root_cause"]).strip(), resolution=str(data["resolution"]).strip(),
        improvements=[str(i).strip() for i in improvements],
        submitted_by=incident.commander_id, submitted_at=max(last, end),
    )  # fmt: skip
    return form, [_task(t, handles) for t in data.get("tasks") or []]


def _task(data: Any, handles: dict[str, str]) -> NewTask:
    if not isinstance(data, dict) or not data.get("description") or not data.get("owner"):
        raise ImportProblem("--close: each task needs a description and an owner (a handle or a user id)")
    owner = str(data["owner"]).lstrip("@")
    owner_id = owner if owner in handles.values() else handles.get(owner.lower())
    if owner_id is None:
        raise ImportProblem(f"--close: task owner {data['owner']!r} is not a person of the export")
    due = data.get("due") or data.get("due_date")
    try:
        due_date = date.fromisoformat(str(due)) if due else None
    except ValueError:
        raise ImportProblem(f"--close: task due {due!r} is not YYYY-MM-DD") from None
    return NewTask(description=str(data["description"]).strip(), owner_id=owner_id, due_date=due_date)


def _moment(value: Any, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ImportProblem(f"--close: {field} {value!r} is not a time like 2026-03-04T10:15:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
