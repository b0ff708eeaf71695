"""The error boundary for work that runs after the ack (Bolt's lazy listeners swallow their
exceptions into a log line, so nobody would hear of a failure otherwise)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from bot.services.context import Context
from bot.services.notify import tell
from bot.ui import messages
from storage import DATABASE_ERRORS

log = logging.getLogger(__name__)


async def guarded(ctx: Context, body: dict[str, Any], what: str, work: Awaitable[None]) -> None:
    """Runs `work`; on any failure logs it with its traceback and tells the person who acted."""
    try:
        await work
    except DATABASE_ERRORS as exc:
        log.warning("%s: database unreachable: %s", what, type(exc).__name__)
        await _tell_actor(ctx, body, messages.database_down(what))
    except Exception:
        log.exception("%s failed", what)
        await _tell_actor(ctx, body, messages.something_failed(what))


async def _tell_actor(ctx: Context, body: dict[str, Any], text: str) -> None:
    user = (body.get("user") or {}).get("id")
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    if user:
        await tell(ctx, str(user), channel, {"text": text})
