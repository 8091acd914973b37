"""`streamcount sql`'s rules and bounds, each query run in its real child process.

Every hostile query from issues 16 and 17 must end within its timeout plus
a second, with the child's peak RSS (from the kernel's accounting of that
child, os.wait4) under a stated bound, and the database folder unchanged.
"""

import hashlib
import sqlite3

import pytest

from streamcount.config import TokenizerSettings
from streamcount.identity import FileId
from streamcount.sqlchild import address_space, run_query
from streamcount.sqlquery import MIB, REFUSED, Bounds, QueryError
from streamcount.store import LedgerRow, Merge, Store
from streamcount.store.sqlite import MIGRATIONS
from streamcount.writerlock import WriterLock

from .helpers import doubling_ctes

MAXIMA = Bounds(timeout=300, memory_mb=2048, rows=1_000_000)
QUICK = Bounds(timeout=10, memory_mb=256, rows=10_000)


def make_db(folder):
    """A streamcount database, cleanly closed: WAL mode, no -wal or -shm left."""
    db = folder / "db.sqlite"
    writer = Store.open_writer(db, TokenizerSettings())
    row = LedgerRow("/a", FileId(1, 1, 1, 1, ""), 4, "counted", "", "")
    writer.merge(Merge({"北京": 3, "上海": 1}, [row]))
    writer.close()
    # the writer's lock file stays (writerlock.py); nothing else of the writer does
    assert sorted(p.name for p in folder.iterdir()) == ["db.sqlite", "db.sqlite.lock"]
    return db


@pytest.fixture
def db(tmp_path):
    return make_db(tmp_path)


def query(db, sql, bounds=QUICK):
    result = run_query(db, sql, bounds, MAXIMA)
    return result.columns, list(result.rows)


def snapshot(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_select(db):
    columns, rows = query(db, "SELECT token, count FROM counts ORDER BY count DESC")
    assert columns == ["token", "count"]
    assert rows == [("北京", 3), ("上海", 1)]


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("PRAGMA table_info(counts)", [(0, "token", "TEXT", 1, None, 1),
                                       (1, "count", "INTEGER", 1, None, 0)]),
        ("SELECT name FROM pragma_table_info('counts')", [("token",), ("count",)]),
        ("SELECT count(*) > 0 FROM pragma_index_list('files')", [(1,)]),
        ("SELECT count(*) > 10 FROM pragma_function_list", [(1,)]),
        ("SELECT * FROM pragma_user_version", [(len(MIGRATIONS),)]),
        ("PRAGMA user_version", [(len(MIGRATIONS),)]),
        ("SELECT count(*) FROM pragma_compile_options", None),
        ("SELECT value FROM json_each('[1, 2]')", [(1,), (2,)]),
        ("SELECT fullkey FROM json_tree('{\"a\": [1]}') WHERE atom IS NOT NULL", [("$.a[0]",)]),
        ("SELECT upper('a'), length(token) FROM counts ORDER BY 2 LIMIT 1", [("A", 2)]),
        ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) "
         "SELECT sum(i) FROM n", [(15,)]),
        ("/* a comment */ -- and another\n SELECT 1", [(1,)]),
        ("VALUES (1)", [(1,)]),
    ],
)  # fmt: skip
def test_reads_are_allowed(db, sql, expected):
    rows = query(db, sql)[1]
    assert rows == expected if expected is not None else rows


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO counts VALUES ('x', 1)",
        "UPDATE counts SET count = 0",
        "DELETE FROM counts",
        "WITH x AS (SELECT 1) DELETE FROM counts",
        "DROP TABLE counts",
        "CREATE TABLE t (x)",
        "CREATE TEMP TABLE t (x)",
        "ATTACH DATABASE '{tmp}/new.db' AS other",
        "VACUUM INTO '{tmp}/copy.db'",
        "VACUUM temp INTO '{tmp}/copy.db'",
        "/* hidden */ VACUUM",
        "VACUUM",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA user_version = 7",
        "PRAGMA hard_heap_limit = 0",
        "PRAGMA soft_heap_limit = 0",
        "PRAGMA temp_store = FILE",
        "PRAGMA writable_schema = 1",
        "PRAGMA query_only = 0",
        "PRAGMA cache_size = -99999999",
        "PRAGMA wal_checkpoint(TRUNCATE)",
        "SELECT load_extension('/tmp/x.so')",
        "REINDEX",
        "ANALYZE",
        "BEGIN",
    ],
)
def test_writes_are_refused_in_the_same_words_and_nothing_changes(db, tmp_path, sql):
    before = snapshot(tmp_path)
    with pytest.raises(QueryError) as refused:
        query(db, sql.format(tmp=tmp_path))
    assert str(refused.value) == REFUSED
    assert snapshot(tmp_path) == before
    assert query(db, "SELECT count(*) FROM counts")[1] == [(2,)]


def test_two_statements_are_refused(db):
    with pytest.raises(QueryError, match="only one statement at a time"):
        query(db, "SELECT 1; DELETE FROM counts")


ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
BIG = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000000) "

