"""Fixtures: see helpers.py for the reference count and the daemon subprocess."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from .helpers import DaemonProcess, skip_or_fail, write_config
from .pgserver import PgServer, find_bindir


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


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL for the whole run (see pgserver.py); skipped,
    saying why, where PostgreSQL or psycopg is missing (failed in CI)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        skip_or_fail("psycopg is not installed (pip install 'streamcount[postgres]')")
    bindir = find_bindir()
    if bindir is None:
        skip_or_fail("PostgreSQL is not installed (apt-get install postgresql)")
    server = PgServer(bindir).start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL of a new, empty PostgreSQL database."""
    return pg_server.new_database()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a store lives, once per backend: a SQLite file, a PostgreSQL URL."""
    if request.param == "sqlite":
        return tmp_path / "db.sqlite"
    return request.getfixturevalue("pg_url")
