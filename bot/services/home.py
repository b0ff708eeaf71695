"""Publishing a person's App Home. Slack rate-limits views.publish, and the tab is opened often:
a person's home is published at most once per THROTTLE_SECONDS, except right after they acted
in it (a click must show its effect)."""

from __future__ import annotations

import time

from bot.domain import rules
from bot.domain.models import Incident, State, Task
from bot.services import visibility
from bot.services.context import Context
from bot.ui.home import home_view

THROTTLE_SECONDS = 10.0
RECENT_POSTMORTEMS = 5


async def publish(ctx: Context, user_id: str, *, acted: bool = False) -> bool:
    """Publishes the home; False when it was published a moment ago (throttled)."""
    last = ctx.home_published.get(user_id)
    if not acted and last is not None and time.monotonic() - last < THROTTLE_SECONDS:
        return False
    ctx.home_published[user_id] = time.monotonic()
    now = ctx.clock.now()
    tasks = await _tasks_with_incidents(ctx, user_id)
    open_ = await visibility.visible_to(ctx, user_id, await ctx.store.list_incidents(ctx.team_id, [State.OPEN]))
    closed = await ctx.store.list_incidents(ctx.team_id, [State.CLOSED], limit=RECENT_POSTMORTEMS * 3)
    recent = (await visibility.visible_to(ctx, user_id, closed))[:RECENT_POSTMORTEMS]
    view = home_view(tasks, open_, recent, rules.local_day(now, ctx.tz), ctx.tz)
    await ctx.slack.call("views.publish", user_id=user_id, view=view)
    return True


async def _tasks_with_incidents(ctx: Context, user_id: str) -> list[tuple[Task, Incident]]:
    tasks = await ctx.store.open_tasks_of_owner(ctx.team_id, user_id)
    incidents: dict[int, Incident | None] = {}
    paired = []
    for task in tasks:
        if task.incident_id not in incidents:
            incidents[task.incident_id] = await ctx.store.incident_by_id(task.incident_id)
        incident = incidents[task.incident_id]
        if incident is not None:
            paired.append((task, incident))
    return paired
