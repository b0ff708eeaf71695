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


class SlackExport:
    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise ExportError(f"{path} does not exist: give a Slack export .zip or its unpacked folder")
        self.path = path
        self._zip = zipfile.ZipFile(path) if path.is_file() else None
        if self._zip is None and not path.is_dir():
            raise ExportError(f"{path} is neither a .zip nor a folder")
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

    def messages(self, channel: ExportChannel, since: date | None, until: date | None) -> list[dict[str, Any]]:
        """Every message of the channel's day files in the period, oldest first."""
        prefix = self._root + channel.name + "/"
        days = sorted(n[len(prefix) :] for n in self._names() if n.startswith(prefix) and n.endswith(DAY_FILE_SUFFIX))
        found: list[dict[str, Any]] = []
        for day_file in days:
            try:
                day = date.fromisoformat(day_file.removesuffix(DAY_FILE_SUFFIX))
            except ValueError:
                continue  # not a day file
            if (since and day < since) or (until and day > until):
                continue
            found += [m for m in self._read(f"{channel.name}/{day_file}") or [] if isinstance(m, dict) and m.get("ts")]
        return sorted(found, key=lambda m: float(m["ts"]))

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
