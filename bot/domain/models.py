"""Pydantic models shared by the use cases, the storage layer and the renderers."""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Severity(StrEnum):
    SEV1 = "sev1"
    SEV2 = "sev2"
    SEV3 = "sev3"
    SEV4 = "sev4"


class Status(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"  # impact over; the channel records on until the postmortem is written
    CLOSED = "closed"


class State(StrEnum):
    OPENING = "opening"  # row made, channel not yet ready: a retry of start finishes it
    OPEN = "open"
    CLOSED = "closed"


class EntryKind(StrEnum):
    MESSAGE = "message"  # a person's message
    BOT_MESSAGE = "bot_message"  # another bot or integration (alerts)
    NOTE = "note"  # /incident note
    SYSTEM = "system"  # what this bot posted: start, changes, close, tasks


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Incident(Model):
    id: int
    team_id: str
    number: int
    title: str
    description: str = ""
    severity: Severity
    status: Status
    state: State
    is_private: bool = False
    channel_id: str | None = None
    channel_name: str | None = None
    origin_channel_id: str | None = None
    announcement_ts: str | None = None
    summary_ts: str | None = None
    commander_id: str
    declared_by: str
    started_at: datetime
    closed_at: datetime | None = None
    last_activity_at: datetime
    nudged_at: datetime | None = None
    opening_claimed_at: datetime | None = None
    alert_source: str | None = None
    alert_key: str | None = None
    impact_started_at: datetime | None = None  # from the alert; the close form starts from it
    impact_ended_at: datetime | None = None
    previous_incident_id: int | None = None
    resolved_at: datetime | None = None
    status_text: str | None = None
    status_updated_at: datetime | None = None
    cadence_nudged_at: datetime | None = None
    postmortem_nudged_on: date | None = None
    roles: dict[str, str] = Field(default_factory=dict)  # role -> user id, besides the commander

    @field_validator("roles", mode="before")
    @classmethod
    def _roles_from_storage(cls, value: object) -> object:
        # Storage keeps them as JSON text (None for incidents from before roles).
        if value is None:
            return {}
        return json.loads(value) if isinstance(value, str) else value

    @property
    def ref(self) -> str:
        return f"INC-{self.number}"


class FileRef(Model):
    name: str
    url: str = ""


class TimelineEntry(Model):
    id: int = 0
    incident_id: int
    channel_id: str
    ts: str
    thread_ts: str | None = None
    occurred_at: datetime
    kind: EntryKind
    author_id: str | None = None
    author_name: str | None = None
    text: str = ""
    files: list[FileRef] = Field(default_factory=list)
    is_key: bool = False
    is_broadcast: bool = False
    history: list[str] = Field(default_factory=list)
    edited_at: datetime | None = None
    deleted_at: datetime | None = None

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts and not self.is_broadcast


class CloseForm(Model):
    """What only people know, asked for at close."""

    impact: str
    impact_start: datetime
    impact_end: datetime
    root_cause: str
    resolution: str
    improvements: list[str] = Field(default_factory=list)
    submitted_by: str
    submitted_at: datetime


class NewTask(Model):
    description: str
    owner_id: str
    due_date: date | None = None


class Task(Model):
    id: int
    team_id: str
    incident_id: int
    description: str
    owner_id: str
    due_date: date | None = None
    status: TaskStatus
    created_by: str
    created_at: datetime
    done_at: datetime | None = None
    done_by: str | None = None
    next_remind_on: date | None = None


class PostmortemReport(Model):
    """Everything the postmortem renderer needs, compiled from the database."""

    incident: Incident
    form: CloseForm
    entries: list[TimelineEntry]
    tasks: list[Task]
    names: dict[str, str]  # Slack user/bot id -> display name
    timezone: str
    workspace_url: str = ""
