"""Hostile text shapes: long runs are cut before the tokenizer, long lines between chunks.

The oracle for cut runs is jieba.cut over pieces the test cuts itself; for
chunk edges, every byte is read exactly once and each chunk decodes strictly
(no character is cut), whatever the encoding.
"""

import random
from collections import Counter

import jieba
import pytest

from streamcount import textbounds
from streamcount.config import Config, TokenizerSettings
from streamcount.ingest import ingest
from streamcount.textbounds import MAX_RUN_CHARS, segments, split_long_runs
from streamcount.tokens import Tokenizer, is_countable, read_piece
from streamcount.work import FileRef, Piece

from .helpers import SENTENCES, db_counts, make_text, reference_counts
from .test_encodings import SIMPLIFIED, TRADITIONAL, article


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer(TokenizerSettings())


def jieba_counts(pieces):
    return Counter(t for p in pieces for t in jieba.cut(p) if is_countable(t))


def test_normal_text_is_not_cut():
    text = make_text(random.Random(1), paragraphs=200)
    assert list(split_long_runs(text)) == [text]


@pytest.mark.parametrize("run", ["a", "的", "x1", "𠀀"])
def test_a_long_run_is_cut_every_max_run_chars_from_its_start(tokenizer, run):
    body = (run * (2500 // len(run) + 1))[:2500]
    text = "前面的文字，" + body + "。后面的文字"
    start = len("前面的文字，")
    n = MAX_RUN_CHARS
    pieces = [text[: start + n], text[start + n : start + 2 * n], text[start + 2 * n :]]
    assert list(split_long_runs(text)) == pieces
    assert tokenizer.count(text) == jieba_counts(pieces)


def test_latin_runs_are_cut_in_a_long_text_too(tokenizer):
    """Over SEGMENT_CHARS the text goes through segments(): the same cuts."""
    rng = random.Random(2)
    letters = "".join(rng.choice("abcdefghij") for _ in range(300_000))
    text = "中文开头，" + letters + "\n" + article(SIMPLIFIED, rng)
    counts = tokenizer.count(text)
    assert sum(len(t) * k for t, k in counts.items() if t.isascii()) == len(letters)
    assert max(len(t) for t in counts) == MAX_RUN_CHARS


def test_text_with_only_spaces_is_segmented_exactly(tokenizer):
    """No newline, no sentence end: cut at other separators, tokens unchanged."""
    rng = random.Random(3)
    text = " ".join(rng.choice(SENTENCES).rstrip("。！？") for _ in range(3000))
    text = text.replace("，", " ")
    parts = list(segments(text, 500))
    assert "".join(parts) == text and len(parts) > 10
    assert all(len(p) <= 2 * 500 + MAX_RUN_CHARS for p in parts)
    assert jieba_counts(parts) == reference_counts([text])


def chunks(path, data, size):
    ref = FileRef(str(path), len(data), 0, 0)
    ends = range(0, len(data), size)
    return [read_piece(Piece(ref, s, min(s + size, len(data))))[0] for s in ends]


def pick(rng, choices, n):
    return "".join(rng.choice(choices) for _ in range(n))


def no_newlines(codec, sentences, rng, size):
    """Chinese with no ASCII byte at all (as the pd199801 corpus without its newlines)."""
    text = ""
    while len(text) < size:
        text += "".join(c for c in article(sentences, rng) if not c.isascii())
    return text


SHAPES = {
    "letters": ("ascii", lambda rng, n: pick(rng, "abc", n)),
    "utf-8 Chinese": ("utf-8", lambda rng, n: no_newlines("utf-8", SIMPLIFIED, rng, n // 3)),
    "gb18030 Chinese": ("gb18030", lambda rng, n: no_newlines("gb18030", SIMPLIFIED, rng, n // 2)),
    "big5 Chinese": ("big5", lambda rng, n: no_newlines("big5", TRADITIONAL, rng, n // 2)),
    "gb18030 four-byte": ("gb18030", lambda rng, n: pick(rng, "𠀀𪚥한국어", n // 4)),
    "gb18030 mixed": ("gb18030", lambda rng, n: pick(rng, ["中文", "12", "3", "ab", "𠀀"], n // 2)),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_a_long_line_is_cut_between_chunks_at_character_boundaries(tmp_path, monkeypatch, shape):
    window = 4096
    monkeypatch.setattr(textbounds, "MAX_LINE_BYTES", window)
    codec, make = SHAPES[shape]
    data = make(random.Random(shape), 200_000).encode(codec)
    path = tmp_path / "line.txt"
    path.write_bytes(data)
    parts = chunks(path, data, 4 * window)
    assert b"".join(parts) == data
    for part in parts:
        part.decode(codec)  # strict: no character was cut
    if shape != "gb18030 four-byte":  # no place to cut: one chunk reads the line
        assert max(map(len, parts)) <= 5 * window + 1
        assert sum(1 for p in parts if p) >= len(data) // (4 * window) - 1


def test_a_long_line_cut_at_chunk_edges_counts_all_but_a_few_words(
    tmp_path, monkeypatch, tokenizer
):
    window = 4096
    monkeypatch.setattr(textbounds, "MAX_LINE_BYTES", window)
    text = no_newlines("gb18030", SIMPLIFIED, random.Random(5), 60_000)
    data = text.encode("gb18030")
    path = tmp_path / "line.txt"
    path.write_bytes(data)
    parts = chunks(path, data, 4 * window)
    total = Counter()
    for part in parts:
        total.update(tokenizer.count(part.decode("gb18030")))
    reference = reference_counts([text])
    edges = len(parts) - 1
    difference = sum(((total - reference) + (reference - total)).values())
    assert difference <= 4 * edges  # a split word: at most 2 tokens out, 2 in, per edge


def test_a_3_mb_line_of_letters_is_counted_in_chunks(tmp_path):
    """No newline, no separator: three chunks, every letter counted once, in runs."""
    rng = random.Random(6)
    letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3 << 20))
    (tmp_path / "line.txt").write_text(letters)
    config = Config(db=tmp_path / "db.sqlite", workers=2, chunk_bytes=(5 << 20) // 4)
    assert ingest(config, [tmp_path / "line.txt"]).by_status == {"counted": 1}
    counts = db_counts(config.db)
    assert sum(len(t) * k for t, k in counts.items()) == len(letters)
    assert max(map(len, counts)) == MAX_RUN_CHARS
