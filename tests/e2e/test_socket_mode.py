"""Socket Mode end to end: the same Runtime, connected to the local Slack over a WebSocket."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from sqlalchemy import select

from bot.runtime import Runtime, StartupError
from sandbox import LocalSlack
from storage.schema import incidents
from tests.conftest import ALICE, BotFactory, general, settings_for

START_LIMIT_SECONDS = 5


async def test_start_over_socket_mode_opens_channel_and_summary(slack: LocalSlack, start_bot: BotFactory) -> None:
    bot = await start_bot(slack, SLACK_APP_TOKEN=slack.app_token)
    await slack.wait_for(lambda: slack.socket_connected, timeout=10)
    assert slack.bot_url is None  # so the command below can only travel over the socket
    async with aiohttp.ClientSession() as http:  # the probes are served, Slack's endpoint is not
        async with http.get(f"http://127.0.0.1:{bot.port}/readyz") as ready:
            assert ready.status == 200 and (await ready.json())["database"] is True
        async with http.post(f"http://127.0.0.1:{bot.port}/slack/events", data=b"{}") as events:
            assert events.status in (404, 405)

    delivery = await slack.send_command("start Socket test", user_id=ALICE, channel_id=general(slack))
    assert delivery.status == 200 and delivery.elapsed < 3.0
    assert await bot.idle()

    channel = slack.channel_by_name("inc-1-socket-test")
    assert channel is not None, [c["name"] for c in slack.channels.values()]
    summary = slack.messages(channel["id"])[0]
    assert "INC-1: Socket test" in str(summary["blocks"])
    assert summary["ts"] in slack.pins(channel["id"])
    assert slack.deliveries[-1]["kind"] == "slash_commands"
    async with bot.db.reading() as conn:
        row = (await conn.execute(select(incidents))).mappings().one()
    assert row["state"] == "open" and row["channel_id"] == channel["id"] and row["summary_ts"] == summary["ts"]


async def test_socket_mode_start_fails_fast_on_a_refused_app_token(slack: LocalSlack, database_url: str) -> None:
    """A revoked app token must stop the start with the reason, not leave a bot that hears nothing."""
    runtime = Runtime(
        settings_for(slack, SLACK_APP_TOKEN="xapp-revoked", DATABASE_URL=database_url), run_scheduler=False
    )
    try:
        with pytest.raises(StartupError, match="SLACK_APP_TOKEN"):
            async with asyncio.timeout(START_LIMIT_SECONDS):
                await runtime.start()
    finally:
        await runtime.stop()
    assert not slack.socket_connected


async def test_a_reconnection_reads_back_what_was_said_while_the_socket_was_down(
    slack: LocalSlack, database_url: str
) -> None:
    from tests.support import entry_rows

    runtime = Runtime(settings_for(slack, DATABASE_URL=database_url, SLACK_APP_TOKEN=slack.app_token,
                                   RECONCILE_SECONDS=3600))  # only start-up and reconnections read back
    await runtime.start()
    try:
        await slack.wait_for(lambda: slack.socket_connected, timeout=10)
        await slack.send_command("start Socket gap", user_id=ALICE, channel_id=general(slack))
        assert await runtime.idle()
        channel = slack.channel_by_name("inc-1-socket-gap")
        assert channel is not None
        missed = [(await slack.post_message(channel["id"], user=ALICE, text=f"gap {n}", deliver=False))[0]
                  for n in range(3)]
        hellos = slack.socket_hellos
        await slack.ask_to_reconnect()
        await slack.wait_for(lambda: slack.socket_hellos > hellos, timeout=10)

        async def recorded() -> set[str]:
            return {e["ts"] for e in await entry_rows(runtime)}

        for _ in range(50):
            if set(missed) <= await recorded():
                break
            await asyncio.sleep(0.1)
        assert set(missed) <= await recorded()
    finally:
        await runtime.stop()
