"""The timeline writer's batches on SQLite, in one call into one thread.

Through SQLAlchemy and aiosqlite a batch costs three hops into the driver's thread (BEGIN
IMMEDIATE, the INSERT, the COMMIT) plus binding every value through SQLAlchemy's types; the
profile of bench/ingest.py showed that to be most of an event's CPU. Here the writer keeps its
own sqlite3 connection in its own thread and hands it the whole batch: the same statements, the
same transaction, the same (team, channel, ts) key, committed before any caller is answered."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from storage.schema import timeline_entries

# The text SQLAlchemy's SQLite DateTime stores (naive UTC), so rows read back the same.
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"
COLUMNS = [c.name for c in timeline_entries.columns if c.name != "id"]
INSERT = (
    f"INSERT INTO timeline_entries ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "
    "ON CONFLICT DO NOTHING"
)
TOUCH = "UPDATE incidents SET last_activity_at = ? WHERE id = ? AND last_activity_at < ?"


def sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: storage takes timezone-aware UTC only")
        return value.astimezone(UTC).strftime(SQLITE_DATETIME)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool):
        return int(value)
    return value


def row_of(values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sqlite_value(values.get(name)) for name in COLUMNS)


class SqliteBatches:
    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="timeline-writer")
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    async def write(self, rows: Sequence[tuple[Any, ...]], touches: Sequence[tuple[int, datetime]]) -> list[bool]:
        """Stores the rows (and moves the incidents' last activity) in one transaction; for each
        row, whether it was new."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._write, rows, touches)

    async def reset(self) -> None:
        """After a failure: the next batch opens a fresh connection."""
        if not self._closed:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._close)

    async def close(self) -> None:
        """Idempotent: the store may be closed by more than one owner on the way out."""
        await self.reset()
        self._closed = True
        self._thread.shutdown(wait=True)

    def _write(self, rows: Sequence[tuple[Any, ...]], touches: Sequence[tuple[int, datetime]]) -> list[bool]:
        conn = self._conn or self._open()
        try:
            conn.execute("BEGIN IMMEDIATE")
            new = [conn.execute(INSERT, row).rowcount == 1 for row in rows]
            for incident_id, at in touches:
                moment = sqlite_value(at)
                conn.execute(TOUCH, (moment, incident_id, moment))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return new

    def _open(self) -> sqlite3.Connection:
        # The same settings as the engine's connections (storage/database.py).
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                               check_same_thread=False)  # fmt: skip
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        self._conn = conn
        return conn

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()
