"""Timeline entries: new messages through the group-commit writer, edits and deletions once per
event id, key events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.models import (
    TimelineEntry,
)
from storage.entry_writer import EntryWriter, entry_values
from storage.repository import Repository
from storage.rows import edit_values, entry_of
from storage.schema import (
    incidents,
    timeline_entries,
)


class TimelineRepo(Repository):
    _entries: EntryWriter

    # ---- timeline --------------------------------------------------------------------------

    async def record_entry(self, team_id: str, entry: TimelineEntry, event_id: str | None, at: datetime) -> bool:
        """Stores a timeline entry once per (team, channel, ts); True when it is new. Concurrent
        calls are committed together (group commit); each returns after its commit."""
        del event_id  # the (team, channel, ts) key already absorbs retries; see EntryWriter.record
        return await self._entries.record(team_id, entry, at)

    async def close(self) -> None:
        await self._entries.close()

    async def record_edit(self, team_id: str, entry: TimelineEntry, event_id: str | None, at: datetime) -> bool:
        """Applies an edit: the newest text wins and the others join the history. Slack promises
        no order, so an edit may come before its message (stored as edited) or before an older
        edit (which then only joins the history)."""
        return await self._change_entry(team_id, entry, event_id, at, edit_values)

    async def record_deletion(self, team_id: str, entry: TimelineEntry, event_id: str | None, at: datetime) -> bool:
        """Keeps a tombstone: the row stays, marked deleted, so a late copy cannot revive it."""
        return await self._change_entry(team_id, entry, event_id, at, lambda _, e: {"deleted_at": e.deleted_at})

    async def _change_entry(
        self,
        team_id: str,
        entry: TimelineEntry,
        event_id: str | None,
        at: datetime,
        changes: Callable[[RowMapping, TimelineEntry], dict[str, Any]],
    ) -> bool:
        """Once per event id: updates the stored entry, or stores `entry` as it now stands when the
        change arrives before the message itself."""
        async with self.db.transaction() as conn:
            if not await self._claim_event(conn, team_id, event_id, at):
                return False
            current = await self._entry_row(conn, team_id, entry.channel_id, entry.ts)
            if current is None:
                await conn.execute(timeline_entries.insert().values(entry_values(team_id, entry, at)))
            elif values := changes(current, entry):
                await conn.execute(
                    timeline_entries.update().where(timeline_entries.c.id == current["id"]).values(**values)
                )
            await self._touch(conn, entry.incident_id, at)
        return True

    async def set_key_event(self, team_id: str, channel_id: str, ts: str, is_key: bool) -> bool:
        async with self.db.transaction() as conn:
            result = await conn.execute(
                timeline_entries.update()
                .where(
                    timeline_entries.c.team_id == team_id,
                    timeline_entries.c.channel_id == channel_id,
                    timeline_entries.c.ts == ts,
                )
                .values(is_key=is_key)
            )
        return bool(result.rowcount)

    async def _entry_row(self, conn: AsyncConnection, team_id: str, channel_id: str, ts: str) -> RowMapping | None:
        query = select(timeline_entries).where(
            timeline_entries.c.team_id == team_id,
            timeline_entries.c.channel_id == channel_id,
            timeline_entries.c.ts == ts,
        )
        return (await conn.execute(query)).mappings().first()

    async def _touch(self, conn: AsyncConnection, incident_id: int, at: datetime) -> None:
        await conn.execute(
            incidents.update()
            .where(incidents.c.id == incident_id, incidents.c.last_activity_at < at)
            .values(last_activity_at=at)
        )

    async def entries(self, incident_id: int) -> list[TimelineEntry]:
        query = (
            select(timeline_entries)
            .where(timeline_entries.c.incident_id == incident_id)
            .order_by(timeline_entries.c.occurred_at, timeline_entries.c.id)
        )
        async with self.db.reading() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [entry_of(r) for r in rows]
