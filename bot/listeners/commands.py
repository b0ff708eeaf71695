"""`/incident <subcommand>`. The ack checks the grammar (so bad input is answered at once);
the work runs lazily after the ack, so Slack's 3 seconds hold however slow its Web API is."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.domain import rules
from bot.domain.models import Incident, NewTask, State
from bot.services import incidents, postmortem, tasks, visibility
from bot.services import stats as stats_service
from bot.services.context import Context
from bot.slack_api import SlackError
from bot.ui import messages, modals, task_messages
from storage import DATABASE_ERRORS

log = logging.getLogger(__name__)
COMMAND = "/incident"

Handler = Callable[[Context, dict[str, Any], AsyncRespond], Awaitable[None]]


def register(app: AsyncApp, ctx: Context) -> None:
    async def ack_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack(**acknowledgement(ctx, command))

    async def run_command(command: dict[str, Any], respond: AsyncRespond) -> None:
        await run(ctx, command, respond)

    app.command(COMMAND)(ack=ack_command, lazy=[run_command])


def acknowledgement(ctx: Context, command: dict[str, Any]) -> dict[str, Any]:
    """What the ack says: the usage for help and mistakes, a word of progress otherwise."""
    sub = rules.split_subcommand(command.get("text", ""))
    if sub.name == "help":
        return {"text": messages.USAGE}
    if sub.name not in HANDLERS:
        return {"text": messages.unknown_subcommand(sub.name)}
    try:
        check_grammar(ctx, sub)
    except rules.UsageError as exc:
        return {"text": messages.with_usage(str(exc))}
    return {"text": messages.OPENING} if sub.name == "start" and sub.rest else {}


def check_grammar(ctx: Context, sub: rules.Subcommand) -> None:
    """The shape of the input only. Checks that depend on the time (a due date in the past) are
    the handler's, so the ack and the work cannot disagree across midnight."""
    checks: dict[str, Callable[[str], object]] = {
        "note": lambda rest: rules.parse_note(rest, ctx.clock.now(), ctx.tz),
        "severity": rules.parse_severity,
        "status": rules.parse_status,
        "commander": rules.parse_user,
        "role": rules.parse_role,
        "stats": rules.parse_stats_period,
        "task": lambda rest: rules.parse_task(rest, date.min),
    }
    if sub.name in checks:
        checks[sub.name](sub.rest)


def _grammar_error(ctx: Context, sub: rules.Subcommand) -> bool:
    try:
        check_grammar(ctx, sub)
    except rules.UsageError:
        return True
    return False


async def run(ctx: Context, command: dict[str, Any], respond: AsyncRespond) -> None:
    sub = rules.split_subcommand(command.get("text", ""))
    handler = HANDLERS.get(sub.name)
    if handler is None or _grammar_error(ctx, sub):
        return  # help, unknown subcommands and malformed input were answered by the ack
    try:
        await handler(ctx, command, respond)
    except rules.UsageError as exc:
        await respond(text=str(exc))
    except SlackError as exc:
        log.warning("/incident %s failed: %s", sub.name, exc)
        await respond(text=messages.slack_refused(exc.method, exc.code))
    except DATABASE_ERRORS as exc:
        log.warning("/incident %s: database unreachable: %s", sub.name, type(exc).__name__)
        await respond(text=messages.database_down(f"running `/incident {sub.name}`"))
    except Exception:
        # The one place a command's unexpected failure is caught: logged with its traceback for
        # the operator, and the person is told instead of being left with silence.
        log.exception("/incident %s failed", sub.name)
        await respond(text=messages.something_failed(f"running `/incident {sub.name}`"))


def _rest(command: dict[str, Any]) -> str:
    return rules.split_subcommand(command.get("text", "")).rest


async def _incident_here(
    ctx: Context, command: dict[str, Any], respond: AsyncRespond, open_only: bool = True
) -> Incident | None:
    incident = await ctx.store.incident_by_channel(ctx.team_id, command["channel_id"])
    if incident is None:
        await respond(text=messages.NOT_AN_INCIDENT_CHANNEL)
        return None
    if open_only and incident.state is State.CLOSED:
        await respond(text=messages.closed_already(incident))
        return None
    return incident


async def start(ctx: Context, command: dict[str, Any], respond: AsyncRespond) -> None:
    title = _rest(command)
    if not title:
        await ctx.slack.open_view(command["trigger_id"], modals.start_modal(command["channel_id"]))
        return
    await declare_and_report(
        ctx, respond, user_id=command["user_id"], title=title, origin_channel_id=command["channel_id"]
    )


async def declare_and_report(ctx: Context, respond: Callable[..., Awaitable[Any]], **details: Any) -> None:
    try:
        incident = await incidents.declare(ctx, **details)
    except incidents.StartFailed as failed:
        text, blocks = messages.start_failed(failed.incident, str(failed.error))
        await respond(text=text, blocks=blocks)
        return
    await respond(text=messages.opened_reply(incident))


