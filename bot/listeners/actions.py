"""Buttons: add a task row to the close form, retry a failed start, and the reminder buttons."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.domain.models import State
from bot.listeners import payloads
from bot.listeners.failures import guarded
from bot.services import home, incidents, tasks
from bot.services.context import Context
from bot.ui import messages, modals
from bot.ui.ids import Action

SNOOZE_DAYS = {Action.TASK_SNOOZE_DAY: 1, Action.TASK_SNOOZE_WEEK: 7}


def register(app: AsyncApp, ctx: Context) -> None:
    async def ack_only(ack: AsyncAck) -> None:
        await ack()

    async def add_task_row(body: dict[str, Any]) -> None:
        await guarded(ctx, body, "adding a task row", grow_close_form(ctx, body))

    async def retry_start(body: dict[str, Any], respond: AsyncRespond) -> None:
        await guarded(ctx, body, "opening the incident", retry_opening(ctx, body, respond))

    async def task_done(body: dict[str, Any]) -> None:
        await guarded(ctx, body, "marking the task done", complete_from_button(ctx, body))

    async def task_snooze(body: dict[str, Any]) -> None:
        await guarded(ctx, body, "snoozing the task", snooze_from_button(ctx, body))

    async def take_command(body: dict[str, Any], respond: AsyncRespond) -> None:
        await guarded(ctx, body, "taking command", take_command_from_button(ctx, body, respond))

    async def open_status_form(ack: AsyncAck, body: dict[str, Any]) -> None:
        # The trigger expires in 3 s: the form opens in the ack, not in lazy work.
        await ack()
        await guarded(ctx, body, "opening the status form", show_status_form(ctx, body))

    async def open_start_form(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        start_form = ctx.slack.open_view(body["trigger_id"], modals.start_modal(""))
        await guarded(ctx, body, "opening the start form", start_form)

    app.action(Action.OPEN_START_FORM)(open_start_form)
    app.action(Action.TAKE_COMMAND)(ack=ack_only, lazy=[take_command])
    app.action(Action.OPEN_STATUS_FORM)(open_status_form)
    app.action(Action.ADD_TASK_ROW)(ack=ack_only, lazy=[add_task_row])
    app.action(Action.RETRY_START)(ack=ack_only, lazy=[retry_start])
    app.action(Action.TASK_DONE)(ack=ack_only, lazy=[task_done])
    app.action(Action.TASK_SNOOZE_DAY)(ack=ack_only, lazy=[task_snooze])
    app.action(Action.TASK_SNOOZE_WEEK)(ack=ack_only, lazy=[task_snooze])


def _action(body: dict[str, Any]) -> dict[str, Any]:
    return dict((body.get("actions") or [{}])[0])


async def grow_close_form(ctx: Context, body: dict[str, Any]) -> None:
    """Replaces the form with one more task row; Slack keeps what was typed in unchanged blocks."""
    view = body["view"]
    incident = await ctx.store.incident_by_id(int(payloads.metadata(view).get("incident_id", 0)))
    if incident is None:
        return
    rows = int(payloads.metadata(view).get("rows", modals.MIN_TASK_ROWS)) + 1
    await ctx.slack.update_view(
        view["id"], modals.close_modal(incident, ctx.clock.now(), rows), view.get("hash")
    )


async def retry_opening(ctx: Context, body: dict[str, Any], respond: AsyncRespond) -> None:
    incident = await ctx.store.incident_by_id(int(_action(body).get("value") or 0))
    if incident is None or incident.state is not State.OPENING:
        await respond(text=messages.OPEN_ALREADY, replace_original=True)
        return
    try:
        incident = await incidents.finish_opening(ctx, incident)
    except incidents.OpeningInProgress:
        await respond(text=messages.opening_in_progress(incident))
        return
    except incidents.StartFailed as failed:
        text, blocks = messages.start_failed(failed.incident, str(failed.error))
        await respond(text=text, blocks=blocks, replace_original=True)
        return
    await respond(text=messages.opened_reply(incident), replace_original=True)


async def take_command_from_button(ctx: Context, body: dict[str, Any], respond: AsyncRespond) -> None:
    """An alert declared it; the first person to press the button commands it."""
    incident = await ctx.store.incident_by_id(int(_action(body).get("value") or 0))
    user_id = body["user"]["id"]
    if incident is None or incident.state is State.CLOSED:
        return
    if not messages.needs_commander(incident):
        await respond(text=messages.has_commander(incident), replace_original=False, response_type="ephemeral")
        return
    await incidents.set_commander(ctx, incident, user_id, user_id)


async def show_status_form(ctx: Context, body: dict[str, Any]) -> None:
    incident = await ctx.store.incident_by_id(int(_action(body).get("value") or 0))
    if incident is not None and incident.state is not State.CLOSED:
        await ctx.slack.open_view(body["trigger_id"], modals.status_modal(incident))


async def complete_from_button(ctx: Context, body: dict[str, Any]) -> None:
    await tasks.complete(ctx, int(_action(body).get("value") or 0), body["user"]["id"], _clicked_message(body))
    await _refresh_home(ctx, body)


async def snooze_from_button(ctx: Context, body: dict[str, Any]) -> None:
    action = _action(body)
    days = SNOOZE_DAYS[Action(action["action_id"])]
    await tasks.snooze(ctx, int(action.get("value") or 0), days, _clicked_message(body))
    await _refresh_home(ctx, body)


async def _refresh_home(ctx: Context, body: dict[str, Any]) -> None:
    """Clicked in the App Home: it shows the effect at once."""
    if (body.get("view") or {}).get("type") == "home":
        await home.publish(ctx, body["user"]["id"], acted=True)


def _clicked_message(body: dict[str, Any]) -> tuple[str, str] | None:
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    ts = (body.get("message") or {}).get("ts") or (body.get("container") or {}).get("message_ts")
    return (str(channel), str(ts)) if channel and ts else None
