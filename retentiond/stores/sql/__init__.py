"""SQL stores: SQLite, PostgreSQL and MariaDB/MySQL through SQLAlchemy Core.

``KIND`` is registered as the ``sql`` store kind by retentiond's ``pyproject.toml``.
"""

from retentiond.stores.kinds import StoreKind
from retentiond.stores.sql.read import SqlReader
from retentiond.stores.sql.settings import SqlStoreSettings
from retentiond.stores.sql.store import SqlStore

KIND = StoreKind("sql", SqlStoreSettings, SqlStore)
"""Stores of ``kind = "sql"`` (the default): any SQLAlchemy URL of a supported database."""

__all__ = ["KIND", "SqlReader", "SqlStore", "SqlStoreSettings"]
