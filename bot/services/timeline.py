"""Recording what is said in incident channels."""

from __future__ import annotations

from bot.domain.models import Incident, State, TimelineEntry
from bot.services.context import Context


async def open_incident_in(ctx: Context, channel_id: str) -> Incident | None:
    """The incident whose channel this is, while it is still recording."""
    cached = ctx.recording.get(channel_id)
    if cached is not None:
        return cached
    incident = await ctx.store.incident_by_channel(ctx.team_id, channel_id)
    if incident is None or incident.state is State.CLOSED:
        return None
    ctx.recording.remember(incident)
    return incident


async def record(ctx: Context, entry: TimelineEntry, event_id: str | None) -> bool:
    return await ctx.store.record_entry(ctx.team_id, entry, event_id, ctx.clock.now())


async def record_edit(ctx: Context, entry: TimelineEntry, event_id: str | None) -> bool:
    return await ctx.store.record_edit(ctx.team_id, entry, event_id, ctx.clock.now())


async def record_deletion(ctx: Context, entry: TimelineEntry, event_id: str | None) -> bool:
    return await ctx.store.record_deletion(ctx.team_id, entry, event_id, ctx.clock.now())


async def mark_key(ctx: Context, channel_id: str, ts: str, is_key: bool) -> bool:
    return await ctx.store.set_key_event(ctx.team_id, channel_id, ts, is_key)
