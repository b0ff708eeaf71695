"""Schema migrations, applied at start and recorded in `schema_migrations`.

`schema.py` always describes the newest schema. A blank database is created from it in one step
and stamped with every migration (they are already in it). A database made by an older release
gets the migrations it has not recorded yet, in order. So a schema change is two edits: the table
in `schema.py`, and a migration here that brings an existing database to the same shape. Add
migrations at the end; never edit one that has shipped."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import schema

Migration = tuple[int, str, Callable[[AsyncConnection], Awaitable[None]]]
# Any fixed 64-bit number, the same in every release: PostgreSQL's advisory lock for migrating.
MIGRATION_LOCK_KEY = 7_310_436_914_125_521_011


async def _initial_schema(conn: AsyncConnection) -> None:
    """Version 1 as released: the tables, without what later migrations add."""
    tables = [t for t in schema.metadata.sorted_tables if t is not schema.schema_migrations]
    await conn.run_sync(schema.metadata.create_all, tables=tables)
    await conn.execute(text("DROP INDEX IF EXISTS ix_processed_events_received"))
    await conn.execute(text("ALTER TABLE incidents DROP COLUMN opening_claimed_at"))
    await conn.execute(text("DROP TABLE outbox"))
    await conn.execute(text("DROP INDEX ix_incidents_alert_key"))
    for column in [*ALERT_COLUMNS, *LIFECYCLE_COLUMNS]:
        await conn.execute(text(f"ALTER TABLE incidents DROP COLUMN {column}"))


async def _index_event_receipt_time(conn: AsyncConnection) -> None:
    # Old event ids are pruned by age; this keeps that delete from scanning the table.
    await conn.execute(text("CREATE INDEX ix_processed_events_received ON processed_events (received_at)"))


async def _claim_for_opening(conn: AsyncConnection) -> None:
    kind = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
    await conn.execute(text(f"ALTER TABLE incidents ADD COLUMN opening_claimed_at {kind}"))


async def _outbox(conn: AsyncConnection) -> None:
    await conn.run_sync(schema.metadata.create_all, tables=[schema.outbox])


ALERT_COLUMNS: dict[str, str | None] = {
    "alert_source": "VARCHAR(16)",
    "alert_key": "TEXT",
    "alert_state": "TEXT",
    "impact_started_at": None,  # a timestamp with time zone
    "impact_ended_at": None,
    "previous_incident_id": "INTEGER",
}


async def _alert_columns(conn: AsyncConnection) -> None:
    await _add_columns(conn, ALERT_COLUMNS)
    await conn.execute(text("CREATE INDEX ix_incidents_alert_key ON incidents (team_id, alert_key)"))


LIFECYCLE_COLUMNS: dict[str, str | None] = {
    "resolved_at": None,
    "status_text": "TEXT",
    "status_updated_at": None,
    "cadence_nudged_at": None,
    "postmortem_nudged_on": "DATE",
    "roles": "TEXT",
}


async def _add_columns(conn: AsyncConnection, columns: dict[str, str | None]) -> None:
    moment = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
    for column, kind in columns.items():
        await conn.execute(text(f"ALTER TABLE incidents ADD COLUMN {column} {kind or moment}"))


async def _lifecycle_columns(conn: AsyncConnection) -> None:
    await _add_columns(conn, LIFECYCLE_COLUMNS)


MIGRATIONS: list[Migration] = [
    (1, "initial schema", _initial_schema),
    (2, "index processed_events by receipt time", _index_event_receipt_time),
    (3, "incidents.opening_claimed_at", _claim_for_opening),
    (4, "outbox of Slack side effects", _outbox),
    (5, "incidents declared from alerts", _alert_columns),
    (6, "resolve, roles and update cadence", _lifecycle_columns),
]


async def migrate(conn: AsyncConnection) -> list[int]:
    """Brings the database to the newest schema; returns the versions applied now."""
    if conn.dialect.name == "postgresql":
        # Replicas starting together would race on CREATE TABLE (pg_type's unique index): the
        # first takes this lock, the others wait for its commit and then find nothing to do.
        # Held until the caller's transaction ends. SQLite's BEGIN IMMEDIATE serializes already.
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    await conn.run_sync(schema.metadata.create_all, tables=[schema.schema_migrations])
    done = set((await conn.execute(select(schema.schema_migrations.c.version))).scalars())
    if not done and set(await table_names(conn)) == {schema.schema_migrations.name}:
        await conn.run_sync(schema.metadata.create_all)
        return await _record(conn, [(v, n) for v, n, _ in MIGRATIONS])
    pending = [(v, n, apply) for v, n, apply in MIGRATIONS if v not in done]
    for _, _, apply in pending:
        await apply(conn)
    return await _record(conn, [(v, n) for v, n, _ in pending])


async def _record(conn: AsyncConnection, versions: list[tuple[int, str]]) -> list[int]:
    now = datetime.now(UTC)
    for version, name in versions:
        await conn.execute(insert(schema.schema_migrations).values(version=version, name=name, applied_at=now))
    return [version for version, _ in versions]


async def table_names(conn: AsyncConnection) -> list[str]:
    return await conn.run_sync(lambda sync_conn: inspect(sync_conn).get_table_names())
