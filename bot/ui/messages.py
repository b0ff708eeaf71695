"""Block Kit messages the bot posts. Pure: data in, (text, blocks) out."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.alerts import SOURCE_NAMES
from bot.domain.models import Incident, Status, Task
from bot.domain.outbox import StepKind
from bot.ui.ids import Action
from bot.ui.text import escape_mrkdwn, truncate

Blocks = list[dict[str, Any]]
SECTION_LIMIT = 3000
LIST_LIMIT = 20

# Slack reads <...> as markup anywhere in a message: the angle brackets are written as entities.
USAGE = "\n".join(
    [
        "*Usage:* `/incident &lt;subcommand&gt;`",
        "• `start [title]`: declare an incident (no title opens a form)",
        "• `note [HH:MM] &lt;text&gt;`: add a note to the timeline, backdated to HH:MM today",
        "• `severity &lt;sev1|sev2|sev3|sev4&gt;`: change the severity",
        "• `status &lt;investigating|identified|monitoring&gt; [text]`: post a status update",
        "• `commander &lt;@user&gt;`: hand over command",
        "• `role &lt;commander|comms|ops|scribe&gt; &lt;@user|none&gt;`: give a role, or clear it",
        "• `resolve [HH:MM] [summary]`: the impact is over (backdated to HH:MM); the channel keeps "
        "recording for the postmortem",
        "• `close`: close the incident and write the postmortem",
        "• `postmortem`: post the postmortem again",
        "• `task &lt;@owner&gt; &lt;description&gt; [due YYYY-MM-DD]`: add a corrective task",
        "• `tasks`: open tasks of this incident (or yours, outside an incident channel)",
        "• `list`: open incidents",
        "• `stats [30d|90d|365d|all]`: how many incidents, how fast detected and resolved",
        "• `help`: this message",
    ]
)


OPENING = "Opening the incident…"
OPEN_ALREADY = "That incident is open already."
NOT_AN_INCIDENT_CHANNEL = "This works in an incident channel. `/incident list` shows the open ones."


def with_usage(problem: str) -> str:
    return f"{problem}\n{USAGE}"


def unknown_subcommand(name: str) -> str:
    return with_usage(f"I don't know `{safe(name, 40)}`.")


def slack_refused(method: str, code: str) -> str:
    return f"Slack refused a step ({method}: {code}). Please try again."


def closed_already(incident: Incident) -> str:
    return f"{incident.ref} is closed already."


def still_open(incident: Incident) -> str:
    return f"{incident.ref} is still open: `/incident close` writes the postmortem."


def opening_in_progress(incident: Incident) -> str:
    return f"{incident.ref} is being opened right now; its channel will be linked here when ready."


def task_added_reply(task: Task, incident: Incident) -> str:
    return f"Task #{task.id} added to {incident.ref}."


def safe(text: str, limit: int = SECTION_LIMIT) -> str:
    """User text made inert for mrkdwn (no pings, no links) and bounded."""
    return escape_mrkdwn(truncate(text, limit))


def local_time(when: datetime, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def section_block(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_LIMIT)}}


def context_block(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, SECTION_LIMIT)}]}


def summary(incident: Incident, tz: ZoneInfo) -> tuple[str, Blocks]:
    """The pinned summary at the top of the incident channel."""
    title = f"{incident.ref}: {incident.title}"
    fields = [
        f"*Severity*\n{incident.severity.value.upper()}",
        f"*Status*\n{incident.status.value.capitalize()}",
        f"*Commander*\n{commander_of(incident)}",
        f"*Started*\n{local_time(incident.started_at, tz)}",
        *(f"*{role.capitalize()}*\n<@{user}>" for role, user in sorted(incident.roles.items())),
    ]
    if incident.resolved_at:
        fields.append(f"*Resolved*\n{local_time(incident.resolved_at, tz)}")
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(title, 150), "emoji": True}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if incident.description:
        blocks.append(section_block(safe(incident.description)))
    if needs_commander(incident) and incident.closed_at is None:
        blocks.append(take_command_button(incident))
    if incident.closed_at:
        blocks.append(context_block(f"Closed {local_time(incident.closed_at, tz)}"))
    blocks.append(
        context_block(
            "Everything said in this channel is recorded in the timeline. `/incident help` lists commands."
        )
    )
    return safe(title, 300), blocks


def topic(incident: Incident) -> str:
    return safe(
        f"{incident.ref} | {incident.severity.value.upper()} | {incident.status.value} | {incident.title}",
        250,
    )


def announcement(incident: Incident) -> tuple[str, Blocks]:
    by = SOURCE_NAMES.get(incident.alert_source or "", "") or f"<@{incident.declared_by}>"
    text = (
        f":rotating_light: *{incident.ref}* ({incident.severity.value.upper()}) declared by "
        f"{by}: {safe(incident.title, 500)}. Join <#{incident.channel_id}>."
    )
    blocks = [section_block(text), context_block(announcement_state(incident))]
    if needs_commander(incident) and incident.closed_at is None:
        blocks.append(take_command_button(incident))
    return text, blocks


def announcement_state(incident: Incident) -> str:
    """Where the incident stands, for the people outside its channel (kept current)."""
    began = incident.impact_started_at or incident.started_at
    if incident.closed_at:
        ended = incident.resolved_at or incident.closed_at
        return f"Closed: impact lasted {duration(ended - began)}. The postmortem is in <#{incident.channel_id}>."
    if incident.resolved_at:
        return f"Resolved after {duration(incident.resolved_at - began)}; the postmortem follows."
    return f"Status: {incident.status.value} · Commander: {commander_of(incident)} · Updates in this thread"


def needs_commander(incident: Incident) -> bool:
    """An incident an alert declared has no commander until a person takes command."""
    return incident.alert_source is not None and incident.commander_id == incident.declared_by


def commander_of(incident: Incident) -> str:
    return "nobody yet: take command below" if needs_commander(incident) else f"<@{incident.commander_id}>"


def has_commander(incident: Incident) -> str:
    return f"<@{incident.commander_id}> has command of {incident.ref} already."


def take_command_button(incident: Incident) -> dict[str, Any]:
    button = {
        "type": "button",
        "action_id": Action.TAKE_COMMAND,
        "value": str(incident.id),
        "style": "primary",
        "text": {"type": "plain_text", "text": "Take command"},
    }
    return {"type": "actions", "elements": [button]}


def alert_entry(source_name: str, status: str, title: str, lines: list[str], url: str) -> str:
    """An alert notification as it is posted in the incident channel (and kept in the timeline)."""
    head = f"{source_name}: {status} — {title}"
    body = "\n".join(f"• {line}" for line in lines[:10])
    more = f"\n… and {len(lines) - 10} more" if len(lines) > 10 else ""
    link = f"\n{url}" if url else ""
    return safe(f"{head}\n{body}{more}{link}".strip(), 2900)


def declared_entry(incident: Incident) -> str:
    severity = incident.severity.value.upper()
    return f"{incident.ref} declared: {incident.title} ({severity}), commander {commander_of(incident)}"


def opened_reply(incident: Incident) -> str:
    return f"{incident.ref} is open: <#{incident.channel_id}>. You are the commander."


def start_failed(incident: Incident, reason: str) -> tuple[str, Blocks]:
    text = (
        f"I could not finish opening {incident.ref} ({reason}). Nothing is lost: "
        "press Retry to finish it."
    )
    button = {
        "type": "button",
        "action_id": Action.RETRY_START,
        "value": str(incident.id),
        "text": {"type": "plain_text", "text": "Retry"},
    }
    return text, [section_block(text), {"type": "actions", "elements": [button]}]


def change_post(who: str, what: str) -> str:
    return f"<@{who}> {what}"


def note_post(who: str, when: datetime, text: str, tz: ZoneInfo, backdated: bool) -> str:
    stamp = f" (at {when.astimezone(tz).strftime('%H:%M')})" if backdated else ""
    return f":memo: Note from <@{who}>{stamp}: {safe(text)}"


def closed_post(incident: Incident, who: str) -> str:
    return f":white_check_mark: {incident.ref} closed by <@{who}>. The postmortem follows."


def database_down(what: str) -> str:
    return (
        f"The bot cannot reach its database right now, so nothing was changed while {what}. "
        "Please try again in a minute."
    )


def something_failed(what: str) -> str:
    return f"Something went wrong while {what}; it is logged for the operator. Please try again."


STEP_WHAT = {
    StepKind.POST: "posting in the incident channel",
    StepKind.ANNOUNCE_TASK: "posting a task in the incident channel",
    StepKind.REFRESH_SUMMARY: "updating the pinned summary",
    StepKind.UPLOAD_POSTMORTEM: "uploading the postmortem",
    StepKind.POSTMORTEM_SUMMARY: "posting the postmortem summary",
    StepKind.UPDATE_REMINDER: "updating the reminder",
    StepKind.FINISH_OPENING: "opening the incident channel",
    StepKind.STAKEHOLDER_UPDATE: "updating the announcement",
    StepKind.CHANNEL_POST: "posting the weekly digest",
}


def slack_is_slow(kind: StepKind) -> str:
    return (
        f"Your change is saved. Slack is slow to answer, so {STEP_WHAT[kind]} is still in progress; "
        "it will appear by itself as soon as Slack answers."
    )


def step_refused(kind: StepKind, code: str) -> str:
    return (
        f"Your change is saved, but Slack refused {STEP_WHAT[kind]} ({code}), so that part did not "
        "appear. Check that the channel exists, is not archived and has the bot in it."
    )


def republishing(incident: Incident) -> str:
    return f"Posting the postmortem of {incident.ref} again; it appears in <#{incident.channel_id}> in a moment."


def nudge(incident: Incident) -> str:
    return (
        f"{commander_of(incident)} {incident.ref} has been quiet for 24 hours. Post a status update "
        "(`/incident status …`) or close it (`/incident close`)."
    )


def incident_list(items: list[Incident], tz: ZoneInfo) -> str:
    if not items:
        return "No open incidents."
    ongoing = [i for i in items if i.status is not Status.RESOLVED]
    resolved = [i for i in items if i.status is Status.RESOLVED]
    parts = []
    if ongoing:
        parts.append("*Open incidents*\n" + "\n".join(_list_line(i, tz) for i in ongoing))
    if resolved:
        parts.append("*Resolved, postmortem to write*\n" + "\n".join(_list_line(i, tz) for i in resolved))
    return truncate("\n\n".join(parts), SECTION_LIMIT)


def _list_line(i: Incident, tz: ZoneInfo) -> str:
    when = f"resolved {local_time(i.resolved_at, tz)}" if i.resolved_at else f"since {local_time(i.started_at, tz)}"
    return f"• *{i.ref}* {safe(i.title, 200)} ({i.severity.value.upper()}, {i.status.value}) <#{i.channel_id}>, {when}"


def resolved_reply(incident: Incident) -> str:
    return (
        f"{incident.ref} is resolved. Keep talking here: it all goes into the postmortem. "
        "`/incident close` when you are ready to write it."
    )


def resolved_already(incident: Incident, tz: ZoneInfo) -> str:
    when = local_time(incident.resolved_at, tz) if incident.resolved_at else "earlier"
    return (
        f"{incident.ref} was resolved already ({when}). `/incident status investigating` reopens it; "
        "`/incident close` writes the postmortem."
    )


def resolved_what(at: datetime, summary: str, tz: ZoneInfo, backdated: bool) -> str:
    stamp = f" (impact ended {at.astimezone(tz).strftime('%H:%M')})" if backdated else ""
    detail = f": {safe(summary, 2000)}" if summary else ""
    return f"resolved the incident{stamp}{detail}. The channel keeps recording until `/incident close`."


def duration(span: timedelta) -> str:
    minutes = max(0, int(span.total_seconds() // 60))
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else ""]
    parts.append(f"{minutes} min" if minutes or not (days or hours) else "")
    return " ".join(p for p in parts if p)


def update_due(incident: Incident, minutes: int) -> tuple[str, Blocks]:
    text = (
        f"{commander_of(incident)} {incident.ref} ({incident.severity.value.upper()}) has had no status update "
        f"for {minutes} min. Post one, so everyone knows where it stands."
    )
    button = {
        "type": "button",
        "action_id": Action.OPEN_STATUS_FORM,
        "value": str(incident.id),
        "text": {"type": "plain_text", "text": "Post a status update"},
    }
    return text, [section_block(text), {"type": "actions", "elements": [button]}]


def postmortem_due(incident: Incident, days: int) -> str:
    return (
        f"{commander_of(incident)} {incident.ref} was resolved more than {days} days ago and its postmortem "
        "is not written yet. `/incident close` asks for what only people know and posts it."
    )


def stats(figures: dict[str, Any], days: int | None) -> str:
    """`/incident stats`: the totals for the caller (private incidents only if they may see them)."""
    period = f"the last {days} days" if days else "all time"
    if not figures["count"]:
        return f"No incidents declared in {period}."
    lines = [f"*Incidents declared in {period}: {figures['count']}*"]
    for severity, g in figures["by_severity"].items():
        lines.append(
            f"• *{severity.upper()}*: {g['count']}; time to detect median {_minutes(g['time_to_detect_median_min'])}, "
            f"time to resolve median {_minutes(g['time_to_resolve_median_min'])} "
            f"(p90 {_minutes(g['time_to_resolve_p90_min'])})"
        )
    rate = figures["tasks_completion_rate"]
    lines.append(f"Corrective tasks done: {'none yet' if rate is None else f'{rate * 100:.0f} %'}")
    return "\n".join(lines)


def _minutes(value: float | int | None) -> str:
    return "unknown" if value is None else f"{value:g} min"
