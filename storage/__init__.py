"""The only package that knows SQL: engine, migrations and repositories."""

from storage.database import Database
from storage.store import Store

__all__ = ["Database", "Store"]
