"""Repositories: every query the bot runs. Each public method is one transaction."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.models import (
    CloseForm,
    FileRef,
    Incident,
    NewTask,
    State,
    Task,
    TaskStatus,
    TimelineEntry,
)
from bot.domain.outbox import NewStep, StepsFor, no_steps
from storage.alerts import AlertRepo
from storage.common import dialect_insert, next_number
from storage.database import Database
from storage.entry_writer import EntryWriter, entry_values
from storage.lifecycle import LifecycleRepo
from storage.outbox import OutboxStore, add_steps
from storage.reconcile import ReconcileRepo
from storage.schema import (
    digests,
    incidents,
    postmortems,
    processed_events,
    reminders,
    tasks,
    timeline_entries,
    users,
    workspace,
)

_insert = dialect_insert


def _incident(row: RowMapping) -> Incident:
    return Incident.model_validate(dict(row))


def _entry(row: RowMapping) -> TimelineEntry:
    data = dict(row)
    data["files"] = [FileRef(**f) for f in json.loads(data["files"] or "[]")]
    data["history"] = json.loads(data["history"] or "[]")
    data.pop("team_id", None)
    data.pop("recorded_at", None)
    return TimelineEntry.model_validate(data)


def _task(row: RowMapping) -> Task:
    return Task.model_validate({k: v for k, v in dict(row).items() if k != "undeliverable_at"})


def _edit_values(current: RowMapping, edit: TimelineEntry) -> dict[str, Any]:
    if current["text"] == edit.text:
        return {}  # Slack also sends message_changed when only replies or unfurls changed
    history = json.loads(current["history"])
    stored_at = current["edited_at"]
    if stored_at is not None and edit.edited_at is not None and _utc(stored_at) > edit.edited_at:
        return {"history": json.dumps(history + [edit.text])}  # an older edit, arriving late
    return {"text": edit.text, "history": json.dumps(history + [current["text"]]), "edited_at": edit.edited_at}


def _utc(moment: datetime) -> datetime:
    """Rows read through a bare query carry SQLite's naive UTC; compare them as aware."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._entries = EntryWriter(db)
        self.reconcile = ReconcileRepo(db)
        self.outbox = OutboxStore(db)
        self.alerts = AlertRepo(db)
        self.lifecycle = LifecycleRepo(db)

    # ---- workspace -------------------------------------------------------------------------

    async def save_workspace(self, team_id: str, url: str, bot_user_id: str) -> None:
        async with self.db.transaction() as conn:
            stmt = _insert(conn, workspace).values(team_id=team_id, url=url, bot_user_id=bot_user_id)
            await conn.execute(
                stmt.on_conflict_do_update(index_elements=["team_id"], set_={"url": url, "bot_user_id": bot_user_id})
            )

    async def workspace_url(self, team_id: str) -> str:
        async with self.db.reading() as conn:
            url = await conn.scalar(select(workspace.c.url).where(workspace.c.team_id == team_id))
        return str(url or "")

    # ---- events ----------------------------------------------------------------------------

    async def _claim_event(self, conn: AsyncConnection, team_id: str, event_id: str | None, at: datetime) -> bool:
        """Records an event id in the caller's transaction; False when it was seen before."""
        if not event_id:
            return True
        stmt = _insert(conn, processed_events).values(team_id=team_id, event_id=event_id, received_at=at)
        result = await conn.execute(stmt.on_conflict_do_nothing())
        return bool(result.rowcount)

    async def prune_events(self, received_before: datetime) -> int:
        """Forgets event ids older than any retry Slack would still send."""
        async with self.db.transaction() as conn:
            result = await conn.execute(
                processed_events.delete().where(processed_events.c.received_at < received_before)
            )
        return int(result.rowcount or 0)

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
            incident = _incident((await conn.execute(stmt)).mappings().one())
            await add_steps(conn, team_id, steps(incident))
        return incident

    async def update_incident(self, incident_id: int, steps: Sequence[NewStep] = (), **values: Any) -> Incident:
        """Changes the incident and stores the Slack steps the change calls for, in one transaction."""
        if isinstance(values.get("roles"), dict):
            values["roles"] = json.dumps(values["roles"], sort_keys=True)
        async with self.db.transaction() as conn:
            stmt = incidents.update().where(incidents.c.id == incident_id).values(**values).returning(*incidents.c)
            row = (await conn.execute(stmt)).mappings().one()
            incident = _incident(row)
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
        return [_incident(r) for r in rows]

    async def incident_by_number(self, team_id: str, number: int) -> Incident | None:
        return await self._one_incident(and_(incidents.c.team_id == team_id, incidents.c.number == number))

    async def _one_incident(self, where: Any) -> Incident | None:
        async with self.db.reading() as conn:
            row = (await conn.execute(select(incidents).where(where))).mappings().first()
        return _incident(row) if row else None

    async def list_incidents(self, team_id: str, states: Iterable[State], limit: int = 20) -> list[Incident]:
        query = (
            select(incidents)
            .where(incidents.c.team_id == team_id, incidents.c.state.in_([str(s) for s in states]))
            .order_by(incidents.c.number.desc())
            .limit(limit)
        )
        async with self.db.reading() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_incident(r) for r in rows]

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
            done = _incident(row)
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

    # ---- timeline --------------------------------------------------------------------------

    async def record_entry(self, team_id: str, entry: TimelineEntry, event_id: str | None, at: datetime) -> bool:
        """Stores a timeline entry once per (team, channel, ts); True when it is new. Concurrent
        calls are committed together (group commit); each returns after its commit."""
        del event_id  # the (team, channel, ts) key already absorbs retries; see EntryWriter.record
        return await self._entries.record(team_id, entry, at)

    async def close(self) -> None:
        await self._entries.close()

    async def record_edit(self, team_id: str, entry: TimelineEntry, event_id: str | None, at: datetime) -> bool:
        """Applies an edit: the newest text wins and the others join the history. Slack promises
        no order, so an edit may come before its message (stored as edited) or before an older
        edit (which then only joins the history)."""
        return await self._change_entry(team_id, entry, event_id, at, _edit_values)

    async def record_deletion(self, team_id: str, entry: TimelineEntry, event_id: str | None, at: datetime) -> bool:
        """Keeps a tombstone: the row stays, marked deleted, so a late copy cannot revive it."""
        return await self._change_entry(team_id, entry, event_id, at, lambda _, e: {"deleted_at": e.deleted_at})

    async def _change_entry(
        self,
        team_id: str,
        entry: TimelineEntry,
        event_id: str | None,
        at: datetime,
        changes: Callable[[RowMapping, TimelineEntry], dict[str, Any]],
    ) -> bool:
        """Once per event id: updates the stored entry, or stores `entry` as it now stands when the
        change arrives before the message itself."""
        async with self.db.transaction() as conn:
            if not await self._claim_event(conn, team_id, event_id, at):
                return False
            current = await self._entry_row(conn, team_id, entry.channel_id, entry.ts)
            if current is None:
                await conn.execute(timeline_entries.insert().values(entry_values(team_id, entry, at)))
            elif values := changes(current, entry):
                await conn.execute(
                    timeline_entries.update().where(timeline_entries.c.id == current["id"]).values(**values)
                )
            await self._touch(conn, entry.incident_id, at)
        return True

    async def set_key_event(self, team_id: str, channel_id: str, ts: str, is_key: bool) -> bool:
        async with self.db.transaction() as conn:
            result = await conn.execute(
                timeline_entries.update()
                .where(
                    timeline_entries.c.team_id == team_id,
                    timeline_entries.c.channel_id == channel_id,
                    timeline_entries.c.ts == ts,
                )
                .values(is_key=is_key)
            )
        return bool(result.rowcount)

    async def _entry_row(self, conn: AsyncConnection, team_id: str, channel_id: str, ts: str) -> RowMapping | None:
        query = select(timeline_entries).where(
            timeline_entries.c.team_id == team_id,
            timeline_entries.c.channel_id == channel_id,
            timeline_entries.c.ts == ts,
        )
        return (await conn.execute(query)).mappings().first()

    async def _touch(self, conn: AsyncConnection, incident_id: int, at: datetime) -> None:
        await conn.execute(
            incidents.update()
            .where(incidents.c.id == incident_id, incidents.c.last_activity_at < at)
            .values(last_activity_at=at)
        )

    async def entries(self, incident_id: int) -> list[TimelineEntry]:
        query = (
            select(timeline_entries)
            .where(timeline_entries.c.incident_id == incident_id)
            .order_by(timeline_entries.c.occurred_at, timeline_entries.c.id)
        )
        async with self.db.reading() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_entry(r) for r in rows]

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
            created.append(_task((await conn.execute(stmt)).mappings().one()))
        return created

    async def task(self, task_id: int) -> Task | None:
        async with self.db.reading() as conn:
            row = (await conn.execute(select(tasks).where(tasks.c.id == task_id))).mappings().first()
        return _task(row) if row else None

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
            task = _task(row)
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
            task = _task(row)
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
        return [_task(r) for r in rows]

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
        return [_task(r) for r in rows]

    async def claim_reminder(
        self, task: Task, day: date, token: str, now: datetime, stale_before: datetime
    ) -> str | None:
        """Atomically takes the (task, day) reminder: "new" for a fresh claim, "taken_over" for a
        claim left by a process that died (older than `stale_before`), None when it is not ours."""
        async with self.db.transaction() as conn:
            stmt = _insert(conn, reminders).values(
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

    # ---- digests and nudges ----------------------------------------------------------------

    async def incidents_without_digest(self, week: str, limit: int) -> list[Incident]:
        """Incidents with open tasks whose digest for `week` has not been claimed yet."""
        has_open = select(tasks.c.id).where(tasks.c.incident_id == incidents.c.id, tasks.c.status == TaskStatus.OPEN)
        has_digest = select(digests.c.week).where(digests.c.incident_id == incidents.c.id, digests.c.week == week)
        query = (
            select(incidents)
            .where(has_open.exists(), ~has_digest.exists(), incidents.c.channel_id.is_not(None))
            .limit(limit)
        )
        async with self.db.reading() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_incident(r) for r in rows]

    async def claim_digest(self, incident: Incident, week: str, token: str, now: datetime) -> bool:
        async with self.db.transaction() as conn:
            stmt = _insert(conn, digests).values(
                incident_id=incident.id,
                week=week,
                team_id=incident.team_id,
                state="claimed",
                claim_token=token,
                claimed_at=now,
            )
            return bool((await conn.execute(stmt.on_conflict_do_nothing())).rowcount)

    async def finish_digest(self, incident_id: int, week: str, state: str | None, now: datetime) -> None:
        """Records the digest as `state` ("sent" or "failed"); None gives the claim back."""
        async with self.db.transaction() as conn:
            where = and_(digests.c.incident_id == incident_id, digests.c.week == week)
            if state is None:
                await conn.execute(digests.delete().where(where))
            else:
                await conn.execute(digests.update().where(where).values(state=state, sent_at=now))

    async def idle_open_incidents(self, idle_before: datetime, limit: int) -> list[Incident]:
        query = (
            select(incidents)
            .where(
                incidents.c.state == State.OPEN,
                incidents.c.last_activity_at < idle_before,
                or_(incidents.c.nudged_at.is_(None), incidents.c.nudged_at < incidents.c.last_activity_at),
            )
            .limit(limit)
        )
        async with self.db.reading() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_incident(r) for r in rows]

    async def claim_nudge(self, incident: Incident, idle_before: datetime, now: datetime) -> bool:
        """One nudge per quiet spell: nudged_at moves past last_activity_at atomically."""
        async with self.db.transaction() as conn:
            result = await conn.execute(
                update(incidents)
                .where(
                    incidents.c.id == incident.id,
                    incidents.c.state == State.OPEN,
                    incidents.c.last_activity_at < idle_before,
                    or_(incidents.c.nudged_at.is_(None), incidents.c.nudged_at < incidents.c.last_activity_at),
                )
                .values(nudged_at=now)
            )
        return bool(result.rowcount)

    # ---- user names ------------------------------------------------------------------------

    async def cached_names(self, team_id: str, fresh_after: datetime) -> dict[str, str]:
        query = select(users.c.user_id, users.c.name).where(
            users.c.team_id == team_id, users.c.fetched_at > fresh_after
        )
        async with self.db.reading() as conn:
            return {r.user_id: r.name for r in (await conn.execute(query)).all()}

    async def save_name(self, team_id: str, user_id: str, name: str, at: datetime) -> None:
        async with self.db.transaction() as conn:
            stmt = _insert(conn, users).values(team_id=team_id, user_id=user_id, name=name, fetched_at=at)
            await conn.execute(
                stmt.on_conflict_do_update(index_elements=["team_id", "user_id"], set_={"name": name, "fetched_at": at})
            )


async def all_cached_names(store: Store, team_id: str) -> dict[str, str]:
    """Every name ever cached, however old: export works offline and prefers a stale name to an id."""
    return await store.cached_names(team_id, datetime.min.replace(tzinfo=UTC))
