"""The Slack steps services store with their changes (pure builders; step_handlers carries
them out)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from bot.domain.models import EntryKind, Incident, Task
from bot.domain.outbox import NewStep, StepKind, incident_lane, message_lane, opening_lane, step
from bot.ui import messages

# The declare request opens the channel itself, at once; this step is the net under it: if that
# attempt fails on a Slack hiccup, or its process dies, the opening finishes without anyone.
OPENING_SAFETY_NET = timedelta(seconds=30)

# Slack posts open with an emoji code; the timeline (and the Markdown postmortem) keeps the words.
LEADING_EMOJI = re.compile(r"^(:[a-z0-9_+-]+:\s*)+")


def post(
    incident: Incident,
    text: str,
    at: datetime,
    author: str | None,
    *,
    kind: EntryKind = EntryKind.SYSTEM,
    entry_text: str | None = None,
    actor_channel: str | None = None,
    author_name: str | None = None,
    blocks: list[dict[str, Any]] | None = None,
    record: bool = True,
) -> NewStep:
    """A post in the incident channel that also becomes a timeline entry at `at`. An incident
    still opening has no channel yet: the step then waits for it."""
    return step(
        StepKind.POST, incident_lane(incident.id), at, (author, actor_channel or incident.channel_id),
        incident_id=incident.id, channel=incident.channel_id, text=text, said_at=at.isoformat(), author=author,
        entry_kind=kind.value, entry_text=entry_text if entry_text is not None else LEADING_EMOJI.sub("", text),
        author_name=author_name, blocks=blocks, record=record,
    )  # fmt: skip


def refresh(incident: Incident, at: datetime) -> NewStep:
    return step(StepKind.REFRESH_SUMMARY, incident_lane(incident.id), at, incident_id=incident.id)


def announce_task(task: Task, event: str, by: str, at: datetime) -> NewStep:
    """`event` is "added" or "done"; the text is written from the task when the step runs."""
    return step(StepKind.ANNOUNCE_TASK, incident_lane(task.incident_id), at, (by, None),
                task_id=task.id, event=event, by=by, said_at=at.isoformat())  # fmt: skip


def change(incident: Incident, user_id: str, what: str, at: datetime) -> list[NewStep]:
    """A change said in the channel, the pinned summary and topic brought up to date, and the
    people outside told in the announcement's thread."""
    said = messages.change_post(user_id, what)
    return [post(incident, said, at, user_id), refresh(incident, at), stakeholders(incident, said, at)]


def stakeholders(incident: Incident, text: str, at: datetime) -> NewStep:
    """Run as the incident is when the step runs: a private one, or one never announced, gets
    nothing outside its channel."""
    return step(StepKind.STAKEHOLDER_UPDATE, incident_lane(incident.id), at, incident_id=incident.id,
                text=f"{incident.ref}: {text}")  # fmt: skip


def update_reminder(task: Task, message: tuple[str, str], at: datetime) -> NewStep:
    """The reminder DM at `message` (channel, ts) rewritten to the task as it is when the step runs."""
    channel, ts = message
    return step(StepKind.UPDATE_REMINDER, message_lane(channel, ts), at, task_id=task.id, channel=channel, ts=ts)


def finish_opening(incident: Incident, at: datetime, delay: timedelta = OPENING_SAFETY_NET) -> NewStep:
    """No actor: the declarer hears of the first attempt (and gets a Retry button) directly.
    An incident nobody declared by hand (an alert) is opened by this step alone, at once."""
    # At once, it goes first in the incident's own lane, so what the alert says is posted after
    # the channel is made; later, apart, so that the posts of an open incident never wait for it.
    lane = opening_lane(incident.id) if delay else incident_lane(incident.id)
    later = step(StepKind.FINISH_OPENING, lane, at, incident_id=incident.id)
    return later.model_copy(update={"not_before": at + delay})


def channel_post(channel: str, text: str, at: datetime) -> NewStep:
    return step(StepKind.CHANNEL_POST, f"channel:{channel}", at, channel=channel, text=text)
