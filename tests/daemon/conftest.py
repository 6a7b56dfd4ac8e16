"""Fixtures for the daemon tests: a notify socket, daemon processes, a daemon in this process.

Daemon processes still running when a test ends are killed; a daemon in this process is
stopped as its ``with`` block ends.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from daemon_kit import AGENT_VARIABLES, DaemonProcess, NotifySocket, in_process

from retentiond.daemon.service import Daemon


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    """A notify socket at ``tmp_path/notify.sock``, closed when the test ends."""
    path = tmp_path / "notify.sock"
    assert len(str(path)) < 108, f"{path} is too long for an AF_UNIX address"
    made = NotifySocket(str(path))
    yield made
    made.close()


@pytest.fixture
def daemons() -> Iterator[Callable[..., DaemonProcess]]:
    """Start daemons: ``daemons(config, *args, env=None)``; any still running is killed after."""
    started: list[DaemonProcess] = []

    def start(config: Path, *args: str, env: dict[str, str] | None = None) -> DaemonProcess:
        process = DaemonProcess(config, *args, env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.cleanup()


@pytest.fixture
def local_daemon(monkeypatch) -> Callable[..., AbstractContextManager[Daemon]]:
    """The daemon in this process, started on a clock and stopped as the ``with`` block ends.

    Used as ``with local_daemon(site, clock, run_now=False) as daemon``.  The environment is
    the one ``clean_env`` gives a daemon process: no RETENTIOND_* settings, none of systemd's
    variables.
    """
    for variable in [v for v in os.environ
                     if v.startswith("RETENTIOND_") or v in AGENT_VARIABLES]:
        monkeypatch.delenv(variable)
    return in_process
