"""One log stream: every record is a JSON line, and under journald it carries its priority.

APScheduler's records and a scheduled job's traceback used to reach stderr as plain text
between the JSON lines, and no line told journald its priority, so ``journalctl -p err``
found nothing (issue 15, item 7).
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from retentiond.logs import configure_logging
from retentiond.settings import LogFormat


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Each test configures logging for the process; the next test gets it back as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_a_library_s_record_is_a_json_line_like_ours():
    """A standard-library record (APScheduler's) is rendered as our events are: JSON, level."""
    stream = io.StringIO()
    configure_logging(LogFormat.JSON, "info", stream)

    logging.getLogger("apscheduler.executors.default").error("Job %r raised", "rule-1")
    structlog.get_logger().info("run.end", rule="rule-1")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [("Job 'rule-1' raised", "error", "apscheduler.executors.default"),
            ("run.end", "info", None)] == [
        (line["event"], line["level"], line.get("logger")) for line in lines]


def test_a_traceback_from_a_library_is_inside_its_json_line(tmp_path):
    """An exception logged through the standard library stays in one JSON line."""
    stream = io.StringIO()
    configure_logging(LogFormat.JSON, "info", stream)

    try:
        Path(tmp_path / "missing" / "x.lock").read_text()
    except FileNotFoundError:
        logging.getLogger("apscheduler.executors.default").exception("Job raised")

    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert ("error", True) == (record["level"], "FileNotFoundError" in record["exception"])


def test_apscheduler_s_routine_lines_stay_out_at_info():
    """Each job's start and end (APScheduler's INFO) is not logged unless asked for (debug)."""
    stream = io.StringIO()
    configure_logging(LogFormat.JSON, "info", stream)

    logging.getLogger("apscheduler.executors.default").info('Running job "rule-1"')

    assert "" == stream.getvalue()


def test_under_journald_each_line_starts_with_its_priority(tmp_path, monkeypatch):
    """With stderr being the journal, an error is ``<3>``, a warning ``<4>``, info ``<6>``."""
    path = Path(tmp_path / "journal")
    with path.open("w") as journal:
        found = os.fstat(journal.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{found.st_dev}:{found.st_ino}")
        configure_logging(LogFormat.JSON, "info", journal)
        structlog.get_logger().error("run.failed")
        structlog.get_logger().warning("brake.stopped")
        logging.getLogger("apscheduler.scheduler").error("Scheduler failed")
        structlog.get_logger().info("run.end")

    lines = path.read_text().splitlines()
    assert ["<3>", "<4>", "<3>", "<6>"] == [line[:3] for line in lines]
    assert ["run.failed", "brake.stopped", "Scheduler failed", "run.end"] == [
        json.loads(line[3:])["event"] for line in lines]


def test_elsewhere_lines_carry_no_priority_prefix(tmp_path, monkeypatch):
    """A file that is not the journal (another JOURNAL_STREAM) gets plain JSON lines."""
    path = Path(tmp_path / "log")
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    with path.open("w") as log:
        configure_logging(LogFormat.JSON, "info", log)
        structlog.get_logger().error("run.failed")

    assert "run.failed" == json.loads(path.read_text())["event"]
