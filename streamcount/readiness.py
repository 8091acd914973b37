"""When is a file complete? Close and rename events say so at once; otherwise
its size and mtime must hold still for `settle_seconds`.

Pure state: stat results and both clocks come in as arguments. Whether a
file is already known (counted, or in flight) is the caller's question (see
knownfiles.py); this module only says when a file holds still.
"""

from __future__ import annotations

import os
from collections.abc import Callable


class Readiness:
    def __init__(self, settle_seconds: float) -> None:
        self.settle = settle_seconds
        # path -> (size, mtime_ns, monotonic time they were first seen so)
        self.settling: dict[str, tuple[int, int, float]] = {}

    def offer(
        self, path: str, st: os.stat_result, now: float, wall: float, complete: bool = False
    ) -> bool:
        """Note a sighting of `path`; True if it is ready to count now.

        `complete` is a close-after-write or a rename into the tree. A file
        first seen by a scan is ready when its mtime is already older than
        the settle time (it was written before we looked).
        """
        shape = (st.st_size, st.st_mtime_ns)
        seen = self.settling.get(path)
        if complete or (seen is None and wall - st.st_mtime_ns / 1e9 >= self.settle):
            self.settling.pop(path, None)
            return True
        if seen is None or seen[:2] != shape:
            self.settling[path] = (*shape, now)
        return False

    def due(
        self, now: float, stat: Callable[[str], os.stat_result | None]
    ) -> list[tuple[str, os.stat_result]]:
        """Settling files whose size and mtime have not changed for `settle_seconds`."""
        ready = []
        for path, (size, mtime_ns, since) in list(self.settling.items()):
            st = stat(path)
            if st is None:
                del self.settling[path]
            elif (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
                self.settling[path] = (st.st_size, st.st_mtime_ns, now)
            elif now - since >= self.settle:
                del self.settling[path]
                ready.append((path, st))
        return ready
