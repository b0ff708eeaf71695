"""The App Home: what a person owes and may see, with the buttons that act on it."""

from __future__ import annotations

import json

from bot.runtime import Runtime
from bot.ui.ids import Action
from sandbox import LocalSlack
from storage.schema import incidents
from tests.conftest import ALICE, BOB, general
from tests.support import command, start_incident, task_rows


def home_text(slack: LocalSlack, user: str) -> str:
    return json.dumps(slack.homes[user]["blocks"])


async def test_an_empty_home_says_so(slack: LocalSlack, bot: Runtime) -> None:
    await slack.open_home(ALICE)
    assert await bot.idle()
    text = home_text(slack, ALICE)
    assert "Nothing on your plate" in text and "None right now" in text and Action.OPEN_START_FORM in text


async def test_tasks_and_incidents_with_done_in_the_home(slack: LocalSlack, bot: Runtime) -> None:
    channel = str((await start_incident(slack, bot, "Checkout 500s", ALICE, general(slack)))["channel_id"])
    await command(slack, bot, f"task <@{BOB}> Audit the LB configs due 2099-01-01", ALICE, channel)
    secret = await start_incident(slack, bot, "PII exposed", ALICE, general(slack))
    async with bot.db.transaction() as conn:
        await conn.execute(incidents.update().where(incidents.c.id == secret["id"]).values(is_private=True))
    await slack.open_home(BOB)
    assert await bot.idle()
    text = home_text(slack, BOB)
    assert "Audit the LB configs" in text and "due 2099-01-01" in text and "INC-1" in text
    assert "PII exposed" not in text  # Bob is not in that private incident's channel

    [task] = await task_rows(bot)
    await slack.click_in_home(BOB, Action.TASK_DONE, str(task["id"]))
    assert await bot.idle()
    assert (await task_rows(bot))[0]["status"] == "done"
    assert "Audit the LB configs" not in home_text(slack, BOB)  # refreshed at once after the click


async def test_opening_the_tab_again_and_again_publishes_once_a_while(slack: LocalSlack, bot: Runtime) -> None:
    for _ in range(3):
        await slack.open_home(ALICE)
    assert await bot.idle()
    assert len(slack.calls_to("views.publish")) == 1


async def test_the_declare_button_opens_the_start_form(slack: LocalSlack, bot: Runtime) -> None:
    await slack.open_home(ALICE)
    assert await bot.idle()
    await slack.click_in_home(ALICE, Action.OPEN_START_FORM)
    assert await bot.idle()
    assert any(v["view"].get("callback_id") == "incident_start" for v in slack.views.values())
