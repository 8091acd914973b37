"""Tokenizer engines: jieba (the default) and jieba-rs (the rjieba package).

Each engine turns TokenizerSettings into a `cut(text) -> tokens` function.
jieba-rs is a Rust port of jieba that gives the same tokens in accurate and
search modes, an order of magnitude faster; its full mode differs from
jieba's, so that combination is refused rather than silently producing
other counts.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .config import ConfigError, TokenizerSettings

Cut = Callable[[str], Iterable[str]]
ENGINES = ("jieba", "jieba-rs")

# jieba's own user-dictionary line format: word [freq] [tag]
_USER_DICT_LINE = re.compile(r"^(.+?)( [0-9]+)?( [a-z]+)?$")


def check(settings: TokenizerSettings) -> None:
    """Refuse settings an engine cannot honour, before anything is counted."""
    if settings.engine == "jieba-rs":
        if settings.mode == "full":
            raise ConfigError("tokenizer.engine 'jieba-rs' cannot do mode 'full' as jieba does")
        # find_spec, not import: importing rjieba loads its dictionary (~0.1 s),
        # which only the workers need.
        if importlib.util.find_spec("rjieba") is None:
            raise ConfigError(
                "tokenizer.engine 'jieba-rs' needs the rjieba package (pip install rjieba)"
            )


def user_dict_entries(path: Path) -> Iterator[tuple[str, int | None, str | None]]:
    """(word, freq or None, tag or None) for each line of a jieba user dictionary."""
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        line = line.strip()
        if not line:
            continue
        word, freq, tag = _USER_DICT_LINE.match(line).groups()  # type: ignore[union-attr]
        yield word, int(freq) if freq else None, tag.strip() if tag else None


def make_cut(settings: TokenizerSettings) -> Cut:
    if settings.engine == "jieba-rs":
        return _jieba_rs(settings)
    return _jieba(settings)


def _jieba(settings: TokenizerSettings) -> Cut:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
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
    # module-level cut functions); building another costs ~0.1 s per worker,
    # so only do it to add user words, which then stay private to it.
    engine = rjieba
    if settings.user_dict:
        engine = rjieba.Jieba()
        for path in settings.user_dict:
            for word, freq, tag in user_dict_entries(path):
                engine.add_word(word, freq, tag)
    cut = engine.cut_for_search if settings.mode == "search" else engine.cut
    hmm = settings.hmm
    return lambda text: cut(text, hmm)
