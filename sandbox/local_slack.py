"""LocalSlack: a stateful fake Slack served over real HTTP on 127.0.0.1.

The bot under test talks to it exactly as to Slack (slack-sdk Web API client,
Bolt request verification, Socket Mode), and tests drive it as the "users".
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import pathlib
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from . import limits, payloads
from .clock import Clock, real_clock
from .ids import IdFactory
from .spec import SpecChecker
from .transport import TIMEOUT_BODY, HttpSender, SocketHub, signed_headers
from .types import Call, Delivery, JsonDict, SlackError
from .web_api import HANDLERS, Args
from .workspace import Workspace

MAX_RETRIES = 3  # Slack gives up on an event after three retries.
ApiAnswer = tuple[int, JsonDict, dict[str, str]]


@dataclass
class _Fault:
    error: str | None
    status: int
    retry_after: int | None
    times: int


class LocalSlack:
    def __init__(
        self,
        *,
        signing_secret: str = "local-signing-secret",
        team_id: str = "T0LOCAL",
        team_domain: str = "local-workspace",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        bot_token: str = "xoxb-local-token",
        app_token: str = "xapp-local-token",
        api_app_id: str = "A0LOCAL",
        spec_path: pathlib.Path | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.app_token = app_token
        self._clock: Clock = clock or real_clock
        self.workspace = Workspace(
            team_id=team_id,
            team_domain=team_domain,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            api_app_id=api_app_id,
            clock=self._clock,
        )
        self._spec = SpecChecker(spec_path) if spec_path is not None else None
        self.bot_url: str | None = None
        self.delay_seconds: float = 0.0
        self.delivery_timeout: float = 3.0
        self.calls: list[Call] = []
        self.responses: list[JsonDict] = []
        self.spec_violations: list[str] = []
        self.pending_redeliveries: list[JsonDict] = []
        self.dropped_deliveries: list[JsonDict] = []
        self.deliveries: list[JsonDict] = []
        self._faults: dict[str, deque[_Fault]] = {}
        self._hangs: dict[str, deque[float]] = {}
        self._response_urls: dict[str, JsonDict] = {}
        self._sender = HttpSender()
        self._hub = SocketHub(api_app_id)
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._port = 0

    # ----- lifecycle ------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._closing = asyncio.Event()
        self._runner = web.AppRunner(self._build_app(), shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self._port = int(self._runner.addresses[0][1])  # the real port when port=0
        self.workspace.base_url = f"http://{host}:{self._port}/"

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{token}", self._handle_response_url)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_get("/files-pri/{team_file}/{name}", self._handle_download)
        app.router.add_get("/socket", self._hub.handle)
        return app

    async def stop(self) -> None:
        self._closing.set()  # releases hung/delayed handlers so shutdown is quick
        await self._hub.close()
        await self._sender.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return self.workspace.base_url

    @property
    def api_url(self) -> str:
        return f"{self.base_url}api/"

    @property
    def team_url(self) -> str:
        return self.workspace.team_url

    @property
    def socket_connected(self) -> bool:
        return self._hub.connected

    # ----- state seeding / reading ----------------------------------------------------

    async def ask_to_reconnect(self) -> None:
        """Socket Mode: tells connected clients to reconnect, as Slack does every few hours."""
        await self._hub.ask_to_reconnect()

    @property
    def socket_hellos(self) -> int:
        return self._hub.hellos

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        tz: str = "UTC",
    ) -> None:
        self.workspace.add_user(user_id, name, real_name=real_name, is_bot=is_bot, deleted=deleted, tz=tz)

    def add_channel(self, name: str, *, is_private: bool = False, members: Iterable[str] = ()) -> str:
        return self.workspace.add_channel(name, is_private=is_private, members=members)

    @property
    def channels(self) -> dict[str, JsonDict]:
        return self.workspace.channels

    @property
    def users(self) -> dict[str, JsonDict]:
        return self.workspace.users

    @property
    def ephemerals(self) -> list[JsonDict]:
        return self.workspace.ephemerals

    @property
    def homes(self) -> dict[str, JsonDict]:
        return self.workspace.homes

    @property
    def views(self) -> dict[str, JsonDict]:
        return self.workspace.views

    @property
    def files(self) -> dict[str, JsonDict]:
        return self.workspace.files

    def channel_by_name(self, name: str) -> JsonDict | None:
        return self.workspace.channel_by_name(name)

    def messages(self, channel: str) -> list[JsonDict]:
        return self.workspace.messages(channel)

    def pins(self, channel: str) -> list[str]:
        return self.workspace.pins(channel)

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def dm_channel(self, user_id: str) -> str | None:
        return self.workspace.dm_channel(user_id)

    def issue_trigger(self, user_id: str, *, view_id: str | None = None) -> str:
        """A fresh trigger_id, as an interaction by `user_id` would carry (valid 3 s by the clock)."""
        return self.workspace.issue_trigger(user_id, view_id=view_id)

    def expire_triggers(self) -> None:
        """Make every trigger_id issued so far stale (views.open -> expired_trigger_id)."""
        self.workspace.expire_all_triggers()

    # ----- fault injection --------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int = 200,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        fault = _Fault(error=error, status=status, retry_after=retry_after, times=times)
        self._faults.setdefault(method, deque()).append(fault)

    def hang_next(self, method: str, seconds: float, times: int = 1) -> None:
        self._hangs.setdefault(method, deque()).extend([seconds] * times)

    def _take_fault(self, method: str) -> ApiAnswer | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.popleft()
        if fault.status == 429:
            retry_after = fault.retry_after if fault.retry_after is not None else 1
            return (
                429,
                {"ok": False, "error": fault.error or "ratelimited"},
                {"Retry-After": str(retry_after)},
            )
        if fault.status >= 500:
            return fault.status, {}, {}
        return 200, {"ok": False, "error": fault.error or "fatal_error"}, {}

    async def _pause_before_answer(self, method: str) -> None:
        seconds = self.delay_seconds
        hangs = self._hangs.get(method)
        if hangs:
            seconds += hangs.popleft()
        if seconds > 0:
            # Waiting on the closing event (not a bare sleep) lets stop() end hangs at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)

    # ----- Web API -----------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            args = await self._read_args(request)
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_json"})
        token = self._bearer(request) or args.pop("token", None)
        args.pop("token", None)
        status, body, headers = await self._answer(method, args, token)
        self.calls.append(Call(method=method, args=args, response=body, status=status, at=self._clock()))
        if status >= 500:
            return web.Response(status=status, text="Internal Server Error", headers=headers)
        return web.json_response(body, status=status, headers=headers)

    @staticmethod
    async def _read_args(request: web.Request) -> dict[str, Any]:
        """Merge query string, form and JSON bodies: slack-sdk uses all three."""
        args: dict[str, Any] = dict(request.query)
        if request.method != "POST" or not request.can_read_body:
            return args
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                args.update(body)
        else:
            form = await request.post()
            args.update({key: value for key, value in form.items() if isinstance(value, str)})
        return args

    @staticmethod
    def _bearer(request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        return header[len("Bearer ") :].strip() if header.startswith("Bearer ") else None

    async def _answer(self, method: str, args: dict[str, Any], token: str | None) -> ApiAnswer:
        await self._pause_before_answer(method)
        fault = self._take_fault(method)
        if fault is not None:
            return fault
        if method == "apps.connections.open":
            return 200, self._open_socket_connection(token), {}
        handler = HANDLERS.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        auth_error = self._auth_error(token, expected=self.bot_token)
        if auth_error is not None:
            return 200, {"ok": False, "error": auth_error}, {}
        violations = self._spec_violations(method, args)
        if violations:
            messages = [f"[ERROR] {problem}" for problem in violations]
            return 200, SlackError("invalid_arguments", messages).as_response(), {}
        try:
            return 200, {"ok": True, **handler(self.workspace, Args(args))}, {}
        except SlackError as error:
            return 200, error.as_response(), {}

    def _auth_error(self, token: str | None, *, expected: str) -> str | None:
        if not token:
            return "not_authed"
        if token != expected:
            # Using the other kind of token is a distinct, real Slack error.
            wrong_kind = token in (self.bot_token, self.app_token)
            return "not_allowed_token_type" if wrong_kind else "invalid_auth"
        return None

    def _spec_violations(self, method: str, args: dict[str, Any]) -> list[str]:
        if self._spec is None:
            return []
        found = self._spec.violations(method, args)
        self.spec_violations.extend(found)
        return found

    def _open_socket_connection(self, token: str | None) -> JsonDict:
        auth_error = self._auth_error(token, expected=self.app_token)
        if auth_error is not None:
            return {"ok": False, "error": auth_error}
        ticket = self._hub.issue_ticket()
        ws_base = self.base_url.replace("http://", "ws://", 1)
        return {"ok": True, "url": f"{ws_base}socket?ticket={ticket}"}

    # ----- files -----------------------------------------------------------------------------

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        content = await self._upload_bytes(request)
        try:
            self.workspace.receive_upload(request.match_info["file_id"], content)
        except SlackError:
            return web.Response(status=404, text="file not found")
        return web.Response(text=f"OK - {len(content)}")

    @staticmethod
    async def _upload_bytes(request: web.Request) -> bytes:
        if request.content_type != "multipart/form-data":
            return await request.read()
        form = await request.post()
        for value in form.values():
            if isinstance(value, web.FileField):
                return bytes(value.file.read())
        return b""

    async def _handle_download(self, request: web.Request) -> web.StreamResponse:
        if self._bearer(request) != self.bot_token:
            return web.Response(status=302, headers={"Location": self.team_url})  # Slack redirects to login
        file_id = request.match_info["team_file"].rsplit("-", 1)[-1]
        record = self.files.get(file_id)
        if record is None:
            return web.Response(status=404, text="file not found")
        return web.Response(body=record["content"], content_type="application/octet-stream")

    # ----- response_url ------------------------------------------------------------------------

    def _issue_response_url(self, *, channel_id: str, user_id: str, message_ts: str | None) -> str:
        token = IdFactory.opaque(32)
        url = f"{self.base_url}response/{token}"
        self._response_urls[token] = {
            "url": url,
            "channel": channel_id,
            "user": user_id,
            "message_ts": message_ts,
        }
        return url

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        context = self._response_urls.get(request.match_info["token"])
        if context is None:
            return web.Response(status=404, text="no_such_response_url")
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        self.responses.append({**body, "url": context["url"]})
        try:
            self._apply_response(context, body, source="response_url")
        except SlackError as error:
            return web.Response(status=400, text=error.error)
        return web.json_response({"ok": True})

    def _apply_response(self, context: JsonDict, body: JsonDict, *, source: str) -> None:
        """What Slack does with a response_url post or a command's ack body."""
        channel_id, original_ts = context["channel"], context.get("message_ts")
        content: JsonDict = {key: body[key] for key in ("text", "blocks", "attachments") if key in body}
        if content.get("blocks") is not None:
            limits.check_message_blocks(limits.parse_blocks(content["blocks"]) or [])
        if body.get("delete_original") and original_ts:
            self.workspace.delete_message(channel_id, original_ts)
        elif body.get("replace_original") and original_ts:
            self.workspace.edit_message(channel_id, original_ts, content, editor=self.workspace.bot_user_id)
        elif body.get("response_type") == "in_channel":
            message: JsonDict = {**self.workspace.bot_authorship(), "text": "", **content}
            if body.get("thread_ts"):
                message["thread_ts"] = body["thread_ts"]
            self.workspace.store_message(channel_id, message)
        else:
            self.ephemerals.append(
                {
                    "channel": channel_id,
                    "user": context["user"],
                    "text": content.get("text", ""),
                    "blocks": content.get("blocks"),
                    "source": source,
                }
            )

    # ----- deliveries to the bot --------------------------------------------------------------

    async def _deliver(self, kind: str, payload: JsonDict, *, retry_num: int = 0, retry_reason: str = "") -> Delivery:
        """Send via Socket Mode when a client is connected, else HTTP to bot_url."""
        if self._hub.connected:
            envelope = {
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": retry_num,
                "retry_reason": retry_reason,
            }
            delivery = await self._hub.send(envelope, self.delivery_timeout)
        else:
            delivery = await self._deliver_http(kind, payload, retry_num=retry_num, retry_reason=retry_reason)
        self.deliveries.append({"kind": kind, "payload": payload, "status": delivery.status})
        return delivery

    async def _deliver_http(self, kind: str, payload: JsonDict, *, retry_num: int, retry_reason: str) -> Delivery:
        if self.bot_url is None:
            raise RuntimeError("LocalSlack.bot_url is not set and no Socket Mode client is connected")
        if kind == "events_api":
            body, content_type = json.dumps(payload).encode(), "application/json"
        elif kind == "interactive":
            body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
            content_type = "application/x-www-form-urlencoded"
        else:
            body, content_type = urllib.parse.urlencode(payload).encode(), "application/x-www-form-urlencoded"
        headers = signed_headers(self.signing_secret, body, content_type)
        if retry_num:
            headers.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason})
        return await self._sender.post(self.bot_url, body, headers, self.delivery_timeout)

    async def deliver_raw(self, body: bytes, headers: dict[str, str]) -> Delivery:
        """POST exactly these bytes and headers to bot_url (forged/malformed requests)."""
        if self.bot_url is None:
            raise RuntimeError("LocalSlack.bot_url is not set")
        return await self._sender.post(self.bot_url, body, headers, self.delivery_timeout)

    async def send_command(self, text: str, *, user_id: str, channel_id: str, command: str = "/incident") -> Delivery:
        response_url = self._issue_response_url(channel_id=channel_id, user_id=user_id, message_ts=None)
        form = payloads.command_form(
            self.workspace,
            text=text,
            command=command,
            user_id=user_id,
            channel_id=channel_id,
            response_url=response_url,
            trigger_id=self.workspace.issue_trigger(user_id),
        )
        delivery = await self._deliver("slash_commands", form)
        self._apply_command_ack(delivery, channel_id=channel_id, user_id=user_id)
        return delivery

    def _apply_command_ack(self, delivery: Delivery, *, channel_id: str, user_id: str) -> None:
        # Slack shows a command's ack body to the user (JSON message, or plain text).
        if delivery.status != 200:
            return
        if isinstance(delivery.json, dict):
            body = delivery.json
        elif delivery.body.strip():
            body = {"text": delivery.body}
        else:
            return
        context = {"channel": channel_id, "user": user_id, "message_ts": None}
        self._apply_response(context, body, source="ack")

    # ----- events --------------------------------------------------------------------------------

    async def deliver_event(
        self,
        event: JsonDict,
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
    ) -> Delivery:
        envelope = payloads.event_envelope(self.workspace, event, event_id=event_id or self._new_event_id())
        attempt = retry_num or 0
        delivery = await self._deliver("events_api", envelope, retry_num=attempt, retry_reason=retry_reason or "")
        if not delivery.acked:
            self.pending_redeliveries.append(
                {
                    "event_id": envelope["event_id"],
                    "envelope": envelope,
                    "retry_num": attempt,
                    "reason": _reason(delivery),
                }
            )
        return delivery

    def _new_event_id(self) -> str:
        return self.workspace.ids.next("Ev", width=12)

    async def redeliver_unacked(self) -> list[Delivery]:
        results = []
        for item in list(self.pending_redeliveries):
            item["retry_num"] += 1
            delivery = await self._deliver(
                "events_api", item["envelope"], retry_num=item["retry_num"], retry_reason=item["reason"]
            )
            results.append(delivery)
            if delivery.acked or item["retry_num"] >= MAX_RETRIES:
                self.pending_redeliveries.remove(item)
            if not delivery.acked:
                item["reason"] = _reason(delivery)
                if item["retry_num"] >= MAX_RETRIES:
                    self.dropped_deliveries.append(item)
        return results

    async def post_message(
        self,
        channel: str,
        *,
        user: str | None = None,
        text: str = "",
        ts: str | None = None,
        at: datetime | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        bot_id: str | None = None,
        username: str | None = None,
        subtype: str | None = None,
        files: list[JsonDict] | None = None,
        blocks: list[JsonDict] | None = None,
        event_id: str | None = None,
        deliver: bool = True,
    ) -> tuple[str, Delivery | None]:
        message = self._seeded_message(
            user=user, text=text, thread_ts=thread_ts, reply_broadcast=reply_broadcast,
            bot_id=bot_id, username=username, subtype=subtype, files=files, blocks=blocks,
        )  # fmt: skip
        if ts is None and at is not None:
            ts = self.workspace.next_ts(channel, at)
        stored = self.workspace.store_message(channel, message, ts=ts)
        if not deliver:
            return stored["ts"], None
        event = payloads.message_event(self.workspace, channel, stored)
        return stored["ts"], await self.deliver_event(event, event_id=event_id)

    def _seeded_message(
        self,
        *,
        user: str | None,
        text: str,
        thread_ts: str | None,
        reply_broadcast: bool,
        bot_id: str | None,
        username: str | None,
        subtype: str | None,
        files: list[JsonDict] | None,
        blocks: list[JsonDict] | None,
    ) -> JsonDict:
        message: JsonDict = {"text": text, "team": self.workspace.team_id}
        if bot_id is not None:
            # Integrations (webhooks, other apps) post as bot_message without a user.
            message.update({"subtype": "bot_message", "bot_id": bot_id, "username": username or bot_id})
        else:
            message["user"] = user
            message["client_msg_id"] = IdFactory.opaque(32)
        if blocks is not None:
            message["blocks"] = blocks
        if thread_ts is not None:
            message["thread_ts"] = thread_ts
            if reply_broadcast:
                message["subtype"] = "thread_broadcast"
        if files:
            message["subtype"] = "file_share"
            message["upload"] = True
            message["files"] = [self.workspace.register_shared_file(f, user=user or "") for f in files]
        if subtype is not None:
            message["subtype"] = subtype
        return message

    async def edit_message(self, channel: str, ts: str, text: str, *, at: datetime | None = None) -> Delivery:
        message = self.workspace.find_message(channel, ts)
        editor = str(message.get("user") or message.get("bot_id") or "")
        previous, current = self.workspace.edit_message(channel, ts, {"text": text}, editor=editor)
        if at is not None:
            current["edited"]["ts"] = self.workspace.next_ts(channel, at)
        event = payloads.message_changed_event(self.workspace, channel, previous, current)
        return await self.deliver_event(event)

    async def delete_message(self, channel: str, ts: str, *, at: datetime | None = None) -> Delivery:
        previous = self.workspace.delete_message(channel, ts)
        event = payloads.message_deleted_event(self.workspace, channel, previous)
        if at is not None:
            event["ts"] = event["event_ts"] = self.workspace.next_ts(channel, at)
        return await self.deliver_event(event)

    async def add_reaction(self, channel: str, ts: str, name: str, *, user: str) -> Delivery:
        message = self.workspace.react(channel, ts, name, user)
        return await self._deliver_reaction("reaction_added", channel, message, name, user)

    async def remove_reaction(self, channel: str, ts: str, name: str, *, user: str) -> Delivery:
        message = self.workspace.unreact(channel, ts, name, user)
        return await self._deliver_reaction("reaction_removed", channel, message, name, user)

    async def _deliver_reaction(self, kind: str, channel: str, message: JsonDict, name: str, user: str) -> Delivery:
        event = payloads.reaction_event(
            kind, user=user, name=name, channel_id=channel, message=message, event_ts=self.workspace.now_ts()
        )
        return await self.deliver_event(event)

    # ----- interactivity -----------------------------------------------------------------------

    async def submit_view(self, view_id: str, values: dict[str, dict[str, JsonDict]], *, user_id: str) -> Delivery:
        record = self._open_view_record(view_id)
        record["view"]["state"] = {"values": values}
        trigger_id = self.workspace.issue_trigger(user_id, view_id=view_id)
        payload = payloads.view_submission(self.workspace, user_id=user_id, trigger_id=trigger_id, view=record["view"])
        delivery = await self._deliver("interactive", payload)
        self._apply_view_answer(record, delivery)
        return delivery

    def _open_view_record(self, view_id: str) -> JsonDict:
        record = self.views.get(view_id)
        if record is None or record["closed"]:
            raise LookupError(f"view {view_id} is not open (known views: {sorted(self.views)})")
        return record

    def _apply_view_answer(self, record: JsonDict, delivery: Delivery) -> None:
        """Honour response_action the way Slack does; a failed ack leaves the modal open."""
        if delivery.status != 200:
            return
        answer = delivery.json if isinstance(delivery.json, dict) else {}
        action = answer.get("response_action")
        if action == "errors":
            record["errors"] = answer.get("errors", {})
        elif action == "update":
            self.workspace.update_view(record, limits.check_view(answer.get("view")))
        elif action == "push":
            self.workspace.stack_view(record, limits.check_view(answer.get("view")), trigger_id=None)
        else:
            self.workspace.close_view(record["id"], whole_stack=action == "clear")

    async def click_button(
        self,
        *,
        user_id: str,
        action_id: str,
        value: str | None = None,
        block_id: str | None = None,
        channel: str | None = None,
        message_ts: str | None = None,
        view_id: str | None = None,
    ) -> Delivery:
        if view_id is not None:
            return await self._click_in_view(user_id, action_id, value, block_id, view_id)
        if channel is None:
            raise ValueError("click_button needs channel (+ message_ts) or view_id")
        return await self._click_in_message(user_id, action_id, value, block_id, channel, message_ts)

    async def open_home(self, user_id: str) -> Delivery:
        """The person opens the app's Home tab: Slack sends app_home_opened."""
        event: JsonDict = {"type": "app_home_opened", "user": user_id, "channel": self.workspace.open_dm(user_id),
                 "tab": "home", "event_ts": self.workspace.next_ts("home")}  # fmt: skip
        if user_id in self.workspace.homes:
            event["view"] = self.workspace.homes[user_id]
        return await self.deliver_event(event)

    async def click_in_home(self, user_id: str, action_id: str, value: str | None = None) -> Delivery:
        view = self.workspace.homes[user_id]
        action = self._action_from(view.get("blocks") or [], action_id, value, None, where=f"home of {user_id}")
        trigger_id = self.workspace.issue_trigger(user_id)
        payload = payloads.view_block_actions(
            self.workspace, user_id=user_id, trigger_id=trigger_id, view=view, action=action
        )
        return await self._deliver("interactive", payload)

    async def _click_in_view(
        self, user_id: str, action_id: str, value: str | None, block_id: str | None, view_id: str
    ) -> Delivery:
        view = self._open_view_record(view_id)["view"]
        action = self._action_from(view.get("blocks") or [], action_id, value, block_id, where=f"view {view_id}")
        trigger_id = self.workspace.issue_trigger(user_id, view_id=view_id)
        payload = payloads.view_block_actions(
            self.workspace, user_id=user_id, trigger_id=trigger_id, view=view, action=action
        )
        return await self._deliver("interactive", payload)

    async def _click_in_message(
        self,
        user_id: str,
        action_id: str,
        value: str | None,
        block_id: str | None,
        channel: str,
        message_ts: str | None,
    ) -> Delivery:
        message = None
        if message_ts is not None:
            try:
                message = self.workspace.find_message(channel, message_ts)
            except SlackError as error:
                raise LookupError(f"no message {message_ts} in {channel}") from error
            blocks = message.get("blocks") or []
            action = self._action_from(blocks, action_id, value, block_id, where=f"message {message_ts}")
        else:
            # An ephemeral message: not stored, so nothing to check the button against.
            action = payloads.button_action(action_id=action_id, block_id=block_id or "", value=value, element=None)
        payload = payloads.message_block_actions(
            self.workspace,
            user_id=user_id,
            trigger_id=self.workspace.issue_trigger(user_id),
            channel_id=channel,
            message=message,
            message_ts=message_ts,
            response_url=self._issue_response_url(channel_id=channel, user_id=user_id, message_ts=message_ts),
            action=action,
        )
        return await self._deliver("interactive", payload)

    @staticmethod
    def _action_from(
        blocks: list[JsonDict], action_id: str, value: str | None, block_id: str | None, *, where: str
    ) -> JsonDict:
        # Slack only sends actions for elements that exist, so a missing one is a test bug.
        found = payloads.find_element(blocks, action_id)
        if found is None:
            raise LookupError(f"no element with action_id {action_id!r} in {where}")
        found_block_id, element = found
        return payloads.button_action(
            action_id=action_id, block_id=block_id or found_block_id, value=value, element=element
        )

    # ----- waiting -----------------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Poll until predicate() holds; lazy listeners act after the ack, so tests wait."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise AssertionError(f"condition not met within {timeout}s: {_describe(predicate)}")
            await asyncio.sleep(0.01)


def _reason(delivery: Delivery) -> str:
    return "http_timeout" if delivery.body == TIMEOUT_BODY else "http_error"


def _describe(predicate: Callable[[], bool]) -> str:
    try:
        return inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return repr(predicate)
