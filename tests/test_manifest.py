"""manifest.yml: valid for Slack's manifest schema, and in step with the listeners the app registers.

A subscribed event without a listener gets a 404, which Slack retries and counts as a failure;
a listener without a subscription is dead code that hides a missing subscription. So both
directions are checked by offering the real app the requests the manifest makes Slack send.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from slack_bolt.async_app import AsyncApp
from slack_bolt.listener.async_listener import AsyncListener
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.app import build_app
from bot.clock import SystemClock
from bot.config import Settings
from bot.listeners.commands import COMMAND
from bot.services.context import Context
from bot.slack_api import Identity, Slack, make_client
from bot.ui.ids import Action, View
from storage import Database, Store

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCHEMA_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "slack-manifest-schema"
MANIFEST: dict[str, Any] = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))

BOT_EVENTS: list[str] = MANIFEST["settings"]["event_subscriptions"]["bot_events"]
SLASH_COMMANDS: list[str] = [c["command"] for c in MANIFEST["features"]["slash_commands"]]
INTERACTIVITY: bool = MANIFEST["settings"].get("interactivity", {}).get("is_enabled", False)

# message.<suffix> subscriptions all deliver `message` events; channel_type tells them apart.
MESSAGE_CHANNEL_TYPES = {"channels": "channel", "groups": "group", "im": "im", "mpim": "mpim"}

# The scope Slack requires before it accepts each subscription.
REQUIRED_SCOPES: dict[str, str | None] = {
    "app_home_opened": None,  # needs no scope
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
    "message.mpim": "mpim:history",
    "reaction_added": "reactions:read",
    "reaction_removed": "reactions:read",
}

needs_schema = pytest.mark.skipif(not SCHEMA_DIR.is_dir(), reason=f"no manifest schema at {SCHEMA_DIR}")


# ---------------------------------------------------------------- schema


def _version(path: pathlib.Path) -> tuple[int, ...]:
    """manifest.schema.1.0.0.json -> (1, 0, 0)."""
    return tuple(int(part) for part in path.name.split(".")[2:-1])


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _schema_registry(folder: pathlib.Path) -> Registry:
    """Every schema file of the folder, under its file URI, its own $id if it has one, and each
    remote URL another file refers to it by (so nothing is fetched over the network)."""
    contents = {path: json.loads(path.read_text(encoding="utf-8")) for path in folder.rglob("*.json")}
    by_name = {path.name: path for path in contents}
    uris: list[tuple[str, pathlib.Path]] = [(path.as_uri(), path) for path in contents]
    uris += [(doc["$id"], path) for path, doc in contents.items() if "$id" in doc]
    for doc in contents.values():
        for ref in _refs(doc):
            target = ref.split("#", 1)[0]
            if target and target.rsplit("/", 1)[-1] in by_name:
                uris.append((target, by_name[target.rsplit("/", 1)[-1]]))
    resources = [(uri, Resource.from_contents(contents[path], default_specification=DRAFT7)) for uri, path in uris]
    return Registry().with_resources(resources)


def _versioned_schema(folder: pathlib.Path, manifest: dict[str, Any]) -> pathlib.Path:
    """The schema of the major version the manifest claims, else the newest one."""
    files = sorted((folder / "schemas").glob("manifest.schema.*.json"), key=_version)
    major = (manifest.get("_metadata") or {}).get("major_version")
    claimed = [path for path in files if _version(path)[0] == major]
    return (claimed or files)[-1]


def _schema_errors(schema_path: pathlib.Path, manifest: dict[str, Any]) -> list[str]:
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    validator = Draft7Validator(schema, registry=_schema_registry(SCHEMA_DIR))
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
    # A oneOf failure quotes the whole manifest; the start of each message says enough.
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}" for e in errors]


@needs_schema
def test_manifest_matches_the_schema_of_its_version() -> None:
    schema_path = _versioned_schema(SCHEMA_DIR, MANIFEST)
    assert _schema_errors(schema_path, MANIFEST) == [], schema_path.name


@needs_schema
def test_manifest_matches_the_all_versions_schema() -> None:
    """The top-level schema picks the version from _metadata and refers to it by URL."""
    assert _schema_errors(SCHEMA_DIR / "manifest.schema.json", MANIFEST) == []


def test_socket_mode_is_the_default() -> None:
    assert MANIFEST["settings"]["socket_mode_enabled"] is True
    assert MANIFEST["features"]["bot_user"]["always_online"] is True


def test_every_subscription_has_its_scope() -> None:
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    needed = {REQUIRED_SCOPES[event] for event in BOT_EVENTS} - {None} | ({"commands"} if SLASH_COMMANDS else set())
    assert needed <= scopes
    assert len(scopes) == len(MANIFEST["oauth_config"]["scopes"]["bot"]), "a scope is listed twice"


# ---------------------------------------------------------------- the slash command


def test_the_slash_command_is_the_one_the_app_listens_to() -> None:
    assert SLASH_COMMANDS == ["/incident"]
    assert COMMAND == "/incident"
    command = MANIFEST["features"]["slash_commands"][0]
    assert command["should_escape"] is True  # `@user` arrives as <@U123|name>
    assert command["usage_hint"] and command["description"]


# ---------------------------------------------------------------- the requests Slack will send


def _event(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "event_callback",
        "team_id": "T1",
        "api_app_id": "A1",
        "event_id": "Ev1",
        "event_time": 1767225600,
        "event": {"event_ts": "1767225600.000100", **event},
    }


def event_deliveries(subscription: str) -> list[dict[str, Any]]:
    """The bodies a bot-event subscription makes Slack send. A message subscription also
    delivers edits and deletions as subtypes, which `app.message()` would not match."""
    kind, _, suffix = subscription.partition(".")
    if kind != "message":
        return [_event({"type": subscription})]
    base = {"type": "message", "channel": "C1", "channel_type": MESSAGE_CHANNEL_TYPES[suffix]}
    original = {"type": "message", "user": "U1", "text": "db is down", "ts": "1767225600.000100"}
    return [
        _event({**base, **original}),
        _event({**base, "subtype": "message_changed", "message": {**original, "text": "db down"}}),
        _event({**base, "subtype": "message_deleted", "deleted_ts": original["ts"], "previous_message": original}),
    ]


def command_delivery(command: str) -> dict[str, Any]:
    return {
        "command": command,
        "text": "help",
        "team_id": "T1",
        "channel_id": "C1",
        "user_id": "U1",
        "trigger_id": "1.2.3",
        "response_url": "https://hooks.slack.com/commands/T1/1/x",
    }


def interactivity_deliveries() -> list[dict[str, Any]]:
    """With interactivity on, Slack sends the clicks on the app's buttons and its modal submissions."""
    actor = {"user": {"id": "U1"}, "team": {"id": "T1"}, "trigger_id": "1.2.3"}
    clicks = [
        {**actor, "type": "block_actions", "actions": [{"type": "button", "action_id": a, "block_id": "b"}]}
        for a in Action
    ]
    submissions = [
        {
            **actor,
            "type": "view_submission",
            "view": {"id": "V1", "type": "modal", "callback_id": v, "state": {"values": {}}},
        }
        for v in View
    ]
    return clicks + submissions


