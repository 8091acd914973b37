"""Fixtures: see helpers.py for the reference count and the daemon subprocess."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from .helpers import DaemonProcess, write_config


@pytest.fixture
def rng() -> random.Random:
    return random.Random(20261126)


@pytest.fixture
def daemon_factory(tmp_path: Path):
    """Start daemons on tmp_path/inbox and tmp_path/db.sqlite; all stopped at the end."""
    started: list[DaemonProcess] = []
    inbox = tmp_path / "inbox"
    inbox.mkdir()

    def make(env: dict[str, str] | None = None, **settings: object) -> DaemonProcess:
        config = write_config(tmp_path / "config.toml", inbox, tmp_path / "db.sqlite", **settings)
        daemon = DaemonProcess(config, env)
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
