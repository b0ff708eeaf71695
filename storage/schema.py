"""Tables (SQLAlchemy Core). Every row carries the Slack team id; times are timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite keeps no offset, so reads get UTC attached again."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: storage takes timezone-aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return, unused-ignore]
        return value.astimezone(UTC)  # type: ignore[no-any-return, unused-ignore]


metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

counters = Table(
    "counters",
    metadata,
    Column("team_id", String(32), primary_key=True),
    Column("name", String(32), primary_key=True),
    Column("value", Integer, nullable=False),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team_id", String(32), nullable=False),
    Column("number", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("severity", String(8), nullable=False),
    Column("status", String(20), nullable=False),
    Column("state", String(16), nullable=False),  # opening | open | closed
    Column("is_private", Boolean, nullable=False, default=False),
    Column("channel_id", String(32)),
    Column("channel_name", String(80)),
    Column("origin_channel_id", String(32)),
    Column("announcement_ts", String(32)),
    Column("summary_ts", String(32)),
    Column("commander_id", String(32), nullable=False),
    Column("declared_by", String(32), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
    Column("last_activity_at", UTCDateTime, nullable=False),
    Column("nudged_at", UTCDateTime),
    Column("opening_claimed_at", UTCDateTime),  # migration 3: one process at a time builds the channel
    # migration 5: incidents declared from alerts
    Column("alert_source", String(16)),
    Column("alert_key", Text),  # the dedup key: one open incident per key
    Column("alert_state", Text),  # JSON: alert fingerprint -> firing|resolved, as last notified
    Column("impact_started_at", UTCDateTime),  # what the alert says (startsAt); pre-fills the close form
    Column("impact_ended_at", UTCDateTime),  # all resolved (endsAt)
    Column("previous_incident_id", Integer),  # the closed incident of the same key, when it fires again
    # migration 6: the lifecycle after the impact (resolve), roles, stakeholder cadence
    Column("resolved_at", UTCDateTime),
    Column("status_text", Text),  # the last status update's words, for the status form
    Column("status_updated_at", UTCDateTime),  # the last status update, severity change or resolve
    Column("cadence_nudged_at", UTCDateTime),
    Column("postmortem_nudged_on", Date),
    Column("roles", Text),  # JSON: role -> user id (comms, ops, scribe; the commander has its column)
    Index("ix_incidents_alert_key", "team_id", "alert_key"),
    UniqueConstraint("team_id", "number", name="uq_incidents_number"),
    UniqueConstraint("team_id", "channel_id", name="uq_incidents_channel"),
)

postmortems = Table(
    "postmortems",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("team_id", String(32), nullable=False),
    Column("impact", Text, nullable=False),
    Column("impact_start", UTCDateTime, nullable=False),
    Column("impact_end", UTCDateTime, nullable=False),
    Column("root_cause", Text, nullable=False),
    Column("resolution", Text, nullable=False),
    Column("improvements", Text, nullable=False, default=""),
    Column("submitted_by", String(32), nullable=False),
    Column("submitted_at", UTCDateTime, nullable=False),
    Column("file_id", String(64)),
    Column("published_at", UTCDateTime),
)

timeline_entries = Table(
    "timeline_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team_id", String(32), nullable=False),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("channel_id", String(32), nullable=False),
    Column("ts", String(40), nullable=False),
    Column("thread_ts", String(40)),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("kind", String(16), nullable=False),  # message | bot_message | note | system
    Column("author_id", String(32)),
    Column("author_name", String(200)),
    Column("text", Text, nullable=False, default=""),
    Column("files", Text, nullable=False, default="[]"),  # JSON list of {name, url}
    Column("is_key", Boolean, nullable=False, default=False),
    Column("is_broadcast", Boolean, nullable=False, default=False),
    Column("history", Text, nullable=False, default="[]"),  # JSON list of earlier texts
    Column("edited_at", UTCDateTime),
    Column("deleted_at", UTCDateTime),
    Column("recorded_at", UTCDateTime, nullable=False),
    UniqueConstraint("team_id", "channel_id", "ts", name="uq_timeline_message"),
    Index("ix_timeline_incident_time", "incident_id", "occurred_at"),
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("team_id", String(32), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("received_at", UTCDateTime, nullable=False),
    Index("ix_processed_events_received", "received_at"),  # migration 2
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team_id", String(32), nullable=False),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("description", Text, nullable=False),
    Column("owner_id", String(32), nullable=False),
    Column("due_date", Date),
    Column("status", String(8), nullable=False),  # open | done
    Column("created_by", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("done_at", UTCDateTime),
    Column("done_by", String(32)),
    Column("next_remind_on", Date),  # local day of the next reminder; NULL once done
    Column("undeliverable_at", UTCDateTime),  # owner cannot be DMed; reported once
    Index("ix_tasks_due", "status", "next_remind_on"),
    Index("ix_tasks_owner", "team_id", "owner_id", "status"),
    Index("ix_tasks_incident", "incident_id", "status"),
)

reminders = Table(
    "reminders",
    metadata,
    Column("task_id", Integer, ForeignKey("tasks.id"), primary_key=True),
    Column("remind_on", Date, primary_key=True),
    Column("team_id", String(32), nullable=False),
    Column("state", String(12), nullable=False),  # claimed | sent | failed
    Column("claim_token", String(64), nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("channel_id", String(32)),
    Column("message_ts", String(40)),
    Column("sent_at", UTCDateTime),
    Column("error", String(100)),
)

digests = Table(
    "digests",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("week", String(10), primary_key=True),  # ISO year-week, e.g. 2026-W48
    Column("team_id", String(32), nullable=False),
    Column("state", String(12), nullable=False),
    Column("claim_token", String(64), nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
)

users = Table(
    "users",
    metadata,
    Column("team_id", String(32), primary_key=True),
    Column("user_id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("fetched_at", UTCDateTime, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # migration 4
    Column("team_id", String(32), nullable=False),
    Column("lane", String(64), nullable=False),  # steps of a lane run in id order
    Column("key", String(200), nullable=False),  # idempotency key, stamped on what the step posts
    Column("kind", String(32), nullable=False),
    Column("payload", Text, nullable=False),  # JSON
    Column("state", String(12), nullable=False),  # pending | done | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(64)),
    Column("claimed_until", UTCDateTime),
    Column("progress", Text, nullable=False, default="{}"),  # JSON: what a multi-call step has done
    Column("last_error", String(200)),
    Column("actor_id", String(32)),
    Column("actor_channel", String(32)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("done_at", UTCDateTime),
    UniqueConstraint("key", name="uq_outbox_key"),
    Index("ix_outbox_due", "state", "next_attempt_at"),
    Index("ix_outbox_lane", "lane", "state", "id"),
)

workspace = Table(
    "workspace",
    metadata,
    Column("team_id", String(32), primary_key=True),
    Column("url", String(300), nullable=False),
    Column("bot_user_id", String(32), nullable=False),
)
