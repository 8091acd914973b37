"""A throwaway PostgreSQL server for the tests: initdb into a temporary folder,
pg_ctl on a free loopback port, stopped and removed at the end.

Debian's binaries live in /usr/lib/postgresql/<version>/bin. initdb refuses
to run as root, so when the tests run as root the server runs as `nobody`
(the folder is made over to it). Authentication is `trust` on loopback: a
password in a URL is accepted and ignored, which lets the tests check that
it is never shown.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "streamcount"  # the database superuser initdb makes


def find_bindir() -> Path | None:
    """The newest Debian PostgreSQL bin folder, else the one `initdb` on PATH is in."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(os.path.realpath(initdb)).parent if initdb else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, bindir: Path, durable: bool = False) -> None:
        """`durable`: PostgreSQL's own defaults (for benchmarks); else fsync off (tests)."""
        self.bindir = bindir
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="streamcount-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user = "nobody" if os.geteuid() == 0 else None
        self._databases = 0
        if self.user:
            ids = pwd.getpwnam(self.user)
            os.chown(self.root, ids.pw_uid, ids.pw_gid)
        os.chmod(self.root, 0o755)

    def _run(self, *args: str) -> None:
        subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            check=True, user=self.user, capture_output=True, cwd=self.root,
        )  # fmt: skip

    def start(self) -> PgServer:
        atexit.register(self.stop)  # also if the session's teardown never comes
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8")  # fmt: skip
        self.resume()
        return self

    def resume(self) -> None:
        """Start the server (again)."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off -c max_connections=60"
        self._run("pg_ctl", "-D", str(self.data), "-o", options,
                  "-l", str(self.root / "server.log"), "-w", "start")  # fmt: skip

    def pause(self) -> None:
        """Stop the server (`-m fast`: sessions ended) and keep its data: connections
        are refused until `resume`."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every session is ended, then the server is back."""
        log = str(self.root / "server.log")  # without -l the new server holds our pipe
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "restart", "-l", log)

    def stop(self) -> None:
        """Stop the server and remove its folder; once (later calls do nothing)."""
        if not self.root.exists():
            return
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        auth = f"{USER}:{password}" if password else USER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        self._databases += 1
        name = f"t{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)
