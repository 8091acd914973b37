"""Open the database to read it, creating no file beside it where SQLite allows.

A WAL database opened `mode=ro` gets a `-wal` and a `-shm` file created beside
it when they are missing (a cleanly stopped daemon removes them): clutter in
a backup, and a failure on a read-only mount. `immutable=1` creates nothing,
but SQLite then takes no lock and looks at no WAL, so it is used only when it
reads the same as `mode=ro` would: no writer holds the database (the writer
lock, writerlock.py) and there is no `-wal` file whose commits it would miss.
A writer that starts during such a read changes the main file only when it
checkpoints; `Stamp` tells afterwards whether that happened, and a reader
that saw it reports the read as unreliable instead of trusting it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from .writerlock import lock_holder


class Stamp(NamedTuple):
    """What changes when anything writes the database's main file."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> Stamp:
        st = os.stat(path)
        return cls(st.st_ino, st.st_size, st.st_mtime_ns)


def can_be_immutable(path: Path) -> bool:
    """No writer now, and no WAL file: the main file alone is the whole database.

    When that cannot be told (the lock file is not readable to us), it is not.
    """
    wal = Path(f"{path}-wal")
    try:
        return lock_holder(path) is None and not (wal.exists() and wal.stat().st_size > 0)
    except OSError:
        return False


def connect(path: Path) -> tuple[sqlite3.Connection, Stamp | None]:
    """A read-only connection, and the main file's stamp when it is immutable.

    The caller checks `Stamp.of(path) == stamp` after reading when a stamp is
    returned. sqlite3.OperationalError if the file cannot be opened.
    """
    immutable = can_be_immutable(path)
    stamp = Stamp.of(path) if immutable else None
    uri = f"file:{quote(str(path.resolve()))}?mode=ro" + ("&immutable=1" if immutable else "")
    return sqlite3.connect(uri, uri=True), stamp
