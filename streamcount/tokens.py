"""Worker side: read, decode, tokenize, filter and count.

`init_worker` runs once in each pool process (loads jieba and the user
dictionaries); `count_task` is the top-level, picklable function the pool calls.
The filter is pure and shared with the tests' reference count.
"""

from __future__ import annotations

import ctypes
import io
import os
import signal
import stat
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from . import failpoints, longpaths
from .compressed import CORRUPT_ERRORS, TextStream, compression_of, decompressing
from .config import TokenizerSettings
from .decoding import DecodeFailure, decode_with, replaced_reason
from .engines import make_cut
from .identity import FileId, file_id, fingerprint_of, read_fingerprint
from .textbounds import SEGMENT_CHARS, has_long_run, next_cut, segments
from .work import (
    CHANGED,
    COUNTED,
    FAILED,
    SKIPPED,
    VANISHED,
    FileRef,
    Piece,
    PieceResult,
    Task,
    TaskResult,
)

_PUNCT_OR_SYMBOL = frozenset("PS")
_UNSEEN = object()


def is_countable(token: str) -> bool:
    """False for tokens that are all whitespace, or all punctuation and symbols, or that
    hold U+FFFD (bytes that did not decode: never part of a word, whatever the engine)."""
    if not token or token.isspace() or "\ufffd" in token:
        return False
    return not all(unicodedata.category(ch)[0] in _PUNCT_OR_SYMBOL for ch in token)


def load_stopwords(path: Path | None, lowercase: bool) -> frozenset[str]:
    """One word a line, UTF-8; blank lines ignored."""
    if path is None:
        return frozenset()
    words = (line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines())
    return frozenset((w.lower() if lowercase else w) for w in words if w)


class Tokenizer:
    """The configured engine, plus the token filter, memoized per distinct token."""

    def __init__(self, settings: TokenizerSettings) -> None:
        self.settings = settings
        self.cut = make_cut(settings)  # text -> the engine's raw tokens
        self._stopwords = load_stopwords(settings.stopwords, settings.lowercase)
        self._normal: dict[str, str | None] = {}  # token -> as counted, or None

    def normalize(self, token: str) -> str | None:
        """The token as counted (lowercased if configured), or None if filtered out."""
        s = self.settings
        word = token.lower() if s.lowercase else token
        if len(word) < s.min_length or word in self._stopwords or not is_countable(word):
            return None
        return word

    def count(self, text: str) -> dict[str, int]:
        """Filtered token counts of `text`."""
        tally = Tally()
        self.add(tally, text)
        return self.finish(tally)

    def add(self, tally: Tally, text: str) -> int:
        """Add the raw tokens of `text` to `tally`; return how many of them pass the filter.

        The hot path. Counting is Counter.update (C). Only tokens new to this
        tally are looked at in Python (a dict keeps insertion order, so they
        are its last keys), to memoize the filter's verdict on them. The
        tokens that this text adds but the filter drops are the growth of the
        few dropped tokens' counts. A long text is cut a segment at a time,
        so a worker never holds more than a segment's token objects, and
        long runs of word characters are cut (see textbounds).
        """
        if len(text) <= SEGMENT_CHARS and not has_long_run(text):  # most files
            return self._add(tally, text)
        return sum(self._add(tally, segment) for segment in segments(text))

    def _add(self, tally: Tally, text: str) -> int:
        tokens = self.cut(text)
        if not isinstance(tokens, list):
            tokens = list(tokens)
        raw, dropped, memo = tally.raw, tally.dropped, self._normal
        keys_before = len(raw)
        dropped_before = sum(map(raw.__getitem__, dropped))
        raw.update(tokens)
        for token in islice(reversed(raw.keys()), len(raw) - keys_before):
            word = memo.get(token, _UNSEEN)
            if word is _UNSEEN:
                word = memo[token] = self.normalize(token)
            if word is None:
                dropped.append(token)
        return len(tokens) - (sum(map(raw.__getitem__, dropped)) - dropped_before)

    def add_counts(self, tally: Tally, counts: dict[str, int]) -> None:
        """Add counts `finish` gave (of a compressed file, counted apart) to a raw
        tally. Such a word is its own normal form, and passes the filter."""
        raw, memo = tally.raw, self._normal
        for word, k in counts.items():
            raw[word] += k
            memo.setdefault(word, word)

    def finish(self, tally: Tally) -> dict[str, int]:
        """The filtered counts of the raw tokens gathered by `add` (consumes `tally`)."""
        raw = tally.raw
        if not self.settings.lowercase:  # filtering only drops tokens
            for token in tally.dropped:
                del raw[token]
            return dict(raw)
        out: dict[str, int] = {}
        for token, k in raw.items():
            word = self._normal[token]
            if word is not None:
                out[word] = out.get(word, 0) + k
        return out


