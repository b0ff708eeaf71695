"""What Slack never delivered is read back from the channel's history: once, at its own time."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from bot.clock import ManualClock
from bot.runtime import Runtime
from bot.services.reconcile import ReconcileReport
from sandbox import LocalSlack
from sandbox.forms import fill_view
from tests.conftest import ALICE, BOB, CAROL, BotFactory, general
from tests.e2e.test_closeout import answers
from tests.support import command, entry_rows, open_view, start_incident


async def _reconcile(bot: Runtime) -> ReconcileReport:
    assert bot.reconciler is not None
    return await bot.reconciler.run()


async def _people_entries(bot: Runtime) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in await entry_rows(bot) if e["kind"] != "system"]


async def test_messages_posted_while_down_are_recorded_once_at_their_time(
    slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory
) -> None:
    slack = slack_at
    bot = await start_bot(slack, clock=clock)
    channel = str((await start_incident(slack, bot, "Checkout 500s", ALICE, general(slack)))["channel_id"])
    live_ts, _ = await slack.post_message(channel, user=BOB, text="error rate 40%", at=clock.now())
    parent_ts, _ = await slack.post_message(channel, user=CAROL, text="LB or DB?", at=clock.now())
    # The bot is down: nothing below reaches it as an event.
    offline = clock.now() + timedelta(minutes=10)
    missed = []
    for n in range(5):
        ts, _ = await slack.post_message(channel, user=(BOB, CAROL)[n % 2], text=f"down {n}",
                                         at=offline + timedelta(minutes=n), deliver=False)
        missed.append(ts)
    reply_ts, _ = await slack.post_message(channel, user=BOB, text="DB, replica lag", thread_ts=parent_ts,
                                           at=offline + timedelta(minutes=6), deliver=False)
    slack.workspace.edit_message(channel, live_ts, {"text": "error rate 45%"}, editor=BOB)
    slack.workspace.edit_message(channel, missed[0], {"text": "down 0 (edited)"}, editor=BOB)

    report = await _reconcile(bot)
    entries = await _people_entries(bot)
    by_ts = {e["ts"]: e for e in entries}
    assert Counter(e["ts"] for e in entries) == Counter({t: 1 for t in [live_ts, parent_ts, *missed, reply_ts]})
    assert [by_ts[t]["text"] for t in missed] == ["down 0 (edited)", "down 1", "down 2", "down 3", "down 4"]
    assert by_ts[missed[3]]["occurred_at"] == offline + timedelta(minutes=3)
    assert by_ts[reply_ts]["thread_ts"] == parent_ts and by_ts[reply_ts]["text"] == "DB, replica lag"
    assert by_ts[live_ts]["text"] == "error rate 45%" and by_ts[live_ts]["history"] == '["error rate 40%"]'
    assert report.added == 6 and report.edited == 1

    # A second pass, and the live event arriving late after all, change nothing.
    again = await _reconcile(bot)
    await slack.redeliver_unacked()
    assert (again.added, again.edited) == (0, 0)
    assert len(await _people_entries(bot)) == len(entries)


async def test_a_message_gone_from_history_stays_unless_a_deletion_said_so(slack: LocalSlack, bot: Runtime) -> None:
    channel = str((await start_incident(slack, bot, "Search slow", ALICE, general(slack)))["channel_id"])
    kept, _ = await slack.post_message(channel, user=BOB, text="restarting search-3")
    gone, _ = await slack.post_message(channel, user=BOB, text="wrong channel, sorry")
    slack.workspace.delete_message(channel, kept)  # no event: history alone does not delete
    await slack.delete_message(channel, gone)
    await _reconcile(bot)
    entries = {e["ts"]: e for e in await _people_entries(bot)}
    assert entries[kept]["deleted_at"] is None and entries[kept]["text"] == "restarting search-3"
    assert entries[gone]["deleted_at"] is not None


async def test_a_long_gap_is_read_page_by_page_and_bot_posts_are_not_people(slack: LocalSlack, bot: Runtime) -> None:
    channel = str((await start_incident(slack, bot, "Queue backlog", ALICE, general(slack)))["channel_id"])
    for n in range(450):
        await slack.post_message(channel, user=BOB, text=f"m{n}", deliver=False)
    await slack.post_message(channel, bot_id="B0ALERT", username="Alertmanager", text="queue > 10k", deliver=False)
    await _reconcile(bot)
    entries = await _people_entries(bot)
    assert len(entries) == 451 and len({e["ts"] for e in entries}) == 451
    assert entries[-1]["kind"] == "bot_message" and entries[-1]["author_name"] == "Alertmanager"
    pages = [c for c in slack.calls_to("conversations.history") if c.args.get("channel") == channel]
    assert len(pages) == 3 and all(int(c.args["limit"]) <= 200 for c in pages)
    # The bot's own posts (the pinned summary) were recorded when it made them, not again here.
    systems = [e for e in await entry_rows(bot) if e["kind"] == "system"]
    assert len(systems) == len({e["ts"] for e in systems})


async def test_a_rate_limited_page_is_waited_out_not_skipped(slack: LocalSlack, bot: Runtime) -> None:
    channel = str((await start_incident(slack, bot, "DNS flaps", ALICE, general(slack)))["channel_id"])
    for n in range(5):
        await slack.post_message(channel, user=CAROL, text=f"flap {n}", deliver=False)
    # Far more 429s in a row than slack-sdk's own retry handler absorbs, and more than the
    # pass allows other failures: a rate limit is waited out however often it comes.
    slack.fail_next("conversations.history", status=429, retry_after=0, times=50)
    report = await _reconcile(bot)
    assert report.added == 5 and not report.failed
    assert len(slack.calls_to("conversations.history")) >= 51


async def test_a_closed_incident_takes_missed_messages_from_before_its_close_only(
    slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory
) -> None:
    slack = slack_at
    bot = await start_bot(slack, clock=clock)
    channel = str((await start_incident(slack, bot, "Login loop", ALICE, general(slack)))["channel_id"])
    before, _ = await slack.post_message(channel, user=BOB, text="rolled back auth",
                                         at=clock.now() + timedelta(minutes=5), deliver=False)
    clock.advance(timedelta(hours=1))
    await command(slack, bot, "close", ALICE, channel)
    view = open_view(slack, "incident_close")
    await slack.submit_view(view["id"], fill_view(view["view"], answers()), user_id=ALICE)
    assert await bot.idle()
    after, _ = await slack.post_message(channel, user=CAROL, text="thanks all",
                                        at=clock.now() + timedelta(minutes=1), deliver=False)
    clock.advance(timedelta(hours=2))
    await _reconcile(bot)
    texts = {e["ts"]: e["text"] for e in await _people_entries(bot)}
    assert texts.get(before) == "rolled back auth" and after not in texts
    # A day after its close, an incident is no longer read back at all.
    clock.advance(timedelta(days=1))
    history_calls = len(slack.calls_to("conversations.history"))
    await _reconcile(bot)
    assert len(slack.calls_to("conversations.history")) == history_calls
