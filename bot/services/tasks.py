"""Corrective tasks: adding, completing, snoozing."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain import rules
from bot.domain.models import Incident, NewTask, Task
from bot.services import steps
from bot.services.context import Context


async def add_tasks(
    ctx: Context, incident: Incident, new_tasks: Sequence[NewTask], user_id: str
) -> list[Task]:
    today = rules.local_day(ctx.clock.now(), ctx.tz)
    planned = [(t, rules.first_reminder_day(t.due_date, today)) for t in new_tasks]
    now = ctx.clock.now()
    created = await ctx.store.add_tasks(
        incident, planned, user_id, now, lambda _, made: [steps.announce_task(t, "added", user_id, now) for t in made]
    )
    ctx.outbox.kick()  # each new task is said in the incident channel and becomes a timeline entry
    return created


async def complete(ctx: Context, task_id: int, user_id: str) -> tuple[Task, Incident] | None:
    """Marks the task done once; None when it already was (a second click changes nothing)."""
    now = ctx.clock.now()
    task = await ctx.store.complete_task(
        task_id, user_id, now, lambda t: [steps.announce_task(t, "done", user_id, now)]
    )
    if task is None:
        return None
    ctx.outbox.kick()
    incident = await ctx.store.incident_by_id(task.incident_id)
    assert incident is not None
    return task, incident


async def snooze(ctx: Context, task_id: int, days: int) -> Task | None:
    today = rules.local_day(ctx.clock.now(), ctx.tz)
    return await ctx.store.reschedule_task(task_id, rules.snoozed_until(today, days))
