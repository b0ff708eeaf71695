"""Repositories: every query the bot runs, one transaction per public method. `Store` gathers
them over one `Database`; each aggregate has its own module."""

from __future__ import annotations

from datetime import UTC, datetime

from storage.alerts import AlertRepo
from storage.database import Database
from storage.entry_writer import EntryWriter
from storage.incidents import IncidentRepo
from storage.lifecycle import LifecycleRepo
from storage.nudges import NudgeRepo
from storage.outbox import OutboxStore
from storage.reconcile import ReconcileRepo
from storage.reports import ReportRepo
from storage.timeline import TimelineRepo


class Store(IncidentRepo, TimelineRepo, NudgeRepo):
    def __init__(self, db: Database) -> None:
        self.db = db
        self._entries = EntryWriter(db)
        self.reconcile = ReconcileRepo(db)
        self.outbox = OutboxStore(db)
        self.alerts = AlertRepo(db)
        self.lifecycle = LifecycleRepo(db)
        self.reports = ReportRepo(db)


async def all_cached_names(store: Store, team_id: str) -> dict[str, str]:
    """Every name ever cached, however old: export works offline and prefers a stale name to an id."""
    return await store.cached_names(team_id, datetime.min.replace(tzinfo=UTC))
