"""Incidents: numbering, opening, changes, closing and the postmortem record."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.models import (
    CloseForm,
    Incident,
    NewTask,
    State,
    Task,
)
from bot.domain.outbox import NewStep, StepsFor, no_steps
from storage.common import next_number
from storage.outbox import add_steps
from storage.rows import incident_of
from storage.schema import (
    incidents,
    postmortems,
)
from storage.tasks import TaskRepo


class IncidentRepo(TaskRepo):
    # ---- incidents -------------------------------------------------------------------------

    async def _next_number(self, conn: AsyncConnection, team_id: str) -> int:
        return await next_number(conn, team_id)

    async def create_incident(
        self, team_id: str, values: dict[str, Any], steps: Callable[[Incident], Sequence[NewStep]] = lambda _: ()
    ) -> Incident:
        async with self.db.transaction() as conn:
            number = await self._next_number(conn, team_id)
            stmt = (
                incidents.insert()
                .values(team_id=team_id, number=number, state=State.OPENING, **values)
                .returning(*incidents.c)
            )
            incident = incident_of((await conn.execute(stmt)).mappings().one())
            await add_steps(conn, team_id, steps(incident))
        return incident

    async def update_incident(self, incident_id: int, steps: Sequence[NewStep] = (), **values: Any) -> Incident:
        """Changes the incident and stores the Slack steps the change calls for, in one transaction."""
        if isinstance(values.get("roles"), dict):
            values["roles"] = json.dumps(values["roles"], sort_keys=True)
        async with self.db.transaction() as conn:
            stmt = incidents.update().where(incidents.c.id == incident_id).values(**values).returning(*incidents.c)
            row = (await conn.execute(stmt)).mappings().one()
            incident = incident_of(row)
            await add_steps(conn, incident.team_id, steps)
        return incident

    async def claim_opening(self, incident_id: int, now: datetime, stale_before: datetime) -> bool:
        """Takes the right to build this incident's channel; False while another attempt (in any
        process) holds it. A claim older than `stale_before` was left by a process that died."""
        async with self.db.transaction() as conn:
            result = await conn.execute(
                incidents.update()
                .where(
                    incidents.c.id == incident_id,
                    incidents.c.state == State.OPENING,
                    or_(incidents.c.opening_claimed_at.is_(None), incidents.c.opening_claimed_at < stale_before),
                )
                .values(opening_claimed_at=now)
            )
        return bool(result.rowcount)

    async def release_opening(self, incident_id: int) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(incidents.update().where(incidents.c.id == incident_id).values(opening_claimed_at=None))

    async def incident_by_id(self, incident_id: int) -> Incident | None:
        return await self._one_incident(incidents.c.id == incident_id)

    async def incident_by_channel(self, team_id: str, channel_id: str) -> Incident | None:
        return await self._one_incident(and_(incidents.c.team_id == team_id, incidents.c.channel_id == channel_id))

    async def incidents_numbered(self, number: int) -> list[Incident]:
        """INC-<number> in every workspace this database serves (export has no team at hand)."""
        async with self.db.reading() as conn:
            rows = (await conn.execute(select(incidents).where(incidents.c.number == number))).mappings().all()
        return [incident_of(r) for r in rows]

    async def incident_by_number(self, team_id: str, number: int) -> Incident | None:
        return await self._one_incident(and_(incidents.c.team_id == team_id, incidents.c.number == number))

    async def _one_incident(self, where: Any) -> Incident | None:
        async with self.db.reading() as conn:
            row = (await conn.execute(select(incidents).where(where))).mappings().first()
        return incident_of(row) if row else None

    async def list_incidents(self, team_id: str, states: Iterable[State], limit: int = 20) -> list[Incident]:
        query = (
            select(incidents)
            .where(incidents.c.team_id == team_id, incidents.c.state.in_([str(s) for s in states]))
            .order_by(incidents.c.number.desc())
            .limit(limit)
        )
        async with self.db.reading() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [incident_of(r) for r in rows]

    async def close_incident(
        self,
        incident: Incident,
        form: CloseForm,
        new_tasks: Sequence[tuple[NewTask, date | None]],
        steps: StepsFor = no_steps,
    ) -> tuple[Incident, list[Task]] | None:
        """Closes, stores the form, the tasks and the Slack steps at once; None when it was
        already closed."""
        async with self.db.transaction() as conn:
            closed = await conn.execute(
                incidents.update()
                .where(incidents.c.id == incident.id, incidents.c.state == State.OPEN)
                .values(state=State.CLOSED, status="closed", closed_at=form.submitted_at)
                .returning(*incidents.c)
            )
            row = closed.mappings().first()
            if row is None:
                return None
            await conn.execute(
                postmortems.insert().values(
                    incident_id=incident.id,
                    team_id=incident.team_id,
                    improvements="\n".join(form.improvements),
                    **form.model_dump(exclude={"improvements"}),
                )
            )
            created = await self._insert_tasks(conn, incident, new_tasks, form.submitted_by, form.submitted_at)
            done = incident_of(row)
            await add_steps(conn, incident.team_id, steps(done, created))
        return done, created

    async def close_form(self, incident_id: int) -> CloseForm | None:
        async with self.db.reading() as conn:
            row = (
                (await conn.execute(select(postmortems).where(postmortems.c.incident_id == incident_id)))
                .mappings()
                .first()
            )
        if row is None:
            return None
        data = dict(row)
        data["improvements"] = [line for line in data["improvements"].splitlines() if line.strip()]
        return CloseForm.model_validate(data)

    async def published_file(self, incident_id: int) -> str | None:
        """The id of the postmortem file last shared for this incident."""
        query = select(postmortems.c.file_id).where(postmortems.c.incident_id == incident_id)
        async with self.db.reading() as conn:
            found = await conn.scalar(query)
        return str(found) if found else None

    async def mark_published(self, incident_id: int, file_id: str | None, at: datetime) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                postmortems.update()
                .where(postmortems.c.incident_id == incident_id)
                .values(file_id=file_id, published_at=at)
            )
