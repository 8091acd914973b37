"""Where text may be cut before the tokenizer, and where it must be. Pure rules.

jieba (and jieba-rs) start a new block at every character outside their word
pattern (CJK ideographs, ASCII letters and digits, `+#&._%-`), so cutting a
text just after such a *separator* gives exactly the tokens of the whole.
Two shapes of hostile text have no separator for a long way:

- a long run of word characters: jieba's HMM is quadratic in it (200,000
  "的" take 120 s) and a Latin run is one token whatever its length. Runs
  longer than MAX_RUN_CHARS are cut every MAX_RUN_CHARS characters from
  their start: the one token such a run gave becomes several. No run in the
  pd199801 corpus is that long (its longest is 961).
- a long line (no newline): a chunk of a large file is found by byte, before
  decoding, so `next_cut` looks for a newline, else an ASCII separator, else
  a character boundary, within MAX_LINE_BYTES; see its docstring for how a
  boundary is found in UTF-8, GB18030 and Big5 without decoding.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import BinaryIO

SEGMENT_CHARS = 1 << 18  # the tokenizer is given ~256k characters at a time
MAX_RUN_CHARS = 1000  # longer runs of word characters are cut every this many
MAX_LINE_BYTES = 1 << 20  # a chunk's edge moves at most this far to find a cut

# Word characters for either engine: jieba's pattern, and jieba-rs's wider CJK ranges.
_WORD = "\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f0-9A-Za-z+#&._%\\-"
_SEPARATOR = re.compile(f"[^{_WORD}]")
_SENTENCE_END = re.compile("[。！？；，]")

# Bytes that are a whole character, and a separator, in UTF-8, GB18030, Big5
# (and Shift_JIS, EUC): their multi-byte characters use none of these bytes.
_ASCII_SEPARATOR = re.compile(rb"[\x00-\x20!\"$'()*,/:;<=>?]")
_ASCII_NOT_DIGIT = re.compile(rb"[\x00-\x2f\x3a-\x7f]")  # a character ends here (legacy)
_TWO_DIGITS = re.compile(rb"[0-9]{2}")
_TWO_HIGH = re.compile(rb"[\x80-\xff]{2}")
_HIGH_TO_ONE = bytes(0 if b < 0x80 else 1 for b in range(256))  # for rfind(b"\0")
_CONTINUATION = re.compile(rb"[^\x80-\xbf]")  # a UTF-8 character starts here


@lru_cache(maxsize=4)
def _long_run(limit: int) -> re.Pattern[str]:
    return re.compile(f"(?<![{_WORD}])[{_WORD}]{{{limit + 1}}}[{_WORD}]*")


def has_long_run(text: str, limit: int = MAX_RUN_CHARS) -> bool:
    """Whether `text` holds a run of more than `limit` word characters."""
    return _long_run(limit).search(text) is not None


def split_long_runs(text: str, limit: int = MAX_RUN_CHARS) -> Iterator[str]:
    """`text` in pieces, cut inside each run longer than `limit`, every `limit`
    characters from the run's start; elsewhere untouched."""
    pos = 0
    for run in _long_run(limit).finditer(text):
        for cut in range(run.start() + limit, run.end(), limit):
            yield text[pos:cut]
            pos = cut
    yield text[pos:] if pos else text


def segments(text: str, size: int = SEGMENT_CHARS, limit: int = MAX_RUN_CHARS) -> Iterator[str]:
    """`text` in pieces for the tokenizer: long runs cut (see split_long_runs), and
    each piece of about `size` to `2 × size` characters ending at a newline, else a
    sentence end, else any separator — places where cutting changes no token.

    After the long runs are cut, a separator (or a piece's end) comes at least
    every `limit` characters, so no piece is much longer than `2 × size`.
    """
    for part in split_long_runs(text, limit):
        yield from _at_separators(part, size)


def _at_separators(text: str, size: int) -> Iterator[str]:
    start = 0
    while len(text) - start > size:
        reach = start + 2 * size
        end = text.find("\n", start + size, reach) + 1
        if end == 0:
            found = _SENTENCE_END.search(text, start + size, reach) or _SEPARATOR.search(
                text, start + size
            )
            if found is None:
                break
            end = found.end()
        yield text[start:end]
        start = end
    yield text[start:] if start else text


