"""Where tasks run: the local process pool (default) or a Dask cluster.

Both give the pipeline one concurrent.futures shape: `submit(task)` returns
a `concurrent.futures.Future` of its TaskResult (Dask's through
`Client.get_executor`), so the pipeline waits on either with
`concurrent.futures.wait`. What differs is said by four small methods:
how many tasks to keep in flight (`slots`), whether it can take a task now
(`ready`, `has_room`), and whether a failure was the executor's, not the
task's (`lost`): a task the cluster lost (scheduler gone, a worker that
refused it) goes back to the backlog and costs it no try.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from typing import Any

from . import __version__
from .config import Config, ConfigError
from .textbounds import MAX_LINE_BYTES
from .tokens import count_task, init_worker, load_piece
from .work import Task, TaskResult

log = logging.getLogger(__name__)

RECONNECT_SECONDS = (1, 2, 5, 10, 30)  # back-off while the scheduler cannot be reached
CONNECT_TIMEOUT = 3.0  # seconds one connection attempt may block the daemon's loop
SLOTS_SECONDS = 5.0  # how often the cluster's thread count is asked again


class Unavailable(Exception):
    """The executor cannot take tasks now (the scheduler is gone); nothing was sent."""


class LocalPool:
    """The worker processes of this machine: one concurrent.futures pool of one
    process per slot, so a task can be sent to a given worker (the one that
    holds counts to hand over: see Hold in tokens.py) and a worker that dies
    fails only its own slot's tasks."""

    problem: str | None = None
    holds = True  # a worker keeps counts across tasks until asked for them

    def __init__(self, config: Config) -> None:
        self.config = config
        self._pools = [self._new_pool() for _ in range(config.workers)]
        self._turn = itertools.count()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the daemon runs threads (watchdog), and forking a
        # process that runs threads can deadlock the child. Not forkserver
        # either: its workers are the server's children and hold its liveness
        # pipe open, so neither it nor they notice when the daemon is killed;
        # spawned workers are the daemon's own and die with it (PDEATHSIG).
        pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(self.config.tokenizer, os.getpid()),
        )
        pool.submit(os.getpid)  # start it now (it loads the tokenizer), not on the first file
        return pool

    def slots(self) -> int:
        return self.config.workers

    def ready(self) -> bool:
        return True

    def has_room(self) -> bool:
        return True

    def submit(self, task: Task, slot: int | None = None) -> Future[TaskResult]:
        """Send `task` to the worker of `slot`, or (None) to each in turn."""
        if slot is None:
            slot = next(self._turn) % len(self._pools)
        return self._pools[slot].submit(count_task, task)

    def lost(self, exc: BaseException) -> str | None:
        return None  # a broken pool is the pipeline's to handle (BrokenProcessPool)

    def restart(self, slot: int | None = None) -> None:
        """The worker of `slot` (None: every one) died: its tasks failed; start another."""
        for i in range(len(self._pools)) if slot is None else (slot,):
            self._pools[i].shutdown(wait=False, cancel_futures=True)
            self._pools[i] = self._new_pool()

    def status(self) -> dict[str, Any]:
        return {"executor": "local", "workers": self.config.workers}

    def close(self) -> None:
        # One after the other, each joined: shutdown(wait=False) would drop the
        # pool's manager thread unjoined, to be joined at interpreter exit.
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)


def require_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError(
            "cluster.scheduler needs Dask's distributed package: "
            "pip install 'streamcount[cluster]'"
        ) from None
    return distributed


