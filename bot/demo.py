"""`incident-bot demo`: a whole incident played offline against the built-in local Slack.

The real app runs exactly as in production (HTTP mode, signed requests, the real database code);
only Slack is the local stand-in and time is a manual clock the script moves. The transcript is
read back from what the local Slack received, so it shows what really happened, not the script.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TextIO
from zoneinfo import ZoneInfo

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from sqlalchemy.engine import make_url

from bot import logs
from bot.clock import ManualClock
from bot.config import FIXES, Settings
from bot.demo_script import Message, Scenario, ScriptError, load_scenario
from bot.domain import rules
from bot.domain.models import EntryKind, Incident, State, Task, TaskStatus, TimelineEntry
from bot.jobs.sweep import sweep
from bot.runtime import Runtime, StartupError
from bot.services.context import Context
from bot.ui.ids import Action, View, task_block
from bot.ui.text import replace_mentions
from sandbox import Delivery, LocalSlack
from sandbox.forms import fill_view
from sandbox.payloads import find_element
from storage.database import DatabaseUnavailable

EXIT_FAILED = 1
EXIT_USAGE = 2
SIGNING_SECRET = "demo-signing-secret"
BOT_TOKEN = "xoxb-demo-local-token"
DATABASE_FILE = "incident-bot-demo.db"
PLACEHOLDER_DATABASE = "sqlite+aiosqlite:///demo.db"
BOT_NAME = "🤖 incident-bot"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
# What the bot says when it did not do what a command asked (usage, wrong place, Slack refused).
REFUSALS = ("*Usage:*", "I don't know", "This works in an incident channel", "Slack refused a step", "closed already")
EMOJI = {
    "rotating_light": "🚨", "white_check_mark": "✅", "alarm_clock": "⏰", "memo": "📝", "clipboard": "📋",
    "warning": "⚠️", "ballot_box_with_check": "☑️", "zzz": "💤", "pushpin": "📌", "arrow_up": "⬆️",
}  # fmt: skip
_EMOJI_CODE = re.compile(r":([a-z0-9_+-]+):")
_CHANNEL_TOKEN = re.compile(r"<#([A-Z0-9]+)>")
_MENTION = re.compile(r"(?<![\w@<])@([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_-])?)")


class DemoFailure(Exception):
    """A step did not have the effect Slack would show; one line for the user."""

    def __init__(self, step: int, what: str, detail: str) -> None:
        super().__init__(f"step {step} ({what}) did not happen as Slack would show it: {detail}")


class UsageProblem(Exception):
    """The command line asks for something the demo cannot do; one line for the user."""


def run_demo(script_path: str | None, database_url: str | None) -> int:
    """Plays the script and prints the transcript, the postmortem and where the files are."""
    started = time.monotonic()
    try:
        scenario = load_scenario(script_path)
        # Checked before _place makes a directory, so a bad URL leaves nothing behind.
        settings = _settings(scenario, database_url or PLACEHOLDER_DATABASE)
        place = _place(database_url)
        settings = settings.model_copy(update={"database_url": place.database_url})
    except (ScriptError, UsageProblem) as exc:
        return _fail(str(exc), EXIT_USAGE)
    _quiet_logging()
    try:
        with _without_proxies():
            played = asyncio.run(_play(scenario, settings, sys.stdout))
    except UsageProblem as exc:
        return _fail(str(exc), EXIT_USAGE)
    except (DemoFailure, StartupError, DatabaseUnavailable) as exc:
        return _fail(str(exc), EXIT_FAILED)
    _report(played, place, scenario, time.monotonic() - started)
    return 0


def _quiet_logging() -> None:
    """The transcript is the output: only real trouble gets logged, and not Bolt's start-up notice
    that the app's token is ignored (it is not: the app authorizes with that same token)."""
    logs.configure("WARNING")
    logging.getLogger("slack_bolt.AsyncApp").addFilter(
        lambda record: "`installation_store` or `authorize`" not in record.getMessage()
    )


