"""A fork server of ``retentiond`` runs, for tests/test_crash.py to kill.

``python tests/crash_worker.py ARGS`` imports the CLI and the database drivers (about half a
second, nearly all of an idle run's time), says ``ready`` on stdout, and then, for each ``go``
line on stdin, forks a child that runs exactly what ``python -m retentiond ARGS`` runs
(:func:`retentiond.cli.main`).  For each child it writes ``pid N`` on stdout, ``ended`` when
the child has ended (and ``crash_worker: ended N`` on stderr, after the child's last line),
and, once told ``reap``, ``exit CODE`` (negative: killed by that signal).
End of input (or anything but ``go``) ends the server.

The child's stdin and stdout are ``/dev/null``; its stderr (the JSON log) is the server's,
and before anything else the child writes ``crash_worker: run N`` there, so a reader of stderr
knows whose lines follow.  No database is touched before the fork: each child opens its own
connections, as a freshly started process would.  Without the fork server every kill would
cost a new interpreter and its imports, and random kill points would mostly land in the import
system, where a kill shows nothing.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback

import psycopg
import pymysql
import sqlalchemy.dialects.mysql.pymysql
import sqlalchemy.dialects.postgresql.psycopg
import sqlalchemy.dialects.sqlite.pysqlite

import retentiond.cli
import retentiond.run.enforce
import retentiond.run.engine

PRELOADED = (psycopg, pymysql, sqlalchemy.dialects.mysql.pymysql,
             sqlalchemy.dialects.postgresql.psycopg, sqlalchemy.dialects.sqlite.pysqlite,
             retentiond.run.enforce, retentiond.run.engine)
"""Modules a run would import lazily (drivers on first connect); named so none is unused."""

READY = "ready"
RUN = "crash_worker: run"
"""Written to stderr by each child, with its pid, before it does anything else."""
ENDED = "crash_worker: ended"
"""Written to stderr by the server, with the pid, once the child has ended: its log is complete."""
CRASHED = 70
"""Exit code of a child in which something other than SystemExit escaped main()."""


def serve(args: list[str]) -> None:
    """Fork one run of ``retentiond ARGS`` per ``go`` line; report pids and exit codes.

    A child that ends stays a zombie until ``reap`` arrives, so its pid cannot be reused by
    another process before the test's SIGKILL has been sent.
    """
    _say(READY)
    while sys.stdin.readline().strip() == "go":
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _run(args)
        _say(f"pid {pid}")
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        sys.stderr.write(f"\n{ENDED} {pid}\n")  # a kill can leave the child's last line torn
        sys.stderr.flush()
        _say("ended")
        if sys.stdin.readline().strip() != "reap":
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        _say(f"exit {os.waitstatus_to_exitcode(status)}")


def _say(line: str) -> None:
    sys.stdout.write(f"{line}\n")
    sys.stdout.flush()


def _run(args: list[str]) -> None:
    """The child: be ``retentiond ARGS``, then leave without running the server's code."""
    code = CRASHED
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.close(devnull)
        sys.stderr.write(f"{RUN} {os.getpid()}\n")
        sys.stderr.flush()
        sys.argv = ["retentiond", *args]
        try:
            retentiond.cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - whatever it is, the child must not return to serve()
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    serve(sys.argv[1:])
