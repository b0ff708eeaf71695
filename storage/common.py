"""Small pieces several repositories share."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import counters


def dialect_insert(conn: AsyncConnection, table: Any) -> Any:
    """An INSERT that knows ON CONFLICT in both dialects."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


async def next_number(conn: AsyncConnection, team_id: str) -> int:
    """The team's next incident number, in the caller's transaction (a rollback gives it back)."""
    stmt = dialect_insert(conn, counters).values(team_id=team_id, name="incident", value=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["team_id", "name"], set_={"value": counters.c.value + 1}
    ).returning(counters.c.value)
    return int((await conn.execute(stmt)).scalar_one())
