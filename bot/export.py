"""`incident-bot export INC-<n>`: the postmortem Markdown from the database alone."""

from __future__ import annotations

import re

from bot.config import Settings
from bot.services.postmortem import NotClosed, compile_report
from bot.ui.postmortem import render_markdown
from storage import Database, Store
from storage.store import all_cached_names

REF = re.compile(r"^(?:INC-)?(\d+)$", re.IGNORECASE)


def parse_ref(text: str) -> int | None:
    match = REF.match(text.strip())
    return int(match.group(1)) if match else None


async def export_markdown(settings: Settings, number: int) -> str:
    """The Markdown, or a line starting with 'error: ' saying why there is none."""
    db = Database(settings.database_url)
    await db.open_existing()
    try:
        store = Store(db)
        found = await store.incidents_numbered(number)
        if not found:
            return f"error: there is no INC-{number} in {db.safe_url}"
        if len(found) > 1:
            return f"error: INC-{number} exists in several workspaces ({', '.join(i.team_id for i in found)})"
        incident = found[0]
        names = await all_cached_names(store, incident.team_id)
        try:
            report = await compile_report(store, incident, settings.timezone, names)
        except NotClosed:
            return f"error: INC-{number} is not closed yet, so it has no postmortem"
        return render_markdown(report)
    finally:
        await db.close()
