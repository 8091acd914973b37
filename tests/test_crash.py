"""Crashes at any moment lose nothing and count nothing twice.

The invariant checked after every crash: the totals are exactly the
reference count of the files in the ledger (a file is in the ledger if and
only if its tokens are in the totals). STREAMCOUNT_CRASH_CYCLES sets how many
random kills the long test makes (10 by default; hundreds for a soak run).
"""

import os
import random
import sqlite3
import threading
from collections import Counter

import pytest

from .helpers import db_counts, db_ledger, make_text, reference_counts, wait_until

CYCLES = int(os.environ.get("STREAMCOUNT_CRASH_CYCLES", "10"))
SETTINGS = {"chunk_bytes": 16384, "batch_max_files": 20, "settle_seconds": 0.5}
ENCODINGS = ("utf-8", "gb18030", "utf-8-sig")


def make_corpus(rng, n):
    """name -> (bytes on disk, decoded text): mixed sizes and encodings."""
    files = {}
    for i in range(n):
        text = make_text(rng, paragraphs=rng.choice((1, 2, 5, 40, 200 if i % 25 == 0 else 3)))
        files[f"{i:05d}.txt"] = (text.encode(ENCODINGS[i % 3]), text)
    return files


def check_invariant(db, inbox, per_file):
    """The totals equal the reference count of exactly the files in the ledger."""
    ledger = db_ledger(db)
    expected = Counter()
    for path in ledger:
        expected.update(per_file[os.path.relpath(path, inbox)])
    assert db_counts(db) == expected
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    return len(ledger)


def feed(inbox, files, stop):
    def run():
        for name, (data, _) in files.items():
            if stop.is_set():
                return
            tmp = inbox / f".{name}"
            tmp.write_bytes(data)
            tmp.rename(inbox / name)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_random_kills_lose_nothing_and_count_nothing_twice(tmp_path, daemon_factory):
    rng = random.Random(1998)
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    files = make_corpus(rng, 40 * CYCLES)
    per_file = {name: reference_counts([text]) for name, (_, text) in files.items()}
    stop = threading.Event()
    feeder = feed(inbox, files, stop)
    counted = 0
    try:
        for _ in range(CYCLES):
            daemon = daemon_factory(**SETTINGS).start()
            target = min(counted + rng.randint(1, 30), len(files))
            wait_until(lambda t=target: len(db_ledger(db)) >= t, 60, f"{target} files")
            daemon.kill()
            counted = check_invariant(db, inbox, per_file)
    except BaseException:
        stop.set()
        raise
    finally:
        feeder.join()
    final = daemon_factory(**SETTINGS).start()
    wait_until(lambda: len(db_ledger(db)) == len(files), 120, "every file")
    assert final.stop() == 0
    assert check_invariant(db, inbox, per_file) == len(files)
    assert db_counts(db) == reference_counts(text for _, text in files.values())


@pytest.mark.parametrize(
    "point", ["merge-begin", "merge-after-upsert", "merge-before-commit", "merge-after-commit"]
)
def test_failpoints_in_the_merge_are_all_or_nothing(tmp_path, daemon_factory, point):
    rng = random.Random(point)
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    files = make_corpus(rng, 6)
    per_file = {name: reference_counts([text]) for name, (_, text) in files.items()}
    daemon = daemon_factory(env={"STREAMCOUNT_FAILPOINTS": point}, **SETTINGS).start()
    for name, (data, _) in files.items():
        (inbox / name).write_bytes(data)
    assert daemon.wait() == 137  # died at the failpoint, as a SIGKILL would
    committed = check_invariant(db, inbox, per_file)
    assert (committed > 0) == (point == "merge-after-commit")
    restarted = daemon_factory(**SETTINGS).start()
    wait_until(lambda: len(db_ledger(db)) == len(files), 60, "every file after restart")
    assert restarted.stop() == 0
    assert check_invariant(db, inbox, per_file) == len(files)
