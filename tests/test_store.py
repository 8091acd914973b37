"""The store's guarantees, stated once and proved on each backend (the `db`
fixture: a SQLite file, a PostgreSQL database)."""

import os
import subprocess
import sys
from collections import Counter

import pytest

from streamcount.config import TokenizerSettings, is_url
from streamcount.identity import FileId
from streamcount.store import LedgerRow, Merge, MergeRefused, Store, StoreError

from .helpers import make_text, reference_counts


def row(path: str, tokens: int = 3, status: str = "counted") -> LedgerRow:
    """A ledger row for `path`, with an identity of its own (an inode from its name)."""
    return LedgerRow(path, FileId(1, sum(map(ord, path)), 10, 1, "f"), tokens, status, "", "utf-8")


def paths(store: Store) -> set[str]:
    return {path for path, _, _ in store.ledger()}


@pytest.fixture
def store(db):
    s = Store.open_writer(db, TokenizerSettings(), "h1")
    yield s
    s.close()


def counts(store: Store) -> Counter:
    return Counter(dict(store.conn.execute("SELECT token, count FROM counts")))


def in_transaction(store: Store) -> bool:
    if is_url(store.location):
        return store.conn.info.transaction_status != store.conn.info.transaction_status.IDLE
    return store.conn.in_transaction


def test_merge_is_additive_and_records_ledger(store):
    store.merge(Merge({"北京": 2, "上海": 1}, [row("/a")]))
    both = Merge({"北京": 1}, [row("/b")])
    both.add({"广州": 4, "北京": 2}, [row("/c")])  # summed before the writer sees them
    store.merge(both)
    assert counts(store) == Counter({"北京": 5, "上海": 1, "广州": 4})
    assert paths(store) == {"/a", "/b", "/c"}
    assert store.total_tokens() == 10
    assert [f["host"] for f in store.files()] == ["h1"] * 3


def test_sqlite_is_in_wal_mode(tmp_path):
    store = Store.open_writer(tmp_path / "db.sqlite", TokenizerSettings())
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_a_refused_ledger_row_leaves_totals_and_ledger_untouched(store):
    store.merge(Merge({"北京": 2}, [row("/a")]))
    # The ledger insert fails: the same file counted again.
    with pytest.raises(MergeRefused, match=r"(?i)unique"):
        store.merge(Merge({"北京": 5, "新词": 1}, [row("/b"), row("/a")]))
    assert counts(store) == Counter({"北京": 2})
    assert paths(store) == {"/a"}
    assert store.total_tokens() == 2
    assert not in_transaction(store)


def test_other_tokenizer_settings_are_refused(db):
    path = db
    s = Store.open_writer(path, TokenizerSettings())
    s.merge(Merge({"x": 1}, [row("/a")]))
    s.close()
    with pytest.raises(StoreError, match=r"other tokenizer settings .*mode: 'accurate'"):
        Store.open_writer(path, TokenizerSettings(mode="search"))
    Store.open_writer(path, TokenizerSettings()).close()


def test_empty_database_adopts_new_settings(db):
    path = db
    Store.open_writer(path, TokenizerSettings()).close()
    Store.open_writer(path, TokenizerSettings(hmm=False)).close()


def test_changed_user_dictionary_is_refused(tmp_path, db):
    words = tmp_path / "dict.txt"
    words.write_text("石墨烯 10 n\n", encoding="utf-8")
    path = db
    s = Store.open_writer(path, TokenizerSettings(user_dict=(words,)))
    s.merge(Merge({"x": 1}, [row("/a")]))
    s.close()
    words.write_text("石墨烯 10 n\n碳纳米管 10 n\n", encoding="utf-8")
    with pytest.raises(StoreError, match="user_dict"):
        Store.open_writer(path, TokenizerSettings(user_dict=(words,)))


