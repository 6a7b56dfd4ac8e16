"""Structured logging: JSON lines for journald, readable lines on a terminal, one stream.

Every event carries what it is about (``run``, ``rule``, ``store``), bound through
:func:`structlog.contextvars.bound_contextvars` by the caller, never a personal value.
Records of the standard library's logging (APScheduler's, SQLAlchemy's, a job's traceback)
are rendered the same way, so a JSON consumer never meets a plain-text line.  When stderr is
the journal (systemd sets ``$JOURNAL_STREAM`` to its device and inode), each line starts
with its syslog priority (``<3>`` for an error), which journald takes as the entry's
priority: ``journalctl -p err`` finds the errors.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import Processor, WrappedLogger

from retentiond.settings import LogFormat

_PRIORITIES = {"debug": 7, "info": 6, "warning": 4, "warn": 4, "error": 3, "exception": 3,
               "critical": 2, "fatal": 2}
"""syslog priorities by log method: what journald files an entry under."""
_QUIET = {"apscheduler": logging.WARNING}
"""Libraries whose INFO lines say nothing an operator needs (each job's start and end)."""


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler this module installs on the root logger (replaced on reconfiguring)."""


def configure_logging(
    log_format: LogFormat = LogFormat.AUTO, level: str = "info", stream: TextIO | None = None,
) -> None:
    """Set up structlog and the standard library's logging; logs go to stderr, results to stdout."""
    out = stream or sys.stderr
    console = log_format is LogFormat.CONSOLE or (log_format is LogFormat.AUTO and out.isatty())
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=out.isatty()) if console
        else structlog.processors.JSONRenderer(sort_keys=True)
    )
    finish: list[Processor] = [renderer]
    if not console and _is_journal(out):
        finish.append(_with_priority)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    threshold = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, *finish],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = _Handler(out)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, *finish],
    ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, threshold))


def _is_journal(stream: TextIO) -> bool:
    """Whether ``stream`` is the journal: ``$JOURNAL_STREAM`` names its device and inode."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        found = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):  # not a file (a test's StringIO, a closed one)
        return False
    return expected == f"{found.st_dev}:{found.st_ino}"


def _with_priority(_logger: WrappedLogger, method: str, line: Any) -> Any:  # noqa: ANN401
    """The rendered line with its syslog priority first, as journald reads it (``<3>...``)."""
    return f"<{_PRIORITIES.get(method, 6)}>{line}"

