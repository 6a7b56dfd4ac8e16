"""Fixtures of the state-database tests: PostgreSQL roles.

Tests of roles run on PostgreSQL (``state_kit.ROLE_BACKENDS`` parametrizes the root
``server`` fixture): SQLite has no roles, its split is by file permissions
(``test_read_only.py``).  ``roles`` is a state database at the newest revision, owned by an
owner role, with ``deploy/state-roles.sql`` granted to a daemon and an auditor role (each
unique to the test; all dropped after it).
"""

from __future__ import annotations

from typing import Any

import pytest
from state_kit import NO_ROLES, Roles, as_role, grant, owned_database

from retentiond.ledger.state import upgrade_schema


@pytest.fixture
def role_server(server: Any) -> Any:
    """The PostgreSQL server of a roles test, to make databases and roles on; SQLite skips."""
    if server.kind == "sqlite":
        pytest.skip(NO_ROLES)
    return server


@pytest.fixture
def roles(role_server: Any) -> Roles:
    """A state database made by its owner role, with the daemon's and the auditor's grants."""
    url, owner = owned_database(role_server)
    daemon, auditor = role_server.user("pw"), role_server.user("pw")
    upgrade_schema(as_role(url, owner))
    grant(as_role(url, owner), daemon=daemon, auditor=auditor)
    return Roles(url, as_role(url, owner), as_role(url, daemon), as_role(url, auditor))
