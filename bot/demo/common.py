"""What the demo's parts share: its constants, its errors, and the people of the script."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain.models import Incident

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
EMOJI_CODE = re.compile(r":([a-z0-9_+-]+):")
CHANNEL_TOKEN = re.compile(r"<#([A-Z0-9]+)>")
MENTION = re.compile(r"(?<![\w@<])@([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_-])?)")


class DemoFailure(Exception):
    """A step did not have the effect Slack would show; one line for the user."""

    def __init__(self, step: int, what: str, detail: str) -> None:
        super().__init__(f"step {step} ({what}) did not happen as Slack would show it: {detail}")


class UsageProblem(Exception):
    """The command line asks for something the demo cannot do; one line for the user."""



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

        return MENTION.sub(mention, text)


def short(text: str, limit: int = 40) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
