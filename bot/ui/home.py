"""The App Home tab: a person's open tasks, the incidents they may see, recent postmortems. Pure."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.models import Incident, Status, Task
from bot.ui.ids import Action
from bot.ui.messages import context_block, local_time, safe, section_block
from bot.ui.task_messages import task_buttons

MAX_TASKS = 15  # each is three blocks; a view holds 100
MAX_INCIDENTS = 10
Blocks = list[dict[str, Any]]


def home_view(
    tasks: list[tuple[Task, Incident]],
    incidents: list[Incident],
    postmortems: list[Incident],
    today: date,
    tz: ZoneInfo,
) -> dict[str, Any]:
    blocks: Blocks = [_header("Incidents"), _declare_button(), {"type": "divider"}]
    blocks += _tasks_part(tasks, today)
    blocks += [{"type": "divider"}, *_incidents_part(incidents, tz)]
    blocks += [{"type": "divider"}, *_postmortems_part(postmortems, tz)]
    return {"type": "home", "blocks": blocks}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def _declare_button() -> dict[str, Any]:
    button = {"type": "button", "action_id": Action.OPEN_START_FORM, "style": "danger",
              "text": {"type": "plain_text", "text": "Declare an incident"}}  # fmt: skip
    return {"type": "actions", "elements": [button]}


def _tasks_part(tasks: list[tuple[Task, Incident]], today: date) -> Blocks:
    if not tasks:
        return [section_block("*Your open tasks*\nNothing on your plate: no corrective task is waiting for you.")]
    # Overdue first, then by due date; tasks without one last.
    ordered = sorted(tasks, key=lambda p: (p[0].due_date is None, p[0].due_date or date.max, p[0].id))
    blocks: Blocks = [section_block(f"*Your open tasks* ({len(tasks)})")]
    for task, incident in ordered[:MAX_TASKS]:
        blocks += [section_block(_task_text(task, incident, today)), task_buttons(task)]
    if len(ordered) > MAX_TASKS:
        blocks.append(context_block(f"… and {len(ordered) - MAX_TASKS} more: `/incident tasks` lists them all."))
    return blocks


def _task_text(task: Task, incident: Incident, today: date) -> str:
    if task.due_date is None:
        due = "no due date"
    elif task.due_date < today:
        due = f"*overdue* since {task.due_date.isoformat()}"
    else:
        due = f"due {task.due_date.isoformat()}"
    return f"{safe(task.description, 500)}\n{incident.ref}: {safe(incident.title, 200)} · {due}"


def _incidents_part(incidents: list[Incident], tz: ZoneInfo) -> Blocks:
    if not incidents:
        return [section_block("*Open incidents*\nNone right now.")]
    lines = [
        f"• *{i.ref}* {safe(i.title, 150)} ({i.severity.value.upper()}, "
        f"{'resolved, postmortem to write' if i.status is Status.RESOLVED else i.status.value}) <#{i.channel_id}>, "
        f"since {local_time(i.started_at, tz)}"
        for i in incidents[:MAX_INCIDENTS]
    ]
    return [section_block("*Open incidents*\n" + "\n".join(lines))]


def _postmortems_part(postmortems: list[Incident], tz: ZoneInfo) -> Blocks:
    if not postmortems:
        return [section_block("*Recent postmortems*\nNone yet.")]
    lines = [
        f"• *{i.ref}* {safe(i.title, 150)}: closed {local_time(i.closed_at or i.started_at, tz)}, "
        f"postmortem in <#{i.channel_id}>"
        for i in postmortems
    ]
    return [section_block("*Recent postmortems*\n" + "\n".join(lines))]
