"""`streamcount forget`: subtract exactly what files added, on both backends."""

import gzip
import os
import signal
import subprocess
import sys
from collections import Counter

import pytest

from streamcount.config import Config
from streamcount.forget import plan
from streamcount.ingest import ingest
from streamcount.store import MergeRefused, open_store

from .helpers import (
    DaemonProcess,
    db_counts,
    db_ledger,
    make_text,
    reference_counts,
    wait_until,
    write_config,
)


def totals(config: Config) -> Counter[str]:
    store = open_store(config.db)
    try:
        return Counter(dict(store.counts()))
    finally:
        store.close()


def statuses(config: Config) -> dict[str, str]:
    store = open_store(config.db)
    try:
        return {row.path: row.status for row, _ in store.ledger_rows()}
    finally:
        store.close()


def forget(config: Config, paths: list[str]) -> list[tuple[str, str]]:
    store = open_store(config.db, config.tokenizer, config.host_id)
    try:
        found = plan(store, config, paths)
        if not found.refused:
            store.subtract(found.counts, found.rows)
        return found.refused
    finally:
        store.close()


@pytest.fixture
def inbox(tmp_path, rng):
    """120 files (some GB18030, one gzip), and their texts by path."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    texts = {}
    for i in range(120):
        text = make_text(rng)
        path = folder / f"{i:03d}.txt"
        path.write_bytes(text.encode("gb18030" if i % 5 == 0 else "utf-8"))
        texts[str(path)] = text
    packed = folder / "packed.txt.gz"
    texts[str(packed)] = make_text(rng, paragraphs=30)
    packed.write_bytes(gzip.compress(texts[str(packed)].encode()))
    return folder, texts


def test_forget_100_files_leaves_the_reference_of_the_rest(db, inbox):
    folder, texts = inbox
    config = Config(db=db, workers=2, batch_max_files=16)
    ingest(config, [folder])
    gone = [*sorted(texts)[:100], str(folder / "packed.txt.gz")]
    assert forget(config, gone) == []
    rest = [t for p, t in texts.items() if p not in gone]
    assert totals(config) == reference_counts(rest)
    assert {p for p, s in statuses(config).items() if s == "forgotten"} == set(gone)
    again = ingest(config, [folder])  # a forgotten file is not counted again
    assert not again.by_status
    assert totals(config) == reference_counts(rest)


@pytest.fixture
def counted(db, inbox):
    """The inbox ingested into `db`: (config, texts by path)."""
    config = Config(db=db, workers=2)
    ingest(config, [inbox[0]])
    return config, inbox[1]


def test_forgetting_everything_leaves_no_token(counted):
    config, texts = counted
    assert forget(config, list(texts)) == []
    assert totals(config) == {}
    store = open_store(config.db)
    try:
        assert store.total_tokens() == 0
    finally:
        store.close()


def test_a_file_forgotten_twice_is_refused_and_nothing_changes(counted):
    config, texts = counted
    first = sorted(texts)[:3]
    store = open_store(config.db, config.tokenizer, config.host_id)
    try:
        found = plan(store, config, first)
        store.subtract(found.counts, found.rows)
        before = Counter(dict(store.counts()))
        with pytest.raises(MergeRefused, match="not in the ledger as counted"):
            store.subtract(found.counts, found.rows)
        assert Counter(dict(store.counts())) == before
    finally:
        store.close()


def test_changed_or_deleted_file_is_refused_with_the_reason(counted):
    config, texts = counted
    changed, deleted, fine = sorted(texts)[:3]
    with open(changed, "a", encoding="utf-8") as f:
        f.write("后来追加的一行。\n")
    os.unlink(deleted)
    before = totals(config)
    refused = dict(forget(config, [changed, deleted, fine]))
    assert refused[changed].startswith("changed since it was counted")
    assert refused[deleted].startswith("cannot be read again")
    assert fine not in refused
    assert totals(config) == before  # all or nothing
    assert set(statuses(config).values()) == {"counted"}


def test_cli_dry_run_then_forget(tmp_path, inbox):
    folder, texts = inbox
    db = tmp_path / "db.sqlite"
    ingest(Config(db=db, workers=2), [folder])
    one = sorted(texts)[0]

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "streamcount", "forget", *args, "--db", str(db)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    before = totals(Config(db=db))
    dry = run(one, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would subtract 1 files" in dry.stdout
    assert totals(Config(db=db)) == before
    done = run(one)
    assert done.returncode == 0, done.stderr
    assert before - totals(Config(db=db)) == reference_counts([texts[one]])
    again = run(one)
    assert again.returncode == 1
    assert again.stderr.splitlines()[0].endswith("not in the ledger as counted")


def test_kept_counts_take_back_changed_deleted_and_chunked_files(db, inbox, rng):
    """keep_file_counts: forget subtracts the stored counts, so the file may have
    changed or be gone; a chunked file's kept counts are its chunks' sum."""
    folder, texts = inbox
    big = folder / "big.txt"
    texts[str(big)] = make_text(rng, paragraphs=400)
    big.write_text(texts[str(big)], encoding="utf-8")
    config = Config(db=db, workers=2, batch_max_files=16, chunk_bytes=16384,
                    keep_file_counts=True)  # fmt: skip
    ingest(config, [folder])
    assert totals(config) == reference_counts(texts.values())
    changed, deleted, fine = sorted(texts)[:3]
    with open(changed, "a", encoding="utf-8") as f:
        f.write("后来追加的一行。\n")
    os.unlink(deleted)
    gone = [changed, deleted, fine, str(big), str(folder / "packed.txt.gz")]
    assert forget(config, gone) == []
    rest = [t for p, t in texts.items() if p not in gone]
    assert totals(config) == reference_counts(rest)
    assert {p for p, s in statuses(config).items() if s == "forgotten"} == set(gone)


def test_kept_counts_are_dropped_with_the_forgotten_row(db, inbox):
    folder, texts = inbox
    config = Config(db=db, workers=2, keep_file_counts=True)
    ingest(config, [folder])
    one = sorted(texts)[0]
    store = open_store(config.db, config.tokenizer, config.host_id)
    try:
        row = next(r for r, _ in store.ledger_rows() if r.path == one)
        assert store.file_counts(row) == reference_counts([texts[one]])
        found = plan(store, config, [one])
        store.subtract(found.counts, found.rows)
        assert store.file_counts(row) == {}
        kept = store.conn.execute("SELECT count(*) FROM file_counts").fetchone()[0]
        assert kept == sum(1 for t in texts.values() for _ in reference_counts([t])) - len(
            reference_counts([texts[one]])
        )
    finally:
        store.close()


def test_without_kept_counts_nothing_is_stored(counted):
    config, _ = counted
    store = open_store(config.db)
    try:
        assert store.conn.execute("SELECT count(*) FROM file_counts").fetchone()[0] == 0
    finally:
        store.close()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamcount", *args], capture_output=True, text=True, timeout=120
    )


def test_a_forgotten_file_that_grew_is_not_counted_again(db, inbox):
    folder, texts = inbox
    config = Config(db=db, workers=2, keep_file_counts=True)
    ingest(config, [folder])
    grown = sorted(texts)[1]
    with open(grown, "a", encoding="utf-8") as f:
        f.write("后来追加的一行。\n")
    assert forget(config, [grown]) == []
    again = ingest(config, [folder])
    assert not again.by_status
    assert totals(config) == reference_counts([t for p, t in texts.items() if p != grown])


def test_cli_recount_counts_the_files_as_they_are_now(tmp_path, inbox):
    """--recount: a changed file (its kept counts subtracted) and an unchanged one
    are counted again as they are now; a deleted one is only forgotten."""
    folder, texts = inbox
    db = tmp_path / "db.sqlite"
    config_file = tmp_path / "config.toml"
    config_file.write_text(f'db = "{db}"\nkeep_file_counts = true\nworkers = 2\n')
    ingest(Config(db=db, workers=2, keep_file_counts=True), [folder])
    changed, same, deleted = sorted(texts)[:3]
    texts[changed] = "改写以后的内容。\n" + texts[changed][: len(texts[changed]) // 2]
    with open(changed, "w", encoding="utf-8") as f:
        f.write(texts[changed])
    os.unlink(deleted)
    done = run_cli("forget", changed, same, deleted, "--recount", "--config", str(config_file))
    assert done.returncode == 0, done.stderr
    assert "counted again 2 files" in done.stdout
    rest = [t for p, t in texts.items() if p != deleted]
    assert totals(Config(db=db)) == reference_counts(rest)
    assert not ingest(Config(db=db, workers=2), [folder]).by_status  # nothing twice
    assert totals(Config(db=db)) == reference_counts(rest)


def test_the_daemon_does_not_count_a_forgotten_file_again(tmp_path, inbox, rng):
    """A forgotten file, unchanged or grown since, is left alone by the daemon; a
    new file beside them is counted (the same start-up rescan sees all three)."""
    folder, texts = inbox
    db = tmp_path / "db.sqlite"
    config = Config(db=db, workers=2, keep_file_counts=True)
    ingest(config, [folder])
    unchanged, grown = sorted(texts)[:2]
    with open(grown, "a", encoding="utf-8") as f:
        f.write("后来追加的一行。\n")
    assert forget(config, [unchanged, grown]) == []
    new = folder / "new.txt"
    texts[str(new)] = make_text(rng)
    new.write_text(texts[str(new)], encoding="utf-8")
    config_file = write_config(
        tmp_path / "config.toml", folder, db, keep_file_counts=True, rescan_seconds=1.0
    )
    daemon = DaemonProcess(config_file).start()
    wait_until(lambda: db_ledger(db).get(str(new)) == "counted", 60, "the new file counted")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    rest = [t for p, t in texts.items() if p not in (unchanged, grown)]
    assert db_counts(db) == reference_counts(rest)
    assert db_ledger(db)[unchanged] == db_ledger(db)[grown] == "forgotten"