class Tally:
    """One task's raw token counts, and which of its tokens the filter drops."""

    __slots__ = ("dropped", "raw")

    def __init__(self) -> None:
        self.raw: Counter[str] = Counter()
        self.dropped: list[str] = []


class FileChanged(Exception):
    """The path no longer names the file that was planned, or it changed while read."""


def read_piece(piece: Piece) -> tuple[bytes, FileId]:
    """The bytes of a whole file, or of a chunk: from the first cut at or after
    `start` to the first at or after `end` (textbounds.next_cut: a line end, or
    a safe place in a very long line); and the identity of the file read.

    The identity is the open file's (fstat before reading, checked again
    after): the ledger records exactly the bytes counted. A file replaced
    before it was opened (another inode), changed while read, or, for a
    chunk, changed since its chunks were planned, raises FileChanged: it is
    counted again later, never half. Opened non-blocking and checked to be
    a regular file, so a FIFO or device dropped into the inbox cannot hang a
    worker.
    """
    ref = piece.file
    fd, st = _open_planned(ref)
    try:
        if piece.end is None:
            data = _read_all(fd, st.st_size)
            mark = fingerprint_of(data)
        else:
            if ref.inode and (st.st_size, st.st_mtime_ns) != (ref.size, ref.mtime_ns):
                raise FileChanged("changed after it was found, before its chunks were read")
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = _read_lines(f, piece.start, piece.end, ref.encoding)
            mark = read_fingerprint(fd, st.st_size)
        after = os.fstat(fd)
        whole_read = piece.end is not None or len(data) == st.st_size
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns) or not whole_read:
            raise FileChanged("changed while it was being read")
        return data, file_id(st, mark)
    finally:
        os.close(fd)


