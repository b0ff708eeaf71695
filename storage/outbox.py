"""The outbox of Slack side effects. A step is written in the transaction of the state change that
calls for it (add_steps), then claimed by one worker at a time, in whatever process, under a
lease; a worker that dies loses its lease and another takes the step over."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import ColumnElement

from bot.domain.outbox import NewStep, Step, StepState
from storage.database import Database
from storage.schema import outbox


async def add_steps(conn: AsyncConnection, team_id: str, steps: Sequence[NewStep]) -> list[int]:
    """Stores steps in the caller's transaction; a key stored before is not stored again."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    if dialect is postgresql:
        # A lane runs in id order, so ids must be committed in order: two transactions adding to
        # one lane take turns (held to the commit). SQLite has one writer, so it is so already.
        for lane in sorted({new.lane for new in steps}):
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:lane))"), {"lane": lane})
    ids = []
    for new in steps:
        stmt = dialect.insert(outbox).values(_row(team_id, new)).on_conflict_do_nothing()
        found = (await conn.execute(stmt.returning(outbox.c.id))).scalar()
        if found is not None:
            ids.append(int(found))
    return ids


def _row(team_id: str, new: NewStep) -> dict[str, Any]:
    return {
        "team_id": team_id,
        "lane": new.lane,
        "key": new.key,
        "kind": new.kind.value,
        "payload": json.dumps(new.payload),
        "state": StepState.PENDING.value,
        "attempts": 0,
        "next_attempt_at": new.not_before or new.at,
        "progress": "{}",
        "actor_id": new.actor_id,
        "actor_channel": new.actor_channel,
        "created_at": new.at,
    }


def _step(row: RowMapping) -> Step:
    data = dict(row)
    data["payload"] = json.loads(data["payload"] or "{}")
    data["progress"] = json.loads(data["progress"] or "{}")
    data["at"] = data["created_at"]
    for gone in ("claimed_by", "claimed_until", "done_at", "not_before"):
        data.pop(gone, None)
    return Step.model_validate(data)


def _claimable(now: datetime) -> ColumnElement[bool]:
    return and_(
        outbox.c.state == StepState.PENDING.value,
        outbox.c.next_attempt_at <= now,
        or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now),
    )


def _first_of_its_lane() -> ColumnElement[bool]:
    earlier = outbox.alias("earlier")
    waiting = select(earlier.c.id).where(
        earlier.c.lane == outbox.c.lane, earlier.c.state == StepState.PENDING.value, earlier.c.id < outbox.c.id
    )
    return ~waiting.exists()


class OutboxStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def enqueue(self, team_id: str, steps: Sequence[NewStep]) -> list[int]:
        async with self.db.transaction() as conn:
            return await add_steps(conn, team_id, steps)

    async def due(self, now: datetime, limit: int) -> list[Step]:
        """Steps ready to run, the first pending one of each lane only (order within a lane)."""
        query = select(outbox).where(_claimable(now), _first_of_its_lane()).order_by(outbox.c.id).limit(limit)
        async with self.db.reading() as conn:
            return [_step(r) for r in (await conn.execute(query)).mappings().all()]

    async def claim(self, step_id: int, worker: str, now: datetime, until: datetime) -> Step | None:
        """Takes the step for one attempt; None when another worker has it or it is finished."""
        async with self.db.transaction() as conn:
            stmt = (
                outbox.update()
                .where(outbox.c.id == step_id, _claimable(now))
                .values(claimed_by=worker, claimed_until=until, attempts=outbox.c.attempts + 1)
                .returning(*outbox.c)
            )
            row = (await conn.execute(stmt)).mappings().first()
        return _step(row) if row else None

    async def save_progress(self, step_id: int, worker: str, progress: dict[str, Any]) -> None:
        """What a step of several calls has done so far, so a retry does not do it again."""
        await self._settle(step_id, worker, progress=json.dumps(progress))

    async def finish(self, step_id: int, worker: str, now: datetime) -> None:
        await self._settle(step_id, worker, state=StepState.DONE.value, done_at=now, claimed_until=None)

    async def retry_later(self, step_id: int, worker: str, at: datetime, error: str) -> None:
        await self._settle(step_id, worker, next_attempt_at=at, last_error=error[:200], claimed_until=None)

    async def fail(self, step_id: int, worker: str, now: datetime, error: str) -> bool:
        """Gives up on a step; True for the worker that did it (it tells the person, once)."""
        return await self._settle(
            step_id, worker, state=StepState.FAILED.value, done_at=now, last_error=error[:200], claimed_until=None
        )

    async def _settle(self, step_id: int, worker: str, **values: Any) -> bool:
        # Only the worker holding the claim may write: one whose lease ran out lost the step.
        async with self.db.transaction() as conn:
            result = await conn.execute(
                outbox.update()
                .where(outbox.c.id == step_id, outbox.c.claimed_by == worker, outbox.c.state == StepState.PENDING.value)
                .values(**values)
            )
        return bool(result.rowcount)

    async def backlog(self, now: datetime) -> tuple[int, float | None]:
        """Pending steps and the age in seconds of the oldest, for /readyz. A step stored to run
        later (a safety net) is not behind until its time comes or it has been tried."""
        behind = or_(outbox.c.next_attempt_at <= now, outbox.c.attempts > 0)
        query = select(func.count(), func.min(outbox.c.created_at)).where(
            outbox.c.state == StepState.PENDING.value, behind
        )
        async with self.db.reading() as conn:
            count, oldest = (await conn.execute(query)).one()
        if not count or oldest is None:
            return 0, None
        return int(count), max(0.0, (now - oldest).total_seconds())
