"""Two real `python -m bot` processes on one PostgreSQL database, behind a load balancer that
sends each request to either (tests/loadbalancer.py): incident numbers, messages, edits,
reminders and the postmortem each happen once, and a replica killed with SIGKILL loses nothing
Slack saw acknowledged. Needs TEST_DATABASE_URL; every test starts from blank tables."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from sandbox import LocalSlack, payloads
from sandbox.forms import fill_view
from sandbox.types import Delivery
from storage import Database
from storage.schema import incidents, reminders, schema_migrations, timeline_entries
from tests.conftest import ALICE, BOB, CAROL, general
from tests.e2e.test_processes import bot_env, free_port, seed_due_tasks, spawn, wait_healthy
from tests.loadbalancer import LoadBalancer
from tests.support import open_view

pytestmark = pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="needs TEST_DATABASE_URL")
FAILURE_WORDS = ("went wrong", "could not", "refused", "cannot")


@dataclass
class Replicas:
    url: str
    procs: list[subprocess.Popen[bytes]]
    logs: list[pathlib.Path]
    lb: LoadBalancer

    async def rows(self, table: Any, *where: Any) -> list[dict[str, Any]]:
        db = Database(self.url)
        try:
            async with db.reading() as conn:
                return [dict(r) for r in (await conn.execute(select(table).where(*where))).mappings().all()]
        finally:
            await db.close()

    def errors(self) -> list[str]:
        """Lines the replicas logged at ERROR, or tracebacks."""
        return [line for log in self.logs for line in log.read_text().splitlines()
                if " ERROR " in line or line.startswith("Traceback")]


ReplicaFactory = Callable[..., Awaitable[Replicas]]
ALERT_SAMPLE = pathlib.Path(__file__).resolve().parents[1] / "data" / "alerts" / "alertmanager_firing.json"


@pytest.fixture
async def replicas(slack: LocalSlack, pg_url: str, tmp_path: pathlib.Path) -> AsyncIterator[ReplicaFactory]:
    started: list[subprocess.Popen[bytes]] = []
    balancers: list[LoadBalancer] = []

    async def start(count: int = 2, **extra: str) -> Replicas:
        ports = [free_port() for _ in range(count)]
        # All at the same moment: on a blank database they race to create the schema.
        procs = [spawn(bot_env(slack, pg_url, port, **extra), tmp_path, started) for port in ports]
        await asyncio.gather(*(wait_healthy(port, proc, timeout=30) for port, proc in zip(ports, procs, strict=True)))
        logs = [_drain_stderr(proc, tmp_path / f"replica-{n}.log") for n, proc in enumerate(procs)]
        lb = LoadBalancer([f"http://127.0.0.1:{port}" for port in ports])
        await lb.start()
        balancers.append(lb)
        slack.bot_url = lb.url
        return Replicas(pg_url, procs, logs, lb)

    yield start
    for lb in balancers:
        await lb.stop()
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 15)


def _drain_stderr(proc: subprocess.Popen[bytes], path: pathlib.Path) -> pathlib.Path:
    """Copies the replica's stderr to a file, so a chatty replica never blocks on a full pipe."""
    assert proc.stderr is not None
    stream, sink = proc.stderr, path.open("wb")

    def copy() -> None:
        with sink:
            for line in stream:
                sink.write(line)
                sink.flush()

    asyncio.get_running_loop().run_in_executor(None, copy)
    return path


async def open_incident(slack: LocalSlack, group: Replicas, title: str) -> tuple[int, str]:
    delivery = await slack.send_command(f"start {title}", user_id=ALICE, channel_id=general(slack))
    assert delivery.status == 200, delivery.body
    await slack.wait_for(lambda: any("is open:" in str(e.get("text")) for e in slack.ephemerals), timeout=15)
    row = (await group.rows(incidents))[-1]
    assert row["state"] == "open" and row["channel_id"], row
    return int(row["id"]), str(row["channel_id"])


async def people_entries(group: Replicas, channel: str) -> list[dict[str, Any]]:
    return [r for r in await group.rows(timeline_entries, timeline_entries.c.channel_id == channel)
            if r["kind"] != "system"]


async def resend_on(slack: LocalSlack, lb: LoadBalancer, envelope: dict[str, Any], backend: int,
                    retry_num: int = 1) -> Delivery:
    """Slack's retry of a delivery whose ack it did not get, landing on `backend`."""
    lb.send_next_to(backend)
    return await slack.deliver_event(envelope["event"], event_id=envelope["event_id"], retry_num=retry_num,
                                     retry_reason="http_timeout")


def last_envelope(slack: LocalSlack) -> dict[str, Any]:
    return dict(slack.deliveries[-1]["payload"])


# ---- (a) incident numbers ---------------------------------------------------------------------