def _fail(message: str, code: int) -> int:
    print(f"demo: {message}", file=sys.stderr)
    return code


# ---------------------------------------------------------------------------------------------
# Where the demo keeps its data, and the settings it runs with


@dataclass(frozen=True)
class Place:
    directory: Path
    database_url: str
    database_shown: str


def _place(database_url: str | None) -> Place:
    """A new temporary directory, or the directory of the SQLite file the user named."""
    if database_url is None:
        directory = Path(tempfile.mkdtemp(prefix="incident-bot-demo-"))
        path = directory / DATABASE_FILE
        return Place(directory, f"sqlite+aiosqlite:///{path}", str(path))
    try:
        url = make_url(database_url)
    except Exception:  # noqa: BLE001 - sqlalchemy raises several types for a malformed URL
        raise UsageProblem(f"--database-url {database_url!r} is not a URL; {FIXES['DATABASE_URL']}") from None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(str(url.database)).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return Place(path.parent, database_url, str(path))
    directory = Path(tempfile.mkdtemp(prefix="incident-bot-demo-"))
    return Place(directory, database_url, url.render_as_string(hide_password=True))


class DemoSettings(Settings):
    """Settings from the arguments only: the demo ignores the environment and any `.env`, so a
    real token, a half-written `.env` or a proxy setting can neither leak in nor break it."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _settings(scenario: Scenario, database_url: str) -> Settings:
    """Validated before anything starts; the Slack URL is filled in once the local Slack listens."""
    try:
        return DemoSettings(
            _env_file=None,  # type: ignore[call-arg]
            SLACK_BOT_TOKEN=SecretStr(BOT_TOKEN),
            SLACK_SIGNING_SECRET=SecretStr(SIGNING_SECRET),
            SLACK_API_URL="http://127.0.0.1/api/",
            DATABASE_URL=database_url,
            HOST="127.0.0.1",
            PORT=0,
            TIMEZONE=scenario.script.timezone,
        )
    except ValidationError:
        raise UsageProblem(f"--database-url {database_url!r} is not supported; {FIXES['DATABASE_URL']}") from None


@contextlib.contextmanager
def _without_proxies() -> Iterator[None]:
    """slack-sdk sends even loopback calls through HTTP(S)_PROXY (it ignores NO_PROXY)."""
    saved = {name: os.environ.pop(name) for name in PROXY_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


# ---------------------------------------------------------------------------------------------
# Playing


@dataclass(frozen=True)
class Played:
    incident: Incident
    markdown: str
    steps: int


@dataclass(frozen=True)
class People:
    """Slack ids for the script's handles, and the handles the transcript shows for ids."""

    users: dict[str, str]  # handle -> user id
    bots: dict[str, str]  # integration name -> bot id
    handles: dict[str, str]  # user id -> handle

    def mentions(self, text: str, with_name: bool = False) -> str:
        """@alice as Slack sends a picked mention: <@U0ALICE>, and <@U0ALICE|alice> in a slash
        command (the manifest sets should_escape). Unknown @words stay plain text, as in Slack."""

        def mention(match: re.Match[str]) -> str:
            user_id = self.users.get(match[1])
            if user_id is None:
                return match[0]
            return f"<@{user_id}|{match[1]}>" if with_name else f"<@{user_id}>"

        return _MENTION.sub(mention, text)


async def _play(scenario: Scenario, settings: Settings, out: TextIO) -> Played:
    clock = ManualClock(scenario.declared_at)
    local = LocalSlack(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, spec_path=None, clock=clock.now)
    runtime: Runtime | None = None
    await local.start()
    try:
        people = _seed(local, scenario)
        runtime = Runtime(settings.model_copy(update={"slack_api_url": local.api_url}), clock, run_scheduler=False)
        await runtime.start()
        local.bot_url = f"http://127.0.0.1:{runtime.port}/slack/events"
        await _refuse_used_database(runtime)
        transcript = Transcript(local, people, scenario.zone, scenario.script.date, clock, out)
        return await Player(local, runtime, clock, scenario, people, transcript).play()
    finally:
        if runtime is not None:
            await runtime.stop()
        await local.stop()


