"""`/incident start` under hostile input, forged requests, Slack errors and a slow Slack.

Everything goes through the real bot over HTTP against the local Slack; the assertions are on
what Slack stored, what the declarer saw and the rows in the database."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.parse
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.runtime import Runtime
from bot.ui.ids import FIELD, Action, Block, View
from sandbox import LocalSlack
from sandbox.types import Delivery
from storage.schema import incidents
from tests.conftest import ALICE, BOB, SIGNING_SECRET, BotFactory, general

CHANNEL_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")
LIVE_MENTIONS = ("<!channel>", "<!here>", f"<@{BOB}>")
MARKUP_TITLE = f"<!channel> <@{BOB}> *bold* <!here>"


# ----- helpers -----------------------------------------------------------------------------


async def incident_rows(bot: Runtime) -> list[dict[str, Any]]:
    async with bot.db.reading() as conn:
        return [dict(row) for row in (await conn.execute(select(incidents))).mappings().all()]


def incident_channels(slack: LocalSlack) -> list[dict[str, Any]]:
    return [c for c in slack.channels.values() if c["name"].startswith("inc-")]


def topic_of(channel: dict[str, Any]) -> str:
    topic = channel["topic"]
    return str(topic["value"] if isinstance(topic, dict) else topic)


def mrkdwn_texts(node: Any) -> list[str]:
    """Every mrkdwn text inside blocks: the only block text in which Slack turns markup into pings
    (plain_text, e.g. a header, shows `<!channel>` literally)."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
            found.append(node["text"])
        for value in node.values():
            found.extend(mrkdwn_texts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(mrkdwn_texts(item))
    return found


def rendered_texts(message: dict[str, Any]) -> list[str]:
    return [str(message.get("text") or ""), *mrkdwn_texts(message.get("blocks") or [])]


def live_mentions_in(texts: list[str]) -> list[tuple[str, str]]:
    return [(mention, text) for text in texts for mention in LIVE_MENTIONS if mention in text]


def start_values(
    title: str, severity: str = "sev1", private: bool = True, description: str = ""
) -> dict[str, dict[str, Any]]:
    """The view state Slack sends for the start modal."""
    checked = [{"text": {"type": "plain_text", "text": "Private"}, "value": "private"}] if private else []
    return {
        Block.TITLE: {FIELD: {"type": "plain_text_input", "value": title}},
        Block.SEVERITY: {
            FIELD: {
                "type": "static_select",
                "selected_option": {
                    "text": {"type": "plain_text", "text": severity.upper(), "emoji": True},
                    "value": severity,
                },
            }
        },
        Block.DESCRIPTION: {FIELD: {"type": "plain_text_input", "value": description or None}},
        Block.PRIVATE: {FIELD: {"type": "checkboxes", "selected_options": checked}},
    }


async def open_start_modal(slack: LocalSlack, bot: Runtime) -> str:
    delivery = await slack.send_command("start", user_id=ALICE, channel_id=general(slack))
    assert delivery.status == 200
    assert await bot.idle()
    opened = [r for r in slack.views.values() if r["view"].get("callback_id") == View.START and not r["closed"]]
    assert len(opened) == 1, slack.views
    return str(opened[0]["id"])


def sign(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed(
    body: bytes, content_type: str, *, timestamp: int | None = None, secret: str = SIGNING_SECRET
) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(stamp),
        "X-Slack-Signature": sign(body, stamp, secret),
    }


def signed_bytes(body: bytes, content_type: str) -> dict[str, str]:
    """Signed over the raw bytes, as a sender with the secret could do for any body."""
    stamp = int(time.time())
    base = b"v0:" + str(stamp).encode() + b":" + body
    digest = hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(stamp), "X-Slack-Signature": "v0=" + digest}


def command_form(slack: LocalSlack, text: str) -> bytes:
    return urllib.parse.urlencode(
        {
            "token": "unused",
            "team_id": "T0LOCAL",
            "channel_id": general(slack),
            "user_id": ALICE,
            "command": "/incident",
            "text": text,
            "response_url": f"{slack.base_url}response/none",
            "trigger_id": "1.2.3",
        }
    ).encode()


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


