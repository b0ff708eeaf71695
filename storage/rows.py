"""Rows read back into domain models."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from bot.domain.models import (
    FileRef,
    Incident,
    Task,
    TimelineEntry,
)


def incident_of(row: RowMapping) -> Incident:
    return Incident.model_validate(dict(row))


def entry_of(row: RowMapping) -> TimelineEntry:
    data = dict(row)
    data["files"] = [FileRef(**f) for f in json.loads(data["files"] or "[]")]
    data["history"] = json.loads(data["history"] or "[]")
    data.pop("team_id", None)
    data.pop("recorded_at", None)
    return TimelineEntry.model_validate(data)


def task_of(row: RowMapping) -> Task:
    return Task.model_validate({k: v for k, v in dict(row).items() if k != "undeliverable_at"})


def edit_values(current: RowMapping, edit: TimelineEntry) -> dict[str, Any]:
    if current["text"] == edit.text:
        return {}  # Slack also sends message_changed when only replies or unfurls changed
    history = json.loads(current["history"])
    stored_at = current["edited_at"]
    if stored_at is not None and edit.edited_at is not None and as_utc(stored_at) > edit.edited_at:
        return {"history": json.dumps(history + [edit.text])}  # an older edit, arriving late
    return {"text": edit.text, "history": json.dumps(history + [current["text"]]), "edited_at": edit.edited_at}


def as_utc(moment: datetime) -> datetime:
    """Rows read through a bare query carry SQLite's naive UTC; compare them as aware."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
