"""Alert intake: how fast a notice is answered 202 (stored, Slack work left to the outbox), and
what 50 concurrent deliveries of one group cost. Prints figures; asserts only that each group
made exactly one incident.

    .venv/bin/python bench/alerts.py [--groups 200] [--burst 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time

import aiohttp
from _bot import start_bot
from _common import SIGNING_SECRET, clear_proxies
from sqlalchemy import func, select

from sandbox import LocalSlack
from storage.schema import incidents

TOKEN = "bench-alert-token"


def notice(key: str) -> bytes:
    return json.dumps({"title": f"Probe {key} failing", "status": "firing", "dedup_key": key,
                       "severity": "warning"}).encode()  # fmt: skip


async def post(http: aiohttp.ClientSession, port: int, body: bytes) -> float:
    started = time.perf_counter()
    async with http.post(f"http://127.0.0.1:{port}/alerts/generic", data=body,
                         headers={"Authorization": f"Bearer {TOKEN}"}) as answer:  # fmt: skip
        await answer.read()
        assert answer.status == 202, answer.status
    return (time.perf_counter() - started) * 1000


def figures(name: str, ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=100)
    return f"{name:<34} n={len(ms):<5} p50 {q[49]:6.1f} ms  p99 {q[98]:6.1f} ms  max {max(ms):6.1f} ms"


async def run(args: argparse.Namespace) -> int:
    clear_proxies()
    folder = tempfile.mkdtemp(prefix="bench-alerts-")
    async with LocalSlack(signing_secret=SIGNING_SECRET) as slack:
        runtime = await start_bot(slack, f"sqlite+aiosqlite:///{folder}/bot.db", ALERT_WEBHOOK_TOKEN=TOKEN)
        assert runtime.port is not None
        async with aiohttp.ClientSession() as http:
            sequential = [await post(http, runtime.port, notice(f"g{n}")) for n in range(args.groups)]
            burst = await asyncio.gather(*(post(http, runtime.port, notice("burst")) for _ in range(args.burst)))
            repeats = [await post(http, runtime.port, notice(f"g{n}")) for n in range(args.groups)]
        async with runtime.db.reading() as conn:
            count = await conn.scalar(select(func.count()).select_from(incidents))
        await runtime.stop()
    print(f"alert intake, SQLite, python {sys.version.split()[0]}; 202 = stored, Slack work in the outbox")
    print(figures("new group, one at a time", sequential))
    print(figures(f"one group, {args.burst} concurrent", list(burst)))
    print(figures("repeat of an open group", repeats))
    expected = args.groups + 1
    print(f"incidents: {count} (expected {expected})")
    return 0 if count == expected else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--burst", type=int, default=50)
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
