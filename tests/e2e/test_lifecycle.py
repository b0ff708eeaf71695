"""The incident as people run it: resolve now, write the postmortem days later; the people
outside follow the announcement and its thread; roles."""

from __future__ import annotations

import json
import pathlib
from datetime import timedelta

from bot.clock import ManualClock
from bot.jobs.sweep import sweep
from bot.runtime import Runtime
from bot.services.postmortem import compile_report
from bot.ui.ids import Action, Block
from bot.ui.postmortem import render_markdown
from sandbox import LocalSlack
from sandbox.forms import fill_view
from storage.schema import incidents
from tests.conftest import ALICE, BOB, CAROL, BotFactory, general
from tests.support import command, entry_rows, ephemeral_texts, incident_row, open_view, start_incident


def thread_of(slack: LocalSlack, channel: str, ts: str) -> list[str]:
    return [str(m.get("text")) for m in slack.messages(channel) if m.get("thread_ts") == ts and m["ts"] != ts]


async def test_resolve_then_close_days_later_keeps_the_discussion_and_tells_the_thread(
    slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory
) -> None:
    slack = slack_at
    bot = await start_bot(slack, clock=clock)
    row = await start_incident(slack, bot, "Checkout 500s", ALICE, general(slack))
    channel, announced = str(row["channel_id"]), str(row["announcement_ts"])
    await command(slack, bot, "severity sev1", ALICE, channel)
    clock.advance(timedelta(minutes=40))
    await command(slack, bot, "resolve rolled back the LB change", ALICE, channel)
    resolved_at = clock.now()
    row = await incident_row(bot)
    assert row["status"] == "resolved" and row["state"] == "open" and row["impact_ended_at"] == resolved_at
    assert "resolved" in " ".join(ephemeral_texts(slack, ALICE)).lower()

    clock.advance(timedelta(days=2))  # the discussion goes on, and is recorded
    await slack.post_message(channel, user=BOB, text="the LB change had no review", at=clock.now())
    await command(slack, bot, "close", ALICE, channel)
    view = open_view(slack, "incident_close")
    blocks = {b.get("block_id"): b for b in view["view"]["blocks"]}
    assert blocks[Block.IMPACT_END]["element"]["initial_date_time"] == int(resolved_at.timestamp())
    delivery = await slack.submit_view(view["id"], fill_view(view["view"], {
        "impact": "Checkouts failed", "root_cause": "An unreviewed LB change", "resolution": "Rolled back",
        "impact_start": row["started_at"], "impact_end": resolved_at}), user_id=ALICE)  # fmt: skip
    assert not (delivery.json or {}).get("errors"), delivery.json
    assert await bot.idle()

    thread = thread_of(slack, general(slack), announced)
    assert len(thread) == 3 and "SEV1" in thread[0] and "resolved" in thread[1] and "closed" in thread[2]
    [announcement] = [m for m in slack.messages(general(slack)) if m["ts"] == announced]
    assert "impact lasted 40 min" in json.dumps(announcement["blocks"])
    assert bot.ctx is not None
    closed = await bot.ctx.store.incident_by_number(bot.ctx.team_id, 1)
    assert closed is not None
    exported = render_markdown(await compile_report(bot.ctx.store, closed, "UTC", {}))
    assert "the LB change had no review" in exported and "resolved the incident" in exported


async def test_resolve_twice_is_refused_and_a_status_update_reopens(slack: LocalSlack, bot: Runtime) -> None:
    channel = str((await start_incident(slack, bot, "Search slow", ALICE, general(slack)))["channel_id"])
    await command(slack, bot, "resolve", ALICE, channel)
    await command(slack, bot, "resolve", ALICE, channel)
    assert any("resolved already" in t for t in ephemeral_texts(slack, ALICE))
    await command(slack, bot, "status investigating it is back", BOB, channel)
    row = await incident_row(bot)
    assert row["status"] == "investigating" and row["impact_ended_at"] is None and row["resolved_at"] is None
    assert any("reopened the incident" in e["text"] for e in await entry_rows(bot))
    await command(slack, bot, "status resolved", ALICE, channel)
    assert any("`/incident resolve`" in t for t in ephemeral_texts(slack, ALICE))


