"""Weekly digests, the quiet-incident nudge and the cache of people's names."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select, update

from bot.domain.models import (
    Incident,
    State,
    TaskStatus,
)
from storage.common import dialect_insert
from storage.repository import Repository
from storage.rows import incident_of
from storage.schema import (
    digests,
    incidents,
    tasks,
    users,
)


class NudgeRepo(Repository):
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
        return [incident_of(r) for r in rows]

    async def claim_digest(self, incident: Incident, week: str, token: str, now: datetime) -> bool:
        async with self.db.transaction() as conn:
            stmt = dialect_insert(conn, digests).values(
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
        return [incident_of(r) for r in rows]

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
            stmt = dialect_insert(conn, users).values(team_id=team_id, user_id=user_id, name=name, fetched_at=at)
            await conn.execute(
                stmt.on_conflict_do_update(index_elements=["team_id", "user_id"], set_={"name": name, "fetched_at": at})
            )
