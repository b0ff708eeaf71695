"""Corrective tasks and their reminders."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.models import (
    Incident,
    NewTask,
    Task,
    TaskStatus,
)
from bot.domain.outbox import NewStep, StepsFor, no_steps
from storage.common import dialect_insert
from storage.outbox import add_steps
from storage.repository import Repository
from storage.rows import task_of
from storage.schema import (
    reminders,
    tasks,
)


class TaskRepo(Repository):
    async def add_tasks(
        self,
        incident: Incident,
        new_tasks: Sequence[tuple[NewTask, date | None]],
        created_by: str,
        at: datetime,
        steps: StepsFor = no_steps,
    ) -> list[Task]:
        async with self.db.transaction() as conn:
            created = await self._insert_tasks(conn, incident, new_tasks, created_by, at)
            await add_steps(conn, incident.team_id, steps(incident, created))
        return created

    async def _insert_tasks(
        self,
        conn: AsyncConnection,
        incident: Incident,
        new_tasks: Sequence[tuple[NewTask, date | None]],
        created_by: str,
        at: datetime,
    ) -> list[Task]:
        created = []
        for task, first_reminder in new_tasks:
            stmt = (
                tasks.insert()
                .values(
                    team_id=incident.team_id,
                    incident_id=incident.id,
                    status=TaskStatus.OPEN,
                    created_by=created_by,
                    created_at=at,
                    next_remind_on=first_reminder,
                    **task.model_dump(),
                )
                .returning(*tasks.c)
            )
            created.append(task_of((await conn.execute(stmt)).mappings().one()))
        return created

    async def task(self, task_id: int) -> Task | None:
        async with self.db.reading() as conn:
            row = (await conn.execute(select(tasks).where(tasks.c.id == task_id))).mappings().first()
        return task_of(row) if row else None

    async def complete_task(
        self, task_id: int, done_by: str, at: datetime, steps: Callable[[Task], Sequence[NewStep]] = lambda _: ()
    ) -> Task | None:
        """Marks an open task done, with the steps that say so; None when it was done already
        (a double click)."""
        async with self.db.transaction() as conn:
            stmt = (
                tasks.update()
                .where(tasks.c.id == task_id, tasks.c.status == TaskStatus.OPEN)
                .values(status=TaskStatus.DONE, done_by=done_by, done_at=at, next_remind_on=None)
                .returning(*tasks.c)
            )
            row = (await conn.execute(stmt)).mappings().first()
            if row is None:
                return None
            task = task_of(row)
            await add_steps(conn, task.team_id, steps(task))
        return task

    async def reschedule_task(
        self, task_id: int, next_remind_on: date, steps: Callable[[Task], Sequence[NewStep]] = lambda _: ()
    ) -> Task | None:
        async with self.db.transaction() as conn:
            stmt = (
                tasks.update()
                .where(tasks.c.id == task_id, tasks.c.status == TaskStatus.OPEN)
                .values(next_remind_on=next_remind_on)
                .returning(*tasks.c)
            )
            row = (await conn.execute(stmt)).mappings().first()
            if row is None:
                return None
            task = task_of(row)
            await add_steps(conn, task.team_id, steps(task))
        return task

    async def tasks_of_incident(self, incident_id: int, only_open: bool = False) -> list[Task]:
        where = [tasks.c.incident_id == incident_id]
        if only_open:
            where.append(tasks.c.status == TaskStatus.OPEN)
        return await self._tasks(and_(*where))

    async def open_tasks_of_owner(self, team_id: str, owner_id: str) -> list[Task]:
        return await self._tasks(
            and_(tasks.c.team_id == team_id, tasks.c.owner_id == owner_id, tasks.c.status == TaskStatus.OPEN)
        )

    async def _tasks(self, where: Any) -> list[Task]:
        query = select(tasks).where(where).order_by(tasks.c.due_date.is_(None), tasks.c.due_date, tasks.c.id)
        async with self.db.reading() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [task_of(r) for r in rows]

    # ---- reminders -------------------------------------------------------------------------

    async def due_tasks(self, today: date, limit: int) -> list[Task]:
        """Open, deliverable tasks whose next reminder day has come (uses ix_tasks_due)."""
        query = (
            select(tasks)
            .where(
                tasks.c.status == TaskStatus.OPEN,
                tasks.c.next_remind_on <= today,
                tasks.c.undeliverable_at.is_(None),
            )
            .order_by(tasks.c.next_remind_on, tasks.c.id)
            .limit(limit)
        )
        async with self.db.reading() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [task_of(r) for r in rows]

    async def claim_reminder(
        self, task: Task, day: date, token: str, now: datetime, stale_before: datetime
    ) -> str | None:
        """Atomically takes the (task, day) reminder: "new" for a fresh claim, "taken_over" for a
        claim left by a process that died (older than `stale_before`), None when it is not ours."""
        async with self.db.transaction() as conn:
            stmt = dialect_insert(conn, reminders).values(
                task_id=task.id, remind_on=day, team_id=task.team_id, state="claimed", claim_token=token, claimed_at=now
            )
            if (await conn.execute(stmt.on_conflict_do_nothing())).rowcount:
                return "new"
            result = await conn.execute(
                reminders.update()
                .where(
                    reminders.c.task_id == task.id,
                    reminders.c.remind_on == day,
                    reminders.c.state == "claimed",
                    reminders.c.claimed_at < stale_before,
                )
                .values(claim_token=token, claimed_at=now)
            )
        return "taken_over" if result.rowcount else None

    async def finish_reminder(
        self,
        task: Task,
        day: date,
        token: str,
        outcome: dict[str, Any],
        next_remind_on: date | None,
        undeliverable: bool = True,
    ) -> None:
        """Records the outcome of a claimed reminder and moves the task's next reminder day."""
        async with self.db.transaction() as conn:
            await conn.execute(
                reminders.update()
                .where(
                    reminders.c.task_id == task.id,
                    reminders.c.remind_on == day,
                    reminders.c.claim_token == token,
                )
                .values(**outcome)
            )
            task_values: dict[str, Any] = {"next_remind_on": next_remind_on}
            if outcome.get("state") == "failed" and undeliverable:
                task_values["undeliverable_at"] = outcome.get("sent_at")
            await conn.execute(
                tasks.update().where(tasks.c.id == task.id, tasks.c.status == TaskStatus.OPEN).values(**task_values)
            )

    async def release_reminder(self, task: Task, day: date, token: str) -> None:
        """Gives a claim back (a transient Slack failure): the next sweep tries again."""
        async with self.db.transaction() as conn:
            await conn.execute(
                reminders.delete().where(
                    reminders.c.task_id == task.id,
                    reminders.c.remind_on == day,
                    reminders.c.claim_token == token,
                    reminders.c.state == "claimed",
                )
            )

    async def reminders_sent(self, task_id: int) -> list[dict[str, Any]]:
        query = select(reminders).where(reminders.c.task_id == task_id).order_by(reminders.c.remind_on)
        async with self.db.reading() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings().all()]
