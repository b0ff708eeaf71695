"""Compiling the postmortem from the database and publishing it to Slack."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta

from bot.domain.models import EntryKind, Incident, PostmortemReport
from bot.services.context import Context
from bot.slack_api import SlackError
from bot.ui.postmortem import BOT_NAME, render_markdown, render_summary_blocks
from storage import Store

log = logging.getLogger(__name__)

MENTION = re.compile(r"<@([UW][A-Z0-9]+)")
NAME_CACHE_DAYS = 7
LOOKUP_CONCURRENCY = 5


class NotClosed(Exception):
    """The incident has no close form yet, so there is no postmortem."""


async def compile_report(
    store: Store, incident: Incident, timezone: str, names: dict[str, str]
) -> PostmortemReport:
    form = await store.close_form(incident.id)
    if form is None:
        raise NotClosed(incident.ref)
    return PostmortemReport(
        incident=incident,
        form=form,
        entries=await store.entries(incident.id),
        tasks=await store.tasks_of_incident(incident.id),
        names=names,
        timezone=timezone,
        workspace_url=await store.workspace_url(incident.team_id),
    )


def people_in(report: PostmortemReport) -> set[str]:
    ids = {report.incident.commander_id, report.incident.declared_by, report.form.submitted_by}
    ids.update(t.owner_id for t in report.tasks)
    for entry in report.entries:
        if entry.author_id and entry.kind is not EntryKind.BOT_MESSAGE:
            ids.add(entry.author_id)
        ids.update(MENTION.findall(entry.text))
    return ids


async def resolve_names(ctx: Context, ids: set[str]) -> dict[str, str]:
    """Display names from the cache, asking Slack (users.info) only for the ones it lacks."""
    now = ctx.clock.now()
    names = await ctx.store.cached_names(ctx.team_id, now - timedelta(days=NAME_CACHE_DAYS))
    names[ctx.identity.bot_user_id] = BOT_NAME
    missing = sorted(ids - names.keys())
    limit = asyncio.Semaphore(LOOKUP_CONCURRENCY)

    async def lookup(user_id: str) -> None:
        async with limit:
            try:
                names[user_id] = await ctx.slack.user_name(user_id)
            except SlackError as exc:
                log.info("no name for %s: %s", user_id, exc.code)
                return
        await ctx.store.save_name(ctx.team_id, user_id, names[user_id], now)

    await asyncio.gather(*(lookup(u) for u in missing))
    return names


async def build(ctx: Context, incident: Incident) -> PostmortemReport:
    draft = await compile_report(ctx.store, incident, ctx.settings.timezone, {})
    names = await resolve_names(ctx, people_in(draft))
    return draft.model_copy(update={"names": names})


async def publish(ctx: Context, incident: Incident) -> str:
    """Uploads the Markdown to the incident channel and posts the summary there and where the
    incident was announced. Returns the Markdown."""
    report = await build(ctx, incident)
    markdown = render_markdown(report)
    channel = incident.channel_id or ""
    file_id = await ctx.slack.upload_markdown(
        channel,
        filename=f"{incident.ref.lower()}-postmortem.md",
        content=markdown,
        title=f"{incident.ref} postmortem",
        comment=f"Postmortem of {incident.ref}",
    )
    file_url = await _file_permalink(ctx, file_id)
    text, blocks = render_summary_blocks(report, file_url)
    for target in _summary_channels(incident):
        await ctx.slack.post(target, text, blocks)
    await ctx.store.mark_published(incident.id, file_id, ctx.clock.now())
    return markdown


async def _file_permalink(ctx: Context, file_id: str) -> str | None:
    try:
        info = await ctx.slack.call("files.info", file=file_id)
    except SlackError:
        return None
    return str(info.get("file", {}).get("permalink") or "") or None


def _summary_channels(incident: Incident) -> list[str]:
    targets = [incident.channel_id or ""]
    # A private incident's impact and root cause stay in its channel, even if it was announced
    # (an incident made private after its announcement, or one from before this rule).
    if incident.announcement_ts and incident.origin_channel_id and not incident.is_private:
        targets.append(incident.origin_channel_id)
    return [t for t in targets if t]
