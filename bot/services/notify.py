"""Telling one person something, wherever Slack lets us."""

from __future__ import annotations

import logging
from typing import Any

from bot.services.context import Context
from bot.slack_api import SlackError

log = logging.getLogger(__name__)


async def tell(ctx: Context, user_id: str, channel_id: str | None, message: dict[str, Any]) -> None:
    """Ephemeral in the channel the person was in; a DM from the bot when that is refused
    (a channel the bot is not in, or no channel at all, as with a modal)."""
    if channel_id and channel_id.startswith(("C", "G")):
        try:
            await ctx.slack.call("chat.postEphemeral", channel=channel_id, user=user_id, **message)
            return
        except SlackError as exc:
            log.info("ephemeral to %s in %s refused (%s); sending a DM", user_id, channel_id, exc.code)
    try:
        await ctx.slack.post(user_id, message.get("text", ""), message.get("blocks"))
    except SlackError as exc:
        log.warning("could not tell %s anything: %s", user_id, exc.code)
