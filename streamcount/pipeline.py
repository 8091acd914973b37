"""The counting engine shared by `run` and `ingest`: batcher -> process pool -> writer.

The parent owns all state and runs it from one thread: it batches ready
files, keeps at most `2 × workers` tasks in flight (backpressure: a backlog
of any size costs only its FileRefs), gathers results, reassembles chunked
files, and merges everything finished in one transaction per round. Workers
only compute.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sqlite3
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import engines
from .batcher import Batcher
from .config import Config
from .decoding import ASCII, bom_encoding, is_wide, replaced_reason
from .store import LedgerRow, Merge, Store
from .tokens import count_task, init_worker
from .work import COUNTED, FAILED, VANISHED, FileRef, PieceResult, Task, TaskResult
from .writerlock import WriterLock

log = logging.getLogger(__name__)

TASKS_PER_WORKER = 2
MAX_ATTEMPTS = 3  # a file that kills its worker this often, alone, is marked failed
RETRY_SECONDS = (0.5, 1, 2, 5, 10, 30)  # writer back-off after a failed merge
MERGE_INTERVAL = 0.1  # seconds between merges while results keep coming, at least,
MERGE_SPACING = 4  # and this many times the last merge's duration: the writer stays
# a small share of the parent's time however fast the workers produce (jieba-rs)


@dataclass(slots=True)
class Progress:
    """What one round of the engine finished: files now in the ledger, files gone."""

    rows: list[LedgerRow] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    task_seconds: list[float] = field(default_factory=list)  # send to result, per task
    seconds: float = 0.0  # the merge transaction

    def extend(self, other: Progress) -> None:
        self.rows += other.rows
        self.vanished += other.vanished
        self.task_seconds += other.task_seconds


@dataclass(slots=True)
class _Assembly:
    """The chunks of one large file, summed until the last one is back."""

    file: FileRef
    remaining: int
    counts: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    tokens: int = 0
    replaced: int = 0
    encodings: set[str] = field(default_factory=set)
    failure: PieceResult | None = None


def _wide_text(ref: FileRef) -> bool:
    """UTF-16/32, by configuration or by its byte-order mark (4 bytes read)."""
    if ref.encoding != "auto":
        return is_wide(ref.encoding)
    try:
        with open(ref.path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False  # the worker will report it
    encoding = bom_encoding(head)
    return encoding is not None and is_wide(encoding)


def ledger_row(ref: FileRef, result: PieceResult) -> LedgerRow:
    return LedgerRow(
        ref.path, result.bytes, ref.mtime_ns, ref.inode,
        result.tokens, result.status, result.reason, result.encoding,
    )  # fmt: skip


class Pipeline:
    def __init__(
        self, store: Store, config: Config, merge_interval: float = MERGE_INTERVAL
    ) -> None:
        self.store = store
        self.config = config
        self.merge_interval = merge_interval
        self.batcher = Batcher(
            config.batch_max_files, config.batch_max_bytes,
            config.batch_max_wait, config.chunk_bytes,
        )  # fmt: skip
        self._pool = self._new_pool()
        self._generation = 0  # which pool a task was sent to; bumped on restart
        self._inflight: dict[Future[TaskResult], tuple[Task, int, float]] = {}
        self._attempts: Counter[int] = Counter()
        self._suspects: deque[Task] = deque()  # tasks of a pool that broke (see _retry)
        self._isolated: int | None = None
        self._chunked: dict[str, _Assembly] = {}
        self._pending = Merge()  # finished results waiting for the writer, summed
        self._vanished: list[str] = []  # files found deleted since the last round
        self._task_seconds: list[float] = []  # send-to-result times since the last round
        self._merge_failures = 0
        self._retry_at = 0.0
        self._next_merge = time.monotonic() + merge_interval

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the daemon runs threads (watchdog), and forking a
        # process that runs threads can deadlock the child. Not forkserver
        # either: its workers are the server's children and hold its liveness
        # pipe open, so neither it nor they notice when the daemon is killed;
        # spawned workers are the daemon's own and die with it (PDEATHSIG).
        pool = ProcessPoolExecutor(
            max_workers=self.config.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(self.config.tokenizer, os.getpid()),
        )
        # Start every worker now (they load jieba, ~1 s), not on the first file.
        for _ in range(self.config.workers):
            pool.submit(os.getpid)
        return pool

    def reconfigure(self, config: Config) -> None:
        """Take new batching limits (SIGHUP); the pool and tokenizer stay as they are."""
        self.config = config
        b = self.batcher
        b.max_files, b.max_bytes = config.batch_max_files, config.batch_max_bytes
        b.max_wait, b.chunk_bytes = config.batch_max_wait, config.chunk_bytes

    # -- state ---------------------------------------------------------------

    @property
    def backlog(self) -> int:
        """Files and chunks waiting for a worker."""
        return len(self.batcher)

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def busy(self) -> bool:
        return bool(
            len(self.batcher) or self._inflight or self._pending or self._chunked or self._suspects
        )

    def add(self, ref: FileRef, now: float) -> None:
        chunkable = ref.size <= self.config.chunk_bytes or not _wide_text(ref)
        chunks = self.batcher.add(ref, now, chunkable)
        if chunks:
            self._chunked[ref.path] = _Assembly(ref, chunks)

    def record(self, row: LedgerRow) -> None:
        """Put a ledger row with nothing to count (a renamed file) in the next merge."""
        self._pending.add({}, [row])

    # -- one round -----------------------------------------------------------

    def pump(self, timeout: float, flush: bool = False, submit: bool = True) -> Progress:
        """Send due tasks, wait up to `timeout` for results, merge what finished."""
        if submit:
            self._submit(time.monotonic(), flush)
        if self._inflight:
            done, _ = wait(self._inflight, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                self._collect(future)
        elif self.writer_failing:  # backing off: don't spin
            time.sleep(max(0.0, min(timeout, self._retry_at - time.monotonic())))
        return self._merge()

    @property
    def writer_failing(self) -> bool:
        """The last merge failed; its results (still pending) are retried with back-off."""
        return self._merge_failures > 0

    def _submit(self, now: float, flush: bool) -> None:
        if self.writer_failing:
            return  # do not pile up more results in memory
        if self._suspects:  # after a worker died: one suspect at a time, alone
            if not self._inflight:
                task = self._suspects.popleft()
                self._isolated = task.id
                self._send(task)
            return
        while (free := TASKS_PER_WORKER * self.config.workers - len(self._inflight)) > 0:
            task = self.batcher.take(now, flush, share=free)
            if task is None:
                return
            self._send(task)

    def _send(self, task: Task) -> None:
        try:
            future = self._pool.submit(count_task, task)
        except BrokenProcessPool:
            self._restart_pool(self._generation)
            future = self._pool.submit(count_task, task)
        self._inflight[future] = (task, self._generation, time.monotonic())
        log.debug("sent task %d (%d pieces)", task.id, len(task.pieces))

    def _collect(self, future: Future[TaskResult]) -> None:
        task, generation, sent_at = self._inflight.pop(future)
        try:
            result = future.result()
        except BrokenProcessPool:
            self._restart_pool(generation)
            self._retry(task)
            return
        self._attempts.pop(task.id, None)
        self._task_seconds.append(time.monotonic() - sent_at)
        if task.is_chunk:
            self._assemble(task.pieces[0].file, result.pieces[0], result.counts)
            return
        refs = {p.file.path: p.file for p in task.pieces}
        rows = [ledger_row(refs[r.path], r) for r in result.pieces if r.status != VANISHED]
        self._vanished += [r.path for r in result.pieces if r.status == VANISHED]
        self._pending.add(result.counts, rows)

    def _retry(self, task: Task) -> None:
        """A worker died (killed, out of memory, crashed) while `task` was in its pool.

        Every task of a broken pool fails, so blame needs care: they become
        suspects, re-run one at a time with nothing else in flight. A suspect
        that breaks the pool alone is guilty: a batch is split into single
        files; a single file is retried, then marked failed after MAX_ATTEMPTS.
        """
        isolated = len(self._inflight) == 0 and self._isolated == task.id
        self._isolated = None
        if not isolated:
            self._suspects.append(task)
            return
        if len(task.pieces) > 1:
            log.warning("task %d killed a worker; retrying its files one by one", task.id)
            self._suspects.extend(self.batcher.new_task((p,)) for p in task.pieces)
            return
        self._attempts[task.id] += 1
        piece = task.pieces[0]
        if self._attempts[task.id] < MAX_ATTEMPTS:
            log.warning("%s killed a worker; retrying it", piece.file.path)
            self._suspects.appendleft(task)
            return
        del self._attempts[task.id]
        reason = f"worker process died {MAX_ATTEMPTS} times counting it"
        failed = PieceResult(piece.file.path, FAILED, reason, 0, 0, "")
        if task.is_chunk:
            self._assemble(piece.file, failed, {})
        else:
            self._pending.add({}, [ledger_row(piece.file, failed)])

    def _restart_pool(self, broken_generation: int) -> None:
        if broken_generation != self._generation:
            return  # that pool was already replaced
        log.warning("a worker process died; starting a new pool")
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        self._generation += 1

    def _assemble(self, ref: FileRef, piece: PieceResult, counts: dict[str, int]) -> None:
        a = self._chunked.get(ref.path)
        if a is None:  # the file was already given up on (see finish)
            return
        a.remaining -= 1
        if piece.status == COUNTED:
            a.counts.update(counts)
            a.bytes += piece.bytes
            a.tokens += piece.tokens
            a.replaced += piece.replaced
            a.encodings.add(piece.encoding)
        elif a.failure is None:
            a.failure = piece
        if a.remaining:
            return
        del self._chunked[ref.path]
        encodings = a.encodings - {ASCII}
        if a.failure is None and len(encodings) > 1:
            reason = f"chunks decode as different encodings: {', '.join(sorted(encodings))}"
            a.failure = PieceResult(ref.path, FAILED, reason, a.bytes, 0, "")
        if a.failure is not None and a.failure.status == VANISHED:
            self._vanished.append(ref.path)
        elif a.failure is not None:
            self._pending.add({}, [ledger_row(ref, a.failure)])
        else:
            encoding = encodings.pop() if encodings else ASCII
            reason = replaced_reason(a.replaced)
            whole = PieceResult(ref.path, COUNTED, reason, a.bytes, a.tokens, encoding, a.replaced)
            self._pending.add(a.counts, [ledger_row(ref, whole)])

    def _merge(self) -> Progress:
        """Commit every finished task in one transaction; back off if the writer fails.

        While tasks keep finishing, merges are spaced (merge_interval, or
        MERGE_SPACING times the last merge's duration if longer): the results
        that finish meanwhile are summed in memory as they arrive, so tokens
        common to them are upserted once, not once per task. Each merge costs
        about the vocabulary of what it holds, so a backfill (`ingest`), which
        needs no low latency, merges seldom.
        """
        now = time.monotonic()
        progress = Progress()
        due = now >= self._next_merge or not self._inflight
        if self._pending and due and now >= self._retry_at:
            started = time.perf_counter()
            try:
                self.store.merge(self._pending)
            except sqlite3.Error as exc:
                delay = RETRY_SECONDS[min(self._merge_failures, len(RETRY_SECONDS) - 1)]
                self._merge_failures += 1
                self._retry_at = now + delay
                log.error("merge failed (%s); nothing committed, retrying in %gs", exc, delay)
                return progress
            self._merge_failures = 0
            progress.seconds = time.perf_counter() - started
            self._next_merge = now + max(self.merge_interval, MERGE_SPACING * progress.seconds)
            progress.rows, self._pending = self._pending.rows, Merge()
        progress.vanished, self._vanished = self._vanished, []
        progress.task_seconds, self._task_seconds = self._task_seconds, []
        return progress

    # -- ending ----------------------------------------------------------------

    def drain(self, timeout: float = 0.1) -> Progress:
        """One round that sends partial batches at once (for `ingest`)."""
        return self.pump(timeout, flush=True)

    def finish(self, deadline: float = 60.0) -> Progress:
        """Stop sending; wait for the tasks in flight and commit them.

        Files still waiting, and large files whose chunks were not all sent,
        are left uncounted: they are not in the ledger, so the next start
        finds and counts them.
        """
        progress = Progress()
        end = time.monotonic() + deadline
        while (self._inflight or self._pending) and time.monotonic() < end:
            progress.extend(self.pump(0.1, submit=False))  # sleeps while backing off
        self._chunked.clear()
        return progress

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def open_pipeline(config: Config, merge_interval: float = MERGE_INTERVAL) -> Iterator[Pipeline]:
    """The writer's set-up, shared by `run` and `ingest`: lock, database, pool.

    On the way out the pool is shut down and the lock released; callers
    decide first what to finish (see Pipeline.finish).
    """
    engines.check(config.tokenizer)
    lock = WriterLock(config.db).acquire()
    try:
        store = Store.open_writer(config.db, config.tokenizer)
        try:
            pipeline = Pipeline(store, config, merge_interval)
            try:
                yield pipeline
            finally:
                pipeline.close()
        finally:
            store.close()
    finally:
        lock.release()
