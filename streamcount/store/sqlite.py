"""SQLite, the embedded default: its schema, its SQL and its connection.

One writer per database file: the writer holds `<db>.lock` (writerlock.py)
for its life, whatever its host_id, so its ledger is the whole ledger.
Each merge is one `BEGIN IMMEDIATE` transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..config import TokenizerSettings
from ..identity import FileId
from ..readonly import connect as readonly_connect
from ..statusfile import read_status, write_status
from ..timebuckets import BucketSettings
from ..work import COUNTED, FORGOTTEN
from ..writerlock import WriterLock, lock_holder
from . import (
    TOP_MIN,
    Advance,
    LedgerRow,
    MergeRefused,
    Store,
    StoreError,
    StoreUnavailable,
    row_bucket,
)

BUSY_TIMEOUT_MS = 30_000
WAL_LIMIT_BYTES = 64 * 1024 * 1024
ADD_COUNT = "ON CONFLICT(token) DO UPDATE SET count = count + excluded.count"  # the upsert
ADD_BUCKET = "ON CONFLICT(bucket, token) DO UPDATE SET count = count + excluded.count"
# A merge that fails with these is refused for what it holds, not for the
# state of the database: waiting and retrying cannot help.
DATA_ERRORS = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError)

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
    # The host_id of the writer that recorded each row, as PostgreSQL keeps
    # it ('' before). A SQLite file has one writer at a time, so its ledger
    # is every row, whatever the host; `copy` files '' under its own host.
    "ALTER TABLE files ADD COLUMN host TEXT NOT NULL DEFAULT ''",
    # Time buckets (timebuckets.py): counts per bucket start beside the totals,
    # written by the same merge; (token, bucket) for `trend`, the key for
    # windows. bucket_totals makes a window's share one small read. A ledger
    # row records the bucket its counts went to, so they can be taken out again.
    """
    CREATE TABLE buckets (
        bucket INTEGER NOT NULL, token TEXT NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (bucket, token)
    ) WITHOUT ROWID;
    CREATE INDEX buckets_token ON buckets(token, bucket);
    CREATE TABLE bucket_totals (bucket INTEGER PRIMARY KEY, tokens INTEGER NOT NULL);
    ALTER TABLE files ADD COLUMN bucket INTEGER;
    """,
    # Followed growing files (follow.py): one row per file (dev, inode), its
    # offset moved on in the transaction that adds the counts of the bytes passed.
    """
    CREATE TABLE follows (
        host TEXT NOT NULL,
        dev INTEGER NOT NULL,
        inode INTEGER NOT NULL,
        path TEXT NOT NULL,
        generation INTEGER NOT NULL,
        offset INTEGER NOT NULL,
        head_len INTEGER NOT NULL,
        head TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (host, dev, inode)
    )
    """,
    # keep_file_counts (forget.py): each counted file's own counts, keyed to its
    # ledger row, written by the merge that writes the row; dropped when forgotten.
    """
    CREATE TABLE file_counts (
        file_id INTEGER NOT NULL, token TEXT NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (file_id, token)
    ) WITHOUT ROWID
    """,
)

# The id of a `counted` ledger row with this path and identity (it is unique).
COUNTED_ROW = (
    "SELECT id FROM files WHERE status = 'counted' AND fingerprint != '' AND path = ? "
    "AND dev = ? AND inode = ? AND size = ? AND mtime_ns = ? AND fingerprint = ?"
)


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


class SqliteStore(Store):
    """A SQLite file; `conn` is its sqlite3 connection (also for `streamcount sql`)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, host: str = "") -> None:
        self.path = path
        self.location = str(path)
        self.conn = conn
        self.host = host
        self.lock: WriterLock | None = None
        self._last_json: tuple[dict[str, int], str] | None = None  # see _add_bucket

    @classmethod
    def connect(
        cls,
        path: Path,
        settings: TokenizerSettings | None,
        host_id: str = "",
        writer: bool = True,
        buckets: BucketSettings | None = None,
    ) -> SqliteStore:
        if not writer:
            store = cls(_connect(path, readonly=True), path)
            try:
                tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
            except sqlite3.DatabaseError as exc:
                store.close()
                raise StoreError(f"cannot read {path}: {exc}") from exc
            if "counts" not in tables:
                store.close()
                raise StoreError(f"{path} is not a streamcount database")
            return store
        lock = WriterLock(path).acquire()
        try:
            store = cls(_connect(path, readonly=False), path, host_id)
        except BaseException:
            lock.release()
            raise
        store.lock = lock
        store.buckets = buckets or BucketSettings()
        try:
            store.conn.execute("PRAGMA journal_mode = WAL")
            store.conn.execute("PRAGMA synchronous = NORMAL")
            store.conn.execute("PRAGMA cache_size = -65536")  # 64 MiB
            # After a long reader has kept the WAL from being reset, shrink it back.
            store.conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
            store._start_writing(settings)
        except sqlite3.DatabaseError as exc:
            store.close()
            raise StoreError(f"cannot use database {path}: {exc}") from exc
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self.conn.close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def _transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    def _migrate(self) -> None:
        with _Transaction(self.conn, translate=False):
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

    # -- the writer --------------------------------------------------------

    def _insert_ledger(
        self, rows: list[LedgerRow], times: Iterable[str], bucket: int | None = None
    ) -> None:
        self.conn.executemany(
            "INSERT INTO files (path, dev, inode, size, mtime_ns, fingerprint, tokens, "
            "status, reason, encoding, counted_at, host, bucket) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (path_value(r.path), *r.file, *r[2:6], at, self.host, row_bucket(r, bucket))
                for r, at in zip(rows, times, strict=False)  # times: maybe one, repeated
            ],
        )

    def _add_total(self, tokens: int, now: str, merge_id: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('total_tokens', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            (tokens,),
        )
        self._set_meta("last_merge", now)
        self._set_meta("last_merge_id", merge_id)

    def _last_merge_id(self) -> str | None:
        return self.meta("last_merge_id")

    def _add_counts(self, counts: dict[str, int]) -> None:
        """Add `counts` to the totals, in token order.

        In token order because sequential b-tree access is about twice as fast
        as random once the table outgrows the cache. Passed as one JSON object
        that SQLite unpacks and sorts itself (json_each): ~30 % faster than a
        bound row per token. SQLite's JSON cuts a string at U+0000, so the
        rare batch with that character in a token takes the row-by-row path.
        """
        payload = json.dumps(counts, ensure_ascii=False)
        if self.buckets.enabled:  # the current bucket gets these very counts, most often
            self._last_json = (counts, payload)
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

    def _mark_forgotten(self, rows: list[LedgerRow], now: str) -> None:
        for r in rows:
            changed = self.conn.execute(
                "UPDATE files SET status = ?, counted_at = ? WHERE status = ? AND path = ? "
                "AND dev = ? AND inode = ? AND size = ? AND mtime_ns = ? AND fingerprint = ? "
                "RETURNING id",
                (FORGOTTEN, now, COUNTED, path_value(r.path), *r.file),
            ).fetchall()
            if len(changed) != 1:
                raise MergeRefused(f"{r.path} is not in the ledger as counted (any more)")
            self.conn.execute("DELETE FROM file_counts WHERE file_id = ?", changed[0])

    def _insert_file_counts(self, kept: list[tuple[LedgerRow, dict[str, int]]]) -> None:
        for r, counts in kept:
            found = self.conn.execute(COUNTED_ROW, (path_value(r.path), *r.file)).fetchone()
            if found is None:  # no fingerprint: counted by an old version, not kept
                continue
            self.conn.executemany(
                "INSERT INTO file_counts (file_id, token, count) VALUES (?, ?, ?)",
                [(found[0], t, k) for t, k in counts.items()],
            )

    def file_counts(self, row: LedgerRow) -> dict[str, int]:
        return dict(
            self.conn.execute(
                f"SELECT token, count FROM file_counts WHERE file_id = ({COUNTED_ROW})",
                (path_value(row.path), *row.file),
            )
        )

    def _subtract_counts(self, counts: dict[str, int]) -> None:
        self._add_counts({token: -k for token, k in counts.items()})
        # A scan of the totals: forget is rare, and this also catches a token
        # the file's count held that the totals did not (inserted negative).
        negative = self.conn.execute("SELECT token FROM counts WHERE count < 0 LIMIT 1").fetchone()
        if negative is not None:
            raise MergeRefused(f"the count of {negative[0]!r} would go below 0")
        self.conn.executemany(
            "DELETE FROM counts WHERE token = ? AND count = 0", ((t,) for t in sorted(counts))
        )

    def ledger(self) -> Iterator[tuple[str, FileId, str]]:
        rows = self.conn.execute(
            "SELECT path, status, dev, inode, size, mtime_ns, fingerprint FROM files ORDER BY id"
        )
        make = FileId._make  # from the row's slice: start-up reads every row
        for row in rows:
            path = row[0]
            yield path if type(path) is str else path_from_value(path), make(row[2:]), row[1]

    def _advance(self, advance: Advance, now: str) -> bool:
        a = advance
        values = (path_value(a.path), a.generation, a.offset, a.head_len, a.head, now)
        if a.before[0] < 0:
            cur = self.conn.execute(
                "INSERT INTO follows (path, generation, offset, head_len, head, updated_at, "
                "host, dev, inode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (*values, self.host, a.dev, a.inode),
            )
        else:
            cur = self.conn.execute(
                "UPDATE follows SET path = ?, generation = ?, offset = ?, head_len = ?, "
                "head = ?, updated_at = ? WHERE host = ? AND dev = ? AND inode = ? "
                "AND generation = ? AND offset = ?",
                (*values, self.host, a.dev, a.inode, *a.before),
            )
        return cur.rowcount == 1

    def follows(self) -> Iterator[Advance]:
        rows = self.conn.execute(
            "SELECT path, dev, inode, generation, offset, head_len, head FROM follows "
            "WHERE host = ?",
            (self.host,),
        )
        for path, dev, inode, gen, offset, head_len, head in rows.fetchall():
            path = path_from_value(path)
            yield Advance(path, dev, inode, (gen, offset), gen, offset, head_len, head)

    def counted_as(self, file: FileId) -> str | None:
        row = self.conn.execute(
            "SELECT path FROM files WHERE status = ? AND dev = ? AND inode = ? AND size = ? "
            "AND mtime_ns = ? AND fingerprint = ?",
            (COUNTED, *file),
        ).fetchone()
        return None if row is None else path_from_value(row[0])

    def ledger_rows(self) -> Iterator[tuple[LedgerRow, str]]:
        rows = self.conn.execute(
            "SELECT path, dev, inode, size, mtime_ns, fingerprint, tokens, status, reason, "
            "encoding, bucket, counted_at FROM files ORDER BY id"
        )
        for r in rows:
            yield LedgerRow(path_from_value(r[0]), FileId._make(r[1:6]), *r[6:11]), r[11]

    def counts(self) -> Iterator[tuple[str, int]]:
        return iter(self.conn.execute("SELECT token, count FROM counts ORDER BY token"))

    def write_status(self, status: dict[str, Any]) -> None:
        write_status(self.path, status)

    # -- time buckets --------------------------------------------------------

    def _add_bucket(self, bucket: int, counts: dict[str, int]) -> None:
        # as _add_counts: one JSON object, sorted by SQLite; rare U+0000 row by row.
        # Encoded once when they are the counts the totals just got (one bucket).
        last, self._last_json = self._last_json, None
        payload = last[1] if last and last[0] is counts else json.dumps(counts, ensure_ascii=False)
        if "\\u0000" not in payload:
            self.conn.execute(
                "INSERT INTO buckets (bucket, token, count) SELECT ?, key, value "
                f"FROM json_each(?) WHERE true ORDER BY key {ADD_BUCKET}",
                (bucket, payload),
            )
        else:
            self.conn.executemany(
                f"INSERT INTO buckets (bucket, token, count) VALUES (?, ?, ?) {ADD_BUCKET}",
                [(bucket, t, counts[t]) for t in sorted(counts)],
            )
        self.conn.execute(
            "INSERT INTO bucket_totals (bucket, tokens) VALUES (?, ?) "
            "ON CONFLICT(bucket) DO UPDATE SET tokens = tokens + excluded.tokens",
            (bucket, sum(counts.values())),
        )

    def _drop_buckets(self, before: int) -> None:
        self.conn.execute("DELETE FROM buckets WHERE bucket < ?", (before,))
        self.conn.execute("DELETE FROM bucket_totals WHERE bucket < ?", (before,))

    def _has_bucket(self, bucket: int) -> bool:
        sql = "SELECT 1 FROM bucket_totals WHERE bucket = ?"
        return self.conn.execute(sql, (bucket,)).fetchone() is not None

    def _subtract_bucket(self, bucket: int, counts: dict[str, int]) -> None:
        self._add_bucket(bucket, {token: -k for token, k in counts.items()})
        negative = self.conn.execute(
            "SELECT token FROM buckets WHERE bucket = ? AND count < 0 LIMIT 1", (bucket,)
        ).fetchone()
        if negative is not None:
            raise MergeRefused(f"the count of {negative[0]!r} in its bucket would go below 0")
        self.conn.executemany(
            "DELETE FROM buckets WHERE bucket = ? AND token = ? AND count = 0",
            ((bucket, t) for t in sorted(counts)),
        )

    def bucket_totals(self, first: int, end: int | None) -> list[tuple[int, int]]:
        return self.conn.execute(
            "SELECT bucket, tokens FROM bucket_totals WHERE bucket >= ? AND bucket < ? "
            "ORDER BY bucket",
            (first, _end(end)),
        ).fetchall()

    def window_counts(
        self, first: int, end: int | None, at_least: int = 1, limit: int | None = None
    ) -> list[tuple[str, int]]:
        return self.conn.execute(
            "SELECT token, SUM(count) AS n FROM buckets WHERE bucket >= ? AND bucket < ? "
            "GROUP BY token HAVING n >= ? ORDER BY n DESC, token LIMIT ?",
            (first, _end(end), at_least, -1 if limit is None else limit),
        ).fetchall()

    def counts_in(self, tokens: list[str], first: int, end: int | None) -> dict[str, int]:
        return dict(
            self.conn.execute(
                "SELECT token, SUM(count) FROM buckets WHERE token IN "
                "(SELECT value FROM json_each(?)) AND bucket >= ? AND bucket < ? GROUP BY token",
                (json.dumps(tokens), first, _end(end)),
            )
        )

    def bucket_rows(
        self, tokens: list[str] | None, first: int, end: int | None
    ) -> Iterator[tuple[int, str, int]]:
        if tokens is None:
            return iter(self.conn.execute(
                "SELECT bucket, token, count FROM buckets WHERE bucket >= ? AND bucket < ? "
                "ORDER BY bucket, token",
                (first, _end(end)),
            ))  # fmt: skip
        return iter(self.conn.execute(
            "SELECT bucket, token, count FROM buckets WHERE token IN "
            "(SELECT value FROM json_each(?)) AND bucket >= ? AND bucket < ? "
            "ORDER BY bucket, token",
            (json.dumps(tokens), first, _end(end)),
        ))  # fmt: skip

    # -- queries -----------------------------------------------------------

    def total_tokens(self) -> int:
        return int(self.meta("total_tokens") or 0)

    def last_merge(self) -> str | None:
        return self.meta("last_merge")

    def distinct_tokens(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM counts").fetchone()[0]

    def size_bytes(self) -> int:
        return sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )

    def _top_rows(self, n: int, at_least: int | None) -> list[tuple[str, int]]:
        where = f"WHERE count >= {int(at_least)}" if at_least else ""
        return self.conn.execute(
            f"SELECT token, count FROM counts {where} ORDER BY count DESC, token LIMIT ?", (n,)
        ).fetchall()

    def _count_of(self, token: str) -> int:
        row = self.conn.execute("SELECT count FROM counts WHERE token = ?", (token,)).fetchone()
        return 0 if row is None else row[0]

    def _status_counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT status, COUNT(*) FROM files GROUP BY status"))

    def _ledger_rows(
        self, status: str | None, limit: int | None, host: str | None
    ) -> list[tuple[Any, ...]]:
        where = [(c, v) for c, v in (("status", status), ("host", host)) if v is not None]
        sql = "SELECT path, size, tokens, status, reason, encoding, counted_at, host FROM files"
        if where:
            sql += " WHERE " + " AND ".join(f"{c} = ?" for c, _ in where)
        sql += " ORDER BY id" + (" LIMIT ?" if limit is not None else "")
        args = [v for _, v in where] + ([limit] if limit is not None else [])
        return [(display_path(r[0]), *r[1:]) for r in self.conn.execute(sql, args)]


def _end(end: int | None) -> int:
    return (1 << 62) if end is None else end


def statuses(path: Path) -> list[dict[str, Any]]:
    """The one writer a SQLite file can have: its pid (from the lock) and status file."""
    info = read_status(path) or {}
    return [{"host": info.get("host", ""), **info, "writer_pid": lock_holder(path)}]


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
    (busy_timeout) at BEGIN instead of failing half-way through. sqlite3's
    errors leave as the seam's: MergeRefused or StoreUnavailable.
    """

    def __init__(self, conn: sqlite3.Connection, translate: bool = True) -> None:
        self.conn = conn
        self.translate = translate

    def __enter__(self) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            if not self.translate:
                raise
            raise _translated(exc) from exc

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self._end(commit=exc_type is None)
        except sqlite3.Error as error:  # the COMMIT (or the ROLLBACK) failed
            if not self.translate:
                raise
            raise _translated(error) from error
        if self.translate and isinstance(exc, sqlite3.Error):
            raise _translated(exc) from exc

    def _end(self, commit: bool) -> None:
        if commit:
            try:
                self.conn.execute("COMMIT")
                return
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


def _translated(exc: sqlite3.Error) -> StoreError:
    kind = MergeRefused if isinstance(exc, DATA_ERRORS) else StoreUnavailable
    return kind(f"{type(exc).__name__}: {exc}")
