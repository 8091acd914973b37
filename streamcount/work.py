"""The units of work that travel between the parent and the worker processes.

NamedTuples, which pickle in C (a batch of 1000 files is 1000 FileRefs each
way): what to count (a FileRef, cut into Pieces, grouped
into a Task) and what came back (a PieceResult per piece, a TaskResult per task).
"""

from __future__ import annotations

from typing import NamedTuple

from .identity import FileId

# Ledger statuses (README, "The ledger"): counted, skipped (not text), failed
# (with the reason), and two with nothing counted: a counted file renamed
# within the tree (`moved`) and a second name of a counted file (`linked`).
COUNTED, SKIPPED, FAILED, MOVED, LINKED = "counted", "skipped", "failed", "moved", "linked"
# A counted file taken back by `streamcount forget`: its tokens subtracted.
FORGOTTEN = "forgotten"
# Never in the ledger: a file deleted before it was read has nothing to count
# (it is counted if it comes back); one that changed while it was read is
# counted again once it holds still.
VANISHED, CHANGED = "vanished", "changed"


class FileRef(NamedTuple):
    """A file as discovered: its path, what stat said, and how to decode it.

    A worker counts it only if the path still names that file (dev, inode;
    0 means unknown) and, for a chunk, with that size and mtime.
    """

    path: str
    size: int
    mtime_ns: int
    inode: int
    encoding: str = "auto"
    dev: int = 0
    decode_errors: str = "replace"  # or "strict" (see decoding.decode_with)


class Piece(NamedTuple):
    """A whole file (end is None), or the lines that start in [start, end)."""

    file: FileRef
    start: int = 0
    end: int | None = None


class Task(NamedTuple):
    """What one worker call counts: whole files, or one chunk of a large file; or
    nothing, only handing over the worker's hold (see holds.py)."""

    id: int
    pieces: tuple[Piece, ...]
    per_file: bool = False  # keep_file_counts: each whole file's counts apart in the result
    hold: bool = False  # add the counts to the worker's hold instead of sending them back
    hand_over: bool = False  # send the hold (this task's counts with it) back now

    @property
    def is_chunk(self) -> bool:
        return bool(self.pieces) and self.pieces[0].end is not None

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as columns: a task is thousands of pieces, and a NamedTuple each
        pickles through Python (per 4,000 files: 6.4 -> 0.84 ms in the parent)."""
        return _task_from_columns, (self.id, _columns(self.pieces), *self[2:])


def _columns(pieces: tuple[Piece, ...]) -> tuple[tuple[object, ...], ...]:
    """(each FileRef field's column, starts, ends) of `pieces`."""
    if not pieces:
        return ((), (), ())
    files, starts, ends = zip(*pieces, strict=True)
    return tuple(zip(*files, strict=True)), starts, ends


def _task_from_columns(task_id: int, columns: tuple, *flags: bool) -> Task:
    files, starts, ends = columns
    pieces = tuple(map(Piece, map(FileRef, *files), starts, ends)) if starts else ()
    return Task(task_id, pieces, *flags)


class PieceResult(NamedTuple):
    path: str
    status: str
    reason: str
    bytes: int
    tokens: int
    encoding: str
    file: FileId | None = None  # the identity of the bytes read (fstat, fingerprint)
    replaced: int = 0  # bytes decoded as U+FFFD (summed over a chunked file's pieces)


class TaskResult(NamedTuple):
    """One combined count for the task's counted pieces, and a result per piece;
    for a `per_file` task also each piece's own counts (aligned with `pieces`).

    For a `hold` task: `held`, its counts stayed in the worker's hold (`counts`
    is empty); or `handed`, `counts` is the hold: these earlier tasks' counts
    and this one's. `lost`: earlier tasks whose held counts the worker had to
    drop (see holds.py); they must be counted again.
    """

    task_id: int
    counts: dict[str, int]
    pieces: tuple[PieceResult, ...]
    per_file: tuple[dict[str, int], ...] | None = None
    held: bool = False
    handed: tuple[int, ...] = ()
    lost: tuple[int, ...] = ()
