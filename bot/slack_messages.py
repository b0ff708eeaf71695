"""Reading Slack messages into timeline entries: the same reading for a live event and for a
message read back from the channel's history, so both land on the same row."""

from __future__ import annotations

from typing import Any

from bot.domain.models import EntryKind, FileRef, TimelineEntry
from bot.domain.rules import ts_to_datetime
from bot.slack_api import Identity

# Message subtypes that are things people (or integrations) said; the rest (joins, topic
# changes, pins) are Slack's own bookkeeping and stay out of the timeline.
RECORDED_SUBTYPES = frozenset({None, "bot_message", "file_share", "thread_broadcast", "me_message"})


def is_recorded_message(message: dict[str, Any]) -> bool:
    return message.get("subtype") in RECORDED_SUBTYPES and bool(message.get("ts"))


def files_of(message: dict[str, Any]) -> list[FileRef]:
    return [
        FileRef(name=str(f.get("name") or f.get("title") or "file"), url=str(f.get("permalink") or ""))
        for f in message.get("files") or []
        if isinstance(f, dict)
    ]


def entry_from_message(message: dict[str, Any], channel_id: str, incident_id: int) -> TimelineEntry:
    """A timeline entry stamped with the message's own ts, never the time it reached us."""
    is_bot = message.get("subtype") == "bot_message" or (message.get("bot_id") and not message.get("user"))
    ts = str(message["ts"])
    return TimelineEntry(
        incident_id=incident_id,
        channel_id=channel_id,
        ts=ts,
        thread_ts=message.get("thread_ts"),
        occurred_at=ts_to_datetime(ts),
        kind=EntryKind.BOT_MESSAGE if is_bot else EntryKind.MESSAGE,
        author_id=message.get("user") or message.get("bot_id"),
        author_name=_bot_name(message) if is_bot else None,
        text=message_text(message),
        files=files_of(message),
        is_broadcast=message.get("subtype") == "thread_broadcast",
    )


def message_text(message: dict[str, Any]) -> str:
    """What the message says. Alerting integrations often post an empty `text` and put the
    content in attachments or blocks; the timeline needs those words too."""
    text = str(message.get("text") or "").strip()
    if text:
        return text
    parts = [_attachment_text(a) for a in message.get("attachments") or [] if isinstance(a, dict)]
    parts += [_block_text(b) for b in message.get("blocks") or [] if isinstance(b, dict)]
    return "\n".join(p for p in parts if p)


def _attachment_text(attachment: dict[str, Any]) -> str:
    fields = [attachment.get(k) for k in ("pretext", "title", "text")]
    words = " — ".join(str(f).strip() for f in fields if f and str(f).strip())
    return words or str(attachment.get("fallback") or "").strip()


def _block_text(block: dict[str, Any]) -> str:
    if block.get("type") in {"section", "header"}:
        text = block.get("text") or {}
        return str(text.get("text") or "").strip() if isinstance(text, dict) else ""
    return ""


def _bot_name(message: dict[str, Any]) -> str | None:
    profile = message.get("bot_profile") or {}
    return message.get("username") or profile.get("name")


def is_own(identity: Identity, message: dict[str, Any]) -> bool:
    """The bot records its own posts when it makes them; Slack's copies of them are skipped."""
    return message.get("user") == identity.bot_user_id or (
        bool(identity.bot_id) and message.get("bot_id") == identity.bot_id
    )


def is_people_message(identity: Identity, message: dict[str, Any]) -> bool:
    """A message the timeline keeps: said by a person or an integration, not by this bot."""
    return is_recorded_message(message) and not is_own(identity, message)
