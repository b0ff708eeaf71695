"""The nudges of an incident's lifecycle: a status update overdue for its severity's cadence, a
postmortem overdue after the resolve. Each is claimed with its Slack step in one transaction, so
two replicas and a restart send it once per interval, and days the bot was down do not stack up."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.sql.expression import ColumnElement

from bot.domain.models import Incident, Severity, State, Status, Task, TaskStatus
from bot.domain.outbox import NewStep
from storage.common import dialect_insert
from storage.database import Database
from storage.outbox import add_steps
from storage.rows import task_of
from storage.schema import counters, incidents, tasks

DIGEST_COUNTER = "digest_week"  # the ISO week of the last workspace digest, as YYYYWW


def _postmortem_due(resolved_before: datetime, today: date) -> ColumnElement[bool]:
    return and_(
        incidents.c.state == State.OPEN,
        incidents.c.status == Status.RESOLVED,
        incidents.c.resolved_at < resolved_before,
        or_(incidents.c.postmortem_nudged_on.is_(None), incidents.c.postmortem_nudged_on < today),
    )


def _update_due(severity: Severity, quiet_since: datetime) -> ColumnElement[bool]:
    last_update = func.coalesce(incidents.c.status_updated_at, incidents.c.started_at)
    return and_(
        incidents.c.state == State.OPEN,
        incidents.c.status != Status.RESOLVED,
        incidents.c.severity == severity,
        last_update < quiet_since,
        or_(incidents.c.cadence_nudged_at.is_(None), incidents.c.cadence_nudged_at < quiet_since),
    )


class LifecycleRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def postmortems_due(self, resolved_before: datetime, today: date, limit: int) -> list[Incident]:
        return await self._select(_postmortem_due(resolved_before, today), limit)

    async def claim_postmortem_nudge(
        self, incident: Incident, resolved_before: datetime, today: date, steps: Sequence[NewStep]
    ) -> bool:
        return await self._claim(incident, _postmortem_due(resolved_before, today), steps, postmortem_nudged_on=today)

    async def updates_due(self, severity: Severity, quiet_since: datetime, limit: int) -> list[Incident]:
        return await self._select(_update_due(severity, quiet_since), limit)

    async def claim_update_nudge(
        self, incident: Incident, quiet_since: datetime, now: datetime, steps: Sequence[NewStep]
    ) -> bool:
        return await self._claim(incident, _update_due(incident.severity, quiet_since), steps, cadence_nudged_at=now)

    async def claim_week(self, team_id: str, week: int, steps: Sequence[NewStep]) -> bool:
        """The workspace digest of ISO week `week` (e.g. 202649): this caller's to send if no one
        has sent that week's (or a later one's) yet, with its step, in one transaction."""
        async with self.db.transaction() as conn:
            stmt = dialect_insert(conn, counters).values(team_id=team_id, name=DIGEST_COUNTER, value=week)
            stmt = stmt.on_conflict_do_update(
                index_elements=["team_id", "name"], set_={"value": week}, where=counters.c.value < week
            ).returning(counters.c.value)
            if (await conn.execute(stmt)).first() is None:
                return False
            await add_steps(conn, team_id, steps)
        return True

    async def overdue_tasks(self, team_id: str, today: date) -> list[tuple[Task, Incident]]:
        """Open tasks past their due date, with their incidents, public and private alike."""
        query = (
            select(tasks)
            .join(incidents, incidents.c.id == tasks.c.incident_id)
            .where(tasks.c.team_id == team_id, tasks.c.status == TaskStatus.OPEN, tasks.c.due_date < today)
            .order_by(tasks.c.owner_id, tasks.c.due_date)
        )
        async with self.db.reading() as conn:
            found = [task_of(r) for r in (await conn.execute(query)).mappings().all()]
            ids = {t.incident_id for t in found}
            rows = (await conn.execute(select(incidents).where(incidents.c.id.in_(ids)))).mappings().all()
        by_id = {r["id"]: Incident.model_validate(dict(r)) for r in rows}
        return [(t, by_id[t.incident_id]) for t in found]

    async def _select(self, due: ColumnElement[bool], limit: int) -> list[Incident]:
        async with self.db.reading() as conn:
            rows = (await conn.execute(select(incidents).where(due).order_by(incidents.c.id).limit(limit))).mappings()
            return [Incident.model_validate(dict(r)) for r in rows.all()]

    async def _claim(
        self, incident: Incident, due: ColumnElement[bool], steps: Sequence[NewStep], **mark: object
    ) -> bool:
        """The nudge is this caller's if the row still qualifies; its steps go in with the mark."""
        async with self.db.transaction() as conn:
            result = await conn.execute(update(incidents).where(incidents.c.id == incident.id, due).values(**mark))
            if not result.rowcount:
                return False
            await add_steps(conn, incident.team_id, steps)
        return True