def manifest_deliveries() -> list[tuple[str, dict[str, Any]]]:
    """Everything the manifest makes Slack send, each with the manifest entry responsible for it."""
    sent = [(event, body) for event in BOT_EVENTS for body in event_deliveries(event)]
    sent += [(command, command_delivery(command)) for command in SLASH_COMMANDS]
    if INTERACTIVITY:
        sent += [("interactivity", body) for body in interactivity_deliveries()]
    return sent


# ---------------------------------------------------------------- the real app


@pytest.fixture(scope="module")
def app() -> AsyncApp:
    """The app as the bot builds it; nothing here touches the network or the database."""
    values: dict[str, Any] = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "s",
        "DATABASE_URL": "sqlite+aiosqlite:///:memory:",
    }
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    slack = Slack(make_client("xoxb-test", "http://127.0.0.1:9/"))
    identity = Identity("T1", "https://x.slack.com/", "U0BOT", "B0BOT")
    ctx = Context(settings, Store(Database(settings.database_url)), slack, SystemClock(), identity)
    built, _ = build_app(ctx)
    return built


async def _matches(listener: AsyncListener, body: dict[str, Any]) -> bool:
    request = AsyncBoltRequest(body=body, mode="socket_mode")
    return await listener.async_matches(req=request, resp=BoltResponse(status=200))


async def _listeners_for(app: AsyncApp, body: dict[str, Any]) -> list[AsyncListener]:
    return [listener for listener in app._async_listeners if await _matches(listener, body)]


def _name(listener: AsyncListener) -> str:
    functions = [listener.ack_function, *listener.lazy_functions]
    return "+".join(re.sub(r".*<locals>\.", "", f.__qualname__) for f in functions)


def _label(body: dict[str, Any]) -> str:
    event = body.get("event") or {}
    return str(event.get("subtype") or event.get("type") or body.get("command") or body["type"])


@pytest.mark.parametrize("subscription", BOT_EVENTS)
async def test_every_subscribed_event_has_a_listener(app: AsyncApp, subscription: str) -> None:
    unanswered = [_label(b) for b in event_deliveries(subscription) if not await _listeners_for(app, b)]
    assert unanswered == [], f"{subscription}: Slack would get a 404 for {unanswered}"


@pytest.mark.parametrize("command", SLASH_COMMANDS)
async def test_the_slash_command_has_a_listener(app: AsyncApp, command: str) -> None:
    assert await _listeners_for(app, command_delivery(command))


async def test_every_listener_answers_something_the_manifest_subscribes_to(app: AsyncApp) -> None:
    """The other way round: a listener no manifest entry feeds means a subscription is missing
    (an event type not subscribed, a command not declared, or interactivity off)."""
    deliveries = manifest_deliveries()
    served: dict[str, set[str]] = {}
    for listener in app._async_listeners:
        served[_name(listener)] = {entry for entry, body in deliveries if await _matches(listener, body)}
    assert served, "the app registered no listeners"
    unfed = [name for name, entries in served.items() if not entries]
    assert unfed == [], f"no manifest entry feeds {unfed}; what each listener serves: {served}"
