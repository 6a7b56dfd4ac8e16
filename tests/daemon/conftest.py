"""Fixtures for the daemon tests: a notify socket, and daemon processes that die with the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from daemon_kit import DaemonProcess, NotifySocket


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
