"""Logging set-up. Tokens never reach a log line, whoever logs them (slack-sdk logs requests at DEBUG)."""

from __future__ import annotations

import logging
import re

TOKEN = re.compile(r"\b(xox[abposr]|xapp)-[A-Za-z0-9-]+")


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if TOKEN.search(message):
            record.msg = TOKEN.sub(r"\1-[redacted]", message)
            record.args = None
        return True


class DropBoltTokenNotices(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment itself and then warns that it is unused,
    because the app authorizes through `authorize` (bot/app.py). True, expected, and noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("`token`" in message and ("will be unused" in message or "will be ignored" in message))


def configure(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("slack_bolt.AsyncApp").addFilter(DropBoltTokenNotices())
    # aiohttp's access log would print every Slack request; keep it for DEBUG.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
