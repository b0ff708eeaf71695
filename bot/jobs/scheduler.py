"""APScheduler only drives the sweep; it holds no reminder state of its own."""

from __future__ import annotations

import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.jobs.sweep import sweep
from bot.services.context import Context

log = logging.getLogger(__name__)


def start_scheduler(ctx: Context) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")

    async def run_sweep() -> None:
        report = await sweep(ctx)
        if report.reminders_sent or report.undeliverable or report.digests or report.nudges or report.errors:
            log.info("sweep: %s", report)

    scheduler.add_job(
        run_sweep,
        "interval",
        seconds=ctx.settings.reminder_sweep_seconds,
        id="reminder-sweep",
        max_instances=1,
        coalesce=True,
        next_run_time=None,
    )
    scheduler.start()
    job = scheduler.get_job("reminder-sweep")
    if job is not None:
        job.modify(next_run_time=ctx.clock.now())
    return scheduler
