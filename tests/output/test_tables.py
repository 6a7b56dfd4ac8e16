"""Tables a person reads: every id, count, moment and brake whole, at any width, in a pipe too.

A listing is a table when it fits the width whole, and one ``name: value`` block per row when
it does not; nothing is cut or ellipsized.  Before, ``plan`` printed a table wider than its
console and cropped it: "would act on" and "brake" were gone on an 80- or 160-column screen.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from output_kit import BRAKED_RULE, HOLD, LONG_RULE, MOMENT, STAMP, cli, lines_with, run_ids

WIDTHS = [40, 60, 80, 100, 140, 200, 320]


def _stamp(iso: str) -> str:
    """An ISO timestamp as the tables show it: UTC, to the second, with a Z."""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plan_values(plan: dict) -> list[str]:
    """What one rule's row must show whole: id, where, action, cutoff, counts, brake."""
    brake = f"stops: {plan['stopped_by']['limit']}" if plan["stopped_by"] else "ok"
    counts = [plan[k] for k in ("matched", "held", "protected", "blocked", "done", "null_age",
                                "eligible")]
    return [plan["rule"], f"{plan['store']}.{plan['table']}", plan["action"],
            _stamp(plan["cutoff"]), *(f"{n:,}" for n in counts), brake]


def _missing(text: str, values: list[str]) -> list[str]:
    return [value for value in values if not lines_with(text, value)]


@pytest.mark.parametrize("width", WIDTHS)
def test_the_plan_shows_every_key_value_whole_at_any_width(site, width):
    """``plan`` at WIDTH columns: each rule's id, counts, cutoff and brake are on a line whole."""
    as_of = datetime.now(tz=UTC).isoformat(timespec="seconds")
    plans = json.loads(cli(site, "plan", "--as-of", as_of, "--json").stdout)

    shown = cli(site, "plan", "--as-of", as_of, columns=width)

    assert (0, "") == (shown.code, shown.stderr)
    assert {LONG_RULE: [], BRAKED_RULE: []} == {
        plan["rule"]: _missing(shown.stdout, _plan_values(plan)) for plan in plans}
    assert "…" not in shown.stdout


def test_the_plan_is_a_table_where_it_fits_and_blocks_where_it_does_not(site):
    """Wide enough: one table row per rule; narrower: a block per rule, ``name: value`` lines."""
    wide = cli(site, "plan", columns=320).stdout
    narrow = cli(site, "plan", columns=100).stdout

    assert ([1, 1], []) == ([len(lines_with(wide, f"│ {rule} ")) for rule in (LONG_RULE,
                                                                           BRAKED_RULE)],
                            lines_with(wide, "would act on:"))
    assert ([], 2, ["  brake:        stops: max_rows"]) == (
        lines_with(narrow, "│"), len(lines_with(narrow, "would act on: 27")),
        lines_with(narrow, "stops: max_rows"))


@pytest.mark.parametrize("width", WIDTHS)
def test_status_shows_full_run_ids_and_iso_utc_moments_at_any_width(site, width):
    """``status``: the last run's full id on every rule it ran, and every moment one format.

    Before, ``next run`` read ``2026-12-07 13:32`` and ``last run`` ``2026-12-07T13:32``.
    """
    assert 0 == cli(site, "run", "--once", "--rule", LONG_RULE).code
    (run_id,) = run_ids(site)

    shown = cli(site, "status", columns=width)

    moments = MOMENT.findall(shown.stdout)
    assert (0, "") == (shown.code, shown.stderr)
    assert 1 == len(lines_with(shown.stdout, run_id))
    assert [] == [m for m in moments if not STAMP.fullmatch(m)]
    assert 3 <= len(moments)  # two next runs and the last run at least
    assert [] == _missing(shown.stdout, [LONG_RULE, BRAKED_RULE, HOLD, "27", "never run"])
    assert "…" not in shown.stdout


@pytest.mark.parametrize("width", WIDTHS)
def test_audit_summary_shows_every_count_whole_at_any_width(site, width):
    """``audit summary``: each rule's counts are whole on their lines, at any width."""
    assert 0 == cli(site, "run", "--once", "--rule", LONG_RULE).code

    shown = cli(site, "audit", "summary", columns=width)

    assert (0, "") == (shown.code, shown.stderr)
    assert [] == _missing(shown.stdout, [LONG_RULE, "quarantine", "27"])
    assert "…" not in shown.stdout


@pytest.mark.parametrize("width", [40, 80, 200])
def test_run_once_shows_the_run_id_and_counts_whole(site, width):
    """``run --once``: the full run id, and the rule's row (acted on 27, 4 batches) whole."""
    shown = cli(site, "run", "--once", "--rule", LONG_RULE, columns=width)

    assert (0, 1) == (shown.code, len(lines_with(shown.stdout, f"run {run_ids(site)[0]}:")))
    assert [] == _missing(shown.stdout, [LONG_RULE, "27", "4", "done"])
    assert "…" not in shown.stdout


@pytest.mark.parametrize("width", [40, 80, 250])
def test_hold_list_shows_the_full_hold_id_and_iso_utc_moments(site, width):
    """``hold list``: the hold's whole id, its case, and when it was placed as ISO 8601 UTC."""
    placed = cli(site, "hold", "add", "--store", "app", "--table", "tickets", "--where",
                 "customer_id=5", "--reason", "Dispute over invoice 17.", "--case",
                 "CASE-2026-0017", "--by", "dpo")
    hold_id = placed.stdout.split()[2]

    shown = cli(site, "hold", "list", columns=width)

    moments = MOMENT.findall(shown.stdout)
    assert (0, 0, "") == (placed.code, shown.code, shown.stderr)
    assert [] == _missing(shown.stdout, [hold_id, "CASE-2026-0017", "app.tickets where "
                                         "customer_id=5", "Dispute over invoice 17."])
    assert (1, []) == (len(moments), [m for m in moments if not STAMP.fullmatch(m)])


def test_explain_labels_every_moment_in_iso_utc_with_full_batch_ids(site):
    """``explain``: the as-of, keep-until and audit record moments in one format; batch ids whole.

    (The decision's own sentence is built by publish/explain and keeps its ISO offset form.)
    """
    assert 0 == cli(site, "run", "--once", "--rule", LONG_RULE).code

    shown = cli(site, "explain", "--store", "app", "--table", "tickets", "--key", "10",
                columns=60)

    lines = shown.stdout.splitlines()
    labelled = [line for line in lines if line.startswith(("app.tickets key", "  keep until:",
                                                           "  act at:", "  #"))]
    mentions = [line for line in lines if line.startswith("  #")]
    moments = [m for line in labelled for m in MOMENT.findall(line)]
    assert (0, 1) == (shown.code, len(mentions))
    assert (True, []) == (bool(moments), [m for m in moments if not STAMP.fullmatch(m)])
    assert re.search(r" batch [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:",
                     mentions[0]), mentions
