"""The reminder sweep. All state is in the database: each due reminder is claimed atomically,
sent, then marked sent, so restarts, crashes and several processes neither repeat nor skip one."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.domain import rules
from bot.domain.models import Incident, Task, TaskStatus
from bot.domain.report import incident_row
from bot.services import steps
from bot.services.context import Context
from bot.slack_api import SlackError
from bot.ui import messages, task_messages

log = logging.getLogger(__name__)

BATCH = 500
# A claim older than this was left by a process that died before sending: take it over.
CLAIM_LEASE = timedelta(minutes=10)
NUDGE_AFTER = timedelta(hours=24)
REMINDER_EVENT = "incident_task_reminder"
DIGEST_WEEKDAY = 0  # Monday: the week's digest of open tasks
# The owner can never get a DM: report once instead of retrying forever.
UNDELIVERABLE = frozenset(
    {"user_not_found", "cannot_dm_bot", "user_disabled", "account_inactive", "user_is_bot", "users_not_found"}
)


@dataclass
class SweepReport:
    reminders_sent: int = 0
    undeliverable: int = 0
    deferred: int = 0
    digests: int = 0
    nudges: int = 0
    errors: list[str] = field(default_factory=list)


async def sweep(ctx: Context) -> SweepReport:
    report = SweepReport()
    now = ctx.clock.now()
    if rules.reminders_allowed(now, ctx.tz, ctx.settings.not_before):
        today = rules.local_day(now, ctx.tz)
        await _send_reminders(ctx, today, report)
        if today.weekday() == DIGEST_WEEKDAY:
            await _send_digests(ctx, today, report)
            await _workspace_digest(ctx, today, report)
        await _nudge_postmortems(ctx, today, report)
    await _nudge_idle(ctx, report)
    await _nudge_updates(ctx, report)
    return report


async def _workspace_digest(ctx: Context, today: date, report: SweepReport) -> None:
    """DIGEST_CHANNEL: last week's incidents and the overdue tasks by owner, once a week across
    restarts and replicas (claimed with its outbox step)."""
    channel = ctx.settings.digest_channel
    if not channel:
        return
    year, week, _ = today.isocalendar()
    monday = today - timedelta(days=7)
    since = datetime.combine(monday, time(0), tzinfo=ctx.tz)
    found = await ctx.store.reports.declared_between(since, since + timedelta(days=7), ctx.team_id)
    rows = [incident_row(i, form, tasks, today) for i, form, tasks in found if not i.is_private]
    overdue = [(t, i) for t, i in await ctx.store.lifecycle.overdue_tasks(ctx.team_id, today) if not i.is_private]
    text = task_messages.weekly_digest(rules.iso_week(monday), rows, overdue, today)
    post = steps.channel_post(channel, text, ctx.clock.now())
    if await ctx.store.lifecycle.claim_week(ctx.team_id, year * 100 + week, [post]):
        report.digests += 1
        ctx.outbox.kick()


async def _nudge_postmortems(ctx: Context, today: date, report: SweepReport) -> None:
    """A resolved incident whose postmortem is overdue: its commander, once a local day."""
    now, days = ctx.clock.now(), ctx.settings.postmortem_due_days
    resolved_before = now - timedelta(days=days)
    for incident in await ctx.store.lifecycle.postmortems_due(resolved_before, today, BATCH):
        nudge = steps.post(incident, messages.postmortem_due(incident, days), now, None, record=False)
        if await ctx.store.lifecycle.claim_postmortem_nudge(incident, resolved_before, today, [nudge]):
            report.nudges += 1
            ctx.outbox.kick()


async def _nudge_updates(ctx: Context, report: SweepReport) -> None:
    """UPDATE_CADENCE: an incident quiet for its severity's interval nudges its commander, once
    per interval (after downtime too: one nudge, not one per interval missed)."""
    now = ctx.clock.now()
    for severity, minutes in ctx.settings.cadence.items():
        quiet_since = now - timedelta(minutes=minutes)
        for incident in await ctx.store.lifecycle.updates_due(severity, quiet_since, BATCH):
            text, blocks = messages.update_due(incident, minutes)
            nudge = steps.post(incident, text, now, None, blocks=blocks, record=False)
            if await ctx.store.lifecycle.claim_update_nudge(incident, quiet_since, now, [nudge]):
                report.nudges += 1
                ctx.outbox.kick()


async def _send_reminders(ctx: Context, today: date, report: SweepReport) -> None:
    token = uuid.uuid4().hex
    incidents: dict[int, Incident | None] = {}
    for task in await ctx.store.due_tasks(today, BATCH):
        now = ctx.clock.now()
        claim = await ctx.store.claim_reminder(task, today, token, now, now - CLAIM_LEASE)
        if claim is None:
            continue  # another process has it, or it went out today already
        task = await ctx.store.task(task.id) or task
        if task.status is not TaskStatus.OPEN or not task.next_remind_on or task.next_remind_on > today:
            # Done or snoozed since the list was read: give the day back, send nothing.
            await ctx.store.release_reminder(task, today, token)
            continue
        if task.incident_id not in incidents:
            incidents[task.incident_id] = await ctx.store.incident_by_id(task.incident_id)
        incident = incidents[task.incident_id]
        if incident is not None:  # tasks always belong to an incident (foreign key)
            await _remind(ctx, task, incident, today, token, claim == "taken_over", report)


def _reminder_metadata(task: Task, today: date) -> dict[str, Any]:
    return {"event_type": REMINDER_EVENT, "event_payload": {"task_id": task.id, "day": today.isoformat()}}


async def _remind(
    ctx: Context, task: Task, incident: Incident, today: date, token: str, taken_over: bool, report: SweepReport
) -> None:
    text, blocks = task_messages.reminder(task, incident, today)
    metadata = _reminder_metadata(task, today)
    try:
        channel = await ctx.slack.open_dm(task.owner_id)
        # A claim taken over from a process that died may have been sent already: the
        # reminder's metadata in the DM tells, so it is never sent twice.
        sent = (
            await ctx.slack.find_by_metadata(channel, REMINDER_EVENT, metadata["event_payload"]) if taken_over else None
        )
        ts = sent or await ctx.slack.post(channel, text, blocks, metadata=metadata)
    except SlackError as exc:
        await _reminder_failed(ctx, task, incident, today, token, exc, report)
        return
    outcome = {"state": "sent", "channel_id": channel, "message_ts": ts, "sent_at": ctx.clock.now()}
    await ctx.store.finish_reminder(task, today, token, outcome, rules.next_reminder_day(task.due_date, today))
    report.reminders_sent += 0 if sent else 1


async def _reminder_failed(
    ctx: Context,
    task: Task,
    incident: Incident,
    today: date,
    token: str,
    exc: SlackError,
    report: SweepReport,
) -> None:
    if exc.transient:
        # Rate limits past the client's retries, outages: the next sweep tries again.
        await ctx.store.release_reminder(task, today, token)
        report.deferred += 1
        log.warning("reminder for task %s deferred: %s", task.id, exc.code)
        return
    if exc.code not in UNDELIVERABLE:
        # Slack refused this message for a reason a retry will not change: record today's try
        # as failed and try again tomorrow, rather than every sweep.
        outcome = {"state": "failed", "error": exc.code[:100], "sent_at": ctx.clock.now()}
        await ctx.store.finish_reminder(task, today, token, outcome, task.next_remind_on, undeliverable=False)
        report.errors.append(f"task {task.id}: {exc.code}")
        return
    outcome = {"state": "failed", "error": exc.code, "sent_at": ctx.clock.now()}
    await ctx.store.finish_reminder(task, today, token, outcome, None)
    report.undeliverable += 1
    if incident.channel_id:
        try:
            await ctx.slack.post(incident.channel_id, task_messages.undeliverable(task, exc.code))
        except SlackError as post_error:
            report.errors.append(f"task {task.id}: {post_error.code}")


async def _send_digests(ctx: Context, today: date, report: SweepReport) -> None:
    week = rules.iso_week(today)
    for incident in await ctx.store.incidents_without_digest(week, BATCH):
        if not await ctx.store.claim_digest(incident, week, uuid.uuid4().hex, ctx.clock.now()):
            continue
        tasks = await ctx.store.tasks_of_incident(incident.id, only_open=True)
        text, blocks = task_messages.digest(incident, tasks, today)
        error = await _try_post(ctx, incident, text, blocks, report)
        # A transient failure gives the claim back for the next sweep; a channel that is gone
        # or archived is recorded as failed, so it is not retried every minute all week.
        state = "sent" if error is None else None if error.transient else "failed"
        await ctx.store.finish_digest(incident.id, week, state, ctx.clock.now())
        report.digests += int(error is None)


async def _nudge_idle(ctx: Context, report: SweepReport) -> None:
    now = ctx.clock.now()
    for incident in await ctx.store.idle_open_incidents(now - NUDGE_AFTER, BATCH):
        if await ctx.store.claim_nudge(incident, now - NUDGE_AFTER, now):
            report.nudges += int(await _try_post(ctx, incident, messages.nudge(incident), None, report) is None)


async def _try_post(
    ctx: Context,
    incident: Incident,
    text: str,
    blocks: list[dict[str, Any]] | None,
    report: SweepReport,
) -> SlackError | None:
    try:
        await ctx.slack.post(incident.channel_id or "", text, blocks)
    except SlackError as exc:
        report.errors.append(f"{incident.ref}: {exc.code}")
        return exc
    return None
