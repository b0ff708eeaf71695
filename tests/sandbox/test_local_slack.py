"""End-to-end checks of the local fake Slack, driven by the real slack-sdk / slack-bolt."""

from __future__ import annotations

import asyncio
import json
import pathlib
import urllib.parse
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from sandbox import LocalSlack

SPEC_DIR = pathlib.Path("/work/shared/slack-api-specs")
SPEC_AVAILABLE = SPEC_DIR.exists()  # checked once at import; async code must not block on disk
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


class FakeClock:
    """A settable clock so trigger expiry and ts values are deterministic."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    # slack-sdk and aiohttp honour proxy variables; local traffic must not use them.
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def ls(clock: FakeClock) -> AsyncIterator[LocalSlack]:
    spec = SPEC_DIR if SPEC_AVAILABLE else None
    before = set(asyncio.all_tasks())
    async with LocalSlack(spec_path=spec, clock=clock) as slack:
        slack.add_user("U1", "alice", real_name="Alice A")
        slack.add_user("U2", "bob")
        yield slack
    await _assert_no_leaked_tasks(before)


async def _assert_no_leaked_tasks(before: set[asyncio.Task[Any]]) -> None:
    for _ in range(50):
        leaked = {t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()}
        if not leaked:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"tasks left behind: {leaked}")


@pytest.fixture
def client(ls: LocalSlack) -> AsyncWebClient:
    return AsyncWebClient(token=ls.bot_token, base_url=ls.api_url)


# ----- Web API ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_create_channel_and_name_taken(ls: LocalSlack, client: AsyncWebClient) -> None:
    created = await client.conversations_create(name="inc-2024-db-outage", is_private=True)
    channel = created["channel"]
    assert channel["id"].startswith("C") and channel["is_private"] is True
    assert ls.channel_by_name("inc-2024-db-outage")["members"] == [ls.workspace.bot_user_id]  # type: ignore[index]

    for name, error in [
        ("inc-2024-db-outage", "name_taken"),
        ("Bad Name!", "invalid_name_specials"),
        ("x" * 81, "invalid_name_maxlength"),
    ]:
        with pytest.raises(SlackApiError) as failure:
            await client.conversations_create(name=name)
        assert failure.value.response["error"] == error


@pytest.mark.asyncio
async def test_post_thread_and_history(ls: LocalSlack, client: AsyncWebClient, clock: FakeClock) -> None:
    channel_id = (await client.conversations_create(name="inc-1"))["channel"]["id"]
    first = await client.chat_postMessage(channel=channel_id, text="Incident declared")
    second = await client.chat_postMessage(channel=channel_id, text="same instant")
    assert first["ts"] == f"{int(clock.now.timestamp())}.000000"
    assert second["ts"] == f"{int(clock.now.timestamp())}.000001"  # bumped, never equal
    await client.chat_postMessage(channel=channel_id, text="update", thread_ts=first["ts"])

    history = await client.conversations_history(channel=channel_id)
    assert [m["text"] for m in history["messages"]] == ["same instant", "Incident declared"]
    assert history["messages"][1]["reply_count"] == 1
    replies = await client.conversations_replies(channel=channel_id, ts=first["ts"])
    assert [m["text"] for m in replies["messages"]] == ["Incident declared", "update"]
    assert [m["text"] for m in ls.messages(channel_id)] == ["Incident declared", "same instant", "update"]
    assert ls.messages(channel_id)[0]["bot_id"] == ls.workspace.bot_id


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_message_limits_and_membership(ls: LocalSlack, client: AsyncWebClient) -> None:
    private = ls.add_channel("secret", is_private=True, members=["U1"])
    public = ls.add_channel("general", members=["U1"])
    cases: list[tuple[dict[str, Any], str]] = [
        ({"channel": private, "text": "hi"}, "not_in_channel"),
        ({"channel": "C404", "text": "hi"}, "channel_not_found"),
        ({"channel": public}, "no_text"),
        ({"channel": public, "text": "x" * 40_001}, "msg_too_long"),
        ({"channel": public, "text": "t", "blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
        ({"channel": public, "text": "t", "blocks": [_section("x" * 3001)]}, "invalid_blocks"),
    ]
    for kwargs, error in cases:
        with pytest.raises(SlackApiError) as failure:
            await client.chat_postMessage(**kwargs)
        assert failure.value.response["error"] == error
    posted = await client.chat_postMessage(channel="U1", text="a DM")  # a user id means the DM
    assert posted["channel"] == ls.dm_channel("U1")
    with pytest.raises(SlackApiError, match="cannot_dm_bot"):
        await client.conversations_open(users=ls.workspace.bot_user_id)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.mark.asyncio
async def test_rate_limit_then_retry_succeeds(ls: LocalSlack) -> None:
    ls.fail_next("chat.postMessage", status=429, retry_after=1)
    channel_id = ls.add_channel("general")
    plain = AsyncWebClient(token=ls.bot_token, base_url=ls.api_url)
    with pytest.raises(SlackApiError) as failure:
        await plain.chat_postMessage(channel=channel_id, text="hi")
    assert failure.value.response.status_code == 429
    assert failure.value.response.headers["Retry-After"] == "1"

    ls.fail_next("chat.postMessage", status=429, retry_after=1)
    retrying = AsyncWebClient(
        token=ls.bot_token,
        base_url=ls.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    answer = await retrying.chat_postMessage(channel=channel_id, text="hi")
    assert answer["ok"] is True
    assert [c.status for c in ls.calls_to("chat.postMessage")] == [429, 429, 200]


@pytest.mark.asyncio
async def test_injected_errors_and_auth(ls: LocalSlack, client: AsyncWebClient) -> None:
    ls.fail_next("users.info", error="fatal_error")
    with pytest.raises(SlackApiError, match="fatal_error"):
        await client.users_info(user="U1")
    assert (await client.users_info(user="U1"))["user"]["real_name"] == "Alice A"
    with pytest.raises(SlackApiError, match="invalid_auth"):
        await AsyncWebClient(token="xoxb-wrong", base_url=ls.api_url).auth_test()
    with pytest.raises(SlackApiError, match="unknown_method"):
        await client.api_call("no.such.method")
    ls.hang_next("auth.test", seconds=5)
    with pytest.raises(asyncio.TimeoutError):
        await AsyncWebClient(token=ls.bot_token, base_url=ls.api_url, timeout=1).auth_test()


@pytest.mark.asyncio
@pytest.mark.skipif(not SPEC_AVAILABLE, reason="Slack API spec not available")
async def test_spec_violation_is_reported(ls: LocalSlack, client: AsyncWebClient) -> None:
    channel_id = ls.add_channel("general")
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        await client.api_call("chat.postMessage", json={"channel": channel_id, "text": "hi", "colour": "red"})
    assert ls.spec_violations == ["chat.postMessage: unknown argument 'colour'"]
    # Arguments newer than the spec (metadata) are accepted.
    await client.chat_postMessage(channel=channel_id, text="ok", metadata={"event_type": "t", "event_payload": {}})
    assert len(ls.spec_violations) == 1


@pytest.mark.asyncio
async def test_file_upload_round_trip(ls: LocalSlack, client: AsyncWebClient) -> None:
    channel_id = (await client.conversations_create(name="inc-files"))["channel"]["id"]
    answer = await client.files_upload_v2(
        channel=channel_id,
        content=b"timeline data",
        filename="timeline.csv",
        title="Timeline",
        initial_comment="csv",
    )
    file_id = answer["file"]["id"]
    assert ls.files[file_id]["content"] == b"timeline data"
    assert ls.files[file_id]["channels"] == [channel_id]
    shared = ls.messages(channel_id)[-1]
    assert shared["subtype"] == "file_share" and shared["files"][0]["id"] == file_id
    assert (await client.files_info(file=file_id))["file"]["title"] == "Timeline"
    with pytest.raises(SlackApiError, match="file_not_found"):
        await client.files_completeUploadExternal(files=[{"id": "F404", "title": "x"}])


@pytest.mark.asyncio
async def test_views_open_checks_trigger(ls: LocalSlack, client: AsyncWebClient, clock: FakeClock) -> None:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Declare"}, "blocks": []}
    fresh = ls.issue_trigger("U1")
    opened = await client.views_open(trigger_id=fresh, view=view)
    assert opened["view"]["id"] in ls.views
    stale = ls.issue_trigger("U1")
    clock.advance(3.5)
    with pytest.raises(SlackApiError, match="expired_trigger_id"):
        await client.views_open(trigger_id=stale, view=view)
    with pytest.raises(SlackApiError, match="invalid_trigger_id"):
        await client.views_open(trigger_id="123.bogus", view=view)


# ----- deliveries over HTTP ---------------------------------------------------------------------


class FakeBot:
    """A minimal HTTP app that verifies Slack signatures, standing in for the bot."""

    def __init__(self, signing_secret: str) -> None:
        self.verifier = SignatureVerifier(signing_secret)
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_events = False
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/slack/events", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/slack/events"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self.verifier.is_valid_request(body, dict(request.headers)):
            return web.Response(status=401, text="invalid signature")
        self.received.append((dict(request.headers), body))
        if request.content_type == "application/json":
            return web.Response(status=500) if self.fail_events else web.Response(text="")
        form = dict(urllib.parse.parse_qsl(body.decode()))
        if "payload" in form:
            return self.answer_interaction(json.loads(form["payload"]))
        return web.json_response({"text": f"Got {form['command']} {form['text']}"})

    @staticmethod
    def answer_interaction(payload: dict[str, Any]) -> web.Response:
        if payload["type"] == "view_submission":
            title = payload["view"]["state"]["values"]["title"]["value"]["value"]
            if not title:
                return web.json_response({"response_action": "errors", "errors": {"title": "Required"}})
        return web.Response(text="")


@pytest_asyncio.fixture
async def bot(ls: LocalSlack) -> AsyncIterator[FakeBot]:
    fake = FakeBot(ls.signing_secret)
    await fake.start()
    ls.bot_url = fake.url
    yield fake
    await fake.stop()


@pytest.mark.asyncio
async def test_signed_command_is_acked_and_shown(ls: LocalSlack, bot: FakeBot) -> None:
    channel_id = ls.add_channel("general", members=["U1"])
    delivery = await ls.send_command("declare db down", user_id="U1", channel_id=channel_id)
    assert delivery.status == 200 and delivery.json == {"text": "Got /incident declare db down"}
    headers, body = bot.received[0]
    form = dict(urllib.parse.parse_qsl(body.decode()))
    assert form["user_name"] == "alice" and form["channel_name"] == "general"
    assert form["response_url"].startswith(ls.base_url)
    assert ls.ephemerals[-1] == {
        "channel": channel_id,
        "user": "U1",
        "text": "Got /incident declare db down",
        "blocks": None,
        "source": "ack",
    }


@pytest.mark.asyncio
async def test_signed_event_and_redelivery(ls: LocalSlack, bot: FakeBot) -> None:
    channel_id = ls.add_channel("inc-1", members=["U1"])
    ts, delivery = await ls.post_message(channel_id, user="U1", text="db is down")
    assert delivery is not None and delivery.status == 200
    envelope = json.loads(bot.received[-1][1])
    assert envelope["type"] == "event_callback"
    assert envelope["event"]["ts"] == ts and envelope["event"]["channel_type"] == "channel"

    bot.fail_events = True
    await ls.add_reaction(channel_id, ts, "eyes", user="U2")
    assert len(ls.pending_redeliveries) == 1
    bot.fail_events = False
    [retry] = await ls.redeliver_unacked()
    assert retry.status == 200 and ls.pending_redeliveries == []
    headers = bot.received[-1][0]
    assert headers["X-Slack-Retry-Num"] == "1" and headers["X-Slack-Retry-Reason"] == "http_error"
    assert json.loads(bot.received[-1][1])["event"]["type"] == "reaction_added"


@pytest.mark.asyncio
async def test_forged_request_is_rejected(ls: LocalSlack, bot: FakeBot) -> None:
    delivery = await ls.deliver_raw(b"{}", {"X-Slack-Signature": "v0=00", "X-Slack-Request-Timestamp": "1"})
    assert delivery.status == 401


@pytest.mark.asyncio
async def test_view_submission_errors_keep_view_open(ls: LocalSlack, client: AsyncWebClient, bot: FakeBot) -> None:
    view = {"type": "modal", "callback_id": "declare", "title": {"type": "plain_text", "text": "Declare"}}
    view_id = (await client.views_open(trigger_id=ls.issue_trigger("U1"), view=view))["view"]["id"]
    empty = {"title": {"value": {"type": "plain_text_input", "value": ""}}}
    await ls.submit_view(view_id, empty, user_id="U1")
    assert ls.views[view_id]["closed"] is False and ls.views[view_id]["errors"] == {"title": "Required"}
    filled = {"title": {"value": {"type": "plain_text_input", "value": "DB down"}}}
    await ls.submit_view(view_id, filled, user_id="U1")
    assert ls.views[view_id]["closed"] is True


@pytest.mark.asyncio
async def test_unreachable_bot_leaves_event_pending(ls: LocalSlack) -> None:
    ls.bot_url = "http://127.0.0.1:9/slack/events"  # discard port: connection refused
    channel_id = ls.add_channel("inc-2")
    _, delivery = await ls.post_message(channel_id, user="U1", text="hello")
    assert delivery is not None and delivery.status == 0
    assert ls.pending_redeliveries[0]["reason"] == "http_error"


# ----- Socket Mode ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_socket_mode_command_with_bolt(ls: LocalSlack) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_bolt.async_app import AsyncApp

    app = AsyncApp(client=AsyncWebClient(token=ls.bot_token, base_url=ls.api_url), signing_secret="unused")
    seen: list[str] = []

    @app.command("/incident")
    async def on_incident(ack: Any, command: dict[str, Any]) -> None:
        seen.append(command["text"])
        await ack(f"Declaring: {command['text']}")

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        seen.append(f"message:{event['text']}")

    handler = AsyncSocketModeHandler(app, app_token=ls.app_token)
    await handler.connect_async()
    try:
        await ls.wait_for(lambda: ls.socket_connected)
        channel_id = ls.add_channel("general", members=["U1"])
        delivery = await ls.send_command("api latency", user_id="U1", channel_id=channel_id)
        _, event_delivery = await ls.post_message(channel_id, user="U1", text="hello")
        await ls.wait_for(lambda: "message:hello" in seen)
    finally:
        await handler.close_async()
    assert event_delivery is not None and event_delivery.status == 200
    assert seen == ["api latency", "message:hello"]
    assert delivery.status == 200 and delivery.json == {"text": "Declaring: api latency"}
    assert ls.ephemerals[-1]["text"] == "Declaring: api latency"


def test_ts_allocation_is_strictly_increasing() -> None:
    from sandbox.clock import TsAllocator

    allocator = TsAllocator()
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    values = [allocator.allocate("C1", moment) for _ in range(3)]
    assert values == ["1704067200.000000", "1704067200.000001", "1704067200.000002"]
    assert allocator.allocate("C2", moment) == "1704067200.000000"


@pytest.mark.asyncio
async def test_button_click_and_response_url(ls: LocalSlack, client: AsyncWebClient, bot: FakeBot) -> None:
    channel_id = (await client.conversations_create(name="inc-3"))["channel"]["id"]
    button = {
        "type": "button",
        "action_id": "ack",
        "value": "inc-3",
        "text": {"type": "plain_text", "text": "Ack"},
    }
    blocks = [{"type": "actions", "block_id": "controls", "elements": [button]}]
    ts = (await client.chat_postMessage(channel=channel_id, text="Incident", blocks=blocks))["ts"]

    delivery = await ls.click_button(user_id="U1", action_id="ack", channel=channel_id, message_ts=ts)
    assert delivery.status == 200
    payload = json.loads(dict(urllib.parse.parse_qsl(bot.received[-1][1].decode()))["payload"])
    assert payload["actions"][0]["block_id"] == "controls" and payload["actions"][0]["value"] == "inc-3"
    assert payload["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": channel_id,
        "is_ephemeral": False,
    }

    async with aiohttp.ClientSession(trust_env=False) as session:
        await session.post(payload["response_url"], json={"replace_original": True, "text": "Acked by alice"})
        await session.post(payload["response_url"], json={"text": "only you see this"})
    assert ls.messages(channel_id)[0]["text"] == "Acked by alice"
    assert ls.ephemerals[-1]["text"] == "only you see this" and ls.ephemerals[-1]["source"] == "response_url"
    assert len(ls.responses) == 2 and ls.responses[0]["url"] == payload["response_url"]
    with pytest.raises(LookupError):
        await ls.click_button(user_id="U1", action_id="missing", channel=channel_id, message_ts=ts)


@pytest.mark.asyncio
async def test_slow_bot_counts_as_timeout(ls: LocalSlack) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/slack/events", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        ls.bot_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
        ls.delivery_timeout = 0.2
        await ls.deliver_event({"type": "app_mention", "user": "U1", "text": "hi", "ts": "1.000000"})
    finally:
        await runner.cleanup()
    assert ls.pending_redeliveries[0]["reason"] == "http_timeout"


@pytest.mark.asyncio
async def test_invite_errors(ls: LocalSlack, client: AsyncWebClient) -> None:
    channel_id = (await client.conversations_create(name="inc-4"))["channel"]["id"]
    await client.conversations_invite(channel=channel_id, users=["U1", "U2"])
    assert ls.channels[channel_id]["members"] == [ls.workspace.bot_user_id, "U1", "U2"]
    for users, error in [(["U1"], "already_in_channel"), (["U404"], "user_not_found")]:
        with pytest.raises(SlackApiError) as failure:
            await client.conversations_invite(channel=channel_id, users=users)
        assert failure.value.response["error"] == error
