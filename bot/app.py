"""build_app: the Bolt app with every listener and one error handler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.lazy_listener.async_internals import to_runnable_function
from slack_bolt.lazy_listener.async_runner import AsyncLazyListenerRunner
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.listeners import actions, commands, events, views
from bot.services.context import Context
from bot.slack_api import make_client

log = logging.getLogger(__name__)


class TrackedLazyRunner(AsyncLazyListenerRunner):
    """Bolt's asyncio lazy runner, but it keeps its tasks, so shutdown can wait for work in
    flight and a caller can wait until every started piece of work is done."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, function: Callable[..., Awaitable[None]], request: AsyncBoltRequest) -> None:
        task = asyncio.ensure_future(
            to_runnable_function(internal_func=function, logger=self.logger, request=request)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self, timeout: float) -> bool:
        """Waits for running lazy work (and work it starts); False if some was still running."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.tasks:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.wait(set(self.tasks), timeout=remaining)
        return True


def build_app(ctx: Context) -> tuple[AsyncApp, TrackedLazyRunner]:
    """process_before_response: the ack goes out only after the listener's work is committed,
    so Slack redelivers anything we did not finish. Slow work runs in lazy listeners."""
    identity = ctx.identity
    token = ctx.slack.client.token or ""

    async def authorize(**_: Any) -> AuthorizeResult:
        # The identity comes from auth.test at start-up, so no request waits on Slack for it.
        return AuthorizeResult(
            enterprise_id=None,
            team_id=identity.team_id,
            bot_token=token,
            bot_id=identity.bot_id,
            bot_user_id=identity.bot_user_id,
        )

    # Bolt builds each request's client from this one and the token `authorize` returns; giving
    # it no token of its own is what keeps it from warning that one of the two is ignored.
    app_client = make_client("", ctx.settings.slack_api_url)
    app = AsyncApp(
        client=app_client,
        authorize=authorize,
        signing_secret=ctx.settings.slack_signing_secret.get_secret_value()
        if ctx.settings.slack_signing_secret
        else "",
        # Signatures are checked by the HTTP server (bot/http.py) before parsing; Socket Mode has none.
        request_verification_enabled=False,
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )
    lazy_runner = TrackedLazyRunner(logging.getLogger("slack_bolt.lazy"))
    # Bolt takes no lazy runner argument; the listener runner's attribute is its only seam.
    app._async_listener_runner.lazy_listener_runner = lazy_runner
    # Bolt tries listeners in order until one matches: channel messages are by far the most
    # frequent request, so their listeners come first.
    for surface in (events, commands, views, actions):
        surface.register(app, ctx)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled %s while handling %s", type(error).__name__, _kind(body), exc_info=error)

    return app, lazy_runner


def _kind(body: dict[str, Any]) -> str:
    return str(body.get("command") or body.get("type") or (body.get("event") or {}).get("type") or "request")
