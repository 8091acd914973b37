"""watchdog observer -> a queue of (kind, path) sightings for the daemon's loop.

The handler runs on the observer's thread and only hands events off; all
decisions are made in the main loop. Kinds: "complete" (closed after write,
or renamed into the tree), "changed" (created: settle first),
"folder" (a folder appeared: scan it, since files written into it before its
watch was added raise no events), "grown" (written to, in a followed folder only).
"""

from __future__ import annotations

import os
import queue
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from . import failpoints

Sighting = tuple[str, str]

# Only what we act on, so the kernel sends nothing else (on Linux this sets
# the inotify mask). Not modify events: one comes per write() and a settling
# file is polled anyway; not open or close-without-write: our own workers'
# reads would raise two events per file.
# Deletions: for watch entries with on_delete = "forget" (ondelete.py).
EVENTS = [
    FileClosedEvent, FileCreatedEvent, FileMovedEvent, DirCreatedEvent, DirMovedEvent,
    FileDeletedEvent,
]
# A followed folder's files grow in place: each write is a line or a few to count.
FOLLOW_EVENTS = [*EVENTS, FileModifiedEvent]


class _Handler(FileSystemEventHandler):
    def __init__(self, out: queue.Queue[Sighting]) -> None:
        self.out = out

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        path = os.fsdecode(event.dest_path if kind == EVENT_TYPE_MOVED else event.src_path)
        failpoints.fail("watcher-event", path)  # an exception here kills the observer
        if event.is_directory:
            if kind in (EVENT_TYPE_CREATED, EVENT_TYPE_MOVED):
                self.out.put(("folder", path))
        elif kind in (EVENT_TYPE_CLOSED, EVENT_TYPE_MOVED):
            self.out.put(("complete", path))
        elif kind == EVENT_TYPE_CREATED:
            self.out.put(("changed", path))
        elif kind == EVENT_TYPE_MODIFIED:
            self.out.put(("grown", path))
        elif kind == EVENT_TYPE_DELETED:
            self.out.put(("deleted", path))


class Watcher:
    """One observer over every watched root, recursively.

    inotify by default; `polling` (a stat of the tree every second) where
    inotify cannot be had, e.g. when the watch limit is reached.
    """

    def __init__(
        self,
        roots: list[Path],
        out: queue.Queue[Sighting],
        polling: bool = False,
        followed: frozenset[Path] = frozenset(),
    ) -> None:
        self.polling = polling
        self._observer = PollingObserver() if polling else Observer()
        handler = _Handler(out)
        for root in roots:
            events = FOLLOW_EVENTS if root in followed else EVENTS
            self._observer.schedule(handler, str(root), recursive=True, event_filter=events)

    def start(self) -> None:
        """Start watching; OSError if the kernel refuses (inotify limits)."""
        if not self.polling:
            failpoints.fail("watcher-start", "", OSError)
        self._observer.start()

    def alive(self) -> bool:
        return self._observer.is_alive()

    def stop(self) -> None:
        self._observer.stop()
        if self._observer.is_alive():
            self._observer.join(timeout=5)
