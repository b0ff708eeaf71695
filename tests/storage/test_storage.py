"""Storage on a blank database, on SQLite and (when TEST_DATABASE_URL is set) PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import pathlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import inspect, select, text

from bot.domain.models import EntryKind, Incident, NewTask, Severity, Status, TimelineEntry
from storage import Database, Store
from storage.migrations import MIGRATIONS, migrate, table_names
from storage.schema import metadata, schema_migrations

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


async def _blank_postgres(url: str) -> None:
    db = Database(url)
    async with db.transaction() as conn:
        await conn.run_sync(metadata.drop_all)
    await db.close()


@pytest.fixture(params=BACKENDS)
async def url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    if request.param == "postgresql":
        pg = os.environ["TEST_DATABASE_URL"]
        await _blank_postgres(pg)
        return pg
    return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    db = Database(url)
    await db.start()
    store = Store(db)
    yield store
    await store.close()
    await db.close()


async def _incident(store: Store, team: str = "T1") -> Incident:
    incident = await store.create_incident(team, {
        "title": "DB down", "severity": Severity.SEV2, "status": Status.INVESTIGATING, "commander_id": "U1",
        "declared_by": "U1", "started_at": T0, "last_activity_at": T0})
    return await store.update_incident(incident.id, state="open", channel_id=f"C{incident.number}{team}")


def _entry(incident: Incident, ts: str, text: str = "hello") -> TimelineEntry:
    return TimelineEntry(incident_id=incident.id, channel_id=incident.channel_id or "", ts=ts,
                         occurred_at=datetime.fromtimestamp(float(ts), UTC), kind=EntryKind.MESSAGE,
                         author_id="U2", text=text)


async def test_migrations_on_a_blank_database(url: str) -> None:
    db = Database(url)
    try:
        await db.start()
        async with db.transaction() as conn:
            names = set(await table_names(conn))
            versions = list((await conn.execute(select(schema_migrations.c.version))).scalars())
            again = await migrate(conn)
        assert {"incidents", "timeline_entries", "tasks", "reminders", "schema_migrations"} <= names
        assert versions == [v for v, _, _ in MIGRATIONS] and again == []
    finally:
        await db.close()


async def test_numbers_are_sequential_per_team_even_concurrently(store: Store) -> None:
    made = await asyncio.gather(*(_incident(store) for _ in range(10)))
    other = await _incident(store, team="T2")
    assert sorted(i.number for i in made) == list(range(1, 11)) and other.number == 1


async def test_times_come_back_as_aware_utc(store: Store) -> None:
    incident = await _incident(store)
    again = await store.incident_by_id(incident.id)
    assert again is not None and again.started_at == T0 and again.started_at.tzinfo is not None


async def test_entries_once_edits_and_tombstones(store: Store) -> None:
    incident = await _incident(store)
    assert await store.record_entry("T1", _entry(incident, "1700000000.000100"), "Ev1", T0)
    assert not await store.record_entry("T1", _entry(incident, "1700000000.000100"), "Ev1", T0)
    assert not await store.record_entry("T1", _entry(incident, "1700000000.000100"), "Ev2", T0)
    # An edit that arrives before its message, then the late original: the edit wins.
    early = _entry(incident, "1700000000.000200", "fixed text").model_copy(update={"edited_at": T0})
    await store.record_edit("T1", early, "Ev3", T0)
    await store.record_entry("T1", _entry(incident, "1700000000.000200", "typo text"), "Ev4", T0)
    await store.record_deletion("T1", _entry(incident, "1700000000.000100").model_copy(update={"deleted_at": T0}),
                                "Ev5", T0)
    entries = {e.ts: e for e in await store.entries(incident.id)}
    assert entries["1700000000.000200"].text == "fixed text"
    assert entries["1700000000.000100"].deleted_at == T0


async def test_reminder_claims_are_exclusive_across_connections(url: str, store: Store) -> None:
    incident = await _incident(store)
    [task] = await store.add_tasks(incident, [(NewTask(description="d", owner_id="U2"), date(2026, 11, 23))], "U1", T0)
    other_db = Database(url)
    try:
        other = Store(other_db)
        claims = await asyncio.gather(*(
            s.claim_reminder(task, date(2026, 11, 23), f"tok{n}", T0, T0 - timedelta(minutes=10))
            for n, s in enumerate([store, other] * 5)))
    finally:
        await other_db.close()
    assert sorted(c or "" for c in claims) == [""] * 9 + ["new"]
    later = T0 + timedelta(minutes=11)
    assert await store.claim_reminder(task, date(2026, 11, 23), "tokX", later, later - timedelta(minutes=10)) == (
        "taken_over")


async def test_unreachable_database_is_one_line(tmp_path: pathlib.Path) -> None:
    from storage.database import DatabaseUnavailable

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")
    with pytest.raises(DatabaseUnavailable) as caught:
        await db.start()
    assert "DATABASE_URL" in str(caught.value) and "\n" not in str(caught.value)
    assert not await db.healthy()
    await db.close()


async def test_sqlite_uses_wal(tmp_path: pathlib.Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}")
    await db.start()
    async with db.reading() as conn:
        mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
    await db.close()
    assert mode == "wal"


async def test_group_commit_keeps_each_entry_once(store: Store) -> None:
    incident = await _incident(store)
    entries = [_entry(incident, f"1700000001.{n % 50:06d}", f"m{n % 50}") for n in range(200)]
    # 200 concurrent calls, each message four times under different or repeated event ids.
    results = await asyncio.gather(*(
        store.record_entry("T1", e, f"Ev{n % 120}", T0) for n, e in enumerate(entries)))
    assert sum(results) == 50
    stored = await store.entries(incident.id)
    assert sorted(e.text for e in stored) == sorted(f"m{n}" for n in range(50))
    assert (await store.incident_by_id(incident.id)).last_activity_at == T0  # type: ignore[union-attr]


async def test_old_event_ids_are_pruned(store: Store) -> None:
    incident = await _incident(store)
    old = _entry(incident, "1700000002.000100", "edited").model_copy(update={"edited_at": T0})
    await store.record_edit("T1", old, "EvOld", T0 - timedelta(days=8))
    await store.record_edit("T1", old, "EvNew", T0)
    assert await store.prune_events(T0 - timedelta(days=7)) == 1
    # The pruned id is forgotten; the recent one still turns a retry away.
    assert not await store.record_edit("T1", old, "EvNew", T0)


async def test_a_version_1_database_is_brought_to_the_newest_schema(url: str) -> None:
    from storage.migrations import _initial_schema

    db = Database(url)
    try:
        async with db.transaction() as conn:  # as the first release left it
            await conn.run_sync(metadata.create_all, tables=[schema_migrations])
            await _initial_schema(conn)
            await conn.execute(schema_migrations.insert().values(version=1, name="initial schema", applied_at=T0))
        await db.start()
        async with db.transaction() as conn:
            versions = list((await conn.execute(select(schema_migrations.c.version))).scalars())
            found = await conn.run_sync(lambda sync: inspect(sync).get_indexes("processed_events"))
        indexes = {index["name"] for index in found}
        assert sorted(versions) == [1, 2, 3, 4, 5, 6] and "ix_processed_events_received" in indexes
        again = await Store(db).incident_by_id(1)  # the table has the column migration 3 added
        assert again is None
        assert await Store(db).outbox.backlog(T0) == (0, None)  # and the table migration 4 made
    finally:
        await db.close()
