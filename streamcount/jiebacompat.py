"""jieba-rs's tokens made equal to jieba's, token for token, where the two differ.

jieba (Python) and jieba-rs share the dictionary, the DAG, the route and the
HMM; on Chinese they agree. They differ on what is not Chinese (read in both
sources, and found by tests/test_jiebacompat.py), in two ways:

1. Which characters make a block. jieba cuts maximal runs of
   `[\u4e00-\u9fd5a-zA-Z0-9+#&._%-]` and yields every other character alone.
   jieba-rs's runs also take CJK Extension A and beyond, U+9FD6-U+9FFF and the
   compatibility ideographs (`X` below), which then join their neighbours in
   its DAG and HMM ("㑇鿖" is one token). Rule: cut the text at X characters
   first and yield each alone, as jieba does.
2. HMM on only: the ASCII inside a run of single-character words that goes to
   the HMM. jieba's finalseg splits it with `re_skip`
   (`[a-zA-Z0-9]+(?:\\.\\d+)?%?`): "github.com" is github . com, "0.42.1" is
   0.42 . 1; jieba-rs keeps such runs whole. Rule: re-split each ASCII run with
   re_skip. That is exact when every ASCII character of the block is a
   one-character word of the route, which holds unless a dictionary word with
   ASCII in it ("C++", "AT&T", "T恤", "A股", a user's word) occurs in the block:
   such blocks (rare) are cut by jieba itself.
3. Search mode: jieba-rs adds the ASCII words inside a longer token ("node.js"
   gives node, js, node.js); jieba adds only the 2- and 3-grams that are
   dictionary words. Rule: the grams of tokens with ASCII are jieba's
   (search_grams).

Only runs that hold ASCII or X characters are looked at (one regex scan finds
them); the rest of the text goes to jieba-rs untouched, so it stays fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

Cut = Callable[[str], list[str]]

_HAN = "\u4e00-\u9fd5"  # jieba's Han range (re_han_default, finalseg.re_han)
_ASCII = "a-zA-Z0-9+#&._%\\-"  # the rest of jieba's block characters
# More than jieba-rs puts in a block, never a character jieba does: cutting at
# a character outside jieba's blocks is always exact, so this may be generous.
_X = "\u3400-\u4dbf\u9fd6-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
_R = _HAN + _ASCII + _X  # jieba-rs's block characters (within this)

# A character that makes its jieba-rs block need the post-pass: found by a
# plain character-class scan (fast); its block is then found around it.
DIRTY_HMM = re.compile(f"[{_ASCII}{_X}]")
DIRTY_NO_HMM = re.compile(f"[{_X}]")
R_CHAR = re.compile(f"[{_R}]")
R_RUN = re.compile(f"[{_R}]*+")
X_SPLIT = re.compile(f"([{_X}])")  # keeps each X character as a piece
ASCII_CHAR = re.compile(f"[{_ASCII}]")
# A line of jieba's dict.txt ("word freq tag") whose word holds an ASCII character.
ASCII_WORD_LINE = re.compile(f"^([^ \\n]*[{_ASCII}][^ \\n]*) ", re.M)
RE_SKIP = re.compile(r"([a-zA-Z0-9]+(?:\.\d+)?%?)")  # jieba.finalseg.re_skip


def ascii_words_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    """A regex finding any of the dictionary words that hold an ASCII block
    character (rule 2's exception), or None if there are none."""
    found = sorted({w for w in words if ASCII_CHAR.search(w)}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, found))) if found else None


def skip_split(run: str) -> list[str]:
    """An ASCII run cut as jieba's finalseg cuts it (rule 2)."""
    return [x for x in RE_SKIP.split(run) if x]


def fix_hmm_tokens(tokens: Iterable[str]) -> list[str]:
    """jieba-rs's HMM-mode tokens of one block with no ASCII dictionary word:
    each ASCII run (its consecutive ASCII tokens) re-split with re_skip."""
    out: list[str] = []
    run = ""
    for token in tokens:
        if token.isascii():
            run += token
            continue
        if run:
            out += skip_split(run)
            run = ""
        out.append(token)
    if run:
        out += skip_split(run)
    return out


