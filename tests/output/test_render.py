"""``render.stamp`` and ``render.Listing``: one format for moments, and no cut values."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from rich.console import Console

from retentiond.cli.render import Listing, stamp

CET = timezone(timedelta(hours=1))


@pytest.mark.parametrize(("moment", "expected"), [
    (datetime(2026, 12, 7, 13, 32, 5, 999_999, tzinfo=UTC), "2026-12-07T13:32:05Z"),
    (datetime(2026, 12, 7, 14, 32, 5, tzinfo=CET), "2026-12-07T13:32:05Z"),
    (datetime(2026, 12, 7, 13, 32, 5), "2026-12-07T13:32:05Z"),  # noqa: DTZ001 - naive is UTC
    ("2026-12-07T13:32:05.123456+00:00", "2026-12-07T13:32:05Z"),
    ("2026-12-07 14:32:05+01:00", "2026-12-07T13:32:05Z"),
    (date(2026, 12, 7), "2026-12-07"),
    ("not a moment", "not a moment"),
    (None, "-"),
])
def test_stamp_is_iso_8601_utc_to_the_second(moment, expected):
    """Aware, naive, ledger text, a day, odd text, nothing: each as people read it."""
    assert expected == stamp(moment)


def _printed(listing: Listing, width: int) -> str:
    console = Console(width=width, file=io.StringIO())
    console.print(listing, crop=False)
    return console.file.getvalue()


def test_a_listing_is_a_table_only_where_it_fits_whole():
    """The same rows: a table at the width it needs, blocks one column narrower."""
    listing = Listing("Runs", ("run", "rows"), numbers=frozenset({"rows"}))
    listing.add("0d806b6e-e339-4a2e-a0d5-1100ab3cd27b", "10,684")
    needs = max(len(line) for line in _printed(listing, 200).splitlines())

    fits, narrow = _printed(listing, needs), _printed(listing, needs - 1)

    assert (True, False) == ("┃ run" in fits, "┃" in narrow)
    assert ["0d806b6e-e339-4a2e-a0d5-1100ab3cd27b", "  rows: 10,684"] == [
        line for line in narrow.splitlines() if "0d806b6e" in line or "rows:" in line]


def test_blocks_never_break_a_value_even_one_wider_than_the_console():
    """At 20 columns a 36-character id and a long line run on whole; nothing is folded."""
    listing = Listing("Runs", ("rule", "run"))
    listing.add("emails-12-months", "0d806b6e-e339-4a2e-a0d5-1100ab3cd27b")

    shown = _printed(listing, 20)

    assert ["emails-12-months", "  run: 0d806b6e-e339-4a2e-a0d5-1100ab3cd27b"] == [
        line.rstrip() for line in shown.splitlines() if "emails" in line or "run:" in line]
