"""Reading Slack payloads into plain values (the only place that knows their shape)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from bot.domain.closeout import CloseInput, TaskRow
from bot.domain.models import EntryKind, FileRef, Severity, TimelineEntry
from bot.domain.rules import ts_to_datetime
from bot.ui.ids import FIELD, Block, task_block

# Message subtypes that are things people (or integrations) said; the rest (joins, topic
# changes, pins) are Slack's own bookkeeping and stay out of the timeline.
RECORDED_SUBTYPES = frozenset({None, "bot_message", "file_share", "thread_broadcast", "me_message"})


def state_value(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    values = view.get("state", {}).get("values", {})
    return dict(values.get(block_id, {}).get(FIELD, {}) or {})


def text_of(view: dict[str, Any], block_id: str) -> str:
    return str(state_value(view, block_id).get("value") or "")


def metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def start_form(view: dict[str, Any]) -> tuple[str, Severity, str, bool]:
    selected = state_value(view, Block.SEVERITY).get("selected_option") or {}
    severity = Severity(selected.get("value", Severity.SEV2.value))
    private = bool(state_value(view, Block.PRIVATE).get("selected_options"))
    return text_of(view, Block.TITLE), severity, text_of(view, Block.DESCRIPTION), private


def _picked_time(view: dict[str, Any], block_id: str) -> datetime | None:
    value = state_value(view, block_id).get("selected_date_time")
    return datetime.fromtimestamp(int(value), UTC) if value else None


def _picked_date(view: dict[str, Any], block_id: str) -> date | None:
    value = state_value(view, block_id).get("selected_date")
    return date.fromisoformat(value) if value else None


def close_form(view: dict[str, Any], rows: int) -> CloseInput:
    tasks = [
        TaskRow(
            row=row,
            description=text_of(view, task_block("description", row)),
            owner_id=state_value(view, task_block("owner", row)).get("selected_user"),
            due=_picked_date(view, task_block("due", row)),
        )
        for row in range(1, rows + 1)
    ]
    return CloseInput(
        impact=text_of(view, Block.IMPACT),
        impact_start=_picked_time(view, Block.IMPACT_START),
        impact_end=_picked_time(view, Block.IMPACT_END),
        root_cause=text_of(view, Block.ROOT_CAUSE),
        resolution=text_of(view, Block.RESOLUTION),
        improvements=text_of(view, Block.IMPROVEMENTS),
        tasks=tasks,
    )


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
