"""The daemon: scan, watch, settle, batch, count, merge; until told to stop.

One thread makes every decision (the main loop below); the watchdog thread
only queues sightings and the signal handler only sets a flag. Start-up
order matters: the observer starts before the catch-up scan, so a file
written in between is seen by one or the other. A periodic rescan is the
source of truth, because inotify can overflow and drop events silently.
"""

from __future__ import annotations

import logging
import os
import queue
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from . import ondelete
from .config import Config, ConfigError, WatchDir
from .discovery import Rules, regular_stat, scan
from .follow import Follower
from .inbox import finish_pending, root_of, settle_rows
from .knownfiles import APPENDED, COUNT, KnownFiles, admit
from .logs import setup_logging
from .metrics import Metrics
from .notify import Notifier
from .pipeline import Pipeline, Progress, open_pipeline
from .readiness import Readiness
from .stopflag import StopFlag
from .store import StoreError
from .tokens import Tokenizer
from .watcher import Sighting, Watcher
from .work import COUNTED, LINKED, MOVED

log = logging.getLogger(__name__)

TICK = 0.05  # longest the loop sleeps before looking at events, results and clocks
SIGHTINGS_SECONDS = 0.05  # longest the loop decides on sightings before it pumps again
STATUS_SECONDS = 2.0  # how often STATUS and the status file are refreshed
# Settings a SIGHUP cannot change: the database, the host id and the tokenizer
# shape the totals, and the pool is sized once.
FIXED_WHILE_RUNNING = ("db", "host_id", "tokenizer", "workers", "metrics_port", "metrics_address")
FIXED_WHILE_RUNNING += ("cluster_scheduler", "cluster_shared_filesystem", "cluster_fallback")
FIXED_WHILE_RUNNING += ("cluster_max_bytes_in_flight",)


class DaemonError(ConfigError):
    """The daemon cannot start, or reload, as configured."""


