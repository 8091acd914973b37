"""Differential test: the jieba-rs engine's tokens are jieba's, token for token.

Generated text (Chinese from the corpus or tests/helpers.py, ASCII words
joined by `.-_/:@+#&%`, dotted numbers, dictionary words with ASCII in them,
full-width forms, emoji, CJK Extension A and beyond, whitespace) and real
text read from files installed on this machine (the Python standard library,
/usr/share/doc), alone and with Chinese spliced in, are cut by jieba and by
the jieba-rs engine in each mode and HMM setting, with and without a user
dictionary of punctuated words. A difference is shrunk to the shortest input
that still differs, which the failure prints.
"""

from __future__ import annotations

import logging
import random
import sysconfig
from collections.abc import Callable
from pathlib import Path

import jieba
import pytest

from bench.corpus import CORPUS
from streamcount.config import TokenizerSettings
from streamcount.engines import make_cut

from .helpers import SENTENCES, skip_or_fail

jieba.setLogLevel(logging.WARNING)

SETTINGS = [(mode, hmm) for mode in ("accurate", "search") for hmm in (True, False)]
SEPARATORS = [*list(".-_/:@+#&%"), "..", "++", "://", " ", "", "\t", "\n", "\r\n", "  "]
ASCII_WORDS = [
    "github", "com", "www", "manpages", "zh", "man", "pages", "README", "md", "py",
    "x86_64", "utf8", "e", "mail", "foo", "bar", "iPhone", "ok", "OK", "IT", "io", "v2",
    "C", "c", "AT", "T", "S", "A", "B", "IC", "CD", "PC", "QQ", "U", "K",  # halves of words
    "C++", "c#", "AT&T", "T恤", "A股", "IC卡", "卡拉OK", "4S店", "U盘", "X光", "PC机", "阿Q",
    "node.js", "C++语言", "a-b", "版本0.42",  # the user dictionary's words
]  # fmt: skip
FULL_WIDTH = "，。！？：；“”（）《》、１２３４５ＡＢｃｄ＋－．％＠　"
EMOJI = ["😀", "🎉", "👍🏻", "🇨🇳", "❤️", "©", "™"]
BEYOND_JIEBA = "䶮䶯㐀㑇鿖鿿豈嗀𠀀𪚥𫠠𬺰𰀀"  # Extension A-G, U+9FD6-9FFF, compatibility
USER_DICT = (
    "C++语言 50 nz\nnode.js 20\na-b\n版本0.42 10\n石墨烯\n中国 3\n人民 80000\n"
    "ab\nbc 5\n中国 7\n大 数据 5\n"
)


def _chinese(corpus: str | None) -> Callable[[random.Random], str]:
    text = corpus if corpus else "".join(SENTENCES)
    return lambda rng: text[(i := rng.randrange(len(text))) : i + rng.randint(1, 12)]


def _digits(rng: random.Random) -> str:
    return ".".join(str(rng.randint(0, 120)) for _ in range(rng.randint(1, 4))) + rng.choice(
        ["", "%", "", "x"]
    )


def generated(rng: random.Random, chinese: Callable[[random.Random], str]) -> str:
    """A short random mix of the text kinds that jieba and jieba-rs cut differently."""
    kinds: list[Callable[[], str]] = [
        lambda: chinese(rng),
        lambda: chinese(rng),
        lambda: rng.choice(ASCII_WORDS),
        lambda: rng.choice(ASCII_WORDS) + rng.choice(SEPARATORS) + rng.choice(ASCII_WORDS),
        lambda: rng.choice(SEPARATORS),
        lambda: _digits(rng),
        lambda: rng.choice(FULL_WIDTH),
        lambda: rng.choice(EMOJI),
        lambda: rng.choice(BEYOND_JIEBA),
    ]
    return "".join(rng.choice(kinds)() for _ in range(rng.randint(1, 14)))


def installed_texts(rng: random.Random, limit: int) -> list[str]:
    """Up to `limit` characters of real text from files on this machine, in 2 KB pieces."""
    roots = [Path(sysconfig.get_paths()["stdlib"]), Path("/usr/share/doc")]
    files = sorted(
        p for root in roots if root.is_dir()
        for pattern in ("*.py", "*.txt", "copyright", "README*", "NEWS*")
        for p in root.rglob(pattern) if p.is_file() and p.stat().st_size < 2_000_000
    )  # fmt: skip
    pieces: list[str] = []
    for path in rng.sample(files, min(len(files), 400)):
        text = path.read_text(encoding="utf-8", errors="replace")
        if text:
            start = rng.randrange(len(text))
            pieces.append(text[start : start + 2000])
        if sum(map(len, pieces)) >= limit:
            break
    return pieces


