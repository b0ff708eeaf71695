"""The scripted incident player: each step of the script done as a person would in Slack, and
checked for the effect Slack would show."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NoReturn

from bot.clock import ManualClock
from bot.demo.common import (
    REFUSALS,
    DemoFailure,
    People,
    Played,
    short,
)
from bot.demo.transcript import Transcript
from bot.demo_script import Message, Scenario
from bot.domain import rules
from bot.domain.models import EntryKind, Incident, State, Task, TaskStatus, TimelineEntry
from bot.jobs.sweep import sweep
from bot.runtime import Runtime
from bot.services.context import Context
from bot.ui.ids import Action, View, task_block
from sandbox import Delivery, LocalSlack
from sandbox.forms import fill_view
from sandbox.payloads import find_element


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
        self.begin(f"messages[{index}]: {message.author} posts {short(message.text or '')!r}")
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
        self.begin(f"messages[{index}]: edited to {short(text)!r}")
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

