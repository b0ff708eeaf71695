"""Shared fixtures: a local Slack on loopback and the real bot started against it."""

from __future__ import annotations

import os
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.clock import Clock, ManualClock, SystemClock
from bot.config import Settings
from bot.runtime import Runtime
from sandbox import LocalSlack
from storage import Database
from storage.schema import metadata

SPECS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "slack-api-specs"
SIGNING_SECRET = "local-signing-secret"
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"
BotFactory = Callable[..., Awaitable[Runtime]]

# slack-sdk honours proxy variables (and ignores NO_PROXY): loopback tests must not go through one.
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_var, None)


def spec_dir() -> pathlib.Path | None:
    return SPECS if SPECS.is_dir() else None


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))


@pytest.fixture
async def slack() -> AsyncIterator[LocalSlack]:
    """The local Slack with three people and a #general channel, on real time."""
    async with _local_slack(None) as local:
        yield local


@pytest.fixture
async def slack_at(clock: ManualClock) -> AsyncIterator[LocalSlack]:
    """The local Slack on the test's manual clock (ts values follow it)."""
    async with _local_slack(clock.now) as local:
        yield local


class _local_slack:
    def __init__(self, now: Callable[[], datetime] | None) -> None:
        self.local = LocalSlack(signing_secret=SIGNING_SECRET, spec_path=spec_dir(), clock=now)

    async def __aenter__(self) -> LocalSlack:
        await self.local.start()
        self.local.add_user(ALICE, "alice", real_name="Alice Archer")
        self.local.add_user(BOB, "bob", real_name="Bob Baker")
        self.local.add_user(CAROL, "carol", real_name="Carol Chen")
        self.local.add_channel("general", members=[ALICE, BOB, CAROL])
        return self.local

    async def __aexit__(self, *exc: object) -> None:
        violations = list(self.local.spec_violations)
        await self.local.stop()
        assert not violations, f"calls that break Slack's spec: {violations}"


def settings_for(local: LocalSlack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "SLACK_BOT_TOKEN": local.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": local.api_url,
        "HOST": "127.0.0.1",
        "PORT": 0,
        "TIMEZONE": "UTC",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def database_url(tmp_path: pathlib.Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
async def start_bot(database_url: str) -> AsyncIterator[BotFactory]:
    """Starts the real bot (HTTP mode unless SLACK_APP_TOKEN is given) against a local Slack."""
    started: list[Runtime] = []

    async def start(local: LocalSlack, clock: Clock | None = None, **overrides: Any) -> Runtime:
        overrides.setdefault("DATABASE_URL", database_url)
        runtime = Runtime(settings_for(local, **overrides), clock=clock or SystemClock(), run_scheduler=False)
        await runtime.start()
        started.append(runtime)
        if runtime.port is not None and not runtime.settings.socket_mode:
            local.bot_url = f"http://127.0.0.1:{runtime.port}/slack/events"
        return runtime

    yield start
    for runtime in reversed(started):
        await runtime.stop()


@pytest.fixture
async def bot(slack: LocalSlack, start_bot: BotFactory) -> Runtime:
    return await start_bot(slack)


@pytest.fixture
async def pg_url() -> str:
    """TEST_DATABASE_URL with blank tables (as tests/storage/test_storage.py leaves them)."""
    url = os.environ["TEST_DATABASE_URL"]
    db = Database(url)
    try:
        async with db.transaction() as conn:
            await conn.run_sync(metadata.drop_all)
    finally:
        await db.close()
    return url


def general(local: LocalSlack) -> str:
    channel = local.channel_by_name("general")
    assert channel is not None
    return str(channel["id"])
