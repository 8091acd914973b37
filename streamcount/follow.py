"""Followed growing files (`follow = true` on a watch entry): lines counted as they arrive.

A followed file is one identity, (dev, inode), whose offset moves on: the
complete lines (up to the last newline) past the offset are read, counted,
and the new offset goes into the same merge as their counts (store.Advance),
refused unless the ledger's offset is where the range starts. After any
crash counting resumes exactly where the totals stop.

Told apart, at each sighting (an inotify modify event, or the rescan):

- the same inode at another path (renamed within the tree) -> its offset kept;
- the file shorter than its offset, or its first bytes changed (copytruncate,
  an inode reused by a new file) -> counted again from its start;
- a new inode at a path (rename rotation) -> a new file, counted from its start.

A last line without a newline is counted once the file has been idle
`follow_idle_seconds` (by its mtime); text added to that line later is counted
as the next line. Lines are cut at the newline of the file's encoding (2 bytes
in UTF-16), so an offset is always a line start. Reads and counting happen in
the daemon's own process, in slices of READ_BYTES, only for files that
changed: nothing is polled per file.
"""

from __future__ import annotations

import codecs
import heapq
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import longpaths
from .decoding import DecodeFailure, bom_encoding, decode_with, is_wide
from .discovery import regular_stat
from .identity import EDGE_BYTES, fingerprint
from .store import Advance, Store
from .tokens import Tokenizer

log = logging.getLogger(__name__)

READ_BYTES = 1 << 20  # the most read from one file at a time: a backlog never blocks the loop
Add = Callable[[dict[str, int], list[Advance]], None]  # counts, the offsets moved on to
STEP_SECONDS = 0.1  # followed files are read at most this often
NEW = (-1, 0)  # `before` of a file the ledger does not hold yet


@dataclass(slots=True)
class Followed:
    """What is known of one followed file: where its counted lines end."""

    path: str
    dev: int
    inode: int
    before: tuple[int, int]  # (generation, offset) the ledger holds once merges land
    generation: int
    offset: int
    head_len: int
    head: str


def line_end(data: bytes, newline: bytes) -> int:
    """The length of the complete lines at the start of `data` (0 if none), for a
    newline of `newline`'s width, aligned to it (UTF-16: an even offset)."""
    width = len(newline)
    at = data.rfind(newline)
    while at >= 0 and at % width:
        at = data.rfind(newline, 0, at + width - 1)
    return 0 if at < 0 else at + width


def codec_of(head: bytes, configured: str) -> tuple[str, int]:
    """The codec to decode a followed file's ranges with, and the length of its BOM.

    A range starts after the BOM, so a wide encoding is named with its byte order."""
    bom = bom_encoding(head)
    if bom is None:  # a wide encoding without a BOM: little-endian, as Python reads it
        wide = configured != "auto" and is_wide(configured) and "-" not in configured[4:]
        return (f"{configured}-le" if wide else configured), 0
    if bom == "utf-8-sig":
        return ("utf-8" if configured == "auto" else configured), len(codecs.BOM_UTF8)
    order = "le" if head[:2] == codecs.BOM_UTF16_LE else "be"
    width = 4 if bom == "utf-32" else 2
    return f"{bom}-{order}", width


def newline_of(codec: str) -> bytes:
    return "\n".encode(codec) if codec != "auto" and is_wide(codec) else b"\n"


