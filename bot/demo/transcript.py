"""The transcript: what a person in the workspace would have seen, printed as it happens."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from bot.clock import ManualClock
from bot.demo.common import (
    BOT_NAME,
    CHANNEL_TOKEN,
    EMOJI,
    EMOJI_CODE,
    People,
    short,
)
from bot.ui.text import replace_mentions
from sandbox import LocalSlack

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
            about = f"{self._author(seen.message)}'s {short(self._readable(_text(seen.message)))!r}"
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
        text = CHANNEL_TOKEN.sub(lambda m: f"<#{m[1]}|{self._where(m[1]).lstrip('#')}>", text)
        return EMOJI_CODE.sub(lambda m: _emoji(m[1]), replace_mentions(text, self.people.handles))


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
