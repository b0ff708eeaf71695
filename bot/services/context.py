"""What every service needs, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.config import Settings
from bot.slack_api import Identity, Slack
from storage import Store


@dataclass
class Context:
    settings: Settings
    store: Store
    slack: Slack
    clock: Clock
    identity: Identity

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.tz

    @property
    def team_id(self) -> str:
        return self.identity.team_id
