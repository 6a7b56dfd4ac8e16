"""Revisions of the state database's schema, applied with Alembic by the database's owner.

The revisions in ``versions/`` are numbered ``"1"``, ``"2"``, ... each building on the one
before; :data:`retentiond.ledger.state.SCHEMA_REVISION` names the newest, the one this retentiond
needs.  Alembic is configured here in code, not by an ``alembic.ini``: :func:`upgrade` hands it
a connection already inside the caller's transaction, so a migration commits with the caller's
work or not at all.  Only creating or upgrading a schema imports this module (and Alembic).

A new revision: copy the newest file to ``revN_what.py`` with ``revision = "N"`` and
``down_revision`` the one before, write what changes (never the live Table objects of
:mod:`retentiond.ledger.state`: a revision describes the schema as it was then), and raise
``SCHEMA_REVISION``; a test holds the two equal.  There are no downgrades: the ledger only
moves forward.
"""

from __future__ import annotations

import threading

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

_ALEMBIC = threading.Lock()
"""Alembic's ``op`` and ``context`` are proxies bound module-wide: one migration at a time."""


def _config(connection: Connection | None) -> Config:
    config = Config()
    config.set_main_option("script_location", "retentiond.ledger:migrations")
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision in ``versions/``."""
    found = ScriptDirectory.from_config(_config(None)).get_current_head()
    if found is None:
        raise LookupError("retentiond/ledger/migrations/versions holds no revision")
    return found


def upgrade(connection: Connection, *, stamp: str | None = None) -> None:
    """Migrate the schema on ``connection`` to the newest revision, in its transaction.

    ``stamp`` records that revision first without running it: an install made before
    revisions were recorded already has its tables.
    """
    config = _config(connection)
    with _ALEMBIC:
        if stamp is not None:
            command.stamp(config, stamp)
        command.upgrade(config, "head")