async def test_concurrent_starts_at_both_replicas_number_each_incident_once(
    slack: LocalSlack, replicas: ReplicaFactory
) -> None:
    group = await replicas()
    users = (ALICE, BOB, CAROL)
    deliveries = await asyncio.gather(*(
        slack.send_command(f"start Outage {n}", user_id=users[n % 3], channel_id=general(slack)) for n in range(10)))
    assert [d.status for d in deliveries] == [200] * 10
    assert Counter(r.backend for r in group.lb.routed) == {0: 5, 1: 5}

    def opened() -> list[str]:
        return [str(e.get("text")) for e in slack.ephemerals if "is open:" in str(e.get("text"))]

    await slack.wait_for(lambda: len(opened()) == 10, timeout=30)
    rows = await group.rows(incidents)
    assert sorted(r["number"] for r in rows) == list(range(1, 11))
    assert {r["state"] for r in rows} == {"open"}
    channels = {c["id"] for c in slack.channels.values() if str(c["name"]).startswith("inc-")}
    assert len(channels) == 10 and channels == {r["channel_id"] for r in rows}
    assert sorted(t.split(" ")[0] for t in opened()) == sorted(f"INC-{n}" for n in range(1, 11))
    texts = [str(e.get("text")).lower() for e in slack.ephemerals]
    assert not [t for t in texts if any(word in t for word in FAILURE_WORDS)]
    assert group.errors() == []


async def test_two_replicas_started_at_once_on_a_blank_database_migrate_once(
    slack: LocalSlack, replicas: ReplicaFactory
) -> None:
    group = await replicas()  # both spawned at the same moment on blank tables
    assert [p.poll() for p in group.procs] == [None, None]
    versions = Counter(r["version"] for r in await group.rows(schema_migrations))
    assert versions and set(versions.values()) == {1}


# ---- (b) Slack's retry lands on the other replica -------------------------------------------

async def test_a_retry_on_the_other_replica_changes_the_timeline_once(
    slack: LocalSlack, replicas: ReplicaFactory
) -> None:
    group = await replicas()
    _, channel = await open_incident(slack, group, "Payments down")
    lb = group.lb

    lb.send_next_to(0)  # A stores it; its ack is lost; the retry goes to B
    ts, first = await slack.post_message(channel, user=BOB, text="v1")
    posted = last_envelope(slack)
    assert first is not None and first.acked
    assert (await resend_on(slack, lb, posted, backend=1)).acked

    # An http_timeout retry that reaches B while A still holds the first delivery.
    ts2, _ = await slack.post_message(channel, user=CAROL, text="db latency", deliver=False)
    event = payloads.message_event(slack.workspace, channel, slack.workspace.find_message(channel, ts2))
    lb.send_next_to(0, 1)
    both = await asyncio.gather(slack.deliver_event(event, event_id="Ev0CONCURRENT"),
                                slack.deliver_event(event, event_id="Ev0CONCURRENT", retry_num=1))
    assert [d.acked for d in both] == [True, True]

    # Edits v1 -> v2 (at A), v2 -> v3 (at B), then A's edit retried at B: history must not grow.
    lb.send_next_to(0)
    await slack.edit_message(channel, ts, "v2")
    first_edit = last_envelope(slack)
    lb.send_next_to(1)
    await slack.edit_message(channel, ts, "v3")
    assert (await resend_on(slack, lb, first_edit, backend=1)).acked

    lb.send_next_to(1)  # deleted at B, retried at A; then the message's own late retry at A
    await slack.delete_message(channel, ts)
    assert (await resend_on(slack, lb, last_envelope(slack), backend=0)).acked
    assert (await resend_on(slack, lb, posted, backend=0, retry_num=2)).acked

    assert {r.backend for r in lb.routed} == {0, 1} and {"1", "2"} <= {r.retry_num for r in lb.routed}
    entries = await people_entries(group, channel)
    assert Counter(e["ts"] for e in entries) == {ts: 1, ts2: 1}
    edited = next(e for e in entries if e["ts"] == ts)
    assert edited["text"] == "v3" and json.loads(edited["history"]) == ["v1", "v2"]
    assert edited["deleted_at"] is not None
    assert group.errors() == []


