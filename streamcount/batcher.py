"""Ready files to tasks, bounded by file count, bytes and the age of the oldest file.

Pure: no I/O, and time comes in as `now`. Bounding by age as well as size
means a steady trickle of files is still counted promptly (a debouncer that
restarts its wait on every file would never flush under a steady stream).
Files larger than `chunk_bytes` become one task per line-aligned chunk, so a
huge file keeps every worker busy and no worker holds all of it.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Hashable

from .work import FileRef, Piece, Task

IDLE_WAIT = 0.05  # seconds: with a worker idle, files wait only this long for company
# (the files of a burst, closed together, still go as one task)


def plan_chunks(size: int, chunk_bytes: int) -> list[tuple[int, int]]:
    """Nominal [start, end) byte ranges; workers align them to whole lines."""
    return [(start, min(start + chunk_bytes, size)) for start in range(0, size, chunk_bytes)]


class Batcher:
    def __init__(
        self,
        max_files: int,
        max_bytes: int,
        max_wait: float,
        chunk_bytes: int,
        key: Callable[[FileRef], Hashable] | None = None,
    ) -> None:
        """`key`: files of one task share it (their time bucket when it is their mtime's),
        so a task's one combined count belongs to one key; a batch ends where it changes."""
        self.key = key
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.max_wait = max_wait
        self.chunk_bytes = chunk_bytes
        self._files: deque[tuple[FileRef, float]] = deque()
        self._bytes = 0
        self._chunks: deque[Task] = deque()
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        """Tasks' worth of work waiting: files not yet batched, plus chunk tasks."""
        return len(self._files) + len(self._chunks)

    def add(self, ref: FileRef, now: float, chunkable: bool = True) -> int:
        """Queue a ready file; return how many chunks it was cut into (0: whole).

        Not `chunkable`: a large file whose lines cannot be found by byte
        (UTF-16 and UTF-32) goes whole, in a batch of its own size.
        """
        if chunkable and ref.size > self.chunk_bytes:
            ranges = plan_chunks(ref.size, self.chunk_bytes)
            for start, end in ranges:
                self._chunks.append(Task(next(self._ids), (Piece(ref, start, end),)))
            return len(ranges)
        self._files.append((ref, now))
        self._bytes += ref.size
        return 0

    def deadline(self) -> float | None:
        """When the oldest waiting file must be sent, even in a partial batch."""
        if self._chunks:
            return float("-inf")
        return self._files[0][1] + self.max_wait if self._files else None

    def ready(self, now: float) -> bool:
        """Whether a task is due now (`take` would give one without `flush`)."""
        return bool(self._chunks) or (bool(self._files) and self._due(now))

    def _due(self, now: float) -> bool:
        return (
            len(self._files) >= self.max_files
            or self._bytes >= self.max_bytes
            or now >= self._files[0][1] + self.max_wait
        )

    def take(self, now: float, flush: bool = False, share: int = 1, idle: int = 0) -> Task | None:
        """The next task that is due, or None. `flush` sends partial batches now.

        `share` is how many tasks the caller could start now: a backlog's
        bytes are split evenly between them (within the bounds) rather than into
        full-size batches, so no worker idles while another finishes a big one.

        `idle` is how many workers have nothing to do: files that are not due
        yet go to them once the oldest has waited IDLE_WAIT, split between
        them. Waiting for company (max_wait) saves work only while the
        workers are busy; an idle worker's time is lost either way.
        """
        if self._chunks:
            return self._chunks.popleft()
        if not self._files:
            return None
        if not (flush or self._due(now)):
            if not (idle and now >= self._files[0][1] + IDLE_WAIT):
                return None
            share = idle
        max_bytes = min(self.max_bytes, -(-self._bytes // share))
        pieces: list[Piece] = []
        size = 0
        key = self.key(self._files[0][0]) if self.key else None
        while self._files and len(pieces) < self.max_files:
            ref = self._files[0][0]
            if pieces and size + ref.size > max_bytes:
                break
            if key is not None and pieces and self.key(ref) != key:  # type: ignore[misc]
                break
            self._files.popleft()
            pieces.append(Piece(ref))
            size += ref.size
        self._bytes -= size
        return Task(next(self._ids), tuple(pieces))

    def new_task(self, pieces: tuple[Piece, ...]) -> Task:
        """A task with a fresh id, for work that is re-sent (see pipeline.py)."""
        return Task(next(self._ids), pieces)
