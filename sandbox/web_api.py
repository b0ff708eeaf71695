"""Web API method handlers: translate call arguments into workspace operations.

Each handler takes the workspace and the call's arguments and returns the JSON
body of a successful answer, or raises `SlackError` for Slack's error answers.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

from . import limits
from .clock import ts_sort_key
from .types import JsonDict, SlackError
from .workspace import Workspace

MAX_CHANNEL_NAME = 80
MAX_TOPIC = 250
CHANNEL_NAME = re.compile(r"^[a-z0-9_-]+$")


class Args:
    """Call arguments with the coercions Slack applies to form and JSON values."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def text(self, name: str) -> str | None:
        value = self.raw.get(name)
        return None if value is None else str(value)

    def need(self, name: str, error: str) -> str:
        value = self.text(name)
        if not value:
            raise SlackError(error)
        return value

    def flag(self, name: str) -> bool:
        value = self.raw.get(name)
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes")
        return bool(value)

    def number(self, name: str, default: int) -> int:
        value = self.raw.get(name)
        if value in (None, ""):
            return default
        try:
            return int(str(value))
        except ValueError as error:
            raise SlackError("invalid_arguments", [f"[ERROR] {name} must be a number"]) from error

    def user_list(self, name: str) -> list[str]:
        value = self.raw.get(name)
        items = value if isinstance(value, list) else str(value or "").split(",")
        return [str(item).strip() for item in items if str(item).strip()]


Handler = Callable[[Workspace, Args], JsonDict]


# ----- auth / users --------------------------------------------------------------


def auth_test(ws: Workspace, args: Args) -> JsonDict:
    return {
        "url": ws.team_url,
        "team": ws.team_domain,
        "user": ws.user_name(ws.bot_user_id),
        "team_id": ws.team_id,
        "user_id": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "is_enterprise_install": False,
    }


def users_info(ws: Workspace, args: Args) -> JsonDict:
    return {"user": ws.user(args.need("user", "user_not_found"))}


# ----- conversations ---------------------------------------------------------------


def conversations_create(ws: Workspace, args: Args) -> JsonDict:
    name = args.text("name") or ""
    _check_channel_name(name)
    if ws.channel_by_name(name) is not None:
        raise SlackError("name_taken")
    channel_id = ws.add_channel(
        name, is_private=args.flag("is_private"), members=[ws.bot_user_id], creator=ws.bot_user_id
    )
    return {"channel": ws.conversation_info(channel_id)}


def _check_channel_name(name: str) -> None:
    if not name:
        raise SlackError("invalid_name_required")
    if len(name) > MAX_CHANNEL_NAME:
        raise SlackError("invalid_name_maxlength")
    if not CHANNEL_NAME.match(name):
        raise SlackError("invalid_name_specials")


def conversations_invite(ws: Workspace, args: Args) -> JsonDict:
    channel = ws.channel(args.need("channel", "channel_not_found"))
    if ws.bot_user_id not in channel["members"]:
        raise SlackError("not_in_channel")
    users = args.user_list("users")
    if not users:
        raise SlackError("no_user")
    for user_id in users:
        _check_invitable(ws, channel, user_id)
    channel["members"].extend(u for u in users if u not in channel["members"])
    return {"channel": ws.conversation_info(channel["id"])}


def _check_invitable(ws: Workspace, channel: JsonDict, user_id: str) -> None:
    # Without `force`, Slack rejects the whole call if any one user is unfit.
    if user_id == ws.bot_user_id:
        raise SlackError("cant_invite_self")
    user = ws.user(user_id)
    if user["deleted"]:
        raise SlackError("user_is_inactive")
    if user_id in channel["members"]:
        raise SlackError("already_in_channel")


def conversations_join(ws: Workspace, args: Args) -> JsonDict:
    channel = ws.channel(args.need("channel", "channel_not_found"))
    if channel["is_private"]:
        raise SlackError("method_not_supported_for_channel_type")
    if channel["is_archived"]:
        raise SlackError("is_archived")
    already = ws.bot_user_id in channel["members"]
    if not already:
        channel["members"].append(ws.bot_user_id)
    answer: JsonDict = {"channel": ws.conversation_info(channel["id"])}
    if already:
        answer["warning"] = "already_in_channel"
        answer["response_metadata"] = {"warnings": ["already_in_channel"]}
    return answer


def conversations_set_topic(ws: Workspace, args: Args) -> JsonDict:
    return _set_channel_text(ws, args, "topic")


def conversations_set_purpose(ws: Workspace, args: Args) -> JsonDict:
    return _set_channel_text(ws, args, "purpose")


