"""What both renderings of a postmortem (the Markdown file and the Slack summary) share: the
limits, the clock that prints times, the threads of the timeline."""


from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain.models import (
    CloseForm,
    PostmortemReport,
    TimelineEntry,
)
from bot.ui.text import (
    display_name,
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

SENTENCE_END = re.compile(r"(?<=[.!?])\s")
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")


# ---------------------------------------------------------------------------------------------
# Time


def as_utc(moment: datetime) -> datetime:
    # Storage is UTC; a naive value read back from SQLite means UTC, not the host's zone.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Clock:
    zone: ZoneInfo
    with_date: bool = False

    def local(self, moment: datetime) -> datetime:
        return as_utc(moment).astimezone(self.zone)

    def stamp(self, moment: datetime) -> str:
        return self.local(moment).strftime("%Y-%m-%d %H:%M" if self.with_date else "%H:%M")


def timeline_clock(timezone: str, entries: list[TimelineEntry]) -> Clock:
    """Dates go on every time, or none: decided once from the first and last entry."""
    clock = Clock(ZoneInfo(timezone))
    if not entries:
        return clock
    first, last = clock.local(entries[0].occurred_at), clock.local(entries[-1].occurred_at)
    return Clock(clock.zone, with_date=first.date() != last.date())


def format_span(span: timedelta) -> str:
    """`1 h 45 min`, `5 min`, `2 d 3 h`: whole minutes, never negative."""
    minutes = max(int(span.total_seconds() // 60), 0)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(part for part in parts if part) or "0 min"


def impact_window(form: CloseForm, timezone: str) -> str:
    """`2024-01-15 22:00 to 23:45 (UTC), 1 h 45 min`; the end gets a date when it is another day."""
    clock = Clock(ZoneInfo(timezone))
    start, end = clock.local(form.impact_start), clock.local(form.impact_end)
    end_format = "%H:%M" if start.date() == end.date() else "%Y-%m-%d %H:%M"
    window = f"{start:%Y-%m-%d %H:%M} to {end.strftime(end_format)} ({timezone})"
    return f"{window}, {time_to_resolve(form)}"


def time_to_detect(report: PostmortemReport) -> str:
    return format_span(as_utc(report.incident.started_at) - as_utc(report.form.impact_start))


def time_to_resolve(form: CloseForm) -> str:
    return format_span(as_utc(form.impact_end) - as_utc(form.impact_start))


# ---------------------------------------------------------------------------------------------
# Timeline shape


@dataclass(frozen=True)
class Thread:
    entry: TimelineEntry
    replies: list[TimelineEntry]


def chronological(entries: Iterable[TimelineEntry]) -> list[TimelineEntry]:
    visible = (entry for entry in entries if entry.deleted_at is None)
    return sorted(visible, key=lambda entry: (as_utc(entry.occurred_at), entry.ts))


def threads(entries: list[TimelineEntry]) -> list[Thread]:
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
    return [Thread(root, replies_of(root, replies)) for root in roots]


def replies_of(
    root: TimelineEntry, replies: dict[tuple[str, str | None], list[TimelineEntry]]
) -> list[TimelineEntry]:
    # An orphaned reply shown at top level must not collect its siblings: they stand alone too.
    return [] if root.is_reply else replies.get((root.channel_id, root.ts), [])


def author_of(entry: TimelineEntry, names: dict[str, str]) -> str:
    if entry.author_id and entry.author_id in names:
        return names[entry.author_id]
    return entry.author_name or display_name(entry.author_id, names)


def participants_of(report: PostmortemReport, entries: list[TimelineEntry]) -> list[str]:
    """Commander first, then the declarer and everyone who wrote in the timeline or acted through
    a command (notes, status, hand-overs), in order of first appearance; the bot itself is not."""
    incident = report.incident
    seen: dict[str, str] = {}
    for person in (incident.commander_id, incident.declared_by):
        seen.setdefault(person, display_name(person, report.names))
    for entry in entries:
        key = entry.author_id or entry.author_name  # a system entry without one is the bot's own
        if key and key not in seen:
            seen[key] = author_of(entry, report.names)
    return list(seen.values())
