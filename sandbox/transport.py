"""How deliveries reach the bot: signed HTTP POSTs, or Socket Mode envelopes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from .types import Delivery, JsonDict

TIMEOUT_BODY = "timeout"
SLACK_USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature: HMAC-SHA256 over "v0:<timestamp>:<body>"."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, content_type: str) -> dict[str, str]:
    # Wall-clock time, not the injectable clock: the bot checks the timestamp
    # against its own time.time() and rejects anything 5 minutes off.
    timestamp = str(int(time.time()))
    return {
        "Content-Type": content_type,
        "User-Agent": SLACK_USER_AGENT,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature(secret, timestamp, body),
    }


def parse_json_or_none(text: str) -> Any | None:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


class HttpSender:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, body: bytes, headers: dict[str, str], within: float) -> Delivery:
        started = time.monotonic()
        try:
            async with asyncio.timeout(within):
                async with self._client().post(url, data=body, headers=headers) as response:
                    text = await response.text()
                    status = response.status
        except TimeoutError:
            return Delivery(0, TIMEOUT_BODY, None, time.monotonic() - started)
        except aiohttp.ClientError as error:
            return Delivery(0, f"connection error: {error}", None, time.monotonic() - started)
        return Delivery(status, text, parse_json_or_none(text), time.monotonic() - started)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # trust_env=False: a developer's HTTP(S)_PROXY must not swallow local deliveries.
            self._session = aiohttp.ClientSession(trust_env=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class SocketHub:
    """The server side of Socket Mode: hands out tickets, sends envelopes, awaits acks."""

    def __init__(self, app_id: str) -> None:
        self._app_id = app_id
        self._tickets: set[str] = set()
        self._connections: list[web.WebSocketResponse] = []
        self._waiting: dict[str, asyncio.Future[JsonDict]] = {}
        self.received: list[JsonDict] = []
        self.hellos = 0  # connections greeted, reconnections included

    @property
    def connected(self) -> bool:
        return any(not ws.closed for ws in self._connections)

    def issue_ticket(self) -> str:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return ticket

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)  # Slack's connection URLs are single-use.
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._connections.append(ws)
        try:
            await ws.send_json(self._hello())
            self.hellos += 1
            await self._read_acks(ws)
        finally:
            self._connections.remove(ws)
        return ws

    def _hello(self) -> JsonDict:
        return {
            "type": "hello",
            "num_connections": len(self._connections),
            "debug_info": {"host": "local-slack", "build_number": 1, "approximate_connection_time": 3600},
            "connection_info": {"app_id": self._app_id},
        }

    async def _read_acks(self, ws: web.WebSocketResponse) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            ack = parse_json_or_none(message.data)
            if not isinstance(ack, dict):
                continue
            self.received.append(ack)
            waiter = self._waiting.pop(str(ack.get("envelope_id")), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(ack)

    async def send(self, envelope: JsonDict, within: float) -> Delivery:
        """Send one envelope to the newest connection and wait for its ack."""
        started = time.monotonic()
        ws = next(ws for ws in reversed(self._connections) if not ws.closed)
        envelope_id = str(uuid.uuid4())
        waiter: asyncio.Future[JsonDict] = asyncio.get_running_loop().create_future()
        self._waiting[envelope_id] = waiter
        try:
            await ws.send_json({"envelope_id": envelope_id, **envelope})
            ack = await asyncio.wait_for(waiter, within)
        except (TimeoutError, ConnectionError):
            return Delivery(0, TIMEOUT_BODY, None, time.monotonic() - started)
        finally:
            self._waiting.pop(envelope_id, None)
        payload = ack.get("payload")
        body = json.dumps(payload) if payload is not None else ""
        return Delivery(200, body, payload, time.monotonic() - started)

    async def ask_to_reconnect(self) -> None:
        """What Slack sends before it rotates a connection: the client opens a new one."""
        for ws in list(self._connections):
            if not ws.closed:
                await ws.send_json({"type": "disconnect", "reason": "refresh_requested",
                                    "debug_info": {"host": "local-slack"}})  # fmt: skip

    async def close(self) -> None:
        for waiter in self._waiting.values():
            waiter.cancel()
        for ws in list(self._connections):
            with contextlib.suppress(Exception):
                await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"server shutdown")
