"""Reminder sweep over 100,000 open tasks (target: under 50 ms, DESIGN §4).

Seeds a SQLite (or --database-url) database with open tasks spread over many incidents, then
times `sweep()` against a local Slack: on an ordinary day with nothing due, on a day where
--due tasks are due (their DMs included), and on a Monday (the weekly digest query runs; the
digests themselves are then sent once and the next Monday sweep is timed again)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from bot.clock import ManualClock
from bot.config import Settings
from bot.jobs.sweep import sweep
from bot.services.context import Context
from bot.slack_api import Slack, make_client
from sandbox import LocalSlack
from storage import Database, Store
from storage.schema import incidents, tasks

START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday


async def seed(db: Database, channels: list[str], count: int, per_incident: int, due: int) -> None:
    incident_rows = [
        {"team_id": "T0LOCAL", "number": n + 1, "title": f"Incident {n}", "description": "", "severity": "sev3",
         "status": "closed", "state": "closed", "is_private": False, "channel_id": channels[n],
         "channel_name": f"inc-{n}", "commander_id": "U0ALICE", "declared_by": "U0ALICE",
         "started_at": START - timedelta(days=30), "last_activity_at": START - timedelta(days=30)}
        for n in range(count // per_incident)
    ]
    far = START.date() + timedelta(days=365)
    task_rows = [
        {"team_id": "T0LOCAL", "incident_id": n // per_incident + 1, "description": f"task {n}",
         "owner_id": "U0BOB", "due_date": far, "status": "open", "created_by": "U0ALICE",
         "created_at": START - timedelta(days=30), "next_remind_on": START.date() if n < due else far}
        for n in range(count)
    ]
    async with db.transaction() as conn:
        await conn.execute(insert(incidents), incident_rows)
        for chunk in range(0, len(task_rows), 10_000):
            await conn.execute(insert(tasks), task_rows[chunk:chunk + 10_000])


async def timed(ctx: Context, clock: ManualClock, when: datetime, runs: int) -> list[float]:
    clock.set(when)
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        await sweep(ctx)
        times.append((time.perf_counter() - began) * 1000)
    return times


def show(label: str, times: list[float]) -> None:
    print(f"{label:<44} median {statistics.median(times):8.1f} ms   max {max(times):8.1f} ms   ({len(times)} runs)")


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    url = args.database_url or f"sqlite+aiosqlite:///{folder / 'sweep.db'}"
    clock = ManualClock(START)
    local = LocalSlack(clock=clock.now)
    await local.start()
    local.add_user("U0ALICE", "alice")
    local.add_user("U0BOB", "bob")
    db = Database(url)
    await db.start()
    try:
        began = time.perf_counter()
        channels = [local.add_channel(f"inc-{n}") for n in range(args.tasks // args.per_incident)]
        await seed(db, channels, args.tasks, args.per_incident, args.due)
        print(f"seeded {args.tasks:,} open tasks in {args.tasks // args.per_incident:,} incidents "
              f"({args.due} due) in {time.perf_counter() - began:.1f} s; database {url}")
        settings = Settings(_env_file=None, SLACK_BOT_TOKEN=local.bot_token,  # type: ignore[call-arg]
                            SLACK_SIGNING_SECRET="x", SLACK_API_URL=local.api_url, DATABASE_URL=url)
        slack = Slack(make_client(local.bot_token, local.api_url))
        ctx = Context(settings, Store(db), slack, clock, await slack.identity())
        show(f"due day: {args.due} reminders sent (first sweep)", await timed(ctx, clock, START, 1))
        show("same day again, nothing left to send", await timed(ctx, clock, START + timedelta(minutes=1), args.runs))
        show("ordinary day, nothing due", await timed(ctx, clock, START + timedelta(days=2), args.runs))
        monday = START + timedelta(days=6)
        show("Monday: weekly digests (first sweep, sends)", await timed(ctx, clock, monday, 1))
        show("Monday again: digests done", await timed(ctx, clock, monday + timedelta(minutes=1), args.runs))
        dms = len(local.messages(local.dm_channel("U0BOB") or ""))
        print(f"reminder DMs sent: {dms} (expected {args.due})")
        await slack.client.session.close() if slack.client.session else None
    finally:
        await db.close()
        await local.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--per-incident", type=int, default=100)
    parser.add_argument("--due", type=int, default=20)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--database-url")
    asyncio.run(main(parser.parse_args()))
