"""The HTTP listener on aiohttp: POST /slack/events (HTTP mode), GET /healthz and GET /readyz
(both transports)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from storage import DATABASE_ERRORS, Database

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
ALERTS_PATH = "/alerts/{source}"
MAX_BODY_BYTES = 1024 * 1024
# (reachable, body): what /readyz says about the database and the outbox.
Readiness = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


Handler = Callable[[web.Request], Awaitable[web.Response]]


def build_web_app(
    app: AsyncApp | None,
    signing_secret: str | None,
    db: Database,
    readiness: Readiness,
    alerts: Handler | None = None,
    on_message: MessageHandler | None = None,
) -> web.Application:
    """With `app` (HTTP mode) Slack's requests are served too; in Socket Mode only the probes
    and, when alert intake is on, POST /alerts/<source>."""

    async def healthz(_: web.Request) -> web.Response:
        if await db.healthy():
            return web.json_response({"ok": True})
        return web.json_response({"ok": False, "error": "database unreachable"}, status=503)

    async def readyz(_: web.Request) -> web.Response:
        reachable, body = await readiness()
        return web.json_response(body, status=200 if reachable else 503)

    web_app = web.Application(client_max_size=MAX_BODY_BYTES)
    web_app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz)])
    if app is not None and signing_secret is not None:
        web_app.add_routes([web.post(EVENTS_PATH, _events_handler(app, signing_secret, on_message))])
    if alerts is not None:
        web_app.add_routes([web.post(ALERTS_PATH, alerts)])
    return web_app


# A channel message event, handed the parsed event and its event id; it returns after the
# message is committed (the same function Bolt's `message` listener calls).
MessageHandler = Callable[[dict[str, Any], str | None], Awaitable[None]]


def _events_handler(app: AsyncApp, signing_secret: str, on_message: MessageHandler | None = None) -> Handler:
    verifier = SignatureVerifier(signing_secret)

    async def slack_events(request: web.Request) -> web.Response:
        raw = await request.read()
        if not _is_signed(verifier, raw, dict(request.headers)):
            return web.json_response({"error": "invalid signature or stale timestamp"}, status=401)
        body = raw.decode("utf-8", errors="replace")
        if body.startswith("{"):
            data = _json_or_none(body)
            if not isinstance(data, dict) or not _json_ok(data):
                return web.json_response({"error": "malformed payload"}, status=400)
            if on_message is not None and _is_message_event(data):
                return await _record_message(on_message, data)
        elif parse_qs(body).get("ssl_check") == ["1"]:
            return web.Response(status=200)  # Slack checking the certificate of a command URL
        elif not is_well_formed(body, request.content_type):
            return web.json_response({"error": "malformed payload"}, status=400)
        bolt_request = AsyncBoltRequest(body=body, query=request.query_string, headers=dict(request.headers))
        return await to_aiohttp_response(await app.async_dispatch(bolt_request))

    return slack_events


async def _record_message(on_message: MessageHandler, data: dict[str, Any]) -> web.Response:
    """200 only once the message is committed; anything else a 5xx, so Slack delivers it again."""
    try:
        await on_message(data["event"], data.get("event_id"))
    except DATABASE_ERRORS as exc:
        log.warning("message event not stored, database unreachable: %s", type(exc).__name__)
        return web.Response(status=503)
    return web.Response(status=200)


def _is_message_event(data: dict[str, Any]) -> bool:
    """Channel messages are nearly every request. For them Bolt's dispatch adds nothing (the
    authorization is fixed, the bot's own messages are skipped by the handler as Bolt would,
    and the only listener is this one), so they go straight to it: one JSON parse, no
    middleware chain. Everything else still goes through Bolt."""
    event = data.get("event")
    return data.get("type") == "event_callback" and isinstance(event, dict) and event.get("type") == "message"


def _json_or_none(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _json_ok(data: dict[str, Any]) -> bool:
    return isinstance(data.get("type"), str) and _event_ok(data)


def _is_signed(verifier: SignatureVerifier, raw: bytes, headers: dict[str, str]) -> bool:
    try:
        return verifier.is_valid_request(raw, headers)
    except (UnicodeDecodeError, ValueError, TypeError):
        # slack-sdk raises on a body that is not UTF-8, a timestamp that is not a number and a
        # signature that is not ASCII: none can come from Slack, so they get a 401, not a 500.
        return False


def is_well_formed(body: str, content_type: str) -> bool:
    """A Slack request is JSON with a type, a form with a command, or a form with a JSON payload."""
    try:
        if content_type == "application/json" or body.startswith("{"):
            data = json.loads(body)
            return isinstance(data, dict) and isinstance(data.get("type"), str) and _event_ok(data)
        form = parse_qs(body, keep_blank_values=True)
        if "payload" in form:
            payload = json.loads(form["payload"][0])
            return isinstance(payload, dict) and isinstance(payload.get("type"), str)
        return "command" in form and "user_id" in form and "channel_id" in form
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return False


def _event_ok(data: dict[str, object]) -> bool:
    return data.get("type") != "event_callback" or isinstance(data.get("event"), dict)
