"""APScheduler only drives the sweep and the reconcile passes; it holds no state of its own."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.jobs.sweep import sweep
from bot.services.context import Context
from bot.services.reconcile import Reconciler

log = logging.getLogger(__name__)
JOB_ID = "reminder-sweep"
RECONCILE_JOB_ID = "reconcile"
PRUNE_EVERY_HOURS = 6
# Slack retries an event for minutes, not days: a week of event ids is plenty to spot a retry.
EVENT_MEMORY = timedelta(days=7)


class SweepSchedule:
    """Runs the sweep every REMINDER_SWEEP_SECONDS and a reconcile pass every RECONCILE_SECONDS,
    both first right away; on stop, lets a running sweep finish and stops a reconcile pass (it
    is only reading, and the next start reads again)."""

    def __init__(self, ctx: Context, reconciler: Reconciler) -> None:
        self.ctx = ctx
        self.reconciler = reconciler
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self._running: asyncio.Task[object] | None = None
        self._reconciling: set[asyncio.Task[object]] = set()

    def start(self) -> None:
        self.scheduler.add_job(
            self._run_sweep,
            "interval",
            seconds=self.ctx.settings.reminder_sweep_seconds,
            id=JOB_ID,
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.add_job(
            self._run_reconcile,
            "interval",
            seconds=self.ctx.settings.reconcile_seconds,
            id=RECONCILE_JOB_ID,
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.add_job(self._prune, "interval", hours=PRUNE_EVERY_HOURS, id="prune-events", coalesce=True)
        self.scheduler.start()
        for job_id in (JOB_ID, RECONCILE_JOB_ID):
            job = self.scheduler.get_job(job_id)
            if job is not None:
                job.modify(next_run_time=self.ctx.clock.now())  # a first run right away

    async def _run_sweep(self) -> None:
        self._running = asyncio.current_task()
        report = await sweep(self.ctx)
        if report.reminders_sent or report.undeliverable or report.digests or report.nudges or report.errors:
            log.info("sweep: %s", report)

    async def _run_reconcile(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._track(task)
        await self.reconciler.run()

    def reconcile_soon(self) -> None:
        """A pass now, beside the schedule (after a Socket Mode reconnection). If one is running,
        the reconciler runs another right after it."""
        self._track(asyncio.get_running_loop().create_task(self.reconciler.run(), name="reconcile"))

    def _track(self, task: asyncio.Task[object]) -> None:
        self._reconciling.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._reconciling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The top of a background task: nobody awaits it, so its failure is said here.
            log.error("reconcile pass failed", exc_info=task.exception())

    async def _prune(self) -> None:
        pruned = await self.ctx.store.prune_events(self.ctx.clock.now() - EVENT_MEMORY)
        if pruned:
            log.info("forgot %d event ids older than %s", pruned, EVENT_MEMORY)

    async def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        reconciling = {t for t in self._reconciling if not t.done()}
        for task in reconciling:
            task.cancel()
        if reconciling:
            await asyncio.wait(reconciling)
        running = self._running
        if running is not None and not running.done():
            await asyncio.wait({running})


def start_scheduler(ctx: Context, reconciler: Reconciler) -> SweepSchedule:
    schedule = SweepSchedule(ctx, reconciler)
    schedule.start()
    return schedule