# Each hostile query of issues 16 and 17: (sql, timeout, memory MiB, what stops it).
HOSTILE = {
    "hex(randomblob(499999999))": (
        "SELECT length(hex(randomblob(499999999)))", 1, 256, "longer than 64 MiB"),
    "zeroblob(999999999)": ("SELECT zeroblob(999999999)", 1, 256, "longer than 64 MiB"),
    "zeroblob 20 times in a recursive CTE": (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20) "
        "SELECT zeroblob(999999999) FROM n", 1, 256, "longer than 64 MiB"),
    "hex(randomblob(30 MB)) 40 times": (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40) "
        "SELECT sum(length(hex(randomblob(30000000)))) FROM n", 1, 256, "stopped after 1s"),
    "300 doubling CTEs": (doubling_ctes(300), 5, 256, "more than 256 MiB"),
    "25 doubling CTEs": (doubling_ctes(25), 5, 256, "more than 256 MiB"),
    "22 doubling CTEs, compiled past the timeout": (doubling_ctes(22), 1, 2048, "after 1s"),
    "count(DISTINCT randomblob(10000)), endless": (
        ENDLESS + "SELECT count(DISTINCT randomblob(10000)) FROM n", 10, 256, "more than 256"),
    "ORDER BY over 5 GB": (
        BIG + "SELECT i, randomblob(1000) FROM n ORDER BY 2", 10, 256, "more than 256 MiB"),
    "a recursive queue in order": (
        "WITH RECURSIVE n(i, b) AS (SELECT 1, randomblob(1000) UNION ALL SELECT i + 1, "
        "randomblob(1000) FROM n, (SELECT 1 UNION ALL SELECT 2) ORDER BY 1) "
        "SELECT count(*) FROM n", 10, 256, "more than 256 MiB"),
    "an endless recursive CTE": (ENDLESS + "SELECT max(i) FROM n", 1, 256, "stopped after 1s"),
}  # fmt: skip


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_query_ends_in_time_within_memory_and_changes_nothing(db, tmp_path, name):
    sql, timeout, memory, message = HOSTILE[name]
    before = snapshot(tmp_path)
    with pytest.raises(QueryError, match=message) as stopped:
        query(db, sql, Bounds(timeout, memory, 10_000))
    error = stopped.value
    print(f"{name}: {error.seconds:.2f} s, peak RSS {error.peak_rss / MIB:.0f} MiB")
    assert error.seconds < timeout + 1.0
    # The stated bound: 1.5 x the heap limit + 256 MiB (sqlchild.address_space,
    # which the kernel enforces); the heap limit has stopped it well before.
    assert 0 < error.peak_rss < address_space(memory)
    assert snapshot(tmp_path) == before


def test_five_million_rows_are_cut_at_the_limit_in_little_memory(db):
    result = run_query(db, BIG + "SELECT i, 'x' FROM n", Bounds(rows=1_000_000), MAXIMA)
    assert sum(1 for _ in result.rows) == 1_000_000 and result.cut
    assert result.peak_rss < 100 * MIB
    everything = run_query(db, BIG + "SELECT count(*) FROM n", QUICK, MAXIMA)
    assert list(everything.rows) == [(5_000_000,)] and not everything.cut


def test_reading_creates_no_file_beside_a_stopped_database(db, tmp_path):
    before = snapshot(tmp_path)
    assert query(db, "SELECT count(*) FROM counts")[1] == [(2,)]
    store = Store.open_reader(db)
    assert store.top(1)[0]["token"] == "北京" and store.stats()["files_counted"] == 1
    store.close()
    assert snapshot(tmp_path) == before


def test_with_a_writer_holding_the_database_the_reader_sees_its_commits(db):
    lock = WriterLock(db).acquire()
    writer = sqlite3.connect(db)
    try:
        writer.execute("INSERT INTO counts VALUES ('广州', 5)")
        writer.commit()  # in the WAL only: an immutable reader would miss it
        assert ("广州", 5) in query(db, "SELECT token, count FROM counts")[1]
    finally:
        writer.close()
        lock.release()


def test_a_checkpoint_during_an_immutable_read_fails_the_read(db):
    result = run_query(db, BIG + "SELECT i FROM n", Bounds(rows=1_000_000), MAXIMA)
    assert next(result.rows) == (1,)  # the child has opened the database, and waits on us
    writer = sqlite3.connect(db)
    writer.execute("INSERT INTO counts VALUES ('广州', 5)")
    writer.commit()
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    writer.close()
    with pytest.raises(QueryError, match="written while it was read"):
        for _ in result.rows:
            pass


@pytest.mark.parametrize(
    "bounds, refused",
    [
        (Bounds(timeout=float("inf")), "--timeout inf is not allowed"),
        (Bounds(timeout=301), r"at most 300 \(the server's maximum, \[sql\] max_timeout"),
        (Bounds(memory_mb=4096), r"--memory 4096 is not allowed.*\[sql\] max_memory_mb"),
        (Bounds(rows=0), "--limit 0 is not allowed"),
    ],
)
def test_bounds_past_the_server_maximum_are_refused(bounds, refused):
    with pytest.raises(QueryError, match=refused):
        bounds.within(MAXIMA)


@pytest.mark.parametrize(
    "sql, message",
    [
        ("SELECT '\udcff'", r"not valid UTF-8 \(byte 0xff at character 8\)"),
        ("SELECT " + "1 + " * 30_000 + "1", "at most 100,000 are allowed"),
        ("SELECT " + "1 + " * 150 + "1", "query failed: Expression tree is too large"),
    ],
)
def test_bad_text_is_one_clear_error(db, sql, message):
    with pytest.raises(QueryError, match=message):
        query(db, sql)


def test_a_file_that_is_not_a_database(tmp_path):
    other = tmp_path / "passwd"
    other.write_text("root:x:0:0:root:/root:/bin/bash\n" * 100)
    with pytest.raises(QueryError, match=f"cannot read {other}: file is not a database"):
        query(other, "SELECT 1")