def lines_only(encoding: str) -> bool:
    """Encodings whose text can only be cut at a newline: the 7-bit stateful ones
    (ISO-2022, HZ, UTF-7) write multi-byte characters with ASCII bytes."""
    return encoding.lower().replace("_", "-").startswith(("iso-2022", "iso2022", "hz", "utf-7"))


def next_cut(f: BinaryIO, pos: int, encoding: str = "auto", window: int = 0) -> int:
    """The first place at or after `pos` where a file may be cut between chunks.

    Both chunks that meet at `pos` ask this with the same `pos` and get the same
    answer, so every byte is in exactly one chunk. In order, within `window`
    bytes (MAX_LINE_BYTES): just after a newline; just after an ASCII
    separator (a space, a comma, …: whole characters in every ASCII-based
    encoding, and block ends for jieba, so no token changes); the end of the
    file if it is nearer. Otherwise, a line that long with no such byte is
    cut at a character boundary past the window's middle (see `_char_start`):
    the word there is split in two, once per chunk edge. Memory: one window.
    """
    if pos <= 0:
        return 0
    window = window or MAX_LINE_BYTES
    start = pos - 1
    while True:
        f.seek(start)
        data = f.read(window)
        if lines_only(encoding):
            found = data.find(b"\n") + 1
        else:
            found = data.find(b"\n") + 1 or _end_of(_ASCII_SEPARATOR.search(data))
        if found:
            return start + found
        if len(data) < window:
            return start + len(data)  # the end of the file
        cut = None if lines_only(encoding) else _char_start(f, data, start, window // 2)
        if cut is not None:
            return start + cut
        start += window  # GB18030 four-byte characters only: look further


def _end_of(match: re.Match[bytes] | None) -> int:
    return match.end() if match else 0


def _char_start(f: BinaryIO, data: bytes, base: int, mid: int) -> int | None:
    """An index at or after `mid` in `data` (read from `base`) where a character starts.

    UTF-8 (the window decodes as UTF-8): any byte that is not a continuation
    byte. Otherwise GB18030 or Big5, where a byte of 0x80 or more may be
    either half of a pair: after an ASCII byte that is not a digit (it is a
    character or a pair's second half); after two digits (a GB18030
    four-byte character has a digit only every other byte); else after two
    bytes ≥ 0x80, counting pairs from the last byte below 0x80 before them
    (read backwards through the file as far as needed, a block at a time).
    None for text of GB18030 four-byte characters only (no cut in this window).
    """
    if _is_utf8(data):
        return _CONTINUATION.search(data, mid).start()  # type: ignore[union-attr]
    for pattern in (_ASCII_NOT_DIGIT, _TWO_DIGITS):
        found = pattern.search(data, mid)
        if found:
            return found.end()
    found = _TWO_HIGH.search(data, mid)
    if found is None:
        return None
    cut = found.end()
    run_start = _after_last_ascii(f, data, base, cut) - base
    return cut + (cut - run_start) % 2


def _is_utf8(data: bytes) -> bool:
    """Whether `data`, a window cut anywhere in a file, is UTF-8 (ends may be cut)."""
    head = _CONTINUATION.search(data)
    if head is None or head.start() > 3:
        return False
    try:
        data[head.start() :].decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data"
    return True


def _after_last_ascii(f: BinaryIO, data: bytes, base: int, end: int) -> int:
    """The file offset just after the last byte below 0x80 before data[end] (0 if none)."""
    found = data.translate(_HIGH_TO_ONE, b"").rfind(b"\0", 0, end)
    if found >= 0:
        return base + found + 1
    block = 1 << 16
    pos = base
    while pos > 0:
        step = min(block, pos)
        pos -= step
        f.seek(pos)
        found = f.read(step).translate(_HIGH_TO_ONE).rfind(b"\0")
        if found >= 0:
            return pos + found + 1
    return 0
