"""Reading Slack payloads into plain values (the only place that knows their shape)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from bot.domain.closeout import CloseInput, TaskRow
from bot.domain.models import Severity, Status
from bot.ui.ids import FIELD, Block, task_block


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


def status_form(view: dict[str, Any]) -> tuple[Status, str]:
    selected = state_value(view, Block.STATUS).get("selected_option") or {}
    return Status(selected.get("value", Status.INVESTIGATING.value)), text_of(view, Block.STATUS_TEXT).strip()


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
