"""decode_errors = "replace": a few bad bytes cost those bytes, not the whole file.

The oracle decodes each file itself with Python's own errors="replace" and
counts that text with jieba.cut + Counter; the bytes replaced are counted
independently too (the file's length minus the re-encoded length of what
decoded).
"""

import random
import re
import sqlite3

import pytest

from streamcount.config import Config
from streamcount.decoding import REPLACE, DecodeFailure, decode, decode_with
from streamcount.ingest import ingest

from .helpers import SENTENCES, DaemonProcess, db_counts, db_ledger, reference_counts, wait_until
from .test_encodings import SIMPLIFIED, TRADITIONAL, article

# bytes of text per corrupt byte: one bad byte replaces its whole character
# (3 bytes of UTF-8 Chinese, 2 of GB18030/Big5), and the share must stay
# under 0.1 % in every 1 MiB chunk, not only on average
BYTES_PER_BAD = {"utf-8": 4000, "gb18030": 3000, "big5": 3000}
SENTENCES_OF = {"utf-8": SIMPLIFIED, "gb18030": SIMPLIFIED, "big5": TRADITIONAL}


def corrupt_file(codec: str, bad: int, rng: random.Random) -> bytes:
    """Text in `codec` of BYTES_PER_BAD[codec] × `bad` bytes, with `bad` of them 0xFF."""
    parts, size = [], 0
    while size < BYTES_PER_BAD[codec] * bad:
        parts.append(article(SENTENCES_OF[codec], rng) + "\n")
        size += len(parts[-1].encode(codec))
    data = bytearray("".join(parts).encode(codec))
    for pos in rng.sample(range(len(data)), bad):
        data[pos] = 0xFF  # never valid in UTF-8, GB18030 or Big5
    return bytes(data)


def bytes_replaced(data: bytes, codec: str) -> int:
    return len(data) - len(data.decode(codec, "replace").replace("\ufffd", "").encode(codec))


def ledger_rows(db):
    with sqlite3.connect(db) as conn:
        return {p: (s, r, e) for p, s, r, e in conn.execute(
            "SELECT path, status, reason, encoding FROM files")}  # fmt: skip


@pytest.mark.parametrize("codec", ["utf-8", "gb18030", "big5"])
def test_1_10_and_1000_corrupt_bytes_count_the_replaced_text(tmp_path, codec):
    rng = random.Random(codec)
    texts = []
    expected = {}
    for bad in (1, 10, 1000):
        data = corrupt_file(codec, bad, rng)
        path = tmp_path / "in" / f"{bad}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        texts.append(data.decode(codec, "replace"))
        expected[str(path)] = bytes_replaced(data, codec)
    # 1 MiB chunks: the 1000-byte file is several chunks, each decoded on its own
    config = Config(db=tmp_path / "db.sqlite", workers=2, chunk_bytes=1 << 20)
    assert ingest(config, [tmp_path / "in"]).by_status == {"counted": 3}
    counts = db_counts(config.db)
    assert counts == reference_counts(texts)
    assert not any("\ufffd" in token for token in counts)
    rows = ledger_rows(config.db)
    for path, replaced in expected.items():
        assert rows[path] == ("counted", f"{replaced} byte{'s' * (replaced > 1)} replaced", codec)


def test_strict_fails_the_file_as_before(tmp_path):
    data = corrupt_file("utf-8", 1, random.Random(1))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_bytes(data)
    config = Config(db=tmp_path / "db.sqlite", workers=1, decode_errors="strict")
    assert ingest(config, [tmp_path / "in"]).by_status == {"failed": 1}
    assert db_counts(config.db) == {}


@pytest.mark.parametrize("cut", [1, 2])
def test_utf8_file_cut_mid_character_at_its_start_is_counted(tmp_path, cut):
    text = article(SIMPLIFIED, random.Random(cut), paragraphs=20)
    data = text.encode()[cut:]  # what `tail -c` gives: the first character cut
    (tmp_path / "tail.txt").write_bytes(data)
    config = Config(db=tmp_path / "db.sqlite", workers=1)
    assert ingest(config, [tmp_path / "tail.txt"]).by_status == {"counted": 1}
    assert db_counts(config.db) == reference_counts([data.decode("utf-8", "replace")])
    status, reason, encoding = ledger_rows(config.db)[str(tmp_path / "tail.txt")]
    assert (status, encoding) == ("counted", "utf-8")
    assert reason == f"{3 - cut} byte{'s' * (cut == 1)} replaced"


def test_binary_is_still_skipped_and_garbage_still_fails(tmp_path):
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + b"x" * 5000)
    rng = random.Random(2)
    (tmp_path / "garbage.txt").write_bytes(bytes(rng.randrange(128, 256) for _ in range(5000)))
    config = Config(db=tmp_path / "db.sqlite", workers=1)
    assert ingest(config, [tmp_path]).by_status == {"skipped": 1, "failed": 1}
    rows = ledger_rows(config.db)
    assert "NUL byte" in rows[str(tmp_path / "image.txt")][1]
    assert "more than 0.1% of it is bad" in rows[str(tmp_path / "garbage.txt")][1]


def test_detection_of_valid_files_is_unchanged_by_replace():
    """The strict path runs first: the same text and encoding as `decode` gives."""
    rng = random.Random(3)
    for codec, sentences in (("utf-8", SENTENCES), ("gb18030", SIMPLIFIED), ("big5", TRADITIONAL)):
        data = article(sentences, rng).encode(codec)
        assert decode_with(data, "auto", REPLACE) == (*decode(data), 0)


def test_a_named_encoding_replaces_too():
    data = "繁體中文的測試文字。\n".encode("big5") * 400 + b"\xff"
    text, encoding, replaced = decode_with(data, "big5", REPLACE)
    assert (encoding, replaced) == ("big5", 1) and text == data.decode("big5", "replace")
    with pytest.raises(DecodeFailure, match=re.escape("not valid BIG5")):
        decode_with(data, "big5")


def test_the_daemon_takes_decode_errors_per_watched_folder(tmp_path):
    """Global strict, one folder replace: the same flawed file fails in one, counts in the other."""
    data = corrupt_file("utf-8", 1, random.Random(4))
    strict, lenient = tmp_path / "strict", tmp_path / "lenient"
    for folder in (strict, lenient):
        folder.mkdir()
    db = tmp_path / "db.sqlite"
    config = tmp_path / "config.toml"
    config.write_text(
        f'db = "{db}"\nworkers = 1\n[discovery]\ndecode_errors = "strict"\nsettle_seconds = 0.5\n'
        f'watch = ["{strict}", {{ path = "{lenient}", decode_errors = "replace" }}]\n'
    )
    daemon = DaemonProcess(config).start()
    try:
        for folder in (strict, lenient):
            (folder / "a.txt").write_bytes(data)
        wait_until(lambda: len(db_ledger(db)) == 2, what="both files in the ledger")
    finally:
        assert daemon.stop() == 0
    rows = ledger_rows(db)
    assert rows[str(strict / "a.txt")][0] == "failed"
    reason = f"{bytes_replaced(data, 'utf-8')} bytes replaced"
    assert rows[str(lenient / "a.txt")] == ("counted", reason, "utf-8")
    assert db_counts(db) == reference_counts([data.decode("utf-8", "replace")])
