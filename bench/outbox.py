"""Outbox delivery rate with Slack answering each Web API call after --latency-ms (100 ms).

One local Slack and one real `Runtime` (HTTP, `run_scheduler=False`); --incidents incidents
declared by `/incident start`. Then, timed from the worker's kick until no step the bench stored
is pending (not `store.outbox.backlog(now)`: that also counts the finish-opening safety nets,
pending for 30 s after each start):

  * --steps POST steps (`bot.services.steps.post`) spread round-robin over every incident's lane;
  * the same number of POST steps all in one lane (the in-order-per-lane ceiling);
  * close → postmortem: `bot.services.closeout.close` (what the close modal calls, without the
    modal) on one incident, then on all the others at once: the closing post, the summary
    refresh, the postmortem upload and its summary posts.

Every step stored must end 'done'; every POST's text must appear exactly once in its channel, in
the order stored; every closed incident must have its postmortem file. Else FAIL and exit 1.

    .venv/bin/python bench/outbox.py [--steps 400] [--incidents 8] [--latency-ms 100]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench_outbox]

A PostgreSQL database is emptied (schema public dropped) first: give it its own.
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
from datetime import timedelta
from pathlib import Path

from _bot import empty_database, start_bot
from _common import ALICE, SIGNING_SECRET, clear_proxies, table
from sqlalchemy import func, select

from bot.domain.models import CloseForm, Incident
from bot.runtime import Runtime
from bot.services import closeout, steps
from bot.services.context import Context
from bot.services.outbox import CONCURRENT_LANES
from sandbox import LocalSlack
from storage.schema import outbox

DRAIN_TIMEOUT_S = 300.0


@dataclass
class Result:
    name: str
    lanes: int
    steps: int
    wall_s: float
    calls: Counter[str]
    problems: list[str] = field(default_factory=list)


# ---- setting up ---------------------------------------------------------------------------------


async def declare(slack: LocalSlack, runtime: Runtime, count: int) -> list[Incident]:
    assert runtime.ctx is not None
    general = slack.add_channel("general", members=[ALICE])
    for n in range(1, count + 1):
        delivery = await slack.send_command(f"start Title {n}", user_id=ALICE, channel_id=general)
        if delivery.status != 200 or not await runtime.idle():
            raise RuntimeError(f"/incident start failed: {delivery.status} {delivery.body}")
    found = [await runtime.ctx.store.incident_by_number(runtime.ctx.team_id, n) for n in range(1, count + 1)]
    if any(i is None or not i.channel_id for i in found):
        raise RuntimeError("/incident start made no incident or no channel")
    return [i for i in found if i is not None]


# ---- measuring ----------------------------------------------------------------------------------


async def last_step_id(ctx: Context) -> int:
    async with ctx.store.db.reading() as conn:
        return int(await conn.scalar(select(func.max(outbox.c.id))) or 0)


async def pending_since(ctx: Context, watermark: int) -> int:
    query = select(func.count()).where(outbox.c.id > watermark, outbox.c.state == "pending")
    async with ctx.store.db.reading() as conn:
        return int(await conn.scalar(query) or 0)


async def drained(ctx: Context, watermark: int, began: float) -> float:
    """Seconds from `began` until none of the steps stored after `watermark` is pending (polled
    every 20 ms). Not `backlog()`: that also counts each incident's finish-opening safety net,
    pending for 30 s after its start though the start finished it."""
    deadline = began + DRAIN_TIMEOUT_S
    while await pending_since(ctx, watermark):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"outbox not drained after {DRAIN_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.02)
    return time.perf_counter() - began


async def states_after(ctx: Context, watermark: int) -> Counter[str]:
    query = select(outbox.c.state, func.count()).where(outbox.c.id > watermark).group_by(outbox.c.state)
    async with ctx.store.db.reading() as conn:
        return Counter({state: int(n) for state, n in (await conn.execute(query)).all()})


def calls_since(slack: LocalSlack, mark: int) -> Counter[str]:
    return Counter(c.method for c in slack.calls[mark:])


async def run_posts(runtime: Runtime, slack: LocalSlack, name: str, incidents: list[Incident], n: int) -> Result:
    ctx = runtime.ctx
    assert ctx is not None
    texts = [(incidents[i % len(incidents)], f"bench step {i} of {name}") for i in range(n)]
    new = [steps.post(incident, body, ctx.clock.now(), ALICE) for incident, body in texts]
    watermark, mark = await last_step_id(ctx), len(slack.calls)
    await ctx.store.outbox.enqueue(ctx.team_id, new)
    began = time.perf_counter()
    ctx.outbox.kick()
    wall = await drained(ctx, watermark, began)
    result = Result(name, len(incidents), n, wall, calls_since(slack, mark))
    result.problems += check_states(await states_after(ctx, watermark), n)
    result.problems += check_posts(slack, texts)
    return result


async def run_close(runtime: Runtime, slack: LocalSlack, name: str, incidents: list[Incident]) -> Result:
    ctx = runtime.ctx
    assert ctx is not None
    watermark, mark = await last_step_id(ctx), len(slack.calls)
    began = time.perf_counter()
    for incident in incidents:
        now = ctx.clock.now()
        form = CloseForm(impact="checkout down", impact_start=now - timedelta(minutes=30), impact_end=now,
                         root_cause="bench", resolution="bench", improvements=["more bench"], submitted_by=ALICE,
                         submitted_at=now)  # fmt: skip
        if await closeout.close(ctx, incident, form, [], actor_channel=None) is None:
            raise RuntimeError(f"{incident.ref} was closed already")
    wall = await drained(ctx, watermark, began)
    states = await states_after(ctx, watermark)
    result = Result(name, len(incidents), sum(states.values()), wall, calls_since(slack, mark))
    result.problems += check_states(states, result.steps)
    unpublished = [i.ref for i in incidents if await ctx.store.published_file(i.id) is None]
    if unpublished:
        result.problems.append(f"no postmortem file for {', '.join(unpublished)}")
    return result


# ---- checks -------------------------------------------------------------------------------------


def check_states(states: Counter[str], expected: int) -> list[str]:
    if states["done"] == expected == sum(states.values()):
        return []
    return [f"step states {dict(states)}, expected {expected} done"]


def check_posts(slack: LocalSlack, texts: list[tuple[Incident, str]]) -> list[str]:
    """Each text once in its channel, and the channel's bench posts in the order stored."""
    problems = []
    by_channel: dict[str, list[str]] = {}
    for incident, body in texts:
        by_channel.setdefault(str(incident.channel_id), []).append(body)
    for channel, wanted in by_channel.items():
        wanted_set = set(wanted)
        seen = [m.get("text") for m in slack.messages(channel) if m.get("text") in wanted_set]
        counts = Counter(seen)
        wrong = sum(1 for body in wanted if counts[body] != 1)
        if wrong:
            problems.append(f"{channel}: {wrong} of {len(wanted)} posts not there exactly once")
        elif seen != wanted:
            problems.append(f"{channel}: posts out of the order stored")
    return problems