def _seed(local: LocalSlack, scenario: Scenario) -> People:
    script = scenario.script
    users = _allocate_ids("U0", list(script.people), taken=set(local.users))
    integrations = sorted({m.author for m in script.messages if m.bot})
    bots = _allocate_ids("B0", integrations, taken={local.workspace.bot_id})
    for handle, user_id in users.items():
        local.add_user(user_id, handle, real_name=script.people[handle], tz=script.timezone)
    local.add_channel(script.channel, members=users.values())
    handles = {user_id: handle for handle, user_id in users.items()}
    handles[local.workspace.bot_user_id] = "incident-bot"
    return People(users, bots, handles)


def _allocate_ids(prefix: str, names: list[str], taken: set[str]) -> dict[str, str]:
    """alice -> U0ALICE; a clash (bob and b-o-b, or a handle 'bot') gets a number appended."""
    allocated: dict[str, str] = {}
    for name in names:
        base = prefix + re.sub(r"[^A-Z0-9]", "", name.upper())
        candidate, number = base, 2
        while candidate in taken:
            candidate, number = f"{base}{number}", number + 1
        taken.add(candidate)
        allocated[name] = candidate
    return allocated


async def _refuse_used_database(runtime: Runtime) -> None:
    # The local Slack starts from scratch each run, so its channel ids would clash with old rows.
    assert runtime.ctx is not None
    if await runtime.ctx.store.incidents_numbered(1):
        raise UsageProblem(
            "--database-url names a database that already holds incidents; give a new SQLite file, or leave it out"
        )


