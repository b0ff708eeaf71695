"""Channel messages and reactions become timeline entries. Each handler commits before it
returns, and the app acknowledges only after (process_before_response), so an event Slack
sees acknowledged is never lost, and its retries are absorbed by the storage keys."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot import slack_messages
from bot.domain.rules import ts_to_datetime
from bot.services import home, timeline
from bot.services.context import Context
from bot.slack_api import SlackError

log = logging.getLogger(__name__)
KEY_EVENT_REACTION = "pushpin"
TOMBSTONE = "tombstone"


def register(app: AsyncApp, ctx: Context) -> None:
    async def on_message(body: dict[str, Any], event: dict[str, Any]) -> None:
        await handle_message(ctx, event, body.get("event_id"))

    async def on_reaction_added(event: dict[str, Any]) -> None:
        await handle_reaction(ctx, event, is_key=True)

    async def on_reaction_removed(event: dict[str, Any]) -> None:
        await handle_reaction(ctx, event, is_key=False)

    async def on_home_opened(event: dict[str, Any]) -> None:
        if event.get("tab") == "home" and event.get("user"):
            await show_home(ctx, str(event["user"]))

    app.event("message")(on_message)
    app.event("app_home_opened")(on_home_opened)
    app.event("reaction_added")(on_reaction_added)
    app.event("reaction_removed")(on_reaction_removed)


async def handle_message(ctx: Context, event: dict[str, Any], event_id: str | None) -> None:
    channel = str(event.get("channel") or "")
    incident = await timeline.open_incident_in(ctx, channel)
    if incident is None:
        return
    subtype = event.get("subtype")
    message = event.get("message") or {}
    if subtype == "message_changed" and message.get("subtype") == TOMBSTONE:
        # A thread parent deleted while it has replies stays as a tombstone: a deletion to us.
        await _record_deletion(ctx, event, channel, incident.id, str(message.get("ts") or ""), message, event_id)
    elif subtype == "message_changed":
        if slack_messages.is_people_message(ctx.identity, message):
            entry = slack_messages.entry_from_message(message, channel, incident.id)
            edited = message.get("edited") or {}
            edited_at = ts_to_datetime(str(edited.get("ts") or event.get("event_ts") or message["ts"]))
            await timeline.record_edit(ctx, entry.model_copy(update={"edited_at": edited_at}), event_id)
    elif subtype == "message_deleted":
        previous = event.get("previous_message") or {}
        deleted_ts = str(event.get("deleted_ts") or previous.get("ts") or "")
        await _record_deletion(ctx, event, channel, incident.id, deleted_ts, previous, event_id)
    elif slack_messages.is_people_message(ctx.identity, event):
        await timeline.record(ctx, slack_messages.entry_from_message(event, channel, incident.id), event_id)


async def _record_deletion(
    ctx: Context,
    event: dict[str, Any],
    channel: str,
    incident_id: int,
    deleted_ts: str,
    previous: dict[str, Any],
    event_id: str | None,
) -> None:
    if not deleted_ts or slack_messages.is_own(ctx.identity, previous):
        return
    entry = slack_messages.entry_from_message({**previous, "ts": deleted_ts}, channel, incident_id)
    deleted_at = ts_to_datetime(str(event.get("event_ts") or event.get("ts") or deleted_ts))
    await timeline.record_deletion(ctx, entry.model_copy(update={"deleted_at": deleted_at}), event_id)


async def show_home(ctx: Context, user_id: str) -> None:
    """A home Slack cannot take now is published the next time the tab is opened."""
    try:
        await home.publish(ctx, user_id)
    except SlackError as exc:
        log.info("home of %s not published: %s", user_id, exc.code)


async def handle_reaction(ctx: Context, event: dict[str, Any], is_key: bool) -> None:
    item = event.get("item") or {}
    if event.get("reaction") != KEY_EVENT_REACTION or item.get("type") != "message":
        return
    channel, ts = str(item.get("channel") or ""), str(item.get("ts") or "")
    if await timeline.open_incident_in(ctx, channel) is not None:
        await timeline.mark_key(ctx, channel, ts, is_key)
