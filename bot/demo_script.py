"""The demo's incident script: a YAML or JSON file, validated and turned into concrete moments.

A script is written by hand, often as someone's first contact with the bot, so every problem is
reported as one line naming the field path and the fix, never as a pydantic or YAML traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from bot.ui.modals import MAX_TASK_ROWS

BUILT_IN = "demo_incident.yaml"
TIME_HINT = "use HH:MM or YYYY-MM-DD HH:MM"
HANDLE_HINT = "use letters, digits, '.', '_' or '-' (no spaces), e.g. alice"
REMIND_AT = time(9, 30)  # after REMINDER_NOT_BEFORE (09:00), as a sweep on a working morning
_CLOCK_TIME = re.compile(r"^(?:(\d{4}-\d{2}-\d{2})[ T])?(\d{1,2}):(\d{2})$")
_HANDLE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$"
_CHANNEL = r"^[a-z0-9][a-z0-9_-]{0,79}$"

# How to fix a field, by its name, for errors whose own message does not say.
HINTS: dict[str, str] = {
    "title": "add title: <what is broken>, e.g. title: Checkout returns 500s",
    "date": "use the day the incident starts as YYYY-MM-DD, e.g. date: 2026-03-14",
    "declared_by": "name the person who types /incident start (a handle from people)",
    "people": "list the people as handle: Real Name, e.g. people: {alice: Alice Archer}",
    "messages": "give a list of {time, author, text} or {time, author, command} entries",
    "time": TIME_HINT,
    "declared_at": TIME_HINT,
    "impact_start": TIME_HINT,
    "impact_end": TIME_HINT,
    "author": "name a handle from people (or set bot: true for an integration)",
    "by": "name a handle from people",
    "owner": "name a handle from people",
    "due": "use YYYY-MM-DD, e.g. due: 2026-03-20",
    "severity": "use sev1, sev2, sev3 or sev4",
    "thread": "give the 0-based index of an earlier message to reply to",
    "channel": "use a Slack channel name without #, e.g. general",
    "timezone": "use an IANA time zone name such as UTC or Europe/Berlin",
}


class ScriptError(Exception):
    """A script cannot be played; the message is the one line shown to the user."""


def _is_clock_time(value: str) -> str:
    if not _parse_clock_time(value):
        raise ValueError(f"{value!r} is not a time; {TIME_HINT}")
    return value


def _is_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a time zone; {HINTS['timezone']}") from None
    return value


ClockTime = Annotated[str, AfterValidator(_is_clock_time)]
Handle = Annotated[str, Field(pattern=_HANDLE)]
Text = Annotated[str, Field(min_length=1, max_length=3000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(_Strict):
    """One thing said in the incident channel: a message (text) or a slash command (command)."""

    time: ClockTime
    # A person's handle, or any name for an integration (bot: true), e.g. "PagerDuty".
    author: Annotated[str, Field(min_length=1, max_length=80)]
    text: Text | None = None
    command: Text | None = None
    bot: bool = False
    thread: int | None = Field(default=None, ge=0)
    key: bool = False
    edit: Text | None = None
    delete: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> Message:
        if (self.text is None) == (self.command is None):
            raise ValueError("needs exactly one of text (a message) or command (an /incident subcommand)")
        if self.command is not None and (self.bot or self.thread is not None or self.key or self.edit or self.delete):
            raise ValueError("a command cannot have bot, thread, key, edit or delete; those are for messages")
        if self.edit is not None and self.delete:
            raise ValueError("a message is either edited or deleted; remove edit or delete")
        return self


class Task(_Strict):
    description: Text
    owner: Handle
    due: date | None = None


class Close(_Strict):
    time: ClockTime
    by: Handle
    impact: Text
    impact_start: ClockTime
    impact_end: ClockTime
    root_cause: Text
    resolution: Text
    improvements: list[Text] = Field(default_factory=list)
    tasks: list[Task] = Field(default_factory=list, max_length=MAX_TASK_ROWS)


class Script(_Strict):
    title: Annotated[str, Field(min_length=1, max_length=150)]
    timezone: Annotated[str, AfterValidator(_is_time_zone)] = "UTC"
    date: date
    declared_by: Handle
    declared_at: ClockTime | None = None
    channel: Annotated[str, Field(pattern=_CHANNEL)] = "general"
    severity: Literal["sev1", "sev2", "sev3", "sev4"] | None = None
    people: dict[Handle, Annotated[str, Field(min_length=1, max_length=80)]] = Field(min_length=1)
    messages: list[Message] = Field(default_factory=list)
    close: Close | None = None
    remind: bool = False


@dataclass(frozen=True)
class Scenario:
    """A valid script with every time resolved to an aware moment in the script's zone."""

    script: Script
    zone: ZoneInfo
    declared_at: datetime
    message_times: list[datetime]
    close_at: datetime | None
    impact_start: datetime | None
    impact_end: datetime | None
    remind_at: datetime | None


