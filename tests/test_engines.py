"""Tokenizer engines: jieba-rs counts exactly as jieba does, or is refused."""

import json
import random
import sqlite3
from collections import Counter

import jieba
import pytest

from streamcount.config import Config, ConfigError, TokenizerSettings
from streamcount.engines import ENGINES, check, user_dict_entries
from streamcount.ingest import ingest
from streamcount.store import Store, StoreError
from streamcount.tokens import Tokenizer, is_countable

from .helpers import SENTENCES, db_counts, make_text, reference_counts, skip_or_fail


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


@pytest.mark.parametrize("mode", ["accurate", "search"])
def test_the_issue_14_differences_are_gone(mode, rjieba):
    """What differed (issue 14): jieba-rs kept 0.42.1, github.com, manpages-zh
    whole; now it cuts them as jieba does (tests/test_jiebacompat.py for all)."""
    text = "jieba 0.42.1 版本，见 github.com/man-pages-zh 和 manpages-zh；C++、AT&T、T恤。"
    a = Tokenizer(TokenizerSettings(mode=mode)).count(text)
    b = Tokenizer(TokenizerSettings(engine="jieba-rs", mode=mode)).count(text)
    assert a == b and a["0.42"] == 1 and a["C++"] == 1


def test_a_user_word_deleted_by_frequency_0_is_refused_for_jieba_rs(tmp_path):
    words = tmp_path / "dict.txt"
    words.write_text("石墨烯 5\n中国 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot delete a word"):
        check(TokenizerSettings(engine="jieba-rs", user_dict=(words,)))
    check(TokenizerSettings(user_dict=(words,)))


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
    assert db_counts(config.db) == reference_counts(texts)  # jieba's, the oracle


@pytest.mark.parametrize("mode", ["accurate", "search"])
def test_a_database_continues_with_the_other_engine_and_back(tmp_path, mode, rjieba):
    """jieba, then jieba-rs, then jieba again on one database: each run counts
    its new files, and the totals are jieba's reference of all of them."""
    rng = random.Random(14)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    texts: list[str] = []
    for engine in ("jieba", "jieba-rs", "jieba"):
        for _ in range(4):
            texts.append(make_text(rng) + " see github.com/a-b 0.42.1 C++ 䶮中国\n")
            (inbox / f"{len(texts)}.txt").write_text(texts[-1], encoding="utf-8")
        settings = TokenizerSettings(engine=engine, mode=mode)
        config = Config(db=tmp_path / "db.sqlite", workers=1, tokenizer=settings)
        assert ingest(config, [inbox]).by_status == {"counted": 4}
    cut = jieba.cut_for_search if mode == "search" else jieba.cut
    assert db_counts(config.db) == Counter(t for x in texts for t in cut(x) if is_countable(t))


def test_a_database_counted_by_jieba_rs_before_the_post_pass_is_refused(tmp_path, rjieba):
    """Its tokenizer settings say engine "jieba-rs": its totals are not jieba's,
    so it must not be continued as if they were (README, Tokenizer engines)."""
    (tmp_path / "a.txt").write_text("见 github.com 网站\n", encoding="utf-8")
    config = Config(db=tmp_path / "db.sqlite", workers=1)
    ingest(config, [tmp_path / "a.txt"])
    with sqlite3.connect(config.db) as conn:
        (stored,) = conn.execute("SELECT value FROM meta WHERE key = 'tokenizer'").fetchone()
        old = {**json.loads(stored), "engine": "jieba-rs"}
        conn.execute("UPDATE meta SET value = ? WHERE key = 'tokenizer'", (json.dumps(old),))
    for engine in ENGINES:
        settings = TokenizerSettings(engine=engine)
        refused = "counted by jieba-rs before it was made to give jieba's tokens"
        with pytest.raises(StoreError, match=refused):
            Store.open_writer(config.db, settings).close()


def test_jieba_loads_its_own_cache_or_builds_it(tmp_path, monkeypatch):
    """jieba's dictionary cache is read whole (engines._jieba_tokenizer); where it
    is damaged (or missing), jieba builds it as it always did: the same dictionary."""
    import tempfile

    from streamcount.engines import _jieba_tokenizer

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # jieba's cache folder
    cache = tmp_path / "jieba.cache"
    cache.write_bytes(b"\xffnot marshal")
    built = _jieba_tokenizer()  # jieba builds the dictionary, and writes the cache again
    assert cache.stat().st_size > 1_000_000
    loaded = _jieba_tokenizer()
    assert (loaded.FREQ, loaded.total) == (built.FREQ, built.total) and loaded.initialized
    sentence = SENTENCES[0]
    assert list(loaded.cut(sentence)) == list(jieba.cut(sentence))