# ----- 1. titles ---------------------------------------------------------------------------


async def test_start_without_title_opens_the_start_modal(slack: LocalSlack, bot: Runtime) -> None:
    view_id = await open_start_modal(slack, bot)
    record = slack.views[view_id]
    assert record["user"] == ALICE
    block_ids = [b.get("block_id") for b in record["view"]["blocks"]]
    assert Block.TITLE in block_ids and Block.SEVERITY in block_ids
    assert not incident_channels(slack)
    assert await incident_rows(bot) == []


@pytest.mark.parametrize(
    "title",
    ["x" * 5000, "🔥🔥🔥", MARKUP_TITLE, f"{MARKUP_TITLE} " * 300],
    ids=["5000-chars", "all-emoji", "slack-markup", "long-markup"],
)
async def test_hostile_titles_give_a_valid_channel_and_ping_nobody(slack: LocalSlack, bot: Runtime, title: str) -> None:
    delivery = await slack.send_command(f"start {title}", user_id=ALICE, channel_id=general(slack))
    assert delivery.status == 200
    assert await bot.idle()

    rows = await incident_rows(bot)
    assert len(rows) == 1 and rows[0]["state"] == "open", rows
    channels = incident_channels(slack)
    assert len(channels) == 1, [c["name"] for c in slack.channels.values()]
    channel = channels[0]
    assert CHANNEL_NAME.match(channel["name"]), channel["name"]
    assert channel["id"] == rows[0]["channel_id"]

    summary = slack.messages(channel["id"])[0]
    announcement = slack.messages(general(slack))[-1]
    assert "INC-1" in summary["text"] and "INC-1" in announcement["text"]
    shown = [*rendered_texts(summary), *rendered_texts(announcement), topic_of(channel)]
    shown += [text for r in slack.ephemerals for text in rendered_texts(r)]
    assert live_mentions_in(shown) == []
    assert all(len(text) <= 40_000 for text in shown)


async def test_markup_title_is_shown_as_words(slack: LocalSlack, bot: Runtime) -> None:
    """Neutralised, not dropped: the reader still sees what was typed."""
    await slack.send_command(f"start {MARKUP_TITLE}", user_id=ALICE, channel_id=general(slack))
    assert await bot.idle()
    channel = incident_channels(slack)[0]
    assert channel["name"] == "inc-1-bold"
    summary = slack.messages(channel["id"])[0]
    assert "*bold*" in summary["text"] and "channel" in summary["text"]


# ----- 2. the start modal ------------------------------------------------------------------


async def test_submitting_the_modal_opens_a_private_sev1_incident(slack: LocalSlack, bot: Runtime) -> None:
    view_id = await open_start_modal(slack, bot)
    delivery = await slack.submit_view(view_id, start_values("DB down", description="Primary is gone"), user_id=ALICE)
    assert delivery.status == 200
    assert not (delivery.json or {}).get("response_action"), delivery.body
    assert await bot.idle()

    assert slack.views[view_id]["closed"]
    [row] = await incident_rows(bot)
    assert (row["title"], row["severity"], row["is_private"], row["state"]) == ("DB down", "sev1", True, "open")
    assert row["description"] == "Primary is gone"
    channel = slack.channels[row["channel_id"]]
    assert channel["name"] == "inc-1-db-down"
    assert channel["is_private"] is True
    assert ALICE in channel["members"]
    summary = slack.messages(channel["id"])[0]
    assert "SEV1" in str(summary["blocks"])
    assert any("INC-1 is open" in e["text"] and e["user"] == ALICE for e in slack.ephemerals)


@pytest.mark.parametrize("title", ["", "   \n  "], ids=["empty", "blank"])
async def test_modal_without_title_gets_a_field_error_and_creates_nothing(
    slack: LocalSlack, bot: Runtime, title: str
) -> None:
    view_id = await open_start_modal(slack, bot)
    delivery = await slack.submit_view(view_id, start_values(title), user_id=ALICE)
    assert delivery.status == 200
    assert delivery.json is not None and delivery.json.get("response_action") == "errors"
    assert Block.TITLE in delivery.json["errors"]
    assert await bot.idle()

    record = slack.views[view_id]
    assert not record["closed"] and Block.TITLE in record["errors"]
    assert await incident_rows(bot) == []
    assert incident_channels(slack) == []
    assert slack.calls_to("conversations.create") == []


