"""Who may see what: a private incident is shown only to the members of its channel."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain.models import Incident
from bot.services.context import Context
from bot.slack_api import SlackError


async def visible_to(ctx: Context, user_id: str, found: Sequence[Incident]) -> list[Incident]:
    """The incidents this person may see: every public one, and the private ones whose channel
    they are in. When Slack cannot say who is in a channel, the private incident stays hidden."""
    shown = []
    for incident in found:
        if not incident.is_private or user_id in await channel_members(ctx, incident.channel_id):
            shown.append(incident)
    return shown


async def channel_members(ctx: Context, channel_id: str | None) -> frozenset[str]:
    if not channel_id:
        return frozenset()
    cached = ctx.members.get(channel_id)
    if cached is not None:
        return cached
    try:
        members = await _read_members(ctx, channel_id)
    except SlackError:
        return frozenset()
    ctx.members.remember(channel_id, members)
    return members


async def _read_members(ctx: Context, channel_id: str) -> frozenset[str]:
    members: set[str] = set()
    cursor = None
    while True:
        page = await ctx.slack.call("conversations.members", channel=channel_id, limit=200, cursor=cursor)
        members.update(str(m) for m in page.get("members") or [])
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return frozenset(members)
