"""The bot's one door to Slack's Web API: retries where safe, errors as SlackError."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.rules import CHANNEL_NAME_LIMIT

log = logging.getLogger(__name__)

# Calls that change nothing, or land on the same state when repeated: safe to send again after
# a 5xx or a timeout, when we cannot know whether Slack acted on the first attempt.
IDEMPOTENT_METHODS = frozenset(
    {
        "auth.test",
        "users.info",
        "conversations.info",
        "conversations.history",
        "conversations.replies",
        "conversations.invite",
        "conversations.setTopic",
        "conversations.open",
        "chat.update",
        "chat.getPermalink",
        "pins.add",
        "views.update",
        "files.info",
    }
)
HTTP_TIMEOUT_SECONDS = 10
MAX_SEARCH_PAGES = 10


# Failures that say nothing about the request itself: the same call may work later.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class SlackError(Exception):
    """A Slack call failed; `code` is Slack's error string (or a transport failure)."""

    def __init__(self, method: str, code: str, retry_after: float | None = None) -> None:
        super().__init__(f"{method}: {code}")
        self.method = method
        self.code = code
        self.retry_after = retry_after  # seconds, when Slack said how long to wait (429)

    @property
    def transient(self) -> bool:
        return (
            self.code in TRANSIENT_ERRORS
            or self.code.startswith("transport_error")
            or (self.code.startswith("http_") and self.code[5:].isdigit() and int(self.code[5:]) >= 500)
        )