def search_grams(tokens: Iterable[str], has_word: Callable[[str], bool]) -> Iterator[str]:
    """jieba's cut_for_search over accurate-mode tokens: the 2- and 3-grams of
    longer tokens that are dictionary words, then the token."""
    for w in tokens:
        n = len(w)
        if n > 2:
            yield from (w[i : i + 2] for i in range(n - 1) if has_word(w[i : i + 2]))
        if n > 3:
            yield from (w[i : i + 3] for i in range(n - 2) if has_word(w[i : i + 3]))
        yield w


class CompatCut:
    """`cut(text)` with jieba-rs, equal to jieba's accurate or search mode.

    `rs` is a rjieba tokenizer; `ascii_words()` the regex of its dictionary
    words with ASCII (ascii_words_pattern); `jieba_block()` jieba's own cut for
    the rare blocks that hold one. Both are called only when needed (they read
    jieba's dictionary), and should cache what they return.
    """

    def __init__(
        self, rs: Any, hmm: bool, search: bool,
        ascii_words: Callable[[], re.Pattern[str] | None], jieba_block: Callable[[], Cut],
    ) -> None:  # fmt: skip
        self.hmm = hmm
        self.search = search
        self.has_word = rs.has_word
        self.rs_accurate = rs.cut
        self.rs_cut = rs.cut_for_search if search else rs.cut
        self.dirty = DIRTY_HMM if hmm or search else DIRTY_NO_HMM
        self.ascii_words = ascii_words
        self.jieba_block = jieba_block

    def __call__(self, text: str) -> list[str]:
        found = self.dirty.search(text)
        if found is None:
            return self.rs_cut(text, self.hmm)
        return self._by_blocks(text, found)

    def _dirty_blocks(self, text: str, found: re.Match[str] | None) -> Iterator[tuple[int, int]]:
        """(start, end) of each block of `text` that holds a dirty character,
        from the first one `found`."""
        pos = 0
        while found is not None:
            start = found.start()  # back to where its block starts
            while start > pos and R_CHAR.match(text, start - 1):
                start -= 1
            pos = R_RUN.match(text, found.end()).end()
            yield start, pos
            found = self.dirty.search(text, pos)

    def _by_blocks(self, text: str, found: re.Match[str]) -> list[str]:
        """Clean stretches cut by jieba-rs, each dirty block by the rules."""
        out: list[str] = []
        pos = 0
        for start, end in self._dirty_blocks(text, found):
            if start > pos:
                out += self.rs_cut(text[pos:start], self.hmm)
            out += self._dirty_block(text[start:end])
            pos = end
        if pos < len(text):
            out += self.rs_cut(text[pos:], self.hmm)
        return out

    def _dirty_block(self, block: str) -> list[str]:
        """One jieba-rs block with ASCII or X characters, cut as jieba cuts it."""
        out: list[str] = []
        for i, piece in enumerate(X_SPLIT.split(block)):
            if i % 2:  # an X character: outside jieba's blocks (rule 1)
                out.append(piece)
            elif piece:
                out += self._jieba_block(piece)
        return out

    def _jieba_block(self, block: str) -> list[str]:
        """One of jieba's blocks (rules 2 and 3)."""
        if not ASCII_CHAR.search(block):
            return self.rs_cut(block, self.hmm)
        if not self.hmm:
            tokens = self.rs_accurate(block, False)
        elif self._has_ascii_word(block):
            return self.jieba_block()(block)
        else:
            tokens = self._hmm_ascii(block)
        return list(search_grams(tokens, self.has_word)) if self.search else tokens

    def _has_ascii_word(self, block: str) -> bool:
        """Whether a dictionary word with ASCII occurs in the block (rule 2's
        exception: jieba itself cuts it)."""
        words = self.ascii_words()
        return words is not None and words.search(block) is not None

    def _hmm_ascii(self, block: str) -> list[str]:
        """Rule 2 for a block with no ASCII dictionary word. A block of ASCII
        alone is one ASCII run: re-split without asking jieba-rs at all."""
        if block.isascii():
            return skip_split(block)
        return fix_hmm_tokens(self.rs_accurate(block, True))
