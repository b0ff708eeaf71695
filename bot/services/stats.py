"""`/incident stats`: the report's totals over a period, for one person (private incidents
count only if they may see them)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.domain import rules
from bot.domain.report import incident_row, totals
from bot.services import visibility
from bot.services.context import Context


async def totals_for(ctx: Context, user_id: str, days: int | None) -> dict[str, Any]:
    now = ctx.clock.now()
    since = now - timedelta(days=days) if days else None
    found = await ctx.store.reports.declared_between(since, None, ctx.team_id)
    shown = {i.id for i in await visibility.visible_to(ctx, user_id, [i for i, _, _ in found])}
    today = rules.local_day(now, ctx.tz)
    rows = [incident_row(i, form, tasks, today) for i, form, tasks in found if i.id in shown]
    return totals(rows, lambda r: r.declared_at.astimezone(ctx.tz).strftime("%Y-%m"))