class SafeRetryHandler(AsyncRetryHandler):
    """Retries a 5xx or a timeout only for idempotent methods."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if request.url.rsplit("/", 1)[-1] not in IDEMPOTENT_METHODS:
            return False
        if response is not None:
            return response.status_code >= 500
        return isinstance(error, asyncio.TimeoutError | ClientError)


def make_client(token: str, base_url: str) -> AsyncWebClient:
    return AsyncWebClient(
        token=token or None,
        base_url=base_url,
        timeout=HTTP_TIMEOUT_SECONDS,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            SafeRetryHandler(max_retry_count=2),
        ],
    )


@dataclass(frozen=True)
class Identity:
    team_id: str
    url: str
    bot_user_id: str
    bot_id: str


class Slack:
    """Thin wrapper over AsyncWebClient with the calls the bot makes."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def call(self, method: str, **args: Any) -> dict[str, Any]:
        try:
            # slack-sdk's typed method picks the encoding each Slack method accepts.
            send = getattr(self.client, method.replace(".", "_"))
            response = await send(**_drop_none(args))
        except SlackApiError as exc:
            raise SlackError(method, _error_code(exc), _retry_after(exc)) from None
        except (TimeoutError, ClientError) as exc:
            raise SlackError(method, f"transport_error ({type(exc).__name__})") from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def identity(self) -> Identity:
        data = await self.call("auth.test")
        return Identity(data["team_id"], data.get("url", ""), data["user_id"], data.get("bot_id", ""))

    async def create_channel(self, base_name: str, is_private: bool) -> dict[str, Any]:
        """Creates a channel, trying other names while Slack says name_taken."""
        for name in _name_candidates(base_name):
            try:
                data = await self.call("conversations.create", name=name, is_private=is_private)
            except SlackError as exc:
                if exc.code == "name_taken":
                    continue
                raise
            return dict(data["channel"])
        raise SlackError("conversations.create", "name_taken")

    async def invite(self, channel: str, user_ids: list[str]) -> None:
        try:
            await self.call("conversations.invite", channel=channel, users=",".join(user_ids))
        except SlackError as exc:
            if exc.code not in {"already_in_channel", "cant_invite_self"}:
                raise

    async def post(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None, **extra: Any) -> str:
        data = await self.call(
            "chat.postMessage", channel=channel, text=text, blocks=blocks, unfurl_links=False, **extra
        )
        return str(data["ts"])

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        await self.call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks or [])

    async def pin(self, channel: str, ts: str) -> None:
        try:
            await self.call("pins.add", channel=channel, timestamp=ts)
        except SlackError as exc:
            if exc.code != "already_pinned":
                raise

    async def set_topic(self, channel: str, topic: str) -> None:
        await self.call("conversations.setTopic", channel=channel, topic=topic[:250])

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        await self.call("views.open", trigger_id=trigger_id, view=view)

    async def update_view(self, view_id: str, view: dict[str, Any], view_hash: str | None = None) -> None:
        await self.call("views.update", view_id=view_id, view=view, hash=view_hash)

    async def open_dm(self, user_id: str) -> str:
        opened = await self.call("conversations.open", users=user_id)
        return str(opened["channel"]["id"])

    async def find_by_metadata(self, channel: str, event_type: str, payload: dict[str, Any]) -> str | None:
        """The ts of a recent message in `channel` the bot posted with this metadata, if any."""
        history = await self.call("conversations.history", channel=channel, limit=50, include_all_metadata=True)
        for message in history.get("messages") or []:
            metadata = message.get("metadata") or {}
            if metadata.get("event_type") == event_type and metadata.get("event_payload") == payload:
                return str(message["ts"])
        return None

    async def find_posted(
        self, channel: str, event_type: str, payload: dict[str, Any], since: str, thread_ts: str | None = None
    ) -> str | None:
        """The ts of the bot's message in `channel` (or in the thread of `thread_ts`), posted after
        `since`, stamped with this metadata. Reads every page from `since` on: a busy channel must
        not hide the message we look for."""
        cursor = None
        method, where = ("conversations.replies", {"ts": thread_ts}) if thread_ts else ("conversations.history", {})
        for _ in range(MAX_SEARCH_PAGES):
            page = await self.call(
                method, channel=channel, oldest=since, limit=200, include_all_metadata=True, cursor=cursor, **where
            )
            for message in page.get("messages") or []:
                metadata = message.get("metadata") or {}
                if metadata.get("event_type") == event_type and metadata.get("event_payload") == payload:
                    return str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    async def user_name(self, user_id: str) -> str:
        user = (await self.call("users.info", user=user_id))["user"]
        profile = user.get("profile") or {}
        return str(profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user["name"])

    async def reserve_upload(self, filename: str, content: str) -> tuple[str, str]:
        """files.getUploadURLExternal: the new file's id and where to send its bytes."""
        data = await self.call("files.getUploadURLExternal", filename=filename, length=len(content.encode()))
        return str(data["file_id"]), str(data["upload_url"])

    async def send_upload(self, upload_url: str, content: str) -> None:
        """The bytes of a reserved file. Sending them again replaces them, so a retry is harmless."""
        try:
            async with ClientSession() as session, session.post(
                upload_url, data=content.encode(), timeout=ClientTimeout(total=HTTP_TIMEOUT_SECONDS)
            ) as response:
                if response.status >= 500:
                    raise SlackError("files.upload", f"http_{response.status}")
                if response.status != 200:
                    raise SlackError("files.upload", "upload_refused")
        except (TimeoutError, ClientError) as exc:
            raise SlackError("files.upload", f"transport_error ({type(exc).__name__})") from None

    async def complete_upload(self, file_id: str, title: str, channel: str, comment: str) -> None:
        await self.call(
            "files.completeUploadExternal", files=[{"id": file_id, "title": title}], channel_id=channel,
            initial_comment=comment,
        )  # fmt: skip

    async def file_shared_in(self, file_id: str, channel: str) -> bool:
        """Whether a file is shared in the channel: a completed upload, seen from outside."""
        file = (await self.call("files.info", file=file_id)).get("file") or {}
        shares = file.get("shares") or {}
        places = set(file.get("channels") or []) | set(file.get("groups") or [])
        places |= set((shares.get("public") or {}).keys()) | set((shares.get("private") or {}).keys())
        return channel in places



def _retry_after(exc: SlackApiError) -> float | None:
    headers = exc.response.headers or {}
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return float(value[0] if isinstance(value, list) else value) if value else None
    except (TypeError, ValueError):
        return None


def _error_code(exc: SlackApiError) -> str:
    """Slack's error string; a 5xx or a proxy page has no JSON body, only a status."""
    data = exc.response.data
    if isinstance(data, dict):
        return str(data.get("error") or "unknown_error")
    return f"http_{exc.response.status_code}"


def _drop_none(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if v is not None}


def _name_candidates(base: str) -> list[str]:
    """inc-7-checkout, then inc-7-checkout-2 … all within Slack's 80 characters."""
    names = [base[:CHANNEL_NAME_LIMIT]]  # Slack's limit on channel names
    for n in range(2, 6):
        suffix = f"-{n}"
        names.append(base[: CHANNEL_NAME_LIMIT - len(suffix)].rstrip("-") + suffix)
    return names