def test_reader_needs_an_existing_database(tmp_path):
    with pytest.raises(StoreError, match="no database"):
        Store.open_reader(tmp_path / "missing.db")
    (tmp_path / "other.db").write_bytes(b"")
    with pytest.raises(StoreError, match="not a streamcount database"):
        Store.open_reader(tmp_path / "other.db")


def test_queries(store, db):
    store.merge(Merge({"的": 6, "北京": 3, "上海": 1}, [row("/a", 10), row("/b", 0, "skipped")]))
    reader = Store.open_reader(db)
    top = [(r["rank"], r["token"], r["count"]) for r in reader.top(2)]
    assert top == [(1, "的", 6), (2, "北京", 3)]
    assert reader.top(1)[0]["share"] == 0.6
    assert reader.lookup(["北京", "无"]) == [
        {"token": "北京", "count": 3, "share": 0.3},
        {"token": "无", "count": 0, "share": 0.0},
    ]
    stats = reader.stats()
    assert stats["files_counted"] == 1 and stats["files_not_counted"] == 1
    assert stats["total_tokens"] == 10 and stats["distinct_tokens"] == 3
    assert [r["path"] for r in reader.files("skipped")] == ["/b"]
    assert [r["path"] for r in reader.files(host="h1", limit=1)] == ["/a"]
    assert reader.files(host="h2") == []
    reader.close()


def test_top_from_the_partial_index_and_beyond_it(store):
    counts = {"甲": 5000, "乙": 1000, "丙": 1000, "丁": 999, "戊": 7, "己": 999}
    store.merge(Merge(counts, [row("/a")]))
    expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    for n in range(1, 7):  # n <= 3 comes from the index, more falls back to a scan
        assert [(r["token"], r["count"]) for r in store.top(n)] == expected[:n]


def test_sqlite_top_reads_the_partial_index(tmp_path):
    store = Store.open_writer(tmp_path / "db.sqlite", TokenizerSettings())
    plan = store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT token, count FROM counts WHERE count >= 1000 "
        "ORDER BY count DESC, token LIMIT 3"
    ).fetchall()
    assert "counts_top" in str(plan)
    store.close()


@pytest.mark.parametrize("nul", [False, True], ids=["json", "row-by-row"])
def test_any_token_text_survives_the_upsert(store, nul):
    # Quotes, backslashes, control and astral characters; with nul=True also
    # U+0000, which SQLite's JSON would cut short (so those go row by row).
    # PostgreSQL's text cannot hold U+0000 at all: that merge is refused.
    tally = {'"引号"': 1, "back\\slash": 2, "\x01\x1f": 3, "😀": 4, "\u2028": 5, "/": 6}
    if nul:
        tally |= {"a\x00b": 7, "\x00": 8}
    if nul and is_url(store.location):
        with pytest.raises(MergeRefused, match="NUL"):
            store.merge(Merge(tally, [row("/a")]))
        assert counts(store) == Counter() and paths(store) == set()
        return
    store.merge(Merge(tally, [row("/a")]))
    store.merge(Merge(tally, [row("/b")]))
    assert dict(counts(store)) == {token: 2 * n for token, n in tally.items()}


def test_a_commit_whose_answer_was_lost_is_not_added_again(tmp_path, db, rng):
    """The merge holding b.txt commits, then fails as if the connection had died
    before the server's answer came (a failpoint): the retry finds it committed."""
    folder = tmp_path / "in"
    folder.mkdir()
    texts = {name: make_text(rng) for name in ("a.txt", "b.txt", "c.txt")}
    for name, text in texts.items():
        (folder / name).write_text(text)
    env = {**os.environ, "STREAMCOUNT_FAILPOINTS": "merge-answer-lost=b.txt"}
    done = subprocess.run(
        [sys.executable, "-m", "streamcount", "ingest", str(folder), "--db", str(db)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "cannot take merges" in done.stderr and "takes merges again" in done.stderr
    reader = Store.open_reader(db)
    assert sorted(f["path"] for f in reader.files()) == sorted(str(folder / n) for n in texts)
    assert counts(reader) == reference_counts(texts.values())
    reader.close()
