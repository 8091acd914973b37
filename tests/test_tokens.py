import random
from collections import Counter

import pytest

from streamcount.config import TokenizerSettings
from streamcount.tokens import SEGMENT_CHARS, Tokenizer, is_countable, read_piece, segments
from streamcount.work import FileRef, Piece

from .helpers import make_text, reference_counts


@pytest.mark.parametrize("token", ["北京", "Hello", "123", "a", "C++", "3.11", "Ｂ超"])
def test_countable(token):
    assert is_countable(token)


@pytest.mark.parametrize(
    "token", ["", " ", "\n", "\r\n", "\u3000", "，", "。", "……", "《", "+", "$", "©", "—"]
)
def test_not_countable(token):
    assert not is_countable(token)


@pytest.fixture(scope="module")
def default_tokenizer():
    return Tokenizer(TokenizerSettings())


def test_counts_equal_reference(default_tokenizer):
    text = make_text(random.Random(1), paragraphs=10)
    assert default_tokenizer.count(text) == reference_counts([text])


def test_stopwords_lowercase_min_length(tmp_path):
    stop = tmp_path / "stop.txt"
    stop.write_text("的\nthe\n\n", encoding="utf-8")
    tok = Tokenizer(TokenizerSettings(stopwords=stop, lowercase=True, min_length=2))
    counts = tok.count("The 北京的天气 THE the 好")
    assert "的" not in counts and "the" not in counts and "The" not in counts
    assert "好" not in counts  # shorter than min_length
    assert counts["北京"] == 1


def test_lowercase_merges_case_variants():
    tok = Tokenizer(TokenizerSettings(lowercase=True))
    assert tok.count("Python python PYTHON")["python"] == 3


def test_user_dict_changes_segmentation(tmp_path):
    text = "我们去了石墨烯实验室"
    words = tmp_path / "dict.txt"
    words.write_text("石墨烯实验室 1000 n\n", encoding="utf-8")
    assert "石墨烯实验室" not in Tokenizer(TokenizerSettings()).count(text)
    assert Tokenizer(TokenizerSettings(user_dict=(words,))).count(text)["石墨烯实验室"] == 1


def test_modes_differ():
    text = "中华人民共和国成立了"
    accurate = Tokenizer(TokenizerSettings()).count(text)
    search = Tokenizer(TokenizerSettings(mode="search")).count(text)
    full = Tokenizer(TokenizerSettings(mode="full")).count(text)
    assert accurate["中华人民共和国"] == 1
    assert search["中华"] == 1 and search["中华人民共和国"] == 1
    assert full["共和国"] == 1


def test_line_aligned_chunks_cover_every_line_once(tmp_path):
    lines = [f"第{i}行，" + "字" * (i % 37) + "\n" for i in range(500)]
    data = "".join(lines).encode()
    path = tmp_path / "big.txt"
    path.write_bytes(data)
    ref = FileRef(str(path), len(data), 0, 0)
    for step in (1, 7, 100, 4096, len(data)):
        parts = [
            read_piece(Piece(ref, s, min(s + step, len(data))))[0]
            for s in range(0, len(data), step)
        ]
        assert b"".join(parts) == data
        assert all(p == b"" or p.endswith(b"\n") for p in parts)


def test_chunk_counts_sum_to_whole_file_counts(tmp_path, default_tokenizer):
    text = make_text(random.Random(2), paragraphs=200)
    data = text.encode()
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    ref = FileRef(str(path), len(data), 0, 0)
    total: Counter[str] = Counter()
    for s in range(0, len(data), 1000):
        total.update(default_tokenizer.count(read_piece(Piece(ref, s, s + 1000))[0].decode()))
    assert total == reference_counts([text])


def test_segments_split_at_newlines_and_cover_the_text():
    text = "".join(f"第{i}行" + "字" * (i % 13) + "\n" for i in range(300)) + "没有换行的结尾"
    for size in (1, 10, 100, 10_000):
        parts = list(segments(text, size))
        assert "".join(parts) == text
        assert all(p.endswith("\n") for p in parts[:-1])
    assert list(segments("短", 10)) == ["短"]


def test_long_text_is_counted_in_segments_exactly(default_tokenizer):
    text = make_text(random.Random(5), paragraphs=3000)  # > SEGMENT_CHARS characters
    assert len(text) > SEGMENT_CHARS
    assert default_tokenizer.count(text) == reference_counts([text])


def test_text_without_newlines_is_segmented_at_sentence_ends(default_tokenizer):
    text = make_text(random.Random(6), paragraphs=40).replace("\n", "")
    parts = list(segments(text, 500))
    assert len(parts) > 5 and "".join(parts) == text
    assert all(p[-1] in "。！？；，" for p in parts[:-1])
    total = Counter()
    for part in parts:
        total.update(default_tokenizer.count(part))
    assert total == reference_counts([text])