async def test_a_private_incident_tells_nobody_outside(slack: LocalSlack, bot: Runtime) -> None:
    row = await start_incident(slack, bot, "Visible", ALICE, general(slack))
    await command(slack, bot, "severity sev1", ALICE, str(row["channel_id"]))
    announced = str(row["announcement_ts"])
    assert len(thread_of(slack, general(slack), announced)) == 1  # the public one tells its thread
    async with bot.db.transaction() as conn:
        await conn.execute(incidents.update().values(is_private=True))
    await command(slack, bot, "resolve", ALICE, str(row["channel_id"]))
    assert len(thread_of(slack, general(slack), announced)) == 1  # made private: nothing more outside


async def test_roles_are_given_shown_and_cleared(slack: LocalSlack, bot: Runtime) -> None:
    channel = str((await start_incident(slack, bot, "DNS", ALICE, general(slack)))["channel_id"])
    await command(slack, bot, f"role comms <@{CAROL}>", ALICE, channel)
    await command(slack, bot, f"role scribe <@{BOB}|bob>", ALICE, channel)
    assert CAROL in slack.channels[channel]["members"]
    summary = json.dumps(slack.messages(channel)[0]["blocks"])
    assert f"*Comms*\\n<@{CAROL}>" in summary and f"*Scribe*\\n<@{BOB}>" in summary
    await command(slack, bot, "role comms none", ALICE, channel)
    assert json.loads((await incident_row(bot))["roles"]) == {"scribe": BOB}
    texts = [e["text"] for e in await entry_rows(bot)]
    assert any("made <@U0CAROL> comms" in t for t in texts) and any("cleared the comms role" in t for t in texts)
    await command(slack, bot, f"role commander <@{BOB}>", ALICE, channel)
    assert (await incident_row(bot))["commander_id"] == BOB
    for bad in ("role", "role chef <@U0BOB>", "role comms", "role commander none"):
        await command(slack, bot, bad, ALICE, channel)
    told = ephemeral_texts(slack, ALICE)
    assert sum("Role must be" in t or "Say who" in t or "always has a commander" in t for t in told) == 4


def nudges(slack: LocalSlack, channel: str, words: str) -> list[dict]:  # type: ignore[type-arg]
    return [m for m in slack.messages(channel) if words in str(m.get("text"))]


async def _sweep(bot: Runtime) -> None:
    assert bot.ctx is not None
    await sweep(bot.ctx)
    assert await bot.idle()


async def test_a_quiet_incident_nudges_its_commander_once_per_interval_and_the_form_posts_an_update(
    slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory
) -> None:
    slack = slack_at
    bot = await start_bot(slack, clock=clock, UPDATE_CADENCE="sev1:30,sev2:60")
    channel = str((await start_incident(slack, bot, "Queue backlog", ALICE, general(slack)))["channel_id"])
    await command(slack, bot, "status identified a stuck consumer", ALICE, channel)
    clock.advance(timedelta(minutes=59))
    await _sweep(bot)
    assert nudges(slack, channel, "no status update") == []
    clock.advance(timedelta(minutes=2))
    await _sweep(bot)
    await _sweep(bot)
    assert len(nudges(slack, channel, "no status update for 60 min")) == 1
    clock.advance(timedelta(hours=10))  # the bot was down: one nudge now, not ten
    await bot.stop()
    bot = await start_bot(slack, clock=clock, UPDATE_CADENCE="sev1:30,sev2:60")
    await _sweep(bot)
    await _sweep(bot)
    assert len(nudges(slack, channel, "no status update")) == 2
    assert not any("no status update" in e["text"] for e in await entry_rows(bot))  # not part of the story

    [nudge] = nudges(slack, channel, "no status update")[-1:]
    await slack.click_button(user_id=ALICE, action_id=Action.OPEN_STATUS_FORM, value=str(nudge["blocks"][1]
                             ["elements"][0]["value"]), channel=channel, message_ts=nudge["ts"])  # fmt: skip
    form = open_view(slack, "incident_status")
    fields = {b["block_id"]: b["element"] for b in form["view"]["blocks"]}
    assert fields[Block.STATUS]["initial_option"]["value"] == "identified"
    assert fields[Block.STATUS_TEXT]["initial_value"] == "a stuck consumer"
    await slack.submit_view(form["id"], fill_view(form["view"], {"status": "monitoring",
                                                                 "status_text": "consumer restarted"}),
                            user_id=ALICE)  # fmt: skip
    assert await bot.idle()
    assert (await incident_row(bot))["status"] == "monitoring"
    clock.advance(timedelta(minutes=30))
    await _sweep(bot)
    assert len(nudges(slack, channel, "no status update")) == 2  # an update restarts the interval


