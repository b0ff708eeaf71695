"""The database goes away under a running bot and comes back: Slack is told to redeliver, people
are told nothing changed, the probes say so, and the bot recovers without a restart, storing each
redelivered message once. The bot reaches PostgreSQL through a TCP proxy the test cuts."""

from __future__ import annotations

import os
from collections import Counter
from urllib.parse import urlsplit

import aiohttp
import pytest

from bot.runtime import Runtime
from sandbox import LocalSlack
from tests.conftest import ALICE, BOB, BotFactory, general
from tests.support import command, entry_rows, start_incident
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="needs TEST_DATABASE_URL")


async def _status(bot: Runtime, path: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{bot.port}{path}") as answer:
        return answer.status


async def test_a_database_outage_loses_nothing_and_heals_itself(
    slack: LocalSlack, pg_url: str, start_bot: BotFactory
) -> None:
    target = urlsplit(pg_url.replace("postgresql+asyncpg", "postgresql"))
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    bot = await start_bot(slack, DATABASE_URL=pg_url.replace(target.netloc.split("@")[-1], f"127.0.0.1:{proxy.port}"))
    try:
        channel = str((await start_incident(slack, bot, "Payments", ALICE, general(slack)))["channel_id"])
        before, _ = await slack.post_message(channel, user=BOB, text="before the outage")

        await proxy.cut()
        during, delivery = await slack.post_message(channel, user=BOB, text="while the database is away")
        assert delivery is not None and not delivery.acked and delivery.status >= 500  # Slack will redeliver
        assert await _status(bot, "/healthz") == 503 and await _status(bot, "/readyz") == 503
        await slack.send_command("severity sev1", user_id=ALICE, channel_id=channel)
        assert not await bot.idle(2)  # work finished, but the outbox cannot say what is due
        told = [str(e.get("text")) for e in slack.ephemerals if e.get("user") == ALICE]
        assert any("cannot reach its database" in t and "nothing was changed" in t for t in told), told

        await proxy.restore()
        assert await _status(bot, "/healthz") == 200 and await _status(bot, "/readyz") == 200
        for retried in await slack.redeliver_unacked():
            assert retried.acked
        await slack.redeliver_unacked()  # a second copy, as Slack sometimes sends, changes nothing
        await command(slack, bot, "severity sev1", ALICE, channel)  # works again, no restart
        entries = await entry_rows(bot)
        people = Counter(e["ts"] for e in entries if e["kind"] != "system")
        assert people == Counter({before: 1, during: 1})
        assert any("SEV1" in e["text"] for e in entries)
    finally:
        await proxy.cut()
