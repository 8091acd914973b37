"""The units of work that travel between the parent and the worker processes.

NamedTuples, which pickle in C (a batch of 1000 files is 1000 FileRefs each
way): what to count (a FileRef, cut into Pieces, grouped
into a Task) and what came back (a PieceResult per piece, a TaskResult per task).
"""

from __future__ import annotations

from typing import NamedTuple

# Ledger statuses. "vanished" never reaches the ledger: a file deleted before
# it was read has nothing to count, and is counted if it comes back.
COUNTED, SKIPPED, FAILED, VANISHED = "counted", "skipped", "failed", "vanished"
# A counted file renamed within the tree: its new path, with nothing counted again.
MOVED = "moved"


class FileRef(NamedTuple):
    """A file as discovered: its path, what stat said, and how to decode it."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    encoding: str = "auto"
    decode_errors: str = "replace"  # or "strict" (see decoding.decode_with)


class Piece(NamedTuple):
    """A whole file (end is None), or the lines that start in [start, end)."""

    file: FileRef
    start: int = 0
    end: int | None = None


class Task(NamedTuple):
    """What one worker call counts: whole files, or one chunk of a large file."""

    id: int
    pieces: tuple[Piece, ...]

    @property
    def is_chunk(self) -> bool:
        return self.pieces[0].end is not None


class PieceResult(NamedTuple):
    path: str
    status: str
    reason: str
    bytes: int
    tokens: int
    encoding: str
    replaced: int = 0  # bytes decoded as U+FFFD (summed over a chunked file's pieces)


class TaskResult(NamedTuple):
    """One combined count for the task's counted pieces, and a result per piece."""

    task_id: int
    counts: dict[str, int]
    pieces: tuple[PieceResult, ...]
