"""The running bot: database, Slack identity, Bolt app, scheduler and one transport.
Production, the tests and the demo all start it through this class."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.app import TrackedLazyRunner, build_app
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.domain.outbox import StepKind
from bot.http import Handler as WebHandler
from bot.http import build_web_app
from bot.jobs.scheduler import SweepSchedule, start_scheduler
from bot.listeners import events
from bot.listeners.alerts import alert_handler
from bot.services import postmortem, step_handlers
from bot.services.context import Context
from bot.services.outbox import Handler, OutboxWorker
from bot.services.reconcile import Reconciler
from bot.slack_api import Slack, SlackError, make_client
from storage import DATABASE_ERRORS, Database, Store

log = logging.getLogger(__name__)
SHUTDOWN_GRACE_SECONDS = 10
STEP_HANDLERS: dict[StepKind, Handler] = {
    StepKind.POST: step_handlers.run_post,
    StepKind.ANNOUNCE_TASK: step_handlers.run_announce_task,
    StepKind.REFRESH_SUMMARY: step_handlers.run_refresh,
    StepKind.UPLOAD_POSTMORTEM: postmortem.run_upload,
    StepKind.POSTMORTEM_SUMMARY: postmortem.run_summary,
    StepKind.UPDATE_REMINDER: step_handlers.run_update_reminder,
    StepKind.FINISH_OPENING: step_handlers.run_finish_opening,
    StepKind.STAKEHOLDER_UPDATE: step_handlers.run_stakeholder_update,
    StepKind.CHANNEL_POST: step_handlers.run_channel_post,
}


class StartupError(Exception):
    """The bot cannot start; the message is one line for the operator."""


class Runtime:
    def __init__(self, settings: Settings, clock: Clock | None = None, run_scheduler: bool = True) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.run_scheduler = run_scheduler
        self.db = Database(settings.database_url)
        self.ctx: Context | None = None
        self.reconciler: Reconciler | None = None
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._scheduler: SweepSchedule | None = None
        self._lazy: TrackedLazyRunner | None = None
        self.outbox: OutboxWorker | None = None

    async def start(self) -> None:
        await self.db.start()
        slack = Slack(
            make_client(self.settings.slack_bot_token.get_secret_value(), self.settings.slack_api_url)
        )
        try:
            identity = await slack.identity()
        except SlackError as exc:
            await self.db.close()
            raise StartupError(
                f"SLACK_BOT_TOKEN was refused by Slack ({exc.code}): check the token and SLACK_API_URL"
            ) from None
        store = Store(self.db)
        await store.save_workspace(identity.team_id, identity.url, identity.bot_user_id)
        self.ctx = Context(self.settings, store, slack, self.clock, identity)
        self.reconciler = Reconciler(self.ctx)
        self.outbox = OutboxWorker(self.ctx, STEP_HANDLERS)
        self.outbox.start()  # steps left by a previous run (or another replica) go out now
        app, self._lazy = build_app(self.ctx)
        await (self._start_socket(app) if self.settings.socket_mode else self._start_http(app))
        if self.run_scheduler:
            self._scheduler = start_scheduler(self.ctx, self.reconciler)

    async def _start_http(self, app: AsyncApp) -> None:
        secret = self.settings.slack_signing_secret
        assert secret is not None, "HTTP mode needs the signing secret (config checks it)"
        await self._listen(
            build_web_app(app, secret.get_secret_value(), self.db, self.readiness, self._alerts(), self._on_message)
        )
        log.info(
            "HTTP mode: listening on %s:%s (POST /slack/events, GET /healthz, GET /readyz)",
            self.settings.host, self.port,
        )  # fmt: skip

    async def _on_message(self, event: dict[str, Any], event_id: str | None) -> None:
        assert self.ctx is not None
        await events.handle_message(self.ctx, event, event_id)

    def _alerts(self) -> WebHandler | None:
        assert self.ctx is not None
        return alert_handler(self.ctx)

    async def _listen(self, web_app: web.Application) -> None:
        self._runner = web.AppRunner(web_app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def readiness(self) -> tuple[bool, dict[str, object]]:
        """What /readyz reports: the database, and how far behind the outbox is."""
        assert self.ctx is not None
        try:
            pending, oldest = await self.ctx.store.outbox.backlog(self.clock.now())
        except DATABASE_ERRORS:
            return False, {"ok": False, "database": False, "error": "database unreachable"}
        return True, {"ok": True, "database": True, "outbox_pending": pending,
                      "outbox_oldest_s": round(oldest or 0.0, 1)}  # fmt: skip

    async def _start_socket(self, app: AsyncApp) -> None:
        token = self.settings.slack_app_token
        assert token is not None
        await self._check_app_token(token.get_secret_value())
        self._socket = AsyncSocketModeHandler(app, token.get_secret_value())
        self._socket.client.message_listeners.append(self._on_socket_message)
        await self._socket.connect_async()
        await self._listen(build_web_app(None, None, self.db, self.readiness, self._alerts()))
        log.info("Socket Mode: connected; %s:%s serves GET /healthz, GET /readyz", self.settings.host, self.port)

    async def _on_socket_message(self, _client: object, message: dict[str, object], _raw: str | None) -> None:
        """Slack says hello on every (re)connection: what was sent while the socket was down is
        only in the channels' history now. The scheduler's own first pass covers the first hello."""
        if message.get("type") == "hello" and self._scheduler is not None:
            self._scheduler.reconcile_soon()

    async def _check_app_token(self, token: str) -> None:
        """slack-sdk retries a refused app token forever; ask once so a bad token ends the start."""
        probe = Slack(make_client(token, self.settings.slack_api_url))
        try:
            await probe.call("apps.connections.open", app_token=token)
        except SlackError as exc:
            await self.db.close()
            raise StartupError(
                f"SLACK_APP_TOKEN was refused by Slack ({exc.code}): use an App-Level Token with connections:write"
            ) from None
        finally:
            await _close_client(probe)

    async def stop(self) -> None:
        """Stops taking work, lets in-flight work finish, then closes the database."""
        if self._scheduler is not None:
            await self._scheduler.stop()  # a sweep in progress finishes before the database closes
        if self._socket is not None:
            await self._socket.close_async()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.idle(SHUTDOWN_GRACE_SECONDS)
        if self.outbox is not None:
            await self.outbox.stop()  # what is left waits in the database for the next start
        if self.ctx is not None:
            await self.ctx.store.close()
            await _close_client(self.ctx.slack)
        await self.db.close()

    async def idle(self, timeout: float = SHUTDOWN_GRACE_SECONDS) -> bool:
        """Waits until no work started by a Slack request is running and no outbox step is due
        (steps waiting out a backoff are not waited for)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        drained = await self._lazy.drain(timeout) if self._lazy else True
        if self.outbox is None:
            return drained
        return drained and await self.outbox.settle(max(0.0, deadline - loop.time()))


async def _close_client(slack: Slack) -> None:
    session = getattr(slack.client, "session", None)
    if session is not None and not session.closed:
        await session.close()
