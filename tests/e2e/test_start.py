"""`/incident start` end to end: the real app over HTTP against the local Slack."""

from __future__ import annotations

from sqlalchemy import select

from bot.runtime import Runtime
from sandbox import LocalSlack
from storage.schema import incidents
from tests.conftest import ALICE, general


async def test_start_with_title_opens_channel_summary_and_announcement(slack: LocalSlack, bot: Runtime) -> None:
    delivery = await slack.send_command("start Checkout returns 500s", user_id=ALICE, channel_id=general(slack))
    assert delivery.status == 200
    assert await bot.idle()

    channel = slack.channel_by_name("inc-1-checkout-returns-500s")
    assert channel is not None, [c["name"] for c in slack.channels.values()]
    assert ALICE in channel["members"]
    assert "INC-1" in channel["topic"]["value"] if isinstance(channel["topic"], dict) else "INC-1" in channel["topic"]
    posted = slack.messages(channel["id"])
    summary = posted[0]
    assert summary["ts"] in slack.pins(channel["id"])
    rendered = str(summary.get("blocks"))
    assert "INC-1: Checkout returns 500s" in rendered and "SEV2" in rendered and f"<@{ALICE}>" in rendered
    announcement = slack.messages(general(slack))[-1]
    assert "INC-1" in announcement["text"] and f"<#{channel['id']}>" in announcement["text"]
    assert any("INC-1 is open" in r.get("text", "") for r in slack.ephemerals)

    async with bot.db.reading() as conn:
        row = (await conn.execute(select(incidents))).mappings().one()
    assert row["number"] == 1 and row["state"] == "open" and row["commander_id"] == ALICE
    assert row["channel_id"] == channel["id"] and row["team_id"] == "T0LOCAL"


async def test_numbers_are_sequential(slack: LocalSlack, bot: Runtime) -> None:
    for title in ("First", "Second", "Third"):
        await slack.send_command(f"start {title}", user_id=ALICE, channel_id=general(slack))
        assert await bot.idle()
    names = sorted(c["name"] for c in slack.channels.values() if c["name"].startswith("inc-"))
    assert names == ["inc-1-first", "inc-2-second", "inc-3-third"]
