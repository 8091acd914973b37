"""One writer per database: an exclusive lock held for the writer's whole life.

`flock` on `<db>.lock` is released by the kernel when the process dies,
however it dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class LockError(Exception):
    """Another streamcount process is writing to this database."""


class WriterLock:
    def __init__(self, db: Path) -> None:
        self.db = db
        self.path = Path(f"{db}.lock")
        self._fd: int | None = None

    def acquire(self) -> WriterLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockError(
                f"{self.db} is already being written by another streamcount process "
                f"(pid {holder}); stop it first, or use another --db"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def lock_holder(db: Path) -> int | None:
    """The pid of the process writing `db`, or None if no process is."""
    path = Path(f"{db}.lock")
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.read(fd, 32).decode(errors="replace").strip()
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)  # also drops our shared lock, if we got it
    return None
