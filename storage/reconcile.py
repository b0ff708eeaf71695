"""What reconciling a channel against Slack's history needs to know of the timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select

from bot.domain.models import Incident, State
from storage.database import Database
from storage.schema import incidents, timeline_entries


@dataclass(frozen=True)
class HeldMessage:
    """A message as the timeline holds it: enough to tell whether Slack's copy says more."""

    text: str
    thread_ts: str | None
    deleted: bool


class ReconcileRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def incidents_to_reconcile(self, team_id: str, closed_after: datetime) -> list[Incident]:
        """Open incidents with a channel, and those closed since `closed_after` (late copies)."""
        recording = incidents.c.state.in_([State.OPEN, State.OPENING])
        recently_closed = and_(incidents.c.state == State.CLOSED, incidents.c.closed_at > closed_after)
        query = (
            select(incidents)
            .where(incidents.c.team_id == team_id, incidents.c.channel_id.is_not(None))
            .where(or_(recording, recently_closed))
            .order_by(incidents.c.number)
        )
        async with self.db.reading() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [Incident.model_validate(dict(r)) for r in rows]

    async def held_messages(self, team_id: str, channel_id: str) -> dict[str, HeldMessage]:
        """ts → what the timeline holds for every message of the channel."""
        query = select(
            timeline_entries.c.ts,
            timeline_entries.c.text,
            timeline_entries.c.thread_ts,
            timeline_entries.c.deleted_at,
        ).where(timeline_entries.c.team_id == team_id, timeline_entries.c.channel_id == channel_id)
        async with self.db.reading() as conn:
            rows = (await conn.execute(query)).all()
        return {ts: HeldMessage(text, thread_ts, deleted_at is not None) for ts, text, thread_ts, deleted_at in rows}