def _open_planned(ref: FileRef) -> tuple[int, os.stat_result]:
    """The file `ref` names, opened non-blocking, and its fstat; DecodeFailure if it
    is not a regular file, FileChanged if the path names another file now."""
    fd = longpaths.open_file(ref.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DecodeFailure(SKIPPED, "not a regular file")
        if ref.inode and (st.st_ino, st.st_dev) != (ref.inode, ref.dev or st.st_dev):
            raise FileChanged("replaced by another file before it was read")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def decompress_into(
    raw: BinaryIO, ref: FileRef, add: Callable[[str], int]
) -> tuple[int, TextStream]:
    """Decompress and decode `raw` (the compressed bytes of `ref`) as a stream,
    giving its text to `add` a block at a time; corrupt or truncated data
    raises DecodeFailure (`failed`, with the decompressor's reason)."""
    suffix = compression_of(ref.path)
    assert suffix is not None
    stream = TextStream(decompressing(raw, suffix), ref.encoding, ref.decode_errors)
    try:
        return sum(add(text) for text in stream), stream
    except CORRUPT_ERRORS as exc:
        reason = f"corrupt or truncated {suffix} data: {exc or type(exc).__name__}"
        raise DecodeFailure(FAILED, reason) from None


def read_compressed(ref: FileRef, add: Callable[[str], int]) -> tuple[int, TextStream, FileId]:
    """Decompress and decode the file `ref` as a stream, giving its text to `add` a
    block at a time (see compressed.TextStream); return what `add` returned in
    all, the stream (encoding, bytes, replaced) and the identity of the
    compressed file on disk. Corrupt or truncated data raises DecodeFailure
    (`failed`, with the decompressor's reason); the caller must then discard
    whatever `add` gathered.
    """
    fd, st = _open_planned(ref)
    try:
        with os.fdopen(fd, "rb", closefd=False) as raw:
            tokens, stream = decompress_into(raw, ref, add)
        mark = read_fingerprint(fd, st.st_size)
        after = os.fstat(fd)
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            raise FileChanged("changed while it was being read")
        return tokens, stream, file_id(st, mark)
    finally:
        os.close(fd)


def _read_all(fd: int, size: int) -> bytes:
    """Everything up to the end: one read of the size stat gave, plus one (if the
    file has grown since the stat: the caller's fstat then refuses it). A short
    read of a regular file is its end, so most files take one read, and no
    1 MiB buffer is allocated to find an end already found."""
    data = os.read(fd, size + 1)
    if len(data) <= size:
        return data
    parts = [data]
    while parts[-1]:
        parts.append(os.read(fd, 1 << 20))
    return b"".join(parts)


def _read_lines(f: BinaryIO, start: int, end: int, encoding: str) -> bytes:
    """From the first cut at or after `start` to the first at or after `end` (see
    textbounds.next_cut: a line end, or a safe place in a very long line)."""
    first = next_cut(f, start, encoding)
    last = next_cut(f, end, encoding)
    if first >= last:
        return b""
    f.seek(first)
    return f.read(last - first)


_tokenizer: Tokenizer | None = None
_hold: Hold | None = None


def init_worker(settings: TokenizerSettings, parent: int) -> None:
    """Pool initializer: die with the parent (pid `parent`), ignore stop signals,
    load jieba once."""
    global _tokenizer
    _die_with(parent)
    # The parent handles SIGINT/SIGTERM and finishes the batches in flight;
    # a Ctrl+C or a service stop must not kill a worker mid-batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _tokenizer = Tokenizer(settings)
    global _hold
    _hold = Hold(_tokenizer)


def _die_with(parent: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before we got here
        os._exit(1)


def count_task(task: Task) -> TaskResult:
    """Count a task in this worker; see `count_pieces`, and `Hold` for a `hold` task."""
    assert _tokenizer is not None and _hold is not None, "init_worker did not run"
    if task.hold:
        return _hold.count(task)
    return count_pieces(_tokenizer, task.id, task.pieces, per_file=task.per_file)


class Hold:
    """A worker's counts of the tasks it counted but has not sent back yet.

    Summing task after task into one tally spares what a tally per task
    costs: filtering each task's whole vocabulary again, and pickling it to
    the parent, which unpickles and sums it again. The parent asks for the
    hold (`hand_over`) when no more work is due, or the hold is old or big
    enough, and merges the counts with the ledger rows of exactly the tasks
    they are of (`handed`). If this process dies, the parent counts those
    tasks again: the hold dies with it, so nothing is counted twice.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.tally = Tally()
        self.ids: list[int] = []

    def count(self, task: Task) -> TaskResult:
        try:
            result = count_pieces(self.tokenizer, task.id, task.pieces, into=self.tally)
        except Spoilt:  # the tally holds part of a piece: drop it, count this task alone
            lost = self.drop()
            result = count_pieces(self.tokenizer, task.id, task.pieces)
            return result._replace(lost=lost)
        except BaseException:  # the parent takes the whole hold as lost (pipeline.py)
            self.drop()
            raise
        self.ids.append(task.id)
        if not task.hand_over:
            return result._replace(held=True)
        tally, handed = self.tally, self.drop()
        return result._replace(counts=self.tokenizer.finish(tally), handed=handed)

    def drop(self) -> tuple[int, ...]:
        """Empty the hold; return the ids of the tasks it was of."""
        ids, self.ids, self.tally = tuple(self.ids), [], Tally()
        return ids


def count_pieces(
    tokenizer: Tokenizer,
    task_id: int,
    pieces: Iterable[Piece],
    loaded: tuple[Loaded, ...] | None = None,
    per_file: bool = False,
    into: Tally | None = None,
) -> TaskResult:
    """Read, decode and count each piece; a piece that fails adds nothing to the total.
    `per_file`: also give each piece's own counts (keep_file_counts). `into`:
    count into that tally (a worker's hold) and give back no counts; then a
    piece that fails inside the tokenizer raises Spoilt (see below).

    `loaded`: the pieces already read elsewhere (`load_piece` on the daemon's
    host, for a cluster worker that cannot see its disks); None reads them here.
    Any exception while counting a piece (a bug, a MemoryError) fails that
    piece alone, with the exception as its reason. One raised inside the
    tokenizer may have left part of that piece in the task's tally, so the
    task is counted again from scratch without it: never half a file.
    """
    pieces = tuple(pieces)
    given_up: dict[int, PieceResult] = {}
    while True:
        try:
            return _count(tokenizer, task_id, pieces, given_up, loaded, per_file, into)
        except _Poisoned as poisoned:
            if into is not None:
                raise Spoilt(poisoned.result.reason) from None
            given_up[poisoned.index] = poisoned.result


class _Poisoned(Exception):
    def __init__(self, index: int, result: PieceResult) -> None:
        self.index, self.result = index, result


class Spoilt(Exception):
    """Counting into a given tally failed inside the tokenizer: part of a piece
    may be in it, so it can no longer be merged."""


# A piece read: its bytes and the identity of the file they are of, or (not
# read) the piece's result already.
Loaded = tuple[bytes, FileId] | PieceResult


def load_piece(piece: Piece) -> Loaded:
    """Read a piece (see read_piece); a piece that cannot be read is its result."""
    try:
        failpoints.hit("worker-read", piece.file.path)
        return read_piece(piece)
    except Exception as exc:
        return _not_read(piece.file.path, exc, 0, None)


def _count(
    tokenizer: Tokenizer,
    task_id: int,
    pieces: tuple[Piece, ...],
    given_up: dict[int, PieceResult],
    loaded: tuple[Loaded, ...] | None,
    per_file: bool = False,
    into: Tally | None = None,
) -> TaskResult:
    assert into is None or not per_file, "a hold keeps no counts per file"
    tally = Tally() if into is None else into
    separate: list[dict[str, int]] = []  # counts kept apart: compressed files, per_file
    results = []
    own: list[dict[str, int]] = []  # per_file: each piece's counts
    for i, piece in enumerate(pieces):
        if per_file:
            own.append({})
        if i in given_up:
            results.append(given_up[i])
            continue
        path = piece.file.path
        got = None if loaded is None else loaded[i]
        if piece.end is None and compression_of(path):
            counts, result = _count_compressed(tokenizer, piece.file, got)
            separate.append(counts)
            if per_file:
                own[-1] = counts
            results.append(result)
            continue
        got = load_piece(piece) if got is None else got
        if isinstance(got, PieceResult):
            results.append(got)
            continue
        data, file = got
        try:
            ref = piece.file
            text, encoding, replaced = decode_with(data, ref.encoding, ref.decode_errors)
        except Exception as exc:
            results.append(_not_read(path, exc, len(data), file))
            continue
        try:
            failpoints.fail("worker-count", path, MemoryError)
            tokens = tokenizer.add(tally, text)
        except Exception as exc:
            raise _Poisoned(i, _failure(path, exc, file)) from None
        reason = replaced_reason(replaced)
        results.append(
            PieceResult(path, COUNTED, reason, len(data), tokens, encoding, file, replaced)
        )
        if per_file:  # this piece's counts, apart
            own[-1] = tokenizer.finish(tally)
            separate.append(own[-1])
            tally = Tally()
    if into is not None:
        for more in separate:
            tokenizer.add_counts(into, more)
        return TaskResult(task_id, {}, tuple(results))
    counts = tokenizer.finish(tally)
    for more in separate:
        for word, k in more.items():
            counts[word] = counts.get(word, 0) + k
    return TaskResult(task_id, counts, tuple(results), tuple(own) if per_file else None)


def _count_compressed(
    tokenizer: Tokenizer, ref: FileRef, got: Loaded | None
) -> tuple[dict[str, int], PieceResult]:
    """A compressed file, counted streaming into a tally of its own: a file that
    turns out corrupt halfway adds nothing (its tally is dropped). `got`: its
    compressed bytes already read by the daemon's host (a Dask cluster), or None
    to read the file here."""
    if isinstance(got, PieceResult):
        return {}, got
    own = Tally()
    file: FileId | None = None

    def add(text: str) -> int:
        return tokenizer.add(own, text)

    try:
        if got is None:
            failpoints.hit("worker-read", ref.path)
            tokens, stream, file = read_compressed(ref, add)
        else:
            packed, file = got
            tokens, stream = decompress_into(io.BytesIO(packed), ref, add)
    except Exception as exc:
        return {}, _not_read(ref.path, exc, 0, file)
    reason = replaced_reason(stream.replaced)
    result = PieceResult(
        ref.path, COUNTED, reason, stream.bytes, tokens, stream.encoding, file, stream.replaced
    )
    return tokenizer.finish(own), result


def _not_read(path: str, exc: Exception, size: int, file: FileId | None) -> PieceResult:
    """The result of a piece that could not be read or decoded: why, by exception."""
    if isinstance(exc, FileNotFoundError):
        return PieceResult(path, VANISHED, "deleted before it was read", 0, 0, "")
    if isinstance(exc, FileChanged):
        return PieceResult(path, CHANGED, str(exc), 0, 0, "")
    if isinstance(exc, DecodeFailure):
        return PieceResult(path, exc.status, exc.reason, size, 0, "", file)
    if isinstance(exc, OSError):
        return PieceResult(path, FAILED, f"unreadable: {exc.strerror or exc}", 0, 0, "")
    return _failure(path, exc, file)


def _failure(path: str, exc: Exception, file: FileId | None) -> PieceResult:
    """A piece failed by an unexpected exception: the exception is the reason."""
    reason = f"error while counting: {type(exc).__name__}: {exc}".rstrip(": ")
    return PieceResult(path, FAILED, reason, 0, 0, "", file)
