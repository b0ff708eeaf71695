"""Modals: start an incident, close an incident. Pure functions returning view payloads."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.domain.models import Incident, Severity, Status
from bot.ui.ids import FIELD, Action, Block, View, task_block
from bot.ui.text import truncate

MIN_TASK_ROWS = 3
MAX_TASK_ROWS = 10


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _input(
    block_id: str, label: str, element: dict[str, Any], optional: bool = False, hint: str = ""
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label),
        "element": element,
    }
    if optional:
        block["optional"] = True
    if hint:
        block["hint"] = _plain(hint)
    return block


def _text_input(multiline: bool = False, initial: str = "", max_length: int = 3000) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": FIELD,
        "multiline": multiline,
        "max_length": max_length,
    }
    if initial:
        element["initial_value"] = initial
    return element


def _severity_option(severity: Severity) -> dict[str, Any]:
    return {"text": _plain(severity.value.upper()), "value": severity.value}


def start_modal(origin_channel_id: str) -> dict[str, Any]:
    severity = {
        "type": "static_select",
        "action_id": FIELD,
        "options": [_severity_option(s) for s in Severity],
        "initial_option": _severity_option(Severity.SEV2),
    }
    private = {
        "type": "checkboxes",
        "action_id": FIELD,
        "options": [{"text": _plain("Private channel (only invited people can see it)"), "value": "private"}],
    }
    return {
        "type": "modal",
        "callback_id": View.START,
        "private_metadata": json.dumps({"origin": origin_channel_id}),
        "title": _plain("Declare an incident"),
        "submit": _plain("Declare"),
        "close": _plain("Cancel"),
        "blocks": [
            _input(Block.TITLE, "Title", _text_input(max_length=200), hint="What is broken, in a few words."),
            _input(Block.SEVERITY, "Severity", severity),
            _input(Block.DESCRIPTION, "Description", _text_input(multiline=True), optional=True),
            _input(Block.PRIVATE, "Visibility", private, optional=True),
        ],
    }


def _datetime_picker(initial: datetime) -> dict[str, Any]:
    return {"type": "datetimepicker", "action_id": FIELD, "initial_date_time": int(initial.timestamp())}


def _task_rows(count: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for row in range(1, count + 1):
        blocks.append({"type": "divider"})
        blocks.append(
            _input(task_block("description", row), f"Task {row}", _text_input(max_length=500), optional=True)
        )
        blocks.append(
            _input(
                task_block("owner", row), "Owner", {"type": "users_select", "action_id": FIELD}, optional=True
            )
        )
        blocks.append(
            _input(
                task_block("due", row), "Due date", {"type": "datepicker", "action_id": FIELD}, optional=True
            )
        )
    return blocks


def close_modal(incident: Incident, now: datetime, task_rows: int = MIN_TASK_ROWS) -> dict[str, Any]:
    rows = max(MIN_TASK_ROWS, min(task_rows, MAX_TASK_ROWS))
    blocks = [
        _input(
            Block.IMPACT,
            "Impact",
            _text_input(multiline=True),
            hint="What was affected and for whom, e.g. 30% of users could not check out.",
        ),
        # What the alert said, when an alert declared it; else the declare time and now.
        _input(
            Block.IMPACT_START, "Impact started", _datetime_picker(incident.impact_started_at or incident.started_at)
        ),
        _input(Block.IMPACT_END, "Impact ended", _datetime_picker(incident.impact_ended_at or now)),
        _input(Block.ROOT_CAUSE, "Root cause", _text_input(multiline=True)),
        _input(Block.RESOLUTION, "Resolution", _text_input(multiline=True)),
        _input(
            Block.IMPROVEMENTS,
            "Improvements / fixes",
            _text_input(multiline=True),
            optional=True,
            hint="One per line.",
        ),
        {"type": "header", "text": _plain("Corrective tasks")},
        *_task_rows(rows),
    ]
    if rows < MAX_TASK_ROWS:
        blocks.append(
            {
                "type": "actions",
                "block_id": Block.TASK_ACTIONS,
                "elements": [
                    {
                        "type": "button",
                        "action_id": Action.ADD_TASK_ROW,
                        "text": _plain("Add a task"),
                        "value": str(rows + 1),
                    }
                ],
            }
        )
    return {
        "type": "modal",
        "callback_id": View.CLOSE,
        "private_metadata": json.dumps({"incident_id": incident.id, "rows": rows}),
        "title": _plain(truncate(f"Close {incident.ref}", 24)),
        "submit": _plain("Close incident"),
        "close": _plain("Cancel"),
        "blocks": blocks,
    }


UPDATE_STATUSES = (Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING)


def _status_option(status: Status) -> dict[str, Any]:
    return {"text": _plain(status.value.capitalize()), "value": status.value}


def status_modal(incident: Incident) -> dict[str, Any]:
    """A status update, starting from the last one (its status and its words)."""
    current = incident.status if incident.status in UPDATE_STATUSES else Status.INVESTIGATING
    select = {
        "type": "static_select",
        "action_id": FIELD,
        "options": [_status_option(s) for s in UPDATE_STATUSES],
        "initial_option": _status_option(current),
    }
    return {
        "type": "modal",
        "callback_id": View.STATUS,
        "private_metadata": json.dumps({"incident_id": incident.id}),
        "title": _plain(f"{incident.ref} status"[:24]),
        "submit": _plain("Post update"),
        "close": _plain("Cancel"),
        "blocks": [
            _input(Block.STATUS, "Status", select),
            _input(Block.STATUS_TEXT, "Update", _text_input(multiline=True, initial=incident.status_text or "",
                                                            max_length=2000), optional=True,  # fmt: skip
                   hint="What is known now and what happens next."),
        ],
    }