def spliced(rng: random.Random, text: str, chinese: Callable[[random.Random], str]) -> str:
    """Chinese put into real text at random places, often touching a word."""
    parts = [text[i : i + rng.randint(5, 60)] for i in range(0, len(text), 60)]
    return "".join(p + (chinese(rng) if rng.random() < 0.5 else "") for p in parts)


def shrink(text: str, differs: Callable[[str], bool]) -> str:
    """The shortest text found by deleting pieces of `text` that still differs."""
    size = max(1, len(text) // 2)
    while True:
        i, removed = 0, False
        while i < len(text):
            candidate = text[:i] + text[i + size :]
            if candidate and differs(candidate):
                text, removed = candidate, True
            else:
                i += size
        if size == 1 and not removed:
            return text
        if not removed:
            size = max(1, size // 2)


def check_same(
    texts: list[str], expected: Callable[[str], list[str]], actual: Callable[[str], list[str]]
) -> None:
    """Every text cut the same by both, or fail with the shortest differing input."""
    for text in texts:
        if expected(text) != actual(text):
            short = shrink(text, lambda t: expected(t) != actual(t))
            pytest.fail(
                f"jieba and jieba-rs differ on {short!r}:\n"
                f"  jieba    {expected(short)!r}\n  jieba-rs {actual(short)!r}"
            )


def jieba_cut(tok: jieba.Tokenizer, mode: str, hmm: bool) -> Callable[[str], list[str]]:
    if mode == "search":
        return lambda text: list(tok.cut_for_search(text, HMM=hmm))
    return lambda text: list(tok.cut(text, HMM=hmm))


@pytest.fixture(scope="module")
def rjieba():
    try:
        import rjieba
    except ImportError:
        skip_or_fail("rjieba is not installed (pip install rjieba)")
    return rjieba


@pytest.fixture(scope="module")
def chinese() -> Callable[[random.Random], str]:
    """The corpus when it is there (README), else helpers.SENTENCES."""
    return _chinese(CORPUS.read_text(encoding="utf-8")[:2_000_000] if CORPUS.is_file() else None)


@pytest.fixture(scope="module")
def texts(chinese) -> list[str]:
    """The inputs: generated mixes, real installed text, and the two spliced."""
    rng = random.Random(20240614)
    real = installed_texts(rng, 40_000)
    assert len(real) >= 10, "too little installed text to read"
    gen = [generated(rng, chinese) for _ in range(4000)]
    return gen + real + [spliced(rng, t, chinese) for t in real]


@pytest.mark.parametrize(("mode", "hmm"), SETTINGS)
def test_jieba_rs_tokens_are_jiebas(mode, hmm, texts, rjieba):
    rs = make_cut(TokenizerSettings(engine="jieba-rs", mode=mode, hmm=hmm))
    check_same(texts, jieba_cut(jieba.dt, mode, hmm), lambda t: list(rs(t)))


@pytest.mark.parametrize(("mode", "hmm"), SETTINGS)
def test_jieba_rs_tokens_are_jiebas_with_a_user_dictionary(mode, hmm, texts, tmp_path, rjieba):
    """Punctuated words, words jieba's dictionary has (new frequencies, twice),
    words without a frequency, overlapping ASCII words, a word with a space."""
    path = tmp_path / "user.txt"
    path.write_text(USER_DICT, encoding="utf-8")
    tok = jieba.Tokenizer()
    tok.initialize()
    tok.load_userdict(str(path))
    rs = make_cut(TokenizerSettings(engine="jieba-rs", mode=mode, hmm=hmm, user_dict=(path,)))
    check_same(texts[::4], jieba_cut(tok, mode, hmm), lambda t: list(rs(t)))


def test_shrink_finds_the_shortest_differing_input():
    """The shrinker itself: a 'difference' that needs both 'a.b' and '中'."""
    text = "xx中国 yy a.b zz 中 ww" * 3
    assert shrink(text, lambda t: "a.b" in t and "中" in t) in ("a.b中", "中a.b")


@pytest.mark.parametrize("mode", ["accurate", "search"])
def test_without_the_post_pass_the_inputs_differ(mode, texts, rjieba):
    """Not vacuous: raw jieba-rs differs from jieba on many of these inputs
    (with HMM on: ASCII runs, Extension A; with it off, the default dictionary
    gives the same tokens, the user dictionary's "node.js" does not)."""
    expected = jieba_cut(jieba.dt, mode, True)
    raw = rjieba.cut_for_search if mode == "search" else rjieba.cut
    assert sum(expected(t) != raw(t, True) for t in texts[:2000]) > 200
