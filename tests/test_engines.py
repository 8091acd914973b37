"""Tokenizer engines: jieba-rs must count exactly as jieba does, where it can."""

import random
from collections import Counter

import pytest

from streamcount.config import Config, ConfigError, TokenizerSettings
from streamcount.engines import check, user_dict_entries
from streamcount.ingest import ingest
from streamcount.tokens import Tokenizer, is_countable

from .helpers import SENTENCES, db_counts, make_text, skip_or_fail


@pytest.fixture
def rjieba():
    """The tests that run jieba-rs need it (`make test` installs it)."""
    try:
        import rjieba
    except ImportError:
        skip_or_fail("rjieba is not installed (pip install rjieba)")
    return rjieba


def test_user_dict_format(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_text("\ufeff石墨烯 10 n\n云计算\n大 数据 5\n\n人工智能 7\n", encoding="utf-8")
    assert list(user_dict_entries(path)) == [
        ("石墨烯", 10, "n"), ("云计算", None, None), ("大 数据", 5, None), ("人工智能", 7, None),
    ]  # fmt: skip


def test_full_mode_is_refused_for_jieba_rs():
    with pytest.raises(ConfigError, match="cannot do mode 'full'"):
        check(TokenizerSettings(engine="jieba-rs", mode="full"))
    check(TokenizerSettings(engine="jieba-rs", mode="search"))


CHINESE = [s for s in SENTENCES if not any(c.isascii() and c.isalnum() for c in s)]


@pytest.mark.parametrize("mode", ["accurate", "search"])
@pytest.mark.parametrize("hmm", [True, False])
def test_jieba_rs_counts_like_jieba_on_chinese_text(mode, hmm, rjieba):
    rng = random.Random(3)
    text = "\n".join("".join(rng.choice(CHINESE) for _ in range(5)) for _ in range(40))
    a = Tokenizer(TokenizerSettings(mode=mode, hmm=hmm)).count(text)
    b = Tokenizer(TokenizerSettings(engine="jieba-rs", mode=mode, hmm=hmm)).count(text)
    assert a == b


def test_known_difference_dotted_numbers_with_hmm(rjieba):
    """jieba-rs is another tokenizer: its totals are kept apart (the engine is part
    of the database's tokenizer settings). One difference found here: with HMM on,
    jieba cuts "0.42.1" as 0.42 / . / 1 and jieba-rs keeps it whole."""
    text = "jieba 0.42.1 版本"
    assert "0.42.1" not in Tokenizer(TokenizerSettings()).count(text)
    assert Tokenizer(TokenizerSettings(engine="jieba-rs")).count(text)["0.42.1"] == 1


def test_jieba_rs_user_dict_like_jieba(tmp_path, rjieba):
    words = tmp_path / "dict.txt"
    words.write_text("石墨烯实验室 1000 n\n我们去\n", encoding="utf-8")
    text = "我们去了石墨烯实验室，看见石墨烯实验室的门。"
    a = Tokenizer(TokenizerSettings(user_dict=(words,))).count(text)
    b = Tokenizer(TokenizerSettings(engine="jieba-rs", user_dict=(words,))).count(text)
    assert a == b and a["石墨烯实验室"] == 2


def test_ingest_with_jieba_rs_equals_reference(tmp_path, rng, rjieba):
    texts = [make_text(rng) for _ in range(30)]
    for i, text in enumerate(texts):
        (tmp_path / f"{i}.txt").write_text(text, encoding="utf-8")
    rs = TokenizerSettings(engine="jieba-rs")
    config = Config(db=tmp_path / "db.sqlite", workers=2, tokenizer=rs)
    assert ingest(config, [tmp_path]).by_status == {"counted": 30}
    ref = Counter(t for x in texts for t in rjieba.cut(x) if is_countable(t))
    assert db_counts(config.db) == ref
