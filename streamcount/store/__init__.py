"""The store seam: what the daemon, `ingest` and the query commands ask of a database.

Two backends implement it: SQLite (store/sqlite.py, the embedded default,
one host) and PostgreSQL (store/postgres.py, many hosts into one set of
totals). What a merge means (what is added, what is recorded, what is
refused, in which order) is written once, here, in `Store`; a backend holds
only its SQL and its connection handling. The pipeline never asks which
backend it has.

The totals and the ledger of files counted live in one database, and every
merge writes both in a single transaction: a file is in the ledger if and
only if its tokens are in the totals. That is what makes counting
exactly-once across crashes and restarts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from .. import failpoints
from ..config import TokenizerSettings, is_url
from ..engines import token_identity
from ..identity import FileId
from ..timebuckets import BucketSettings, bucket_start, now_utc
from ..work import COUNTED

TOP_MIN = 1000  # tokens counted at least this often are in the counts_top index
COPY_CHUNK = 50_000  # rows read and written at a time by `copy`, all in one transaction
LEDGER_COLUMNS = ("path", "size", "tokens", "status", "reason", "encoding", "counted_at", "host")


class StoreError(Exception):
    """The database cannot be used as asked; the message says why."""


class MergeRefused(StoreError):
    """The merge was refused for what it holds (the same bytes counted twice, a
    value the database cannot store): retrying it as it is cannot help."""


class StoreUnavailable(StoreError):
    """The database could not take the merge now (unreachable, full, busy too
    long); nothing of it was committed, and it may succeed later."""


class LedgerRow(NamedTuple):
    path: str
    file: FileId  # the identity of the bytes counted (or found)
    tokens: int
    status: str
    reason: str
    encoding: str
    bucket: int | None = None  # the start of the time bucket its counts went to (forget needs it)

    @property
    def size(self) -> int:
        return self.file.size


class Advance(NamedTuple):
    """A followed file's offset moving on (see follow.py), committed with the counts
    of the bytes it passes. `before` is where the ledger must stand for the range to
    be merged ((generation, offset); generation -1: no row yet), so a range is merged
    at most once and never out of order."""

    path: str
    dev: int
    inode: int
    before: tuple[int, int]
    generation: int  # bumped when the file is counted again from its start
    offset: int  # the first byte not yet counted
    head_len: int  # the head fingerprint covers this many first bytes
    head: str


@dataclass(slots=True)
class Merge:
    """What the writer commits in one transaction: summed counts and ledger rows.

    Results are added as they arrive, so waiting ones cost the vocabulary
    they share once, not once each.
    """

    counts: dict[str, int] = field(default_factory=dict)  # filed in the bucket of the merge
    rows: list[LedgerRow] = field(default_factory=list)
    by_bucket: dict[int, dict[str, int]] = field(default_factory=dict)  # time = "mtime"
    advances: list[Advance] = field(default_factory=list)  # followed files (follow.py)
    # keep_file_counts: (ledger row, that file's own counts), stored with the row
    file_counts: list[tuple[LedgerRow, dict[str, int]]] = field(default_factory=list)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)  # recorded by its transaction
    tried: bool = False  # a try failed: did its COMMIT land before the failure?

    def add(
        self,
        counts: Mapping[str, int],
        rows: Iterable[LedgerRow],
        bucket: int | None = None,
        per_file: Iterable[dict[str, int]] | None = None,
    ) -> None:
        """Add a result; `bucket` (time = "mtime") files its counts in that bucket,
        None in the bucket the merge commits in. `per_file` (keep_file_counts):
        each row's own counts, kept with it."""
        rows = list(rows)
        if bucket is None:
            add_into(self.counts, counts)
        else:
            add_into(self.by_bucket.setdefault(bucket, {}), counts)
            rows = [r._replace(bucket=bucket) for r in rows]
        self.rows.extend(rows)
        if per_file is not None:
            self.file_counts.extend(
                (r, c) for r, c in zip(rows, per_file, strict=True) if r.status == COUNTED and c
            )

    def totals(self) -> dict[str, int]:
        """All the counts, whatever their bucket: what the totals get."""
        if not self.by_bucket:
            return self.counts
        out = dict(self.counts)
        for counts in self.by_bucket.values():
            add_into(out, counts)
        return out

    def buckets(self, current: int) -> dict[int, dict[str, int]]:
        """bucket start -> counts: `counts` in `current`, the rest where they were filed."""
        out = dict(self.by_bucket)
        if self.counts:
            here = out.get(current)
            out[current] = add_into(dict(here), self.counts) if here else self.counts
        return out

    def __bool__(self) -> bool:
        return bool(self.rows or self.counts or self.by_bucket or self.advances)


