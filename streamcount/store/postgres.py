"""PostgreSQL: many hosts' daemons adding to one set of totals.

Each host's daemon keeps its own ledger (rows keyed by `host`, its
host_id) and adds to the shared totals; a file is in its host's ledger iff
its tokens are in the totals, because both are written by one transaction.
One writer per host_id: a session advisory lock, which the server drops
with the session, so a SIGKILLed daemon never leaves it behind.

Hot tokens (`的` is in every batch of every host) are updated by short
sorted transactions: the merge inserts its ledger rows first and upserts
the counts last, sorted by token, and commits at once, so a row of the
totals is locked only from the upsert to the COMMIT, and every writer
locks rows in the same order (no deadlock). The connection is re-made when
the server went away; what a failed merge held stays with the pipeline,
which retries it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..config import TokenizerSettings
from ..identity import FileId
from ..timebuckets import BucketSettings
from ..work import COUNTED, FORGOTTEN
from ..writerlock import LockError
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

try:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict
except ImportError:  # an optional extra
    psycopg = None

EXTRA = "streamcount[postgres]"
CONNECT_SECONDS = 10
RECONNECT_SECONDS = 5  # an idle daemon tries the server again this often (write_status)
SCHEMA_LOCK = 0x5C0_0000_0001  # a transaction-level advisory lock: one migration at a time
UPSERT = (
    "INSERT INTO counts (token, count) SELECT * FROM unnest(%s::text[], %s::bigint[]) "
    "ON CONFLICT (token) DO UPDATE SET count = counts.count + EXCLUDED.count"
)
ADD_BUCKET = (
    "INSERT INTO buckets (bucket, token, count) "
    "SELECT %s, * FROM unnest(%s::text[], %s::bigint[]) "
    "ON CONFLICT (bucket, token) DO UPDATE SET count = buckets.count + EXCLUDED.count"
)

# Each entry brings the schema from version i to i + 1 (meta.schema_version).
# Tokens sort by code point (COLLATE "C"), as SQLite's do, whatever the
# database's locale: `top` breaks ties the same way on both backends.
MIGRATIONS = (
    f"""
    CREATE TABLE counts (token text COLLATE "C" PRIMARY KEY, count bigint NOT NULL);
    CREATE INDEX counts_top ON counts (count DESC, token) WHERE count >= {TOP_MIN};
    CREATE TABLE hosts (
        host text PRIMARY KEY,
        total_tokens bigint NOT NULL DEFAULT 0,
        last_merge text,
        last_merge_id text,
        status jsonb
    );
    CREATE TABLE files (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        host text NOT NULL,
        path text NOT NULL,
        raw_path bytea,
        dev bigint NOT NULL,
        inode bigint NOT NULL,
        size bigint NOT NULL,
        mtime_ns bigint NOT NULL,
        fingerprint text NOT NULL,
        tokens bigint NOT NULL,
        status text NOT NULL,
        reason text NOT NULL,
        encoding text NOT NULL,
        counted_at text NOT NULL
    );
    CREATE INDEX files_host ON files (host, id);
    CREATE INDEX files_status ON files (status);
    CREATE UNIQUE INDEX files_counted_once
        ON files (host, dev, inode, size, mtime_ns, fingerprint)
        WHERE status = 'counted' AND fingerprint <> '';
    """,
    # Time buckets, as in store/sqlite.py: counts per bucket start (Unix
    # seconds) beside the totals, their sums, and each ledger row's bucket.
    """
    CREATE TABLE buckets (
        bucket bigint NOT NULL, token text COLLATE "C" NOT NULL, count bigint NOT NULL,
        PRIMARY KEY (bucket, token)
    );
    CREATE INDEX buckets_token ON buckets (token, bucket);
    CREATE TABLE bucket_totals (bucket bigint PRIMARY KEY, tokens bigint NOT NULL);
    ALTER TABLE files ADD COLUMN bucket bigint;
    """,
    # Followed growing files (follow.py): as in store/sqlite.py.
    """
    CREATE TABLE follows (
        host text NOT NULL,
        dev bigint NOT NULL,
        inode bigint NOT NULL,
        path text NOT NULL,
        raw_path bytea,
        generation bigint NOT NULL,
        "offset" bigint NOT NULL,
        head_len bigint NOT NULL,
        head text NOT NULL,
        updated_at text NOT NULL,
        PRIMARY KEY (host, dev, inode)
    );
    """,
    # keep_file_counts: as in store/sqlite.py.
    """
    CREATE TABLE file_counts (
        file_id bigint NOT NULL, token text COLLATE "C" NOT NULL, count bigint NOT NULL,
        PRIMARY KEY (file_id, token)
    );
    """,
)

# The id of this host's `counted` ledger row with this path and identity (unique).
COUNTED_ROW = (
    "SELECT id FROM files WHERE host = %s AND status = 'counted' AND fingerprint <> '' "
    "AND path = %s AND raw_path IS NOT DISTINCT FROM %s::bytea AND dev = %s AND inode = %s "
    "AND size = %s AND mtime_ns = %s AND fingerprint = %s"
)


def redact(url: str) -> str:
    """The URL for people: any password replaced by ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, where = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{where}"
    query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def lock_key(host: str) -> int:
    """The advisory lock that makes one writer per host_id: a signed 64-bit hash."""
    digest = hashlib.blake2b(f"streamcount writer {host}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _require_psycopg() -> None:
    if psycopg is None:
        raise StoreError(
            f"a postgresql:// database needs psycopg: pip install '{EXTRA}'"
        )


class PostgresStore(Store):
    """A PostgreSQL database; `conn` is its psycopg connection (autocommit, so
    every transaction is explicit)."""

    def __init__(self, url: str, host: str, writer: bool) -> None:
        self.url = url
        self.location = redact(url)
        self.host = host
        self.writer = writer
        self._password = _password(url)
        self._reconnect_at = 0.0
        self.conn = self._connect()

    @classmethod
    def connect(
        cls,
        url: str,
        settings: TokenizerSettings | None,
        host_id: str = "",
        writer: bool = True,
        buckets: BucketSettings | None = None,
    ) -> PostgresStore:
        _require_psycopg()
        store = cls(url, host_id, writer)
        store.buckets = buckets or BucketSettings()
        try:
            if not writer:
                if not store._has_schema():
                    raise StoreError(f"{store.location} is not a streamcount database")
            else:
                store._lock_host()
                store._start_writing(settings)
        except BaseException:
            store.close()
            raise
        return store

    def _connect(self) -> psycopg.Connection[Any]:
        name = f"streamcount {'writer' if self.writer else 'reader'} {self.host} pid {os.getpid()}"
        try:
            return psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=CONNECT_SECONDS,
                application_name=name[:63],
            )
        except psycopg.Error as exc:
            reason = self._clean(exc)
            raise StoreUnavailable(f"cannot connect to {self.location}: {reason}") from exc

    def _clean(self, exc: BaseException) -> str:
        """An error's text with no password in it, on one line."""
        text = " ".join(str(exc).split())
        return text.replace(self._password, "***") if self._password else text

    def _lock_host(self) -> None:
        """Take this host_id's advisory lock, or refuse, naming who holds it."""
        got = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(self.host),))
        if got.fetchone()[0]:
            return
        holder = self.holder() or "another session"
        raise LockError(
            f"host_id {self.host!r} is already being written to {self.location} by "
            f"another streamcount process ({holder}); stop it first, or give this one "
            "another host_id"
        )

    def holder(self, host: str | None = None) -> str | None:
        """The application name of the session holding `host`'s writer lock, if any."""
        key = lock_key(self.host if host is None else host)
        row = self.conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.classid::bigint = %s AND l.objid::bigint = %s",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        ).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        self.conn.close()  # the session ends: the server drops its advisory lock

    def _reconnect(self) -> None:
        """A new session after the server went away: the writer takes its lock again."""
        self.conn.close()
        self.conn = self._connect()
        if self.writer:
            try:
                self._lock_host()
            except (LockError, psycopg.Error) as exc:
                self.conn.close()
                raise StoreUnavailable(self._clean(exc)) from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        if self.conn.closed or self.conn.broken:
            self._reconnect()
        try:
            with self.conn.transaction():
                yield
        except (psycopg.IntegrityError, psycopg.DataError) as exc:
            raise MergeRefused(f"{type(exc).__name__}: {self._clean(exc)}") from exc
        except psycopg.Error as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {self._clean(exc)}") from exc

    def _has_schema(self) -> bool:
        return self.conn.execute("SELECT to_regclass('counts') IS NOT NULL").fetchone()[0]

    def _migrate(self) -> None:
        with self._transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            self.conn.execute("CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text)")
            version = int(self.meta("schema_version") or 0)
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"{self.location} has schema version {version}; this streamcount knows "
                    f"{len(MIGRATIONS)} at most (upgrade streamcount)"
                )
            for i in range(version, len(MIGRATIONS)):
                self.conn.execute(MIGRATIONS[i])
            self._set_meta("schema_version", str(len(MIGRATIONS)))

    def has_data(self) -> bool:
        return self.conn.execute("SELECT EXISTS (SELECT 1 FROM files)").fetchone()[0]

    def meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: Any) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (key, value),
        )

    # -- the writer --------------------------------------------------------

    def _insert_ledger(
        self, rows: list[LedgerRow], times: Iterable[str], bucket: int | None = None
    ) -> None:
        if not rows:
            return
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO files (host, path, raw_path, dev, inode, size, mtime_ns, "
                "fingerprint, tokens, status, reason, encoding, counted_at, bucket) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        self.host, *_path_values(r.path), *r.file, *r[2:6], at,
                        row_bucket(r, bucket),
                    )
                    for r, at in zip(rows, times, strict=False)  # times: maybe one, repeated
                ],
            )

    def _add_total(self, tokens: int, now: str, merge_id: str) -> None:
        self.conn.execute(
            "INSERT INTO hosts (host, total_tokens, last_merge, last_merge_id) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (host) DO UPDATE SET total_tokens = "
            "hosts.total_tokens + EXCLUDED.total_tokens, last_merge = EXCLUDED.last_merge, "
            "last_merge_id = EXCLUDED.last_merge_id",
            (self.host, tokens, now, merge_id),
        )

    def _last_merge_id(self) -> str | None:
        row = self.conn.execute(
            "SELECT last_merge_id FROM hosts WHERE host = %s", (self.host,)
        ).fetchone()
        return None if row is None else row[0]

    def _add_counts(self, counts: dict[str, int]) -> None:
        if counts:
            tokens = sorted(counts)  # code point order: every writer locks rows in one order
            self.conn.execute(UPSERT, (tokens, list(map(counts.__getitem__, tokens))))

    def _mark_forgotten(self, rows: list[LedgerRow], now: str) -> None:
        for r in rows:
            path, raw = _path_values(r.path)
            changed = self.conn.execute(
                "UPDATE files SET status = %s, counted_at = %s WHERE host = %s AND status = %s "
                "AND path = %s AND raw_path IS NOT DISTINCT FROM %s::bytea AND dev = %s "
                "AND inode = %s AND size = %s AND mtime_ns = %s AND fingerprint = %s "
                "RETURNING id",
                (FORGOTTEN, now, self.host, COUNTED, path, raw, *r.file),
            ).fetchall()
            if len(changed) != 1:
                raise MergeRefused(f"{r.path} is not in the ledger as counted (any more)")
            self.conn.execute("DELETE FROM file_counts WHERE file_id = %s", changed[0])

    def _insert_file_counts(self, kept: list[tuple[LedgerRow, dict[str, int]]]) -> None:
        for r, counts in kept:
            found = self.conn.execute(
                COUNTED_ROW, (self.host, *_path_values(r.path), *r.file)
            ).fetchone()
            if found is None:  # no fingerprint: counted by an old version, not kept
                continue
            tokens = list(counts)
            self.conn.execute(
                "INSERT INTO file_counts (file_id, token, count) "
                "SELECT %s, * FROM unnest(%s::text[], %s::bigint[])",
                (found[0], tokens, [counts[t] for t in tokens]),
            )

    def file_counts(self, row: LedgerRow) -> dict[str, int]:
        return dict(
            self.conn.execute(
                f"SELECT token, count FROM file_counts WHERE file_id = ({COUNTED_ROW})",
                (self.host, *_path_values(row.path), *row.file),
            ).fetchall()
        )

    def _subtract_counts(self, counts: dict[str, int]) -> None:
        if not counts:
            return
        tokens = sorted(counts)  # code point order, as merges lock them
        self.conn.execute(UPSERT, (tokens, [-counts[t] for t in tokens]))
        negative = self.conn.execute(
            "SELECT token FROM counts WHERE token = ANY(%s) AND count < 0 LIMIT 1", (tokens,)
        ).fetchone()
        if negative is not None:
            raise MergeRefused(f"the count of {negative[0]!r} would go below 0")
        self.conn.execute("DELETE FROM counts WHERE token = ANY(%s) AND count = 0", (tokens,))

    def ledger(self) -> Iterator[tuple[str, FileId, str]]:
        rows = self.conn.execute(
            "SELECT path, raw_path, status, dev, inode, size, mtime_ns, fingerprint "
            "FROM files WHERE host = %s ORDER BY id",
            (self.host,),
        )
        make = FileId._make
        for row in rows:
            raw = row[1]
            yield row[0] if raw is None else os.fsdecode(raw), make(row[3:]), row[2]

    def _advance(self, advance: Advance, now: str) -> bool:
        a = advance
        values = (*_path_values(a.path), a.generation, a.offset, a.head_len, a.head, now)
        if a.before[0] < 0:
            cur = self.conn.execute(
                'INSERT INTO follows (path, raw_path, generation, "offset", head_len, head, '
                "updated_at, host, dev, inode) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (*values, self.host, a.dev, a.inode),
            )
        else:
            cur = self.conn.execute(
                'UPDATE follows SET path = %s, raw_path = %s, generation = %s, "offset" = %s, '
                "head_len = %s, head = %s, updated_at = %s WHERE host = %s AND dev = %s "
                'AND inode = %s AND generation = %s AND "offset" = %s',
                (*values, self.host, a.dev, a.inode, *a.before),
            )
        return cur.rowcount == 1

    def follows(self) -> Iterator[Advance]:
        rows = self.conn.execute(
            'SELECT path, raw_path, dev, inode, generation, "offset", head_len, head '
            "FROM follows WHERE host = %s",
            (self.host,),
        ).fetchall()
        for path, raw, dev, inode, gen, offset, head_len, head in rows:
            path = path if raw is None else os.fsdecode(raw)
            yield Advance(path, dev, inode, (gen, offset), gen, offset, head_len, head)

    def counted_as(self, file: FileId) -> str | None:
        row = self.conn.execute(
            "SELECT path, raw_path FROM files WHERE host = %s AND status = %s AND dev = %s "
            "AND inode = %s AND size = %s AND mtime_ns = %s AND fingerprint = %s",
            (self.host, COUNTED, *file),
        ).fetchone()
        if row is None:
            return None
        return row[0] if row[1] is None else os.fsdecode(row[1])

    def ledger_rows(self) -> Iterator[tuple[LedgerRow, str]]:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT path, raw_path, dev, inode, size, mtime_ns, fingerprint, tokens, "
                "status, reason, encoding, bucket, counted_at FROM files ORDER BY id"
            )
            for r in cur:
                path = r[0] if r[1] is None else os.fsdecode(r[1])
                yield LedgerRow(path, FileId._make(r[2:7]), *r[7:12]), r[12]

    def counts(self) -> Iterator[tuple[str, int]]:
        with self.conn.cursor() as cur:
            yield from cur.execute("SELECT token, count FROM counts ORDER BY token")

    # -- time buckets --------------------------------------------------------

    def _add_bucket(self, bucket: int, counts: dict[str, int]) -> None:
        if not counts:
            return
        tokens = sorted(counts)  # code point order: every writer locks rows in one order
        self.conn.execute(
            ADD_BUCKET, (bucket, tokens, list(map(counts.__getitem__, tokens)))
        )
        self.conn.execute(
            "INSERT INTO bucket_totals (bucket, tokens) VALUES (%s, %s) ON CONFLICT (bucket) "
            "DO UPDATE SET tokens = bucket_totals.tokens + EXCLUDED.tokens",
            (bucket, sum(counts.values())),
        )

    def _drop_buckets(self, before: int) -> None:
        self.conn.execute("DELETE FROM buckets WHERE bucket < %s", (before,))
        self.conn.execute("DELETE FROM bucket_totals WHERE bucket < %s", (before,))

    def _has_bucket(self, bucket: int) -> bool:
        sql = "SELECT 1 FROM bucket_totals WHERE bucket = %s"
        return self.conn.execute(sql, (bucket,)).fetchone() is not None

    def _subtract_bucket(self, bucket: int, counts: dict[str, int]) -> None:
        if not counts:
            return
        tokens = sorted(counts)
        self._add_bucket(bucket, {token: -k for token, k in counts.items()})
        negative = self.conn.execute(
            "SELECT token FROM buckets WHERE bucket = %s AND token = ANY(%s) AND count < 0 "
            "LIMIT 1",
            (bucket, tokens),
        ).fetchone()
        if negative is not None:
            raise MergeRefused(f"the count of {negative[0]!r} in its bucket would go below 0")
        self.conn.execute(
            "DELETE FROM buckets WHERE bucket = %s AND token = ANY(%s) AND count = 0",
            (bucket, tokens),
        )

    def bucket_totals(self, first: int, end: int | None) -> list[tuple[int, int]]:
        return self.conn.execute(
            "SELECT bucket, tokens FROM bucket_totals WHERE bucket >= %s "
            "AND (%s::bigint IS NULL OR bucket < %s) ORDER BY bucket",
            (first, end, end),
        ).fetchall()

    def window_counts(
        self, first: int, end: int | None, at_least: int = 1, limit: int | None = None
    ) -> list[tuple[str, int]]:
        return self.conn.execute(
            "SELECT token, sum(count)::bigint AS n FROM buckets WHERE bucket >= %s "
            "AND (%s::bigint IS NULL OR bucket < %s) GROUP BY token HAVING sum(count) >= %s "
            "ORDER BY n DESC, token LIMIT %s",
            (first, end, end, at_least, limit),
        ).fetchall()

    def counts_in(self, tokens: list[str], first: int, end: int | None) -> dict[str, int]:
        return dict(
            self.conn.execute(
                "SELECT token, sum(count)::bigint FROM buckets WHERE token = ANY(%s) "
                "AND bucket >= %s AND (%s::bigint IS NULL OR bucket < %s) GROUP BY token",
                (tokens, first, end, end),
            )
        )

    def bucket_rows(
        self, tokens: list[str] | None, first: int, end: int | None
    ) -> Iterator[tuple[int, str, int]]:
        with self.conn.cursor() as cur:
            yield from cur.execute(
                "SELECT bucket, token, count FROM buckets WHERE "
                "(%s::text[] IS NULL OR token = ANY(%s)) AND bucket >= %s "
                "AND (%s::bigint IS NULL OR bucket < %s) ORDER BY bucket, token",
                (tokens, tokens, first, end, end),
            )

    def write_status(self, status: dict[str, Any]) -> None:
        """This host's row of `hosts`. While the server is away this tries to
        reconnect now and then, silently: the merges say when it is down and
        back, once each, and an idle daemon is connected again by this."""
        if self.conn.closed or self.conn.broken:
            if time.monotonic() < self._reconnect_at:
                return
            self._reconnect_at = time.monotonic() + RECONNECT_SECONDS
            try:
                self._reconnect()
            except StoreUnavailable:
                return
        try:
            self.conn.execute(
                "INSERT INTO hosts (host, status) VALUES (%s, %s) "
                "ON CONFLICT (host) DO UPDATE SET status = EXCLUDED.status",
                (self.host, json.dumps(status)),
            )
        except psycopg.Error as exc:
            raise StoreUnavailable(self._clean(exc)) from exc

    # -- queries -----------------------------------------------------------

    def total_tokens(self) -> int:
        return int(self.conn.execute("SELECT sum(total_tokens) FROM hosts").fetchone()[0] or 0)

    def last_merge(self) -> str | None:
        return self.conn.execute("SELECT max(last_merge) FROM hosts").fetchone()[0]

    def distinct_tokens(self) -> int:
        return self.conn.execute("SELECT count(*) FROM counts").fetchone()[0]

    def size_bytes(self) -> int:
        return self.conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]

    def _top_rows(self, n: int, at_least: int | None) -> list[tuple[str, int]]:
        where = "WHERE count >= %s" if at_least else "WHERE %s::bigint IS NULL"
        return self.conn.execute(
            f"SELECT token, count FROM counts {where} ORDER BY count DESC, token LIMIT %s",
            (at_least, n),
        ).fetchall()

    def _count_of(self, token: str) -> int:
        row = self.conn.execute("SELECT count FROM counts WHERE token = %s", (token,)).fetchone()
        return 0 if row is None else row[0]

    def _status_counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT status, count(*) FROM files GROUP BY status"))

    def _ledger_rows(
        self, status: str | None, limit: int | None, host: str | None
    ) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            "SELECT path, size, tokens, status, reason, encoding, counted_at, host FROM files "
            "WHERE (%(status)s::text IS NULL OR status = %(status)s) "
            "AND (%(host)s::text IS NULL OR host = %(host)s) ORDER BY id LIMIT %(limit)s",
            {"status": status, "host": host, "limit": limit},
        ).fetchall()

    @classmethod
    def statuses(cls, url: str) -> list[dict[str, Any]]:
        """Each host's status (what its daemon last published) and the pid of its
        live writer: the one holding its advisory lock (see `_connect` for the name)."""
        store = cls.connect(url, None)
        try:
            rows = store.conn.execute(
                "SELECT host, last_merge, status FROM hosts ORDER BY host"
            ).fetchall()
            out = []
            for host, last_merge, status in rows:
                holder = store.holder(host) or ""
                pid = holder.rpartition(" pid ")[2]
                out.append({"host": host, "last_merge": last_merge, **(status or {}),
                            "writer_pid": int(pid) if pid.isdigit() else None})  # fmt: skip
            return out
        finally:
            store.close()


