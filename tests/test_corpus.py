"""Corpus scale: the real news corpus, cut into ~3,000 files, through the daemon.

Skipped (saying why) where ../shared/corpus is not beside the clone; in CI
(CI=true), where it always is, failed instead.
"""

import shutil
import time

import pytest

from bench.corpus import CORPUS, articles, write_files

from .helpers import db_counts, db_ledger, reference_counts, skip_or_fail, wait_until


@pytest.fixture(autouse=True)
def corpus():
    if not CORPUS.is_file():
        skip_or_fail(f"corpus not found at {CORPUS} (set STREAMCOUNT_CORPUS)")


def test_corpus_through_the_daemon_equals_reference(tmp_path, daemon_factory):
    texts = articles()
    staging = tmp_path / "staging"
    write_files(texts, staging)
    daemon = daemon_factory(batch_max_files=1000, batch_max_wait=0.5).start()
    started = time.monotonic()
    shutil.copytree(staging, tmp_path / "inbox" / "drop")
    db = tmp_path / "db.sqlite"
    wait_until(lambda: len(db_ledger(db)) == len(texts), 300, "the whole corpus")
    elapsed = time.monotonic() - started
    assert daemon.stop() == 0
    size = sum(len(t.encode()) for t in texts)
    rate = size / 1e6 / elapsed
    print(f"\n{len(texts)} files, {size / 1e6:.1f} MB in {elapsed:.1f} s: {rate:.2f} MB/s")
    assert set(db_ledger(db).values()) == {"counted"}
    assert db_counts(db) == reference_counts(texts)
