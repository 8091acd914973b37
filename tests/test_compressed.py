"""Compressed inputs: .gz, .bz2, .xz, .zst through the real pipeline, against the reference."""

import bz2
import gzip
import io
import lzma
import random

import pytest
import zstandard

from bench.corpus import CORPUS
from streamcount import compressed
from streamcount.compressed import TextStream
from streamcount.config import Config
from streamcount.ingest import ingest

from .helpers import (
    db_counts,
    db_ledger,
    make_text,
    reference_counts,
    skip_or_fail,
    wait_until,
)

COMPRESS = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
    ".zst": lambda data: zstandard.ZstdCompressor().compress(data),
}


@pytest.fixture
def config(tmp_path):
    # chunk_bytes far below the files' sizes: a compressed file must still go whole.
    return Config(db=tmp_path / "db.sqlite", workers=2, chunk_bytes=4096, batch_max_files=7)


def test_corpus_in_every_format_equals_reference(tmp_path, config):
    if not CORPUS.is_file():
        skip_or_fail(f"corpus not found at {CORPUS} (set STREAMCOUNT_CORPUS)")
    data = CORPUS.read_bytes()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for suffix, compress in COMPRESS.items():
        (inbox / f"corpus.txt{suffix}").write_bytes(compress(data))
    summary = ingest(config, [inbox])
    assert summary.by_status == {"counted": 4}
    one = reference_counts([data.decode("utf-8")])
    assert db_counts(config.db) == {word: 4 * k for word, k in one.items()}


@pytest.mark.parametrize("suffix", sorted(COMPRESS))
def test_truncated_archive_fails_and_adds_nothing(tmp_path, rng, config, suffix):
    good, bad = make_text(rng, paragraphs=40), make_text(rng, paragraphs=400)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.txt.gz").write_bytes(gzip.compress(good.encode()))
    packed = COMPRESS[suffix](bad.encode())
    (inbox / f"bad.txt{suffix}").write_bytes(packed[: len(packed) * 2 // 3])
    summary = ingest(config, [inbox])
    assert summary.by_status == {"counted": 1, "failed": 1}
    assert db_ledger(config.db)[str(inbox / f"bad.txt{suffix}")] == "failed"
    assert db_counts(config.db) == reference_counts([good])
    reasons = [r for r in _reasons(config.db) if r]
    assert reasons and reasons[0].startswith(f"corrupt or truncated {suffix} data")


def test_not_an_archive_fails_with_the_reason(tmp_path, rng, config):
    path = tmp_path / "plain.txt.gz"
    path.write_text(make_text(rng), encoding="utf-8")
    assert ingest(config, [path]).by_status == {"failed": 1}
    assert db_counts(config.db) == {}
    assert "corrupt or truncated .gz data" in _reasons(config.db)[0]


@pytest.mark.parametrize("encoding", ["gb18030", "utf-16", "utf-8-sig", "big5"])
def test_legacy_and_wide_encodings_compressed(tmp_path, config, encoding):
    rng = random.Random(7)
    text = make_text(rng, paragraphs=50)
    if encoding == "big5":
        text = "臺灣的學校和圖書館。\n" * 200
    path = tmp_path / "t.txt.zst"
    path.write_bytes(COMPRESS[".zst"](text.encode(encoding)))
    assert ingest(config, [path]).by_status == {"counted": 1}
    assert db_counts(config.db) == reference_counts([text])


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030", "utf-16"])
def test_stream_blocks_cut_inside_characters_give_the_same_text(monkeypatch, rng, encoding):
    monkeypatch.setattr(compressed, "BLOCK_BYTES", 7)
    monkeypatch.setattr(compressed, "HEAD_BYTES", 64)
    text = make_text(rng, paragraphs=20)
    reader = io.BytesIO(text.encode(encoding))
    stream = TextStream(reader)
    parts = list(stream)
    assert "".join(parts) == text
    assert all(p.endswith("\n") for p in parts)  # cut only after a newline
    assert stream.bytes == len(text.encode(encoding))


def test_long_line_is_cut_at_a_separator(monkeypatch):
    monkeypatch.setattr(compressed, "MAX_CARRY_CHARS", 100)
    done, carry = compressed.split_text("北京大学" * 40 + "，" + "上海" * 10)
    assert done.endswith("，") and carry == "上海" * 10


def _reasons(db):
    import sqlite3

    with sqlite3.connect(db) as conn:
        return [r for (r,) in conn.execute("SELECT reason FROM files ORDER BY path")]


def test_the_daemon_counts_compressed_files_by_the_default_globs(tmp_path, rng, daemon_factory):
    daemon = daemon_factory().start()
    texts = {}
    for suffix, compress in COMPRESS.items():
        texts[suffix] = make_text(rng, paragraphs=20)
        staged = tmp_path / f"a.txt{suffix}"
        staged.write_bytes(compress(texts[suffix].encode()))
        staged.rename(tmp_path / "inbox" / staged.name)
    db = tmp_path / "db.sqlite"
    wait_until(lambda: len(db_ledger(db)) == 4, 60, "the four archives")
    assert daemon.stop() == 0
    assert set(db_ledger(db).values()) == {"counted"}
    assert db_counts(db) == reference_counts(texts.values())
