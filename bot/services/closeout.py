"""Closing an incident: store what people entered, tell the channel, publish the postmortem."""

from __future__ import annotations

from bot.domain import rules
from bot.domain.models import CloseForm, Incident, NewTask, Task
from bot.services import postmortem
from bot.services.context import Context
from bot.services.incidents import record_system, refresh_summary
from bot.services.notify import tell
from bot.services.tasks import announce_tasks
from bot.slack_api import SlackError
from bot.ui import messages


async def close(
    ctx: Context, incident: Incident, form: CloseForm, new_tasks: list[NewTask]
) -> Incident | None:
    """Closes once (a second submission finds it closed and changes nothing)."""
    today = rules.local_day(ctx.clock.now(), ctx.tz)
    planned = [(t, rules.first_reminder_day(t.due_date, today)) for t in new_tasks]
    result = await ctx.store.close_incident(incident, form, planned)
    if result is None:
        return None
    closed, tasks = result
    ctx.recording.forget(closed.channel_id)
    try:
        await _announce_and_publish(ctx, closed, tasks, form)
    except SlackError as exc:
        # The answers are committed; only Slack's side is missing. Say how to finish it.
        await tell(ctx, form.submitted_by, closed.channel_id, {"text": messages.publish_failed(closed, str(exc))})
    return closed


async def _announce_and_publish(ctx: Context, closed: Incident, tasks: list[Task], form: CloseForm) -> None:
    assert closed.channel_id is not None
    await announce_tasks(ctx, closed, tasks, form.submitted_by)
    text = messages.closed_post(closed, form.submitted_by)
    ts = await ctx.slack.post(closed.channel_id, text)
    await record_system(ctx, closed, ts, text, at=form.submitted_at, author=form.submitted_by)
    await refresh_summary(ctx, closed)
    await postmortem.publish(ctx, closed)
