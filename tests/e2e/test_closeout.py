"""Closing: the modal, its field errors, the stored answers and the published postmortem."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.clock import ManualClock
from bot.runtime import Runtime
from sandbox import LocalSlack
from sandbox.forms import fill_view
from tests.conftest import ALICE, BOB, CAROL, BotFactory, general
from tests.support import command, entry_rows, incident_row, open_view, start_incident, task_rows

START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def answers(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "impact": "30% of checkouts failed with HTTP 500",
        "impact_start": START,
        "impact_end": START + timedelta(minutes=50),
        "root_cause": "A load balancer change routed traffic to drained backends. It was applied without review.",
        "resolution": "Reverted the load balancer configuration.",
        "improvements": "Review LB changes\nAlert on backend health",
        "task_description_1": "Audit all LB configurations",
        "task_owner_1": BOB,
        "task_due_1": date(2026, 11, 30),
        "task_description_2": "Add config validation to CI",
        "task_owner_2": CAROL,
        "task_due_2": date(2026, 12, 7),
    }
    base.update(overrides)
    return base


async def _open_close_modal(slack: LocalSlack, bot: Runtime, clock: ManualClock) -> tuple[str, dict[str, Any]]:
    row = await start_incident(slack, bot, "Checkout returns 500s", ALICE, general(slack))
    channel = str(row["channel_id"])
    await slack.post_message(channel, user=BOB, text="500s on /checkout", at=START + timedelta(minutes=5))
    clock.advance(timedelta(hours=1))
    await command(slack, bot, "close", ALICE, channel)
    return channel, open_view(slack, "incident_close")


async def test_close_modal_field_errors_change_nothing(slack_at: LocalSlack, clock: ManualClock,
                                                       start_bot: BotFactory) -> None:
    bot = await start_bot(slack_at, clock=clock)
    channel, record = await _open_close_modal(slack_at, bot, clock)
    bad = answers(impact_end=START - timedelta(minutes=1), root_cause="", task_owner_2=None,
                  task_due_1=date(2026, 11, 1))
    delivery = await slack_at.submit_view(record["id"], fill_view(record["view"], bad), user_id=ALICE)
    assert await bot.idle()

    errors = delivery.json["errors"]
    assert set(errors) == {"impact_end", "root_cause", "task_owner_2", "task_due_1"}
    assert not slack_at.views[record["id"]]["closed"]
    assert (await incident_row(bot))["state"] == "open" and await task_rows(bot) == []


async def test_close_stores_answers_and_publishes_postmortem(slack_at: LocalSlack, clock: ManualClock,
                                                            start_bot: BotFactory) -> None:
    bot = await start_bot(slack_at, clock=clock)
    channel, record = await _open_close_modal(slack_at, bot, clock)
    delivery = await slack_at.submit_view(record["id"], fill_view(record["view"], answers()), user_id=ALICE)
    assert delivery.status == 200 and not (delivery.json or {}).get("errors")
    assert await bot.idle()

    row = await incident_row(bot)
    assert row["state"] == "closed" and row["closed_at"] == clock.now()
    owners = sorted((t["owner_id"], t["description"], t["due_date"]) for t in await task_rows(bot))
    assert owners == [(BOB, "Audit all LB configurations", date(2026, 11, 30)),
                      (CAROL, "Add config validation to CI", date(2026, 12, 7))]
    uploaded = [f for f in slack_at.files.values() if channel in f["channels"]]
    assert len(uploaded) == 1
    markdown = uploaded[0]["content"].decode()
    assert "## Issue Summary" in markdown and "## Timeline" in markdown
    assert "500s on /checkout" in markdown and "10:05" in markdown
    assert "Audit all LB configurations" in markdown and "2026-11-30" in markdown
    for where in (channel, general(slack_at)):
        assert any("postmortem" in str(m.get("blocks")).lower() for m in slack_at.messages(where)), where
    system = [e["text"] for e in await entry_rows(bot) if e["kind"] == "system"]
    assert any("closed by" in t for t in system) and sum("added a task" in t for t in system) == 2


async def test_closing_twice_or_elsewhere_is_answered(slack_at: LocalSlack, clock: ManualClock,
                                                      start_bot: BotFactory) -> None:
    bot = await start_bot(slack_at, clock=clock)
    channel, record = await _open_close_modal(slack_at, bot, clock)
    await slack_at.submit_view(record["id"], fill_view(record["view"], answers()), user_id=ALICE)
    assert await bot.idle()
    await command(slack_at, bot, "close", ALICE, channel)
    await command(slack_at, bot, "close", ALICE, general(slack_at))
    texts = [str(e.get("text")) for e in slack_at.ephemerals]
    assert any("closed already" in t for t in texts) and any("incident channel" in t for t in texts)


async def test_add_task_row_keeps_the_form(slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory) -> None:
    bot = await start_bot(slack_at, clock=clock)
    _, record = await _open_close_modal(slack_at, bot, clock)
    await slack_at.click_button(user_id=ALICE, action_id="close_add_task_row", view_id=record["id"])
    assert await bot.idle()
    view = slack_at.views[record["id"]]["view"]
    assert json.loads(view["private_metadata"])["rows"] == 4
    assert any(b.get("block_id") == "task_owner_4" for b in view["blocks"])


async def test_postmortem_command_and_export(slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory,
                                             database_url: str, tmp_path: Any) -> None:
    import asyncio
    import subprocess
    import sys

    bot = await start_bot(slack_at, clock=clock)
    channel, record = await _open_close_modal(slack_at, bot, clock)
    await slack_at.submit_view(record["id"], fill_view(record["view"], answers()), user_id=ALICE)
    assert await bot.idle()
    await command(slack_at, bot, "postmortem", BOB, channel)
    assert len([f for f in slack_at.files.values() if channel in f["channels"]]) == 2

    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "bot", "export", "INC-1"],
                                   capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# INC-1") and "500s on /checkout" in done.stdout
    missing = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "bot", "export", "INC-9"],
                                      capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert missing.returncode == 1 and "INC-9" in missing.stderr and "Traceback" not in missing.stderr


async def test_whole_flow_on_postgresql(slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory) -> None:
    import os

    import pytest

    from storage import Database
    from storage.schema import metadata

    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set")
    blank = Database(url)
    async with blank.transaction() as conn:
        await conn.run_sync(metadata.drop_all)
    await blank.close()
    bot = await start_bot(slack_at, clock=clock, DATABASE_URL=url)
    channel, record = await _open_close_modal(slack_at, bot, clock)
    await slack_at.submit_view(record["id"], fill_view(record["view"], answers()), user_id=ALICE)
    assert await bot.idle()
    assert (await incident_row(bot))["state"] == "closed"
    assert len(await task_rows(bot)) == 2
    assert any("500s on /checkout" in f["content"].decode() for f in slack_at.files.values())


async def test_messages_recorded_after_the_close_stay_out_of_the_postmortem(
    slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory
) -> None:
    """Another replica trusts its cache of open channels for a few seconds after a close and may
    record a message or two after it; the postmortem ends at the close all the same."""
    from bot.domain.models import EntryKind, TimelineEntry
    from bot.services.postmortem import compile_report

    bot = await start_bot(slack_at, clock=clock)
    channel, record = await _open_close_modal(slack_at, bot, clock)
    await slack_at.submit_view(record["id"], fill_view(record["view"], answers()), user_id=ALICE)
    assert await bot.idle()
    assert bot.ctx is not None
    incident = await bot.ctx.store.incident_by_number(bot.ctx.team_id, 1)
    assert incident is not None and incident.closed_at is not None
    late = TimelineEntry(incident_id=incident.id, channel_id=channel, ts="1900000000.000100",
                         occurred_at=incident.closed_at + timedelta(seconds=5), kind=EntryKind.MESSAGE,
                         author_id=BOB, text="thanks everyone")
    assert await bot.ctx.store.record_entry(bot.ctx.team_id, late, None, clock.now())
    report = await compile_report(bot.ctx.store, incident, "UTC", {})
    texts = [e.text for e in report.entries]
    assert "thanks everyone" not in texts and "500s on /checkout" in texts
