"""Modal submissions. Validation happens in the ack (field errors shown on the form); the lazy
work re-checks, because Bolt runs lazy listeners after every ack, rejected forms included."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.domain import rules
from bot.domain.closeout import validate_close
from bot.domain.models import CloseForm, Incident, NewTask, State
from bot.listeners import payloads
from bot.listeners.commands import declare_and_report
from bot.listeners.failures import guarded
from bot.services import closeout, incidents
from bot.services.context import Context
from bot.services.notify import tell as services_tell
from bot.ui import messages
from bot.ui.ids import Block, View
from storage import DATABASE_ERRORS

log = logging.getLogger(__name__)


def register(app: AsyncApp, ctx: Context) -> None:
    async def ack_start(ack: AsyncAck, view: dict[str, Any]) -> None:
        errors = start_errors(view)
        await (ack(response_action="errors", errors=errors) if errors else ack())

    async def run_start(body: dict[str, Any], view: dict[str, Any]) -> None:
        if not start_errors(view):
            await guarded(ctx, body, "declaring the incident", declare_from_modal(ctx, body, view))

    async def ack_close(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            outcome = await close_outcome(ctx, body, view)
        except DATABASE_ERRORS:
            # The form stays open with what was typed, so nothing is lost: submit again later.
            await ack(response_action="errors", errors={Block.IMPACT: messages.database_down("closing")})
            return
        await (ack(response_action="errors", errors=outcome) if isinstance(outcome, dict) else ack())

    async def run_close(body: dict[str, Any], view: dict[str, Any]) -> None:
        await guarded(ctx, body, "closing the incident", close_from_modal(ctx, body, view))

    async def ack_only(ack: AsyncAck) -> None:
        await ack()

    async def run_status(body: dict[str, Any], view: dict[str, Any]) -> None:
        await guarded(ctx, body, "posting the status update", status_from_modal(ctx, body, view))

    app.view(View.STATUS)(ack=ack_only, lazy=[run_status])
    app.view(View.START)(ack=ack_start, lazy=[run_start])
    app.view(View.CLOSE)(ack=ack_close, lazy=[run_close])


def start_errors(view: dict[str, Any]) -> dict[str, str]:
    title, *_ = payloads.start_form(view)
    return {} if rules.clean_title(title) else {Block.TITLE: "Give the incident a title."}


async def declare_from_modal(ctx: Context, body: dict[str, Any], view: dict[str, Any]) -> None:
    title, severity, description, private = payloads.start_form(view)
    user_id = body["user"]["id"]
    origin = payloads.metadata(view).get("origin")

    async def tell_declarer(**message: Any) -> None:
        await services_tell(ctx, user_id, origin, message)

    await declare_and_report(
        ctx,
        tell_declarer,
        user_id=user_id,
        title=title,
        severity=severity,
        description=description,
        is_private=private,
        origin_channel_id=origin,
    )


async def status_from_modal(ctx: Context, body: dict[str, Any], view: dict[str, Any]) -> None:
    incident = await ctx.store.incident_by_id(int(payloads.metadata(view).get("incident_id", 0)))
    if incident is None or incident.state is State.CLOSED:
        return
    status, text = payloads.status_form(view)
    await incidents.set_status(ctx, incident, body["user"]["id"], status, text)


async def close_from_modal(ctx: Context, body: dict[str, Any], view: dict[str, Any]) -> None:
    outcome = await close_outcome(ctx, body, view)
    if not isinstance(outcome, dict):
        incident, form, tasks = outcome
        await closeout.close(ctx, incident, form, tasks)


async def close_outcome(
    ctx: Context, body: dict[str, Any], view: dict[str, Any]
) -> tuple[Incident, CloseForm, list[NewTask]] | dict[str, str]:
    meta = payloads.metadata(view)
    incident = await ctx.store.incident_by_id(int(meta.get("incident_id", 0)))
    if incident is None or incident.state is State.CLOSED:
        return {Block.IMPACT: "This incident is closed already; its postmortem is in the channel."}
    if incident.state is State.OPENING:
        return {Block.IMPACT: "This incident is still being opened: press Retry on its start message first."}
    data = payloads.close_form(view, int(meta.get("rows", 3)))
    now = ctx.clock.now()
    result = validate_close(data, body["user"]["id"], now, rules.local_day(now, ctx.tz))
    if isinstance(result, dict):
        return result
    form, tasks = result
    return incident, form, tasks
