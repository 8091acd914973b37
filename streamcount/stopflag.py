"""Stop signals as a flag: SIGTERM/SIGINT ask for a warm stop, a second one exits at once.

The handlers do nothing else (no logging, no I/O, no exception raised into
whatever the main thread was doing: a KeyboardInterrupt in the middle of
summing a result would leave it half-added). The loop looks at the flag.
Exiting at once on the second signal is safe because every commit is
all-or-nothing.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopFlag:
    """SIGTERM/SIGINT set the flag (a warm stop); a second signal exits at once.
    SIGHUP asks for the config to be reloaded (the daemon's only)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reload = threading.Event()
        self.signum = 0

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)
        signal.signal(signal.SIGHUP, lambda signum, frame: self.reload.set())

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        """The stop handlers for the duration of a block (`ingest`, a library call),
        then the ones that were there before."""
        if threading.current_thread() is not threading.main_thread():
            yield self  # only the main thread may set handlers; its own are kept
            return
        before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)
        try:
            yield self
        finally:
            for signum, handler in before.items():
                signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            os._exit(128 + signum)
        self.signum = signum
        self.event.set()
