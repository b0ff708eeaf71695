"""Channel messages become the timeline: own ts, exactly once, edits, deletions, key events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.clock import ManualClock
from bot.runtime import Runtime
from sandbox import LocalSlack
from tests.conftest import ALICE, BOB, CAROL, BotFactory, general
from tests.support import command, entry_rows, incident_row, start_incident


async def _incident(slack: LocalSlack, bot: Runtime) -> str:
    row = await start_incident(slack, bot, "Checkout returns 500s", ALICE, general(slack))
    return str(row["channel_id"])


def _texts(entries: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return [e["text"] for e in entries if e["kind"] != "system"]


async def test_messages_are_entries_at_their_own_time(slack_at: LocalSlack, clock: ManualClock,
                                                      start_bot: BotFactory) -> None:
    bot = await start_bot(slack_at, clock=clock)
    channel = await _incident(slack_at, bot)
    posted_at = clock.now() + timedelta(minutes=3)
    ts, _ = await slack_at.post_message(channel, user=BOB, text="Error rate is 40%", at=posted_at)
    # The event reaches the bot much later than it was posted: the entry keeps the post time.
    clock.advance(timedelta(hours=2))
    await slack_at.post_message(channel, bot_id="B0ALERT", username="Alertmanager", text="HTTP 500 > 5%",
                                at=posted_at + timedelta(minutes=1))
    await slack_at.post_message(channel, user=CAROL, text="Looking at the LB", thread_ts=ts,
                                at=posted_at + timedelta(minutes=2))
    await slack_at.post_message(channel, user=CAROL, text="LB config changed at 21:58", thread_ts=ts,
                                reply_broadcast=True, at=posted_at + timedelta(minutes=4))
    await slack_at.post_message(channel, user=BOB, text="graph", files=[{"name": "errors.png"}],
                                at=posted_at + timedelta(minutes=5))
    entries = [e for e in await entry_rows(bot) if e["kind"] != "system"]

    assert [e["text"] for e in entries] == [
        "Error rate is 40%", "HTTP 500 > 5%", "Looking at the LB", "LB config changed at 21:58", "graph"]
    first = entries[0]
    assert first["occurred_at"] == posted_at and first["ts"] == ts and first["author_id"] == BOB
    assert entries[1]["kind"] == "bot_message" and entries[1]["author_name"] == "Alertmanager"
    assert entries[2]["thread_ts"] == ts and not entries[2]["is_broadcast"]
    assert entries[3]["is_broadcast"]
    assert "errors.png" in entries[4]["files"]


async def test_retried_event_makes_one_entry(slack: LocalSlack, bot: Runtime) -> None:
    channel = await _incident(slack, bot)
    ts, first = await slack.post_message(channel, user=BOB, text="DB CPU at 100%", event_id="Ev0DUP")
    message = slack.messages(channel)[-1]
    event = {"type": "message", "channel": channel, "user": BOB, "text": message["text"], "ts": ts,
             "event_ts": ts, "channel_type": "channel"}
    for retry in (1, 2, 3):
        delivery = await slack.deliver_event(event, event_id="Ev0DUP", retry_num=retry, retry_reason="http_timeout")
        assert delivery.status == 200
    # The same message under a different event id (Slack duplicates happen) is still one entry.
    await slack.deliver_event(event, event_id="Ev0OTHER")
    assert _texts(await entry_rows(bot)) == ["DB CPU at 100%"]


async def test_edits_and_deletions(slack: LocalSlack, bot: Runtime) -> None:
    channel = await _incident(slack, bot)
    kept, _ = await slack.post_message(channel, user=BOB, text="Rollback startd")
    gone, _ = await slack.post_message(channel, user=CAROL, text="wrong channel, sorry")
    await slack.edit_message(channel, kept, "Rollback started")
    await slack.delete_message(channel, gone)
    entries = {e["ts"]: e for e in await entry_rows(bot)}

    assert entries[kept]["text"] == "Rollback started"
    assert entries[kept]["history"] == '["Rollback startd"]' and entries[kept]["edited_at"] is not None
    assert entries[gone]["deleted_at"] is not None  # a tombstone, kept for audit


async def test_pushpin_marks_a_key_event(slack: LocalSlack, bot: Runtime) -> None:
    channel = await _incident(slack, bot)
    ts, _ = await slack.post_message(channel, user=BOB, text="Found it: LB misconfiguration")
    await slack.add_reaction(channel, ts, "pushpin", user=ALICE)
    assert {e["ts"]: e["is_key"] for e in await entry_rows(bot)}[ts] is True
    await slack.add_reaction(channel, ts, "eyes", user=CAROL)
    await slack.remove_reaction(channel, ts, "pushpin", user=ALICE)
    assert {e["ts"]: e["is_key"] for e in await entry_rows(bot)}[ts] is False


async def test_messages_outside_incident_channels_are_ignored(slack: LocalSlack, bot: Runtime) -> None:
    await _incident(slack, bot)
    await slack.post_message(general(slack), user=BOB, text="lunch?")
    assert "lunch?" not in _texts(await entry_rows(bot))


async def test_commands_during_the_incident_are_system_entries(slack_at: LocalSlack, clock: ManualClock,
                                                               start_bot: BotFactory) -> None:
    clock.set(datetime(2026, 11, 23, 14, 30, tzinfo=UTC))
    bot = await start_bot(slack_at, clock=clock)
    channel = await _incident(slack_at, bot)
    await command(slack_at, bot, "note 14:05 customers reported failed payments", BOB, channel)
    await command(slack_at, bot, "severity sev1", ALICE, channel)
    await command(slack_at, bot, "status identified LB config", ALICE, channel)
    await command(slack_at, bot, f"commander <@{CAROL}|carol>", ALICE, channel)

    entries = await entry_rows(bot)
    note = next(e for e in entries if e["kind"] == "note")
    assert note["occurred_at"] == datetime(2026, 11, 23, 14, 5, tzinfo=UTC)
    assert note["text"] == "customers reported failed payments" and note["author_id"] == BOB
    system = " | ".join(e["text"] for e in entries if e["kind"] == "system")
    assert "SEV2 → SEV1" in system and "identified" in system and f"<@{CAROL}>" in system
    row = await incident_row(bot)
    assert (row["severity"], row["status"], row["commander_id"]) == ("sev1", "identified", CAROL)
    summary = slack_at.messages(channel)[0]
    assert "SEV1" in str(summary["blocks"]) and "Identified" in str(summary["blocks"])
    assert CAROL in slack_at.channels[channel]["members"]


async def test_bad_subcommands_get_usage(slack: LocalSlack, bot: Runtime) -> None:
    channel = await _incident(slack, bot)
    for text in ("severity sev9", "status fixed", "commander bob", "frobnicate", "note"):
        delivery = await slack.send_command(text, user_id=BOB, channel_id=channel)
        assert delivery.status == 200
        assert "Usage" in delivery.body, (text, delivery.body)
    delivery = await slack.send_command("note hello", user_id=BOB, channel_id=general(slack))
    assert await bot.idle()
    assert any("incident channel" in str(e.get("text")) for e in slack.ephemerals)


async def test_alert_with_only_attachments_is_recorded_with_its_words(slack: LocalSlack, bot: Runtime) -> None:
    channel = await _incident(slack, bot)
    event = {"type": "message", "subtype": "bot_message", "channel": channel, "bot_id": "B0GRAFANA",
             "username": "Grafana", "text": "", "ts": "1800000000.000100", "event_ts": "1800000000.000100",
             "channel_type": "channel",
             "attachments": [{"fallback": "[FIRING] p99 latency", "title": "[FIRING] p99 latency > 2s",
                              "text": "checkout-api in eu-west-1"}]}
    delivery = await slack.deliver_event(event)
    assert delivery.status == 200
    [entry] = [e for e in await entry_rows(bot) if e["kind"] == "bot_message"]
    assert entry["text"] == "[FIRING] p99 latency > 2s — checkout-api in eu-west-1"
    assert entry["author_name"] == "Grafana"
