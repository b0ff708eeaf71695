"""Corrective tasks: adding, completing, snoozing."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain import rules
from bot.domain.models import Incident, NewTask, Task
from bot.services.context import Context
from bot.services.incidents import record_system
from bot.ui import messages


async def add_tasks(
    ctx: Context, incident: Incident, new_tasks: Sequence[NewTask], user_id: str
) -> list[Task]:
    today = rules.local_day(ctx.clock.now(), ctx.tz)
    planned = [(t, rules.first_reminder_day(t.due_date, today)) for t in new_tasks]
    created = await ctx.store.add_tasks(incident, planned, user_id, ctx.clock.now())
    await announce_tasks(ctx, incident, created, user_id)
    return created


async def announce_tasks(ctx: Context, incident: Incident, created: Sequence[Task], user_id: str) -> None:
    """Each new task is said in the incident channel and becomes a timeline entry."""
    for task in created:
        await _post_and_record(ctx, incident, messages.task_added(task, user_id), user_id)


async def complete(ctx: Context, task_id: int, user_id: str) -> tuple[Task, Incident] | None:
    """Marks the task done once; None when it already was (a second click changes nothing)."""
    task = await ctx.store.complete_task(task_id, user_id, ctx.clock.now())
    if task is None:
        return None
    incident = await ctx.store.incident_by_id(task.incident_id)
    assert incident is not None
    await _post_and_record(ctx, incident, messages.task_done(task, user_id), user_id)
    return task, incident


async def snooze(ctx: Context, task_id: int, days: int) -> Task | None:
    today = rules.local_day(ctx.clock.now(), ctx.tz)
    return await ctx.store.reschedule_task(task_id, rules.snoozed_until(today, days))


async def _post_and_record(ctx: Context, incident: Incident, text: str, user_id: str) -> None:
    if not incident.channel_id:
        return
    ts = await ctx.slack.post(incident.channel_id, text)
    await record_system(ctx, incident, ts, text, at=ctx.clock.now(), author=user_id)
