"""The real bot as the benches start it: on a local Slack, on a blank database, with an incident."""

from __future__ import annotations

from typing import Any

from _common import ALICE, SIGNING_SECRET
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.config import Settings
from bot.runtime import Runtime
from sandbox import LocalSlack
from storage.schema import incidents


async def empty_database(url: str) -> None:
    """PostgreSQL from scratch (a SQLite file in a new temp dir is blank already)."""
    if not url.startswith("postgresql"):
        return
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


async def start_bot(slack: LocalSlack, url: str, **settings: Any) -> Runtime:
    """HTTP mode, no scheduler, Slack's events pointed at it."""
    values = dict(SLACK_BOT_TOKEN=slack.bot_token, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack.api_url,
                  DATABASE_URL=url, HOST="127.0.0.1", PORT=0, TIMEZONE="UTC", **settings)  # fmt: skip
    runtime = Runtime(Settings(_env_file=None, **values), run_scheduler=False)  # type: ignore[call-arg]
    await runtime.start()
    slack.bot_url = f"http://127.0.0.1:{runtime.port}/slack/events"
    return runtime


async def open_incident(slack: LocalSlack, runtime: Runtime, members: list[str] | None = None) -> str:
    """`/incident start` from #general, as Alice; the new incident channel's id."""
    general = slack.add_channel("general", members=members or [ALICE])
    delivery = await slack.send_command("start Checkout returns 500s", user_id=ALICE, channel_id=general)
    if delivery.status != 200 or not await runtime.idle():
        raise RuntimeError(f"/incident start failed: {delivery.status} {delivery.body}")
    async with runtime.db.reading() as conn:
        channel = await conn.scalar(select(incidents.c.channel_id))
    if not channel:
        raise RuntimeError("/incident start made no incident channel")
    return str(channel)
