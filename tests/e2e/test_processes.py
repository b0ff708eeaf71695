"""Real processes: a bot killed mid-stream loses nothing; two bots on one SQLite file never
send a reminder twice. The bots run as `python -m bot`, exactly as operators run them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from bot.domain.models import NewTask, Severity, Status
from sandbox import LocalSlack
from storage import Database, Store
from tests.conftest import ALICE, BOB, CAROL, SIGNING_SECRET, general

BotProcess = Callable[..., "asyncio.Future[subprocess.Popen[bytes]]"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_env(slack: LocalSlack, database_url: str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HTTP", "http"))}
    env.update(SLACK_BOT_TOKEN=slack.bot_token, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack.api_url,
               DATABASE_URL=database_url, HOST="127.0.0.1", PORT=str(port), TIMEZONE="UTC", LOG_LEVEL="WARNING")
    env.update(extra)
    return env


async def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "bot exited"
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the bot did not become healthy")


@pytest.fixture
async def processes(tmp_path: Any) -> AsyncIterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)


def spawn(env: dict[str, str], cwd: Any, started: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "bot"], env=env, cwd=cwd, stderr=subprocess.PIPE)
    started.append(proc)
    return proc


async def bot_with_incident(slack: LocalSlack, database_url: str, tmp_path: Any,
                            processes: list[subprocess.Popen[bytes]], title: str,
                            ) -> tuple[subprocess.Popen[bytes], int, str]:  # fmt: skip
    """A bot process on a free port with INC-1 open (its summary posted); (process, port, channel)."""
    port = free_port()
    proc = spawn(bot_env(slack, database_url, port), tmp_path, processes)
    await wait_healthy(port, proc)
    slack.bot_url = f"http://127.0.0.1:{port}/slack/events"
    slack.delivery_timeout = 2.0
    await slack.send_command(f"start {title}", user_id=ALICE, channel_id=general(slack))
    name = "inc-1-" + title.lower().replace(" ", "-")
    await slack.wait_for(lambda: slack.channel_by_name(name) is not None, timeout=10)
    channel = str(slack.channel_by_name(name)["id"])  # type: ignore[index]
    await slack.wait_for(lambda: len(slack.messages(channel)) >= 1, timeout=10)
    return proc, port, channel


async def test_killed_bot_loses_no_message(slack: LocalSlack, database_url: str, tmp_path: Any,
                                           processes: list[subprocess.Popen[bytes]]) -> None:
    first, port, channel = await bot_with_incident(slack, database_url, tmp_path, processes, "Payments down")

    async def say(n: int) -> str:
        ts, _ = await slack.post_message(channel, user=(BOB, CAROL)[n % 2], text=f"update {n}")
        return ts

    talk = [asyncio.create_task(say(n)) for n in range(30)]
    await asyncio.sleep(0.01)
    first.kill()  # SIGKILL mid-stream: no shutdown, no cleanup
    sent = await asyncio.gather(*talk)
    # People keep talking while the bot is down: those deliveries fail and wait for redelivery.
    sent += await asyncio.gather(*(say(n) for n in range(30, 60)))
    assert len(slack.pending_redeliveries) >= 30

    second = spawn(bot_env(slack, database_url, port), tmp_path, processes)
    await wait_healthy(port, second)
    for _ in range(3):
        if slack.pending_redeliveries:
            await slack.redeliver_unacked()
    assert not slack.pending_redeliveries

    db = Database(database_url)
    try:
        store = Store(db)
        incident = await store.incident_by_number("T0LOCAL", 1)
        assert incident is not None
        entries = [e for e in await store.entries(incident.id) if e.kind != "system"]
    finally:
        await db.close()
    counts = Counter(e.ts for e in entries)
    assert set(counts) == set(sent) and set(counts.values()) == {1}
    assert sorted(e.text for e in entries) == sorted(f"update {n}" for n in range(60))


async def seed_due_tasks(database_url: str, count: int) -> dict[int, str]:
    """An open incident with `count` tasks due today; returns task id -> owner."""
    db = Database(database_url)
    await db.start()
    try:
        store = Store(db)
        now = datetime.now(UTC)
        incident = await store.create_incident("T0LOCAL", {
            "title": "Seeded", "severity": Severity.SEV3, "status": Status.INVESTIGATING, "commander_id": ALICE,
            "declared_by": ALICE, "started_at": now, "last_activity_at": now})
        incident = await store.update_incident(incident.id, state="open", channel_id="C0SEEDED")
        owners = [BOB, CAROL]
        planned = [(NewTask(description=f"task {n}", owner_id=owners[n % 2]), now.date()) for n in range(count)]
        made = await store.add_tasks(incident, planned, ALICE, now)
        await store.close()
    finally:
        await db.close()
    return {t.id: t.owner_id for t in made}


async def test_two_processes_on_one_sqlite_file_send_each_reminder_once(
    slack: LocalSlack, database_url: str, tmp_path: Any, processes: list[subprocess.Popen[bytes]]
) -> None:
    await seed_due_tasks(database_url, 40)
    extra = {"REMINDER_SWEEP_SECONDS": "1", "REMINDER_NOT_BEFORE": "00:00"}
    ports = [free_port(), free_port()]
    bots = [spawn(bot_env(slack, database_url, port, **extra), tmp_path, processes) for port in ports]
    for port, proc in zip(ports, bots, strict=True):
        await wait_healthy(port, proc)

    def reminded() -> Counter[str]:
        return Counter(str(m["metadata"]["event_payload"]["task_id"])
                       for user in (BOB, CAROL) for m in slack.messages(slack.dm_channel(user) or "")
                       if m.get("metadata"))

    await slack.wait_for(lambda: len(reminded()) == 40, timeout=30)
    await asyncio.sleep(3)  # several more sweeps by both processes
    assert len(reminded()) == 40 and set(reminded().values()) == {1}


async def test_restarted_bot_reads_back_what_slack_gave_up_delivering(
    slack: LocalSlack, database_url: str, tmp_path: Any, processes: list[subprocess.Popen[bytes]]
) -> None:
    first, port, channel = await bot_with_incident(slack, database_url, tmp_path, processes, "Search is down")
    parent, _ = await slack.post_message(channel, user=BOB, text="which shard?")
    first.kill()

    # Down longer than Slack retries: every delivery fails, and Slack drops them all.
    said = [(await slack.post_message(channel, user=CAROL, text=f"while down {n}"))[0] for n in range(40)]
    replies = [(await slack.post_message(channel, user=BOB, text=f"shard {n}", thread_ts=parent))[0]
               for n in range(3)]
    await slack.edit_message(channel, said[0], "while down 0, edited")
    slack.pending_redeliveries.clear()

    second = spawn(bot_env(slack, database_url, port), tmp_path, processes)
    await wait_healthy(port, second)

    async def people_entries() -> list[Any]:
        db = Database(database_url)
        try:
            store = Store(db)
            incident = await store.incident_by_number("T0LOCAL", 1)
            assert incident is not None
            return [e for e in await store.entries(incident.id) if e.kind != "system"]
        finally:
            await db.close()

    for _ in range(75):  # the start-up pass runs in the background; give it up to 15 s
        entries = await people_entries()
        if len(entries) >= 44:
            break
        await asyncio.sleep(0.2)
    assert Counter(e.ts for e in entries) == Counter({t: 1 for t in [parent, *said, *replies]})
    texts = {e.ts: e.text for e in entries}
    assert texts[said[0]] == "while down 0, edited" and texts[said[39]] == "while down 39"
    assert all(e.thread_ts == parent for e in entries if e.ts in replies)
