"""The workspace state the fake Slack keeps, and the rules Slack applies to it.

Everything here is synchronous and transport-free: Web API handlers and the
test-facing helpers both call into it, and every rule violation surfaces as a
`SlackError` carrying Slack's own error string.
"""

from __future__ import annotations

import copy
import mimetypes
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from .clock import Clock, TsAllocator, to_micros, ts_from_datetime, ts_sort_key
from .ids import IdFactory
from .types import JsonDict, SlackError

TRIGGER_LIFETIME = timedelta(seconds=3)
MAX_VIEW_STACK = 3


class Workspace:
    def __init__(
        self,
        *,
        team_id: str,
        team_domain: str,
        bot_user_id: str,
        bot_id: str,
        api_app_id: str,
        clock: Clock,
    ) -> None:
        self.team_id = team_id
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.api_app_id = api_app_id
        self.clock = clock
        self.team_url = f"https://{team_domain}.slack.com/"
        self.base_url = "http://127.0.0.1/"  # replaced once the server has a port
        self.ids = IdFactory()
        self.users: dict[str, JsonDict] = {}
        self.channels: dict[str, JsonDict] = {}
        self.ims: dict[str, JsonDict] = {}
        self.ephemerals: list[JsonDict] = []
        self.views: dict[str, JsonDict] = {}
        self.homes: dict[str, JsonDict] = {}  # user id -> the Home view last published for them
        self.files: dict[str, JsonDict] = {}
        self._dm_by_user: dict[str, str] = {}
        self._messages: dict[str, dict[str, JsonDict]] = {}
        self._pins: dict[str, list[str]] = {}
        self._triggers: dict[str, JsonDict] = {}
        self._ts = TsAllocator()
        self.add_user(bot_user_id, "incident-bot", real_name="Incident Bot", is_bot=True)

    # ----- users -------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        tz: str = "UTC",
    ) -> None:
        real = real_name if real_name is not None else name
        self.users[user_id] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": real,
            "deleted": deleted,
            "is_bot": is_bot,
            "is_app_user": False,
            "tz": tz,
            "tz_label": tz,
            "tz_offset": 0,
            "profile": {
                "real_name": real,
                "display_name": name,
                "real_name_normalized": real,
                "team": self.team_id,
            },
        }
        if user_id == self.bot_user_id:
            self.users[user_id]["profile"]["bot_id"] = self.bot_id

    def user(self, user_id: str) -> JsonDict:
        found = self.users.get(user_id)
        if found is None:
            raise SlackError("user_not_found")
        return found

    def user_name(self, user_id: str) -> str:
        found = self.users.get(user_id)
        return str(found["name"]) if found else user_id.lower()

    # ----- conversations -----------------------------------------------------

    def add_channel(
        self, name: str, *, is_private: bool = False, members: Iterable[str] = (), creator: str = ""
    ) -> str:
        channel_id = self.ids.next("C")
        self.channels[channel_id] = {
            "id": channel_id,
            "name": name,
            "is_private": is_private,
            "topic": "",
            "purpose": "",
            "members": list(dict.fromkeys(members)),
            "created": int(to_micros(self.clock()) // 1_000_000),
            "creator": creator,
            "is_archived": False,
        }
        self._messages[channel_id] = {}
        return channel_id

    def channel_by_name(self, name: str) -> JsonDict | None:
        wanted = name.lstrip("#")
        return next((channel for channel in self.channels.values() if channel["name"] == wanted), None)

    def conversation(self, channel_id: str) -> JsonDict:
        found = self.channels.get(channel_id) or self.ims.get(channel_id)
        if found is None:
            raise SlackError("channel_not_found")
        return found

    def channel(self, channel_id: str) -> JsonDict:
        """A real channel (not a DM); DMs answer method_not_supported_for_channel_type."""
        if channel_id in self.ims:
            raise SlackError("method_not_supported_for_channel_type")
        return self.conversation(channel_id)

    def resolve_target(self, target: str) -> str:
        """chat.postMessage accepts channel ids, DM ids, user ids and #names."""
        if target in self.channels or target in self.ims:
            return target
        if target.startswith(("U", "W")) and target in self.users:
            return self.open_dm(target)
        named = self.channel_by_name(target)
        if named is not None:
            return str(named["id"])
        raise SlackError("channel_not_found")

    def is_member(self, channel_id: str, user_id: str) -> bool:
        conversation = self.conversation(channel_id)
        if channel_id in self.ims:
            return user_id in (conversation["user"], self.bot_user_id)
        return user_id in conversation["members"]

    def channel_type(self, channel_id: str) -> str:
        if channel_id in self.ims:
            return "im"
        return "group" if self.channels[channel_id]["is_private"] else "channel"

    def require_readable(self, channel_id: str) -> JsonDict:
        """Private channels are invisible to non-members; public ones need a join to read."""
        conversation = self.conversation(channel_id)
        if self.is_member(channel_id, self.bot_user_id):
            return conversation
        raise SlackError("channel_not_found" if conversation.get("is_private") else "not_in_channel")

    def require_postable(self, channel_id: str) -> JsonDict:
        # Public channels accept posts from non-members, as with chat:write.public.
        conversation = self.conversation(channel_id)
        if conversation.get("is_archived"):
            raise SlackError("is_archived")
        if conversation.get("is_private") and not self.is_member(channel_id, self.bot_user_id):
            raise SlackError("not_in_channel")
        return conversation

    def open_dm(self, user_id: str) -> str:
        user = self.users.get(user_id)
        if user is None or user["deleted"]:
            raise SlackError("user_not_found")
        if user_id == self.bot_user_id or user["is_bot"]:
            raise SlackError("cannot_dm_bot")
        existing = self._dm_by_user.get(user_id)
        if existing is not None:
            return existing
        dm_id = self.ids.next("D")
        self.ims[dm_id] = {"id": dm_id, "user": user_id, "is_im": True, "created": self._now_seconds()}
        self._dm_by_user[user_id] = dm_id
        self._messages[dm_id] = {}
        return dm_id

    def dm_channel(self, user_id: str) -> str | None:
        return self._dm_by_user.get(user_id)

    def conversation_info(self, channel_id: str, *, num_members: bool = False) -> JsonDict:
        conversation = self.conversation(channel_id)
        if channel_id in self.ims:
            return {
                **conversation,
                "is_channel": False,
                "is_group": False,
                "is_private": True,
                "is_open": True,
            }
        info: JsonDict = {
            "id": channel_id,
            "name": conversation["name"],
            "name_normalized": conversation["name"],
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": conversation["is_private"],
            "is_archived": conversation["is_archived"],
            "is_general": False,
            "is_member": self.bot_user_id in conversation["members"],
            "created": conversation["created"],
            "creator": conversation.get("creator", ""),
            "context_team_id": self.team_id,
            "topic": {"value": conversation["topic"], "creator": "", "last_set": 0},
            "purpose": {"value": conversation["purpose"], "creator": "", "last_set": 0},
        }
        if num_members:
            info["num_members"] = len(conversation["members"])
        return info

    # ----- messages ----------------------------------------------------------

    def bot_authorship(self) -> JsonDict:
        """Fields Slack puts on messages the app posts with its bot token."""
        return {
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.api_app_id,
            "team": self.team_id,
            "bot_profile": {
                "id": self.bot_id,
                "app_id": self.api_app_id,
                "name": "incident-bot",
                "team_id": self.team_id,
            },
        }

    def next_ts(self, channel_id: str, at: datetime | None = None) -> str:
        return self._ts.allocate(channel_id, at or self.clock())

    def store_message(self, channel_id: str, message: JsonDict, *, ts: str | None = None) -> JsonDict:
        """Insert a message, giving it a ts and doing Slack's thread bookkeeping."""
        self.conversation(channel_id)
        if ts is None:
            ts = self.next_ts(channel_id)
        else:
            self._ts.claim(channel_id, ts)
        stored: JsonDict = {"type": "message", **message, "ts": ts, "pinned": False}
        thread_ts = stored.get("thread_ts")
        if thread_ts and thread_ts != ts:
            stored["thread_ts"] = self._note_reply(channel_id, thread_ts, stored)
        self._messages[channel_id][ts] = stored
        return stored

    def _note_reply(self, channel_id: str, thread_ts: str, reply: JsonDict) -> str:
        parent = self._messages[channel_id].get(thread_ts)
        if parent is None:
            return thread_ts  # Slack accepts unknown thread_ts; the reply is simply orphaned.
        if parent.get("thread_ts") and parent["thread_ts"] != parent["ts"]:
            return self._note_reply(channel_id, parent["thread_ts"], reply)  # replying to a reply
        author = reply.get("user") or reply.get("bot_id") or ""
        users: list[str] = parent.setdefault("reply_users", [])
        if author and author not in users:
            users.append(author)
        parent["thread_ts"] = parent["ts"]
        parent["reply_count"] = parent.get("reply_count", 0) + 1
        parent["reply_users_count"] = len(users)
        parent["latest_reply"] = reply["ts"]
        reply["parent_user_id"] = parent.get("user") or ""
        return str(parent["ts"])

    def find_message(self, channel_id: str, ts: str) -> JsonDict:
        self.conversation(channel_id)
        found = self._messages[channel_id].get(ts)
        if found is None:
            raise SlackError("message_not_found")
        return found

    def messages(self, channel_id: str) -> list[JsonDict]:
        stored = self._messages.get(channel_id, {})
        return [stored[ts] for ts in sorted(stored, key=ts_sort_key)]

    def edit_message(self, channel_id: str, ts: str, changes: JsonDict, *, editor: str) -> tuple[JsonDict, JsonDict]:
        """Apply changes in place; returns (previous copy, updated message)."""
        message = self.find_message(channel_id, ts)
        previous = copy.deepcopy(message)
        message.update(changes)
        message["edited"] = {"user": editor, "ts": self.next_ts(channel_id)}
        return previous, message

    def delete_message(self, channel_id: str, ts: str) -> JsonDict:
        message = self.find_message(channel_id, ts)
        del self._messages[channel_id][ts]
        pins = self._pins.get(channel_id, [])
        if ts in pins:
            pins.remove(ts)
        self._forget_reply(channel_id, message)
        return message

    def _forget_reply(self, channel_id: str, message: JsonDict) -> None:
        thread_ts = message.get("thread_ts")
        parent = self._messages[channel_id].get(thread_ts) if thread_ts else None
        if parent is None or thread_ts == message["ts"]:
            return
        parent["reply_count"] = max(0, parent.get("reply_count", 1) - 1)
        replies = [
            m for m in self._messages[channel_id].values() if m.get("thread_ts") == thread_ts and m is not parent
        ]
        parent["latest_reply"] = max((m["ts"] for m in replies), key=ts_sort_key, default=thread_ts)

    def pin(self, channel_id: str, ts: str) -> None:
        message = self.find_message(channel_id, ts)
        if message["pinned"]:
            raise SlackError("already_pinned")
        message["pinned"] = True
        self._pins.setdefault(channel_id, []).append(ts)

    def pins(self, channel_id: str) -> list[str]:
        return list(self._pins.get(channel_id, []))

    def react(self, channel_id: str, ts: str, name: str, user_id: str) -> JsonDict:
        message = self.find_message(channel_id, ts)
        reactions: list[JsonDict] = message.setdefault("reactions", [])
        entry = next((r for r in reactions if r["name"] == name), None)
        if entry is None:
            entry = {"name": name, "users": [], "count": 0}
            reactions.append(entry)
        if user_id in entry["users"]:
            raise SlackError("already_reacted")
        entry["users"].append(user_id)
        entry["count"] = len(entry["users"])
        return message

    def unreact(self, channel_id: str, ts: str, name: str, user_id: str) -> JsonDict:
        message = self.find_message(channel_id, ts)
        reactions: list[JsonDict] = message.get("reactions", [])
        entry = next((r for r in reactions if r["name"] == name and user_id in r["users"]), None)
        if entry is None:
            raise SlackError("no_reaction")
        entry["users"].remove(user_id)
        entry["count"] = len(entry["users"])
        if not entry["users"]:
            reactions.remove(entry)
        if not reactions:
            message.pop("reactions", None)
        return message

    def public_message(self, message: JsonDict, *, include_metadata: bool = True) -> JsonDict:
        """The message as the Web API shows it (pin flag becomes pinned_to)."""
        shown = {key: value for key, value in message.items() if key != "pinned"}
        if message.get("pinned"):
            shown["pinned_to"] = [self._channel_of(message)]
        if not include_metadata:
            shown.pop("metadata", None)
        return copy.deepcopy(shown)

    def _channel_of(self, message: JsonDict) -> str:
        for channel_id, stored in self._messages.items():
            if stored.get(message["ts"]) is message:
                return channel_id
        return ""

    def top_level(self, channel_id: str) -> list[JsonDict]:
        """What conversations.history lists: parents, plain messages and broadcasts."""
        return [
            m
            for m in self.messages(channel_id)
            if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
        ]

    def thread(self, channel_id: str, ts: str) -> list[JsonDict]:
        root = self.find_message(channel_id, ts)
        root_ts = root.get("thread_ts") or root["ts"]
        return [m for m in self.messages(channel_id) if m["ts"] == root_ts or m.get("thread_ts") == root_ts]

    def permalink(self, channel_id: str, ts: str) -> str:
        message = self.find_message(channel_id, ts)
        link = f"{self.team_url}archives/{channel_id}/p{ts.replace('.', '')}"
        thread_ts = message.get("thread_ts")
        if thread_ts and thread_ts != ts:
            link += f"?thread_ts={thread_ts}&cid={channel_id}"
        return link

    # ----- triggers and views ------------------------------------------------

    def publish_home(self, user_id: str, definition: JsonDict) -> JsonDict:
        """A user's Home tab: published views replace each other, one per user."""
        previous = self.homes.get(user_id)
        view_id = previous["id"] if previous else self.ids.next("V")
        view = {**copy.deepcopy(definition), "id": view_id, "team_id": self.team_id, "type": "home",
                "hash": f"{self._now_seconds()}.{self.ids.opaque(8)}"}  # fmt: skip
        self.homes[user_id] = view
        return copy.deepcopy(view)

    def issue_trigger(self, user_id: str, *, view_id: str | None = None) -> str:
        trigger_id = f"{self._now_seconds()}.{self.ids.opaque(12)}"
        self._triggers[trigger_id] = {"user": user_id, "issued": self.clock(), "view_id": view_id}
        return trigger_id

    def redeem_trigger(self, trigger_id: str | None) -> JsonDict:
        trigger = self._triggers.get(trigger_id or "")
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if self.clock() - trigger["issued"] > TRIGGER_LIFETIME:
            raise SlackError("expired_trigger_id")
        return trigger

    def open_view(self, trigger_id: str, definition: JsonDict) -> JsonDict:
        trigger = self.redeem_trigger(trigger_id)
        view_id = self.ids.next("V")
        view = self._render_view(view_id, definition, root_view_id=view_id, previous_view_id=None)
        self.views[view_id] = {
            "id": view_id,
            "view": view,
            "user": trigger["user"],
            "trigger_id": trigger_id,
            "stack": [view_id],
            "closed": False,
        }
        return view

    def push_view(self, trigger_id: str, definition: JsonDict) -> JsonDict:
        trigger = self.redeem_trigger(trigger_id)
        below = self._top_open_view(trigger["user"], trigger.get("view_id"))
        return self.stack_view(below, definition, trigger_id=trigger_id)

    def stack_view(self, below: JsonDict, definition: JsonDict, *, trigger_id: str | None) -> JsonDict:
        """Put a view on top of `below`'s stack (views.push or response_action push)."""
        stack: list[str] = below["stack"]
        if len(stack) >= MAX_VIEW_STACK:
            raise SlackError("push_limit_reached")
        view_id = self.ids.next("V")
        view = self._render_view(view_id, definition, root_view_id=stack[0], previous_view_id=stack[-1])
        stack.append(view_id)
        self.views[view_id] = {
            "id": view_id,
            "view": view,
            "user": below["user"],
            "trigger_id": trigger_id,
            "stack": stack,
            "closed": False,
        }
        return view

    def _top_open_view(self, user_id: str, view_id: str | None) -> JsonDict:
        if view_id is not None and view_id in self.views and not self.views[view_id]["closed"]:
            record = self.views[view_id]
        else:
            open_views = [r for r in self.views.values() if r["user"] == user_id and not r["closed"]]
            if not open_views:
                raise SlackError("not_found")
            record = open_views[-1]
        return self.views[record["stack"][-1]]

    def find_view(self, *, view_id: str | None = None, external_id: str | None = None) -> JsonDict:
        for record in self.views.values():
            matches = record["id"] == view_id if view_id else record["view"].get("external_id") == external_id
            if matches and not record["closed"]:
                return record
        raise SlackError("not_found")

    def update_view(self, record: JsonDict, definition: JsonDict, *, expected_hash: str | None = None) -> JsonDict:
        old = record["view"]
        if expected_hash and expected_hash != old["hash"]:
            raise SlackError("hash_conflict")
        view = self._render_view(
            record["id"],
            definition,
            root_view_id=old["root_view_id"],
            previous_view_id=old["previous_view_id"],
        )
        view["state"] = old["state"]
        record["view"] = view
        return view

    def close_view(self, view_id: str, *, whole_stack: bool = False) -> None:
        record = self.views[view_id]
        stack: list[str] = record["stack"]
        closing = list(stack) if whole_stack else [view_id]
        for closed_id in closing:
            self.views[closed_id]["closed"] = True
            if closed_id in stack:
                stack.remove(closed_id)

    def _render_view(
        self, view_id: str, definition: JsonDict, *, root_view_id: str, previous_view_id: str | None
    ) -> JsonDict:
        view: JsonDict = {
            "id": view_id,
            "team_id": self.team_id,
            "type": "modal",
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            "state": {"values": {}},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": None,
            "submit": None,
            "app_id": self.api_app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        view.update(copy.deepcopy(definition))
        view.update(
            {
                "id": view_id,
                "hash": f"{self._now_seconds()}.{self.ids.opaque(8)}",
                "root_view_id": root_view_id,
                "previous_view_id": previous_view_id,
            }
        )
        return view

    # ----- files -------------------------------------------------------------

    def reserve_file(self, filename: str, length: int, *, user: str) -> str:
        file_id = self.ids.next("F")
        self.files[file_id] = {
            "id": file_id,
            "filename": filename,
            "title": filename,
            "content": b"",
            "length": length,
            "uploaded": False,
            "channels": [],
            "initial_comment": None,
            "user": user,
            "created": self._now_seconds(),
        }
        return file_id

    def receive_upload(self, file_id: str, content: bytes) -> None:
        record = self.files.get(file_id)
        if record is None:
            raise SlackError("file_not_found")
        record["content"] = content
        record["uploaded"] = True

    def complete_upload(self, entries: list[JsonDict]) -> list[JsonDict]:
        records = []
        for entry in entries:
            record = self.files.get(str(entry.get("id")))
            if record is None:
                raise SlackError("file_not_found")
            if not record["uploaded"]:
                raise SlackError("file_upload_not_completed")
            record["title"] = entry.get("title") or record["filename"]
            records.append(record)
        return records

    def register_shared_file(self, described: JsonDict, *, user: str) -> JsonDict:
        """Files attached to seeded user messages become real, fetchable files."""
        file_id = str(described.get("id") or self.ids.next("F"))
        name = str(described.get("name") or described.get("filename") or f"{file_id}.txt")
        content = described.get("content", b"")
        self.files[file_id] = {
            "id": file_id,
            "filename": name,
            "title": described.get("title") or name,
            "content": content.encode() if isinstance(content, str) else bytes(content),
            "length": len(content),
            "uploaded": True,
            "channels": [],
            "initial_comment": None,
            "user": user,
            "created": self._now_seconds(),
        }
        return self.public_file(file_id)

    def public_file(self, file_id: str) -> JsonDict:
        record = self.files.get(file_id)
        if record is None:
            raise SlackError("file_not_found")
        name = record["filename"]
        mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        private_url = f"{self.base_url}files-pri/{self.team_id}-{file_id}/{name}"
        return {
            "id": file_id,
            "created": record["created"],
            "timestamp": record["created"],
            "name": name,
            "title": record["title"],
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1] if "." in name else "binary",
            "user": record["user"],
            "user_team": self.team_id,
            "size": len(record["content"]),
            "mode": "hosted",
            "is_external": False,
            "is_public": True,
            "url_private": private_url,
            "url_private_download": private_url + "?download=1",
            "permalink": f"{self.team_url}files/{record['user']}/{file_id}/{name}",
            "channels": list(record["channels"]),
            "initial_comment": record.get("initial_comment"),
        }

    # ----- misc --------------------------------------------------------------

    def now_ts(self) -> str:
        return ts_from_datetime(self.clock())

    def _now_seconds(self) -> int:
        return int(to_micros(self.clock()) // 1_000_000)

    def expire_all_triggers(self) -> None:
        """Test helper: make every issued trigger_id stale without moving the clock."""
        for trigger in self._triggers.values():
            trigger["issued"] = self.clock() - TRIGGER_LIFETIME - timedelta(seconds=1)

    def trigger_info(self, trigger_id: str) -> Any:
        return self._triggers.get(trigger_id)
