"""What the ledger knows of each path and inode, and so what a file just seen is.

The one notion of file identity that the daemon and `ingest` share. A
ledger row covers exactly one identity (see identity.py), not a path:

- the same path, the same file, unchanged            -> nothing to do
- a counted file under a new name, its old name gone -> `moved`, nothing counted
- a second name of a counted file (a hard link)      -> `linked`, nothing counted
- a counted file that grew, its counted bytes intact -> nothing counted (appended)
- anything else: a new file, also at a path counted before (rotation,
  rename-over, delete and recreate, a rewrite), or in a reused inode -> counted
- a file whose path or inode is in flight            -> decided after that merge
- a forgotten file (`streamcount forget`), as it was or grown (the same
  dev, inode and first bytes at the path)             -> nothing to do

Files are in flight from the moment they are handed to the pipeline until
their merge (or until they come back uncounted), so a file renamed while
it is being counted is recognised too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from . import longpaths
from .discovery import file_ref
from .identity import FileId, path_fingerprint, stat_key
from .store import LedgerRow
from .work import COUNTED, FORGOTTEN, LINKED, MOVED

if TYPE_CHECKING:
    from .pipeline import Pipeline

COUNT, SKIP, APPENDED, WAIT = "count", "skip", "appended", "wait"
HOLDING = frozenset({COUNTED, MOVED})  # rows that say where a file's counted bytes are


class Verdict(NamedTuple):
    action: str  # COUNT, SKIP, APPENDED, WAIT, or the ledger status MOVED / LINKED
    reason: str = ""
    other: str = ""  # the path renamed from, linked to, or waited on
    file: FileId | None = None  # MOVED / LINKED: the identity their ledger row records


class KnownFiles:
    def __init__(self, rows: Iterable[tuple[str, FileId, str]] = ()) -> None:
        """`rows`: (path, identity, status) of the ledger, oldest first."""
        self.at_path: dict[str, FileId] = {}  # the latest ledger row of each path
        # (dev, inode) -> where that file's counted bytes are recorded (counted or moved)
        self.holder: dict[tuple[int, int], tuple[str, FileId]] = {}
        self.inflight: dict[str, tuple[int, int]] = {}  # path -> (dev, inode), sent
        self.inflight_keys: dict[tuple[int, int], str] = {}
        self.waiting: dict[str, set[str]] = {}  # in-flight path -> paths decided after it
        self.noted: dict[str, tuple[int, int, int, int]] = {}  # grown after counting: seen
        self.forgotten: dict[str, tuple[int, int]] = {}  # path -> (dev, inode) forgotten there
        at_path, holder = self.at_path, self.holder
        for path, file, status in rows:  # _record, inlined: start-up reads every row
            at_path[path] = file
            if status in HOLDING:
                holder[file[:2]] = (path, file)
            elif status == FORGOTTEN:
                self.forgotten[path] = file[:2]

    def __len__(self) -> int:
        return len(self.at_path)

    def unchanged(self, path: str, st: os.stat_result) -> bool:
        """Nothing to decide (no I/O): in flight as this file, or as recorded."""
        key = self.inflight.get(path)
        if key is not None:
            return key == stat_key(st)
        if self.noted.get(path) == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns):
            return True
        known = self.at_path.get(path)
        return known is not None and known.same_stat(st)

    def classify(self, path: str, st: os.stat_result) -> Verdict:
        """What the regular file `st` at `path` is (reads 8 KiB of it at most, when it
        may be a counted file under another name or grown)."""
        key = stat_key(st)
        blocker = path if path in self.inflight else self.inflight_keys.get(key)
        if blocker is not None:
            if blocker == path and self.inflight[path] == key:
                return Verdict(SKIP)
            return Verdict(WAIT, other=blocker)
        known = self.at_path.get(path)
        if known is not None and known.same_stat(st):
            return Verdict(SKIP)
        if known is not None and self.forgotten.get(path) == key == known[:2] and _intact(
            path, st, known
        ):
            return Verdict(SKIP, "forgotten: not counted again")
        held = self.holder.get(key) or self.holder.get((0, st.st_ino))
        if held is None:
            return Verdict(COUNT, "a new file at a path counted before" if known else "")
        where, counted = held
        # The counted bytes are still in place at the start of this file: it is the
        # counted file, perhaps grown since. Rows from before fingerprints keep the
        # old rules: the same path is the same file, another must match exactly.
        if not counted.fingerprint:
            intact = where == path or (st.st_size, st.st_mtime_ns) == (
                counted.size, counted.mtime_ns
            )  # fmt: skip
        else:
            intact = (
                st.st_size >= counted.size
                and path_fingerprint(path, counted.size) == counted.fingerprint
            )
        grew = "; it grew after it was counted, and the new part is not counted"
        if where == path:
            if intact:
                return Verdict(APPENDED, grew[2:])
            return Verdict(COUNT, "rewritten since it was counted: counted as a new file")
        # Its ledger row describes the bytes counted, now at this path.
        file = counted._replace(dev=st.st_dev, inode=st.st_ino)
        there = _lstat(where)
        if there is not None and stat_key(there) == key:
            return Verdict(LINKED, f"a hard link to {where}, where it was counted", where, file)
        if intact:
            reason = f"renamed from {where}, where it was counted"
            return Verdict(MOVED, reason + grew * (st.st_size > counted.size), where, file)
        return Verdict(COUNT, f"a new file in the inode {where} had")

    # -- what happens to files -------------------------------------------------

    def sent(self, path: str, st: os.stat_result) -> None:
        """`path` went to the pipeline: in flight until settled."""
        key = stat_key(st)
        self.inflight[path] = key
        self.inflight_keys[key] = path
        self.noted.pop(path, None)

    def wait(self, path: str, blocker: str) -> None:
        self.waiting.setdefault(blocker, set()).add(path)

    def note(self, path: str, st: os.stat_result) -> None:
        """`path` was decided on as it is now (grown after counting): not again until it changes."""
        self.noted[path] = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def record(self, row: LedgerRow) -> list[str]:
        """A ledger row was committed; return the paths to decide on again now."""
        self._record(row.path, row.file, row.status)
        return self.settle(row.path)

    def settle(self, path: str) -> list[str]:
        """`path` is no longer in flight (merged, vanished, changed, or given back);
        return the paths that waited on it, to be decided on again."""
        key = self.inflight.pop(path, None)
        if key is not None and self.inflight_keys.get(key) == path:
            del self.inflight_keys[key]
        return sorted(self.waiting.pop(path, ()))

    def release(self, paths: Iterable[str]) -> None:
        """Forget what the ledger says of these paths (`forget --recount`): a file
        there now is counted as a new one."""
        for path in paths:
            self.at_path.pop(path, None)
            self.forgotten.pop(path, None)

    def _record(self, path: str, file: FileId, status: str) -> None:
        self.at_path[path] = file
        if status in HOLDING:
            self.holder[file.key] = (path, file)
        elif status == FORGOTTEN:
            self.forgotten[path] = file.key
            if self.holder.get(file.key, ("",))[0] == path:
                del self.holder[file.key]


def admit(
    known: KnownFiles,
    pipeline: Pipeline,
    path: str,
    st: os.stat_result,
    encoding: str,
    now: float,
    decode_errors: str = "replace",
) -> Verdict:
    """Decide on a ready file and act: send it to be counted, record it, or wait."""
    verdict = known.classify(path, st)
    if verdict.action == COUNT:
        known.sent(path, st)
        pipeline.add(file_ref(path, st, encoding, decode_errors), now)
    elif verdict.action in (MOVED, LINKED):
        assert verdict.file is not None
        known.sent(path, st)
        pipeline.record(LedgerRow(path, verdict.file, 0, verdict.action, verdict.reason, ""))
    elif verdict.action == WAIT:
        known.wait(path, verdict.other)
    elif verdict.action == APPENDED:
        known.note(path, st)
    return verdict


def _intact(path: str, st: os.stat_result, file: FileId) -> bool:
    """The bytes of `file` are still the first bytes of `path` (no fingerprint: assumed)."""
    return st.st_size >= file.size and (
        not file.fingerprint or path_fingerprint(path, file.size) == file.fingerprint
    )


def _lstat(path: str) -> os.stat_result | None:
    try:
        return longpaths.lstat(path)
    except OSError:
        return None