def row_bucket(row: LedgerRow, current: int | None) -> int | None:
    """The bucket a ledger row records: its own, or (counts, none of its own) `current`."""
    return current if row.bucket is None and row.tokens else row.bucket


def add_into(mine: dict[str, int], counts: Mapping[str, int]) -> dict[str, int]:
    """mine += counts, token by token; returns mine."""
    if not mine:
        mine.update(counts)  # in C
        return mine
    get = mine.get
    for token, n in counts.items():
        mine[token] = get(token, 0) + n
    return mine


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


def settings_difference(stored: str, fingerprint: dict[str, Any]) -> str | None:
    """How the settings a database was counted with differ from these, or None."""
    old = json.loads(stored)
    if old == fingerprint:
        return None

    def differs(key: str, now: Any) -> str:
        if key == "engine" and old.get(key) == "jieba-rs":  # see engines.token_identity
            return (
                "engine: counted by jieba-rs before it was made to give jieba's tokens, "
                "so its totals differ from both engines' now (count again into a new database)"
            )
        return f"{key}: {old.get(key)!r} in the database, {now!r} now"

    return ", ".join(differs(k, v) for k, v in fingerprint.items() if old.get(k) != v)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Store:
    """One connection to the database, as the writer or as a reader.

    The merge, the settings check and the query results are written here; the
    methods that raise NotImplementedError are what a backend provides.
    """

    location: str  # for people: a path, or a URL without its password
    host: str  # the host whose ledger this writer keeps
    buckets: BucketSettings = BucketSettings()  # the writer's [buckets]; set by open_store

    # -- opening (the backend is chosen by the `db` value; see open_store) ----

    @classmethod
    def open_writer(
        cls,
        db: Path | str,
        settings: TokenizerSettings,
        host_id: str = "",
        buckets: BucketSettings | None = None,
    ) -> Store:
        """The writer: locked (one per database, or per host id), migrated, settings checked."""
        return open_store(db, settings, host_id, buckets=buckets)

    @classmethod
    def open_reader(cls, db: Path | str) -> Store:
        """A reader of an existing streamcount database."""
        return open_store(db)

    def _start_writing(self, settings: TokenizerSettings | None) -> None:
        """Migrate, then refuse other tokenizer settings: the writer's first steps.

        Without settings the caller checks them (`copy_from` adopts the source's)."""
        self._migrate()
        if settings is None:
            return
        fingerprint = tokenizer_fingerprint(settings)
        stored = self.meta("tokenizer")
        diffs = settings_difference(stored, fingerprint) if stored is not None else None
        if diffs and self.has_data():
            raise StoreError(
                f"{self.location} was counted with other tokenizer settings ({diffs}); "
                "mixing them would corrupt the totals. Use a new database, or the "
                "settings it was made with."
            )
        if diffs or stored is None:
            with self._transaction():
                self._set_meta("tokenizer", json.dumps(fingerprint, sort_keys=True))
        self._check_buckets()

    def _check_buckets(self) -> None:
        """Refuse other [buckets] period, time or timezone than the database's counts were
        filed with: the old buckets would mean one thing and the new ones another."""
        mine = self.buckets.fingerprint()
        stored = self.meta("buckets")
        old = json.loads(stored) if stored else None
        if old is not None and old != mine and (self.has_data() or self.total_tokens()):
            diffs = ", ".join(
                f"buckets.{k}: {old.get(k)!r} in the database, {v!r} now"
                for k, v in mine.items() if old.get(k) != v
            )  # fmt: skip
            raise StoreError(
                f"{self.location} filed its counts by time with other settings ({diffs}); "
                "use a new database, or the settings it was made with"
            )
        if old != mine:
            with self._transaction():
                self._set_meta("buckets", json.dumps(mine, sort_keys=True))

    # -- the writer --------------------------------------------------------

    def merge(self, merge: Merge) -> None:
        """Commit the counts and ledger rows of `merge` in one transaction.

        The ledger rows first (a refused row costs no lock on the totals),
        the additive upsert of the counts last, sorted by token, so the rows
        every writer touches (`的`) are locked only from there to the
        COMMIT just after, and concurrent writers take them in one order.
        Any error rolls back all of it: MergeRefused for what it holds,
        StoreUnavailable for the state of the database. A merge tried again
        after a failure is first looked for: if the connection died after
        the server committed it but before we heard so, it is not added twice.
        """
        rows = merge.rows
        if merge.tried:
            with self._transaction():
                if self._last_merge_id() == merge.id:
                    return
        merge.tried = True
        seconds = now_utc()
        now = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
        counts = merge.totals()
        b = self.buckets
        by_bucket: dict[int, dict[str, int]] = {}
        current = None  # the bucket of rows with counts and none of their own
        if b.enabled:
            current = bucket_start(seconds, b.period, b.timezone)
            by_bucket = merge.buckets(current)
        failpoints.hit("merge-begin")
        with self._transaction():
            self._insert_ledger(rows, itertools.repeat(now), current)
            if merge.file_counts:
                self._insert_file_counts(merge.file_counts)
            for advance in merge.advances:
                if not self._advance(advance, now):
                    raise MergeRefused(
                        f"{advance.path}: the ledger's offset is not where the range "
                        f"counted starts ({advance.before}): counted already"
                    )
            self._add_total(sum(counts.values()), now, merge.id)
            self._add_counts(counts)
            for bucket in sorted(by_bucket):  # after the totals: one lock order for every writer
                self._add_bucket(bucket, by_bucket[bucket])
            if b.enabled and b.keep_seconds:
                self._drop_buckets(bucket_start(seconds - b.keep_seconds, b.period, b.timezone))
            failpoints.hit("merge-after-upsert")
            failpoints.hit("merge-before-commit")
        failpoints.hit("merge-after-commit")
        # as when the connection dies between the server's COMMIT and its answer
        failpoints.fail("merge-answer-lost", (r.path for r in rows), StoreUnavailable)

    def subtract(
        self,
        counts: Mapping[str, int],
        rows: list[LedgerRow],
        by_bucket: Mapping[int, Mapping[str, int]] | None = None,
    ) -> None:
        """Take back what the counted files `rows` added: subtract `counts` from the
        totals, and `by_bucket` (bucket start -> counts, the rows' own buckets)
        from the time buckets, and mark the rows `forgotten`, in one transaction.

        Tokens that reach 0 are deleted. A bucket `keep` has dropped already is
        left alone (there is nothing of it to take back). A row that is no
        longer `counted` (as recorded: the same path and identity), or a count
        that would go below 0, raises MergeRefused and changes nothing.
        """
        now = utc_now()
        with self._transaction():
            self._mark_forgotten(rows, now)  # and drops their kept counts
            self._add_total(-sum(counts.values()), now, uuid.uuid4().hex)
            self._subtract_counts(dict(counts))
            for bucket in sorted(by_bucket or {}):  # after the totals, as merges lock them
                if self._has_bucket(bucket):
                    self._subtract_bucket(bucket, dict(by_bucket[bucket]))

    def copy_from(self, source: Store, add: bool = False) -> dict[str, int]:
        """Add `source`'s totals, its whole ledger (filed under this host) and its
        tokenizer settings to this database, in one transaction.

        A target that already holds counts is refused unless `add`, and then
        only if it was counted with the same settings; ledger rows of the same
        bytes already counted under this host are refused (MergeRefused).
        """
        settings = source.meta("tokenizer")
        copied = {"files": 0, "distinct_tokens": 0, "total_tokens": source.total_tokens()}
        with self._transaction():
            held = self.has_data() or self.distinct_tokens() > 0
            if held and not add:
                raise StoreError(
                    f"{self.location} already holds counts; give --add to add "
                    f"{source.location} to them"
                )
            mine = self.meta("tokenizer")
            diffs = settings_difference(mine, json.loads(settings)) if mine and settings else None
            if held and diffs:
                diffs = diffs.replace(" now", f" in {source.location}")
                raise StoreError(
                    f"{self.location} was counted with other tokenizer settings ({diffs}); "
                    "mixing them would corrupt the totals"
                )
            if settings is not None:
                self._set_meta("tokenizer", settings)
            for chunk in _chunks(source.ledger_rows()):
                self._insert_ledger([row for row, _ in chunk], [at for _, at in chunk])
                copied["files"] += len(chunk)
            self._add_total(copied["total_tokens"], source.last_merge() or utc_now(), "copy")
            for chunk in _chunks(source.counts()):
                self._add_counts(dict(chunk))
                copied["distinct_tokens"] += len(chunk)
            self._copy_buckets(source)
        return copied

    def _copy_buckets(self, source: Store) -> None:
        """The source's buckets, and the settings they were filed with, if it has any."""
        settings = source.meta("buckets")
        if settings is None:
            return
        self._set_meta("buckets", settings)
        for bucket, group in itertools.groupby(source.bucket_rows(None, 0, None), lambda r: r[0]):
            for chunk in _chunks(group):
                self._add_bucket(bucket, {token: n for _, token, n in chunk})

    # -- queries -----------------------------------------------------------

    def top(self, n: int) -> list[dict[str, Any]]:
        """The n most frequent tokens, ties by token (code point order).

        From the partial index when at least n tokens are in it (then no
        token outside it can rank in the top n); else a full scan, which is
        only needed while the table is small.
        """
        total = self.total_tokens()
        rows = self._top_rows(n, TOP_MIN)
        if len(rows) < n:
            rows = self._top_rows(n, None)
        return [
            {"rank": i, "token": token, "count": count, "share": count / total}
            for i, (token, count) in enumerate(rows, start=1)
        ]

    def lookup(self, words: Iterable[str]) -> list[dict[str, Any]]:
        """The count and share of each word (0 if never counted)."""
        total = self.total_tokens()
        out = []
        for word in words:
            count = self._count_of(word)
            out.append({"token": word, "count": count, "share": count / total if total else 0.0})
        return out

    def stats(self) -> dict[str, Any]:
        """Files counted and not, total and distinct tokens, size, last merge."""
        by_status = self._status_counts()
        return {
            "files_counted": by_status.get(COUNTED, 0),
            "files_not_counted": sum(n for s, n in by_status.items() if s != COUNTED),
            "total_tokens": self.total_tokens(),
            "distinct_tokens": self.distinct_tokens(),
            "database_bytes": self.size_bytes(),
            "last_merge": self.last_merge(),
        }

    def files(
        self, status: str | None = None, limit: int | None = None, host: str | None = None
    ) -> list[dict[str, Any]]:
        """The ledger for people, oldest first: LEDGER_COLUMNS of each row."""
        return [
            dict(zip(LEDGER_COLUMNS, row, strict=True))
            for row in self._ledger_rows(status, limit, host)
        ]

    # -- what each backend provides ---------------------------------------

    def close(self) -> None:
        """Close the connection; a writer also gives up its writer lock."""
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[None]:
        """One write transaction: COMMIT, or ROLLBACK and MergeRefused/StoreUnavailable."""
        raise NotImplementedError

    def _migrate(self) -> None:
        """Create or upgrade the schema; refuse one newer than this code knows."""
        raise NotImplementedError

    def meta(self, key: str) -> Any:
        """A value from the meta table (the tokenizer settings), or None."""
        raise NotImplementedError

    def _set_meta(self, key: str, value: Any) -> None:
        """Set a meta value, inside the caller's transaction."""
        raise NotImplementedError

    def has_data(self) -> bool:
        """Whether any file is in the ledger (of any host)."""
        raise NotImplementedError

    def _insert_ledger(
        self, rows: list[LedgerRow], times: Iterable[str], bucket: int | None = None
    ) -> None:
        """Add ledger rows (recorded at `times`) under this host; the same bytes
        counted twice raise. A row with tokens and no bucket of its own records
        `bucket` (the one its counts go to now)."""
        raise NotImplementedError

    def _add_total(self, tokens: int, now: str, merge_id: str) -> None:
        """Add to the total of tokens; record the time and id of this host's merge."""
        raise NotImplementedError

    def _last_merge_id(self) -> str | None:
        """The id of this host's last committed merge."""
        raise NotImplementedError

    def _add_counts(self, counts: dict[str, int]) -> None:
        """The additive upsert of `counts` into the totals, in token order."""
        raise NotImplementedError

    def _mark_forgotten(self, rows: list[LedgerRow], now: str) -> None:
        """Set status `forgotten` (and `now`) on these `counted` rows of this host's
        ledger; MergeRefused if one is not there as given."""
        raise NotImplementedError

    def _insert_file_counts(self, kept: list[tuple[LedgerRow, dict[str, int]]]) -> None:
        """Keep each counted row's own counts (keep_file_counts), keyed to its ledger
        row id (found by its identity, inserted by this transaction)."""
        raise NotImplementedError

    def file_counts(self, row: LedgerRow) -> dict[str, int]:
        """The counts kept for this host's `counted` row (as given); {} if none are kept."""
        raise NotImplementedError

    def _subtract_counts(self, counts: dict[str, int]) -> None:
        """Subtract `counts` from the totals, deleting the tokens that reach 0;
        MergeRefused if one would go below 0."""
        raise NotImplementedError

    def ledger(self) -> Iterator[tuple[str, FileId, str]]:
        """(path, identity, status) of this host's ledger rows, oldest first."""
        raise NotImplementedError

    def _advance(self, advance: Advance, now: str) -> bool:
        """Move a followed file's offset on if the ledger stands at `advance.before`
        (insert its row if before is (-1, 0)); False, changing nothing, if not."""
        raise NotImplementedError

    def follows(self) -> Iterator[Advance]:
        """This host's followed files as the ledger has them (before = the same)."""
        raise NotImplementedError

    def counted_as(self, file: FileId) -> str | None:
        """The path under which these very bytes were counted on this host, if they were."""
        raise NotImplementedError

    def ledger_rows(self) -> Iterator[tuple[LedgerRow, str]]:
        """Every ledger row, of every host, with when it was recorded; oldest first."""
        raise NotImplementedError

    def counts(self) -> Iterator[tuple[str, int]]:
        """Every (token, count) of the totals, in token order."""
        raise NotImplementedError

    def total_tokens(self) -> int:
        """All tokens counted, by every host."""
        raise NotImplementedError

    def last_merge(self) -> str | None:
        """When the last merge (of any host) was committed."""
        raise NotImplementedError

    def distinct_tokens(self) -> int:
        """How many different tokens the totals hold."""
        raise NotImplementedError

    def size_bytes(self) -> int:
        """The database's size on disk."""
        raise NotImplementedError

    def _top_rows(self, n: int, at_least: int | None) -> list[tuple[str, int]]:
        """(token, count) of the n largest counts >= at_least, ties by token."""
        raise NotImplementedError

    def _count_of(self, token: str) -> int:
        """The count of one token, 0 if none."""
        raise NotImplementedError

    def _status_counts(self) -> dict[str, int]:
        """status -> number of ledger rows."""
        raise NotImplementedError

    def _ledger_rows(
        self, status: str | None, limit: int | None, host: str | None
    ) -> list[tuple[Any, ...]]:
        """LEDGER_COLUMNS of the ledger's rows, oldest first, paths for people."""
        raise NotImplementedError

    def write_status(self, status: dict[str, Any]) -> None:
        """Publish what the daemon is doing, for `streamcount status`."""
        raise NotImplementedError

    # -- time buckets (see timebuckets.py and windows.py) -------------------

    def _add_bucket(self, bucket: int, counts: dict[str, int]) -> None:
        """The additive upsert of `counts` into one bucket, in token order, and of
        their sum into that bucket's total."""
        raise NotImplementedError

    def _drop_buckets(self, before: int) -> None:
        """Delete the buckets that start before `before` (`keep`); the totals stay."""
        raise NotImplementedError

    def _has_bucket(self, bucket: int) -> bool:
        """Whether the bucket starting at `bucket` is there (not dropped by `keep`)."""
        raise NotImplementedError

    def _subtract_bucket(self, bucket: int, counts: dict[str, int]) -> None:
        """Subtract `counts` from one bucket and its total, deleting the tokens
        that reach 0; MergeRefused if one would go below 0."""
        raise NotImplementedError

    def bucket_totals(self, first: int, end: int | None) -> list[tuple[int, int]]:
        """(bucket, tokens) of the buckets starting in [first, end), in time order."""
        raise NotImplementedError

    def window_counts(
        self, first: int, end: int | None, at_least: int = 1, limit: int | None = None
    ) -> list[tuple[str, int]]:
        """(token, summed count) over the buckets in [first, end), sums >= at_least,
        largest first (ties by token), at most `limit`."""
        raise NotImplementedError

    def counts_in(self, tokens: list[str], first: int, end: int | None) -> dict[str, int]:
        """token -> summed count over the buckets in [first, end) (absent: 0)."""
        raise NotImplementedError

    def bucket_rows(
        self, tokens: list[str] | None, first: int, end: int | None
    ) -> Iterator[tuple[int, str, int]]:
        """(bucket, token, count) in [first, end) (of `tokens`, or all), by bucket then token."""
        raise NotImplementedError


