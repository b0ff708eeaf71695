"""Alerts declare incidents and follow them. The notice is stored, with the Slack steps it calls
for, in one transaction per dedup key; the outbox opens the channel and posts what the alert
says, so the sender gets its answer as soon as the notice is safe."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.domain.alerts import AlertNotice, AlertStatus
from bot.domain.models import EntryKind, Incident, Status
from bot.domain.outbox import NewStep
from bot.services import steps
from bot.services.context import Context
from bot.ui import messages
from storage.alerts import NoticeTaken

OPEN_AT_ONCE = timedelta(0)  # nobody declared it by hand: the step is the only opening


async def take(ctx: Context, notice: AlertNotice) -> NoticeTaken:
    now = ctx.clock.now()

    def new_values(previous: Incident | None) -> dict[str, Any] | None:
        if notice.status is not AlertStatus.FIRING:
            return None  # a resolution or an acknowledgement opens nothing
        return _incident_values(ctx, notice, previous)

    def steps_of(incident: Incident, created: bool, changed: dict[str, str]) -> list[NewStep]:
        said: list[NewStep] = [steps.finish_opening(incident, now, OPEN_AT_ONCE)] if created else []
        lines = [line for fingerprint, line in zip(notice.alerts, notice.lines, strict=False) if fingerprint in changed]
        text = messages.alert_entry(notice.source_name, notice.status.value, notice.title, lines, notice.url)
        said.append(steps.post(incident, text, now, None, kind=EntryKind.BOT_MESSAGE, author_name=notice.source_name))
        return said

    taken = await ctx.store.alerts.take_notice(
        ctx.team_id, notice.dedup_key, notice.alerts, new_values, _follow_values(notice), steps_of
    )
    if taken.changed:
        ctx.outbox.kick()
    return taken


def _incident_values(ctx: Context, notice: AlertNotice, previous: Incident | None) -> dict[str, Any]:
    now, bot = ctx.clock.now(), ctx.identity.bot_user_id
    description = notice.description
    if previous is not None:
        description = f"Fired again after {previous.ref} was closed.\n{description}".strip()
    return {
        "title": notice.title,
        "description": description[:3000],
        "severity": notice.severity,
        "status": Status.INVESTIGATING,
        "is_private": False,
        "origin_channel_id": ctx.settings.alert_channel,
        # Declared by the bot, commanded by nobody until a person presses Take command.
        "commander_id": bot,
        "declared_by": bot,
        "started_at": now,
        "last_activity_at": now,
        "alert_source": notice.source,
        "impact_started_at": notice.started_at,
        "previous_incident_id": previous.id if previous else None,
    }


def _follow_values(notice: AlertNotice) -> dict[str, Any]:
    """All resolved: the impact's end, for the close form; firing again: not over after all."""
    if notice.status is AlertStatus.RESOLVED:
        return {"impact_ended_at": notice.ended_at}
    if notice.status is AlertStatus.FIRING:
        return {"impact_ended_at": None}
    return {}