async def test_retries_racing_their_originals_on_both_replicas_store_each_message_once(
    slack: LocalSlack, replicas: ReplicaFactory
) -> None:
    group = await replicas()
    _, channel = await open_incident(slack, group, "Queue backlog")
    limit = asyncio.Semaphore(16)

    async def deliver_twice(n: int) -> tuple[str, list[Delivery]]:
        # Each message reaches A and B at the same moment (an http_timeout retry), in the same
        # group commits as its neighbours: duplicate keys meet in concurrent multi-row INSERTs.
        ts, _ = await slack.post_message(channel, user=(BOB, CAROL)[n % 2], text=f"line {n}", deliver=False)
        event = payloads.message_event(slack.workspace, channel, slack.workspace.find_message(channel, ts))
        async with limit:
            group.lb.send_next_to(n % 2, (n + 1) % 2)
            answers = await asyncio.gather(slack.deliver_event(event, event_id=f"Ev0RACE{n:04d}"),
                                           slack.deliver_event(event, event_id=f"Ev0RACE{n:04d}", retry_num=1))
        return ts, list(answers)

    sent = await asyncio.gather(*(deliver_twice(n) for n in range(60)))
    assert all(d.acked for _, answers in sent for d in answers)
    assert Counter(r.backend for r in group.lb.routed if r.retry_num == "1") == {0: 30, 1: 30}

    # Originals all at A in order, their retries all at B in reverse order, all at once: the two
    # replicas' batches take the same keys in opposite orders (PostgreSQL may see a deadlock).
    slack.delivery_timeout = 10.0
    group.lb.policy = lambda headers: 1 if "X-Slack-Retry-Num" in headers else 0
    later = [await slack.post_message(channel, user=BOB, text=f"burst {n}", deliver=False) for n in range(60)]
    events = [payloads.message_event(slack.workspace, channel, slack.workspace.find_message(channel, ts))
              for ts, _ in later]
    burst = await asyncio.gather(
        *(slack.deliver_event(e, event_id=f"Ev0BURST{n:04d}") for n, e in enumerate(events)),
        *(slack.deliver_event(events[n], event_id=f"Ev0BURST{n:04d}", retry_num=1) for n in reversed(range(60))))
    assert all(d.acked for d in burst)

    entries = await people_entries(group, channel)
    assert Counter(e["ts"] for e in entries) == Counter([ts for ts, _ in sent] + [ts for ts, _ in later])
    assert group.errors() == []


# ---- (c) reminders ------------------------------------------------------------------------------



def reminder_posts(slack: LocalSlack) -> Counter[tuple[str, int]]:
    """(owner, task id) -> reminders Slack accepted in that owner's DM."""
    dms = {slack.dm_channel(user): user for user in (BOB, CAROL)}
    found: Counter[tuple[str, int]] = Counter()
    for call in slack.calls_to("chat.postMessage"):
        meta = call.args.get("metadata")
        meta = json.loads(meta) if isinstance(meta, str) else meta
        if call.response.get("ok") and call.args.get("channel") in dms and meta:
            found[(dms[call.args["channel"]], int(meta["event_payload"]["task_id"]))] += 1
    return found


async def test_both_replicas_sweeping_send_each_reminder_once(
    slack: LocalSlack, pg_url: str, replicas: ReplicaFactory
) -> None:
    owners = await seed_due_tasks(pg_url, 12)
    group = await replicas(REMINDER_SWEEP_SECONDS="1", REMINDER_NOT_BEFORE="00:00")
    await slack.wait_for(lambda: len(reminder_posts(slack)) == 12, timeout=30)
    await asyncio.sleep(3.5)  # several more sweeps by each replica
    assert reminder_posts(slack) == Counter({(owner, task): 1 for task, owner in owners.items()})
    rows = await group.rows(reminders)
    assert sorted(r["task_id"] for r in rows) == sorted(owners) and {r["state"] for r in rows} == {"sent"}
    assert group.errors() == []


# ---- (d) SIGKILL mid-stream -----------------------------------------------------------------

async def test_a_replica_killed_mid_stream_loses_nothing_acknowledged(
    slack: LocalSlack, replicas: ReplicaFactory
) -> None:
    group = await replicas()
    _, channel = await open_incident(slack, group, "Checkout slow")
    slack.delivery_timeout = 10.0  # the survivor takes the whole load on 2 shared cores
    limit = asyncio.Semaphore(8)

    async def say(n: int) -> tuple[str, Delivery | None]:
        async with limit:
            return await slack.post_message(channel, user=(BOB, CAROL)[n % 2], text=f"update {n}")

    talk = [asyncio.create_task(say(n)) for n in range(200)]
    await slack.wait_for(lambda: sum(r.backend == 0 and r.status == 200 for r in group.lb.routed) >= 30, timeout=30)
    group.procs[0].kill()  # SIGKILL: no shutdown, no flush
    sent = await asyncio.gather(*talk)
    acked = [ts for ts, delivery in sent if delivery is not None and delivery.acked]
    by_backend = Counter(r.backend for r in group.lb.routed if r.status == 200)
    assert by_backend[0] >= 30 and by_backend[1] >= 30

    stored = Counter(e["ts"] for e in await people_entries(group, channel))
    assert all(stored[ts] == 1 for ts in acked), "an acknowledged message is missing or doubled"
    unacked = len(sent) - len(acked)
    for _ in range(3):
        if slack.pending_redeliveries:
            await slack.redeliver_unacked()  # the balancer sends them to the survivor
    assert not slack.pending_redeliveries and not slack.dropped_deliveries

    entries = await people_entries(group, channel)
    assert Counter(e["ts"] for e in entries) == Counter(ts for ts, _ in sent)
    assert sorted(e["text"] for e in entries) == sorted(f"update {n}" for n in range(200))
    print(f"acked at once: {len(acked)}, redelivered after the kill: {unacked}, acks by replica: {dict(by_backend)}")


