"""A site per test: the tickets table, its two rules and a hold (see output_kit)."""

from __future__ import annotations

from pathlib import Path

import pytest
from output_kit import Site, make_site


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """A fresh site under ``tmp_path``."""
    return make_site(tmp_path)