async def test_modal_start_that_fails_tells_the_declarer_and_retry_finishes_it(slack: LocalSlack, bot: Runtime) -> None:
    view_id = await open_start_modal(slack, bot)
    slack.fail_next("conversations.create", status=500)
    await slack.submit_view(view_id, start_values("DB down"), user_id=ALICE)
    assert await bot.idle()

    [row] = await incident_rows(bot)
    assert row["state"] == "opening" and row["is_private"] is True
    failure = next(e for e in slack.ephemerals if e["source"] == "chat.postEphemeral")
    assert failure["user"] == ALICE and failure["channel"] == general(slack) and "INC-1" in failure["text"]

    await slack.click_button(user_id=ALICE, action_id=Action.RETRY_START, value=str(row["id"]), channel=general(slack))
    assert await bot.idle()
    [row] = await incident_rows(bot)
    assert row["state"] == "open"
    assert [c["name"] for c in incident_channels(slack)] == ["inc-1-db-down"]
    assert slack.channels[row["channel_id"]]["is_private"] is True


# ----- 3. requests that are not from Slack, or not well formed ------------------------------


async def test_forged_signature_is_refused(slack: LocalSlack, bot: Runtime) -> None:
    body = command_form(slack, "start Forged")
    delivery = await slack.deliver_raw(body, signed(body, FORM, secret="not-the-secret"))
    assert delivery.status == 401
    missing = await slack.deliver_raw(body, {"Content-Type": FORM})
    assert missing.status == 401
    assert await bot.idle()
    assert await incident_rows(bot) == [] and slack.calls_to("conversations.create") == []


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=abc"},
        {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=\u00e9t\u00e9"},
        {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": ""},
    ],
    ids=["timestamp-not-a-number", "signature-not-ascii", "empty-headers"],
)
async def test_garbled_signature_headers_are_refused(slack: LocalSlack, bot: Runtime, headers: dict[str, str]) -> None:
    body = command_form(slack, "start Garbled")
    delivery = await slack.deliver_raw(body, {"Content-Type": FORM, **headers})
    assert delivery.status == 401, (delivery.status, delivery.body)


async def test_body_that_is_not_utf8_is_refused_not_a_500(slack: LocalSlack, bot: Runtime) -> None:
    """slack-sdk can only verify UTF-8 bodies (all Slack sends), so these are unverifiable: 401."""
    body = b"\xff\xfe\x00garbage"
    delivery = await slack.deliver_raw(body, signed_bytes(body, FORM))
    assert delivery.status == 401, (delivery.status, delivery.body)


async def test_stale_timestamp_is_refused_even_when_signed(slack: LocalSlack, bot: Runtime) -> None:
    body = command_form(slack, "start Replayed")
    stale = await slack.deliver_raw(body, signed(body, FORM, timestamp=int(time.time()) - 6 * 60))
    assert stale.status == 401
    assert await bot.idle()
    assert await incident_rows(bot) == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"this is not json", JSON),
        (b"{not json either", JSON),
        (b"[1, 2, 3]", JSON),
        (json.dumps({"token": "x", "team_id": "T0LOCAL"}).encode(), JSON),
        (json.dumps({"type": "event_callback", "event": "nope"}).encode(), JSON),
        (b"user_id=U0ALICE&channel_id=C1&text=start+x", FORM),
        (b"payload=%7Bnot-json", FORM),
        (b"payload=%5B%5D", FORM),
        (b"", FORM),
    ],
    ids=[
        "text-as-json", "broken-json", "json-array", "json-without-type", "event-not-object",
        "form-without-command", "payload-not-json", "payload-not-object", "empty",
    ],
)  # fmt: skip
async def test_malformed_signed_bodies_get_400(slack: LocalSlack, bot: Runtime, body: bytes, content_type: str) -> None:
    delivery = await slack.deliver_raw(body, signed(body, content_type))
    assert delivery.status == 400, (delivery.status, delivery.body)
    assert await bot.idle()
    assert await incident_rows(bot) == []


