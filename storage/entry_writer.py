"""Group commit for timeline entries, the bot's hot path.

Messages arrive concurrently and each must be committed before Slack gets its ack. One writer
task takes whatever has queued up and stores it in one transaction (one multi-row INSERT, and
an UPDATE of an incident's last activity at most once a minute), then wakes every caller.
Under load this turns N commits into one; alone, a message waits only for its own commit."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.models import TimelineEntry
from storage.database import SQLITE_BUSY_TIMEOUT_MS, Database
from storage.schema import incidents, timeline_entries
from storage.sqlite_batches import SqliteBatches, row_of

log = logging.getLogger(__name__)
# 18 bound values a row: 100 rows stay far below SQLite's limit on variables per statement.
MAX_BATCH = 100
TOUCH_EVERY = timedelta(minutes=1)


@dataclass
class _Item:
    team_id: str
    entry: TimelineEntry
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
        self._conn: AsyncConnection | None = None
        # When each incident's last_activity_at was last moved: it feeds the 24-hour quiet nudge,
        # so moving it more often than once a minute buys nothing but a statement per batch.
        self._touched: dict[int, datetime] = {}
        path = db.sqlite_path
        self._sqlite = SqliteBatches(path, SQLITE_BUSY_TIMEOUT_MS) if path else None

    async def record(self, team_id: str, entry: TimelineEntry, at: datetime) -> bool:
        """Stores the entry once per (team, channel, ts); True when it is new. Returns after commit.
        The key alone makes retries and duplicates harmless, so new messages need no event-id
        bookkeeping (edits and deletions, which are not idempotent, keep it: see Store)."""
        item = _Item(team_id, entry, at)
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
        await self._drop_connection()
        if self._sqlite is not None:
            await self._sqlite.close()

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
        if self._sqlite is not None:
            await self._sqlite.reset()

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # One turn of the loop lets requests that are already being parsed join this
            # commit; alone, a message waits one loop iteration (microseconds) for it.
            await asyncio.sleep(0)
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write_batch(batch)

    async def _write_batch(self, batch: list[_Item]) -> None:
        try:
            results = await self._store(batch)
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller, never swallowed
            await self._drop_connection()  # it may be broken; the next batch opens a fresh one
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
        if self._sqlite is not None:
            rows = [row_of(entry_values(i.team_id, i.entry, i.at)) for i in batch]
            async with self.db.write_turn:  # this process's other writers wait their turn, as in transaction()
                return await self._sqlite.write(rows, self._touches(batch))
        if self._conn is None:
            self._conn = await self.db.writer_connection()
        async with self.db.transaction_on(self._conn) as conn:
            inserted = await self._insert_entries(conn, batch)
            await self._touch_incidents(conn, batch)
        return _first_of_each(batch, inserted)

    async def _insert_entries(self, conn: AsyncConnection, items: list[_Item]) -> set[tuple[str, str, str]]:
        if not items:
            return set()
        rows = [entry_values(i.team_id, i.entry, i.at) for i in items]
        result = await conn.execute(_insert_entries(conn), rows)
        return {(r.team_id, r.channel_id, r.ts) for r in result}

    def _touches(self, batch: list[_Item]) -> list[tuple[int, datetime]]:
        """The incidents whose last activity this batch moves (at most once a minute each)."""
        latest: dict[int, datetime] = {}
        for item in batch:
            latest[item.entry.incident_id] = max(item.at, latest.get(item.entry.incident_id, item.at))
        due = []
        for incident_id, at in latest.items():
            before = self._touched.get(incident_id)
            if before is not None and timedelta(0) <= at - before < TOUCH_EVERY:
                continue
            self._touched[incident_id] = at
            due.append((incident_id, at))
        return due

    async def _touch_incidents(self, conn: AsyncConnection, batch: list[_Item]) -> None:
        for incident_id, at in self._touches(batch):
            await conn.execute(
                update(incidents)
                .where(incidents.c.id == incident_id, incidents.c.last_activity_at < at)
                .values(last_activity_at=at)
            )


# Built once per dialect and run with a list of rows: SQLAlchemy compiles each a single time and
# sends the rows as multi-row INSERTs ("insertmanyvalues"), returning the rows that went in.
@functools.cache
def _insert_entries_statement(dialect_name: str) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    cols = timeline_entries.c
    return dialect.insert(timeline_entries).on_conflict_do_nothing().returning(cols.team_id, cols.channel_id, cols.ts)


def _insert_entries(conn: AsyncConnection) -> Any:
    return _insert_entries_statement(conn.dialect.name)


def _first_of_each(batch: list[_Item], inserted: set[tuple[str, str, str]]) -> list[bool]:
    """An entry is new for the first caller that carried it; a twin in the same batch is not."""
    results, taken = [], set()
    for item in batch:
        is_new = item.key in inserted and item.key not in taken
        if is_new:
            taken.add(item.key)
        results.append(is_new)
    return results
