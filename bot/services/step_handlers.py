"""How the outbox worker carries out each kind of step.

Every handler may run more than once for one step (a worker can die after Slack acted and
before the step was marked done), so each makes repeating itself harmless: a post carries its
step's key in its metadata and a retry looks for it before posting again; the summary refresh
writes the same state twice; the postmortem upload checks whether its file was shared."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.domain.models import EntryKind, Incident, State, TaskStatus, TimelineEntry
from bot.domain.outbox import Step
from bot.services import incidents
from bot.services.context import Context
from bot.services.incidents import refresh_summary
from bot.services.outbox import Progress, TryLater
from bot.services.steps import LEADING_EMOJI
from bot.slack_api import SlackError
from bot.ui import messages, task_messages

STEP_EVENT = "incident_bot_step"
# A retried post is looked for from a little before its step was stored (clocks differ).
LOOK_BACK = timedelta(minutes=1)


async def post_once(ctx: Context, step_: Step, progress: Progress, channel: str, text: str,
                    blocks: list[dict[str, Any]] | None = None, thread_ts: str | None = None) -> str:  # fmt: skip
    """Posts the step's message once: an attempt after one that may have reached Slack first
    looks for the message stamped with the step's key."""
    ts = progress.data.get("ts")
    if ts:
        return str(ts)
    stamp = {"key": step_.key}
    if step_.may_have_acted:
        since = f"{(step_.at - LOOK_BACK).timestamp():.6f}"
        ts = await ctx.slack.find_posted(channel, STEP_EVENT, stamp, since, thread_ts)
    if not ts:
        metadata = {"event_type": STEP_EVENT, "event_payload": stamp}
        ts = await ctx.slack.post(channel, text, blocks, metadata=metadata, thread_ts=thread_ts)
    await progress.save(ts=ts)
    return str(ts)


async def run_post(ctx: Context, step_: Step, progress: Progress) -> None:
    p = step_.payload
    incident = await _incident(ctx, int(p["incident_id"]))
    channel = p.get("channel") or incident.channel_id
    if not channel:
        raise TryLater("the incident's channel is not made yet")
    ts = await post_once(ctx, step_, progress, str(channel), str(p["text"]), p.get("blocks"))
    if p.get("record") is False:
        return  # a nudge: said in the channel, not part of what happened
    await _record(ctx, incident, ts, datetime.fromisoformat(p["said_at"]), EntryKind(p["entry_kind"]), p["author"],
                  str(p["entry_text"]), p.get("author_name"))  # fmt: skip


async def run_announce_task(ctx: Context, step_: Step, progress: Progress) -> None:
    p = step_.payload
    task = await ctx.store.task(int(p["task_id"]))
    if task is None:
        raise SlackError("outbox", "task_not_found")  # cannot happen: tasks are never deleted
    incident = await _incident(ctx, task.incident_id)
    if not incident.channel_id:
        return
    text = task_messages.task_added(task, p["by"]) if p["event"] == "added" else task_messages.task_done(task, p["by"])
    ts = await post_once(ctx, step_, progress, incident.channel_id, text)
    await _record(ctx, incident, ts, datetime.fromisoformat(p["said_at"]), EntryKind.SYSTEM, p["by"],
                  LEADING_EMOJI.sub("", text))  # fmt: skip


async def run_refresh(ctx: Context, step_: Step, _progress: Progress) -> None:
    await refresh_summary(ctx, await _incident(ctx, int(step_.payload["incident_id"])))


async def _incident(ctx: Context, incident_id: int) -> Incident:
    incident = await ctx.store.incident_by_id(incident_id)
    if incident is None:
        raise SlackError("outbox", "incident_not_found")  # incidents are never deleted either
    return incident


async def _record(ctx: Context, incident: Incident, ts: str, at: datetime, kind: EntryKind, author: str | None,
                  text: str, author_name: str | None = None) -> None:  # fmt: skip
    """What the bot posts is recorded when it posts it (Bolt never shows the bot its own
    events); the (team, channel, ts) key makes a repeated step record it once."""
    assert incident.channel_id is not None
    entry = TimelineEntry(incident_id=incident.id, channel_id=incident.channel_id, ts=ts, occurred_at=at,
                          kind=kind, author_id=author, author_name=author_name, text=text)  # fmt: skip
    await ctx.store.record_entry(ctx.team_id, entry, None, ctx.clock.now())


async def run_update_reminder(ctx: Context, step_: Step, _progress: Progress) -> None:
    """Done or snoozed, whichever the task is now: a late retry never shows a stale state."""
    p = step_.payload
    task = await ctx.store.task(int(p["task_id"]))
    if task is None:
        raise SlackError("outbox", "task_not_found")  # tasks are never deleted
    incident = await _incident(ctx, task.incident_id)
    if task.status is TaskStatus.DONE:
        text, blocks = task_messages.reminder_done(task, incident)
    elif task.next_remind_on is not None:
        text, blocks = task_messages.reminder_snoozed(task, incident, task.next_remind_on)
    else:
        return
    await ctx.slack.update(str(p["channel"]), str(p["ts"]), text, blocks)


async def run_finish_opening(ctx: Context, step_: Step, _progress: Progress) -> None:
    incident = await _incident(ctx, int(step_.payload["incident_id"]))
    if incident.state is not State.OPENING:
        return  # the declare request (or a Retry click) opened it
    try:
        await incidents.finish_opening(ctx, incident)
    except incidents.OpeningInProgress:
        raise TryLater("another attempt is opening it") from None
    except incidents.StartFailed as failed:
        raise failed.error from None


async def run_stakeholder_update(ctx: Context, step_: Step, progress: Progress) -> None:
    """The announcement rewritten to where the incident stands, and the change in its thread."""
    incident = await _incident(ctx, int(step_.payload["incident_id"]))
    origin, announced = incident.origin_channel_id, incident.announcement_ts
    if incident.is_private or not origin or not announced:
        return
    if not progress.data.get("updated"):
        text, blocks = messages.announcement(incident)
        await ctx.slack.update(origin, announced, text, blocks)
        await progress.save(updated=True)
    await post_once(ctx, step_, progress, origin, str(step_.payload["text"]), thread_ts=announced)


async def run_channel_post(ctx: Context, step_: Step, progress: Progress) -> None:
    await post_once(ctx, step_, progress, str(step_.payload["channel"]), str(step_.payload["text"]))
