"""An incident with 10,000 messages publishes its postmortem within Slack's limits."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert

from bot.clock import ManualClock
from sandbox import LocalSlack
from sandbox.forms import fill_view
from storage.schema import timeline_entries
from tests.conftest import ALICE, BOB, CAROL, BotFactory, general
from tests.support import command, open_view, start_incident

COUNT = 10_000


async def test_ten_thousand_messages_publish_without_slack_errors(slack_at: LocalSlack, clock: ManualClock,
                                                                  start_bot: BotFactory) -> None:
    bot = await start_bot(slack_at, clock=clock)
    row = await start_incident(slack_at, bot, "Everything is on fire", ALICE, general(slack_at))
    start = clock.now()
    people = (ALICE, BOB, CAROL)
    values = []
    for n in range(COUNT):
        when = start + timedelta(seconds=10 * (n + 1))
        values.append({
            "team_id": "T0LOCAL", "incident_id": row["id"], "channel_id": row["channel_id"],
            "ts": f"{when.timestamp():.6f}", "thread_ts": None, "occurred_at": when,
            "kind": "message", "author_id": people[n % 3], "author_name": None,
            "text": f"message {n} <!channel> " + "x" * (n % 500), "files": "[]",
            "is_key": n % 97 == 0, "is_broadcast": False, "history": "[]", "recorded_at": when,
        })
    async with bot.db.transaction() as conn:
        await conn.execute(insert(timeline_entries), values)
    clock.advance(timedelta(days=1, hours=4))

    await command(slack_at, bot, "close", ALICE, str(row["channel_id"]))
    record = open_view(slack_at, "incident_close")
    answers = {"impact": "All users", "impact_start": start, "impact_end": clock.now() - timedelta(minutes=5),
               "root_cause": "Too much fire. " * 400, "resolution": "Water. " * 400,
               "improvements": "\n".join(f"improvement {n}" for n in range(200))}
    await slack_at.submit_view(record["id"], fill_view(record["view"], answers), user_id=ALICE)
    assert await bot.idle(timeout=120)

    failed = [c for c in slack_at.calls if not c.response.get("ok", True)]
    assert failed == []
    [upload] = [f for f in slack_at.files.values() if row["channel_id"] in f["channels"]]
    markdown = upload["content"].decode()
    assert all(f"message {n} " in markdown for n in (0, 1, COUNT // 2, COUNT - 1))
    assert sum(1 for line in markdown.splitlines() if line.startswith("- **")) >= COUNT
    assert "<!channel>" not in markdown
    summaries = [m for m in slack_at.messages(str(row["channel_id"])) if "postmortem" in str(m.get("blocks")).lower()]
    assert summaries and len(summaries[-1]["blocks"]) <= 50
