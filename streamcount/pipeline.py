"""The counting engine shared by `run` and `ingest`: batcher -> process pool -> writer.

The parent owns all state and runs it from one thread: it batches ready
files, keeps at most `2 × workers` tasks in flight (backpressure: a backlog
of any size costs only its FileRefs), gathers results, reassembles chunked
files, and merges everything finished in one transaction per round. Workers
only compute. A local worker keeps its counts across tasks while work is
queued, and hands them over when asked (holds.py): the ledger rows of those
tasks wait for them.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import engines, failpoints
from .batcher import Batcher
from .compressed import compression_of
from .config import Config
from .decoding import ASCII, bom_encoding, is_wide, replaced_reason
from .executors import Unavailable, make_executor
from .holds import Holds
from .identity import FileId
from .store import Advance, LedgerRow, Merge, MergeRefused, Store, StoreUnavailable, open_store
from .timebuckets import mtime_bucket
from .work import CHANGED, COUNTED, FAILED, LINKED, VANISHED, FileRef, PieceResult, Task, TaskResult

log = logging.getLogger(__name__)

TASKS_PER_WORKER = 2
MAX_ATTEMPTS = 3  # a file that kills its worker (or fails its merge) this often is failed
RETRY_SECONDS = (0.5, 1, 2, 5, 10, 30)  # writer back-off after a failed merge
MERGE_INTERVAL = 0.1  # seconds between merges while results keep coming, at least,
MERGE_SPACING = 4  # and this many times the last merge's duration: the writer stays
# a small share of the parent's time however fast the workers produce (jieba-rs);
BACKLOG_SPACING = 12  # this many while work waits to be sent: a result then waits on
# the queue anyway, and the parent's time is the workers' (they share the cores);
MAX_MERGE_GAP = 5.0  # but no more than this many seconds apart: a merge grows with the
# gap, and the next gap with it; a merge longer than the work queued for the
# workers (two tasks each) leaves them idle while it runs
HOLD_SECONDS = 1.0  # a worker's hold is handed over at least this often (or every merge
# interval, if longer), whatever is queued


@dataclass(slots=True)
class Progress:
    """What one round of the engine finished: files now in the ledger, files gone,
    and files given back uncounted, to be decided on again once they hold still
    (they changed while being read, or their merge was refused)."""

    rows: list[LedgerRow] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    task_seconds: list[float] = field(default_factory=list)  # send to result, per task
    seconds: float = 0.0  # the merge transactions
    follows_dropped: bool = False  # followed ranges not merged: read again (follow.py)

    def extend(self, other: Progress) -> None:
        self.rows += other.rows
        self.vanished += other.vanished
        self.retry += other.retry
        self.task_seconds += other.task_seconds
        self.seconds += other.seconds
        self.follows_dropped |= other.follows_dropped


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
    files: set[FileId] = field(default_factory=set)  # one, unless it changed between chunks
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
    """The ledger row of a result: the identity of the bytes read, or (not read at
    all) the file as it was found."""
    file = result.file or FileId(ref.dev, ref.inode, ref.size, ref.mtime_ns, "")
    return LedgerRow(ref.path, file, result.tokens, result.status, result.reason, result.encoding)


class Pipeline:
    def __init__(
        self, store: Store, config: Config, merge_interval: float = MERGE_INTERVAL
    ) -> None:
        self.store = store
        self.config = config
        self.merge_interval = merge_interval
        self.bucket_of = mtime_bucket(config.buckets)
        self.batcher = Batcher(
            config.batch_max_files, config.batch_max_bytes,
            config.batch_max_wait, config.chunk_bytes, self.bucket_of,
        )  # fmt: skip
        self._pool = make_executor(config)
        self._waiting: deque[Task] = deque()  # tasks the executor lost, sent again first
        self._generation: Counter[int] = Counter()  # slot -> its pool's; bumped on restart
        # future -> (task, slot, generation, sent at)
        self._inflight: dict[Future[TaskResult], tuple[Task, int, int, float]] = {}
        self._load: Counter[int] = Counter()  # slot -> its tasks in flight
        self._holds = Holds(max(merge_interval, HOLD_SECONDS), config.batch_max_bytes)
        self._handing: set[int] = set()  # slots with a hand-over in flight
        self._attempts: Counter[int] = Counter()
        self._suspects: deque[Task] = deque()  # tasks of a pool that broke (see _retry)
        self._isolated: int | None = None
        self._chunked: dict[str, _Assembly] = {}
        self._pending = Merge()  # finished results waiting for the writer, summed
        self._held: Merge | None = None  # a merge the database could not take, retried as is
        self.writer_problem: str | None = None  # why merges fail now, for status
        self._failing_since = 0.0
        self._vanished: list[str] = []  # files found deleted since the last round
        self._returned: list[str] = []  # files given back uncounted since the last round
        self._given_back: Counter[str] = Counter()  # path -> merges refused with it
        self._follows_dropped = False  # a merge with followed ranges was dropped
        self._task_seconds: list[float] = []  # send-to-result times since the last round
        self._merge_failures = 0
        self._retry_at = 0.0
        self._next_merge = time.monotonic() + merge_interval

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
    def held(self) -> int:
        """Files counted and held in their worker, waiting for its hand-over."""
        return self._holds.files()

    @property
    def busy(self) -> bool:
        return bool(
            len(self.batcher) or self._inflight or self._pending or self._held
            or self._chunked or self._suspects or self._waiting or self._holds
        )  # fmt: skip

    def executor_status(self) -> dict[str, object]:
        """Where tasks run, and (on a cluster) the bytes sent and not yet back."""
        return self._pool.status()

    def add(self, ref: FileRef, now: float) -> None:
        # A compressed stream has no byte offsets to cut at: one worker reads it whole.
        chunkable = not compression_of(ref.path) and (
            ref.size <= self.config.chunk_bytes or not _wide_text(ref)
        )
        chunks = self.batcher.add(ref, now, chunkable)
        if chunks:
            self._chunked[ref.path] = _Assembly(ref, chunks)

    def record(self, row: LedgerRow) -> None:
        """Put a ledger row with nothing to count (a renamed file) in the next merge."""
        self._pending.add({}, [row])

    def add_follow(self, counts: dict[str, int], advances: list[Advance]) -> None:
        """Put the counts of followed files' new lines, and their offsets moving on,
        in the next merge (see follow.py)."""
        self._pending.add(counts, ())
        self._pending.advances.extend(advances)

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
        elif self._waiting or (self.batcher and not self._pool.ready()):
            time.sleep(timeout)  # the executor cannot take them now
        return self._merge()

    @property
    def writer_failing(self) -> bool:
        """The last merge failed; its results (still pending) are retried with back-off."""
        return self._merge_failures > 0

    def _submit(self, now: float, flush: bool) -> None:
        if self.writer_failing or not self._pool.ready():
            return  # do not pile up more results in memory; or nowhere to send
        while self._waiting and self._pool.has_room():
            if not self._send(self._waiting.popleft()):
                return
        if self._waiting:
            return
        if self._suspects:  # after a worker died: one suspect at a time, alone
            if not self._inflight:
                task = self._suspects.popleft()
                self._isolated = task.id
                self._send(task)
            return
        while (free := TASKS_PER_WORKER * self._pool.slots() - len(self._inflight)) > 0:
            if not self._pool.has_room():
                return
            task = self.batcher.take(now, flush, share=free, idle=self._idle_slots())
            if task is None:
                break
            if not self._send(task):
                return
        self._ask_for_holds(now)

    def _idle_slots(self) -> int:
        """How many workers have no task in flight (on a cluster, which places
        tasks itself: its worker threads less the tasks in flight)."""
        slots = self._pool.slots()
        if not self._pool.holds:
            return max(0, slots - len(self._inflight))
        return sum(1 for slot in range(slots) if not self._load[slot])

    def _least_busy(self) -> int:
        """The slot with the fewest tasks in flight (one worker process each, locally;
        a cluster is one slot: it places tasks itself)."""
        if not self._pool.holds:
            return 0
        return min(range(self._pool.slots()), key=self._load.__getitem__)

    def _ask_for_holds(self, now: float, always: bool = False) -> None:
        """Ask each worker that holds counts, and is not already asked, to hand them
        over, when no queued task could carry the request (nothing is due now),
        or `always` (stopping)."""
        if self.batcher.ready(now) and not always:
            return
        for slot in self._holds.slots():
            if slot not in self._handing:
                self._send(self.batcher.new_task(()), slot)

    def _send(self, task: Task, slot: int | None = None) -> bool:
        """Submit `task` (to `slot`'s worker, or the least busy); False if the
        executor cannot take it now (it waits)."""
        if self.config.keep_file_counts and not task.is_chunk:
            task = task._replace(per_file=True)
        if slot is None:
            slot = self._least_busy()
        now = time.monotonic()
        if self._pool.holds and not (task.is_chunk or task.per_file or self.bucket_of):
            # Hand over with this task when nothing more is due behind it (the
            # results then wait no longer than they would without a hold).
            hand_over = not task.pieces or not self.batcher.ready(now) or self._holds.due(slot, now)
            task = task._replace(hold=True, hand_over=hand_over)
        else:
            task = task._replace(hold=False, hand_over=False)
        try:
            try:
                future = self._pool.submit(task, slot)
            except BrokenProcessPool:
                self._restart_pool(slot, self._generation[slot])
                future = self._pool.submit(task, slot)
        except Unavailable:
            self._waiting.appendleft(task)
            return False
        self._inflight[future] = (task, slot, self._generation[slot], now)
        self._load[slot] += 1
        if task.hand_over:
            self._handing.add(slot)
        log.debug("sent task %d (%d pieces) to %d", task.id, len(task.pieces), slot)
        return True

    def _collect(self, future: Future[TaskResult]) -> None:
        task, slot, generation, sent_at = self._inflight.pop(future)
        self._load[slot] -= 1
        if task.hand_over:
            self._handing.discard(slot)
        try:
            result = future.result()
        except BrokenProcessPool:
            self._restart_pool(slot, generation)
            self._lose_hold(slot, "its worker process died")
            self._retry(task, "worker process died")
            return
        except Exception as exc:  # raised by the task as a whole, or its result unpicklable
            if (problem := self._pool.lost(exc)) is not None:  # not the task's doing
                log.info("task %d goes back to the backlog: %s", task.id, problem)
                self._waiting.append(task)
                return
            if task.hold:  # the worker dropped its hold when the exception went by
                self._lose_hold(slot, f"{type(exc).__name__} in its worker")
            self._retry(task, f"error while counting: {type(exc).__name__}: {exc}", broke=False)
            return
        self._task_seconds.append(time.monotonic() - sent_at)
        if result.lost:
            self._lose_hold(slot, "their worker dropped them", result.lost)
        if task.is_chunk:
            self._attempts.pop(task.id, None)
            self._assemble(task.pieces[0].file, result.pieces[0], result.counts)
            return
        if result.held:
            self._holds.keep(slot, task, result, time.monotonic())
            self._attempts.pop(task.id, None)
            return
        done = [(task, result)]
        if result.handed:
            try:
                done = [*self._holds.take(slot, result.handed, task), *done]
            except ValueError as exc:  # a bug: merge none of it, count it all again
                log.error("a hold handed over does not match (%s); counted again", exc)
                self._lose_hold(slot, "it did not match")
                self._waiting.append(task)
                return
        try:
            self._take(done, result.counts)
        except Exception as exc:  # a bug, or MemoryError: the pending merge may be half-added
            log.exception("cannot add the result of task %d", task.id)
            pending, self._pending = self._pending, Merge()
            self._give_back(pending, exc)  # (the task's own rows are added last: not in it)
            self._waiting.extend(t for t, _ in done[:-1])  # held before: counted again
            self._retry(task, f"error while adding it: {type(exc).__name__}: {exc}", broke=False)
            return
        self._attempts.pop(task.id, None)

    def _lose_hold(self, slot: int, why: str, ids: tuple[int, ...] | None = None) -> None:
        """The hold of `slot`'s worker (or its tasks `ids`) is gone: count those tasks
        again (from the start: they are not in the ledger, and their counts were
        never merged)."""
        lost = self._holds.lose(slot, ids)
        if lost:
            log.warning("%d tasks held by a worker are counted again: %s", len(lost), why)
            self._waiting.extend(lost)

    def _take(self, done: list[tuple[Task, TaskResult]], counts: dict[str, int]) -> None:
        """Add `counts` and the results of the tasks they are of to the pending merge;
        state changes only once it is in."""
        rows, vanished, changed = [], [], []
        kept = None if done[-1][1].per_file is None else []  # keep_file_counts: own counts
        for task, result in done:
            refs = {p.file.path: p.file for p in task.pieces}
            for i, r in enumerate(result.pieces):
                if r.status == VANISHED:
                    vanished.append(r.path)
                elif r.status == CHANGED:
                    log.info("%s: %s; counted once it holds still", r.path, r.reason)
                    changed.append(r.path)
                else:
                    rows.append(ledger_row(refs[r.path], r))
                    if kept is not None:
                        kept.append(result.per_file[i])  # type: ignore[index]
            failpoints.fail("pipeline-take", refs, MemoryError)
        first = next((t.pieces[0].file for t, _ in done if t.pieces), None)
        bucket = self.bucket_of(first) if self.bucket_of and first else None
        self._pending.add(counts, rows, bucket, kept)
        self._vanished += vanished
        self._returned += changed

    def _retry(self, task: Task, reason: str, broke: bool = True) -> None:
        """A worker died (killed, out of memory, crashed) while `task` was in its pool,
        or (`broke` False) the task failed as a whole with an exception.

        Every task of a broken pool fails, so blame needs care: they become
        suspects, re-run one at a time with nothing else in flight. A suspect
        that fails alone is guilty: a batch is split into single files; a
        single file is retried, then marked failed after MAX_ATTEMPTS.
        """
        if not task.pieces:  # a request for a worker's hold: nothing to count again
            return
        isolated = not broke or (self._isolated == task.id and len(self._inflight) == 0)
        self._isolated = None
        if not isolated:
            self._suspects.append(task)
            return
        if len(task.pieces) > 1:
            log.warning("task %d failed (%s); retrying its files one by one", task.id, reason)
            self._suspects.extend(self.batcher.new_task((p,)) for p in task.pieces)
            return
        self._attempts[task.id] += 1
        piece = task.pieces[0]
        if self._attempts[task.id] < MAX_ATTEMPTS:
            log.warning("%s: %s; retrying it", piece.file.path, reason)
            self._suspects.appendleft(task)
            return
        del self._attempts[task.id]
        if broke:
            reason = f"worker process died {MAX_ATTEMPTS} times counting it"
        else:
            reason = f"{reason} ({MAX_ATTEMPTS} tries)"
        failed = PieceResult(piece.file.path, FAILED, reason, 0, 0, "")
        if task.is_chunk:
            self._assemble(piece.file, failed, {})
        else:
            self._pending.add({}, [ledger_row(piece.file, failed)])

    def _restart_pool(self, slot: int, broken_generation: int) -> None:
        if broken_generation != self._generation[slot]:
            return  # that pool was already replaced
        log.warning("a worker process died; starting a new one")
        self._pool.restart(slot)
        self._generation[slot] += 1

    def _assemble(self, ref: FileRef, piece: PieceResult, counts: dict[str, int]) -> None:
        a = self._chunked.get(ref.path)
        if a is None:  # the file was already given up on (see finish)
            return
        a.remaining -= 1  # first: whatever happens below, this chunk is back
        if piece.status == COUNTED and a.failure is None:
            try:
                a.counts.update(counts)
            except Exception as exc:  # MemoryError: the sum is no longer whole
                a.failure = PieceResult(ref.path, FAILED, f"{type(exc).__name__}: {exc}", 0, 0, "")
                a.counts = Counter()
            a.bytes += piece.bytes
            a.tokens += piece.tokens
            a.replaced += piece.replaced
            a.encodings.add(piece.encoding)
            a.files.add(piece.file)  # type: ignore[arg-type]
        elif a.failure is None and piece.status != COUNTED:
            a.failure = piece
        if a.remaining:
            return
        del self._chunked[ref.path]
        encodings = a.encodings - {ASCII}
        if a.failure is None and len(a.files) > 1:
            a.failure = PieceResult(ref.path, CHANGED, "changed between its chunks", 0, 0, "")
        if a.failure is None and len(encodings) > 1:
            reason = f"chunks decode as different encodings: {', '.join(sorted(encodings))}"
            a.failure = PieceResult(ref.path, FAILED, reason, a.bytes, 0, "", a.files.pop())
        if a.failure is not None and a.failure.status == VANISHED:
            self._vanished.append(ref.path)
        elif a.failure is not None and a.failure.status == CHANGED:
            log.info("%s: %s; counted once it holds still", ref.path, a.failure.reason)
            self._returned.append(ref.path)
        elif a.failure is not None:
            self._pending.add({}, [ledger_row(ref, a.failure)])
        else:
            encoding = encodings.pop() if encodings else ASCII
            reason = replaced_reason(a.replaced)
            whole = PieceResult(
                ref.path, COUNTED, reason, a.bytes, a.tokens, encoding, a.files.pop(), a.replaced
            )
            bucket = self.bucket_of(ref) if self.bucket_of else None
            kept = [a.counts] if self.config.keep_file_counts else None
            self._pending.add(a.counts, [ledger_row(ref, whole)], bucket, kept)

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
        if (self._held or self._pending) and due and now >= self._retry_at:
            batch = self._held or self._pending  # a merge that failed is retried as it was
            if batch is self._pending:
                self._pending = Merge()
            started = time.perf_counter()
            try:
                self.store.merge(batch)
            except MergeRefused as exc:  # for what it holds: retrying cannot help
                self._held = None
                self._give_back(batch, exc)
                progress.retry, self._returned = self._returned, []
                progress.follows_dropped, self._follows_dropped = True, False
                return progress
            except StoreUnavailable as exc:
                self._held = batch
                self._writer_down(exc, len(batch.rows), now)
                return progress
            self._held = None
            self._writer_up(now)
            progress.seconds = time.perf_counter() - started
            spacing = BACKLOG_SPACING if self.batcher.ready(now) else MERGE_SPACING
            gap = min(spacing * progress.seconds, MAX_MERGE_GAP)
            self._next_merge = now + max(self.merge_interval, gap)
            progress.rows = batch.rows
            for row in progress.rows:
                self._given_back.pop(row.path, None)
        progress.vanished, self._vanished = self._vanished, []
        progress.retry, self._returned = self._returned, []
        progress.follows_dropped, self._follows_dropped = self._follows_dropped, False
        progress.task_seconds, self._task_seconds = self._task_seconds, []
        return progress

    def _writer_down(self, cause: StoreUnavailable, files: int, now: float) -> None:
        """A merge failed for the state of the database: hold it and back off.

        Logged once when it starts failing (and once when it recovers), not
        per try: a database down for an hour must not flood the log."""
        delay = RETRY_SECONDS[min(self._merge_failures, len(RETRY_SECONDS) - 1)]
        self._merge_failures += 1
        self._retry_at = now + delay
        self.writer_problem = str(cause)
        if self._merge_failures == 1:
            self._failing_since = now
            log.error(
                "the database cannot take merges (%s); holding %d files, nothing lost; "
                "retrying with back-off", cause, files,
            )  # fmt: skip
        else:
            log.debug("merge try %d failed (%s); next in %gs", self._merge_failures, cause, delay)

    def _writer_up(self, now: float) -> None:
        if self._merge_failures:
            log.warning(
                "the database takes merges again, after %d tries in %.0f s; held files merged",
                self._merge_failures, now - self._failing_since,
            )  # fmt: skip
        self._merge_failures = 0
        self.writer_problem = None

    def _give_back(self, pending: Merge, cause: BaseException) -> None:
        """Drop a merge which cannot be committed for what it holds (or may be
        half-added), and give its files back to be decided on again.

        Nothing of it was committed, so nothing is lost: each file is counted
        again. A file whose very bytes the ledger already counted (the
        duplicate a unique index refused) is recorded as `linked` to where it
        was counted; a file given back MAX_ATTEMPTS times is failed with the
        cause, so a refusal cannot loop.
        """
        rows = {r.path: r for r in pending.rows}
        self._follows_dropped |= bool(pending.advances)
        log.error(
            "merge refused (%s: %s); nothing of it committed; its %d files are counted again",
            type(cause).__name__, cause, len(rows),
        )  # fmt: skip
        for path, row in rows.items():
            where = self.store.counted_as(row.file) if row.status == COUNTED else None
            self._given_back[path] += 1
            if where is not None:
                reason = f"the same file was already counted as {where}"
                self._pending.add({}, [row._replace(tokens=0, status=LINKED, reason=reason)])
            elif self._given_back[path] >= MAX_ATTEMPTS:
                reason = f"refused {MAX_ATTEMPTS} times: {type(cause).__name__}: {cause}"
                self._pending.add({}, [row._replace(tokens=0, status=FAILED, reason=reason)])
            else:
                self._returned.append(path)

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
        while (self._inflight or self._pending or self._held or self._holds) and (
            time.monotonic() < end
        ):
            if not self.writer_failing:
                self._ask_for_holds(time.monotonic(), always=True)
            progress.extend(self.pump(0.1, submit=False))  # sleeps while backing off
        self._chunked.clear()
        return progress

    def close(self) -> None:
        self._pool.close()


@contextmanager
def open_pipeline(config: Config, merge_interval: float = MERGE_INTERVAL) -> Iterator[Pipeline]:
    """The writer's set-up, shared by `run` and `ingest`: the store (locked), the pool.

    On the way out the pool is shut down and the store closed, which gives
    up the writer lock; callers decide first what to finish (see Pipeline.finish).
    """
    engines.check(config.tokenizer)
    store = open_store(config.db, config.tokenizer, config.host_id, buckets=config.buckets)
    try:
        pipeline = Pipeline(store, config, merge_interval)
        try:
            yield pipeline
        finally:
            pipeline.close()
    finally:
        store.close()
