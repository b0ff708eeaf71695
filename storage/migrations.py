"""Schema migrations, applied at start and recorded in `schema_migrations`.

Each migration is a version, a name and a function over a connection. Add new ones at the end;
never edit one that has shipped. Migration 1 creates the tables as `schema.py` defines them, so a
later change to a table is made by a new migration that alters it and is safe to run on a
database migration 1 has just created (IF NOT EXISTS and the like), not by editing `schema.py`
alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import schema

Migration = tuple[int, str, Callable[[AsyncConnection], Awaitable[None]]]


async def _initial_schema(conn: AsyncConnection) -> None:
    tables = [t for t in schema.metadata.sorted_tables if t is not schema.schema_migrations]
    await conn.run_sync(schema.metadata.create_all, tables=tables)


async def _index_event_receipt_time(conn: AsyncConnection) -> None:
    # Old event ids are pruned by age; this keeps that delete from scanning the table.
    await conn.execute(
        text("CREATE INDEX IF NOT EXISTS ix_processed_events_received ON processed_events (received_at)")
    )


MIGRATIONS: list[Migration] = [
    (1, "initial schema", _initial_schema),
    (2, "index processed_events by receipt time", _index_event_receipt_time),
]


async def migrate(conn: AsyncConnection) -> list[int]:
    """Apply every migration not yet recorded; returns the versions applied now."""
    await conn.run_sync(schema.metadata.create_all, tables=[schema.schema_migrations])
    done = set((await conn.execute(select(schema.schema_migrations.c.version))).scalars())
    applied = []
    for version, name, apply in MIGRATIONS:
        if version in done:
            continue
        await apply(conn)
        await conn.execute(
            insert(schema.schema_migrations).values(version=version, name=name, applied_at=datetime.now(UTC))
        )
        applied.append(version)
    return applied


async def table_names(conn: AsyncConnection) -> list[str]:
    return await conn.run_sync(lambda sync_conn: inspect(sync_conn).get_table_names())
