"""Slack side effects go through the outbox: stored with the change, done once, in order,
however often Slack fails, and a step Slack refused for good is said to the person once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp

from bot.clock import ManualClock
from bot.domain.outbox import StepKind, incident_lane, step
from bot.runtime import Runtime
from bot.services.step_handlers import STEP_EVENT
from sandbox import LocalSlack
from storage.schema import outbox
from tests.conftest import ALICE, BotFactory, general
from tests.support import command, entry_rows, rows, start_incident


async def _readyz(bot: Runtime) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{bot.port}/readyz") as answer:
        return answer.status, await answer.json()


def _texts(slack: LocalSlack, channel: str) -> list[str]:
    return [str(m.get("text")) for m in slack.messages(channel)]


async def test_changes_wait_out_a_slack_outage_in_order_and_readyz_shows_the_backlog(
    slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory
) -> None:
    bot = await start_bot(slack_at, clock=clock)
    channel = str((await start_incident(slack_at, bot, "Checkout 500s", ALICE, general(slack_at)))["channel_id"])
    slack_at.fail_next("chat.postMessage", status=503, times=3)
    await command(slack_at, bot, "severity sev1", ALICE, channel)
    await command(slack_at, bot, "status identified bad deploy", ALICE, channel)
    status, ready = await _readyz(bot)
    assert status == 200 and ready["ok"] and ready["outbox_pending"] >= 4  # 2 posts, 2 summary refreshes
    assert not any("severity" in t for t in _texts(slack_at, channel))

    for _ in range(4):  # backoffs of 2, 4, 8 s
        clock.advance(timedelta(seconds=10))
        assert await bot.idle()
    said = [t for t in _texts(slack_at, channel) if "severity" in t or "status" in t]
    assert len(said) == 2 and "SEV1" in said[0] and "identified" in said[1]
    assert (await _readyz(bot))[1]["outbox_pending"] == 0
    entries = [e["text"] for e in await entry_rows(bot) if "severity" in e["text"] or "status" in e["text"]]
    assert len(entries) == 2


async def test_a_step_slack_refuses_for_good_stops_and_tells_the_person_once(
    slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory
) -> None:
    bot = await start_bot(slack_at, clock=clock)
    channel = str((await start_incident(slack_at, bot, "DNS", ALICE, general(slack_at)))["channel_id"])
    slack_at.channels[channel]["is_archived"] = True
    await command(slack_at, bot, "note rolled back the resolver", ALICE, channel)
    clock.advance(timedelta(minutes=10))
    assert await bot.idle()
    [note] = [r for r in await rows(bot, outbox) if r["kind"] == "post"]
    assert note["state"] == "failed" and "is_archived" in note["last_error"] and note["attempts"] == 1
    told = [e for e in slack_at.ephemerals if e.get("user") == ALICE and "refused" in str(e.get("text"))]
    dms = [m for m in slack_at.messages(slack_at.dm_channel(ALICE) or "") if "refused" in str(m.get("text"))]
    assert len(told) + len(dms) == 1 and "is_archived" in str((told + dms)[0]["text"])


async def test_a_post_slack_made_before_the_worker_died_is_not_made_again(
    slack: LocalSlack, bot: Runtime
) -> None:
    row = await start_incident(slack, bot, "Queue backlog", ALICE, general(slack))
    channel, incident_id = str(row["channel_id"]), int(row["id"])
    # A worker posted this, then died before marking its step done: the step is claimed by
    # nobody now (lease over) and has one attempt behind it.
    now = bot.clock.now()
    new = step(StepKind.POST, incident_lane(incident_id), now, (ALICE, channel), incident_id=incident_id,
               channel=channel, text="<@U0ALICE> changed severity SEV2 → SEV1", said_at=now.isoformat(),
               author=ALICE, entry_kind="system", entry_text="<@U0ALICE> changed severity SEV2 → SEV1")
    posted = slack.workspace.store_message(channel, {
        **slack.workspace.bot_authorship(), "text": new.payload["text"],
        "metadata": {"event_type": STEP_EVENT, "event_payload": {"key": new.key}}})
    assert bot.ctx is not None
    [step_id] = await bot.ctx.store.outbox.enqueue(bot.ctx.team_id, [new])
    async with bot.db.transaction() as conn:
        await conn.execute(outbox.update().where(outbox.c.id == step_id).values(attempts=1))
    bot.ctx.outbox.kick()
    assert await bot.idle()
    assert [t for t in _texts(slack, channel) if "SEV1" in t] == [new.payload["text"]]
    [entry] = [e for e in await entry_rows(bot) if "SEV1" in e["text"]]
    assert entry["ts"] == posted["ts"]
    [done] = await rows(bot, outbox, outbox.c.id == step_id)
    assert done["state"] == "done" and done["attempts"] == 2


async def test_an_upload_completed_before_the_worker_died_is_not_uploaded_again(
    slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory
) -> None:
    from tests.e2e.test_closeout import _open_close_modal, answers, fill_view

    bot = await start_bot(slack_at, clock=clock)
    channel, record = await _open_close_modal(slack_at, bot, clock)
    slack_at.fail_next("files.getUploadURLExternal", error="internal_error")  # the first publish waits
    await slack_at.submit_view(record["id"], fill_view(record["view"], answers()), user_id=ALICE)
    assert await bot.idle()
    assert bot.ctx is not None
    # Meanwhile a worker uploaded and shared the file, then died before saying so.
    file_id, url = await bot.ctx.slack.reserve_upload("inc-1-postmortem.md", "# INC-1")
    await bot.ctx.slack.send_upload(url, "# INC-1")
    await bot.ctx.slack.complete_upload(file_id, "INC-1 postmortem", channel, "Postmortem of INC-1")
    async with bot.db.transaction() as conn:
        await conn.execute(outbox.update().where(outbox.c.kind == "upload_postmortem")
                           .values(progress=f'{{"file_id": "{file_id}"}}'))
    clock.advance(timedelta(seconds=10))
    assert await bot.idle()
    shared = [f for f in slack_at.files.values() if channel in f["channels"]]
    assert [f["id"] for f in shared] == [file_id]
    summary = [m for m in slack_at.messages(channel) if file_id in str(m.get("blocks"))]
    assert len(summary) == 1  # the summary links the one file
