"""Pure rules: command grammar, names, backdating and reminder days. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.domain.models import Severity, Status
from bot.domain.slug import slugify

CHANNEL_NAME_LIMIT = 80  # Slack's limit on channel names
TITLE_LIMIT = 200
USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
DUE_SUFFIX = re.compile(r"\s+due\s+(\d{4}-\d{2}-\d{2})\s*$", re.IGNORECASE)
NOTE_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)\s+(\S.*)$", re.DOTALL)


class UsageError(ValueError):
    """Input that does not follow the grammar; the message tells the user what to type."""


@dataclass(frozen=True)
class Subcommand:
    name: str
    rest: str


def split_subcommand(text: str) -> Subcommand:
    parts = (text or "").strip().split(maxsplit=1)
    if not parts:
        return Subcommand("help", "")
    return Subcommand(parts[0].lower(), parts[1].strip() if len(parts) > 1 else "")


def clean_title(raw: str) -> str:
    """A title as people typed it, one line, bounded; markup is neutralised when rendered."""
    title = " ".join((raw or "").split())
    return title[:TITLE_LIMIT].rstrip() if len(title) > TITLE_LIMIT else title


def channel_name(number: int, title: str) -> str:
    """inc-<number>-<slug>: lowercase, digits, hyphens, at most 80 characters."""
    prefix = f"inc-{number}"
    slug = slugify(title, CHANNEL_NAME_LIMIT - len(prefix) - 1)
    return f"{prefix}-{slug}" if slug else prefix


def parse_severity(text: str) -> Severity:
    value = text.strip().lower()
    if value in {"1", "2", "3", "4"}:
        value = "sev" + value
    try:
        return Severity(value)
    except ValueError:
        raise UsageError("Severity must be one of sev1, sev2, sev3, sev4.") from None


def parse_status(text: str) -> tuple[Status, str]:
    word, _, message = text.strip().partition(" ")
    try:
        status = Status(word.lower())
    except ValueError:
        status = Status.CLOSED
    if status in (Status.CLOSED, Status.RESOLVED):
        raise UsageError(
            "Status must be investigating, identified or monitoring (`/incident resolve` when the impact "
            "is over, `/incident close` to close)."
        )
    return status, message.strip()


def parse_user(text: str) -> str:
    match = USER_MENTION.match(text.strip())
    if not match:
        raise UsageError("Mention a person, e.g. `@jane` (pick them from the autocomplete).")
    return match.group(1)


def parse_task(text: str, today: date) -> tuple[str, str, date | None]:
    """`<@owner> description [due YYYY-MM-DD]` -> (owner, description, due)."""
    owner = parse_user(text)
    rest = USER_MENTION.sub("", text.strip(), count=1).strip()
    due = None
    match = DUE_SUFFIX.search(rest)
    if match:
        due = _parse_date(match.group(1))
        rest = rest[: match.start()].strip()
        if due < today:
            raise UsageError(f"The due date {due.isoformat()} is in the past.")
    if not rest:
        raise UsageError("Describe the task after the owner.")
    return owner, rest, due


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"`{text}` is not a date; use YYYY-MM-DD.") from None


def parse_note(text: str, now: datetime, tz: ZoneInfo) -> tuple[datetime, str]:
    """A leading HH:MM backdates the note to that time today (local). A time later than now
    means the evening before: a note records something that already happened."""
    match = NOTE_TIME.match(text.strip())
    if not match:
        if not text.strip():
            raise UsageError("Write the note after `note`, e.g. `/incident note 14:05 rolled back`.")
        return now, text.strip()
    local_now = now.astimezone(tz)
    at = datetime.combine(local_now.date(), time(int(match.group(1)), int(match.group(2))), tzinfo=tz)
    if at > local_now:
        at -= timedelta(days=1)
    return at.astimezone(UTC), match.group(3).strip()


RESOLVE_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?:\s+(.*))?$", re.DOTALL)
ROLES = ("commander", "comms", "ops", "scribe")


def parse_resolve(text: str, now: datetime, tz: ZoneInfo) -> tuple[datetime, str]:
    """`resolve [HH:MM] [summary]`: the impact's end (now, or HH:MM backdated as a note is)."""
    match = RESOLVE_TIME.match(text.strip())
    if not match:
        return now, text.strip()
    at, _ = parse_note(f"{match.group(1)}:{match.group(2)} x", now, tz)
    return at, (match.group(3) or "").strip()


def parse_role(text: str) -> tuple[str, str | None]:
    """`role <commander|comms|ops|scribe> <@user|none>`: the role and its person (None clears)."""
    role, _, who = text.strip().partition(" ")
    role = role.lower()
    if role not in ROLES:
        raise UsageError(f"Role must be one of {', '.join(ROLES)}, e.g. `/incident role comms @jane`.")
    if who.strip().lower() == "none":
        if role == "commander":
            raise UsageError("An incident always has a commander: hand command over with `/incident commander @jane`.")
        return role, None
    if not who.strip():
        raise UsageError(f"Say who: `/incident role {role} @jane`, or `/incident role {role} none` to clear it.")
    return role, parse_user(who)


STATS_PERIODS = {"30d": 30, "90d": 90, "365d": 365, "all": None}


def parse_stats_period(text: str) -> int | None:
    """`stats [30d|90d|365d|all]` (30d when left out): the days to look back, None for all."""
    word = text.strip().lower() or "30d"
    if word not in STATS_PERIODS:
        raise UsageError("Period must be 30d, 90d, 365d or all, e.g. `/incident stats 90d`.")
    return STATS_PERIODS[word]


def ts_to_datetime(ts: str) -> datetime:
    return datetime.fromtimestamp(float(ts), UTC)


def permalink(workspace_url: str, channel_id: str, ts: str) -> str:
    base = workspace_url if workspace_url.endswith("/") else workspace_url + "/"
    return f"{base}archives/{channel_id}/p{ts.replace('.', '')}"


# ---- reminder days (DESIGN §1 "reminder days") -------------------------------------------------

UNDATED_INTERVAL_DAYS = 7


def local_day(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date()


def first_reminder_day(due: date | None, created_day: date) -> date:
    """On the due date; a task without one a week after it was made."""
    return due if due is not None else created_day + timedelta(days=UNDATED_INTERVAL_DAYS)


def next_reminder_day(due: date | None, today: date) -> date:
    """After a reminder today: tomorrow while overdue (or due today), a week later when undated.
    Counted from today, so days the bot was down are not owed."""
    if due is None:
        return today + timedelta(days=UNDATED_INTERVAL_DAYS)
    return max(today + timedelta(days=1), due)


def snoozed_until(today: date, days: int) -> date:
    """Snooze N days: nothing on the next N days, the next reminder the day after them."""
    return today + timedelta(days=days + 1)


def reminders_allowed(now: datetime, tz: ZoneInfo, not_before: time) -> bool:
    return now.astimezone(tz).time() >= not_before


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"
