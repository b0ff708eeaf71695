"""Corrective tasks and their reminders, on a moved clock (nobody sleeps through real days)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import update

from bot.clock import ManualClock
from bot.jobs.sweep import sweep
from bot.runtime import Runtime
from sandbox import LocalSlack
from storage.schema import reminders, tasks
from tests.conftest import ALICE, BOB, CAROL, BotFactory, general, settings_for
from tests.support import command, entry_rows, rows, start_incident, task_rows


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


DUE = date(2026, 11, 30)


def dms(slack: LocalSlack, user: str) -> list[dict[str, Any]]:
    channel = slack.dm_channel(user)
    return slack.messages(channel) if channel else []


async def _incident_with_task(slack: LocalSlack, bot: Runtime, text: str) -> str:
    row = await start_incident(slack, bot, "Checkout returns 500s", ALICE, general(slack))
    channel = str(row["channel_id"])
    await command(slack, bot, f"task <@{BOB}|bob> {text}", ALICE, channel)
    return channel


async def _day(bot: Runtime, clock: ManualClock, when: datetime) -> None:
    clock.set(when)
    await sweep(bot.ctx)  # type: ignore[arg-type]


async def test_task_command_lists_and_timeline(slack_at: LocalSlack, clock: ManualClock,
                                               start_bot: BotFactory) -> None:
    bot = await start_bot(slack_at, clock=clock)
    channel = await _incident_with_task(slack_at, bot, "Review the load balancer config due 2026-11-30")
    [task] = await task_rows(bot)
    assert (task["owner_id"], task["description"], task["due_date"]) == (BOB, "Review the load balancer config", DUE)
    assert any("added a task" in e["text"] for e in await entry_rows(bot))
    await command(slack_at, bot, "tasks", CAROL, channel)
    await command(slack_at, bot, "tasks", BOB, general(slack_at))
    listed = [str(e.get("text")) for e in slack_at.ephemerals if "Review the load balancer" in str(e.get("text"))]
    assert len(listed) == 2 and "INC-1" in listed[1]
    await command(slack_at, bot, f"task <@{BOB}> Fix it due 2020-01-01", ALICE, channel)
    assert any("in the past" in str(e.get("text")) for e in slack_at.ephemerals)
    assert len(await task_rows(bot)) == 1


async def test_reminded_on_due_day_then_daily_not_before_nine(slack_at: LocalSlack, clock: ManualClock,
                                                              start_bot: BotFactory) -> None:
    bot = await start_bot(slack_at, clock=clock)
    await _incident_with_task(slack_at, bot, "Review the LB config due 2026-11-30")
    await _day(bot, clock, at(DUE - timedelta(days=1), 10))
    await _day(bot, clock, at(DUE, 8, 59))
    assert dms(slack_at, BOB) == []
    await _day(bot, clock, at(DUE, 9, 0))
    await _day(bot, clock, at(DUE, 15, 0))
    assert len(dms(slack_at, BOB)) == 1
    reminder = dms(slack_at, BOB)[0]
    assert all(part in reminder["text"] for part in ("INC-1", "Review the LB config", "due today"))
    assert {e["action_id"] for b in reminder["blocks"] for e in b.get("elements", [])} >= {
        "task_done", "task_snooze_day", "task_snooze_week"}
    await _day(bot, clock, at(DUE + timedelta(days=1), 9, 30))
    assert len(dms(slack_at, BOB)) == 2 and "overdue" in dms(slack_at, BOB)[1]["text"]
    # The bot was down for three days: one reminder when it is back, not a flood.
    await _day(bot, clock, at(DUE + timedelta(days=5), 12, 0))
    await _day(bot, clock, at(DUE + timedelta(days=5), 13, 0))
    assert len(dms(slack_at, BOB)) == 3


async def test_buttons_done_and_snooze(slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory) -> None:
    bot = await start_bot(slack_at, clock=clock)
    channel = await _incident_with_task(slack_at, bot, "Review the LB config due 2026-11-30")
    [task] = await task_rows(bot)
    await _day(bot, clock, at(DUE, 9))
    dm = slack_at.dm_channel(BOB)
    assert dm is not None
    first = dms(slack_at, BOB)[0]
    await slack_at.click_button(user_id=BOB, action_id="task_snooze_day", value=str(task["id"]), channel=dm,
                                message_ts=first["ts"])
    assert await bot.idle()
    assert "Snoozed" in dms(slack_at, BOB)[0]["text"]  # updated in place
    await _day(bot, clock, at(DUE + timedelta(days=1), 9))
    assert len(dms(slack_at, BOB)) == 1  # snoozed: nothing the next day
    await _day(bot, clock, at(DUE + timedelta(days=2), 9))
    second = dms(slack_at, BOB)[1]
    await slack_at.click_button(user_id=BOB, action_id="task_done", value=str(task["id"]), channel=dm,
                                message_ts=second["ts"])
    assert await bot.idle()
    assert "Done" in dms(slack_at, BOB)[1]["text"] and not dms(slack_at, BOB)[1]["blocks"][-1].get("elements")
    assert (await task_rows(bot))[0]["status"] == "done"
    assert any("completed a task" in m["text"] for m in slack_at.messages(channel))
    assert any("completed a task" in e["text"] for e in await entry_rows(bot))
    await _day(bot, clock, at(DUE + timedelta(days=3), 9))
    assert len(dms(slack_at, BOB)) == 2


async def test_snooze_week_and_undated_weekly(slack_at: LocalSlack, clock: ManualClock,
                                             start_bot: BotFactory) -> None:
    bot = await start_bot(slack_at, clock=clock)
    await _incident_with_task(slack_at, bot, "Write the runbook")
    created = clock.now().date()
    await _day(bot, clock, at(created + timedelta(days=6), 10))
    assert dms(slack_at, BOB) == []
    await _day(bot, clock, at(created + timedelta(days=7), 10))
    assert len(dms(slack_at, BOB)) == 1 and "no due date" in dms(slack_at, BOB)[0]["text"]
    [task] = await task_rows(bot)
    await slack_at.click_button(user_id=BOB, action_id="task_snooze_week", value=str(task["id"]),
                                channel=slack_at.dm_channel(BOB), message_ts=dms(slack_at, BOB)[0]["ts"])
    assert await bot.idle()
    assert (await task_rows(bot))[0]["next_remind_on"] == created + timedelta(days=15)


async def test_reminders_continue_after_close_and_failures_reported_once(
    slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory
) -> None:
    bot = await start_bot(slack_at, clock=clock)
    channel = await _incident_with_task(slack_at, bot, "Review the LB config due 2026-11-30")
    slack_at.add_user("U0GONE", "gone", deleted=True)
    slack_at.add_user("U0ROBOT", "robot", is_bot=True)
    await command(slack_at, bot, "task <@U0GONE|gone> Left the company due 2026-11-30", ALICE, channel)
    await command(slack_at, bot, "task <@U0ROBOT|robot> A bot cannot own this due 2026-11-30", ALICE, channel)
    await bot.ctx.store.update_incident(1, state="closed")  # type: ignore[union-attr]
    slack_at.fail_next("chat.postMessage", status=429, retry_after=1)
    await _day(bot, clock, at(DUE, 9))
    await _day(bot, clock, at(DUE + timedelta(days=1), 9))
    assert len(dms(slack_at, BOB)) == 2  # the 429 was retried after Retry-After; closed incidents still remind
    warnings = [m["text"] for m in slack_at.messages(channel) if "cannot remind" in m["text"]]
    assert len(warnings) == 2, warnings  # once each, not again the next day
    assert any("U0GONE" in w and "user_not_found" in w for w in warnings)
    assert any("U0ROBOT" in w and "cannot_dm_bot" in w for w in warnings)


async def test_crash_mid_sweep_neither_repeats_nor_skips(slack_at: LocalSlack, clock: ManualClock,
                                                         start_bot: BotFactory, database_url: str) -> None:
    bot = await start_bot(slack_at, clock=clock)
    await _incident_with_task(slack_at, bot, "Review the LB config due 2026-11-30")
    await _day(bot, clock, at(DUE, 9))
    assert len(dms(slack_at, BOB)) == 1
    # Put the database back as a process that died between Slack's answer and its own commit
    # would have left it: the DM went out, the claim is still open, the task still due today.
    async with bot.db.transaction() as conn:
        await conn.execute(update(reminders).values(state="claimed", message_ts=None, sent_at=None))
        await conn.execute(update(tasks).values(next_remind_on=DUE))

    restarted = await start_bot(slack_at, clock=clock, DATABASE_URL=database_url)
    await _day(restarted, clock, at(DUE, 9, 5))  # the claim is fresh: its owner may still be working
    assert len(dms(slack_at, BOB)) == 1
    await _day(restarted, clock, at(DUE, 9, 30))  # stale: taken over, found already sent, not re-sent
    assert len(dms(slack_at, BOB)) == 1
    assert [r["state"] for r in await rows(restarted, reminders)] == ["sent"]
    await _day(restarted, clock, at(DUE + timedelta(days=1), 9))  # and the next day is not skipped
    assert len(dms(slack_at, BOB)) == 2


async def test_crash_before_sending_is_sent_by_the_next_process(slack_at: LocalSlack, clock: ManualClock,
                                                                start_bot: BotFactory, database_url: str) -> None:
    bot = await start_bot(slack_at, clock=clock)
    await _incident_with_task(slack_at, bot, "Review the LB config due 2026-11-30")
    clock.set(at(DUE, 9))
    slack_at.hang_next("conversations.open", 5)
    dying = asyncio.create_task(sweep(bot.ctx))  # type: ignore[arg-type]
    for _ in range(100):  # until the sweep has claimed the reminder and waits on Slack
        if [r["state"] for r in await rows(bot, reminders)] == ["claimed"]:
            break
        await asyncio.sleep(0.05)
    dying.cancel()
    assert [r["state"] for r in await rows(bot, reminders)] == ["claimed"] and dms(slack_at, BOB) == []
    restarted = await start_bot(slack_at, clock=clock, DATABASE_URL=database_url)
    await _day(restarted, clock, at(DUE, 9, 30))
    assert len(dms(slack_at, BOB)) == 1


async def test_weekly_digest_and_idle_nudge(slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory) -> None:
    bot = await start_bot(slack_at, clock=clock)  # clock starts Monday 2026-11-23 10:00
    channel = await _incident_with_task(slack_at, bot, "Review the LB config due 2026-11-24")
    await command(slack_at, bot, f"task <@{CAROL}|carol> Add alerts due 2026-12-20", ALICE, channel)
    await _day(bot, clock, at(date(2026, 11, 25), 10))  # Wednesday: no digest; quiet for 2 days: a nudge
    await _day(bot, clock, at(date(2026, 11, 25), 11))
    nudges = [m for m in slack_at.messages(channel) if "quiet for 24 hours" in m["text"]]
    assert len(nudges) == 1 and f"<@{ALICE}>" in nudges[0]["text"]
    await _day(bot, clock, at(date(2026, 11, 30), 9, 15))  # Monday
    await _day(bot, clock, at(date(2026, 11, 30), 16, 0))
    digests = [m for m in slack_at.messages(channel) if "Weekly digest" in m["text"]]
    assert len(digests) == 1
    text = digests[0]["text"]
    assert text.index("Review the LB config") < text.index("Add alerts") and "overdue" in text


async def test_scheduler_drives_the_sweep(slack: LocalSlack, start_bot: BotFactory, database_url: str) -> None:
    """With the real scheduler on (REMINDER_SWEEP_SECONDS=1), a task due today is reminded."""
    bot = await start_bot(slack)
    await _incident_with_task(slack, bot, f"Check the dashboards due {datetime.now(UTC).date().isoformat()}")
    scheduled = Runtime(settings_for(slack, DATABASE_URL=database_url, REMINDER_SWEEP_SECONDS=1,
                                     REMINDER_NOT_BEFORE="00:00"))
    await scheduled.start()
    try:
        await slack.wait_for(lambda: len(dms(slack, BOB)) == 1, timeout=10)
    finally:
        await scheduled.stop()
    assert len(dms(slack, BOB)) == 1
