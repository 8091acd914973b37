"""`ingest` through the real pipeline: real pool, real SQLite, reference totals."""

import codecs
import os
import random
from pathlib import Path

import pytest

from streamcount.config import Config
from streamcount.ingest import ingest
from streamcount.pipeline import Progress
from streamcount.store import Store
from streamcount.writerlock import LockError, WriterLock

from .helpers import db_counts, db_ledger, make_text, reference_counts


def build_tree(root: Path, rng: random.Random) -> list[str]:
    """A mixed inbox; returns the texts that must be counted."""
    counted = []
    for i in range(40):
        text = make_text(rng)
        sub = root / f"d{i % 4}" / f"e{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        encoding = ("utf-8", "gb18030", "utf-8-sig")[i % 3]
        (sub / f"{i}.txt").write_bytes(text.encode(encoding))
        counted.append(text)
    big = make_text(rng, paragraphs=400)  # ~40 kB: several chunks with chunk_bytes=4096
    (root / "big.txt").write_bytes(big.encode())
    counted.append(big)
    crlf = make_text(rng).replace("\n", "\r\n")
    (root / "crlf.txt").write_bytes(crlf.encode())
    counted.append(crlf)
    (root / "empty.txt").write_bytes(b"")
    (root / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    (root / "garbage.txt").write_bytes(b"\xfd\x81\x30\xff\xfe\x80" * 10)
    for ignored in (".hidden.txt", "partial.txt.part", "notes.md", "x.tmp"):
        (root / ignored).write_text(make_text(rng), encoding="utf-8")
    (root / ".git").mkdir()
    (root / ".git" / "inside.txt").write_text("不应计数", encoding="utf-8")
    return counted


@pytest.fixture
def config(tmp_path):
    return Config(db=tmp_path / "db.sqlite", workers=2, chunk_bytes=4096, batch_max_files=7)


def test_ingest_counts_exactly_once(tmp_path, rng, config):
    inbox = tmp_path / "inbox"
    texts = build_tree(inbox, rng)
    summary = ingest(config, [inbox])
    assert db_counts(config.db) == reference_counts(texts)
    ledger = db_ledger(config.db)
    assert summary.by_status == {"counted": len(texts) + 1, "skipped": 1, "failed": 1}
    assert ledger[str(inbox / "empty.txt")] == "counted"
    assert ledger[str(inbox / "image.txt")] == "skipped"
    assert ledger[str(inbox / "garbage.txt")] == "failed"
    assert not any(".git" in p or "hidden" in p or p.endswith((".md", ".part")) for p in ledger)

    again = ingest(config, [inbox])
    assert again.already == len(ledger) and not again.by_status
    assert db_counts(config.db) == reference_counts(texts)


def test_chunked_file_with_bom_counts_like_whole(tmp_path, rng, config):
    text = make_text(rng, paragraphs=300)
    path = tmp_path / "bom.txt"
    path.write_bytes(codecs.BOM_UTF8 + text.encode())
    ingest(config, [path])
    assert db_counts(config.db) == reference_counts([text])


def test_chunks_of_mixed_encodings_fail_the_file(tmp_path, rng, config):
    head = make_text(rng, paragraphs=60).encode()
    tail = make_text(rng, paragraphs=60).encode("gb18030")
    path = tmp_path / "mixed.txt"
    path.write_bytes(head + tail)
    summary = ingest(config, [path])
    assert summary.by_status == {"failed": 1}
    assert db_counts(config.db) == {}


def test_second_writer_is_refused(tmp_path, config):
    lock = WriterLock(config.db).acquire()
    try:
        with pytest.raises(LockError, match="already being written"):
            ingest(config, [tmp_path])
    finally:
        lock.release()


def test_file_names_that_are_not_utf8_or_have_newlines(tmp_path, rng, config):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    texts = [make_text(rng) for _ in range(3)]
    names = [b"caf\xe9-latin1.txt", b"line\nbreak.txt", "普通.txt".encode()]
    for name, text in zip(names, texts, strict=True):
        with open(os.path.join(os.fsencode(inbox), name), "w", encoding="utf-8") as f:
            f.write(text)
    assert ingest(config, [inbox]).by_status == {"counted": 3}
    assert db_counts(config.db) == reference_counts(texts)
    again = ingest(config, [inbox])  # the ledger gives back exactly the same names
    assert again.already == 3 and not again.by_status
    shown = {r["path"] for r in Store.open_reader(config.db).files()}
    assert str(inbox / "caf\\xe9-latin1.txt") in shown


def test_ingest_holds_results_and_sums_them_into_few_commits(tmp_path, rng):
    # One worker, two tasks in flight, a file per task. Within COMMIT_SECONDS a
    # merge is due only once nothing is in flight, so each commit holds two
    # tasks at least (a merge per result would make one commit per file).
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    texts = [make_text(rng) for _ in range(12)]
    for i, text in enumerate(texts):
        (inbox / f"{i}.txt").write_text(text, encoding="utf-8")
    config = Config(db=tmp_path / "db.sqlite", workers=1, batch_max_files=1)
    commits: list[int] = []

    def record(progress: Progress) -> None:
        if progress.rows:
            commits.append(len(progress.rows))

    summary = ingest(config, [inbox], on_progress=record)
    assert summary.by_status == {"counted": 12} and sum(commits) == 12
    assert len(commits) <= 6, commits
    assert db_counts(config.db) == reference_counts(texts)
