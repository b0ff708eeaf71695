"""Reading incident channels back from Slack's history to record what events missed.

Slack gives up on an event after three retries in about five minutes, so a bot that was down
longer (a deploy, a crash loop, a database outage) has holes in its timelines that only the
channel's history can fill. Each pass reads the whole history of every channel still recording
(and of incidents closed less than a day ago, up to their close), and the replies of every
thread with replies newer than the timeline holds. `oldest` filters on a message's own ts, so
reading only from the newest entry held would miss edits of older messages and new replies to
older threads; reading it all costs one call per 200 messages, paced below Slack's Tier 3.

What it finds goes through the same keys as live events, (team, channel, ts): a message that
arrives both ways is stored once. An edit shows up as the message's current text. A message held
but gone from history stays: only a deletion event removes one from the timeline."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bot import slack_messages
from bot.domain.models import Incident, State, TimelineEntry
from bot.domain.rules import ts_to_datetime
from bot.services import timeline
from bot.services.context import Context
from bot.slack_api import SlackError
from storage.reconcile import HeldMessage

log = logging.getLogger(__name__)

HISTORY_PAGE = 200  # Slack recommends no more than 200 messages a page
# Tier 3 allows about 50 calls a minute per method and workspace; stay below it on our own,
# and wait out a 429 when Slack says so anyway (another replica reads too).
CALLS_PER_MINUTE = 45
BURST = 10
RECENTLY_CLOSED = timedelta(days=1)
CHANNEL_SLACK_BEFORE_DECLARE = timedelta(minutes=1)  # clocks differ; the channel comes after
RECORD_CHUNK = 200  # entries handed to the group-commit writer at once; live events interleave
MAX_ATTEMPTS = 6


class Pacer:
    """A token bucket: at most BURST calls at once, then CALLS_PER_MINUTE."""

    def __init__(
        self,
        per_minute: float = CALLS_PER_MINUTE,
        burst: int = BURST,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.tokens = float(burst)
        self.monotonic = monotonic
        self.updated = monotonic()
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            self._refill()
            if self.tokens < 1:
                await asyncio.sleep((1 - self.tokens) / self.rate)
                self._refill()
            self.tokens -= 1

    def _refill(self) -> None:
        now = self.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now


@dataclass
class ReconcileReport:
    channels: int = 0
    calls: int = 0
    added: int = 0
    edited: int = 0
    failed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.edited or self.failed)


class Reconciler:
    """One pass at a time per process; a pass asked for while one runs follows right after it,
    so a reconnection during a pass is never folded into reads made before it."""

    def __init__(self, ctx: Context, pacer: Callable[[], Pacer] = Pacer) -> None:
        self.ctx = ctx
        # Tier 3 limits each method on its own: history and replies each get a bucket.
        self.pacers = {method: pacer() for method in ("conversations.history", "conversations.replies")}
        self._lock = asyncio.Lock()
        self._again = False

    async def run(self) -> ReconcileReport:
        if self._lock.locked():
            self._again = True
            return ReconcileReport()
        async with self._lock:
            try:
                report = await self._pass()
                while self._again:
                    self._again = False
                    report = await self._pass()
            finally:
                self._again = False
        if report:
            log.info("reconcile: %s", report)
        return report

    async def _pass(self) -> ReconcileReport:
        report = ReconcileReport()
        closed_after = self.ctx.clock.now() - RECENTLY_CLOSED
        for incident in await self.ctx.store.reconcile.incidents_to_reconcile(self.ctx.team_id, closed_after):
            report.channels += 1
            try:
                await ChannelPass(self, incident, report).run()
            except SlackError as exc:
                # The next pass reads the whole channel again: nothing read so far is lost.
                log.warning("reconcile %s stopped: %s", incident.ref, exc)
                report.failed.append(f"{incident.ref}: {exc.code}")
        return report

    async def call(self, report: ReconcileReport, method: str, **args: Any) -> dict[str, Any]:
        """A paced call. A rate limit is waited out however often it comes (a page is never
        skipped); other transient failures are tried MAX_ATTEMPTS times, then the pass moves
        on to the next channel and the next pass reads this one again."""
        failures = 0
        while True:
            await self.pacers[method].wait()
            report.calls += 1
            try:
                return await self.ctx.slack.call(method, **args)
            except SlackError as exc:
                if exc.code != "ratelimited":
                    failures += 1
                if not exc.transient or failures >= MAX_ATTEMPTS:
                    raise
                await asyncio.sleep(exc.retry_after or min(2.0 ** max(failures, 1), 30.0))


class ChannelPass:
    """One incident channel read against what its timeline holds."""

    def __init__(self, reconciler: Reconciler, incident: Incident, report: ReconcileReport) -> None:
        assert incident.channel_id is not None, "only incidents with a channel are reconciled"
        self.reconciler = reconciler
        self.ctx = reconciler.ctx
        self.incident = incident
        self.channel = incident.channel_id
        self.report = report
        self.held: dict[str, HeldMessage] = {}
        self.newest_reply: dict[str, str] = {}  # thread ts → newest reply the timeline holds
        # A closed incident takes only what was said before it closed.
        closed = incident.closed_at if incident.state is State.CLOSED else None
        self.latest = _as_ts(closed) if closed else None

    async def run(self) -> None:
        self.held = await self.ctx.store.reconcile.held_messages(self.ctx.team_id, self.channel)
        for ts, held in self.held.items():
            if held.thread_ts and held.thread_ts != ts:
                self.newest_reply[held.thread_ts] = max(ts, self.newest_reply.get(held.thread_ts, ts), key=Decimal)
        oldest = _as_ts(self.incident.started_at - CHANNEL_SLACK_BEFORE_DECLARE)
        changed_threads: dict[str, str] = {}  # a parent seen on two pages is read once
        async for page in self._pages("conversations.history", oldest=oldest, latest=self.latest):
            await self._apply(page)
            changed_threads.update((m["ts"], since) for m in page if (since := self._newest_reply_held(m)))
        for thread_ts, since in changed_threads.items():
            async for page in self._pages("conversations.replies", ts=thread_ts, oldest=since, latest=self.latest):
                await self._apply([m for m in page if m.get("ts") != thread_ts])

    def _newest_reply_held(self, parent: dict[str, Any]) -> str | None:
        """For a thread with replies the timeline lacks: the ts to read its replies from."""
        if not parent.get("reply_count") or not parent.get("latest_reply"):
            return None
        newest = self.newest_reply.get(str(parent["ts"]), str(parent["ts"]))
        return newest if Decimal(str(parent["latest_reply"])) > Decimal(newest) else None

    async def _pages(self, method: str, **args: Any) -> AsyncIterator[list[dict[str, Any]]]:
        cursor: str | None = None
        while True:
            data = await self.reconciler.call(
                self.report, method, channel=self.channel, limit=HISTORY_PAGE, inclusive=True, cursor=cursor, **args
            )
            yield [m for m in data.get("messages") or [] if isinstance(m, dict)]
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return

    async def _apply(self, messages: list[dict[str, Any]]) -> None:
        new: list[TimelineEntry] = []
        for message in messages:
            if not slack_messages.is_people_message(self.ctx.identity, message):
                continue
            entry = slack_messages.entry_from_message(message, self.channel, self.incident.id)
            held = self.held.get(entry.ts)
            if held is None:
                new.append(entry)
            elif not held.deleted and held.text != entry.text:
                await timeline.record_edit(self.ctx, entry.model_copy(update={"edited_at": _edited_at(message)}), None)
                self.report.edited += 1
            self.held[entry.ts] = HeldMessage(entry.text, entry.thread_ts, held.deleted if held else False)
        for start in range(0, len(new), RECORD_CHUNK):
            chunk = new[start : start + RECORD_CHUNK]
            stored = await asyncio.gather(*(timeline.record(self.ctx, e, None) for e in chunk))
            self.report.added += sum(stored)


def _edited_at(message: dict[str, Any]) -> datetime | None:
    edited = message.get("edited") or {}
    return ts_to_datetime(str(edited["ts"])) if edited.get("ts") else None


def _as_ts(moment: datetime) -> str:
    return f"{moment.timestamp():.6f}"
