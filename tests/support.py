"""Small helpers the end-to-end tests share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.runtime import Runtime
from sandbox import LocalSlack
from storage.schema import incidents, tasks, timeline_entries


def open_view(slack: LocalSlack, callback_id: str) -> dict[str, Any]:
    """The newest open modal with this callback id."""
    found = [v for v in slack.views.values() if not v["closed"] and v["view"].get("callback_id") == callback_id]
    assert found, f"no open view {callback_id}: {[v['view'].get('callback_id') for v in slack.views.values()]}"
    return found[-1]


async def rows(runtime: Runtime, table: Any, *where: Any) -> list[dict[str, Any]]:
    async with runtime.db.reading() as conn:
        query = select(table).where(*where)
        if table is timeline_entries:
            query = query.order_by(timeline_entries.c.occurred_at, timeline_entries.c.id)
        return [dict(r) for r in (await conn.execute(query)).mappings().all()]


async def incident_row(runtime: Runtime, number: int = 1) -> dict[str, Any]:
    found = await rows(runtime, incidents, incidents.c.number == number)
    assert found, f"no INC-{number}"
    return found[0]


async def entry_rows(runtime: Runtime) -> list[dict[str, Any]]:
    return await rows(runtime, timeline_entries)


async def task_rows(runtime: Runtime) -> list[dict[str, Any]]:
    return await rows(runtime, tasks)


async def start_incident(slack: LocalSlack, runtime: Runtime, title: str, user: str, channel: str) -> dict[str, Any]:
    delivery = await slack.send_command(f"start {title}", user_id=user, channel_id=channel)
    assert delivery.status == 200, delivery.body
    assert await runtime.idle()
    rows_ = await rows(runtime, incidents)
    return rows_[-1]


async def command(slack: LocalSlack, runtime: Runtime, text: str, user: str, channel: str) -> None:
    delivery = await slack.send_command(text, user_id=user, channel_id=channel)
    assert delivery.status == 200, delivery.body
    assert await runtime.idle()


def ephemeral_texts(slack: LocalSlack, user: str) -> list[str]:
    return [str(e.get("text") or "") for e in slack.ephemerals if e.get("user") in (user, None)]