class Daemon:
    def __init__(
        self,
        config: Config,
        pipeline: Pipeline,
        stop: StopFlag,
        reload: Callable[[], Config] | None = None,
    ) -> None:
        self.config = config
        self.reload_config = reload
        self.pipeline = pipeline
        self.stop = stop
        self.rules = Rules(config.include, config.exclude)
        self.sightings: queue.Queue[Sighting] = queue.Queue()
        self.readiness = Readiness(config.settle_seconds)
        finish_pending(pipeline.store.ledger(), config.watch)  # moves a crash left undone
        self.known = KnownFiles(pipeline.store.ledger())
        self.in_ledger_at_start = len(self.known)
        self.follower = Follower(pipeline.store, config.follow_idle_seconds)
        self._tokenizer: Tokenizer | None = None  # followed lines are counted here
        self.polling = False
        self.watcher = self._new_watcher()
        self.notifier = Notifier()
        self.metrics = Metrics()
        self.started_at = _utc_now()
        self.counted = 0
        self.last_merge: str | None = None
        self._next_ping = self._next_status = self._next_rescan = 0.0
        self._removed: set[str] = set()  # deleted under on_delete = "forget", to forget
        self._not_forgotten: set[str] = set()  # refused once: not tried again
        self._status_at = time.monotonic()
        self._counted_at_status = 0

    def run(self) -> None:
        if self.config.metrics_port:
            self.metrics.serve(self.config.metrics_address, self.config.metrics_port)
            log.info(
                "metrics on http://%s:%d/metrics",
                self.config.metrics_address, self.config.metrics_port,
            )  # fmt: skip
        self._start_watcher()
        self.rescan()
        self._next_rescan = time.monotonic() + self.config.rescan_seconds
        self.notifier.send("READY=1", f"STATUS={self._status_line(0.0)}")
        log.info(
            "watching %s; %d files already in the ledger, %d queued",
            ", ".join(str(d.path) for d in self.config.watch),
            self.in_ledger_at_start,
            len(self.known.inflight),
        )
        try:
            self._loop()
            inflight = self.pipeline.inflight
            message = f"signal {self.stop.signum}: finishing {inflight} tasks in flight"
            log.info(message)
            self.notifier.send("STOPPING=1", f"STATUS={message}")
            self._write_status("stopping")
            self.watcher.stop()
            self._report(self.pipeline.finish())
            self._write_status("stopped")
        finally:  # also on an error: no observer thread or metrics server left behind
            self.watcher.stop()
            self.notifier.close()
            self.metrics.close()

    def _loop(self) -> None:
        """Until a stop signal: take sightings, offer what is due, rescan, pump, report."""
        while not self.stop.event.is_set():
            self._take_sightings(wait=0 if self.pipeline.inflight else TICK)
            now = time.monotonic()
            for path, st in self.readiness.due(now, regular_stat):
                self._add(path, st)
            if self._removed:
                self._forget_removed()
            if now >= self._next_rescan or not self.watcher.alive():
                if not self.watcher.alive():
                    log.error("the file watcher stopped; restarting it and rescanning")
                    self._restart_watcher()
                self.rescan()
                self._next_rescan = time.monotonic() + self.config.rescan_seconds
            self._follow()
            self._report(self.pipeline.pump(TICK if self.pipeline.inflight else 0))
            self._heartbeat(time.monotonic())
            if self.stop.reload.is_set():
                self.stop.reload.clear()
                self._reload()

    def _follow(self) -> None:
        """Count the new lines of followed files that changed (none: nothing done)."""
        if self.pipeline.writer_failing:
            return  # held until the database takes merges again; nothing piles up
        if self._tokenizer is None and any(d.follow for d in self.config.watch):
            self._tokenizer = Tokenizer(self.config.tokenizer)
        if self._tokenizer is not None:
            self.follower.step(self.pipeline.add_follow, self._tokenizer)

    def _reload(self) -> None:
        """SIGHUP: apply a changed config, or keep the old one whole if it cannot be."""
        self.notifier.send("RELOADING=1")
        try:
            new = self.reload_config() if self.reload_config else self.config
            check_watch_dirs(new)
            fixed = [k for k in FIXED_WHILE_RUNNING if getattr(new, k) != getattr(self.config, k)]
            if fixed:
                raise DaemonError(
                    f"{', '.join(fixed)} cannot change while running (restart to change it)"
                )
        except (ConfigError, DaemonError) as exc:
            log.error("reload refused: %s; keeping the old config", exc)
            self.notifier.send("READY=1")
            return
        old_roots = self.config.watch
        self.config = new
        self.rules = Rules(new.include, new.exclude)
        self.readiness.settle = new.settle_seconds
        self.pipeline.reconfigure(new)
        setup_logging(new.log_level, new.log_format)
        if new.watch != old_roots:
            self._restart_watcher()
            self.rescan()
        self._next_rescan = time.monotonic() + new.rescan_seconds  # a new interval: from now
        log.info("config reloaded; watching %s", ", ".join(str(d.path) for d in new.watch))
        self.notifier.send("READY=1", f"STATUS={self._status_line(0.0)}")

    def _heartbeat(self, now: float) -> None:
        """Periodic signs of life: the watchdog ping, STATUS, the status file.

        They are sent from the loop itself, so a loop stuck anywhere (a merge
        that never returns) stops the pings and systemd restarts the service.
        """
        self.metrics.sample(self.pipeline)
        interval = self.notifier.watchdog_interval
        if interval and now >= self._next_ping:
            self.notifier.send("WATCHDOG=1")
            self._next_ping = now + interval
        if now >= self._next_status:
            rate = (self.counted - self._counted_at_status) / max(now - self._status_at, 1e-9)
            self._status_at, self._counted_at_status = now, self.counted
            self.notifier.send(f"STATUS={self._status_line(rate)}")
            self._write_status("running", rate)
            self._next_status = now + STATUS_SECONDS

    def _status_line(self, rate: float) -> str:
        problem = self.pipeline.writer_problem
        return (
            f"{self.counted} files counted since start, backlog {self.pipeline.backlog}, "
            f"in flight {self.pipeline.inflight}, held {self.pipeline.held}, {rate:.1f} files/s"
            + (f"; the database cannot take merges: {problem}" if problem else "")
        )

    def _write_status(self, state: str, rate: float = 0.0) -> None:
        status = {
            "pid": os.getpid(),
            "host": self.config.host_id,
            "state": state,
            "started_at": self.started_at,
            "updated_at": _utc_now(),
            "watching": [str(d.path) for d in self.config.watch],
            "backlog": self.pipeline.backlog,
            "in_flight": self.pipeline.inflight,
            "held": self.pipeline.held,
            "counted_since_start": self.counted,
            "files_per_second": round(rate, 2),
            "last_merge": self.last_merge,
            "writer_problem": self.pipeline.writer_problem,
            **self.pipeline.executor_status(),
        }
        try:
            self.pipeline.store.write_status(status)
        except (OSError, StoreError) as exc:
            log.warning("cannot write the status: %s", exc)

    def rescan(self) -> None:
        """Offer every wanted file under every root: the source of truth."""
        now, wall = time.monotonic(), time.time()
        seen = 0
        for root in self.config.watch:
            present: set[str] = set()
            for path, st in scan(root.path, self.rules):
                seen += 1
                if root.on_delete == "forget":
                    present.add(path)
                if root.follow:
                    self._follow_seen(path, root)
                    continue
                if not self.known.unchanged(path, st) and self.readiness.offer(path, st, now, wall):
                    self._add(path, st, root)
            if root.on_delete == "forget":
                self._removed.update(ondelete.missing(self.known, root.path, present))
        if self._removed:
            self._forget_removed()
        log.debug("rescanned %d files in %.0f ms", seen, (time.monotonic() - now) * 1000)

    def _take_sightings(self, wait: float) -> None:
        """Decide on the watcher's sightings: those waiting, for SIGHTINGS_SECONDS at
        most, so a flood of events (a folder of 100,000 files moved in) does not
        keep the loop from sending work to the workers meanwhile."""
        try:
            kind, path = self.sightings.get(timeout=wait) if wait else self.sightings.get_nowait()
        except queue.Empty:
            return
        end = time.monotonic() + SIGHTINGS_SECONDS
        while True:
            now = time.monotonic()
            self._sighting(kind, path, now, time.time())
            if now >= end:
                return  # the rest wait in the queue, in order
            try:
                kind, path = self.sightings.get_nowait()
            except queue.Empty:
                return

    def _sighting(self, kind: str, path: str, now: float, wall: float) -> None:
        root = self._root_of(path)
        if root is None:
            return
        if kind == "folder":
            if not self.rules.excluded(Path(path).name):
                for found, st in scan(Path(path), self.rules):
                    if self.rules.wanted(found, root.path):
                        self._offer(found, st, root, now, wall)
            return
        if not self.rules.wanted(path, root.path):
            return
        if kind == "deleted":
            if root.on_delete == "forget":
                self._removed.add(path)
            return
        if root.follow:
            self._follow_seen(path, root)
            return
        st = regular_stat(path)
        if st is not None:
            self._offer(path, st, root, now, wall, kind == "complete")

    def _forget_removed(self) -> None:
        """Forget the counted files removed under on_delete = "forget" (ondelete.py)."""
        removed, self._removed = self._removed, set()
        try:
            ondelete.forget_removed(
                self.pipeline.store, self.config, self.known, removed, self._not_forgotten
            )
        except StoreError as exc:  # the next rescan finds them missing again
            log.error("cannot forget removed files now: %s", exc)

    def _follow_seen(self, path: str, root: WatchDir) -> None:
        self.follower.seen(path, root.encoding, self.config.decode_errors_of(root))

    def _offer(
        self,
        path: str,
        st: os.stat_result,
        root: WatchDir,
        now: float,
        wall: float,
        complete: bool = False,
    ) -> None:
        """A sighting of a wanted file: decide on it once it holds still."""
        if root.follow:
            self._follow_seen(path, root)
            return
        if not self.known.unchanged(path, st) and self.readiness.offer(
            path, st, now, wall, complete
        ):
            self._add(path, st, root)

    def _reconsider(self, paths: list[str]) -> None:
        """Files whose fate waited on another (in flight), or that came back
        uncounted: look at them again as they are now."""
        if not paths:  # nearly always: called for every merged row
            return
        now, wall = time.monotonic(), time.time()
        for path in paths:
            root = self._root_of(path)
            st = regular_stat(path)
            if root is not None and st is not None and self.rules.wanted(path, root.path):
                self._offer(path, st, root, now, wall)

    def _root_of(self, path: str) -> WatchDir | None:
        return root_of(path, self.config.watch)

    def _add(self, path: str, st: os.stat_result, root: WatchDir | None = None) -> None:
        root = root or self._root_of(path)
        if root is None:
            return
        decode_errors = self.config.decode_errors_of(root)
        now = time.monotonic()
        verdict = admit(self.known, self.pipeline, path, st, root.encoding, now, decode_errors)
        if verdict.reason and verdict.action in (COUNT, APPENDED):
            log.info("%s: %s", path, verdict.reason)

    def _new_watcher(self) -> Watcher:
        followed = frozenset(d.path for d in self.config.watch if d.follow)
        return Watcher([d.path for d in self.config.watch], self.sightings, self.polling, followed)

    def _restart_watcher(self) -> None:
        self.watcher.stop()
        self.watcher = self._new_watcher()
        self._start_watcher()

    def _start_watcher(self) -> None:
        """Start the observer; if inotify is refused (its limits), poll instead."""
        try:
            self.watcher.start()
        except OSError as exc:
            log.error("cannot watch with inotify (%s); polling the folders instead", exc)
            self.polling = True
            self.watcher = self._new_watcher()
            self.watcher.start()

    def _report(self, progress: Progress) -> None:
        self.metrics.record(progress)
        if progress.follows_dropped:
            log.warning("followed files: offsets taken again from the ledger; read again")
            self.follower.reload()
        for path in progress.vanished:
            log.info("%s: deleted before it was counted", path)
            self._reconsider(self.known.settle(path))
        for path in progress.retry:
            self._reconsider([*self.known.settle(path), path])
        if not progress.rows:
            return
        tokens = 0
        for row in progress.rows:
            tokens += row.tokens
            if row.status in (MOVED, LINKED):
                log.info("%s: %s", row.path, row.reason)
            elif row.status != COUNTED:
                log.warning("%s: %s: %s", row.path, row.status, row.reason)
            self._reconsider(self.known.record(row))
        settle_rows(progress.rows, self.config.watch)  # after = delete / move:DIR
        self.counted += len(progress.rows)
        self.last_merge = _utc_now()
        log.info(
            "merged %d files, %d tokens in %.0f ms; backlog %d, in flight %d",
            len(progress.rows), tokens, progress.seconds * 1000,
            self.pipeline.backlog, self.pipeline.inflight,
        )  # fmt: skip


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_watch_dirs(config: Config) -> None:
    if not config.watch:
        raise DaemonError("nothing to watch: give --watch DIR or discovery.watch in the config")
    for d in config.watch:
        if not d.path.is_dir():
            raise DaemonError(f"watch directory {d.path} does not exist or is not a folder")


def run(config: Config, reload: Callable[[], Config] | None = None) -> None:
    """Run the daemon in the foreground until SIGTERM or SIGINT.

    `reload` re-reads the config on SIGHUP (the CLI's flags still apply).
    """
    check_watch_dirs(config)
    stop = StopFlag()
    stop.install()
    with open_pipeline(config) as pipeline:
        Daemon(config, pipeline, stop, reload).run()
    log.info("stopped")
