"""Structured logging: JSON lines for journald, readable lines on a terminal.

Every event carries what it is about (``run``, ``rule``, ``store``), bound through
:func:`structlog.contextvars.bound_contextvars` by the caller, never a personal value.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

from retentiond.settings import LogFormat


def configure_logging(
    log_format: LogFormat = LogFormat.AUTO, level: str = "info", stream: TextIO | None = None,
) -> None:
    """Set up structlog once per process; logs go to stderr, results of commands to stdout."""
    out = stream or sys.stderr
    console = log_format is LogFormat.CONSOLE or (log_format is LogFormat.AUTO and out.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=out.isatty()) if console
        else structlog.processors.JSONRenderer(sort_keys=True)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