FETCH_ROWS = 1000  # rows a `sql` query holds on the client at a time
REFUSED = "refused: `streamcount sql` runs read-only queries only (SELECT)"
# What a query starts with, after comments, white space and parentheses.
_QUERY_START = re.compile(
    r"(?:\s+|--[^\n]*\n?|/\*.*?\*/|\()*(?:SELECT|WITH|VALUES|TABLE)\b", re.I | re.S
)


class QueryRefused(StoreError):
    """`query` refused the statement, or it failed or ran too long; nothing changed."""


def query(
    store: PostgresStore, sql: str, timeout: float = 10.0
) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    """`streamcount sql` on PostgreSQL: one statement, read-only, bounded in time.

    It runs in a READ ONLY transaction (writes and DDL are refused by the
    server) with a statement_timeout, as a prepared statement, which can
    only be one; the transaction is rolled back when the rows
    have been read. A role that can only SELECT (docs/scale-out.md) is the
    other half: what a function may do is the role's to allow.
    """
    if not _QUERY_START.match(sql):
        raise QueryRefused(REFUSED)
    conn = store.conn
    try:
        conn.execute("BEGIN READ ONLY")
        ms = max(1, round(timeout * 1000))
        conn.execute("SELECT set_config('statement_timeout', %s, true)", (str(ms),))
        # A server-side cursor: the client holds one batch of rows, never the
        # result; DECLARE takes one query, and only a query (no write, no DDL).
        cursor = conn.cursor(name="streamcount_sql")
        cursor.execute(sql)
        batch = cursor.fetchmany(FETCH_ROWS)
    except psycopg.Error as exc:
        _end(conn)
        raise QueryRefused(_explain(exc, timeout)) from exc
    columns = [d.name for d in cursor.description or ()]

    def rows() -> Iterator[tuple[Any, ...]]:
        nonlocal batch
        try:
            while batch:
                yield from batch
                batch = cursor.fetchmany(FETCH_ROWS)
        except psycopg.Error as exc:
            raise QueryRefused(_explain(exc, timeout)) from exc
        finally:
            _end(conn)

    return columns, rows()


def _end(conn: psycopg.Connection[Any]) -> None:
    if not conn.broken and conn.info.transaction_status != conn.info.transaction_status.IDLE:
        conn.execute("ROLLBACK")


def _explain(exc: psycopg.Error, timeout: float) -> str:
    # A write in a query, or a data-modifying WITH a cursor cannot hold: refused alike.
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction | psycopg.errors.FeatureNotSupported):
        return REFUSED
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return f"query stopped after {timeout:g}s (use --timeout to allow longer)"
    if "multiple commands" in str(exc):
        return "only one statement at a time"
    return " ".join(str(exc).split())


def _password(url: str) -> str | None:
    try:
        return conninfo_to_dict(url).get("password") or None
    except psycopg.Error:
        return None


def _path_values(path: str) -> tuple[str, bytes | None]:
    """A path as text, and its bytes too when they are not UTF-8 (PostgreSQL's
    text cannot hold them): the text then shows them as \\xNN escapes."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(path)
        return raw.decode("utf-8", "backslashreplace"), raw
    return path, None
