"""``run --once`` shows a bar per rule on a terminal, and never in a pipe or with --json.

The bar is fed by the engine's ``Options.observe`` (after the census, then after each batch):
rows acted on of those eligible, and batches.  Before, a terminal showed nothing until the end.
"""

from __future__ import annotations

import json

from output_kit import LONG_RULE, cli, in_a_pipe, on_terminal

BAR = "27/27 rows"
"""What the finished bar of LONG_RULE reads: 27 rows of 27 eligible (3 are held)."""


def test_a_terminal_shows_a_bar_per_rule_with_rows_and_batches(site):
    """On a pseudo-terminal the bar shows the rule, its rows done of those due, its batches."""
    code, written = on_terminal(site, "run", "--once", "--rule", LONG_RULE)

    bars = [line for line in written.splitlines() if BAR in line]
    assert (0, True) == (code, bool(bars)), written
    assert (True, True) == (LONG_RULE in bars[-1], "4 batches" in bars[-1])


def test_a_pipe_shows_no_bar(site):
    """Through pipes the same run writes no bar, no cursor movement, on stdout or stderr."""
    done = in_a_pipe(site, "run", "--once", "--rule", LONG_RULE)

    assert (0, False, False) == (done.returncode, BAR in done.stdout + done.stderr,
                                 "\x1b[" in done.stdout + done.stderr)


def test_json_on_a_terminal_shows_no_bar(site):
    """``--json`` on a terminal: the JSON document only, no bar (a script may read a pty)."""
    code, written = on_terminal(site, "run", "--once", "--rule", LONG_RULE, "--json")

    assert (0, False) == (code, BAR in written)
    assert 27 == json.loads(written.replace("\r\n", "\n"))["rules"][0]["acted"]


def test_in_process_without_a_terminal_shows_no_bar(site):
    """The CLI run in-process into a captured stream (as a log would) shows no bar either."""
    shown = cli(site, "run", "--once", "--rule", LONG_RULE)

    assert (0, False) == (shown.code, BAR in shown.stdout + shown.stderr)


def test_json_logs_on_a_terminal_show_no_bar(site):
    """``log_format = "json"``: logs are for a machine even on a terminal, so no bar."""
    site.config.write_text(site.config.read_text(encoding="utf-8").replace(
        'log_level = "warning"\n', 'log_level = "info"\nlog_format = "json"\n'),
        encoding="utf-8")

    code, written = on_terminal(site, "run", "--once", "--rule", LONG_RULE)

    applied = [line for line in written.splitlines() if '"event": "batch.applied"' in line]
    assert (0, False, 4) == (code, BAR in written, len(applied))
    assert [dict] * 4 == [type(json.loads(line)) for line in applied]


def test_log_lines_on_a_terminal_print_above_the_bar(site):
    """Console logs at info on a terminal: every batch's log line is there, and the bar too."""
    site.config.write_text(site.config.read_text(encoding="utf-8").replace(
        'log_level = "warning"\n', 'log_level = "info"\nlog_format = "console"\n'),
        encoding="utf-8")

    code, written = on_terminal(site, "run", "--once", "--rule", LONG_RULE, columns=200)

    assert (0, True, 4) == (code, BAR in written, written.count("batch.applied"))
