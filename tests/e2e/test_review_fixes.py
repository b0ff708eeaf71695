"""Failure paths found in review: each one once left a person without an answer or the timeline
wrong. Kept as end-to-end tests so they stay fixed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.clock import ManualClock
from bot.runtime import Runtime
from bot.ui.ids import Action
from sandbox import LocalSlack
from sandbox.forms import fill_view
from storage.schema import incidents
from tests.conftest import ALICE, BOB, SIGNING_SECRET, BotFactory, general
from tests.support import command, entry_rows, incident_row, open_view, rows, start_incident


async def test_slack_failing_mid_publish_is_retried_and_leaves_one_file(
    slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory
) -> None:
    """Once, a failed upload needed a person to run `/incident postmortem`; now the outbox
    retries it, and the completion Slack did not confirm is not repeated."""
    bot = await start_bot(slack_at, clock=clock)
    row = await start_incident(slack_at, bot, "Queue backlog", ALICE, general(slack_at))
    channel = str(row["channel_id"])
    clock.advance(timedelta(minutes=30))
    await command(slack_at, bot, "close", ALICE, channel)
    record = open_view(slack_at, "incident_close")
    answers = {"impact": "Delayed emails", "impact_start": clock.now() - timedelta(minutes=30),
               "impact_end": clock.now(), "root_cause": "A stuck consumer", "resolution": "Restarted it"}
    slack_at.fail_next("files.completeUploadExternal", error="internal_error")
    await slack_at.submit_view(record["id"], fill_view(record["view"], answers), user_id=ALICE)
    assert await bot.idle()
    assert (await incident_row(bot))["state"] == "closed"
    told = [str(e.get("text")) for e in slack_at.ephemerals if e.get("user") == ALICE]
    assert any("Slack is slow" in t for t in told), told
    assert not any(channel in f["channels"] for f in slack_at.files.values())

    clock.advance(timedelta(seconds=5))  # past the first backoff
    assert await bot.idle()
    shared = [f for f in slack_at.files.values() if channel in f["channels"]]
    summaries = [m for m in slack_at.messages(channel) if "postmortem" in str(m.get("text", "")).lower()
                 and "closed by" not in str(m.get("text")) and m.get("subtype") != "file_share"]
    assert len(shared) == 1 and len(summaries) == 1
    assert len([t for t in told if "Slack is slow" in t]) == 1


async def test_two_retry_clicks_make_one_channel(slack: LocalSlack, bot: Runtime) -> None:
    slack.fail_next("conversations.create", status=500)
    await slack.send_command("start Checkout down", user_id=ALICE, channel_id=general(slack))
    assert await bot.idle()
    [row] = await rows(bot, incidents)
    click = {"user_id": ALICE, "action_id": Action.RETRY_START, "value": str(row["id"]), "channel": general(slack)}
    await asyncio.gather(slack.click_button(**click), slack.click_button(**click))
    assert await bot.idle()
    made = [c for c in slack.channels.values() if c["name"].startswith("inc-1")]
    assert len(made) == 1 and (await incident_row(bot))["state"] == "open"
    assert (await incident_row(bot))["opening_claimed_at"] is None  # the claim was given back


async def test_out_of_order_edits_keep_the_newest_text(slack: LocalSlack, bot: Runtime) -> None:
    row = await start_incident(slack, bot, "Edits", ALICE, general(slack))
    channel = str(row["channel_id"])
    ts, _ = await slack.post_message(channel, user=BOB, text="A")

    def edit(text: str, edited_ts: str) -> dict[str, object]:
        message = {"type": "message", "user": BOB, "text": text, "ts": ts, "edited": {"user": BOB, "ts": edited_ts}}
        return {"type": "message", "subtype": "message_changed", "channel": channel, "hidden": True,
                "message": message, "previous_message": {"type": "message", "user": BOB, "text": "A", "ts": ts},
                "event_ts": edited_ts, "ts": edited_ts, "channel_type": "channel"}

    base = float(ts)
    await slack.deliver_event(edit("C (newest)", f"{base + 20:.6f}"))
    await slack.deliver_event(edit("B", f"{base + 10:.6f}"))
    [entry] = [e for e in await entry_rows(bot) if e["ts"] == ts]
    assert entry["text"] == "C (newest)"
    assert set(__import__("json").loads(entry["history"])) == {"A", "B"}


async def test_deleting_a_thread_parent_with_replies_removes_it(slack: LocalSlack, bot: Runtime) -> None:
    row = await start_incident(slack, bot, "Tombstones", ALICE, general(slack))
    channel = str(row["channel_id"])
    parent, _ = await slack.post_message(channel, user=BOB, text="wrong incident, sorry")
    await slack.post_message(channel, user=ALICE, text="np", thread_ts=parent)
    tombstone = {"type": "message", "subtype": "tombstone", "text": "This message was deleted.", "user": "USLACKBOT",
                 "hidden": True, "ts": parent, "thread_ts": parent, "reply_count": 1}
    event = {"type": "message", "subtype": "message_changed", "channel": channel, "hidden": True,
             "message": tombstone, "previous_message": {"type": "message", "user": BOB, "text": "wrong incident, sorry",
                                                        "ts": parent, "thread_ts": parent},
             "event_ts": f"{float(parent) + 5:.6f}", "ts": f"{float(parent) + 5:.6f}", "channel_type": "channel"}
    assert (await slack.deliver_event(event)).status == 200
    [entry] = [e for e in await entry_rows(bot) if e["ts"] == parent]
    assert entry["deleted_at"] is not None and entry["text"] == "wrong incident, sorry"


async def test_commander_slack_refuses_is_not_recorded(slack: LocalSlack, bot: Runtime) -> None:
    row = await start_incident(slack, bot, "Handover", ALICE, general(slack))
    await command(slack, bot, "commander <@U0NOBODY|nobody>", ALICE, str(row["channel_id"]))
    assert (await incident_row(bot))["commander_id"] == ALICE
    assert any("refused" in str(e.get("text")) for e in slack.ephemerals)


async def test_ssl_check_is_answered(slack: LocalSlack, bot: Runtime) -> None:
    import hashlib
    import hmac
    import time

    body = b"ssl_check=1&token=x"
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    delivery = await slack.deliver_raw(body, {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature,
                                              "Content-Type": "application/x-www-form-urlencoded"})
    assert delivery.status == 200


async def test_local_days_follow_timezone(slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory) -> None:
    """TIMEZONE=America/Los_Angeles: backdated notes, reminder days and 09:00 are all local."""
    from bot.jobs.sweep import sweep

    clock.set(datetime(2026, 11, 30, 2, 0, tzinfo=UTC))  # 18:00 on Nov 29 in Los Angeles
    bot = await start_bot(slack_at, clock=clock, TIMEZONE="America/Los_Angeles")
    row = await start_incident(slack_at, bot, "West coast", ALICE, general(slack_at))
    channel = str(row["channel_id"])
    await command(slack_at, bot, "note 17:30 first reports", BOB, channel)
    note = next(e for e in await entry_rows(bot) if e["kind"] == "note")
    assert note["occurred_at"] == datetime(2026, 11, 30, 1, 30, tzinfo=UTC)  # 17:30 local, Nov 29
    await command(slack_at, bot, f"task <@{BOB}|bob> Fix it due 2026-11-30", ALICE, channel)
    dm = lambda: slack_at.messages(slack_at.dm_channel(BOB) or "")  # noqa: E731
    clock.set(datetime(2026, 11, 30, 16, 59, tzinfo=UTC))  # 08:59 on Nov 30 local
    await sweep(bot.ctx)  # type: ignore[arg-type]
    assert dm() == []
    clock.set(datetime(2026, 11, 30, 17, 0, tzinfo=UTC))  # 09:00 local
    await sweep(bot.ctx)  # type: ignore[arg-type]
    assert len(dm()) == 1 and "due today" in dm()[0]["text"]
    clock.set(datetime(2026, 12, 1, 7, 0, tzinfo=UTC))  # still Nov 30, 23:00 local: same day
    await sweep(bot.ctx)  # type: ignore[arg-type]
    assert len(dm()) == 1


async def test_url_verification_challenge_is_echoed(slack: LocalSlack, bot: Runtime) -> None:
    import hashlib
    import hmac
    import json
    import time

    body = json.dumps({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                       "type": "url_verification"}).encode()
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    delivery = await slack.deliver_raw(body, {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature,
                                              "Content-Type": "application/json"})
    assert delivery.status == 200 and "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in delivery.body


async def test_a_refused_pin_or_topic_does_not_stop_the_incident(slack: LocalSlack, bot: Runtime) -> None:
    slack.fail_next("pins.add", error="not_pinnable")
    slack.fail_next("conversations.setTopic", error="too_long")
    row = await start_incident(slack, bot, "Partial Slack", ALICE, general(slack))
    assert row["state"] == "open" and row["summary_ts"]
    assert any("INC-1 is open" in str(e.get("text")) for e in slack.ephemerals)


async def test_a_failure_after_the_ack_is_told_to_the_person(slack: LocalSlack, bot: Runtime) -> None:
    """Work after the ack that fails unexpectedly (here a button carrying a mangled value) is
    logged and the person hears of it, instead of the silence Bolt's lazy runner would leave."""
    delivery = await slack.click_button(user_id=BOB, action_id=Action.TASK_DONE, value="not-a-number",
                                        channel=general(slack))
    assert delivery.status == 200
    assert await bot.idle()
    told = [str(e.get("text")) for e in slack.ephemerals if e.get("user") == BOB]
    assert any("Something went wrong while marking the task done" in t for t in told), told
