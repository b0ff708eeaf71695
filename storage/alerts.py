"""Incidents declared and followed by alerts: one open incident per dedup key, whatever the
number of deliveries, replicas or repeats."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.models import Incident, State
from bot.domain.outbox import NewStep
from storage.common import next_number
from storage.database import Database
from storage.outbox import add_steps
from storage.schema import incidents


@dataclass(frozen=True)
class NoticeTaken:
    incident: Incident | None  # None: a resolution for a key that never opened one
    created: bool
    changed: dict[str, str]  # alert fingerprint -> status, what this notice says anew


# What to do with a notice, decided by the caller from what is stored: the values of a new
# incident (None: open none), and the Slack steps for an incident and what changed in it.
NewValues = Callable[[Incident | None], dict[str, Any] | None]
StepsOf = Callable[[Incident, bool, dict[str, str]], Sequence[NewStep]]


class AlertRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def take_notice(
        self,
        team_id: str,
        key: str,
        alerts: dict[str, str],
        new_values: NewValues,
        follow_values: dict[str, Any],
        steps: StepsOf,
    ) -> NoticeTaken:
        """In one transaction per key (serialized across replicas): opens the incident, or
        records in the open one what the notice changes, with the steps that say so."""
        async with self.db.transaction() as conn:
            await _lock_key(conn, team_id, key)
            current = await _latest_with_key(conn, team_id, key)
            if current is None or current.state is State.CLOSED:
                return await _open(conn, team_id, key, alerts, new_values(current), steps)
            stored = json.loads(await _alert_state(conn, current.id) or "{}")
            changed = {k: v for k, v in alerts.items() if stored.get(k) != v}
            if not changed:
                return NoticeTaken(current, False, {})
            update = incidents.update().where(incidents.c.id == current.id)
            row = (
                await conn.execute(
                    update.values(alert_state=json.dumps(stored | alerts), **follow_values).returning(*incidents.c)
                )
            ).mappings().one()
            followed = Incident.model_validate(dict(row))
            await add_steps(conn, team_id, steps(followed, False, changed))
        return NoticeTaken(followed, False, changed)


async def _open(
    conn: AsyncConnection,
    team_id: str,
    key: str,
    alerts: dict[str, str],
    values: dict[str, Any] | None,
    steps: StepsOf,
) -> NoticeTaken:
    if values is None:
        return NoticeTaken(None, False, {})
    number = await next_number(conn, team_id)
    stmt = incidents.insert().values(
        team_id=team_id, number=number, state=State.OPENING, alert_key=key, alert_state=json.dumps(alerts), **values
    )
    incident = Incident.model_validate(dict((await conn.execute(stmt.returning(*incidents.c))).mappings().one()))
    await add_steps(conn, team_id, steps(incident, True, alerts))
    return NoticeTaken(incident, True, alerts)


async def _lock_key(conn: AsyncConnection, team_id: str, key: str) -> None:
    # Fifty concurrent deliveries of one group, on two replicas: they take turns here, so the
    # first opens the incident and the others find it. SQLite's single writer does this already.
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"alert:{team_id}:{key}"})


async def _latest_with_key(conn: AsyncConnection, team_id: str, key: str) -> Incident | None:
    query = (
        select(incidents)
        .where(incidents.c.team_id == team_id, incidents.c.alert_key == key)
        .order_by(incidents.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).mappings().first()
    return Incident.model_validate(dict(row)) if row else None


async def _alert_state(conn: AsyncConnection, incident_id: int) -> str | None:
    return await conn.scalar(select(incidents.c.alert_state).where(incidents.c.id == incident_id))
