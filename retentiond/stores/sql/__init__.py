"""SQL stores: SQLite, PostgreSQL and MariaDB/MySQL through SQLAlchemy Core."""

from retentiond.stores.sql.read import SqlReader
from retentiond.stores.sql.store import SqlStore

__all__ = ["SqlReader", "SqlStore"]
