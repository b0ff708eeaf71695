"""Alerts declare incidents: real-shaped payloads of each source posted to the running bot, one
incident per group however often it is delivered, the alert's own times in the close form."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import pathlib
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from bot.runtime import Runtime
from bot.ui.ids import Action, Block
from sandbox import LocalSlack
from storage.schema import incidents
from tests.conftest import ALICE, BOB, BotFactory, general
from tests.support import command, entry_rows, open_view, rows

TOKEN = "alert-token-0123456789"
PD_SECRET = "pagerduty-signing-secret"
SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "data" / "alerts"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@pytest.fixture
async def alert_bot(slack: LocalSlack, start_bot: BotFactory) -> Runtime:
    return await start_bot(slack, ALERT_WEBHOOK_TOKEN=TOKEN, PAGERDUTY_WEBHOOK_SECRET=PD_SECRET,
                           ALERT_CHANNEL=general(slack))


async def send(bot: Runtime, source: str, body: bytes, token: str | None = TOKEN,
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as http, http.post(
        f"http://127.0.0.1:{bot.port}/alerts/{source}", data=body, headers=sent
    ) as answer:
        text = await answer.text()
    try:
        return answer.status, json.loads(text)
    except ValueError:
        return answer.status, {"text": text}


def pd_signed(body: bytes, secret: str = PD_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-PagerDuty-Signature": f"v1=0000000000000000,v1={digest}"}  # rotation: any one may match


async def incident_rows(bot: Runtime) -> list[dict[str, Any]]:
    return await rows(bot, incidents)


async def test_a_firing_group_declares_one_incident_with_its_channel_and_start_time(
    slack: LocalSlack, alert_bot: Runtime
) -> None:
    status, answer = await send(alert_bot, "alertmanager", sample("alertmanager_firing.json"))
    assert (status, answer) == (202, {"incident": "INC-1", "created": True})
    assert await alert_bot.idle()
    [row] = await incident_rows(alert_bot)
    assert row["state"] == "open" and row["severity"] == "sev1" and row["title"] == "Checkout 5xx rate above 5%"
    assert row["impact_started_at"] == datetime(2026, 12, 4, 9, 58, 12, 345678, tzinfo=UTC)
    channel = str(row["channel_id"])
    summary = slack.messages(channel)[0]
    assert summary["ts"] in slack.pins(channel) and Action.TAKE_COMMAND in json.dumps(summary["blocks"])
    announced = [m for m in slack.messages(general(slack)) if "INC-1" in str(m.get("text"))]
    assert len(announced) == 1 and "declared by Alertmanager" in announced[0]["text"]
    [alert] = [e for e in await entry_rows(alert_bot) if e["kind"] == "bot_message"]
    assert alert["author_name"] == "Alertmanager" and "instance=checkout-1:8080" in alert["text"]


async def test_fifty_concurrent_deliveries_of_one_group_make_one_incident(alert_bot: Runtime) -> None:
    body = sample("alertmanager_firing.json")
    answers = await asyncio.gather(*(send(alert_bot, "alertmanager", body) for _ in range(50)))
    assert {status for status, _ in answers} == {202}
    assert {a["incident"] for _, a in answers} == {"INC-1"} and sum(a["created"] for _, a in answers) == 1
    assert await alert_bot.idle()
    assert len(await incident_rows(alert_bot)) == 1
    assert len([e for e in await entry_rows(alert_bot) if e["kind"] == "bot_message"]) == 1


async def test_the_alert_is_followed_to_its_resolution_and_the_close_form_starts_from_it(
    slack: LocalSlack, alert_bot: Runtime
) -> None:
    await send(alert_bot, "alertmanager", sample("alertmanager_firing.json"))
    await send(alert_bot, "alertmanager", sample("alertmanager_firing.json"))  # repeat_interval resend
    await send(alert_bot, "alertmanager", sample("alertmanager_partly_resolved.json"))
    status, answer = await send(alert_bot, "alertmanager", sample("alertmanager_resolved.json"))
    assert (status, answer) == (202, {"incident": "INC-1", "created": False})
    assert await alert_bot.idle()
    said = [e["text"] for e in await entry_rows(alert_bot) if e["kind"] == "bot_message"]
    assert len(said) == 3 and "firing" in said[0] and "checkout-2" in said[1] and "checkout-1" not in said[1]
    assert "resolved" in said[2] and "checkout-1" in said[2]
    [row] = await incident_rows(alert_bot)
    assert row["impact_ended_at"] == datetime(2026, 12, 4, 10, 43, 30, tzinfo=UTC)

    await command(slack, alert_bot, "close", ALICE, str(row["channel_id"]))
    blocks = {b.get("block_id"): b for b in open_view(slack, "incident_close")["view"]["blocks"]}
    assert blocks[Block.IMPACT_START]["element"]["initial_date_time"] == int(row["impact_started_at"].timestamp())
    assert blocks[Block.IMPACT_END]["element"]["initial_date_time"] == int(row["impact_ended_at"].timestamp())


async def test_firing_again_after_the_close_opens_a_new_incident_that_links_the_old(
    alert_bot: Runtime,
) -> None:
    body = sample("generic_firing.json")
    await send(alert_bot, "generic", body)
    assert await alert_bot.idle()
    async with alert_bot.db.transaction() as conn:
        await conn.execute(incidents.update().values(state="closed", closed_at=datetime.now(UTC)))
    status, answer = await send(alert_bot, "generic", body)
    assert (status, answer) == (202, {"incident": "INC-2", "created": True})
    second = (await incident_rows(alert_bot))[-1]
    assert second["previous_incident_id"] == (await incident_rows(alert_bot))[0]["id"]
    assert "after INC-1" in second["description"]


async def test_pagerduty_is_signed_and_followed_through_acknowledgement(alert_bot: Runtime) -> None:
    fired = sample("pagerduty_triggered.json")
    assert (await send(alert_bot, "pagerduty", fired))[0] == 401  # no signature
    assert (await send(alert_bot, "pagerduty", fired, headers=pd_signed(fired, "other")))[0] == 401
    assert (await send(alert_bot, "pagerduty", fired, headers=pd_signed(fired)))[1]["created"] is True
    for name in ("pagerduty_acknowledged.json", "pagerduty_resolved.json"):
        body = sample(name)
        assert (await send(alert_bot, "pagerduty", body, headers=pd_signed(body)))[0] == 202
    assert await alert_bot.idle()
    [row] = await incident_rows(alert_bot)
    assert row["severity"] == "sev1" and row["alert_key"] == "PGR0VU2"
    said = [e["text"] for e in await entry_rows(alert_bot) if e["kind"] == "bot_message"]
    assert [s.split(":")[1].split("—")[0].strip() for s in said] == ["firing", "acknowledged", "resolved"]


async def test_credentials_and_bad_bodies_get_clear_answers_and_store_nothing(alert_bot: Runtime) -> None:
    body = sample("alertmanager_firing.json")
    assert (await send(alert_bot, "alertmanager", body, token=None))[0] == 401
    assert (await send(alert_bot, "alertmanager", body, token="wrong"))[0] == 401
    status, answer = await send(alert_bot, "alertmanager", b"{not json")
    assert status == 400 and answer["error"] == "the body is not JSON"
    status, answer = await send(alert_bot, "grafana", sample("generic_firing.json"))
    assert status == 400 and "groupKey" in answer["error"]
    assert (await send(alert_bot, "nagios", body))[0] == 400
    assert (await send(alert_bot, "generic", b'{"title": "x"' + b" " * (1024 * 1024) + b"}"))[0] == 413
    assert await incident_rows(alert_bot) == []


async def test_without_a_token_the_endpoints_are_not_there(slack: LocalSlack, bot: Runtime) -> None:
    assert (await send(bot, "alertmanager", sample("alertmanager_firing.json")))[0] == 404


async def test_the_first_person_to_press_take_command_commands_it(slack: LocalSlack, alert_bot: Runtime) -> None:
    await send(alert_bot, "grafana", sample("grafana_firing.json"))
    assert await alert_bot.idle()
    [row] = await incident_rows(alert_bot)
    channel = str(row["channel_id"])
    for who in (BOB, ALICE):
        await slack.click_button(user_id=who, action_id=Action.TAKE_COMMAND, value=str(row["id"]), channel=channel)
        assert await alert_bot.idle()
    [row] = await incident_rows(alert_bot)
    assert row["commander_id"] == BOB
    assert BOB in slack.channels[channel]["members"]
    assert any("has command" in str(e.get("text")) for e in slack.ephemerals if e.get("user") == ALICE)
    summary = slack.messages(channel)[0]
    assert Action.TAKE_COMMAND not in json.dumps(summary["blocks"]) and f"<@{BOB}>" in json.dumps(summary["blocks"])


async def test_socket_mode_takes_alerts_on_its_probe_port(slack: LocalSlack, start_bot: BotFactory) -> None:
    bot = await start_bot(slack, SLACK_APP_TOKEN=slack.app_token, ALERT_WEBHOOK_TOKEN=TOKEN)
    status, answer = await send(bot, "generic", sample("generic_firing.json"))
    assert (status, answer["created"]) == (202, True)
    assert await bot.idle()
    assert (await incident_rows(bot))[0]["state"] == "open"