@dataclass
class Player:
    local: LocalSlack
    runtime: Runtime
    clock: ManualClock
    scenario: Scenario
    people: People
    transcript: Transcript
    step: int = 0
    what: str = ""
    incident: Incident | None = None
    posted: list[str | None] = field(default_factory=list)  # ts of each script message

    @property
    def ctx(self) -> Context:
        assert self.runtime.ctx is not None, "the runtime is started"
        return self.runtime.ctx

    @property
    def channel(self) -> str:
        assert self.incident is not None and self.incident.channel_id, "the incident is open"
        return self.incident.channel_id

    async def play(self) -> Played:
        script = self.scenario.script
        await self.start_incident()
        if script.severity and script.severity != (await self.current()).severity:
            await self.command(f"severity {script.severity}", script.declared_by, "initial severity")
        for index, (message, at) in enumerate(zip(script.messages, self.scenario.message_times, strict=True)):
            self.clock.set(at)
            await self.play_message(index, message)
        if script.close is None:
            return Played(await self.current(), "", self.step)
        markdown = await self.close()
        if self.scenario.remind_at is not None:
            await self.remind()
        return Played(await self.current(), markdown, self.step)

    # ----- step bookkeeping -----

    def begin(self, what: str) -> None:
        self.step += 1
        self.what = what

    def fail(self, detail: str) -> NoReturn:
        raise DemoFailure(self.step, self.what, detail)

    async def accepted(self, delivery: Delivery | None) -> Delivery:
        """Slack's delivery got 200, the work it started is done, and the transcript shows it."""
        if delivery is None or delivery.status != 200:
            status = "nothing" if delivery is None else f"HTTP {delivery.status} {delivery.body[:200]!r}"
            self.fail(f"the bot answered {status} instead of 200")
        await self.settled()
        return delivery

    async def settled(self) -> None:
        if not await self.runtime.idle():
            self.fail("the bot was still working on it after 10 s")
        self.transcript.show()

    async def current(self) -> Incident:
        assert self.incident is not None
        found = await self.ctx.store.incident_by_id(self.incident.id)
        assert found is not None, "incidents are never deleted"
        self.incident = found
        return found

    async def entry(self, ts: str) -> TimelineEntry | None:
        assert self.incident is not None
        return next((e for e in await self.ctx.store.entries(self.incident.id) if e.ts == ts), None)

    # ----- the incident -----

    async def start_incident(self) -> None:
        script = self.scenario.script
        self.begin(f"/incident start in #{script.channel} by {script.declared_by}")
        origin = self.local.channel_by_name(script.channel)
        assert origin is not None, "seeded"
        await self.run_command(f"start {script.title}", script.declared_by, str(origin["id"]))
        self.incident = await self.ctx.store.incident_by_number(self.ctx.team_id, 1)
        if self.incident is None:
            self.fail("no incident was recorded in the database")
        if self.incident.state is not State.OPEN or self.incident.channel_id not in self.local.channels:
            self.fail(f"the incident channel was not created (state {self.incident.state.value})")

    async def command(self, text: str, handle: str, what: str) -> None:
        self.begin(f"{what}: /incident {text} by {handle}")
        await self.run_command(text, handle, self.channel)
        await self.check_command(text)

    async def run_command(self, text: str, handle: str, channel: str) -> None:
        self.transcript.action(channel, f"{handle} types /incident {text}")
        seen = len(self.local.ephemerals)
        typed = self.people.mentions(text, with_name=True)
        await self.accepted(await self.local.send_command(typed, user_id=self.people.users[handle], channel_id=channel))
        answers = [str(e.get("text") or "") for e in self.local.ephemerals[seen:]]
        refused = next((a for a in answers if any(r in a for r in REFUSALS)), None)
        if refused is not None and not text.startswith("help"):
            self.fail(f"the bot answered: {refused.splitlines()[0]}")

    async def check_command(self, text: str) -> None:
        """The effects the demo can see in the database for the commands a script usually has."""
        sub = rules.split_subcommand(self.people.mentions(text, with_name=True))
        incident = await self.current()
        if sub.name == "severity" and incident.severity is not rules.parse_severity(sub.rest):
            self.fail(f"the severity is still {incident.severity.value}")
        if sub.name == "status" and incident.status is not rules.parse_status(sub.rest)[0]:
            self.fail(f"the status is still {incident.status.value}")
        if sub.name == "note":
            _, note = rules.parse_note(sub.rest, self.clock.now(), self.ctx.tz)
            entries = await self.ctx.store.entries(incident.id)
            if not any(e.kind is EntryKind.NOTE and e.text == note for e in entries):
                self.fail("the note is not in the timeline")

    # ----- messages -----

    async def play_message(self, index: int, message: Message) -> None:
        if message.command is not None:
            self.posted.append(None)
            await self.command(message.command, message.author, f"messages[{index}]")
            return
        ts = await self.say(index, message)
        self.posted.append(ts)
        if message.key:
            await self.pin(index, ts)
        if message.edit is not None:
            await self.edit(index, ts, message.edit)
        if message.delete:
            await self.delete(index, ts)

    async def say(self, index: int, message: Message) -> str:
        self.begin(f"messages[{index}]: {message.author} posts {_short(message.text or '')!r}")
        user = None if message.bot else self.people.users[message.author]
        bot_id = self.people.bots[message.author] if message.bot else None
        thread_ts = self.posted[message.thread] if message.thread is not None else None
        ts, delivery = await self.local.post_message(
            self.channel, user=user, bot_id=bot_id, username=message.author if message.bot else None,
            text=self.people.mentions(message.text or ""), at=self.clock.now(), thread_ts=thread_ts,
        )  # fmt: skip
        await self.accepted(delivery)
        if await self.entry(ts) is None:
            self.fail("the bot did not add the message to the timeline")
        return ts

    async def pin(self, index: int, ts: str) -> None:
        handle = self.scenario.script.declared_by
        self.begin(f"messages[{index}]: {handle} adds 📌")
        await self.accepted(await self.local.add_reaction(self.channel, ts, "pushpin", user=self.people.users[handle]))
        entry = await self.entry(ts)
        if entry is None or not entry.is_key:
            self.fail("the bot did not mark the message as a key event")

    async def edit(self, index: int, ts: str, text: str) -> None:
        self.begin(f"messages[{index}]: edited to {_short(text)!r}")
        sent = self.people.mentions(text)
        await self.accepted(await self.local.edit_message(self.channel, ts, sent))
        entry = await self.entry(ts)
        if entry is None or entry.text != sent:
            self.fail("the timeline still has the old text")

    async def delete(self, index: int, ts: str) -> None:
        self.begin(f"messages[{index}]: deleted")
        await self.accepted(await self.local.delete_message(self.channel, ts))
        entry = await self.entry(ts)
        if entry is None or entry.deleted_at is None:
            self.fail("the timeline still shows the message")

    # ----- closing -----

    async def close(self) -> str:
        close = self.scenario.script.close
        assert close is not None and self.scenario.close_at is not None
        self.clock.set(self.scenario.close_at)
        # Tasks added with `/incident task` during the incident are there already.
        earlier = len(await self.ctx.store.tasks_of_incident((await self.current()).id))
        await self.command("close", close.by, "close")
        view = self.close_form(close.by)
        while _task_rows(view["view"]) < len(close.tasks):
            view = await self.add_task_row(view, close.by)
        self.begin(f"close: {close.by} submits the close form")
        self.transcript.action(self.channel, f"{close.by} fills in and submits the close form")
        values = fill_view(view["view"], self.close_answers())
        delivery = await self.accepted(
            await self.local.submit_view(view["id"], values, user_id=self.people.users[close.by])
        )
        self.check_form_accepted(delivery)
        return await self.check_closed(earlier + len(close.tasks))

    def close_form(self, handle: str) -> dict[str, Any]:
        user_id = self.people.users[handle]
        views = [
            v for v in self.local.views.values()
            if not v["closed"] and v["user"] == user_id and v["view"].get("callback_id") == View.CLOSE
        ]  # fmt: skip
        if not views:
            self.fail(f"the close form did not open for {handle}")
        return views[-1]

    async def add_task_row(self, view: dict[str, Any], handle: str) -> dict[str, Any]:
        self.begin(f"close: {handle} adds a task row")
        self.transcript.action(self.channel, f"{handle} presses Add a task in the close form")
        user_id = self.people.users[handle]
        rows = _task_rows(view["view"])
        await self.accepted(
            await self.local.click_button(user_id=user_id, action_id=Action.ADD_TASK_ROW, view_id=view["id"])
        )
        if _task_rows(self.local.views[view["id"]]["view"]) <= rows:
            self.fail("the form did not get another task row")
        return dict(self.local.views[view["id"]])

    def close_answers(self) -> dict[str, Any]:
        scenario = self.scenario
        close = scenario.script.close
        assert close is not None
        answers: dict[str, Any] = {
            "impact": close.impact, "impact_start": scenario.impact_start, "impact_end": scenario.impact_end,
            "root_cause": close.root_cause, "resolution": close.resolution,
            "improvements": "\n".join(close.improvements) or None,
        }  # fmt: skip
        for row, task in enumerate(close.tasks, start=1):
            answers[task_block("description", row)] = task.description
            answers[task_block("owner", row)] = self.people.users[task.owner]
            answers[task_block("due", row)] = task.due
        return answers

    def check_form_accepted(self, delivery: Delivery) -> None:
        answer = delivery.json if isinstance(delivery.json, dict) else {}
        errors = answer.get("errors") or {}
        if errors:
            self.fail("the bot refused the form: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))

    async def check_closed(self, task_count: int) -> str:
        incident = await self.current()
        if incident.state is not State.CLOSED:
            self.fail(f"the incident is still {incident.state.value}")
        stored = await self.ctx.store.tasks_of_incident(incident.id)
        if len(stored) != task_count:
            self.fail(f"{len(stored)} corrective tasks were stored, not {task_count}")
        uploads = [f for f in self.local.files.values() if self.channel in f["channels"]]
        if not uploads:
            self.fail("the postmortem was not uploaded to the incident channel")
        return bytes(uploads[-1]["content"]).decode("utf-8")

    # ----- the reminder -----

    async def remind(self) -> None:
        task = await self.first_task()
        assert self.scenario.remind_at is not None
        owner = self.scenario.script.close.tasks[0].owner  # type: ignore[union-attr]
        self.begin(f"remind: the reminder sweep at {self.scenario.remind_at:%Y-%m-%d %H:%M}")
        self.clock.set(self.scenario.remind_at)
        await sweep(self.ctx)
        await self.settled()
        dm_channel, dm_ts = await self.check_one_reminder(task, owner)
        self.begin(f"remind: {owner} presses Done")
        self.clock.advance(timedelta(minutes=2))
        self.transcript.action(dm_channel, f"{owner} presses Done")
        await self.accepted(
            await self.local.click_button(
                user_id=task.owner_id, action_id=Action.TASK_DONE, value=str(task.id),
                channel=dm_channel, message_ts=dm_ts,
            )
        )  # fmt: skip
        done = await self.ctx.store.task(task.id)
        if done is None or done.status is not TaskStatus.DONE:
            self.fail("the task is still open")

    async def first_task(self) -> Task:
        close = self.scenario.script.close
        assert close is not None and self.incident is not None
        wanted = close.tasks[0]
        stored = await self.ctx.store.tasks_of_incident(self.incident.id)
        return next(t for t in stored if t.description == wanted.description.strip())

    async def check_one_reminder(self, task: Task, owner: str) -> tuple[str, str]:
        dm_channel = self.local.dm_channel(task.owner_id)
        reminders = [m for m in self.local.messages(dm_channel or "") if _reminds_of(m, task)]
        if dm_channel is None or len(reminders) != 1:
            self.fail(f"{len(reminders)} reminder DMs about the task reached {owner}, not exactly 1")
        sent = [r for r in await self.ctx.store.reminders_sent(task.id) if r["state"] == "sent"]
        if len(sent) != 1:
            self.fail(f"the database records {len(sent)} sent reminders for the task, not 1")
        return dm_channel, str(reminders[0]["ts"])


def _task_rows(view: dict[str, Any]) -> int:
    prefix = task_block("description", 0)[:-1]
    return sum(1 for b in view.get("blocks") or [] if str(b.get("block_id", "")).startswith(prefix))


def _reminds_of(message: dict[str, Any], task: Task) -> bool:
    found = find_element(message.get("blocks") or [], Action.TASK_DONE)
    return found is not None and found[1].get("value") == str(task.id)


def _short(text: str, limit: int = 40) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# The transcript


SortKey = tuple[int, int, float, int]


@dataclass(frozen=True)
class _Seen:
    content: str  # text and blocks: a change is an edit
    reactions: frozenset[tuple[str, str]]
    message: dict[str, Any]


class Transcript:
    """What people would see in Slack, one line per visible message, read back from the local
    Slack after every step: new messages, edits, deletions, reactions, ephemerals and DMs."""

    def __init__(
        self, local: LocalSlack, people: People, zone: ZoneInfo, first_day: date, clock: ManualClock, out: TextIO
    ) -> None:
        self.local, self.people, self.zone, self.first_day = local, people, zone, first_day
        self.clock, self.out = clock, out
        self._seen: dict[str, dict[str, _Seen]] = {}
        self._ephemerals = 0
        self._order = 0
        self._arrival: dict[tuple[str, str], int] = {}

    def action(self, conversation: str, text: str) -> None:
        """Something a person does that Slack shows to nobody else (a command, a button press):
        the transcript makes no sense without it."""
        self._print(f"[{self._where(conversation)} {self._stamp(self.clock.now())}] ⌨️  {text}")

    def show(self) -> None:
        self._arrival = _arrivals(self.local)
        lines = [*self._ephemeral_lines(answers_first=True)]
        for conversation in [*self.local.channels, *self.local.workspace.ims]:
            lines.extend(self._conversation_lines(conversation))
        lines.extend(self._ephemeral_lines(answers_first=False))
        self._ephemerals = len(self.local.ephemerals)
        for _, line in sorted(lines):
            self._print(line)

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def _key(self, phase: int, moment: datetime, where: str = "", message: dict[str, Any] | None = None) -> SortKey:
        """A step shows the command's immediate answer, then what people did (by time), then what
        the bot posted in the order it called Slack (a frozen clock gives many posts one time),
        then the bot's later answers."""
        self._order += 1
        arrival = self._arrival.get(_identity(where, message)) if message is not None else None
        if arrival is not None:
            return phase, 1, float(arrival), self._order
        return phase, 0, moment.timestamp(), self._order

    # ----- messages -----

    def _conversation_lines(self, conversation: str) -> list[tuple[SortKey, str]]:
        before = self._seen.get(conversation, {})
        now = {str(m["ts"]): _seen(m) for m in self.local.messages(conversation)}
        self._seen[conversation] = now
        lines = []
        for ts, seen in now.items():
            lines.extend(self._changes(conversation, ts, before.get(ts), seen))
        for ts in before.keys() - now.keys():
            moment = self.clock.now()
            lines.append((self._key(1, moment), self._line(conversation, moment, before[ts].message, "🗑 deleted ")))
        return lines

    def _changes(self, conversation: str, ts: str, before: _Seen | None, seen: _Seen) -> list[tuple[SortKey, str]]:
        if before is None:
            moment = _moment(ts)
            return [
                (self._key(1, moment, conversation, seen.message), self._line(conversation, moment, seen.message, ""))
            ]
        lines = []
        if seen.content != before.content:
            moment = _moment(str((seen.message.get("edited") or {}).get("ts") or ts))
            line = self._line(conversation, moment, seen.message, "✏️ edited ")
            lines.append((self._key(1, moment, conversation, seen.message), line))
        for name, user in sorted(seen.reactions - before.reactions):
            moment = self.clock.now()
            about = f"{self._author(seen.message)}'s {_short(self._readable(_text(seen.message)))!r}"
            where = f"[{self._where(conversation)} {self._stamp(moment)}]"
            line = f"{where} {self._handle(user)} reacts {_emoji(name)} to {about}"
            lines.append((self._key(1, moment), line))
        return lines

    def _line(self, conversation: str, moment: datetime, message: dict[str, Any], mark: str) -> str:
        thread = " (in thread)" if message.get("thread_ts") not in (None, message.get("ts")) else ""
        text = self._readable(_text(message)).replace("\n", "\n    ")
        where = f"[{self._where(conversation)} {self._stamp(moment)}]"
        return f"{where} {mark}{self._author(message)}{thread}: {text}"

    # ----- ephemerals -----

    def _ephemeral_lines(self, answers_first: bool) -> list[tuple[SortKey, str]]:
        lines = []
        moment = self.clock.now()
        for ephemeral in self.local.ephemerals[self._ephemerals :]:
            if (ephemeral.get("source") == "ack") != answers_first:
                continue
            text = self._readable(str(ephemeral.get("text") or "")).replace("\n", "\n    ")
            who = self._handle(str(ephemeral.get("user")))
            where = f"[{self._where(str(ephemeral.get('channel')))} {self._stamp(moment)}]"
            line = f"{where} {BOT_NAME} (only visible to {who}): {text}"
            lines.append((self._key(0 if answers_first else 2, moment), line))
        return lines

    # ----- names, places, times, markup -----

    def _author(self, message: dict[str, Any]) -> str:
        if message.get("subtype") == "bot_message":
            return f"{message.get('username') or message.get('bot_id')} (app)"
        if message.get("bot_id") == self.local.workspace.bot_id:
            return BOT_NAME
        return self._handle(str(message.get("user")))

    def _handle(self, user_id: str) -> str:
        return self.people.handles.get(user_id, user_id)

    def _where(self, conversation: str) -> str:
        if conversation in self.local.workspace.ims:
            return f"DM {self._handle(str(self.local.workspace.ims[conversation]['user']))}"
        channel = self.local.channels.get(conversation)
        return f"#{channel['name']}" if channel else conversation

    def _stamp(self, moment: datetime) -> str:
        local = moment.astimezone(self.zone)
        return local.strftime("%H:%M" if local.date() == self.first_day else "%Y-%m-%d %H:%M")

    def _readable(self, text: str) -> str:
        """Slack markup as a person reads it: @alice, #inc-1-…, emoji."""
        text = _CHANNEL_TOKEN.sub(lambda m: f"<#{m[1]}|{self._where(m[1]).lstrip('#')}>", text)
        return _EMOJI_CODE.sub(lambda m: _emoji(m[1]), replace_mentions(text, self.people.handles))


def _arrivals(local: LocalSlack) -> dict[tuple[str, str], int]:
    """The position of the app's Web API call that last posted or changed each message."""
    found: dict[tuple[str, str], int] = {}
    for index, call in enumerate(local.calls):
        answer = call.response
        if answer.get("ok") and answer.get("ts") and answer.get("channel"):
            found[(str(answer["channel"]), str(answer["ts"]))] = index
        for file in answer.get("files") or [] if call.method == "files.completeUploadExternal" else []:
            found[("file", str(file.get("id")))] = index
    return found


def _identity(conversation: str, message: dict[str, Any]) -> tuple[str, str]:
    files = message.get("files") or []
    if message.get("subtype") == "file_share" and files:
        return "file", str(files[0].get("id"))
    return conversation, str(message.get("ts"))


def _seen(message: dict[str, Any]) -> _Seen:
    content = json.dumps([message.get("text"), message.get("blocks")], sort_keys=True, default=str)
    reactions = frozenset((r["name"], u) for r in message.get("reactions") or [] for u in r.get("users") or [])
    return _Seen(content, reactions, dict(message))


def _text(message: dict[str, Any]) -> str:
    """The fallback text (the bot writes a meaningful one), else the sections, plus any files."""
    text = str(message.get("text") or "")
    if not text:
        sections = [
            b.get("text", {}).get("text", "") for b in message.get("blocks") or [] if b.get("type") == "section"
        ]
        text = "\n".join(s for s in sections if s)
    files = " ".join(f"📎 {f.get('name')}" for f in message.get("files") or [])
    return " ".join(part for part in (text, _fields(message), files) if part)


def _fields(message: dict[str, Any]) -> str:
    """Section fields (the summary's severity, status, ...): the fallback text leaves them out."""
    found = [f.get("text", "") for b in message.get("blocks") or [] for f in b.get("fields") or []]
    return "(" + " · ".join(f.replace("*", "").replace("\n", " ") for f in found) + ")" if found else ""


def _emoji(name: str) -> str:
    return EMOJI.get(name, f":{name}:")


def _moment(ts: str) -> datetime:
    return datetime.fromtimestamp(float(ts), UTC)


# ---------------------------------------------------------------------------------------------
# The end: the postmortem and where things are


def _report(played: Played, place: Place, scenario: Scenario, seconds: float) -> None:
    print()
    if played.markdown:
        _show_postmortem(played, place, scenario)
    else:
        print(f"{played.incident.ref} was not closed (the script has no close:), so it has no postmortem.")
        print(f"Database:   {place.database_shown}")
    print(f"Played {played.steps} steps in {seconds:.1f} s.")


def _show_postmortem(played: Played, place: Place, scenario: Scenario) -> None:
    path = place.directory / f"{played.incident.ref}-postmortem.md"
    path.write_text(played.markdown, encoding="utf-8")
    print(f"──── The postmortem the bot uploaded to #{played.incident.channel_name} ────")
    print(played.markdown)
    print(f"Postmortem: {path}")
    print(f"Database:   {place.database_shown}")
    # A PostgreSQL URL may hold a password: it is not echoed.
    url = place.database_url if place.database_url.startswith("sqlite") else "<your --database-url>"
    print(
        "Its current version (tasks done since are ticked): "
        f"TIMEZONE={scenario.script.timezone} DATABASE_URL='{url}' incident-bot export {played.incident.ref}"
    )
