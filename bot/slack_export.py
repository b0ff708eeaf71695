"""Reading a Slack workspace export (Workspace settings → Import/Export data), as a `.zip` or an
unpacked folder: `users.json`, `channels.json` (and `groups.json` for private channels), and a
folder per channel with one `YYYY-MM-DD.json` per day, each a list of messages. Exports vary (old
ones lack `blocks`, bot posts come with or without `bot_profile`): what is missing is skipped."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

DAY_FILE_SUFFIX = ".json"


class ExportError(ValueError):
    """The export cannot be read as one; the message is one line for the operator."""


@dataclass(frozen=True)
class ExportChannel:
    id: str
    name: str
    is_private: bool
    purpose: str


def _refuse_escapes(path: Path, names: list[str]) -> None:
    for name in names:
        if name.startswith("/") or ".." in Path(name).parts:
            raise ExportError(f"{path} holds {name!r}, a path outside the export: refused")


class SlackExport:
    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise ExportError(f"{path} does not exist: give a Slack export .zip or its unpacked folder")
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path) if path.is_file() else None
        except zipfile.BadZipFile:
            raise ExportError(f"{path} is not a .zip file") from None
        if self._zip is None and not path.is_dir():
            raise ExportError(f"{path} is neither a .zip nor a folder")
        if self._zip is not None:
            _refuse_escapes(path, self._zip.namelist())
        self._root = self._find_root()

    def _find_root(self) -> str:
        """Some tools zip the export inside a top folder: find where channels.json is."""
        names = self._names()
        for name in sorted(names, key=len):
            if name.endswith("channels.json") and not name.endswith("mpim_channels.json"):
                return name[: -len("channels.json")]
        raise ExportError(f"{self.path} has no channels.json: it is not a Slack workspace export")

    def _names(self) -> list[str]:
        if self._zip is not None:
            return self._zip.namelist()
        return [str(p.relative_to(self.path)) for p in self.path.rglob("*.json")]

    def _read(self, name: str) -> Any:
        full = self._root + name
        try:
            raw = self._zip.read(full) if self._zip is not None else (self.path / full).read_bytes()
        except (KeyError, FileNotFoundError):
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ExportError(f"{full} in {self.path} is not JSON") from None

    def channel(self, name: str) -> ExportChannel:
        wanted = name.lstrip("#")
        for listing, private in (("channels.json", False), ("groups.json", True)):
            for entry in self._read(listing) or []:
                if isinstance(entry, dict) and entry.get("name") == wanted and entry.get("id"):
                    purpose = (entry.get("purpose") or {}).get("value") or (entry.get("topic") or {}).get("value")
                    return ExportChannel(str(entry["id"]), wanted, private, str(purpose or ""))
        raise ExportError(f"there is no channel #{wanted} in the export (channels.json, groups.json)")

    def day_files(self, channel: ExportChannel, since: date | None, until: date | None) -> list[str]:
        """The channel's day files in the period, oldest first (names inside the export)."""
        prefix = self._root + channel.name + "/"
        days = []
        for name in sorted(n[len(prefix) :] for n in self._names() if n.startswith(prefix)):
            try:
                day = date.fromisoformat(name.removesuffix(DAY_FILE_SUFFIX))
            except ValueError:
                continue  # not a day file
            if not (since and day < since) and not (until and day > until):
                days.append(f"{channel.name}/{name}")
        return days

    def day(self, name: str) -> list[dict[str, Any]]:
        """One day file's messages, oldest first; a file that is not a list of messages with a
        `ts` is refused, naming it."""
        messages = self._read(name)
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ExportError(f"{name} in {self.path} is not a list of messages")
        for message in messages:
            if not message.get("ts"):
                raise ExportError(f"{name} in {self.path} has a message without ts")
        return sorted(messages, key=lambda m: float(m["ts"]))

    def user_names(self) -> dict[str, str]:
        """User id -> display name, else real name, else handle."""
        names = {}
        for user in self._read("users.json") or []:
            if isinstance(user, dict) and user.get("id"):
                profile = user.get("profile") or {}
                name = profile.get("display_name") or profile.get("real_name") or user.get("real_name")
                names[str(user["id"])] = str(name or user.get("name") or user["id"])
        return names

    def user_handles(self) -> dict[str, str]:
        """Handle (and display name), lowercased -> user id: how a close file names an owner."""
        handles: dict[str, str] = {}
        for user in self._read("users.json") or []:
            if isinstance(user, dict) and user.get("id"):
                profile = user.get("profile") or {}
                for name in (user.get("name"), profile.get("display_name"), profile.get("real_name")):
                    if name:
                        handles.setdefault(str(name).lower(), str(user["id"]))
        return handles