async def test_healthz_answers_200(slack: LocalSlack, bot: Runtime) -> None:
    url = f"http://127.0.0.1:{bot.port}/healthz"
    async with aiohttp.ClientSession(trust_env=False) as session, session.get(url) as response:
        assert response.status == 200
        assert (await response.json())["ok"] is True


# ----- 4. Slack errors ---------------------------------------------------------------------


async def test_name_taken_gives_a_suffixed_channel(slack: LocalSlack, bot: Runtime) -> None:
    slack.fail_next("conversations.create", error="name_taken")
    await slack.send_command("start DB down", user_id=ALICE, channel_id=general(slack))
    assert await bot.idle()

    [row] = await incident_rows(bot)
    assert row["state"] == "open"
    assert [c["name"] for c in incident_channels(slack)] == ["inc-1-db-down-2"]
    assert row["channel_name"] == "inc-1-db-down-2"


async def test_existing_channel_with_the_name_gives_a_suffixed_channel(slack: LocalSlack, bot: Runtime) -> None:
    slack.add_channel("inc-1-db-down")
    await slack.send_command("start DB down", user_id=ALICE, channel_id=general(slack))
    assert await bot.idle()
    [row] = await incident_rows(bot)
    assert row["state"] == "open" and slack.channels[row["channel_id"]]["name"] == "inc-1-db-down-2"


async def test_rate_limited_post_is_retried_after_retry_after(slack: LocalSlack, bot: Runtime) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    await slack.send_command("start DB down", user_id=ALICE, channel_id=general(slack))
    assert await bot.idle(timeout=30)

    posts = slack.calls_to("chat.postMessage")
    assert posts[0].status == 429 and posts[1].status == 200
    assert (posts[1].at - posts[0].at).total_seconds() >= 0.9
    [row] = await incident_rows(bot)
    assert row["state"] == "open" and row["summary_ts"]
    assert slack.messages(row["channel_id"])[0]["ts"] == row["summary_ts"]


async def test_server_error_on_create_is_not_retried_and_offers_retry(slack: LocalSlack, bot: Runtime) -> None:
    slack.fail_next("conversations.create", status=500)
    await slack.send_command("start DB down", user_id=ALICE, channel_id=general(slack))
    assert await bot.idle()

    assert [c.status for c in slack.calls_to("conversations.create")] == [500]
    [row] = await incident_rows(bot)
    assert row["state"] == "opening" and row["channel_id"] is None
    assert incident_channels(slack) == []
    failure = next(e for e in slack.ephemerals if e["source"] == "response_url")
    assert failure["user"] == ALICE
    assert "INC-1" in failure["text"] and "http_500" in failure["text"], failure["text"]
    buttons = [el for block in failure["blocks"] or [] if block["type"] == "actions" for el in block["elements"]]
    assert [(b["action_id"], b["value"]) for b in buttons] == [(Action.RETRY_START, str(row["id"]))]

    delivery = await slack.click_button(
        user_id=ALICE, action_id=Action.RETRY_START, value=str(row["id"]), channel=general(slack)
    )
    assert delivery.status == 200
    assert await bot.idle()

    [row] = await incident_rows(bot)
    assert row["state"] == "open"
    channels = incident_channels(slack)
    assert [c["name"] for c in channels] == ["inc-1-db-down"] and channels[0]["id"] == row["channel_id"]
    assert len(slack.messages(row["channel_id"])) == 1  # one summary
    assert sum("INC-1" in m["text"] for m in slack.messages(general(slack))) == 1  # one announcement
    assert "INC-1 is open" in slack.ephemerals[-1]["text"]


async def test_retry_of_an_open_incident_changes_nothing(slack: LocalSlack, bot: Runtime) -> None:
    await slack.send_command("start DB down", user_id=ALICE, channel_id=general(slack))
    assert await bot.idle()
    [row] = await incident_rows(bot)
    await slack.click_button(user_id=ALICE, action_id=Action.RETRY_START, value=str(row["id"]), channel=general(slack))
    assert await bot.idle()
    assert len(slack.calls_to("conversations.create")) == 1
    assert "open already" in slack.ephemerals[-1]["text"]


