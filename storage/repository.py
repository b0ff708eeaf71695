"""What every repository shares: the database, the workspace record and the event ids that make
edits and deletions exactly once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.common import dialect_insert
from storage.database import Database
from storage.schema import (
    processed_events,
    workspace,
)


class Repository:
    db: Database

    # ---- workspace -------------------------------------------------------------------------

    async def save_workspace(self, team_id: str, url: str, bot_user_id: str) -> None:
        async with self.db.transaction() as conn:
            stmt = dialect_insert(conn, workspace).values(team_id=team_id, url=url, bot_user_id=bot_user_id)
            await conn.execute(
                stmt.on_conflict_do_update(index_elements=["team_id"], set_={"url": url, "bot_user_id": bot_user_id})
            )

    async def sole_team(self) -> str | None:
        """The workspace this database serves, when it serves exactly one."""
        async with self.db.reading() as conn:
            teams = list((await conn.execute(select(workspace.c.team_id).limit(2))).scalars())
        return teams[0] if len(teams) == 1 else None

    async def workspace_url(self, team_id: str) -> str:
        async with self.db.reading() as conn:
            url = await conn.scalar(select(workspace.c.url).where(workspace.c.team_id == team_id))
        return str(url or "")

    # ---- events ----------------------------------------------------------------------------

    async def _claim_event(self, conn: AsyncConnection, team_id: str, event_id: str | None, at: datetime) -> bool:
        """Records an event id in the caller's transaction; False when it was seen before."""
        if not event_id:
            return True
        stmt = dialect_insert(conn, processed_events).values(team_id=team_id, event_id=event_id, received_at=at)
        result = await conn.execute(stmt.on_conflict_do_nothing())
        return bool(result.rowcount)

    async def prune_events(self, received_before: datetime) -> int:
        """Forgets event ids older than any retry Slack would still send."""
        async with self.db.transaction() as conn:
            result = await conn.execute(
                processed_events.delete().where(processed_events.c.received_at < received_before)
            )
        return int(result.rowcount or 0)
