"""What every service needs, built once by the composition root."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.config import Settings
from bot.domain.models import Incident
from bot.slack_api import Identity, Slack
from storage import Store

# How long a channel's open incident is trusted without asking the database again. Another
# process closing it is seen within this time; this process's own changes are seen at once.
RECORDING_CACHE_SECONDS = 10.0


class RecordingChannels:
    """Channel id → the open incident recording it: spares every message a database read."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[Incident, float]] = {}

    def get(self, channel_id: str) -> Incident | None:
        found = self._known.get(channel_id)
        if found is None or time.monotonic() - found[1] > RECORDING_CACHE_SECONDS:
            return None
        return found[0]

    def remember(self, incident: Incident) -> None:
        if incident.channel_id:
            self._known[incident.channel_id] = (incident, time.monotonic())

    def forget(self, channel_id: str | None) -> None:
        if channel_id:
            self._known.pop(channel_id, None)


# Membership changes rarely during one incident; asking Slack once a minute per channel is
# plenty, and keeps a busy `/incident list` from spending the rate limit.
MEMBERS_CACHE_SECONDS = 60.0


class ChannelMembers:
    """Channel id → who is in it, as Slack last said (who may see a private incident)."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[frozenset[str], float]] = {}

    def get(self, channel_id: str) -> frozenset[str] | None:
        found = self._known.get(channel_id)
        if found is None or time.monotonic() - found[1] > MEMBERS_CACHE_SECONDS:
            return None
        return found[0]

    def remember(self, channel_id: str, members: frozenset[str]) -> None:
        self._known[channel_id] = (members, time.monotonic())


class Wakeup:
    """Tells the outbox worker that a step was stored, so it need not wait for its next poll."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def kick(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event.clear()


@dataclass
class Context:
    settings: Settings
    store: Store
    slack: Slack
    clock: Clock
    identity: Identity
    recording: RecordingChannels = field(default_factory=RecordingChannels)
    members: ChannelMembers = field(default_factory=ChannelMembers)
    outbox: Wakeup = field(default_factory=Wakeup)
    home_published: dict[str, float] = field(default_factory=dict)  # user id -> when (monotonic)

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.tz

    @property
    def team_id(self) -> str:
        return self.identity.team_id
