"""SQLite: schema, the merge (ledger + additive upsert in one transaction), queries.

The totals and the ledger of files counted live in one database, and every
merge writes both in a single `BEGIN IMMEDIATE` transaction: a file is in the
ledger if and only if its tokens are in the totals. That is what makes
counting exactly-once across crashes and restarts.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import sqlite_utils

from . import failpoints
from .config import TokenizerSettings
from .engines import token_identity
from .identity import FileId
from .readonly import connect as readonly_connect
from .work import COUNTED

BUSY_TIMEOUT_MS = 30_000
WAL_LIMIT_BYTES = 64 * 1024 * 1024
TOP_MIN = 1000  # tokens counted at least this often are in the counts_top index
ADD_COUNT = "ON CONFLICT(token) DO UPDATE SET count = count + excluded.count"  # the upsert

# Each entry brings the schema from version i to i + 1. `counts` is written
# by hand because sqlite-utils cannot create WITHOUT ROWID tables, which keep
# each row in the primary-key b-tree itself: one lookup per upsert, not two.
MIGRATIONS = (
    """
    CREATE TABLE counts (token TEXT PRIMARY KEY, count INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE files (
        path TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        inode INTEGER NOT NULL,
        tokens INTEGER NOT NULL,
        status TEXT NOT NULL,
        reason TEXT NOT NULL,
        encoding TEXT NOT NULL,
        counted_at TEXT NOT NULL
    );
    CREATE INDEX files_status ON files(status);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value);
    """,
    # The frequent tokens only (see TOP_MIN): `top` reads them in index order.
    # A full index on count halves upsert speed; this one is touched only by
    # the few frequent tokens of each batch.
    f"CREATE INDEX counts_top ON counts(count) WHERE count >= {TOP_MIN}",
    # A row per file identity, not per path (see identity.py): a new file at a
    # path counted before is counted, a renamed one is not. Rows from before
    # keep dev 0 and no fingerprint (unknown), and the old rules for them.
    # The unique index makes counting the same bytes twice fail the merge.
    """
    CREATE TABLE files_v3 (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        dev INTEGER NOT NULL,
        inode INTEGER NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        tokens INTEGER NOT NULL,
        status TEXT NOT NULL,
        reason TEXT NOT NULL,
        encoding TEXT NOT NULL,
        counted_at TEXT NOT NULL
    );
    INSERT INTO files_v3 (path, dev, inode, size, mtime_ns, fingerprint, tokens, status,
                          reason, encoding, counted_at)
        SELECT path, 0, inode, size, mtime_ns, '', tokens, status, reason, encoding, counted_at
        FROM files ORDER BY counted_at, rowid;
    DROP TABLE files;
    ALTER TABLE files_v3 RENAME TO files;
    CREATE INDEX files_path ON files(path);
    CREATE INDEX files_status ON files(status);
    CREATE UNIQUE INDEX files_counted_once ON files(dev, inode, size, mtime_ns, fingerprint)
        WHERE status = 'counted' AND fingerprint != '';
    """,
)


class StoreError(Exception):
    """The database cannot be used as asked; the message says why."""


class LedgerRow(NamedTuple):
    path: str
    file: FileId  # the identity of the bytes counted (or found)
    tokens: int
    status: str
    reason: str
    encoding: str

    @property
    def size(self) -> int:
        return self.file.size


@dataclass(slots=True)
class Merge:
    """What the writer commits in one transaction: summed counts and ledger rows.

    Results are added as they arrive, so waiting ones cost the vocabulary
    they share once, not once each.
    """

    counts: dict[str, int] = field(default_factory=dict)
    rows: list[LedgerRow] = field(default_factory=list)

    def add(self, counts: Mapping[str, int], rows: Iterable[LedgerRow]) -> None:
        if not self.counts:
            self.counts.update(counts)  # in C
        else:
            mine, get = self.counts, self.counts.get
            for token, n in counts.items():
                mine[token] = get(token, 0) + n
        self.rows.extend(rows)

    def __bool__(self) -> bool:
        return bool(self.rows or self.counts)


def tokenizer_fingerprint(settings: TokenizerSettings) -> dict[str, Any]:
    """The settings that shape the totals, with dictionaries by content hash."""

    def digest(path: Path) -> str:
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc

    return {
        "engine": token_identity(settings),  # "jieba" for both engines (engines.py)
        "mode": settings.mode,
        "hmm": settings.hmm,
        "lowercase": settings.lowercase,
        "min_length": settings.min_length,
        "user_dict": [digest(p) for p in settings.user_dict],
        "stopwords": digest(settings.stopwords) if settings.stopwords else None,
        "filter": "no-space-punct-symbol-v1",
    }


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        if not path.is_file():
            raise StoreError(f"no database at {path}")
        conn, _ = readonly_connect(path)  # creates no -wal/-shm when it need not
    else:
        try:
            conn = sqlite3.connect(path)
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


class Store:
    """One connection to the database, as the writer or as a reader."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.path = path
        self.conn = conn
        self.db = sqlite_utils.Database(conn, execute_plugins=False)

    @classmethod
    def open_reader(cls, path: Path) -> Store:
        store = cls(_connect(path, readonly=True), path)
        try:
            tables = store.db.table_names()
        except sqlite3.DatabaseError as exc:
            store.close()
            raise StoreError(f"cannot read {path}: {exc}") from exc
        if "counts" not in tables:
            raise StoreError(f"{path} is not a streamcount database")
        return store

    @classmethod
    def open_writer(cls, path: Path, settings: TokenizerSettings) -> Store:
        """Open (creating if needed), migrate, and refuse mismatched tokenizer settings."""
        store = cls(_connect(path, readonly=False), path)
        try:
            store.conn.execute("PRAGMA journal_mode = WAL")
            store.conn.execute("PRAGMA synchronous = NORMAL")
            store.conn.execute("PRAGMA cache_size = -65536")  # 64 MiB
            # After a long reader has kept the WAL from being reset, shrink it back.
            store.conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
            store._migrate()
            store._check_settings(tokenizer_fingerprint(settings))
        except sqlite3.DatabaseError as exc:
            store.close()
            raise StoreError(f"cannot use database {path}: {exc}") from exc
        except StoreError:
            store.close()
            raise
        return store

    def close(self) -> None:
        self.conn.close()

    def _migrate(self) -> None:
        with self._immediate():
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"{self.path} has schema version {version}; this streamcount knows "
                    f"{len(MIGRATIONS)} at most (upgrade streamcount)"
                )
            for i in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[i].split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
            self.conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    def _check_settings(self, fingerprint: dict[str, Any]) -> None:
        stored = self.meta("tokenizer")
        if stored is not None and json.loads(stored) != fingerprint and self.has_data():
            old = json.loads(stored)
            diffs = ", ".join(
                f"{k}: {old.get(k)!r} in the database, {v!r} now"
                for k, v in fingerprint.items()
                if old.get(k) != v
            )
            raise StoreError(
                f"{self.path} was counted with other tokenizer settings ({diffs}); "
                "mixing them would corrupt the totals. Use a new database, or the "
                "settings it was made with."
            )
        with self._immediate():
            self._set_meta("tokenizer", json.dumps(fingerprint, sort_keys=True))

    def has_data(self) -> bool:
        return self.conn.execute("SELECT EXISTS (SELECT 1 FROM files)").fetchone()[0] == 1

    def meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: Any) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _immediate(self) -> Any:
        return _Transaction(self.conn)

    # -- the writer --------------------------------------------------------

    def merge(self, merge: Merge) -> None:
        """Commit the counts and ledger rows of `merge` in one transaction.

        Any error rolls back all of it.
        """
        counts, rows = merge.counts, merge.rows
        now = datetime.now(UTC).isoformat(timespec="seconds")
        failpoints.hit("merge-begin")
        with self._immediate():
            self._upsert(counts)
            failpoints.hit("merge-after-upsert")
            self.conn.executemany(
                "INSERT INTO files (path, dev, inode, size, mtime_ns, fingerprint, tokens, "
                "status, reason, encoding, counted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(path_value(r.path), *r.file, *r[2:], now) for r in rows],
            )
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES ('total_tokens', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
                (sum(counts.values()),),
            )
            self._set_meta("last_merge", now)
            failpoints.hit("merge-before-commit")
        failpoints.hit("merge-after-commit")

    def _upsert(self, counts: dict[str, int]) -> None:
        """Add `counts` to the totals, in token order.

        In token order because sequential b-tree access is about twice as fast
        as random once the table outgrows the cache. Passed as one JSON object
        that SQLite unpacks and sorts itself (json_each): ~30 % faster than a
        bound row per token. SQLite's JSON cuts a string at U+0000, so the
        rare batch with that character in a token takes the row-by-row path.
        """
        payload = json.dumps(counts, ensure_ascii=False)
        if "\\u0000" not in payload:
            self.conn.execute(
                "INSERT INTO counts (token, count) SELECT key, value FROM json_each(?) "
                f"WHERE true ORDER BY key {ADD_COUNT}",  # WHERE: see SQLite's upsert docs
                (payload,),
            )
            return
        tokens = sorted(counts)
        self.conn.executemany(
            f"INSERT INTO counts (token, count) VALUES (?, ?) {ADD_COUNT}",
            zip(tokens, map(counts.__getitem__, tokens), strict=True),
        )

    def ledger(self) -> Iterator[tuple[str, FileId, str]]:
        """(path, identity, status) of every ledger row, oldest first: what is known."""
        rows = self.conn.execute(
            "SELECT path, status, dev, inode, size, mtime_ns, fingerprint FROM files ORDER BY id"
        )
        make = FileId._make  # from the row's slice: start-up reads every row
        for row in rows:
            path = row[0]
            yield path if type(path) is str else path_from_value(path), make(row[2:]), row[1]

    def counted_as(self, file: FileId) -> str | None:
        """The path under which these very bytes were counted, if they were."""
        row = self.conn.execute(
            "SELECT path FROM files WHERE status = ? AND dev = ? AND inode = ? AND size = ? "
            "AND mtime_ns = ? AND fingerprint = ?",
            (COUNTED, *file),
        ).fetchone()
        return None if row is None else path_from_value(row[0])

    # -- queries -----------------------------------------------------------

    def total_tokens(self) -> int:
        return int(self.meta("total_tokens") or 0)

    def top(self, n: int) -> list[dict[str, Any]]:
        """The n most frequent tokens, ties by token.

        From the partial index when at least n tokens are in it (then no
        token outside it can rank in the top n); else a full scan, which is
        only needed while the table is small.
        """
        total = self.total_tokens()
        order = "ORDER BY count DESC, token LIMIT ?"
        rows = self.conn.execute(
            f"SELECT token, count FROM counts WHERE count >= {TOP_MIN} {order}", (n,)
        ).fetchall()
        if len(rows) < n:
            rows = self.conn.execute(f"SELECT token, count FROM counts {order}", (n,)).fetchall()
        return [
            {"rank": i, "token": token, "count": count, "share": count / total}
            for i, (token, count) in enumerate(rows, start=1)
        ]

    def lookup(self, words: Iterable[str]) -> list[dict[str, Any]]:
        total = self.total_tokens()
        out = []
        for word in words:
            row = self.conn.execute("SELECT count FROM counts WHERE token = ?", (word,))
            count = (row.fetchone() or (0,))[0]
            out.append({"token": word, "count": count, "share": count / total if total else 0.0})
        return out

    def stats(self) -> dict[str, Any]:
        by_status = dict(
            self.conn.execute("SELECT status, COUNT(*) FROM files GROUP BY status").fetchall()
        )
        size = sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )
        return {
            "files_counted": by_status.get(COUNTED, 0),
            "files_not_counted": sum(n for s, n in by_status.items() if s != COUNTED),
            "total_tokens": self.total_tokens(),
            "distinct_tokens": self.conn.execute("SELECT COUNT(*) FROM counts").fetchone()[0],
            "database_bytes": size,
            "last_merge": self.meta("last_merge"),
        }

    def files(self, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        where, args = ("status = ?", [status]) if status else (None, [])
        rows = self.db["files"].rows_where(where, args, order_by="id", limit=limit)
        return [row | {"path": display_path(row["path"])} for row in rows]


def path_value(path: str) -> str | bytes:
    """How a path is stored: as TEXT, or as a BLOB of its bytes if they are not UTF-8.

    File names are bytes on Linux; Python carries undecodable ones as lone
    surrogates, which SQLite's TEXT cannot hold. A BLOB never equals a TEXT,
    so the two forms cannot collide in the primary key.
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def path_from_value(value: str | bytes) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value


def display_path(value: str | bytes) -> str:
    """A stored path for people: undecodable bytes shown as \\xNN escapes."""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


class _Transaction:
    """`BEGIN IMMEDIATE` … `COMMIT`, or `ROLLBACK` on any error.

    IMMEDIATE takes the write lock up front, so a busy database makes us wait
    (busy_timeout) at BEGIN instead of failing half-way through.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
                return
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

