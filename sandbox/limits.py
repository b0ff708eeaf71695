"""Slack's documented size limits for messages, blocks and views.

Real Slack rejects oversize payloads with `invalid_blocks` / `msg_too_long` /
`invalid_arguments`; the bot must cope, so the fake enforces the same limits.
"""

from __future__ import annotations

import json
from typing import Any

from .types import JsonDict, SlackError

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT_CHARS = 40_000
MAX_SECTION_TEXT = 3_000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2_000
MAX_HEADER_TEXT = 150
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_BLOCK_ID = 255
MAX_VIEW_TITLE = 24
MAX_PRIVATE_METADATA = 3_000
MAX_CALLBACK_ID = 255


def parse_json_arg(value: Any, name: str) -> Any:
    """Form-encoded calls carry structured arguments as JSON strings."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as error:
        raise SlackError("invalid_arguments", [f"[ERROR] {name} is not valid JSON"]) from error


def parse_blocks(value: Any) -> list[JsonDict] | None:
    if value is None:
        return None
    blocks = parse_json_arg(value, "blocks")
    if not isinstance(blocks, list) or not all(isinstance(block, dict) for block in blocks):
        raise SlackError("invalid_blocks_format")
    return blocks


def check_message_text(text: str | None) -> None:
    if text is not None and len(text) > MAX_TEXT_CHARS:
        raise SlackError("msg_too_long")


def check_message_blocks(blocks: list[JsonDict]) -> None:
    problems = block_problems(blocks, MAX_MESSAGE_BLOCKS)
    if problems:
        raise SlackError("invalid_blocks", problems)


def block_problems(blocks: list[JsonDict], max_blocks: int) -> list[str]:
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(_too_many(max_blocks, "/blocks"))
    seen_ids: set[str] = set()
    for index, block in enumerate(blocks):
        pointer = f"/blocks/{index}"
        problems.extend(_single_block_problems(block, pointer))
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in seen_ids:
                problems.append(f"[ERROR] duplicate block_id [json-pointer:{pointer}/block_id]")
            seen_ids.add(block_id)
    return problems


def _single_block_problems(block: JsonDict, pointer: str) -> list[str]:
    kind = block.get("type")
    if not isinstance(kind, str):
        return [f"[ERROR] missing required field: type [json-pointer:{pointer}]"]
    problems: list[str] = []
    block_id = block.get("block_id")
    if isinstance(block_id, str) and len(block_id) > MAX_BLOCK_ID:
        problems.append(_too_long(MAX_BLOCK_ID, f"{pointer}/block_id"))
    if kind == "section":
        problems.extend(_section_problems(block, pointer))
    elif kind == "header" and len(_text_of(block.get("text"))) > MAX_HEADER_TEXT:
        problems.append(_too_long(MAX_HEADER_TEXT, f"{pointer}/text/text"))
    elif kind == "actions" and len(block.get("elements") or []) > MAX_ACTIONS_ELEMENTS:
        problems.append(_too_many(MAX_ACTIONS_ELEMENTS, f"{pointer}/elements"))
    elif kind == "context" and len(block.get("elements") or []) > MAX_CONTEXT_ELEMENTS:
        problems.append(_too_many(MAX_CONTEXT_ELEMENTS, f"{pointer}/elements"))
    return problems


def _section_problems(block: JsonDict, pointer: str) -> list[str]:
    problems: list[str] = []
    if len(_text_of(block.get("text"))) > MAX_SECTION_TEXT:
        problems.append(_too_long(MAX_SECTION_TEXT, f"{pointer}/text/text"))
    fields = block.get("fields") or []
    if len(fields) > MAX_SECTION_FIELDS:
        problems.append(_too_many(MAX_SECTION_FIELDS, f"{pointer}/fields"))
    for index, item in enumerate(fields):
        if len(_text_of(item)) > MAX_FIELD_TEXT:
            problems.append(_too_long(MAX_FIELD_TEXT, f"{pointer}/fields/{index}/text"))
    if "text" not in block and not fields:
        problems.append(f"[ERROR] must provide text or fields [json-pointer:{pointer}]")
    return problems


def check_view(view: Any) -> JsonDict:
    """Validate a modal definition the way views.open/update/push do."""
    if not isinstance(view, dict):
        raise SlackError("invalid_arguments", ["[ERROR] view must be an object [json-pointer:/view]"])
    problems = block_problems(view.get("blocks") or [], MAX_VIEW_BLOCKS)
    problems.extend(_view_field_problems(view))
    if problems:
        raise SlackError("invalid_arguments", problems)
    return view


def _view_field_problems(view: JsonDict) -> list[str]:
    problems: list[str] = []
    if view.get("type") not in ("modal", "home"):
        problems.append("[ERROR] must be one of: modal, home [json-pointer:/view/type]")
    if view.get("type") == "modal":
        title = _text_of(view.get("title"))
        if not title:
            problems.append("[ERROR] missing required field: title [json-pointer:/view]")
        elif len(title) > MAX_VIEW_TITLE:
            problems.append(_too_long(MAX_VIEW_TITLE, "/view/title/text"))
    if len(str(view.get("private_metadata") or "")) > MAX_PRIVATE_METADATA:
        problems.append(_too_long(MAX_PRIVATE_METADATA, "/view/private_metadata"))
    if len(str(view.get("callback_id") or "")) > MAX_CALLBACK_ID:
        problems.append(_too_long(MAX_CALLBACK_ID, "/view/callback_id"))
    return problems


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text") or "")
    return ""


def _too_long(limit: int, pointer: str) -> str:
    return f"[ERROR] must be less than {limit + 1} characters [json-pointer:{pointer}]"


def _too_many(limit: int, pointer: str) -> str:
    return f"[ERROR] no more than {limit} items allowed [json-pointer:{pointer}]"
