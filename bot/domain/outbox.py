"""Outbox steps: a Slack side effect stored with the state change that calls for it, carried out
afterwards by a worker that retries until Slack confirms. Pure values and rules; no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field

from bot.domain.models import Incident, Model, Task

# A worker holds a step this long; past it, the worker is presumed dead and another takes over
# (longer than any one attempt takes with slack-sdk's own retries and timeouts).
CLAIM_LEASE = timedelta(minutes=2)
FIRST_BACKOFF_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 300.0


class StepKind(StrEnum):
    POST = "post"  # chat.postMessage in an incident channel, recorded as a timeline entry
    ANNOUNCE_TASK = "announce_task"  # a new corrective task said in its incident's channel
    REFRESH_SUMMARY = "refresh_summary"  # the pinned summary and topic, from the incident as it is now
    UPLOAD_POSTMORTEM = "upload_postmortem"  # the Markdown file, shared in the incident channel
    POSTMORTEM_SUMMARY = "postmortem_summary"  # the summary post (with the file's link) in one channel
    UPDATE_REMINDER = "update_reminder"  # a reminder DM rewritten after Done or Snooze
    FINISH_OPENING = "finish_opening"  # channel, invite, topic, summary, pin, announcement
    CHANNEL_POST = "channel_post"  # a message in a channel outside any incident (the weekly digest)
    STAKEHOLDER_UPDATE = "stakeholder_update"  # the announcement kept current, the change in its thread


class StepState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"  # Slack refused it for good; the person who acted was told


class NewStep(Model):
    kind: StepKind
    lane: str  # steps of one lane run in the order they were stored (an incident's channel posts)
    key: str  # idempotency key: stored once, and stamped on what it posts so a retry can find it
    at: datetime  # when the change that calls for it was made (the injected clock's time)
    payload: dict[str, Any] = Field(default_factory=dict)
    actor_id: str | None = None  # told once if the step fails for good
    actor_channel: str | None = None
    not_before: datetime | None = None  # a safety net runs later than it is stored


class Step(NewStep):
    id: int
    team_id: str
    state: StepState
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    last_error: str | None = None
    progress: dict[str, Any] = Field(default_factory=dict)

    @property
    def may_have_acted(self) -> bool:
        """An earlier attempt got this far and may have reached Slack before it was cut off."""
        return self.attempts > 1


# What a change that also creates rows (tasks) calls for, given what it created.
StepsFor = Callable[[Incident, Sequence[Task]], Sequence["NewStep"]]


def no_steps(_incident: Incident, _created: Sequence[Task]) -> Sequence[NewStep]:
    return ()


def incident_lane(incident_id: int) -> str:
    return f"incident:{incident_id}"


def opening_lane(incident_id: int) -> str:
    """Apart from the incident's own lane: the posts of an open incident never wait for it."""
    return f"opening:{incident_id}"


def message_lane(channel: str, ts: str) -> str:
    """Rewrites of one message, in the order they were asked for."""
    return f"message:{channel}:{ts}"


def new_key(kind: StepKind, scope: str) -> str:
    return f"{kind.value}:{scope}:{uuid.uuid4().hex[:16]}"


def step(kind: StepKind, lane: str, at: datetime, actor: tuple[str | None, str | None] = (None, None),
         **payload: Any) -> NewStep:  # fmt: skip
    """A new step with a fresh key (each intent is its own step; the key makes storing it and
    carrying it out happen once)."""
    return NewStep(
        kind=kind, lane=lane, key=new_key(kind, lane), at=at, payload=payload, actor_id=actor[0], actor_channel=actor[1]
    )


def backoff(attempts: int, retry_after: float | None) -> timedelta:
    """Doubling waits from 2 s up to 5 minutes; never sooner than Slack's Retry-After."""
    seconds = min(FIRST_BACKOFF_SECONDS * 2 ** max(0, attempts - 1), MAX_BACKOFF_SECONDS)
    return timedelta(seconds=max(seconds, retry_after or 0.0))
