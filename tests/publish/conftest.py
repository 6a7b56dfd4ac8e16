"""Fixtures of the publishing tests: an installation enforced by retentiond itself.

``world``
    Built afresh on each state database backend (``state_url``: SQLite and PostgreSQL).
``shared_world``
    Built once per session on SQLite, for the tests that only read what it wrote.
"""

from __future__ import annotations

import pytest
from publish_kit import World, build_world


@pytest.fixture
def world(tmp_path, state_url) -> World:
    """An enforced installation whose ledger lives on the backend of this run."""
    return build_world(tmp_path, state_url)


@pytest.fixture(scope="session")
def shared_world(tmp_path_factory) -> World:
    """An enforced installation with an SQLite ledger; read it, do not change it."""
    directory = tmp_path_factory.mktemp("world")
    return build_world(directory, f"sqlite:///{directory / 'state.db'}")
