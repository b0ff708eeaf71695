"""Validating what people enter when they close an incident. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from bot.domain.models import CloseForm, NewTask


@dataclass(frozen=True)
class TaskRow:
    row: int
    description: str = ""
    owner_id: str | None = None
    due: date | None = None

    @property
    def is_blank(self) -> bool:
        return not self.description.strip() and self.owner_id is None and self.due is None


@dataclass(frozen=True)
class CloseInput:
    impact: str = ""
    impact_start: datetime | None = None
    impact_end: datetime | None = None
    root_cause: str = ""
    resolution: str = ""
    improvements: str = ""
    tasks: list[TaskRow] = field(default_factory=list)


def validate_close(
    data: CloseInput, user_id: str, now: datetime, today: date
) -> tuple[CloseForm, list[NewTask]] | dict[str, str]:
    """Either the form and its tasks, or errors keyed by field (the modal's block ids)."""
    errors = _field_errors(data, now)
    for row in data.tasks:
        errors.update(_task_errors(row, today))
    if errors:
        return errors
    assert data.impact_start is not None and data.impact_end is not None
    form = CloseForm(
        impact=data.impact.strip(),
        impact_start=data.impact_start,
        impact_end=data.impact_end,
        root_cause=data.root_cause.strip(),
        resolution=data.resolution.strip(),
        improvements=[
            line.strip(" -•*\t") for line in data.improvements.splitlines() if line.strip(" -•*\t")
        ],
        submitted_by=user_id,
        submitted_at=now,
    )
    tasks = [
        NewTask(description=r.description.strip(), owner_id=r.owner_id or "", due_date=r.due)
        for r in data.tasks
        if not r.is_blank
    ]
    return form, tasks


def _field_errors(data: CloseInput, now: datetime) -> dict[str, str]:
    errors: dict[str, str] = {}
    for key, value in (
        ("impact", data.impact),
        ("root_cause", data.root_cause),
        ("resolution", data.resolution),
    ):
        if not value.strip():
            errors[key] = "Please fill this in: it goes into the postmortem."
    if data.impact_start is None:
        errors["impact_start"] = "Pick when the impact started."
    if data.impact_end is None:
        errors["impact_end"] = "Pick when the impact ended."
    elif data.impact_start is not None and data.impact_end < data.impact_start:
        errors["impact_end"] = "The end is before the start."
    elif data.impact_end > now:
        errors["impact_end"] = "The end is in the future; pick now or earlier."
    return errors


def _task_errors(row: TaskRow, today: date) -> dict[str, str]:
    if row.is_blank:
        return {}
    errors: dict[str, str] = {}
    if not row.description.strip():
        errors[f"task_description_{row.row}"] = "Describe the task, or clear its owner and due date."
    if row.owner_id is None:
        errors[f"task_owner_{row.row}"] = "Every task needs an owner."
    if row.due is not None and row.due < today:
        errors[f"task_due_{row.row}"] = "The due date is in the past."
    return errors
