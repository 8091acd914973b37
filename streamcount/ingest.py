"""One-shot counting of files and folders through the same pipeline and ledger.

Running it twice counts nothing twice: paths already in the ledger are
skipped before any work is done. It commits every COMMIT_SECONDS while the
workers are busy, and at the end: a crash or Ctrl+C loses at most that much
work, which the next run does again.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config
from .discovery import Rules, file_ref, regular_stat, scan
from .pipeline import Progress, open_pipeline
from .work import FileRef

# A merge costs about the size of the vocabulary however few files it holds,
# so a backfill merges seldom; the daemon merges as soon as it can (latency).
COMMIT_SECONDS = 5.0


@dataclass
class Summary:
    found: int = 0
    already: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    tokens: int = 0
    vanished: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    def add(self, progress: Progress) -> None:
        for row in progress.rows:
            self.by_status[row.status] += 1
            self.bytes += row.size
            self.tokens += row.tokens
        self.vanished += len(progress.vanished)


def find_files(
    paths: list[Path], rules: Rules, encoding: str, decode_errors: str
) -> Iterator[FileRef]:
    """Named files as they are (whatever their name); folders by the rules."""
    for path in paths:
        if path.is_dir():
            for found, st in scan(path.resolve(), rules):
                yield file_ref(found, st, encoding, decode_errors)
        else:
            st = regular_stat(str(path.resolve()))
            if st is None:
                raise FileNotFoundError(f"{path}: not a regular file or folder")
            yield file_ref(str(path.resolve()), st, encoding, decode_errors)


def ingest(
    config: Config,
    paths: list[Path],
    encoding: str = "auto",
    on_start: Callable[[int, int], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> Summary:
    """Count every file under `paths` not yet in the ledger; return what happened.

    `on_start(files, bytes)` is told the work found; `on_progress` each round's.
    Ctrl+C finishes and commits the tasks in flight, then returns.
    """
    started = time.monotonic()
    summary = Summary()
    rules = Rules(config.include, config.exclude)
    with open_pipeline(config, merge_interval=COMMIT_SECONDS) as pipeline:
        known = pipeline.store.known_paths()
        todo = []
        for ref in find_files(paths, rules, encoding, config.decode_errors):
            summary.found += 1
            if ref.path in known:
                summary.already += 1
            else:
                known.add(ref.path)
                todo.append(ref)
        if on_start:
            on_start(len(todo), sum(r.size for r in todo))
        now = time.monotonic()
        for ref in todo:
            pipeline.add(ref, now)
        try:
            while pipeline.busy:
                progress = pipeline.drain()
                summary.add(progress)
                if on_progress:
                    on_progress(progress)
        except KeyboardInterrupt:
            summary.interrupted = True
            summary.add(pipeline.finish())
    summary.seconds = time.monotonic() - started
    return summary