async def test_server_error_on_pins_add_is_retried(slack: LocalSlack, bot: Runtime) -> None:
    slack.fail_next("pins.add", status=500)
    await slack.send_command("start DB down", user_id=ALICE, channel_id=general(slack))
    assert await bot.idle(timeout=30)

    assert [c.status for c in slack.calls_to("pins.add")] == [500, 200]
    [row] = await incident_rows(bot)
    assert row["state"] == "open"
    assert slack.pins(row["channel_id"]) == [row["summary_ts"]]


# ----- 5. a slow Slack ---------------------------------------------------------------------


def assert_acked_in_time(delivery: Delivery) -> None:
    assert delivery.status == 200, delivery.body
    assert delivery.elapsed < 3.0, delivery.elapsed


async def test_commands_are_acked_within_3s_when_slack_is_slow(slack: LocalSlack, bot: Runtime) -> None:
    slack.delay_seconds = 2.5
    assert_acked_in_time(await slack.send_command("start Foo", user_id=ALICE, channel_id=general(slack)))
    assert await bot.idle(timeout=60)
    [row] = await incident_rows(bot)
    assert row["state"] == "open" and slack.messages(row["channel_id"])

    here = row["channel_id"]
    for text in ("note rolled back", "severity sev1", "status identified found it", "tasks", "list", "help"):
        assert_acked_in_time(await slack.send_command(text, user_id=ALICE, channel_id=here))
    assert await bot.idle(timeout=60)
    [row] = await incident_rows(bot)
    assert (row["severity"], row["status"]) == ("sev1", "identified")


async def test_a_private_incident_is_not_announced_nor_listed_to_outsiders(slack: LocalSlack, bot: Runtime) -> None:
    view_id = await open_start_modal(slack, bot)
    await slack.submit_view(view_id, start_values("Customer PII exposed"), user_id=ALICE)
    assert await bot.idle()
    [row] = await incident_rows(bot)
    assert row["is_private"] is True and row["announcement_ts"] is None
    assert not any("PII" in str(m) for m in slack.messages(general(slack)))

    await slack.send_command("list", user_id=BOB, channel_id=general(slack))
    await slack.send_command("list", user_id=ALICE, channel_id=general(slack))
    assert await bot.idle()
    seen = {e["user"]: e["text"] for e in slack.ephemerals if "incident" in str(e.get("text", "")).lower()}
    assert "PII" not in seen.get(BOB, "") and "No open incidents" in seen.get(BOB, "")
    assert "Customer PII exposed" in seen.get(ALICE, "")


async def test_a_start_slack_failed_finishes_by_itself_without_a_retry_click(
    slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory
) -> None:
    """Once, a start that Slack failed stayed half-open until a person pressed Retry; now the
    step stored with the incident finishes it, once, whatever the Retry button does later."""
    bot = await start_bot(slack_at, clock=clock)
    slack_at.fail_next("conversations.create", status=500)
    await slack_at.send_command("start Cache stampede", user_id=ALICE, channel_id=general(slack_at))
    assert await bot.idle()
    [row] = await incident_rows(bot)
    assert row["state"] == "opening"

    slack_at.fail_next("conversations.create", status=503)  # Slack is still unwell at the first net
    clock.advance(timedelta(seconds=31))
    assert await bot.idle()
    assert (await incident_rows(bot))[0]["state"] == "opening"
    clock.advance(timedelta(minutes=1))  # past the backoff
    assert await bot.idle()
    [row] = await incident_rows(bot)
    assert row["state"] == "open" and [c["name"] for c in incident_channels(slack_at)] == ["inc-1-cache-stampede"]
    assert sum("INC-1" in m["text"] for m in slack_at.messages(general(slack_at))) == 1  # one announcement

    await slack_at.click_button(user_id=ALICE, action_id=Action.RETRY_START, value=str(row["id"]),
                                channel=general(slack_at))
    assert await bot.idle()
    assert len(incident_channels(slack_at)) == 1 and len(slack_at.messages(row["channel_id"])) == 1
