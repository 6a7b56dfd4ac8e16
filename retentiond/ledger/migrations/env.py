"""Alembic's environment: the caller's connection (``config.attributes``), in its transaction.

There is no offline (SQL script) mode: the revisions inspect the database they upgrade.
"""

from __future__ import annotations

from alembic import context

from retentiond.ledger.state import VERSION_TABLE


def _run() -> None:
    if context.is_offline_mode():
        raise NotImplementedError("retentiond's revisions run against a live database only")
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


_run()
