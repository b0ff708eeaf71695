"""POST /alerts/<source>: alerting systems declare and follow incidents. Thin: authenticate,
parse, hand the notice to the service, answer the machine."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.domain.alerts import AlertFormatError, parse
from bot.services import alerts
from bot.services.context import Context
from storage import DATABASE_ERRORS

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-PagerDuty-Signature"


def alert_handler(ctx: Context) -> Callable[[web.Request], Awaitable[web.Response]] | None:
    """The endpoint, or None (404) while ALERT_WEBHOOK_TOKEN is unset."""
    token = ctx.settings.alert_webhook_token
    if token is None:
        log.info("alert intake is off: set ALERT_WEBHOOK_TOKEN to accept POST /alerts/<source>")
        return None
    secret = ctx.settings.pagerduty_webhook_secret

    async def receive(request: web.Request) -> web.Response:
        source = request.match_info["source"]
        body = await request.read()  # over 1 MiB: aiohttp answers 413 (client_max_size)
        if not _bearer_ok(request, token.get_secret_value()):
            return _error(401, "missing or wrong Authorization: Bearer token")
        if source == "pagerduty" and secret is not None and not _signed(request, body, secret.get_secret_value()):
            return _error(401, f"missing or wrong {SIGNATURE_HEADER}")
        try:
            taken = await alerts.take(ctx, parse(source, body))
        except AlertFormatError as exc:
            return _error(400, str(exc))
        except DATABASE_ERRORS as exc:
            log.warning("alert from %s not stored: database unreachable (%s)", source, type(exc).__name__)
            return _error(503, "the database is unreachable; send it again")  # Alertmanager retries
        ref = taken.incident.ref if taken.incident else None
        return web.json_response({"incident": ref, "created": taken.created}, status=202)

    return receive


def _bearer_ok(request: web.Request, token: str) -> bool:
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def _signed(request: web.Request, body: bytes, secret: str) -> bool:
    """PagerDuty signs the raw body (HMAC-SHA256, hex) and may list several `v1=` signatures
    while a secret is being rotated: any one matching is enough."""
    expected = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = [s.strip() for s in request.headers.get(SIGNATURE_HEADER, "").split(",")]
    return any(hmac.compare_digest(s.encode(), expected.encode()) for s in given if s)


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)