def _set_channel_text(ws: Workspace, args: Args, field: str) -> JsonDict:
    channel = ws.channel(args.need("channel", "channel_not_found"))
    if ws.bot_user_id not in channel["members"]:
        raise SlackError("not_in_channel")
    value = args.text(field) or ""
    if len(value) > MAX_TOPIC:
        raise SlackError("too_long")
    channel[field] = value
    return {"channel": ws.conversation_info(channel["id"]), field: value}


def conversations_info(ws: Workspace, args: Args) -> JsonDict:
    channel_id = args.need("channel", "channel_not_found")
    conversation = ws.conversation(channel_id)
    if conversation.get("is_private") and not ws.is_member(channel_id, ws.bot_user_id):
        raise SlackError("channel_not_found")
    return {"channel": ws.conversation_info(channel_id, num_members=args.flag("include_num_members"))}


def conversations_members(ws: Workspace, args: Args) -> JsonDict:
    channel_id = args.need("channel", "channel_not_found")
    conversation = ws.require_readable(channel_id)
    members = [conversation["user"], ws.bot_user_id] if channel_id in ws.ims else list(conversation["members"])
    page, next_cursor = _paginate(members, args, default_limit=100)
    return {"members": page, "response_metadata": {"next_cursor": next_cursor}}


def conversations_history(ws: Workspace, args: Args) -> JsonDict:
    channel_id = args.need("channel", "channel_not_found")
    ws.require_readable(channel_id)
    newest_first = list(reversed(_in_window(ws.top_level(channel_id), args)))
    return _message_page(ws, newest_first, args, pin_count=len(ws.pins(channel_id)))


def conversations_replies(ws: Workspace, args: Args) -> JsonDict:
    channel_id = args.need("channel", "channel_not_found")
    ws.require_readable(channel_id)
    ts = args.need("ts", "thread_not_found")
    try:
        thread = ws.thread(channel_id, ts)
    except SlackError as error:
        raise SlackError("thread_not_found") from error
    root, replies = thread[0], _in_window(thread[1:], args)
    return _message_page(ws, [root, *replies], args)


def _in_window(messages: list[JsonDict], args: Args) -> list[JsonDict]:
    """Apply oldest/latest/inclusive the way Slack does (exclusive by default)."""
    oldest = args.text("oldest")
    latest = args.text("latest")
    inclusive = args.flag("inclusive")
    low = ts_sort_key(oldest) if oldest else None
    high = ts_sort_key(latest) if latest else None

    def inside(message: JsonDict) -> bool:
        key = ts_sort_key(message["ts"])
        above = low is None or key > low or (inclusive and key == low)
        below = high is None or key < high or (inclusive and key == high)
        return above and below

    return [m for m in messages if inside(m)]


def _message_page(ws: Workspace, messages: list[JsonDict], args: Args, **extra: Any) -> JsonDict:
    page, next_cursor = _paginate(messages, args, default_limit=100)
    with_metadata = args.flag("include_all_metadata")
    answer: JsonDict = {
        "messages": [ws.public_message(m, include_metadata=with_metadata) for m in page],
        "has_more": bool(next_cursor),
        **extra,
    }
    if next_cursor:
        answer["response_metadata"] = {"next_cursor": next_cursor}
    return answer


def _paginate(items: list[Any], args: Args, *, default_limit: int) -> tuple[list[Any], str]:
    limit = max(1, min(args.number("limit", default_limit), 1000))
    start = _decode_cursor(args.text("cursor"))
    end = start + limit
    next_cursor = _encode_cursor(end) if end < len(items) else ""
    return items[start:end], next_cursor


def _encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.b64decode(cursor).decode().split(":", 1)[1])
    except (ValueError, IndexError) as error:
        raise SlackError("invalid_cursor") from error


def conversations_open(ws: Workspace, args: Args) -> JsonDict:
    existing_id = args.text("channel")
    users = args.user_list("users")
    if existing_id:
        if existing_id not in ws.ims:
            raise SlackError("channel_not_found")
        dm_id, already = existing_id, True
    elif len(users) == 1:
        already = ws.dm_channel(users[0]) is not None
        dm_id = ws.open_dm(users[0])
    elif not users:
        raise SlackError("users_list_not_supplied")
    else:
        raise SlackError("not_supported", ["[ERROR] the local Slack only models 1:1 DMs"])
    channel = ws.conversation_info(dm_id) if args.flag("return_im") else {"id": dm_id}
    return {"no_op": already, "already_open": already, "channel": channel}


# ----- chat --------------------------------------------------------------------------


