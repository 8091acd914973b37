"""The writer under pressure: a full disk, a busy database, a long reader."""

import random
import sqlite3
import threading
import time

from streamcount.config import Config
from streamcount.pipeline import open_pipeline
from streamcount.work import FileRef

from .helpers import db_counts, db_ledger, make_text, reference_counts, wait_until


def unique_words(rng, n):
    """An article plus n words seen nowhere else: every file grows the totals."""
    return make_text(rng) + " ".join(f"w{rng.getrandbits(48):x}" for _ in range(n))


def refs(folder, texts):
    out = []
    for i, text in enumerate(texts):
        path = folder / f"{i}.txt"
        path.write_text(text)
        st = path.stat()
        out.append(FileRef(str(path), st.st_size, st.st_mtime_ns, st.st_ino))
    return out


def test_disk_full_holds_the_batch_retries_and_ends_exact(tmp_path):
    """SQLite's max_page_count makes the database full, as a full disk would."""
    rng = random.Random(11)
    texts = [unique_words(rng, 300) for _ in range(20)]  # the totals need new pages
    config = Config(db=tmp_path / "db.sqlite", workers=2)
    with open_pipeline(config) as pipeline:
        conn = pipeline.store.conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        for ref in refs(tmp_path, texts):
            pipeline.add(ref, 0.0)
        def disk_full() -> bool:
            pipeline.drain()
            return pipeline.writer_failing

        wait_until(disk_full, what="the disk full")
        assert db_ledger(config.db) == {} and db_counts(config.db) == {}  # nothing half-done
        conn.execute("PRAGMA max_page_count = 1073741823")  # space is back
        while pipeline.busy:
            pipeline.drain()
    assert len(db_ledger(config.db)) == 20
    assert db_counts(config.db) == reference_counts(texts)


def test_long_reader_never_fails_the_writer_and_the_wal_is_reclaimed_after(tmp_path):
    """An analyst's open read transaction pins the WAL (it can only grow) but never
    fails a merge; once the reader is gone the WAL is checkpointed and reset."""
    rng = random.Random(12)
    config = Config(db=tmp_path / "db.sqlite", workers=2, batch_max_files=5)
    texts = [unique_words(rng, 300) for _ in range(30)]
    with open_pipeline(config) as pipeline:
        writer = pipeline.store.conn
        analyst = sqlite3.connect(config.db)
        analyst.execute("BEGIN")
        before = analyst.execute("SELECT count(*) FROM counts").fetchone()[0]
        frames = []
        for i, half in enumerate((texts[:15], texts[15:])):  # two rounds: two merges at least
            folder = tmp_path / f"round{i}"
            folder.mkdir()
            for ref in refs(folder, half):
                pipeline.add(ref, 0.0)
            while pipeline.busy:
                if pipeline.drain().rows:  # committed while the reader holds its snapshot
                    _, log, done = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    frames.append(log)
                    assert done < log  # the reader keeps the checkpoint from finishing
        assert frames == sorted(frames) and len(frames) > 1  # so the WAL only grew
        assert not pipeline.writer_failing
        assert analyst.execute("SELECT count(*) FROM counts").fetchone()[0] == before
        analyst.execute("COMMIT")
        analyst.close()
        assert writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone() == (0, 0, 0)
        assert (tmp_path / "db.sqlite-wal").stat().st_size == 0
    assert len(db_ledger(config.db)) == 30
    assert db_counts(config.db) == reference_counts(texts)


def test_writer_waits_for_a_busy_database(tmp_path):
    """Another writer holds the lock for 2.5 s: the merge waits (busy_timeout), not fails."""
    rng = random.Random(13)
    texts = [make_text(rng) for _ in range(5)]
    config = Config(db=tmp_path / "db.sqlite", workers=1)
    with open_pipeline(config) as pipeline:
        other = sqlite3.connect(config.db, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        threading.Timer(2.5, other.execute, ["COMMIT"]).start()
        for ref in refs(tmp_path, texts):
            pipeline.add(ref, 0.0)
        started = time.monotonic()
        while pipeline.busy:
            pipeline.drain()
        assert not pipeline.writer_failing
        assert time.monotonic() - started >= 2.0  # it did wait for the lock
        other.close()
    assert db_counts(config.db) == reference_counts(texts)
