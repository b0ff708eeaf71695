"""Filling a modal the way a person would: answers by block id become Slack's view state."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

JsonDict = dict[str, Any]


def fill_view(view: JsonDict, answers: dict[str, Any]) -> dict[str, dict[str, JsonDict]]:
    """State values for `views.state.values`: {block_id: {action_id: element state}}.
    Input blocks without an answer get their empty state, as Slack sends them."""
    values: dict[str, dict[str, JsonDict]] = {}
    for block in view.get("blocks") or []:
        if block.get("type") != "input":
            continue
        element = block["element"]
        values[block["block_id"]] = {element["action_id"]: _element_state(element, answers.get(block["block_id"]))}
    unknown = set(answers) - set(values)
    if unknown:
        raise KeyError(f"the view has no input blocks {sorted(unknown)}")
    return values


def _element_state(element: JsonDict, answer: Any) -> JsonDict:
    kind = element["type"]
    state: JsonDict = {"type": kind}
    if kind == "plain_text_input":
        state["value"] = answer
    elif kind == "datetimepicker":
        state["selected_date_time"] = int(answer.timestamp()) if isinstance(answer, datetime) else answer
    elif kind == "datepicker":
        state["selected_date"] = answer.isoformat() if isinstance(answer, date) else answer
    elif kind == "users_select":
        state["selected_user"] = answer
    elif kind == "static_select":
        state["selected_option"] = _option(element, answer) if answer is not None else None
    elif kind == "checkboxes":
        state["selected_options"] = [_option(element, v) for v in (answer or [])]
    else:
        raise ValueError(f"fill_view does not know element type {kind}")
    return state


def _option(element: JsonDict, value: str) -> JsonDict:
    for option in element.get("options") or []:
        if option.get("value") == value:
            return dict(option)
    raise ValueError(f"no option {value!r} in {element.get('action_id')}")
