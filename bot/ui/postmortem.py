"""Pure renderers for the postmortem: the full Markdown document and the Slack summary message.

The Markdown follows the shape of the hand-written examples (Issue Summary, Timeline, Root Cause
and Resolution, Corrective and Preventative Measures). Every piece of text a person typed goes
through `replace_mentions` and then an escaper for the target format, so it can neither change
the document's structure nor ping anyone.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.models import (
    CloseForm,
    EntryKind,
    FileRef,
    Incident,
    PostmortemReport,
    State,
    Task,
    TaskStatus,
    TimelineEntry,
)
from bot.domain.rules import permalink
from bot.ui.text import (
    display_name,
    escape_markdown_inline,
    escape_markdown_paragraphs,
    escape_mrkdwn,
    replace_mentions,
    safe_link_url,
    truncate,
)

BOT_NAME = "incident-bot"
NONE_RECORDED = "None recorded."
KEY_EVENT_MARK = "📌 **Key event:**"
SUMMARY_CAUSE_LIMIT = 300

# Slack's limits, with headroom: Slack counts some characters (emoji) as more than one.
HEADER_LIMIT = 150
SECTION_LIMIT = 2900
FIELD_LIMIT = 1900
FALLBACK_LIMIT = 2900
PROSE_LIMIT = 1200  # impact, root cause, resolution in the summary: the file has the rest
LIST_LINE_LIMIT = 240
LIST_SHOWN = 10

_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")


# ---------------------------------------------------------------------------------------------
# Time


def _as_utc(moment: datetime) -> datetime:
    # Storage is UTC; a naive value read back from SQLite means UTC, not the host's zone.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class _Clock:
    zone: ZoneInfo
    with_date: bool = False

    def local(self, moment: datetime) -> datetime:
        return _as_utc(moment).astimezone(self.zone)

    def stamp(self, moment: datetime) -> str:
        return self.local(moment).strftime("%Y-%m-%d %H:%M" if self.with_date else "%H:%M")


def _timeline_clock(timezone: str, entries: list[TimelineEntry]) -> _Clock:
    """Dates go on every time, or none: decided once from the first and last entry."""
    clock = _Clock(ZoneInfo(timezone))
    if not entries:
        return clock
    first, last = clock.local(entries[0].occurred_at), clock.local(entries[-1].occurred_at)
    return _Clock(clock.zone, with_date=first.date() != last.date())


def format_span(span: timedelta) -> str:
    """`1 h 45 min`, `5 min`, `2 d 3 h`: whole minutes, never negative."""
    minutes = max(int(span.total_seconds() // 60), 0)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(part for part in parts if part) or "0 min"


def _impact_window(form: CloseForm, timezone: str) -> str:
    """`2024-01-15 22:00 to 23:45 (UTC), 1 h 45 min`; the end gets a date when it is another day."""
    clock = _Clock(ZoneInfo(timezone))
    start, end = clock.local(form.impact_start), clock.local(form.impact_end)
    end_format = "%H:%M" if start.date() == end.date() else "%Y-%m-%d %H:%M"
    window = f"{start:%Y-%m-%d %H:%M} to {end.strftime(end_format)} ({timezone})"
    return f"{window}, {_time_to_resolve(form)}"


def _time_to_detect(report: PostmortemReport) -> str:
    return format_span(_as_utc(report.incident.started_at) - _as_utc(report.form.impact_start))


def _time_to_resolve(form: CloseForm) -> str:
    return format_span(_as_utc(form.impact_end) - _as_utc(form.impact_start))


# ---------------------------------------------------------------------------------------------
# Timeline shape


@dataclass(frozen=True)
class _Thread:
    entry: TimelineEntry
    replies: list[TimelineEntry]


def _chronological(entries: Iterable[TimelineEntry]) -> list[TimelineEntry]:
    visible = (entry for entry in entries if entry.deleted_at is None)
    return sorted(visible, key=lambda entry: (_as_utc(entry.occurred_at), entry.ts))


def _threads(entries: list[TimelineEntry]) -> list[_Thread]:
    """Top-level entries in time order, each with its replies; orphaned replies stand alone."""
    parents = {(e.channel_id, e.ts) for e in entries if not e.is_reply}
    replies: dict[tuple[str, str | None], list[TimelineEntry]] = defaultdict(list)
    roots: list[TimelineEntry] = []
    for entry in entries:
        parent_key = (entry.channel_id, entry.thread_ts)
        if entry.is_reply and parent_key in parents:
            replies[parent_key].append(entry)
        else:
            roots.append(entry)
    return [_Thread(root, _replies_of(root, replies)) for root in roots]


def _replies_of(
    root: TimelineEntry, replies: dict[tuple[str, str | None], list[TimelineEntry]]
) -> list[TimelineEntry]:
    # An orphaned reply shown at top level must not collect its siblings: they stand alone too.
    return [] if root.is_reply else replies.get((root.channel_id, root.ts), [])


def _author(entry: TimelineEntry, names: dict[str, str]) -> str:
    if entry.author_id and entry.author_id in names:
        return names[entry.author_id]
    return entry.author_name or display_name(entry.author_id, names)


def _participants(report: PostmortemReport, entries: list[TimelineEntry]) -> list[str]:
    """Commander first, then the declarer and everyone who wrote in the timeline or acted through
    a command (notes, status, hand-overs), in order of first appearance; the bot itself is not."""
    incident = report.incident
    seen: dict[str, str] = {}
    for person in (incident.commander_id, incident.declared_by):
        seen.setdefault(person, display_name(person, report.names))
    for entry in entries:
        key = entry.author_id or entry.author_name  # a system entry without one is the bot's own
        if key and key not in seen:
            seen[key] = _author(entry, report.names)
    return list(seen.values())


# ---------------------------------------------------------------------------------------------
# Markdown


def _inline(text: str, names: dict[str, str]) -> str:
    return escape_markdown_inline(replace_mentions(text, names))


def render_markdown(report: PostmortemReport) -> str:
    entries = _chronological(report.entries)
    sections = [
        _title_block(report),
        _issue_summary(report, entries),
        _timeline_section(report, entries, _timeline_clock(report.timezone, entries)),
        _root_cause_and_resolution(report),
        _measures(report),
    ]
    return "\n\n".join(sections) + "\n"


def _title_block(report: PostmortemReport) -> str:
    incident = report.incident
    title = f"# {incident.ref}: {_inline(incident.title, report.names) or 'Untitled'} — Postmortem"
    return f"{title}\n\n{_overview_line(incident, report.names)}"


def _overview_line(incident: Incident, names: dict[str, str]) -> str:
    status = "closed" if incident.state is State.CLOSED else incident.status.value
    channel_name = _inline(incident.channel_name, names) if incident.channel_name else incident.channel_id
    channel = f"#{channel_name}" if channel_name else "none"
    commander = escape_markdown_inline(display_name(incident.commander_id, names))
    roles = "".join(
        f" · **{role.capitalize()}:** {escape_markdown_inline(display_name(user, names))}"
        for role, user in sorted(incident.roles.items())
    )
    return (
        f"**Severity:** {incident.severity.value.upper()} · **Commander:** {commander}{roles} · "
        f"**Status:** {status} · **Channel:** {channel}"
    )


def _issue_summary(report: PostmortemReport, entries: list[TimelineEntry]) -> str:
    form, names = report.form, report.names
    participants = ", ".join(escape_markdown_inline(name) for name in _participants(report, entries))
    lines = [
        "## Issue Summary",
        "",
        f"- **Duration:** {_impact_window(form, report.timezone)}",
        f"- **Impact:** {_inline(form.impact, names) or NONE_RECORDED}",
        f"- **Root cause:** {_inline(_first_sentence(form.root_cause), names) or NONE_RECORDED}",
        f"- **Time to detect:** {_time_to_detect(report)}",
        f"- **Time to resolve:** {_time_to_resolve(form)}",
        f"- **Participants:** {participants}",
    ]
    return "\n".join(lines)


def _first_sentence(text: str) -> str:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return truncate(_SENTENCE_END.split(first_line, maxsplit=1)[0], SUMMARY_CAUSE_LIMIT)


def _timeline_section(report: PostmortemReport, entries: list[TimelineEntry], clock: _Clock) -> str:
    lines = list(_timeline_lines(_threads(entries), report.names, clock, report.workspace_url))
    return "\n".join(["## Timeline", "", *(lines or ["No timeline entries recorded."])])


def _timeline_lines(
    threads: list[_Thread], names: dict[str, str], clock: _Clock, workspace_url: str
) -> Iterator[str]:
    for thread in threads:
        yield "- " + _entry_markdown(thread.entry, names, clock) + _link(thread.entry, workspace_url)
        # Two spaces put the reply inside its parent's list item (CommonMark list indentation).
        for reply in thread.replies:
            yield "  - " + _entry_markdown(reply, names, clock) + _link(reply, workspace_url)


def _link(entry: TimelineEntry, workspace_url: str) -> str:
    """A link back to the message in Slack, where the discussion around it can be read."""
    url = safe_link_url(permalink(workspace_url, entry.channel_id, entry.ts)) if workspace_url else None
    return f" [↗]({url})" if url else ""


def _entry_markdown(entry: TimelineEntry, names: dict[str, str], clock: _Clock) -> str:
    parts = [f"**{clock.stamp(entry.occurred_at)}** —"]
    if entry.is_key:
        parts.append(KEY_EVENT_MARK)
    parts.append(_entry_author_markdown(entry, names) + ":")
    parts.append(_entry_body_markdown(entry, names))
    if entry.edited_at is not None:
        parts.append("(edited)")
    return " ".join(parts)


def _entry_author_markdown(entry: TimelineEntry, names: dict[str, str]) -> str:
    if entry.kind is EntryKind.SYSTEM:
        return BOT_NAME
    author = escape_markdown_inline(_author(entry, names))
    return f"{author} (note)" if entry.kind is EntryKind.NOTE else author


def _entry_body_markdown(entry: TimelineEntry, names: dict[str, str]) -> str:
    text = _inline(entry.text, names)
    if text and entry.is_key:
        text = f"**{text}**"
    elif text and entry.kind is EntryKind.SYSTEM:
        text = f"_{text}_"
    files = _files_markdown(entry.files)
    if files:
        text = f"{text} — files: {files}" if text else f"files: {files}"
    return text or "(no text)"


def _files_markdown(files: list[FileRef]) -> str:
    return ", ".join(_file_link(file) for file in files)


def _file_link(file: FileRef) -> str:
    name = escape_markdown_inline(file.name) or "file"
    url = safe_link_url(file.url)
    return f"[{name}]({url})" if url else name


def _root_cause_and_resolution(report: PostmortemReport) -> str:
    form, names = report.form, report.names
    cause = escape_markdown_paragraphs(replace_mentions(form.root_cause, names)) or NONE_RECORDED
    resolution = escape_markdown_paragraphs(replace_mentions(form.resolution, names)) or NONE_RECORDED
    return f"## Root Cause and Resolution\n\n**Root cause:** {cause}\n\n**Resolution:** {resolution}"


def _measures(report: PostmortemReport) -> str:
    escaped = (_inline(item, report.names) for item in report.form.improvements)
    improvements = [f"- {text}" for text in escaped if text]
    tasks = [_task_markdown(task, report.names) for task in report.tasks]
    return "\n".join(
        [
            "## Corrective and Preventative Measures",
            "",
            "### Improvements/Fixes",
            "",
            *(improvements or [NONE_RECORDED]),
            "",
            "### Tasks to Address the Issue",
            "",
            *(tasks or [NONE_RECORDED]),
        ]
    )


def _task_markdown(task: Task, names: dict[str, str]) -> str:
    box = "[x]" if task.status is TaskStatus.DONE else "[ ]"
    owner = escape_markdown_inline(display_name(task.owner_id, names))
    due = f"due {task.due_date.isoformat()}" if task.due_date else "no due date"
    description = _inline(task.description, names) or "(no description)"
    return f"- {box} {description} — owner: @{owner}, {due}"


# ---------------------------------------------------------------------------------------------
# Slack summary message


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack would otherwise auto-link plain `@here`-like words and channel names.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _fit_mrkdwn(escaped: str, limit: int) -> str:
    """Truncate already-escaped mrkdwn without cutting an `&amp;`-style entity in half."""
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1].rstrip()
    amp = cut.rfind("&", max(len(cut) - 5, 0))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def _user_mrkdwn(text: str, names: dict[str, str], limit: int, one_line: bool = False) -> str:
    plain = replace_mentions(text, names)
    if one_line:
        plain = " ".join(plain.split())
    return _fit_mrkdwn(escape_mrkdwn(plain), limit)


def _user_mention(user_id: str, names: dict[str, str]) -> str:
    # Only ids shaped like Slack's are turned into mentions; anything else is shown as text.
    if _SLACK_USER_ID.match(user_id):
        return f"<@{user_id}>"
    return escape_mrkdwn(display_name(user_id, names))


def render_summary_blocks(report: PostmortemReport, file_url: str | None) -> tuple[str, list[dict[str, Any]]]:
    entries = _chronological(report.entries)
    clock = _timeline_clock(report.timezone, entries)
    blocks = [
        _header_block(report),
        _fields_block(report),
        _prose_section("Impact", report.form.impact, report.names),
        _prose_section("Root cause", report.form.root_cause, report.names),
        _prose_section("Resolution", report.form.resolution, report.names),
        _key_events_section(entries, report.names, clock),
        _tasks_section(report.tasks, report.names),
        _timeline_context(entries),
    ]
    link = _file_link_section(file_url)
    if link is not None:
        blocks.append(link)
    return _fallback_text(report), blocks


def _summary_title(report: PostmortemReport) -> str:
    title = " ".join(replace_mentions(report.incident.title, report.names).split())
    return f"{report.incident.ref} postmortem: {title}"


def _header_block(report: PostmortemReport) -> dict[str, Any]:
    # plain_text is never parsed for mentions, so the title needs no escaping here.
    text = truncate(_summary_title(report), HEADER_LIMIT)
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def _fields_block(report: PostmortemReport) -> dict[str, Any]:
    incident, form = report.incident, report.form
    fields = {
        "Duration": escape_mrkdwn(_impact_window(form, report.timezone)),
        "Severity": incident.severity.value.upper(),
        "Commander": _user_mention(incident.commander_id, report.names),
        **{role.capitalize(): _user_mention(user, report.names) for role, user in sorted(incident.roles.items())},
        "Time to detect": _time_to_detect(report),
        "Time to resolve": _time_to_resolve(form),
    }
    return {
        "type": "section",
        "fields": [_mrkdwn(_fit_mrkdwn(f"*{name}*\n{value}", FIELD_LIMIT)) for name, value in fields.items()],
    }


def _prose_section(title: str, text: str, names: dict[str, str]) -> dict[str, Any]:
    body = _user_mrkdwn(text, names, PROSE_LIMIT) or "_None recorded._"
    return {"type": "section", "text": _mrkdwn(f"*{title}*\n{body}")}


def _list_section(title: str, lines: list[str], total: int) -> dict[str, Any]:
    """Up to LIST_SHOWN lines, then how many were left out; callers pass only the shown lines."""
    body = "\n".join(lines) if lines else "_None recorded._"
    if total > len(lines):
        body += f"\n…and {total - len(lines)} more"
    return {"type": "section", "text": _mrkdwn(_fit_mrkdwn(f"*{title}*\n{body}", SECTION_LIMIT))}


def _key_events_section(entries: list[TimelineEntry], names: dict[str, str], clock: _Clock) -> dict[str, Any]:
    key_events = [entry for entry in entries if entry.is_key]
    lines = [_key_event_line(entry, names, clock) for entry in key_events[:LIST_SHOWN]]
    return _list_section("Key events", lines, len(key_events))


def _key_event_line(entry: TimelineEntry, names: dict[str, str], clock: _Clock) -> str:
    author = BOT_NAME if entry.kind is EntryKind.SYSTEM else escape_mrkdwn(_author(entry, names))
    text = _user_mrkdwn(entry.text, names, LIST_LINE_LIMIT, one_line=True)
    return _fit_mrkdwn(f"• *{clock.stamp(entry.occurred_at)}* {author}: {text}", LIST_LINE_LIMIT)


def _tasks_section(tasks: list[Task], names: dict[str, str]) -> dict[str, Any]:
    lines = [_task_line(task, names) for task in tasks[:LIST_SHOWN]]
    return _list_section("Tasks", lines, len(tasks))


def _task_line(task: Task, names: dict[str, str]) -> str:
    mark = ":white_check_mark:" if task.status is TaskStatus.DONE else "•"
    due = f"due {task.due_date.isoformat()}" if task.due_date else "no due date"
    # The description is cut first so the owner and due date always fit on the line.
    description = _user_mrkdwn(task.description, names, LIST_LINE_LIMIT - 60, one_line=True)
    return f"{mark} {description} — {_user_mention(task.owner_id, names)}, {due}"


def _timeline_context(entries: list[TimelineEntry]) -> dict[str, Any]:
    count = len(entries)
    noun = "entry" if count == 1 else "entries"
    return {"type": "context", "elements": [_mrkdwn(f"Timeline: {count:,} {noun}")]}


def _file_link_section(file_url: str | None) -> dict[str, Any] | None:
    url = safe_link_url(file_url) if file_url else None
    if url is None:
        return None
    return {"type": "section", "text": _mrkdwn(f"<{escape_mrkdwn(url)}|Full postmortem>")}


def _fallback_text(report: PostmortemReport) -> str:
    impact = " ".join(replace_mentions(report.form.impact, report.names).split())
    text = escape_mrkdwn(f"{_summary_title(report)} — Impact: {impact}")
    return _fit_mrkdwn(text, FALLBACK_LIMIT)