# ---------------------------------------------------------------------------------------------
# Loading


def load_scenario(path: str | None) -> Scenario:
    """The built-in script when path is None; ScriptError with one line for anything wrong."""
    source = _read(path)
    where = path or BUILT_IN
    script = _validate(_parse(source, where))
    _check_references(script)
    return _resolve(script)


def _read(path: str | None) -> str:
    if path is None:
        return resources.files("bot").joinpath(BUILT_IN).read_text(encoding="utf-8")
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"script {path}: cannot be read ({exc.__class__.__name__}: {exc}); check the path") from None


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads an unquoted 22:00 as the number 1320 (base 60); a script means a time."""


def _int_or_clock_time(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | str:
    text = str(loader.construct_scalar(node))
    return text if ":" in text else int(loader.construct_yaml_int(node))


_Loader.add_constructor("tag:yaml.org,2002:int", _int_or_clock_time)


def _parse(source: str, where: str) -> Any:
    try:
        data = yaml.load(source, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "unreadable"
        raise ScriptError(f"script {where}: is not valid YAML or JSON{line} ({problem}); fix the syntax") from None
    if not isinstance(data, dict):
        raise ScriptError(
            f"script {where}: must be a mapping of fields (title, date, people, ...), see docs/demo-script.md"
        )
    return data


def _validate(data: dict[str, Any]) -> Script:
    try:
        return Script.model_validate(data)
    except ValidationError as exc:
        raise ScriptError(_describe(exc.errors()[0])) from None


def _describe(error: ErrorDetails) -> str:
    path = field_path(error["loc"])
    field = next((str(part) for part in reversed(error["loc"]) if isinstance(part, str)), "")
    hint = HINTS.get(field, "see docs/demo-script.md")
    kind = error["type"]
    if kind == "missing":
        return f"script {path}: is missing; {hint}"
    if kind == "extra_forbidden":
        return f"script {path}: is not a field here; remove it or check its spelling (see docs/demo-script.md)"
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if kind == "value_error":
        return f"script {path}: {message}"
    if kind == "string_pattern_mismatch":
        hint = HANDLE_HINT if field != "channel" else HINTS["channel"]
    return f"script {path}: {_shown(error.get('input'))} is invalid ({message}); {hint}"


def field_path(loc: tuple[int | str, ...]) -> str:
    """('messages', 3, 'time') -> messages[3].time"""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------------
# Cross-field checks: pydantic checks each field, these check that the fields fit together.


def _check_references(script: Script) -> None:
    _need_person(script, "declared_by", script.declared_by)
    for index, message in enumerate(script.messages):
        if not message.bot:
            _need_person(script, f"messages[{index}].author", message.author)
        if message.thread is not None:
            _check_thread(script, index, message.thread)
    if script.close is not None:
        _need_person(script, "close.by", script.close.by)
        for index, task in enumerate(script.close.tasks):
            _need_person(script, f"close.tasks[{index}].owner", task.owner)
    _check_remind(script)


def _need_person(script: Script, path: str, handle: str) -> None:
    if handle not in script.people:
        known = ", ".join(sorted(script.people))
        raise ScriptError(f"script {path}: {handle!r} is not in people; add it to people or use one of: {known}")


def _check_thread(script: Script, index: int, parent: int) -> None:
    path = f"messages[{index}].thread"
    if parent >= index:
        raise ScriptError(f"script {path}: {parent} is not an earlier message; reply to a message above it")
    target = script.messages[parent]
    if target.text is None or target.delete:
        raise ScriptError(f"script {path}: messages[{parent}] is a command or deleted; reply to a kept message")


def _check_remind(script: Script) -> None:
    if not script.remind:
        return
    if script.close is None or not script.close.tasks:
        raise ScriptError("script remind: needs close.tasks; add a task or set remind: false")
    if script.close.tasks[0].due is None:
        raise ScriptError("script close.tasks[0].due: is missing, and remind needs it; add due: YYYY-MM-DD")


# ---------------------------------------------------------------------------------------------
# Times


def _parse_clock_time(text: str) -> tuple[date | None, time] | None:
    match = _CLOCK_TIME.match(text.strip())
    if not match:
        return None
    hours, minutes = int(match.group(2)), int(match.group(3))
    if hours > 23 or minutes > 59:
        return None
    try:
        day = date.fromisoformat(match.group(1)) if match.group(1) else None
    except ValueError:
        return None
    return day, time(hours, minutes)


def _next_moment(text: str, previous: datetime, zone: ZoneInfo) -> datetime:
    """HH:MM is the next such time at or after `previous`: a script rolls past midnight."""
    parsed = _parse_clock_time(text)
    assert parsed is not None, "validated by ClockTime"
    day, clock = parsed
    if day is not None:
        return datetime.combine(day, clock, tzinfo=zone)
    moment = datetime.combine(previous.astimezone(zone).date(), clock, tzinfo=zone)
    return moment if moment >= previous else moment + timedelta(days=1)


def _last_moment(text: str, until: datetime, zone: ZoneInfo) -> datetime:
    """HH:MM is the latest such time at or before `until`: impact times look back from the close."""
    parsed = _parse_clock_time(text)
    assert parsed is not None, "validated by ClockTime"
    day, clock = parsed
    if day is not None:
        return datetime.combine(day, clock, tzinfo=zone)
    moment = datetime.combine(until.astimezone(zone).date(), clock, tzinfo=zone)
    return moment if moment <= until else moment - timedelta(days=1)


def _resolve(script: Script) -> Scenario:
    zone = ZoneInfo(script.timezone)
    midnight = datetime.combine(script.date, time(0, 0), tzinfo=zone)
    first = script.declared_at or (script.messages[0].time if script.messages else "09:00")
    declared_at = _in_order("declared_at", first, midnight, midnight, zone)
    times, previous = [], declared_at
    for index, message in enumerate(script.messages):
        previous = _in_order(f"messages[{index}].time", message.time, previous, midnight, zone)
        times.append(previous)
    close_at = impact_start = impact_end = remind_at = None
    if script.close is not None:
        close_at = _in_order("close.time", script.close.time, previous, midnight, zone)
        impact_start, impact_end = _impact(script.close, close_at, zone)
        _check_due_dates(script.close, close_at, zone)
        remind_at = _remind_at(script, close_at, zone)
    return Scenario(script, zone, declared_at, times, close_at, impact_start, impact_end, remind_at)


def _in_order(path: str, text: str, previous: datetime, midnight: datetime, zone: ZoneInfo) -> datetime:
    moment = _next_moment(text, previous, zone)
    if moment < previous:
        raise ScriptError(
            f"script {path}: {text!r} is before the step above it ({previous:%Y-%m-%d %H:%M}); "
            "keep the script in time order"
        )
    if moment < midnight:
        raise ScriptError(f"script {path}: {text!r} is before date ({midnight:%Y-%m-%d}); move date earlier")
    return moment


def _impact(close: Close, close_at: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    end = _last_moment(close.impact_end, close_at, zone)
    if end > close_at:
        raise ScriptError(f"script close.impact_end: {close.impact_end!r} is after close.time; end it before the close")
    start = _last_moment(close.impact_start, end, zone)
    if start > end:
        raise ScriptError(f"script close.impact_start: {close.impact_start!r} is after close.impact_end; swap them")
    return start, end


def _check_due_dates(close: Close, close_at: datetime, zone: ZoneInfo) -> None:
    close_day = close_at.astimezone(zone).date()
    for index, task in enumerate(close.tasks):
        if task.due is not None and task.due < close_day:
            raise ScriptError(
                f"script close.tasks[{index}].due: {task.due} is before the close ({close_day}); "
                "the bot refuses due dates in the past"
            )


def _remind_at(script: Script, close_at: datetime, zone: ZoneInfo) -> datetime | None:
    if not script.remind or script.close is None or script.close.tasks[0].due is None:
        return None
    morning = datetime.combine(script.close.tasks[0].due, REMIND_AT, tzinfo=zone)
    # A task due on the day of the close is reminded right after it, not back in the morning.
    return max(morning, close_at + timedelta(minutes=1))