# ---- report -------------------------------------------------------------------------------------


def row(r: Result, latency_s: float) -> list[str]:
    calls = sum(r.calls.values())
    per_step = calls / r.steps if r.steps else 0.0
    ceiling = min(r.lanes, CONCURRENT_LANES) / (latency_s * per_step) if latency_s and per_step else float("nan")
    return [r.name, str(r.lanes), str(r.steps), f"{r.wall_s:.2f}", f"{r.steps / r.wall_s:.1f}", f"{ceiling:.1f}",
            str(calls), str(r.calls["chat.postMessage"]), f"{per_step:.2f}", "FAIL" if r.problems else "ok"]


async def scenarios(slack: LocalSlack, runtime: Runtime, args: argparse.Namespace) -> list[Result]:
    incidents = await declare(slack, runtime, args.incidents)
    slack.delay_seconds = args.latency_ms / 1000
    results = []
    for name, lanes in ((f"post x{args.steps}, {len(incidents)} lanes", incidents),
                        (f"post x{args.steps}, 1 lane", incidents[:1])):  # fmt: skip
        results.append(await run_posts(runtime, slack, name, lanes, args.steps))
        print(f"  {name}: {results[-1].wall_s:.1f} s", flush=True)
    for name, some in (("close->postmortem, 1", incidents[:1]), (f"close->postmortem, {len(incidents) - 1}",
                                                                 incidents[1:])):  # fmt: skip
        if some:
            results.append(await run_close(runtime, slack, name, some))
            print(f"  {name}: {results[-1].wall_s:.1f} s", flush=True)
    slack.delay_seconds = 0.0
    return results


async def run(args: argparse.Namespace) -> int:
    clear_proxies()
    print(f"outbox: {args.steps} POST steps over {args.incidents} incidents, then in 1; Slack +{args.latency_ms:g} ms "
          f"a call; worker: {CONCURRENT_LANES} lanes at once; python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'outbox.db'}"
        await empty_database(url)
        slack = LocalSlack(signing_secret=SIGNING_SECRET, spec_path=None)
        await slack.start()
        slack.add_user(ALICE, "alice")
        runtime = await start_bot(slack, url)
        try:
            results = await scenarios(slack, runtime, args)
        finally:
            await runtime.stop()
            await slack.stop()
    print(f"\ndatabase: {(args.database_url or 'SQLite file in a temp dir').split('@')[-1]}")
    print(table(["scenario", "lanes", "steps", "wall s", "steps/s", "ceiling/s", "Slack calls", "postMessage",
                 "calls/step", "check"], [row(r, args.latency_ms / 1000) for r in results]))
    problems = [f"FAIL {r.name}: {p}" for r in results for p in r.problems]
    print("\n".join(problems) or "OK: every step done, every post once in its channel, in order; every postmortem")
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=400, help="POST steps per post scenario (default 400)")
    parser.add_argument("--incidents", type=int, default=8, help="incidents, i.e. lanes (default 8)")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="added to every Slack Web API call (100)")
    parser.add_argument("--database-url", help="e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/bench_outbox")
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
