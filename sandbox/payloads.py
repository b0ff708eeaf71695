"""Builders for what Slack sends to apps: commands, Events API envelopes, interactivity.

Shapes follow Slack's documented payloads closely enough that slack-bolt's
matchers, ack handling and context extraction work unchanged.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from .types import JsonDict
from .workspace import Workspace

VERIFICATION_TOKEN = "local-verification-token"


def command_form(
    ws: Workspace,
    *,
    text: str,
    command: str,
    user_id: str,
    channel_id: str,
    response_url: str,
    trigger_id: str,
) -> dict[str, str]:
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.team_id,
        "team_domain": ws.team_domain,
        "channel_id": channel_id,
        "channel_name": _channel_name(ws, channel_id),
        "user_id": user_id,
        "user_name": ws.user_name(user_id),
        "command": command,
        "text": text,
        "api_app_id": ws.api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def _channel_name(ws: Workspace, channel_id: str) -> str:
    if channel_id in ws.ims:
        return "directmessage"
    channel = ws.channels.get(channel_id)
    return str(channel["name"]) if channel else channel_id


def event_envelope(ws: Workspace, event: JsonDict, *, event_id: str) -> JsonDict:
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.team_id,
        "context_team_id": ws.team_id,
        "context_enterprise_id": None,
        "api_app_id": ws.api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.team_id,
                "user_id": ws.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-local-{event_id}",
    }


def message_event(ws: Workspace, channel_id: str, message: JsonDict) -> JsonDict:
    event = {key: value for key, value in copy.deepcopy(message).items() if key != "pinned"}
    event.update({"channel": channel_id, "event_ts": message["ts"], "channel_type": ws.channel_type(channel_id)})
    return event


def message_changed_event(ws: Workspace, channel_id: str, previous: JsonDict, current: JsonDict) -> JsonDict:
    event_ts = ws.next_ts(channel_id)
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": channel_id,
        "channel_type": ws.channel_type(channel_id),
        "ts": event_ts,
        "event_ts": event_ts,
        "message": ws.public_message(current),
        "previous_message": ws.public_message(previous),
    }


def message_deleted_event(ws: Workspace, channel_id: str, previous: JsonDict) -> JsonDict:
    event_ts = ws.next_ts(channel_id)
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "channel": channel_id,
        "channel_type": ws.channel_type(channel_id),
        "ts": event_ts,
        "event_ts": event_ts,
        "deleted_ts": previous["ts"],
        "previous_message": ws.public_message(previous),
    }


def reaction_event(kind: str, *, user: str, name: str, channel_id: str, message: JsonDict, event_ts: str) -> JsonDict:
    return {
        "type": kind,
        "user": user,
        "reaction": name,
        "item_user": message.get("user") or message.get("bot_id") or "",
        "item": {"type": "message", "channel": channel_id, "ts": message["ts"]},
        "event_ts": event_ts,
    }


def _user_ref(ws: Workspace, user_id: str) -> JsonDict:
    name = ws.user_name(user_id)
    return {"id": user_id, "username": name, "name": name, "team_id": ws.team_id}


def _interaction_base(ws: Workspace, kind: str, user_id: str, trigger_id: str) -> JsonDict:
    return {
        "type": kind,
        "team": {"id": ws.team_id, "domain": ws.team_domain},
        "user": _user_ref(ws, user_id),
        "api_app_id": ws.api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "enterprise": None,
        "is_enterprise_install": False,
    }


def button_action(*, action_id: str, block_id: str, value: str | None, element: JsonDict | None) -> JsonDict:
    found = element or {}
    action: JsonDict = {
        "type": found.get("type", "button"),
        "action_id": action_id,
        "block_id": block_id,
        "text": found.get("text", {"type": "plain_text", "text": action_id, "emoji": True}),
        "action_ts": f"{time.time():.6f}",
    }
    chosen = value if value is not None else found.get("value")
    if chosen is not None:
        action["value"] = chosen
    if "style" in found:
        action["style"] = found["style"]
    return action


def message_block_actions(
    ws: Workspace,
    *,
    user_id: str,
    trigger_id: str,
    channel_id: str,
    message: JsonDict | None,
    message_ts: str | None,
    response_url: str,
    action: JsonDict,
) -> JsonDict:
    payload = _interaction_base(ws, "block_actions", user_id, trigger_id)
    payload.update(
        {
            "container": {
                "type": "message",
                "message_ts": message_ts or "",
                "channel_id": channel_id,
                "is_ephemeral": message is None,
            },
            "channel": {"id": channel_id, "name": _channel_name(ws, channel_id)},
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [action],
        }
    )
    if message is not None:
        payload["message"] = ws.public_message(message)
    return payload


def view_block_actions(ws: Workspace, *, user_id: str, trigger_id: str, view: JsonDict, action: JsonDict) -> JsonDict:
    payload = _interaction_base(ws, "block_actions", user_id, trigger_id)
    payload.update(
        {
            "container": {"type": "view", "view_id": view["id"]},
            "view": copy.deepcopy(view),
            "actions": [action],
        }
    )
    return payload


def view_submission(ws: Workspace, *, user_id: str, trigger_id: str, view: JsonDict) -> JsonDict:
    payload = _interaction_base(ws, "view_submission", user_id, trigger_id)
    payload.update({"view": copy.deepcopy(view), "response_urls": []})
    return payload


def find_element(blocks: list[JsonDict], action_id: str) -> tuple[str, JsonDict] | None:
    """Locate an interactive element by action_id: (block_id, element)."""
    for block in blocks:
        for element in _elements_of(block):
            if element.get("action_id") == action_id:
                return str(block.get("block_id") or ""), element
    return None


def _elements_of(block: JsonDict) -> list[JsonDict]:
    found: list[Any] = list(block.get("elements") or [])
    for key in ("accessory", "element"):
        if isinstance(block.get(key), dict):
            found.append(block[key])
    return [element for element in found if isinstance(element, dict)]
