"""Declaring an incident and changing it while it runs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

from bot.domain import rules
from bot.domain.models import EntryKind, Incident, Severity, State, Status, TimelineEntry
from bot.domain.outbox import NewStep
from bot.services import steps
from bot.services.context import Context
from bot.services.steps import LEADING_EMOJI
from bot.slack_api import SlackError
from bot.ui import messages

log = logging.getLogger(__name__)
# Longer than any opening takes with Slack's retries; a claim older than this was abandoned.
OPENING_LEASE = timedelta(minutes=2)


class StartFailed(Exception):
    def __init__(self, incident: Incident, error: SlackError) -> None:
        super().__init__(str(error))
        self.incident = incident
        self.error = error


async def declare(
    ctx: Context,
    *,
    user_id: str,
    title: str,
    severity: Severity = Severity.SEV2,
    description: str = "",
    is_private: bool = False,
    origin_channel_id: str | None = None,
) -> Incident:
    """Records the incident first (so nothing is lost), then builds its channel."""
    now = ctx.clock.now()
    incident = await ctx.store.create_incident(
        ctx.team_id,
        {
            "title": rules.clean_title(title) or "Untitled incident",
            "description": description.strip(),
            "severity": severity,
            "status": Status.INVESTIGATING,
            "is_private": is_private,
            "origin_channel_id": origin_channel_id,
            "commander_id": user_id,
            "declared_by": user_id,
            "started_at": now,
            "last_activity_at": now,
        },
        lambda made: [steps.finish_opening(made, now)],
    )
    return await finish_opening(ctx, incident)


class OpeningInProgress(Exception):
    """Another attempt (a second Retry click, maybe in another process) is opening it right now."""


async def finish_opening(ctx: Context, incident: Incident) -> Incident:
    """Each step checks what is already done, so a retry after a failure picks up where it stopped.
    A claim in the database lets one attempt at a time work on an incident, in whatever process,
    so two Retry clicks cannot make two channels."""
    now = ctx.clock.now()
    if not await ctx.store.claim_opening(incident.id, now, now - OPENING_LEASE):
        raise OpeningInProgress(incident.ref)
    try:
        incident = await ctx.store.incident_by_id(incident.id) or incident
        return await _open_steps(ctx, incident)
    finally:
        await ctx.store.release_opening(incident.id)


async def _open_steps(ctx: Context, incident: Incident) -> Incident:
    try:
        incident = await _ensure_channel(ctx, incident)
        await ctx.slack.invite(_channel(incident), [incident.declared_by])
        await _courtesy(ctx.slack.set_topic(_channel(incident), messages.topic(incident)), "set the topic")
        incident = await _ensure_summary(ctx, incident)
        incident = await _ensure_announcement(ctx, incident)
    except SlackError as exc:
        log.warning("opening %s stopped at %s", incident.ref, exc)
        raise StartFailed(incident, exc) from None
    if incident.state is State.OPENING:
        incident = await ctx.store.update_incident(incident.id, state=State.OPEN)
    return incident


async def _courtesy(call: Awaitable[None], what: str) -> None:
    """Topic and pin help people find their way; an incident must not fail for want of them."""
    try:
        await call
    except SlackError as exc:
        log.warning("could not %s: %s", what, exc)


def _channel(incident: Incident) -> str:
    assert incident.channel_id is not None, "channel is made before it is used"
    return incident.channel_id


async def _ensure_channel(ctx: Context, incident: Incident) -> Incident:
    if incident.channel_id:
        return incident
    channel = await ctx.slack.create_channel(
        rules.channel_name(incident.number, incident.title), incident.is_private
    )
    return await ctx.store.update_incident(
        incident.id, channel_id=channel["id"], channel_name=channel["name"]
    )


async def _ensure_summary(ctx: Context, incident: Incident) -> Incident:
    if incident.summary_ts:
        return incident
    text, blocks = messages.summary(incident, ctx.tz)
    ts = await ctx.slack.post(_channel(incident), text, blocks)
    incident = await ctx.store.update_incident(incident.id, summary_ts=ts)
    await record_system(ctx, incident, ts, messages.declared_entry(incident), at=incident.started_at)
    await _courtesy(ctx.slack.pin(_channel(incident), ts), "pin the summary")
    return incident


async def _ensure_announcement(ctx: Context, incident: Incident) -> Incident:
    """Announces where the incident was declared; a channel the bot cannot post in is not fatal."""
    origin = incident.origin_channel_id
    if (
        incident.announcement_ts
        or incident.is_private  # nothing of a private incident is said outside its channel
        or not origin
        or origin == incident.channel_id
        or not origin.startswith(("C", "G"))
    ):
        return incident
    text, blocks = messages.announcement(incident)
    try:
        ts = await ctx.slack.post(origin, text, blocks)
    except SlackError as exc:
        log.info("no announcement for %s in %s: %s", incident.ref, origin, exc.code)
        return incident
    return await ctx.store.update_incident(incident.id, announcement_ts=ts)


async def record_system(
    ctx: Context,
    incident: Incident,
    ts: str,
    text: str,
    at: datetime | None = None,
    author: str | None = None,
) -> None:
    """What the bot posts is recorded when it posts it (Bolt never shows the bot its own events)."""
    entry = TimelineEntry(
        incident_id=incident.id,
        channel_id=_channel(incident),
        ts=ts,
        occurred_at=at or rules.ts_to_datetime(ts),
        kind=EntryKind.SYSTEM,
        author_id=author,  # None: the bot on its own account; else the person whose command it was
        text=LEADING_EMOJI.sub("", text),
    )
    await ctx.store.record_entry(ctx.team_id, entry, None, ctx.clock.now())


def _say_change(ctx: Context, incident: Incident, user_id: str, what: str) -> list[NewStep]:
    return steps.change(incident, user_id, what, ctx.clock.now())


async def refresh_summary(ctx: Context, incident: Incident) -> None:
    if incident.summary_ts:
        text, blocks = messages.summary(incident, ctx.tz)
        await ctx.slack.update(_channel(incident), incident.summary_ts, text, blocks)
    if incident.state is not State.CLOSED:
        await _courtesy(ctx.slack.set_topic(_channel(incident), messages.topic(incident)), "set the topic")


async def set_severity(ctx: Context, incident: Incident, user_id: str, severity: Severity) -> Incident:
    what = f"changed severity {incident.severity.value.upper()} → {severity.value.upper()}"
    return await _change(ctx, incident, user_id, what, severity=severity, status_updated_at=ctx.clock.now())


async def resolve(ctx: Context, incident: Incident, user_id: str, raw: str) -> Incident:
    """The impact is over: the channel records on (the discussion belongs to the postmortem)
    until `/incident close`, whose form starts from this end time."""
    if incident.status is Status.RESOLVED:
        raise rules.UsageError(messages.resolved_already(incident, ctx.tz))
    now = ctx.clock.now()
    at, summary = rules.parse_resolve(raw, now, ctx.tz)
    what = messages.resolved_what(at, summary, ctx.tz, backdated=at != now)
    return await _change(
        ctx, incident, user_id, what, status=Status.RESOLVED, resolved_at=at, impact_ended_at=at,
        status_updated_at=now, status_text=summary or None,
    )  # fmt: skip


async def set_role(ctx: Context, incident: Incident, user_id: str, role: str, person: str | None) -> Incident:
    if role == "commander" and person:
        return await set_commander(ctx, incident, user_id, person)
    roles = dict(incident.roles)
    if person is None:
        roles.pop(role, None)
        return await _change(ctx, incident, user_id, f"cleared the {role} role", roles=roles)
    await ctx.slack.invite(_channel(incident), [person])  # Slack first: it refuses unknown people
    roles[role] = person
    return await _change(ctx, incident, user_id, f"made <@{person}> {role}", roles=roles)


async def _change(ctx: Context, incident: Incident, user_id: str, what: str, **values: Any) -> Incident:
    """Stores the change with the steps that say it in the channel; the outbox posts them."""
    changed = await ctx.store.update_incident(incident.id, _say_change(ctx, incident, user_id, what), **values)
    ctx.recording.remember(changed)
    ctx.outbox.kick()
    return changed


async def set_status(
    ctx: Context, incident: Incident, user_id: str, status: Status, message: str
) -> Incident:
    detail = f": {messages.safe(message, 2000)}" if message else ""
    values: dict[str, Any] = {"status": status, "status_updated_at": ctx.clock.now(), "status_text": message or None}
    if incident.status is Status.RESOLVED:  # the impact is not over after all
        values.update(resolved_at=None, impact_ended_at=None)
        what = f"reopened the incident, status *{status.value}*{detail}"
        return await _change(ctx, incident, user_id, what, **values)
    return await _change(ctx, incident, user_id, f"set status to *{status.value}*{detail}", **values)


async def set_commander(ctx: Context, incident: Incident, user_id: str, commander_id: str) -> Incident:
    # Slack first: a person it refuses (unknown, deactivated) must not become the commander.
    await ctx.slack.invite(_channel(incident), [commander_id])
    return await _change(ctx, incident, user_id, f"handed command to <@{commander_id}>", commander_id=commander_id)


async def add_note(ctx: Context, incident: Incident, user_id: str, raw: str) -> None:
    """The note is stored as a step at once; the outbox posts it and records it at its time."""
    now = ctx.clock.now()
    at, text = rules.parse_note(raw, now, ctx.tz)
    post = messages.note_post(user_id, at, text, ctx.tz, backdated=at != now)
    note = steps.post(incident, post, at, user_id, kind=EntryKind.NOTE, entry_text=text)
    await ctx.store.outbox.enqueue(ctx.team_id, [note])
    ctx.outbox.kick()
