"""`incident-bot demo`: the local Slack and the bot wired together, the script played, the
postmortem printed and saved."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from bot import logs
from bot.clock import ManualClock
from bot.config import FIXES, Settings
from bot.demo.common import (
    BOT_TOKEN,
    DATABASE_FILE,
    EXIT_FAILED,
    EXIT_USAGE,
    PLACEHOLDER_DATABASE,
    PROXY_VARIABLES,
    SIGNING_SECRET,
    DemoFailure,
    People,
    Played,
    UsageProblem,
)
from bot.demo.player import Player
from bot.demo.transcript import Transcript
from bot.demo_script import Scenario, ScriptError, load_scenario
from bot.runtime import Runtime, StartupError
from sandbox import LocalSlack
from storage.database import BadDatabaseUrl, DatabaseUnavailable, describe_url


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
        sqlite_file, shown = describe_url(database_url)
    except BadDatabaseUrl:
        raise UsageProblem(f"--database-url {database_url!r} is not a URL; {FIXES['DATABASE_URL']}") from None
    if sqlite_file is not None:
        path = Path(sqlite_file).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return Place(path.parent, database_url, str(path))
    directory = Path(tempfile.mkdtemp(prefix="incident-bot-demo-"))
    return Place(directory, database_url, shown)


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
