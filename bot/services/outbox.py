"""The outbox worker: carries out stored Slack steps until Slack confirms each.

A service stores a step in the transaction of the change that calls for it and kicks the worker;
the worker (in this process or any other on the same database) claims it under a lease, runs
it, and marks it done. A transient failure (429, 5xx, timeout) waits and tries again with
backoff; a permanent one (channel_not_found, not_in_channel, is_archived, …) stops, and the
person who acted is told once. Steps of one lane (an incident's channel) run in the order they
were stored, so the channel reads as things happened."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bot.domain.outbox import CLAIM_LEASE, Step, StepKind, backoff
from bot.services.context import Context
from bot.services.notify import tell
from bot.slack_api import SlackError
from bot.ui import messages
from storage import DATABASE_ERRORS

log = logging.getLogger(__name__)

# A person waits to see these; the rest appear on their own without a word (a note, a change
# post), and telling for each of them would flood the person while Slack rate-limits.
TELL_WHEN_SLOW = frozenset({StepKind.UPLOAD_POSTMORTEM})
POLL_SECONDS = 1.0  # how soon a step stored by another replica, or one backing off, is seen
BATCH = 20
CONCURRENT_LANES = 4


class TryLater(Exception):
    """A handler's word that its step cannot run just now (not Slack's failure): back off."""


class Progress:
    """What a step of several calls has done so far, kept in the database as it goes."""

    def __init__(self, ctx: Context, step: Step, worker: str) -> None:
        self.ctx = ctx
        self.step = step
        self.worker = worker
        self.data: dict[str, Any] = dict(step.progress)

    async def save(self, **values: Any) -> None:
        self.data.update(values)
        await self.ctx.store.outbox.save_progress(self.step.id, self.worker, self.data)


Handler = Callable[[Context, Step, Progress], Awaitable[None]]


class OutboxWorker:
    def __init__(self, ctx: Context, handlers: dict[StepKind, Handler]) -> None:
        self.ctx = ctx
        self.handlers = handlers
        self.name = f"worker-{uuid.uuid4().hex[:12]}"
        self._task: asyncio.Task[None] | None = None
        self._running: dict[int, asyncio.Task[None]] = {}  # step id -> its attempt, from any caller

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="outbox-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                await self.fill()
            except DATABASE_ERRORS as exc:
                # The steps wait in the database; they go out once it answers again.
                log.warning("outbox: database unreachable (%s); trying again shortly", type(exc).__name__)
            await self._wait_for_work()

    async def _wait_for_work(self) -> None:
        """Until a step is stored (a kick), an attempt ends (a free slot, and maybe its lane's
        next step), or the poll comes round (another replica's steps, the end of a backoff)."""
        kicked = asyncio.ensure_future(self.ctx.outbox.wait())
        await asyncio.wait({kicked, *self._running.values()}, timeout=POLL_SECONDS,
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        kicked.cancel()

    async def fill(self) -> int:
        """Starts an attempt for each step that may run now, while slots are free (one step per
        lane at a time: a lane's next step is due only once the one before it is settled). A
        slow step holds its own slot, never the others'. Returns how many it started."""
        free = CONCURRENT_LANES - len(self._running)
        if free <= 0:
            return 0
        due = await self.ctx.store.outbox.due(self.ctx.clock.now(), BATCH)
        fresh = [step for step in due if step.id not in self._running][:free]
        for step in fresh:
            attempt = asyncio.create_task(self._attempt(step))
            self._running[step.id] = attempt
            attempt.add_done_callback(functools.partial(self._settled, step.id))
        return len(fresh)

    def _settled(self, step_id: int, _attempt: asyncio.Task[None]) -> None:
        self._running.pop(step_id, None)

    async def settle(self, timeout: float) -> bool:
        """Runs steps until none is due now (steps backing off do not count); for shutdown,
        tests and the demo. False if time ran out first."""
        try:
            async with asyncio.timeout(timeout):
                while await self.fill() or self._running:
                    if self._running:
                        await asyncio.wait(set(self._running.values()), return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            return False
        except DATABASE_ERRORS:
            return False  # no database to ask what is due
        return True

    async def _attempt(self, due: Step) -> None:
        now = self.ctx.clock.now()
        step = await self.ctx.store.outbox.claim(due.id, self.name, now, now + CLAIM_LEASE)
        if step is None:
            return  # another worker has it, or finished it
        try:
            await self.handlers[step.kind](self.ctx, step, Progress(self.ctx, step, self.name))
        except SlackError as exc:
            await self._failed(step, exc)
            return
        except TryLater as exc:
            again_at = self.ctx.clock.now() + backoff(step.attempts, None)
            await self.ctx.store.outbox.retry_later(step.id, self.name, again_at, str(exc))
            return
        except asyncio.CancelledError:
            # Shutting down mid-step: give the claim back so the next start need not wait
            # out the lease (the step's own checks make the repeat harmless).
            await asyncio.shield(self.ctx.store.outbox.retry_later(step.id, self.name, now, "interrupted"))
            raise
        await self.ctx.store.outbox.finish(step.id, self.name, self.ctx.clock.now())

    async def _failed(self, step: Step, exc: SlackError) -> None:
        now = self.ctx.clock.now()
        if exc.transient:
            log.info("step %s (%s) will be retried: %s", step.id, step.kind, exc)
            again_at = now + backoff(step.attempts, exc.retry_after)
            await self.ctx.store.outbox.retry_later(step.id, self.name, again_at, str(exc))
            if step.attempts == 1 and step.kind in TELL_WHEN_SLOW:
                await self._tell(step, messages.slack_is_slow(step.kind))
            return
        log.warning("step %s (%s) refused by Slack for good: %s", step.id, step.kind, exc)
        if await self.ctx.store.outbox.fail(step.id, self.name, now, str(exc)):
            await self._tell(step, messages.step_refused(step.kind, exc.code))

    async def _tell(self, step: Step, text: str) -> None:
        if step.actor_id:
            await tell(self.ctx, step.actor_id, step.actor_channel, {"text": text})
