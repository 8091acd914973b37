import hashlib

import pytest

from streamcount.config import TokenizerSettings
from streamcount.identity import FileId
from streamcount.sqlquery import QueryError, run_query
from streamcount.store import LedgerRow, Merge, Store


@pytest.fixture
def reader(tmp_path):
    writer = Store.open_writer(tmp_path / "db.sqlite", TokenizerSettings())
    row = LedgerRow("/a", FileId(1, 1, 1, 1, ""), 4, "counted", "", "")
    writer.merge(Merge({"北京": 3, "上海": 1}, [row]))
    writer.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    writer.close()
    store = Store.open_reader(tmp_path / "db.sqlite")
    yield store
    store.close()


def snapshot(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_select(reader):
    columns, rows = run_query(reader, "SELECT token, count FROM counts ORDER BY count DESC")
    assert columns == ["token", "count"]
    assert list(rows) == [("北京", 3), ("上海", 1)]


def test_read_pragmas_and_functions_allowed(reader):
    assert list(run_query(reader, "PRAGMA table_info(counts)")[1])
    assert list(run_query(reader, "SELECT upper('a'), length(token) FROM counts")[1])
    cte = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) "
    assert list(run_query(reader, cte + "SELECT sum(i) FROM n")[1]) == [(15,)]


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO counts VALUES ('x', 1)",
        "UPDATE counts SET count = 0",
        "DELETE FROM counts",
        "DROP TABLE counts",
        "CREATE TABLE t (x)",
        "ATTACH DATABASE '{tmp}/new.db' AS other",
        "VACUUM INTO '{tmp}/copy.db'",
        "VACUUM",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA user_version = 7",
        "SELECT load_extension('/tmp/x.so')",
        "SELECT 1; DELETE FROM counts",
        "REINDEX",
        "ANALYZE",
    ],
)
def test_writes_are_refused_and_nothing_changes(reader, tmp_path, sql):
    before = snapshot(tmp_path)
    with pytest.raises(QueryError):
        list(run_query(reader, sql.format(tmp=tmp_path))[1])
    assert snapshot(tmp_path) == before
    assert list(run_query(reader, "SELECT count(*) FROM counts")[1]) == [(2,)]


def test_runaway_query_is_stopped(reader):
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n"
    with pytest.raises(QueryError, match=r"stopped after 0\.5s"):
        list(run_query(reader, endless, timeout=0.5)[1])
