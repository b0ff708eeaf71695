"""APScheduler only drives the sweep; it holds no reminder state of its own."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.jobs.sweep import sweep
from bot.services.context import Context

log = logging.getLogger(__name__)
JOB_ID = "reminder-sweep"
PRUNE_EVERY_HOURS = 6
# Slack retries an event for minutes, not days: a week of event ids is plenty to spot a retry.
EVENT_MEMORY = timedelta(days=7)


class SweepSchedule:
    """Runs the sweep every REMINDER_SWEEP_SECONDS; on stop, lets a running sweep finish."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self._running: asyncio.Task[object] | None = None

    def start(self) -> None:
        self.scheduler.add_job(
            self._run_sweep,
            "interval",
            seconds=self.ctx.settings.reminder_sweep_seconds,
            id=JOB_ID,
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.add_job(self._prune, "interval", hours=PRUNE_EVERY_HOURS, id="prune-events", coalesce=True)
        self.scheduler.start()
        job = self.scheduler.get_job(JOB_ID)
        if job is not None:
            job.modify(next_run_time=self.ctx.clock.now())  # a first sweep right away

    async def _run_sweep(self) -> None:
        self._running = asyncio.current_task()
        report = await sweep(self.ctx)
        if report.reminders_sent or report.undeliverable or report.digests or report.nudges or report.errors:
            log.info("sweep: %s", report)

    async def _prune(self) -> None:
        pruned = await self.ctx.store.prune_events(self.ctx.clock.now() - EVENT_MEMORY)
        if pruned:
            log.info("forgot %d event ids older than %s", pruned, EVENT_MEMORY)

    async def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        running = self._running
        if running is not None and not running.done():
            await asyncio.wait({running})


def start_scheduler(ctx: Context) -> SweepSchedule:
    schedule = SweepSchedule(ctx)
    schedule.start()
    return schedule