class Follower:
    """Every followed file of the daemon; driven by sightings and the clock."""

    def __init__(self, store: Store, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self.files: dict[tuple[int, int], Followed] = {}
        self.dirty: set[str] = set()  # paths to read, the next step
        self.how: dict[str, tuple[str, str]] = {}  # path -> (encoding, decode_errors)
        self.idle: list[tuple[float, str]] = []  # (wall time, path): look again then
        self.idle_due: dict[str, float] = {}
        self._next_step = 0.0
        self._store = store
        self.reload()

    def reload(self) -> None:
        """Take the offsets the ledger holds (at start, and after a refused merge)."""
        rows = self._store.follows()
        self.files = {(a.dev, a.inode): Followed(a.path, a.dev, a.inode, *a[3:]) for a in rows}

    def seen(self, path: str, encoding: str, decode_errors: str) -> None:
        """`path` (in a followed folder) was written to, created, or found by a scan."""
        self.dirty.add(path)
        self.how[path] = (encoding, decode_errors)

    def step(self, add: Add, tokenizer: Tokenizer) -> None:
        """Read and count what the changed files gained; hand the counts and the
        offsets they move on to `add`. At most every STEP_SECONDS: the lines of a
        busy file are read a few at a time, and all of a step's text is cut at once."""
        if time.monotonic() < self._next_step:
            return
        self._next_step = time.monotonic() + STEP_SECONDS
        now = time.time()
        while self.idle and self.idle[0][0] <= now:
            _, path = heapq.heappop(self.idle)
            due = self.idle_due.get(path)
            if due is not None and due <= now:
                del self.idle_due[path]
                self.dirty.add(path)
        if not self.dirty:
            return
        dirty, self.dirty = self.dirty, set()
        texts: list[str] = []
        advances: list[Advance] = []
        for path in dirty:
            if self._read(path, now, texts, advances):
                self.dirty.add(path)  # more to read: next round
        if advances:  # "\n" between ranges: a partial line never joins the next range
            add(tokenizer.count("\n".join(texts)), advances)

    def _read(self, path: str, now: float, texts: list[str], advances: list[Advance]) -> bool:
        """Count the new complete lines of `path`; True if more is left to read now."""
        st = regular_stat(path)
        if st is None:
            return False
        key = (st.st_dev, st.st_ino)
        f = self.files.get(key)
        if f is None:
            f = self.files[key] = Followed(path, *key, NEW, 0, 0, 0, "")
        encoding, errors = self.how.get(path, ("auto", "replace"))
        try:
            fd = longpaths.open_file(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:
            return False
        try:
            got = _new_lines(fd, f, st, now, self.idle_seconds, encoding)
        except OSError as exc:
            log.warning("%s: cannot read: %s", path, exc.strerror or exc)
            return False
        finally:
            os.close(fd)
        f.path = path
        if got is None:
            return False
        data, codec, offset, head, more, partial = got
        if data:
            try:
                texts.append(decode_with(data, codec, errors).text)
            except DecodeFailure as exc:
                log.warning("%s: bytes to %d not counted: %s", path, offset, exc.reason)
            advances.append(Advance(path, *key, f.before, f.generation, offset, *head))
            f.before = (f.generation, offset)
            f.offset, (f.head_len, f.head) = offset, head
        if partial:
            self._idle_later(path, st.st_mtime + self.idle_seconds)
        return more

    def _idle_later(self, path: str, at: float) -> None:
        if self.idle_due.get(path) != at:
            self.idle_due[path] = at
            heapq.heappush(self.idle, (at, path))


def _new_lines(
    fd: int, f: Followed, st: os.stat_result, now: float, idle_seconds: float, encoding: str
) -> tuple[bytes, str, int, tuple[bytes, str], bool, bool] | None:
    """What `f` gained, read from `fd`: (bytes of whole lines, codec, the offset after
    them, (head bytes, head fingerprint), more to read, a partial last line waits);
    None if nothing. Resets `f` to its start if it was truncated or rewritten."""
    now_st = os.fstat(fd)
    if now_st.st_ino != st.st_ino:
        return None  # replaced since the stat: its own sighting follows
    size = now_st.st_size
    if size < f.offset or (f.head_len and _head(fd, f.head_len) != f.head):
        log.info("%s: truncated or rewritten; counted again from its start", f.path)
        f.generation, f.offset, f.head_len, f.head = f.generation + 1, 0, 0, ""
    if size == f.offset:
        return None
    codec, bom = codec_of(os.pread(fd, 4, 0), encoding)
    start = max(f.offset, bom)
    data = os.pread(fd, min(size - start, READ_BYTES), start)
    if not data:
        return None
    end = line_end(data, newline_of(codec))
    more = start + len(data) < size
    if end == 0 and not more:
        if st.st_mtime + idle_seconds > now:
            return b"", codec, f.offset, (f.head_len, f.head), False, True
        end = len(data)  # idle: the last line without its newline, counted once
    elif end == 0:
        end = len(data)  # a line longer than READ_BYTES: counted in slices
    offset = start + end
    if f.head_len >= EDGE_BYTES:
        head = (f.head_len, f.head)
    else:
        head = (min(offset, EDGE_BYTES), _head(fd, min(offset, EDGE_BYTES)))
    return data[:end], codec, offset, head, more, not more and offset < size


def _head(fd: int, n: int) -> str:
    """The fingerprint of the first `n` bytes: still the same file, not rewritten."""
    return fingerprint(os.pread(fd, n, 0), b"")
