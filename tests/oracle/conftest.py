"""Fixtures of the oracle tests: a fresh database per hypothesis example, and the seed header.

Each hypothesis example asks ``fresh()`` for a new database on the test's ``server`` (an
SQLite file, or a throwaway PostgreSQL or MariaDB database, all dropped when the test ends)
and gets its URL, an engine on it (disposed afterwards) and a directory of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from oracle_kit import LONG, SEED


def pytest_report_header() -> list[str]:
    """The oracle's mode: derandomized, or the seed of a long run (to reproduce it)."""
    if LONG:
        return [f"oracle: long mode, RETENTIOND_ORACLE_SEED={SEED}"]
    return ["oracle: derandomized examples (set RETENTIOND_ORACLE_EXAMPLES for a long run)"]


@dataclass(frozen=True)
class Fresh:
    """A new database for one example."""

    url: str
    engine: sa.Engine
    directory: Path


@pytest.fixture
def fresh(server, tmp_path: Path) -> Iterator[Callable[[], Fresh]]:
    """Make a new database (and directory) per call; all of them go when the test ends."""
    numbers = itertools.count()
    engines: list[sa.Engine] = []

    def make() -> Fresh:
        url = server.database()
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        engines.append(engine)
        return Fresh(url, engine, tmp_path / f"example-{next(numbers)}")

    yield make
    for engine in engines:
        engine.dispose()
