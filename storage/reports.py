"""What `incident-bot report` reads: the incidents declared in a period, their close forms and tasks."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select

from bot.domain.models import CloseForm, Incident, Task
from storage.database import Database
from storage.rows import incident_of, task_of
from storage.schema import incidents, postmortems, tasks

Reported = tuple[Incident, CloseForm | None, list[Task]]


class ReportRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def declared_between(
        self, since: datetime | None, until: datetime | None, team_id: str | None = None
    ) -> list[Reported]:
        """Incidents declared at or after `since` and before `until` (of one team, or all), oldest first."""
        query = select(incidents).order_by(incidents.c.started_at, incidents.c.id)
        if team_id is not None:
            query = query.where(incidents.c.team_id == team_id)
        if since is not None:
            query = query.where(incidents.c.started_at >= since)
        if until is not None:
            query = query.where(incidents.c.started_at < until)
        async with self.db.reading() as conn:
            found = [incident_of(r) for r in (await conn.execute(query)).mappings().all()]
            ids = [i.id for i in found]
            forms = {
                r["incident_id"]: _form(dict(r))
                for r in (await conn.execute(select(postmortems).where(postmortems.c.incident_id.in_(ids))))
                .mappings()
                .all()
            }
            by_incident: dict[int, list[Task]] = defaultdict(list)
            for row in (await conn.execute(select(tasks).where(tasks.c.incident_id.in_(ids)))).mappings().all():
                task = task_of(row)
                by_incident[task.incident_id].append(task)
        return [(i, forms.get(i.id), by_incident.get(i.id, [])) for i in found]


def _form(data: dict[str, object]) -> CloseForm:
    data["improvements"] = [line for line in str(data["improvements"]).splitlines() if line.strip()]
    return CloseForm.model_validate(data)
