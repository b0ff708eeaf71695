"""Closing an incident: store what people entered, tell the channel, publish the postmortem."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain import rules
from bot.domain.models import CloseForm, Incident, NewTask, Task
from bot.domain.outbox import NewStep, StepsFor
from bot.services import postmortem, steps
from bot.services.context import Context
from bot.ui import messages


async def close(
    ctx: Context, incident: Incident, form: CloseForm, new_tasks: list[NewTask], actor_channel: str | None = None
) -> Incident | None:
    """Closes once (a second submission finds it closed and changes nothing). The answers, the
    tasks and every Slack step that follows (task posts, the closing post, the summary, the
    postmortem file and its summaries) are stored in one transaction; the outbox does the rest,
    however long Slack takes."""
    today = rules.local_day(ctx.clock.now(), ctx.tz)
    planned = [(t, rules.first_reminder_day(t.due_date, today)) for t in new_tasks]
    result = await ctx.store.close_incident(incident, form, planned, _steps_of_close(form, actor_channel))
    if result is None:
        return None
    closed, _ = result
    ctx.recording.forget(closed.channel_id)
    ctx.outbox.kick()
    return closed


def _steps_of_close(form: CloseForm, actor_channel: str | None) -> StepsFor:
    def steps_for(closed: Incident, tasks: Sequence[Task]) -> list[NewStep]:
        who, at = form.submitted_by, form.submitted_at
        said = [steps.announce_task(t, "added", who, at) for t in tasks]
        closing = messages.closed_post(closed, who)
        said.append(steps.post(closed, closing, at, who, actor_channel=actor_channel))
        said.append(steps.refresh(closed, at))
        said.append(steps.stakeholders(closed, closing, at))
        return said + postmortem.publish_steps(closed, (who, actor_channel or closed.channel_id), at)

    return steps_for
