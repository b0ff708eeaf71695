"""Messages about corrective tasks: lists, the channel's notices, reminder DMs and the weekly
digest. Pure: data in, (text, blocks) out."""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.domain.models import Incident, Task, TaskStatus
from bot.domain.report import IncidentRow
from bot.ui.ids import Action
from bot.ui.messages import LIST_LIMIT, SECTION_LIMIT, Blocks, safe, section_block
from bot.ui.text import truncate


def task_line(task: Task, today: date) -> str:
    due = task.due_date.isoformat() if task.due_date else "no due date"
    late = (
        " *(overdue)*" if task.due_date and task.due_date < today and task.status is TaskStatus.OPEN else ""
    )
    done = ":white_check_mark: " if task.status is TaskStatus.DONE else ""
    return f"• {done}{safe(task.description, 300)} (<@{task.owner_id}>, {due}){late}"


def task_list(heading: str, tasks: list[Task], today: date, refs: dict[int, str] | None = None) -> str:
    if not tasks:
        return f"{heading}\nNo open tasks."
    ordered = sorted(
        tasks, key=lambda t: (not (t.due_date and t.due_date < today), t.due_date or date.max, t.id)
    )
    lines = [_with_ref(task_line(t, today), refs, t) for t in ordered[:LIST_LIMIT]]
    if len(ordered) > LIST_LIMIT:
        lines.append(f"…and {len(ordered) - LIST_LIMIT} more")
    return truncate("\n".join([heading, *lines]), SECTION_LIMIT)


def _with_ref(line: str, refs: dict[int, str] | None, task: Task) -> str:
    return f"{line} [{refs[task.incident_id]}]" if refs and task.incident_id in refs else line


def task_added(task: Task, who: str) -> str:
    due = f", due {task.due_date.isoformat()}" if task.due_date else ""
    return f":ballot_box_with_check: <@{who}> added a task for <@{task.owner_id}>{due}: {safe(task.description, 500)}"


def task_done(task: Task, who: str) -> str:
    return f":white_check_mark: <@{who}> completed a task: {safe(task.description, 500)}"


def reminder(task: Task, incident: Incident, today: date) -> tuple[str, Blocks]:
    if task.due_date is None:
        when = "has no due date"
    elif task.due_date < today:
        when = f"was due {task.due_date.isoformat()} (overdue)"
    else:
        when = f"is due {'today' if task.due_date == today else task.due_date.isoformat()}"
    text = (
        f":alarm_clock: Corrective task from {incident.ref} ({safe(incident.title, 200)}) {when}: "
        f"{safe(task.description, 1000)}. Channel: <#{incident.channel_id}>"
    )
    return text, [section_block(text), task_buttons(task)]


def task_buttons(task: Task) -> dict[str, Any]:
    def button(action: Action, label: str, style: str | None = None) -> dict[str, Any]:
        element: dict[str, Any] = {
            "type": "button",
            "action_id": action,
            "value": str(task.id),
            "text": {"type": "plain_text", "text": label},
        }
        if style:
            element["style"] = style
        return element

    return {
        "type": "actions",
        "elements": [
            button(Action.TASK_DONE, "Done", "primary"),
            button(Action.TASK_SNOOZE_DAY, "Snooze 1 day"),
            button(Action.TASK_SNOOZE_WEEK, "Snooze 1 week"),
        ],
    }


def _reminder_resolved(task: Task, incident: Incident, outcome: str) -> tuple[str, Blocks]:
    """The reminder DM after a button: same facts, the outcome instead of the buttons."""
    text = f"{incident.ref}: {safe(task.description, 1000)}\n{outcome}"
    return text, [section_block(text)]


def reminder_done(task: Task, incident: Incident) -> tuple[str, Blocks]:
    by = f"by <@{task.done_by}>" if task.done_by else "already"
    return _reminder_resolved(task, incident, f":white_check_mark: Done ({by})")


def reminder_snoozed(task: Task, incident: Incident, until: date) -> tuple[str, Blocks]:
    return _reminder_resolved(task, incident, f":zzz: Snoozed: next reminder on {until.isoformat()}")


def undeliverable(task: Task, error: str) -> str:
    return (
        f":warning: I cannot remind <@{task.owner_id}> about a corrective task ({error}): "
        f"{safe(task.description, 500)}. Reassign it with `/incident task`."
    )


def digest(incident: Incident, tasks: list[Task], today: date) -> tuple[str, Blocks]:
    text = task_list(f":clipboard: *Weekly digest: open corrective tasks of {incident.ref}*", tasks, today)
    return truncate(text, SECTION_LIMIT), [section_block(text)]


def weekly_digest(
    week: str, rows: list[IncidentRow], overdue: list[tuple[Task, Incident]], today: date
) -> str:
    """The workspace's Monday digest. Private incidents are left out: nothing of them is said
    outside their channel (their tasks' owners get their own reminders)."""
    lines = [f":calendar: *Incidents of week {week}*"]
    if not rows:
        lines.append("No incident was declared last week.")
    for r in rows:
        resolve = f"resolved in {r.time_to_resolve_min} min" if r.time_to_resolve_min is not None else "impact open"
        state = "closed" if r.closed_at else "open"
        lines.append(f"• *{r.ref}* {safe(r.title, 150)} ({r.severity.upper()}, {state}, {resolve})")
    lines.append("")
    lines.append(":alarm_clock: *Overdue corrective tasks*" if overdue else "No corrective task is overdue.")
    owners: dict[str, list[tuple[Task, Incident]]] = {}
    for task, incident in overdue:
        owners.setdefault(task.owner_id, []).append((task, incident))
    for owner, items in owners.items():
        listed = "; ".join(f"{safe(t.description, 120)} ({i.ref}, due {t.due_date})" for t, i in items[:5])
        more = f" and {len(items) - 5} more" if len(items) > 5 else ""
        lines.append(f"• <@{owner}>: {listed}{more}")
    return truncate("\n".join(lines), SECTION_LIMIT)