class DaskCluster:
    """Tasks on a Dask cluster, through `Client.get_executor()`.

    The file bytes go with the task (read here, with their identity, by
    tokens.load_piece: the ledger records the bytes that were counted), or
    with `shared_filesystem` only the paths. Bytes sent and not yet back are
    bounded by `max_bytes_in_flight`. When the scheduler goes away, Dask
    cancels every future (its client's reconnect does); those tasks go back
    to the backlog and the client is made again with back-off; with
    `fallback = "local"` a local pool counts meanwhile.
    """

    # Counts come back with each task: Dask decides where a task runs, and may
    # run it twice or move it, so there is no one worker to hand a hold over.
    holds = False

    def __init__(self, config: Config, address: str) -> None:
        self._dist = require_distributed()
        from .cluster import TokenizerSpec

        self.config = config
        self.address = address
        self.spec = TokenizerSpec.of(config.tokenizer)
        self.fingerprint = self.spec.fingerprint
        self.limit = config.cluster_max_bytes_in_flight
        self.bytes_in_flight = 0
        self.peak_bytes_in_flight = 0
        self.problem: str | None = None
        self._lock = threading.Lock()
        self._client: Any = None
        self._executor: Any = None
        self._failures = 0
        self._refusals = 0  # tasks refused by a worker since the last one counted
        self._retry_at = 0.0
        self._slots = 1
        self._slots_at = 0.0
        self._fallback: LocalPool | None = None
        self._sent: set[Future[TaskResult]] = set()  # futures of this client, not done
        self._connect()
        if self._client is None and config.cluster_fallback != "local":
            log.warning("starting anyway; tasks wait for the scheduler")

    # -- the connection -------------------------------------------------------

    def _connect(self) -> None:
        from .cluster import PLUGIN_NAME, TokenizerPlugin

        try:
            client = self._dist.Client(
                self.address, timeout=CONNECT_TIMEOUT, set_as_default=False
            )
        except (OSError, TimeoutError) as exc:
            self._down(f"cannot reach the scheduler {self.address}: {exc}")
            return
        try:
            client.register_plugin(TokenizerPlugin(self.spec), name=PLUGIN_NAME)
            self._slots = max(1, sum(client.nthreads().values()))
            self._slots_at = time.monotonic()
        except Exception as exc:  # the scheduler went away again, or a worker failed setup
            client.close(timeout=1)
            self._down(f"the scheduler {self.address} took no tokenizer: {exc}")
            return
        self._client = client
        self._executor = client.get_executor(pure=False)
        if self._failures:
            log.warning("the scheduler %s is back after %d tries", self.address, self._failures)
        else:
            log.info("tasks go to the Dask scheduler %s (%d threads)", self.address, self._slots)
        self._failures = 0
        self.problem = None

    def _down(self, problem: str) -> None:
        # A worker that refuses every task (another version) must not make the
        # daemon reconnect every second: refusals keep the back-off growing.
        tries = self._failures + self._refusals
        delay = RECONNECT_SECONDS[min(tries, len(RECONNECT_SECONDS) - 1)]
        if self._failures == 0:
            log.error("%s; keeping the backlog and retrying with back-off", problem)
        self._failures += 1
        self._retry_at = time.monotonic() + delay
        self.problem = problem

    def _drop_client(self, problem: str) -> None:
        client, self._client, self._executor = self._client, None, None
        # A future whose result was being fetched when the connection broke may
        # never be told (Dask logs the error and leaves it pending): cancel them
        # all, so the pipeline gives their tasks back to the backlog.
        for future in list(self._sent):
            if future.cancel():
                future.set_running_or_notify_cancel()
        if client is not None:
            # Closing cancels the client's own reconnect loop, which logs that as an
            # error with a traceback; our one line (below) says it instead.
            quiet = logging.getLogger("distributed.client")
            level, quiet.level = quiet.level, logging.CRITICAL
            try:
                with contextlib.suppress(Exception):  # already closed, or its loop is gone
                    client.close(timeout=1)
            finally:
                quiet.level = level
        self._down(problem)

    def ready(self) -> bool:
        """Connected (connecting again if it is time), or counting locally meanwhile."""
        client = self._client
        if client is not None and client.status != "running":
            self._drop_client(f"lost the scheduler {self.address} ({client.status})")
        if self._client is None and time.monotonic() >= self._retry_at:
            self._connect()
        if self._client is None and self.config.cluster_fallback == "local":
            if self._fallback is None:
                log.warning("counting on the local pool until the scheduler is back")
                self._fallback = LocalPool(self.config)
            return True
        return self._client is not None

    # -- tasks ----------------------------------------------------------------

    def slots(self) -> int:
        """Tasks to keep in flight per worker thread: the cluster's threads (asked
        again every SLOTS_SECONDS: workers come and go), or the fallback's."""
        if self._client is None and self._fallback is not None:
            return self._fallback.slots()
        if self._client is not None and time.monotonic() >= self._slots_at + SLOTS_SECONDS:
            self._slots_at = time.monotonic()
            try:
                self._slots = max(1, sum(self._client.nthreads().values()))
            except Exception as exc:  # the scheduler is going: ready() will see it
                log.debug("cannot ask the scheduler for its threads: %s", exc)
        return self._slots

    def _task_bound(self) -> int:
        """The most bytes one task can carry (a batch, or a chunk and its last line)."""
        return max(self.config.batch_max_bytes, self.config.chunk_bytes + MAX_LINE_BYTES)

    def has_room(self) -> bool:
        """Another task of any size fits under the bound (one always may, alone)."""
        if self.config.cluster_shared_filesystem or self._client is None:
            return True
        with self._lock:
            return self.bytes_in_flight == 0 or (
                self.bytes_in_flight + self._task_bound() <= self.limit
            )

    def submit(self, task: Task, slot: int | None = None) -> Future[TaskResult]:
        """Send `task` to the cluster (`slot` is the local pool's notion: ignored)."""
        if self._client is None:
            if self._fallback is not None:
                return self._fallback.submit(task)
            raise Unavailable(self.problem or "not connected")
        from .cluster import count_remote

        loaded = None
        size = 0
        if not self.config.cluster_shared_filesystem:
            loaded = tuple(load_piece(p) for p in task.pieces)
            size = sum(len(got[0]) for got in loaded if isinstance(got, tuple))
        try:
            future = self._executor.submit(
                count_remote, task, loaded, self.fingerprint, __version__
            )
        except Exception as exc:  # the client closed under us
            self._drop_client(f"cannot send to the scheduler {self.address}: {exc}")
            raise Unavailable(self.problem) from exc
        self._add_bytes(size)
        self._sent.add(future)
        future.add_done_callback(lambda f: self._done(f, size))
        return future

    def _done(self, future: Future[TaskResult], size: int) -> None:
        self._sent.discard(future)
        self._add_bytes(-size)
        if not future.cancelled() and future.exception() is None:
            self._refusals = 0

    def _add_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes_in_flight += n
            self.peak_bytes_in_flight = max(self.peak_bytes_in_flight, self.bytes_in_flight)

    def lost(self, exc: BaseException) -> str | None:
        """Why a failed task was the cluster's doing, not its own; None if its own."""
        from .cluster import WorkerRefused

        if isinstance(exc, CancelledError):
            problem = f"tasks cancelled by Dask (lost the scheduler {self.address}?)"
        elif isinstance(exc, WorkerRefused):
            problem = f"a worker refused a task: {exc}"
            self._refusals += 1
        elif isinstance(exc, OSError | TimeoutError):
            problem = f"{type(exc).__name__}: {exc}"
        else:
            return None
        if self._client is not None:  # connect again: a new scheduler needs the tokenizer
            self._drop_client(problem)
        return problem

    def restart(self, slot: int | None = None) -> None:
        if self._fallback is not None:
            self._fallback.restart()

    def status(self) -> dict[str, Any]:
        return {
            "executor": f"dask {self.address}",
            "executor_problem": self.problem,
            "workers": self._slots,
            "bytes_in_flight": self.bytes_in_flight,
            "bytes_in_flight_peak": self.peak_bytes_in_flight,
            "bytes_in_flight_limit": self.limit,
        }

    def close(self) -> None:
        if self._fallback is not None:
            self._fallback.close()
        if self._client is not None:
            self._client.close(timeout=5)


Executor = LocalPool | DaskCluster


def make_executor(config: Config) -> Executor:
    """The local pool, or the Dask cluster `cluster_scheduler` names."""
    if config.cluster_scheduler:
        return DaskCluster(config, config.cluster_scheduler)
    return LocalPool(config)
