"""Compiling the postmortem from the database and publishing it to Slack."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timedelta

from bot.domain.models import EntryKind, Incident, PostmortemReport, TimelineEntry
from bot.domain.outbox import NewStep, Step, StepKind, incident_lane, step
from bot.services.context import Context
from bot.services.outbox import Progress
from bot.services.step_handlers import post_once
from bot.slack_api import SlackError
from bot.ui.postmortem import BOT_NAME, render_markdown
from bot.ui.postmortem_summary import render_summary_blocks
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
        entries=said_before_close(incident, await store.entries(incident.id)),
        tasks=await store.tasks_of_incident(incident.id),
        names=names,
        timezone=timezone,
        workspace_url=await store.workspace_url(incident.team_id),
    )


def said_before_close(incident: Incident, entries: list[TimelineEntry]) -> list[TimelineEntry]:
    """The timeline ends at the close. Another replica may record a message or two after it,
    for the few seconds it still takes the channel for an open one; those are not the incident's."""
    closed = incident.closed_at
    if closed is None:
        return entries
    return [e for e in entries if e.kind is EntryKind.SYSTEM or e.occurred_at <= closed]


def people_in(report: PostmortemReport) -> set[str]:
    ids = {report.incident.commander_id, report.incident.declared_by, report.form.submitted_by}
    ids.update(report.incident.roles.values())
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


def publish_steps(incident: Incident, actor: tuple[str | None, str | None], at: datetime) -> list[NewStep]:
    """The file in the incident channel, then the summary there and where it was announced."""
    lane = incident_lane(incident.id)
    steps = [step(StepKind.UPLOAD_POSTMORTEM, lane, at, actor, incident_id=incident.id)]
    steps += [step(StepKind.POSTMORTEM_SUMMARY, lane, at, actor, incident_id=incident.id, channel=channel)
              for channel in _summary_channels(incident)]  # fmt: skip
    return steps


async def republish(ctx: Context, incident: Incident, user_id: str, channel_id: str | None) -> None:
    """`/incident postmortem`: the postmortem as it stands now, posted again (a new file)."""
    await ctx.store.outbox.enqueue(ctx.team_id, publish_steps(incident, (user_id, channel_id), ctx.clock.now()))
    ctx.outbox.kick()


async def run_upload(ctx: Context, step_: Step, progress: Progress) -> None:
    """files.getUploadURLExternal, the bytes, files.completeUploadExternal. An attempt after one
    that may have completed asks Slack whether that file is shared already, so a retried publish
    leaves one file. A reserved file never completed is not shown anywhere; Slack drops it."""
    incident = await _closed(ctx, int(step_.payload["incident_id"]))
    channel = incident.channel_id or ""
    earlier = progress.data.get("file_id")
    if earlier and step_.may_have_acted and await ctx.slack.file_shared_in(str(earlier), channel):
        await ctx.store.mark_published(incident.id, str(earlier), ctx.clock.now())
        return
    markdown = render_markdown(await build(ctx, incident))
    file_id, upload_url = await ctx.slack.reserve_upload(f"{incident.ref.lower()}-postmortem.md", markdown)
    await progress.save(file_id=file_id)
    await ctx.slack.send_upload(upload_url, markdown)
    await ctx.slack.complete_upload(file_id, f"{incident.ref} postmortem", channel, f"Postmortem of {incident.ref}")
    await ctx.store.mark_published(incident.id, file_id, ctx.clock.now())


async def run_summary(ctx: Context, step_: Step, progress: Progress) -> None:
    incident = await _closed(ctx, int(step_.payload["incident_id"]))
    report = await build(ctx, incident)
    file_id = await ctx.store.published_file(incident.id)
    file_url = await _file_permalink(ctx, file_id) if file_id else None
    text, blocks = render_summary_blocks(report, file_url)
    await post_once(ctx, step_, progress, str(step_.payload["channel"]), text, blocks)


async def _closed(ctx: Context, incident_id: int) -> Incident:
    incident = await ctx.store.incident_by_id(incident_id)
    if incident is None:
        raise SlackError("outbox", "incident_not_found")  # incidents are never deleted
    return incident


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