def chat_post_message(ws: Workspace, args: Args) -> JsonDict:
    channel_id = ws.resolve_target(args.need("channel", "channel_not_found"))
    ws.require_postable(channel_id)
    content = _message_content(args, require=True)
    thread_ts = args.text("thread_ts")
    if thread_ts:
        content["thread_ts"] = thread_ts
        if args.flag("reply_broadcast"):
            content["subtype"] = "thread_broadcast"
    stored = ws.store_message(channel_id, {**ws.bot_authorship(), **content})
    return {"channel": channel_id, "ts": stored["ts"], "message": ws.public_message(stored)}


def _message_content(args: Args, *, require: bool) -> JsonDict:
    """text/blocks/attachments/metadata, validated against Slack's limits."""
    content: JsonDict = {}
    text = args.text("text") if args.text("text") is not None else args.text("markdown_text")
    blocks = limits.parse_blocks(args.raw.get("blocks"))
    attachments = limits.parse_json_arg(args.raw.get("attachments"), "attachments")
    if require and not (text or blocks or attachments):
        raise SlackError("no_text")
    limits.check_message_text(text)
    if text is not None:
        content["text"] = text
    if blocks is not None:
        limits.check_message_blocks(blocks)
        content["blocks"] = blocks
    if attachments:
        content["attachments"] = attachments
    metadata = _parse_metadata(args.raw.get("metadata"))
    if metadata is not None:
        content["metadata"] = metadata
    return content


