"""Small value types shared by the local Slack modules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """One Web API call as the fake received and answered it."""

    method: str
    args: dict[str, Any]
    response: dict[str, Any]
    status: int
    at: datetime


@dataclass(frozen=True)
class Delivery:
    """Outcome of sending something to the bot.

    `status` is the HTTP status the bot answered with, 200 for a Socket Mode ack,
    or 0 when nothing usable came back (connection refused, timeout).
    """

    status: int
    body: str
    json: Any | None
    elapsed: float

    @property
    def acked(self) -> bool:
        return self.status == 200


class SlackError(Exception):
    """A Slack Web API error answer: HTTP 200 with {"ok": false, "error": ...}."""

    def __init__(self, error: str, messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.messages: list[str] = messages or []

    def as_response(self) -> JsonDict:
        body: JsonDict = {"ok": False, "error": self.error}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return body