async def note(ctx: Context, command: dict[str, Any], respond: AsyncRespond) -> None:
    if incident := await _incident_here(ctx, command, respond):
        await incidents.add_note(ctx, incident, command["user_id"], _rest(command))


async def severity(ctx: Context, command: dict[str, Any], respond: AsyncRespond) -> None:
    if incident := await _incident_here(ctx, command, respond):
        await incidents.set_severity(ctx, incident, command["user_id"], rules.parse_severity(_rest(command)))


async def status(ctx: Context, command: dict[str, Any], respond: AsyncRespond) -> None:
    if incident := await _incident_here(ctx, command, respond):
        new_status, text = rules.parse_status(_rest(command))
        await incidents.set_status(ctx, incident, command["user_id"], new_status, text)


async def resolve(ctx: Context, command: dict[str, Any], respond: AsyncRespond) -> None:
    if incident := await _incident_here(ctx, command, respond):
        await incidents.resolve(ctx, incident, command["user_id"], _rest(command))
        await respond(text=messages.resolved_reply(incident))


async def role(ctx: Context, command: dict[str, Any], respond: AsyncRespond) -> None:
    if incident := await _incident_here(ctx, command, respond):
        name, person = rules.parse_role(_rest(command))
        await incidents.set_role(ctx, incident, command["user_id"], name, person)


async def commander(ctx: Context, command: dict[str, Any], respond: AsyncRespond) -> None:
    if incident := await _incident_here(ctx, command, respond):
        await incidents.set_commander(ctx, incident, command["user_id"], rules.parse_user(_rest(command)))


async def close(ctx: Context, command: dict[str, Any], respond: AsyncRespond) -> None:
    if incident := await _incident_here(ctx, command, respond):
        await ctx.slack.open_view(command["trigger_id"], modals.close_modal(incident, ctx.clock.now()))


async def task(ctx: Context, command: dict[str, Any], respond: AsyncRespond) -> None:
    if incident := await _incident_here(ctx, command, respond, open_only=False):
        today = rules.local_day(ctx.clock.now(), ctx.tz)
        owner, description, due = rules.parse_task(_rest(command), today)
        created = await tasks.add_tasks(
            ctx,
            incident,
            [NewTask(description=description, owner_id=owner, due_date=due)],
            command["user_id"],
        )
        await respond(text=messages.task_added_reply(created[0], incident))


async def list_tasks(ctx: Context, command: dict[str, Any], respond: AsyncRespond) -> None:
    today = rules.local_day(ctx.clock.now(), ctx.tz)
    incident = await ctx.store.incident_by_channel(ctx.team_id, command["channel_id"])
    if incident is not None:
        found = await ctx.store.tasks_of_incident(incident.id, only_open=True)
        await respond(text=task_messages.task_list(f"*Open tasks of {incident.ref}*", found, today))
        return
    found = await ctx.store.open_tasks_of_owner(ctx.team_id, command["user_id"])
    refs = {t.incident_id: await _ref(ctx, t.incident_id) for t in found}
    await respond(text=task_messages.task_list("*Your open tasks*", found, today, refs))


async def _ref(ctx: Context, incident_id: int) -> str:
    incident = await ctx.store.incident_by_id(incident_id)
    return incident.ref if incident else "?"


async def list_incidents(ctx: Context, command: dict[str, Any], respond: AsyncRespond) -> None:
    found = await ctx.store.list_incidents(ctx.team_id, [State.OPEN])
    shown = await visibility.visible_to(ctx, command["user_id"], found)
    await respond(text=messages.incident_list(shown, ctx.tz))


async def stats(ctx: Context, command: dict[str, Any], respond: AsyncRespond) -> None:
    days = rules.parse_stats_period(_rest(command))
    await respond(text=messages.stats(await stats_service.totals_for(ctx, command["user_id"], days), days))


async def repost_postmortem(ctx: Context, command: dict[str, Any], respond: AsyncRespond) -> None:
    incident = await _incident_here(ctx, command, respond, open_only=False)
    if incident is None:
        return
    if incident.state is not State.CLOSED:
        await respond(text=messages.still_open(incident))
        return
    await postmortem.republish(ctx, incident, command["user_id"], command["channel_id"])
    await respond(text=messages.republishing(incident))


HANDLERS: dict[str, Handler] = {
    "start": start,
    "note": note,
    "severity": severity,
    "status": status,
    "commander": commander,
    "resolve": resolve,
    "role": role,
    "close": close,
    "task": task,
    "tasks": list_tasks,
    "list": list_incidents,
    "postmortem": repost_postmortem,
    "stats": stats,
}
