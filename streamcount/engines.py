"""Tokenizer engines: jieba (the default) and jieba-rs (the rjieba package).

Each engine turns TokenizerSettings into a `cut(text) -> tokens` function.
jieba-rs is a Rust port of jieba, an order of magnitude faster; with the
post-pass of jiebacompat.py its tokens are jieba's, token for token, in
accurate and search modes with and without HMM, user dictionaries included
(their words get the frequencies jieba gives them). Its full mode differs
from jieba's, and it cannot delete a word as a user dictionary's frequency 0
does in jieba: those are refused rather than silently producing other counts.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import marshal
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from . import jiebacompat
from .config import ConfigError, TokenizerSettings

Cut = Callable[[str], Iterable[str]]
ENGINES = ("jieba", "jieba-rs")

# jieba's own user-dictionary line format: word [freq] [tag]
_USER_DICT_LINE = re.compile(r"^(.+?)( [0-9]+)?( [a-z]+)?$")


def token_identity(settings: TokenizerSettings) -> str:
    """Whose tokens the engine yields, for the database's tokenizer settings.

    "jieba" for both engines: jieba-rs is refused where its tokens are not
    jieba's (full mode, a word deleted by frequency 0) and made equal to
    jieba's everywhere else (jiebacompat.py, tests/test_jiebacompat.py). So
    a database counted with one engine may continue with the other. A
    database counted with jieba-rs before that post-pass existed recorded
    "jieba-rs" here, and is refused: its totals are not jieba's.
    """
    return "jieba"


def check(settings: TokenizerSettings) -> None:
    """Refuse settings an engine cannot honour, before anything is counted."""
    if settings.engine == "jieba-rs":
        if settings.mode == "full":
            raise ConfigError("tokenizer.engine 'jieba-rs' cannot do mode 'full' as jieba does")
        for path in settings.user_dict:
            for word, freq, _ in user_dict_entries(path):
                if freq == 0:
                    raise ConfigError(
                        f"tokenizer.engine 'jieba-rs' cannot delete a word as jieba does with "
                        f"frequency 0 ({word!r} in {path}); use engine 'jieba'"
                    )
        # find_spec, not import: importing rjieba loads its dictionary (~0.1 s),
        # which only the workers need.
        if importlib.util.find_spec("rjieba") is None:
            raise ConfigError(
                "tokenizer.engine 'jieba-rs' needs the rjieba package (pip install rjieba)"
            )


def user_dict_entries(path: Path) -> Iterator[tuple[str, int | None, str | None]]:
    """(word, freq or None, tag or None) for each line of a jieba user dictionary,
    read exactly as jieba's load_userdict reads it (lines split at b"\\n",
    ASCII whitespace stripped, then a byte-order mark), so the words are its words."""
    for raw in path.read_bytes().split(b"\n"):
        line = raw.strip().decode("utf-8").lstrip("\ufeff")
        if not line:
            continue
        word, freq, tag = _USER_DICT_LINE.match(line).groups()  # type: ignore[union-attr]
        yield word, int(freq) if freq else None, tag.strip() if tag else None


def make_cut(settings: TokenizerSettings) -> Cut:
    if settings.engine == "jieba-rs":
        return _jieba_rs(settings)
    return _jieba(settings)


def _jieba_tokenizer() -> Any:
    """jieba's tokenizer with its dictionary loaded.

    jieba keeps its prefix dictionary in a marshal cache in the temporary
    folder, and loads it with `marshal.load` on the open file, which reads
    object by object: 0.45 s, in every worker at every start. Read whole
    first, the same cache loads in 0.13 s. It is the file jieba itself would
    load for a new Tokenizer of the default dictionary, trusted as jieba
    trusts it; if it is missing or unreadable, jieba builds it as before.
    """
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    cache = Path(tempfile.gettempdir()) / "jieba.cache"  # jieba's name for it (0.42.1)
    try:
        tokenizer.FREQ, tokenizer.total = marshal.loads(cache.read_bytes())
        tokenizer.initialized = True
    except (OSError, EOFError, ValueError, TypeError):
        tokenizer.initialize()
    return tokenizer


def _jieba(settings: TokenizerSettings) -> Cut:
    tokenizer = _jieba_tokenizer()
    for path in settings.user_dict:
        tokenizer.load_userdict(str(path))
    hmm = settings.hmm
    if settings.mode == "search":
        return lambda text: tokenizer.cut_for_search(text, HMM=hmm)
    full = settings.mode == "full"
    return lambda text: tokenizer.cut(text, cut_all=full, HMM=hmm)


def _jieba_rs(settings: TokenizerSettings) -> Cut:
    import rjieba

    # Importing rjieba builds a tokenizer with the default dictionary (its
    # module-level functions); building another costs ~0.1 s per worker, so
    # only do it to add user words, which then stay private to it.
    rs: Any = rjieba
    jieba_tok: Any = None
    if settings.user_dict:
        rs = rjieba.Jieba()
        jieba_tok = _add_user_words(rs, settings.user_dict)
    search = settings.mode == "search"

    @functools.cache
    def jieba_block() -> jiebacompat.Cut:
        tok = jieba_tok or _jieba_tokenizer()
        if search:
            return lambda block: list(tok.cut_for_search(block, HMM=True))
        return lambda block: list(tok.cut(block, HMM=True))

    @functools.cache
    def ascii_words() -> re.Pattern[str] | None:
        return jiebacompat.ascii_words_pattern(_dictionary_words(jieba_tok))

    return jiebacompat.CompatCut(rs, settings.hmm, search, ascii_words, jieba_block)


def _add_user_words(rs: Any, paths: Iterable[Path]) -> Any:
    """Add the user dictionaries' words to jieba-rs with the frequencies jieba
    gives them, and jieba's dictionary total; returns that jieba tokenizer.

    Why not jieba-rs's own frequencies: its suggested frequency (a word given
    without one) is computed differently, and where a user word redefines a
    word jieba adds the new frequency to the total without taking off the old
    one, where jieba-rs does; the total weighs every route. The old
    frequencies go to a word no block can hold ("\\n"), so both totals agree.
    """
    tok = _jieba_tokenizer()
    uncounted = 0
    for path in paths:
        for word, freq, tag in user_dict_entries(path):
            uncounted += tok.FREQ.get(word, 0)
            tok.add_word(word, freq, tag)
            rs.add_word(word, tok.FREQ[word], tag)
    if uncounted:
        rs.add_word("\n", uncounted, None)
    return tok


def _dictionary_words(jieba_tok: Any) -> Iterable[str]:
    """The words of jieba's dictionary (and the user's, when loaded in jieba_tok)
    that hold an ASCII block character: those ascii_words_pattern looks for.

    Without a user dictionary they are found by one scan of jieba's dict.txt
    (~0.03 s; listing all 349,046 words and testing each took ~0.1 s, in
    every worker, before its first text with ASCII in it was counted)."""
    if jieba_tok is not None:
        return (w for w, f in jieba_tok.FREQ.items() if f)
    spec = importlib.util.find_spec("jieba")  # its path: importing it takes ~0.05 s
    assert spec is not None and spec.origin is not None, "jieba is a dependency"
    text = (Path(spec.origin).parent / "dict.txt").read_text(encoding="utf-8")
    return jiebacompat.ASCII_WORD_LINE.findall(text)