async def test_a_resolved_incident_without_postmortem_nudges_once_a_day(
    slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory
) -> None:
    slack = slack_at
    bot = await start_bot(slack, clock=clock, POSTMORTEM_DUE_DAYS=2)
    channel = str((await start_incident(slack, bot, "Login loop", ALICE, general(slack)))["channel_id"])
    await command(slack, bot, "resolve", ALICE, channel)
    clock.advance(timedelta(days=1, hours=23))
    await _sweep(bot)
    assert nudges(slack, channel, "postmortem is not written") == []
    clock.advance(timedelta(hours=2))
    await _sweep(bot)
    await _sweep(bot)
    assert len(nudges(slack, channel, "postmortem is not written")) == 1
    clock.advance(timedelta(days=1))
    await _sweep(bot)
    assert len(nudges(slack, channel, "postmortem is not written")) == 2


async def test_stats_count_what_the_caller_may_see(slack: LocalSlack, bot: Runtime) -> None:
    await start_incident(slack, bot, "Checkout 500s", ALICE, general(slack))
    await start_incident(slack, bot, "PII exposed", ALICE, general(slack))
    async with bot.db.transaction() as conn:
        await conn.execute(incidents.update().where(incidents.c.number == 2).values(is_private=True))
    await command(slack, bot, "stats", BOB, general(slack))
    await command(slack, bot, "stats all", ALICE, general(slack))
    await command(slack, bot, "stats forever", ALICE, general(slack))
    bob, alice = ephemeral_texts(slack, BOB), ephemeral_texts(slack, ALICE)
    assert any("in the last 30 days: 1*" in t for t in bob)  # not a member of the private one's channel
    assert any("in all time: 2*" in t and "SEV2" in t for t in alice)
    assert any("Period must be 30d, 90d, 365d or all" in t for t in alice)


async def test_the_workspace_digest_goes_out_once_on_monday(
    slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory
) -> None:
    slack = slack_at
    digest = slack.add_channel("incident-digest", members=[ALICE])
    settings = {"DIGEST_CHANNEL": digest, "REMINDER_NOT_BEFORE": "09:00"}
    bot = await start_bot(slack, clock=clock, **settings)  # Monday 2026-11-23, 10:00 UTC
    clock.advance(timedelta(days=-3))  # Friday: an incident, a task due Saturday
    channel = str((await start_incident(slack, bot, "Checkout 500s", ALICE, general(slack)))["channel_id"])
    await command(slack, bot, f"task <@{BOB}> Audit the LB configs due 2026-11-21", ALICE, channel)
    secret = await start_incident(slack, bot, "PII exposed", ALICE, general(slack))
    async with bot.db.transaction() as conn:
        await conn.execute(incidents.update().where(incidents.c.id == secret["id"]).values(is_private=True))
    clock.advance(timedelta(days=3))  # Monday again
    await _sweep(bot)
    await bot.stop()
    bot = await start_bot(slack, clock=clock, **settings)  # a restart: no second digest
    await _sweep(bot)
    clock.advance(timedelta(hours=3))
    await _sweep(bot)
    posts = [str(m.get("text")) for m in slack.messages(digest) if "week" in str(m.get("text"))]
    assert len(posts) == 1
    assert "INC-1" in posts[0] and "Audit the LB configs" in posts[0] and f"<@{BOB}>" in posts[0]
    assert "PII exposed" not in posts[0] and "INC-2" not in posts[0]


async def test_stats_match_the_report(slack: LocalSlack, start_bot: BotFactory, database_url: str,
                                      tmp_path: pathlib.Path) -> None:  # fmt: skip
    from tests.test_config_cli import run_bot
    from tests.test_report_cli import seed_many

    await seed_many(database_url, 40, team="T0LOCAL")
    bot = await start_bot(slack)
    await command(slack, bot, "stats all", ALICE, general(slack))
    said = ephemeral_texts(slack, ALICE)[-1]
    report = json.loads(run_bot(tmp_path, "report", "--format", "json", DATABASE_URL=database_url).stdout)
    assert f"in all time: {report['totals']['count']}*" in said
    for severity, g in report["totals"]["by_severity"].items():
        assert (f"*{severity.upper()}*: {g['count']}; time to detect median {g['time_to_detect_median_min']:g} min, "
                f"time to resolve median {g['time_to_resolve_median_min']:g} min "
                f"(p90 {g['time_to_resolve_p90_min']:g} min)") in said  # fmt: skip
