"""The postmortem's summary as a Slack message (Block Kit, within Slack's limits), linking the file."""


from __future__ import annotations

from typing import Any

from bot.domain.models import (
    EntryKind,
    PostmortemReport,
    Task,
    TaskStatus,
    TimelineEntry,
)
from bot.ui.postmortem_parts import (
    BOT_NAME,
    FALLBACK_LIMIT,
    FIELD_LIMIT,
    HEADER_LIMIT,
    LIST_LINE_LIMIT,
    LIST_SHOWN,
    PROSE_LIMIT,
    SECTION_LIMIT,
    SLACK_USER_ID,
    Clock,
    author_of,
    chronological,
    impact_window,
    time_to_detect,
    time_to_resolve,
    timeline_clock,
)
from bot.ui.text import (
    display_name,
    escape_mrkdwn,
    replace_mentions,
    safe_link_url,
    truncate,
)

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
    if SLACK_USER_ID.match(user_id):
        return f"<@{user_id}>"
    return escape_mrkdwn(display_name(user_id, names))


def render_summary_blocks(report: PostmortemReport, file_url: str | None) -> tuple[str, list[dict[str, Any]]]:
    entries = chronological(report.entries)
    clock = timeline_clock(report.timezone, entries)
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
        "Duration": escape_mrkdwn(impact_window(form, report.timezone)),
        "Severity": incident.severity.value.upper(),
        "Commander": _user_mention(incident.commander_id, report.names),
        **{role.capitalize(): _user_mention(user, report.names) for role, user in sorted(incident.roles.items())},
        "Time to detect": time_to_detect(report),
        "Time to resolve": time_to_resolve(form),
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


def _key_events_section(entries: list[TimelineEntry], names: dict[str, str], clock: Clock) -> dict[str, Any]:
    key_events = [entry for entry in entries if entry.is_key]
    lines = [_key_event_line(entry, names, clock) for entry in key_events[:LIST_SHOWN]]
    return _list_section("Key events", lines, len(key_events))


def _key_event_line(entry: TimelineEntry, names: dict[str, str], clock: Clock) -> str:
    author = BOT_NAME if entry.kind is EntryKind.SYSTEM else escape_mrkdwn(author_of(entry, names))
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
