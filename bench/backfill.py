"""Backfill after downtime: one `Reconciler.run()` reading a channel's missed messages back.

Per scenario, a fresh database and a fresh local Slack: one incident opened by `/incident start`,
then --messages messages posted to its channel without events (as if the bot was down), every
--thread-every-th one with --replies thread replies. One reconcile pass is timed while a live
message is delivered to the same channel every --live-ms (open loop) and its ack is timed.
Afterwards every message, missed or live, must be stored exactly once: else FAIL and exit 1.

Scenarios: paced (the production Pacer, Slack's Tier 3: 45 calls/min, burst 10) and unpaced (a
Pacer that never waits: the bot's own cost), each without and with --latency-ms per Web API call.

    .venv/bin/python bench/backfill.py [--messages 10000] [--thread-every 500] [--replies 3]
        [--latency-ms 100] [--live-ms 100] [--no-pace] [--database-url postgresql+asyncpg://...]

A PostgreSQL database is emptied (schema public dropped) before each scenario: give it its own.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from _bot import empty_database, open_incident, start_bot
from _common import ALICE, SENDER, SIGNING_SECRET, clear_proxies, latency_summary, table
from sqlalchemy import select

from bot.runtime import Runtime
from bot.services.reconcile import Pacer, Reconciler, ReconcileReport
from sandbox import LocalSlack
from storage.schema import timeline_entries


@dataclass
class Scenario:
    name: str
    paced: bool
    latency_s: float


@dataclass
class Live:
    """Live messages delivered while the pass runs: their ts and ack latencies."""

    ts: list[str] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)
    failed: int = 0


@dataclass
class Result:
    scenario: Scenario
    wall_s: float
    report: ReconcileReport
    calls: Counter[str]
    live: Live
    expected: Counter[str]
    stored: Counter[str]


# ---- setting up ---------------------------------------------------------------------------------


async def post_missed(slack: LocalSlack, channel: str, args: argparse.Namespace) -> list[str]:
    posted = []
    for n in range(args.messages):
        ts, _ = await slack.post_message(channel, user=SENDER, text=f"missed {n}: checkout p99 2.3 s", deliver=False)
        posted.append(ts)
        if n % args.thread_every == 0:
            for r in range(args.replies):
                reply, _ = await slack.post_message(channel, user=ALICE, text=f"reply {r} to {n}", thread_ts=ts,
                                                    deliver=False)
                posted.append(reply)
    return posted


# ---- measuring ----------------------------------------------------------------------------------


async def live_traffic(slack: LocalSlack, channel: str, interval_s: float, done: asyncio.Event) -> Live:
    live = Live()

    async def one(n: int) -> None:
        ts, delivery = await slack.post_message(channel, user=SENDER, text=f"live {n}: rolling back")
        live.ts.append(ts)
        if delivery is not None and delivery.acked:
            live.elapsed.append(delivery.elapsed)
        else:
            live.failed += 1

    loop, sends, n = asyncio.get_running_loop(), [], 0
    start = loop.time()
    while not done.is_set():
        sends.append(asyncio.create_task(one(n)))
        n += 1
        await asyncio.sleep(max(0.0, start + n * interval_s - loop.time()))
    await asyncio.gather(*sends)
    return live


async def timed_pass(
    runtime: Runtime, slack: LocalSlack, channel: str, live_s: float
) -> tuple[float, ReconcileReport, Live]:
    assert runtime.reconciler is not None
    done = asyncio.Event()
    traffic = asyncio.create_task(live_traffic(slack, channel, live_s, done))
    began = time.perf_counter()
    report = await runtime.reconciler.run()
    wall = time.perf_counter() - began
    done.set()
    live = await traffic
    await runtime.idle()
    return wall, report, live


async def stored_ts(runtime: Runtime, channel: str) -> Counter[str]:
    query = select(timeline_entries.c.ts).where(
        timeline_entries.c.channel_id == channel, timeline_entries.c.kind != "system"
    )
    async with runtime.db.reading() as conn:
        return Counter((await conn.scalars(query)).all())


async def run_scenario(scenario: Scenario, args: argparse.Namespace, url: str) -> Result:
    await empty_database(url)
    slack = LocalSlack(signing_secret=SIGNING_SECRET, spec_path=None)
    await slack.start()
    for user in (ALICE, SENDER):
        slack.add_user(user, user.lower())
    runtime = await start_bot(slack, url)
    try:
        channel = await open_incident(slack, runtime, [ALICE, SENDER])
        missed = await post_missed(slack, channel, args)
        if not scenario.paced:
            assert runtime.ctx is not None
            runtime.reconciler = Reconciler(runtime.ctx, lambda: Pacer(per_minute=1e9, burst=10**9))
        slack.delay_seconds = scenario.latency_s
        wall, report, live = await timed_pass(runtime, slack, channel, args.live_ms / 1000)
        slack.delay_seconds = 0.0
        calls = Counter(c.method for c in slack.calls if c.args.get("channel") == channel)
        stored = await stored_ts(runtime, channel)
        return Result(scenario, wall, report, calls, live, Counter(missed + live.ts), stored)
    finally:
        await runtime.stop()
        await slack.stop()


# ---- report -------------------------------------------------------------------------------------


def row(r: Result) -> list[str]:
    ack = latency_summary(r.live.elapsed)
    dupes = sum(n - 1 for n in r.stored.values() if n > 1)
    missing = len(r.expected - r.stored)
    return [
        r.scenario.name, f"{r.wall_s:.1f}", str(r.calls["conversations.history"]),
        str(r.calls["conversations.replies"]), f"{r.report.added:,}", f"{r.report.added / r.wall_s:,.0f}",
        f"{len(r.live.elapsed)}/{len(r.live.ts)}", f"{ack['p50_ms']:.1f}", f"{ack['p99_ms']:.1f}",
        f"{ack['max_ms']:.1f}", f"{sum(r.stored.values()):,}/{sum(r.expected.values()):,}", str(dupes), str(missing),
    ]


def failures(r: Result) -> list[str]:
    problems = []
    if r.stored != r.expected:
        problems.append(f"stored {sum(r.stored.values())} rows for {len(r.stored)} ts, expected "
                        f"{sum(r.expected.values())} (missing {len(r.expected - r.stored)}, "
                        f"extra {sum((r.stored - r.expected).values())})")
    if r.live.failed:
        problems.append(f"{r.live.failed} live deliveries not acked")
    if r.report.failed:
        problems.append(f"reconcile failed: {r.report.failed}")
    return [f"FAIL {r.scenario.name}: {p}" for p in problems]


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    latencies = [0.0] + ([args.latency_ms / 1000] if args.latency_ms else [])
    paces = [False] if args.no_pace else [True, False]
    return [Scenario(f"{'paced' if paced else 'unpaced'}, Slack +{lat * 1000:.0f} ms", paced, lat)
            for paced in paces for lat in latencies]


async def run(args: argparse.Namespace) -> int:
    clear_proxies()
    threads = len(range(0, args.messages, args.thread_every))
    print(f"backfill: {args.messages:,} missed messages, {threads} threads x {args.replies} replies; a live message "
          f"every {args.live_ms:g} ms during the pass; python {platform.python_version()}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        for n, scenario in enumerate(scenarios(args)):
            url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / f'backfill-{n}.db'}"
            results.append(await run_scenario(scenario, args, url))
            print(f"  {scenario.name}: {results[-1].wall_s:.1f} s", flush=True)
    print(f"\ndatabase: {(args.database_url or 'SQLite file in a temp dir').split('@')[-1]}")
    print(table(["scenario", "wall s", "history", "replies", "added", "msg/s", "live acked", "ack p50 ms",
                 "p99 ms", "max ms", "rows/expected", "dupes", "missing"], [row(r) for r in results]))
    problems = [p for r in results for p in failures(r)]
    print("\n".join(problems) or "OK: every message stored exactly once in every scenario")
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000, help="missed messages (default 10000)")
    parser.add_argument("--thread-every", type=int, default=500, help="every Nth message gets replies (500)")
    parser.add_argument("--replies", type=int, default=3, help="replies per thread (default 3)")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="added Slack latency, 0 skips (100)")
    parser.add_argument("--live-ms", type=float, default=100.0, help="a live message every N ms (default 100)")
    parser.add_argument("--no-pace", action="store_true", help="only the unpaced scenarios (the bot's own cost)")
    parser.add_argument("--database-url", help="e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/bench_backfill")
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
