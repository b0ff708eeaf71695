"""Corrective tasks: adding, completing, snoozing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.domain import rules
from bot.domain.models import Incident, NewTask, Task
from bot.domain.outbox import NewStep
from bot.services import steps
from bot.services.context import Context

Message = tuple[str, str]  # (channel, ts) of a message the bot posted


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


async def complete(ctx: Context, task_id: int, user_id: str, reminder: Message | None = None) -> Task | None:
    """Marks the task done once, says so in its channel and rewrites the reminder it was clicked
    in; None when it was done already (a second click changes nothing but the reminder)."""
    now = ctx.clock.now()

    def said(task: Task) -> list[NewStep]:
        return [steps.announce_task(task, "done", user_id, now), *_rewrite(task, reminder, now)]

    task = await ctx.store.complete_task(task_id, user_id, now, said)
    if task is None and (existing := await ctx.store.task(task_id)) is not None:
        await ctx.store.outbox.enqueue(ctx.team_id, _rewrite(existing, reminder, now))
    ctx.outbox.kick()
    return task


async def snooze(ctx: Context, task_id: int, days: int, reminder: Message | None = None) -> Task | None:
    now = ctx.clock.now()
    until = rules.snoozed_until(rules.local_day(now, ctx.tz), days)
    task = await ctx.store.reschedule_task(task_id, until, lambda t: _rewrite(t, reminder, now))
    ctx.outbox.kick()
    return task


def _rewrite(task: Task, reminder: Message | None, at: datetime) -> list[NewStep]:
    return [steps.update_reminder(task, reminder, at)] if reminder else []
