"""Pure renderers for the postmortem: the full Markdown document and the Slack summary message.

The Markdown follows the shape of the hand-written examples (Issue Summary, Timeline, Root Cause
and Resolution, Corrective and Preventative Measures). Every piece of text a person typed goes
through `replace_mentions` and then an escaper for the target format, so it can neither change
the document's structure nor ping anyone.
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.domain.models import (
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
from bot.ui.postmortem_parts import (
    BOT_NAME,
    KEY_EVENT_MARK,
    NONE_RECORDED,
    SENTENCE_END,
    SUMMARY_CAUSE_LIMIT,
    Clock,
    Thread,
    author_of,
    chronological,
    impact_window,
    participants_of,
    threads,
    time_to_detect,
    time_to_resolve,
    timeline_clock,
)
from bot.ui.text import (
    display_name,
    escape_markdown_inline,
    escape_markdown_paragraphs,
    replace_mentions,
    safe_link_url,
    truncate,
)

# ---------------------------------------------------------------------------------------------
# Markdown


def _inline(text: str, names: dict[str, str]) -> str:
    return escape_markdown_inline(replace_mentions(text, names))


def render_markdown(report: PostmortemReport) -> str:
    entries = chronological(report.entries)
    sections = [
        _title_block(report),
        _issue_summary(report, entries),
        _timeline_section(report, entries, timeline_clock(report.timezone, entries)),
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
    participants = ", ".join(escape_markdown_inline(name) for name in participants_of(report, entries))
    lines = [
        "## Issue Summary",
        "",
        f"- **Duration:** {impact_window(form, report.timezone)}",
        f"- **Impact:** {_inline(form.impact, names) or NONE_RECORDED}",
        f"- **Root cause:** {_inline(_first_sentence(form.root_cause), names) or NONE_RECORDED}",
        f"- **Time to detect:** {time_to_detect(report)}",
        f"- **Time to resolve:** {time_to_resolve(form)}",
        f"- **Participants:** {participants}",
    ]
    return "\n".join(lines)


def _first_sentence(text: str) -> str:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return truncate(SENTENCE_END.split(first_line, maxsplit=1)[0], SUMMARY_CAUSE_LIMIT)


def _timeline_section(report: PostmortemReport, entries: list[TimelineEntry], clock: Clock) -> str:
    lines = list(_timeline_lines(threads(entries), report.names, clock, report.workspace_url))
    return "\n".join(["## Timeline", "", *(lines or ["No timeline entries recorded."])])


def _timeline_lines(
    threads: list[Thread], names: dict[str, str], clock: Clock, workspace_url: str
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


def _entry_markdown(entry: TimelineEntry, names: dict[str, str], clock: Clock) -> str:
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
    author = escape_markdown_inline(author_of(entry, names))
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
