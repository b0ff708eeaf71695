"""Checks Web API calls against Slack's published OpenAPI (v2) description."""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

SPEC_FILE = "slack_web_openapi_v2_without_examples.json"

# The published spec predates several arguments that today's API documents and
# that slack-sdk 3.x sends; without these the check would flag correct code.
KNOWN_NEWER_ARGS: dict[str, frozenset[str]] = {
    "chat.postMessage": frozenset({"metadata", "markdown_text", "container_id"}),
    "chat.update": frozenset({"metadata", "file_ids", "reply_broadcast", "markdown_text"}),
    "chat.postEphemeral": frozenset({"markdown_text"}),
    "conversations.history": frozenset({"include_all_metadata"}),
    "conversations.replies": frozenset({"include_all_metadata"}),
    "views.open": frozenset({"interactivity_pointer"}),
    "views.push": frozenset({"interactivity_pointer"}),
}

# Whole methods newer than the spec (the v2 file upload flow, Socket Mode).
# Described here so calls to them are still checked rather than waved through.
KNOWN_NEWER_METHODS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # method: (all arguments, required arguments)
    "files.getUploadURLExternal": (
        frozenset({"filename", "length", "alt_txt", "snippet_type"}),
        frozenset({"filename", "length"}),
    ),
    "files.completeUploadExternal": (
        frozenset({"files", "channel_id", "channels", "initial_comment", "thread_ts", "blocks"}),
        frozenset({"files"}),
    ),
    "apps.connections.open": (frozenset(), frozenset()),
}

# token travels in the header; team_id is added to every call by slack-sdk's
# default_params when Bolt builds per-request clients (org-wide app support).
ALWAYS_ALLOWED = frozenset({"token", "team_id"})


@dataclass(frozen=True)
class MethodSpec:
    known: frozenset[str]
    required: frozenset[str]


@lru_cache(maxsize=4)
def load_method_specs(spec_dir: pathlib.Path) -> dict[str, MethodSpec]:
    """Parse the 1 MB spec once per process; every LocalSlack shares the result."""
    raw = json.loads((spec_dir / SPEC_FILE).read_text(encoding="utf-8"))
    specs = {path.lstrip("/"): _method_spec(ops) for path, ops in raw["paths"].items()}
    for method, (known, required) in KNOWN_NEWER_METHODS.items():
        specs.setdefault(method, MethodSpec(known, required))
    for method, extra in KNOWN_NEWER_ARGS.items():
        if method in specs:
            old = specs[method]
            specs[method] = MethodSpec(old.known | extra, old.required)
    return specs


def _method_spec(operations: dict[str, Any]) -> MethodSpec:
    # The spec lists GET for some methods slack-sdk POSTs, so merge all verbs.
    known: set[str] = set()
    required: set[str] = set()
    for operation in operations.values():
        for param in operation.get("parameters", []):
            if param.get("in") not in ("query", "formData", "body", "header"):
                continue
            known.add(param["name"])
            if param.get("required"):
                required.add(param["name"])
    return MethodSpec(frozenset(known), frozenset(required - ALWAYS_ALLOWED))


class SpecChecker:
    def __init__(self, spec_dir: pathlib.Path) -> None:
        self._specs = load_method_specs(spec_dir.resolve())

    def covers(self, method: str) -> bool:
        return method in self._specs

    def violations(self, method: str, args: dict[str, Any]) -> list[str]:
        spec = self._specs.get(method)
        if spec is None:
            return []
        missing = sorted(name for name in spec.required if name not in args)
        unknown = sorted(name for name in args if name not in spec.known | ALWAYS_ALLOWED)
        return [f"{method}: missing required argument '{name}'" for name in missing] + [
            f"{method}: unknown argument '{name}'" for name in unknown
        ]