def _parse_metadata(value: Any) -> JsonDict | None:
    if value is None:
        return None
    metadata = limits.parse_json_arg(value, "metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("event_type"), str):
        raise SlackError("invalid_metadata_format")
    return {"event_type": metadata["event_type"], "event_payload": metadata.get("event_payload") or {}}


def chat_update(ws: Workspace, args: Args) -> JsonDict:
    channel_id = ws.resolve_target(args.need("channel", "channel_not_found"))
    message = ws.find_message(channel_id, args.need("ts", "message_not_found"))
    if message.get("bot_id") != ws.bot_id:
        raise SlackError("cant_update_message")
    # Slack keeps the previous blocks when `blocks` is omitted; [] removes them.
    changes = _message_content(args, require=False)
    if not changes:
        raise SlackError("no_text")
    if changes.get("blocks") == []:
        del changes["blocks"]
        message.pop("blocks", None)
    _, updated = ws.edit_message(channel_id, message["ts"], changes, editor=ws.bot_user_id)
    return {
        "channel": channel_id,
        "ts": updated["ts"],
        "text": updated.get("text", ""),
        "message": ws.public_message(updated),
    }


def chat_post_ephemeral(ws: Workspace, args: Args) -> JsonDict:
    channel_id = ws.resolve_target(args.need("channel", "channel_not_found"))
    ws.require_postable(channel_id)
    user_id = args.need("user", "user_not_found")
    ws.user(user_id)
    if not ws.is_member(channel_id, user_id):
        raise SlackError("user_not_in_channel")
    content = _message_content(args, require=True)
    ws.ephemerals.append(
        {
            "channel": channel_id,
            "user": user_id,
            "text": content.get("text", ""),
            "blocks": content.get("blocks"),
            "thread_ts": args.text("thread_ts"),
            "source": "chat.postEphemeral",
        }
    )
    return {"message_ts": ws.next_ts(channel_id)}


def chat_get_permalink(ws: Workspace, args: Args) -> JsonDict:
    channel_id = args.need("channel", "channel_not_found")
    ts = args.need("message_ts", "message_not_found")
    return {"channel": channel_id, "permalink": ws.permalink(channel_id, ts)}


# ----- pins / reactions -----------------------------------------------------------------


def pins_add(ws: Workspace, args: Args) -> JsonDict:
    channel_id = args.need("channel", "channel_not_found")
    if not ws.is_member(channel_id, ws.bot_user_id):
        raise SlackError("not_in_channel")
    ws.pin(channel_id, args.need("timestamp", "no_item_specified"))
    return {}


def reactions_add(ws: Workspace, args: Args) -> JsonDict:
    channel_id, ts, name = _reaction_target(ws, args)
    ws.react(channel_id, ts, name, ws.bot_user_id)
    return {}


def reactions_remove(ws: Workspace, args: Args) -> JsonDict:
    channel_id, ts, name = _reaction_target(ws, args)
    ws.unreact(channel_id, ts, name, ws.bot_user_id)
    return {}


def _reaction_target(ws: Workspace, args: Args) -> tuple[str, str, str]:
    channel_id = args.need("channel", "channel_not_found")
    ws.conversation(channel_id)
    name = args.need("name", "invalid_name").strip(":")
    return channel_id, args.need("timestamp", "no_item_specified"), name


# ----- views -------------------------------------------------------------------------------


def views_open(ws: Workspace, args: Args) -> JsonDict:
    trigger_id = args.text("trigger_id") or args.text("interactivity_pointer")
    view = limits.check_view(limits.parse_json_arg(args.raw.get("view"), "view"))
    return {"view": ws.open_view(trigger_id or "", view)}


def views_push(ws: Workspace, args: Args) -> JsonDict:
    trigger_id = args.text("trigger_id") or args.text("interactivity_pointer")
    view = limits.check_view(limits.parse_json_arg(args.raw.get("view"), "view"))
    return {"view": ws.push_view(trigger_id or "", view)}


def views_update(ws: Workspace, args: Args) -> JsonDict:
    view_id, external_id = args.text("view_id"), args.text("external_id")
    if not view_id and not external_id:
        raise SlackError("invalid_arguments", ["[ERROR] either view_id or external_id is required"])
    view = limits.check_view(limits.parse_json_arg(args.raw.get("view"), "view"))
    record = ws.find_view(view_id=view_id, external_id=external_id)
    return {"view": ws.update_view(record, view, expected_hash=args.text("hash"))}


def views_publish(ws: Workspace, args: Args) -> JsonDict:
    user_id = args.need("user_id", "invalid_arguments")
    if user_id not in ws.users:
        raise SlackError("user_not_found")
    view = limits.check_view(limits.parse_json_arg(args.raw.get("view"), "view"))
    if view.get("type") != "home":
        raise SlackError("invalid_arguments", ["[ERROR] views.publish takes a home view [json-pointer:/view/type]"])
    return {"view": ws.publish_home(user_id, view)}


# ----- files -------------------------------------------------------------------------------


def files_get_upload_url(ws: Workspace, args: Args) -> JsonDict:
    filename = args.need("filename", "invalid_arguments")
    length = args.number("length", -1)
    if length < 0:
        raise SlackError("invalid_arguments", ["[ERROR] length is required"])
    file_id = ws.reserve_file(filename, length, user=ws.bot_user_id)
    return {"upload_url": f"{ws.base_url}upload/v1/{file_id}", "file_id": file_id}


def files_complete_upload(ws: Workspace, args: Args) -> JsonDict:
    entries = limits.parse_json_arg(args.raw.get("files"), "files")
    if not isinstance(entries, list) or not entries:
        raise SlackError("invalid_arguments", ["[ERROR] files must be a non-empty array"])
    records = ws.complete_upload(entries)
    targets = ([args.text("channel_id")] if args.text("channel_id") else []) + args.user_list("channels")
    for channel_id in targets:
        _share_files(ws, str(channel_id), records, args)
    return {"files": [ws.public_file(record["id"]) for record in records]}


def _share_files(ws: Workspace, channel_id: str, records: list[JsonDict], args: Args) -> None:
    ws.require_postable(channel_id)
    comment = args.text("initial_comment")
    thread_ts = args.text("thread_ts")
    for record in records:
        record["channels"].append(channel_id)
        record["initial_comment"] = comment
        if thread_ts:
            record["thread_ts"] = thread_ts
    message: JsonDict = {
        **ws.bot_authorship(),
        "subtype": "file_share",
        "text": comment or "",
        "upload": True,
        "files": [ws.public_file(record["id"]) for record in records],
    }
    if thread_ts:
        message["thread_ts"] = thread_ts
    ws.store_message(channel_id, message)


def files_info(ws: Workspace, args: Args) -> JsonDict:
    return {"file": ws.public_file(args.need("file", "file_not_found"))}


HANDLERS: dict[str, Handler] = {
    "auth.test": auth_test,
    "users.info": users_info,
    "conversations.create": conversations_create,
    "conversations.invite": conversations_invite,
    "conversations.join": conversations_join,
    "conversations.setTopic": conversations_set_topic,
    "conversations.setPurpose": conversations_set_purpose,
    "conversations.info": conversations_info,
    "conversations.members": conversations_members,
    "conversations.history": conversations_history,
    "conversations.replies": conversations_replies,
    "conversations.open": conversations_open,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.getPermalink": chat_get_permalink,
    "pins.add": pins_add,
    "reactions.add": reactions_add,
    "reactions.remove": reactions_remove,
    "views.open": views_open,
    "views.push": views_push,
    "views.update": views_update,
    "views.publish": views_publish,
    "files.getUploadURLExternal": files_get_upload_url,
    "files.completeUploadExternal": files_complete_upload,
    "files.info": files_info,
}
