"""Engine, connections and transactions; one code path for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from storage.migrations import migrate

SQLITE_BUSY_TIMEOUT_MS = 10_000
WRITE_OPTION = "incident_bot_write"


# What a lost or unreachable database raises, whatever the driver: callers that can answer
# without it ("cannot reach its database") catch these, and nothing else.
DATABASE_ERRORS: tuple[type[Exception], ...] = (OperationalError, DBAPIError, OSError, sqlite3.Error)


class BadDatabaseUrl(ValueError):
    """DATABASE_URL is not a URL SQLAlchemy can read."""


def describe_url(url: str) -> tuple[str | None, str]:
    """(the SQLite file it names, if any; the URL with any password hidden)."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - SQLAlchemy raises several types for a malformed URL
        raise BadDatabaseUrl(url) from None
    path = parsed.database if parsed.get_backend_name() == "sqlite" else None
    return (path if path not in (None, "", ":memory:") else None), parsed.render_as_string(hide_password=True)


class DatabaseUnavailable(Exception):
    """The database cannot be reached or opened; the message is one line for operators."""


class Database:
    """Owns the engine. Writes go one at a time per process (SQLite has one writer anyway) and
    take the write lock up front (BEGIN IMMEDIATE), so two processes wait on each other's
    busy timeout instead of failing on a lock upgrade."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self.engine: AsyncEngine = self._create_engine(url)
        # Same pool; the option tells the "begin" hook that this transaction will write.
        self._writer: AsyncEngine = self.engine.execution_options(**{WRITE_OPTION: True})
        self._write_lock = asyncio.Lock()

    def _create_engine(self, url: str) -> AsyncEngine:
        if not self.is_sqlite:
            return create_async_engine(url, pool_pre_ping=True, pool_size=10)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        return engine

    @property
    def sqlite_path(self) -> str | None:
        """The file of a SQLite database (None for PostgreSQL or an in-memory one)."""
        path = make_url(self.url).database if self.is_sqlite else None
        return path if path and path != ":memory:" else None

    @property
    def write_turn(self) -> asyncio.Lock:
        """Held by every write in this process; one writer at a time, as SQLite allows."""
        return self._write_lock

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages people read."""
        return make_url(self.url).render_as_string(hide_password=True)

    async def open_existing(self) -> None:
        """Open for reading only: no migrations, and a missing SQLite file is not created."""
        path = make_url(self.url).database
        if self.is_sqlite and path not in (None, "", ":memory:") and not await asyncio.to_thread(os.path.exists, path):
            raise DatabaseUnavailable(f"no database at {self.safe_url}: check DATABASE_URL")
        if not await self.healthy():
            raise DatabaseUnavailable(f"cannot open {self.safe_url}: check DATABASE_URL")

    async def start(self) -> None:
        """Open the database and apply pending migrations."""
        try:
            async with self.transaction() as conn:
                await migrate(conn)
        except (OperationalError, DBAPIError, OSError) as exc:
            raise DatabaseUnavailable(f"cannot open DATABASE_URL: {_first_line(exc)}") from None

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed on success, rolled back on error."""
        async with self._write_lock, self._writer.begin() as conn:
            yield conn

    async def writer_connection(self) -> AsyncConnection:
        """A connection kept by one busy writer, which spares it a pool checkout per commit."""
        return await self._writer.connect()

    @asynccontextmanager
    async def transaction_on(self, conn: AsyncConnection) -> AsyncIterator[AsyncConnection]:
        """A write transaction on a connection the caller keeps (same lock as `transaction`)."""
        async with self._write_lock, conn.begin():
            yield conn

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """Reads. On SQLite each statement is its own snapshot and takes no write lock."""
        async with self.engine.connect() as conn:
            yield conn

    async def healthy(self) -> bool:
        try:
            async with self.reading() as conn:
                await conn.execute(text("SELECT 1"))
        except DATABASE_ERRORS:
            return False
        return True


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level so that SQLAlchemy's "begin" hook decides how a
    # transaction starts (the pysqlite recipe for BEGIN IMMEDIATE).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_immediate(conn: Any) -> None:
    # Writers take the lock up front; readers start no transaction at all (autocommit), so a
    # read never holds or waits for SQLite's write lock.
    if conn.get_execution_options().get(WRITE_OPTION):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", exc) or exc).splitlines()[0]