# ---- (e) postmortem publish -------------------------------------------------------------------

def close_answers(now: datetime) -> dict[str, Any]:
    return {
        "impact": "30% of checkouts failed with HTTP 500",
        "impact_start": now - timedelta(minutes=30),
        "impact_end": now - timedelta(minutes=1),
        "root_cause": "A load balancer change routed traffic to drained backends.",
        "resolution": "Reverted the load balancer configuration.",
        "improvements": "Review LB changes",
        "task_description_1": "Audit all LB configurations",
        "task_owner_1": BOB,
        "task_due_1": (now + timedelta(days=7)).date(),
    }


def summaries(slack: LocalSlack, channel: str, ref: str) -> int:
    return sum(1 for m in slack.messages(channel) for b in m.get("blocks") or []
               if b.get("type") == "header" and str(b["text"]["text"]).startswith(f"{ref} postmortem"))


async def test_a_close_with_both_replicas_running_publishes_once(
    slack: LocalSlack, replicas: ReplicaFactory
) -> None:
    group = await replicas()
    _, channel = await open_incident(slack, group, "Checkout returns 500s")
    await slack.post_message(channel, user=BOB, text="500s on /checkout")
    assert (await slack.send_command("close", user_id=ALICE, channel_id=channel)).status == 200
    await slack.wait_for(lambda: any(v["view"].get("callback_id") == "incident_close" for v in slack.views.values()),
                         timeout=15)
    record = open_view(slack, "incident_close")
    values = fill_view(record["view"], close_answers(datetime.now(UTC)))
    group.lb.send_next_to(0, 1)  # the same submission reaches both replicas at once
    both = await asyncio.gather(slack.submit_view(record["id"], values, user_id=ALICE),
                                slack.submit_view(record["id"], values, user_id=ALICE))
    assert all(d.status == 200 for d in both)

    def files() -> list[dict[str, Any]]:
        return [f for f in slack.files.values() if channel in f["channels"]]

    await slack.wait_for(lambda: len(files()) >= 1 and summaries(slack, channel, "INC-1") >= 1, timeout=20)
    await asyncio.sleep(2)  # time for a second publish, if one were coming
    assert len(files()) == 1 and summaries(slack, channel, "INC-1") == 1
    assert summaries(slack, general(slack), "INC-1") == 1
    assert (await group.rows(incidents))[0]["state"] == "closed"
    assert not [e for e in slack.ephemerals if any(w in str(e.get("text")).lower() for w in FAILURE_WORDS)]
    assert group.errors() == []


async def test_an_alert_delivered_fifty_times_to_both_replicas_opens_one_incident(
    slack: LocalSlack, replicas: ReplicaFactory
) -> None:
    token = "replica-alert-token"
    group = await replicas(ALERT_WEBHOOK_TOKEN=token, ALERT_CHANNEL=general(slack))
    body = ALERT_SAMPLE.read_bytes()  # noqa: ASYNC240 - a small local file
    backends = group.lb.backends

    async def deliver(n: int) -> dict[str, Any]:
        async with aiohttp.ClientSession() as http, http.post(
            f"{backends[n % 2]}/alerts/alertmanager", data=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        ) as answer:
            assert answer.status == 202
            return dict(await answer.json())

    answers = await asyncio.gather(*(deliver(n) for n in range(50)))
    assert {a["incident"] for a in answers} == {"INC-1"} and sum(a["created"] for a in answers) == 1
    for _ in range(150):  # the outbox of either replica opens the channel and posts the alert
        [row] = await group.rows(incidents)
        if row["state"] == "open" and len(slack.messages(str(row["channel_id"]))) >= 2:
            break
        await asyncio.sleep(0.1)
    assert row["state"] == "open" and len(await group.rows(incidents)) == 1
    assert [c["name"] for c in slack.channels.values() if c["name"].startswith("inc-")] == [row["channel_name"]]
    alert_posts = [m for m in slack.messages(str(row["channel_id"])) if "Alertmanager" in str(m.get("text"))]
    assert len(alert_posts) == 1 and not group.errors()
