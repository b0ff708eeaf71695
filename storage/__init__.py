"""The only package that knows SQL: engine, migrations and repositories."""

from storage.database import DATABASE_ERRORS, Database
from storage.store import Store

__all__ = ["DATABASE_ERRORS", "Database", "Store"]
