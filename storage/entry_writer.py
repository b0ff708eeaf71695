"""Group commit for timeline entries, the bot's hot path.

Messages arrive concurrently and each must be committed before Slack gets its ack. One writer
task takes whatever has queued up and stores it in one transaction (three statements for the
whole batch), then wakes every caller. Under load this turns N commits into one; alone, a
message waits for nothing but its own commit."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.models import TimelineEntry
from storage.database import Database
from storage.schema import incidents, processed_events, timeline_entries

log = logging.getLogger(__name__)
# 18 bound values a row: 100 rows stay far below SQLite's limit on variables per statement.
MAX_BATCH = 100


@dataclass
class _Item:
    team_id: str
    entry: TimelineEntry
    event_id: str | None
    at: datetime
    done: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def key(self) -> tuple[str, str, str]:
        return self.team_id, self.entry.channel_id, self.entry.ts


def entry_values(team_id: str, entry: TimelineEntry, recorded_at: datetime) -> dict[str, Any]:
    values = entry.model_dump(exclude={"id"})
    values["files"] = json.dumps([f.model_dump() for f in entry.files])
    values["history"] = json.dumps(entry.history)
    values["team_id"] = team_id
    values["recorded_at"] = recorded_at
    return values


class EntryWriter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def record(self, team_id: str, entry: TimelineEntry, event_id: str | None, at: datetime) -> bool:
        """Stores the entry once per (team, channel, ts); True when it is new. Returns after commit."""
        item = _Item(team_id, entry, event_id, at)
        self._ensure_running()
        await self._queue.put(item)
        return await item.done

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="timeline-entry-writer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write_batch(batch)

    async def _write_batch(self, batch: list[_Item]) -> None:
        try:
            results = await self._store(batch)
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller, never swallowed
            if len(batch) > 1:
                # One bad row must not fail its neighbours: retry them one by one.
                for item in batch:
                    await self._write_batch([item])
                return
            batch[0].done.set_exception(exc)
            return
        for item, is_new in zip(batch, results, strict=True):
            if not item.done.done():
                item.done.set_result(is_new)

    async def _store(self, batch: list[_Item]) -> list[bool]:
        async with self.db.transaction() as conn:
            fresh = await self._unseen_events(conn, batch)
            inserted = await self._insert_entries(conn, [item for item, ok in zip(batch, fresh, strict=True) if ok])
            await self._touch_incidents(conn, batch)
        return _first_of_each(batch, fresh, inserted)

    async def _unseen_events(self, conn: AsyncConnection, batch: list[_Item]) -> list[bool]:
        """Claims the batch's event ids; an event seen before (a retry) adds nothing."""
        with_ids = [item for item in batch if item.event_id]
        claimed: set[tuple[str, str]] = set()
        if with_ids:
            rows = [{"team_id": i.team_id, "event_id": i.event_id, "received_at": i.at} for i in with_ids]
            stmt = _dialect(conn).insert(processed_events).values(rows).on_conflict_do_nothing()
            result = await conn.execute(stmt.returning(processed_events.c.team_id, processed_events.c.event_id))
            claimed = {(r.team_id, r.event_id) for r in result}
        return [not item.event_id or (item.team_id, str(item.event_id)) in claimed for item in batch]

    async def _insert_entries(self, conn: AsyncConnection, items: list[_Item]) -> set[tuple[str, str, str]]:
        if not items:
            return set()
        rows = [entry_values(i.team_id, i.entry, i.at) for i in items]
        stmt = _dialect(conn).insert(timeline_entries).values(rows).on_conflict_do_nothing()
        cols = timeline_entries.c
        result = await conn.execute(stmt.returning(cols.team_id, cols.channel_id, cols.ts))
        return {(r.team_id, r.channel_id, r.ts) for r in result}

    async def _touch_incidents(self, conn: AsyncConnection, batch: list[_Item]) -> None:
        latest: dict[int, datetime] = {}
        for item in batch:
            latest[item.entry.incident_id] = max(item.at, latest.get(item.entry.incident_id, item.at))
        for incident_id, at in latest.items():
            await conn.execute(
                update(incidents)
                .where(incidents.c.id == incident_id, incidents.c.last_activity_at < at)
                .values(last_activity_at=at)
            )


def _dialect(conn: AsyncConnection) -> Any:
    return postgresql if conn.dialect.name == "postgresql" else sqlite


def _first_of_each(batch: list[_Item], fresh: list[bool], inserted: set[tuple[str, str, str]]) -> list[bool]:
    """An entry is new for the first caller that carried it; a twin in the same batch is not."""
    results, taken = [], set()
    for item, ok in zip(batch, fresh, strict=True):
        is_new = ok and item.key in inserted and item.key not in taken
        if is_new:
            taken.add(item.key)
        results.append(is_new)
    return results