def open_store(
    db: Path | str,
    settings: TokenizerSettings | None = None,
    host_id: str = "",
    writer: bool | None = None,
    buckets: BucketSettings | None = None,
) -> Store:
    """The store for `db`: a path (SQLite) or a postgresql:// URL.

    With `settings`, the writer (locked, migrated, its tokenizer settings
    checked) keeping the ledger of `host_id` and filing counts by time as `buckets`
    says (a change of them refused, see _check_buckets); without, a reader, or with
    `writer=True` a writer whose caller checks the settings (`copy_from`).
    """
    writer = settings is not None if writer is None else writer
    buckets = buckets or BucketSettings()
    if isinstance(db, str) and is_url(db):
        from .postgres import PostgresStore

        return PostgresStore.connect(db, settings, host_id, writer, buckets)
    from .sqlite import SqliteStore

    return SqliteStore.connect(Path(db), settings, host_id, writer, buckets)


def copy_store(source: Path | str, target: Path | str, host_id: str, add: bool) -> dict[str, int]:
    """`streamcount copy`: the whole of `source` into `target`, its ledger under `host_id`."""
    reader = open_store(source)
    try:
        store = open_store(target, host_id=host_id, writer=True)
        try:
            return store.copy_from(reader, add)
        finally:
            store.close()
    finally:
        reader.close()


def _chunks(rows: Iterable[Any]) -> Iterator[list[Any]]:
    it = iter(rows)
    while chunk := list(itertools.islice(it, COPY_CHUNK)):
        yield chunk


def redact_location(db: Path | str) -> str:
    """`db` for people: a path, or a URL without its password."""
    if isinstance(db, str) and is_url(db):
        from .postgres import redact

        return redact(db)
    return str(db)


def writer_statuses(db: Path | str) -> list[dict[str, Any]]:
    """Per host: the pid of its live writer (None if none) and what its status says."""
    if isinstance(db, str) and is_url(db):
        from .postgres import PostgresStore

        return PostgresStore.statuses(db)
    from .sqlite import statuses

    return statuses(Path(db))
