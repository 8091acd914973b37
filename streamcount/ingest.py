"""One-shot counting of files and folders through the same pipeline and ledger.

Running it twice counts nothing twice: it decides on each file exactly as the
daemon does (knownfiles.py), so a file already counted, under this name or
another, is not counted again. It commits every COMMIT_SECONDS while the
workers are busy, and at the end: a crash loses at most that much work, which
the next run does again. SIGINT and SIGTERM stop it warmly (what is in
flight is committed), as they stop the daemon.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config, ConfigError, encoding_problem
from .discovery import Rules, regular_stat, scan
from .knownfiles import APPENDED, COUNT, SKIP, KnownFiles, admit
from .pipeline import MAX_ATTEMPTS, Pipeline, Progress, open_pipeline
from .stopflag import StopFlag
from .work import LINKED, MOVED

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
    changing: int = 0  # kept changing while read: not counted, counted by a later run
    seconds: float = 0.0
    interrupted: bool = False

    def add(self, progress: Progress) -> None:
        for row in progress.rows:
            self.by_status[row.status] += 1
            if row.status not in (MOVED, LINKED):  # nothing read
                self.bytes += row.size
            self.tokens += row.tokens
        self.vanished += len(progress.vanished)


def find_files(paths: list[Path], rules: Rules) -> Iterator[tuple[str, os.stat_result]]:
    """Named files as they are (whatever their name); folders by the rules."""
    for path in paths:
        if path.is_dir():
            yield from scan(path.resolve(), rules)
        else:
            st = regular_stat(str(path.resolve()))
            if st is None:
                raise FileNotFoundError(f"{path}: not a regular file or folder")
            yield str(path.resolve()), st


def ingest(
    config: Config,
    paths: list[Path],
    encoding: str = "auto",
    on_start: Callable[[int, int], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stop: StopFlag | None = None,
    recount: Iterable[str] = (),
) -> Summary:
    """Count every file under `paths` not yet counted; return what happened.

    `recount`: paths whose ledger rows are ignored, so the files there now are
    counted (`forget --recount`, just after forgetting them).

    `on_start(files, bytes)` is told the work found; `on_progress` each round's.
    A stop signal finishes and commits the tasks in flight, then returns.
    """
    problem = encoding_problem(encoding)
    if problem:
        raise ConfigError(f"--encoding: {problem}")
    started = time.monotonic()
    summary = Summary()
    stop = stop or StopFlag()
    with stop.installed(), open_pipeline(config, merge_interval=COMMIT_SECONDS) as pipeline:
        # Scanned once the pool is started: the workers load the tokenizer meanwhile.
        found = list(find_files(paths, Rules(config.include, config.exclude)))
        summary.found = len(found)
        known = KnownFiles(pipeline.store.ledger())
        known.release(recount)
        sent = _admit(known, pipeline, found, encoding, config.decode_errors, summary)
        if on_start:
            on_start(len(sent), sum(st.st_size for _, st in sent))
        changes: Counter[str] = Counter()
        while pipeline.busy and not stop.event.is_set():
            progress = pipeline.drain()
            summary.add(progress)
            if on_progress:
                on_progress(progress)
            again = [p for row in progress.rows for p in known.record(row)]
            again += [p for path in progress.vanished for p in known.settle(path)]
            for path in progress.retry:
                again += known.settle(path)
                changes[path] += 1
                if changes[path] < MAX_ATTEMPTS:
                    again.append(path)
                else:
                    summary.changing += 1
            restat = [(p, st) for p in again if (st := regular_stat(p)) is not None]
            _admit(known, pipeline, restat, encoding, config.decode_errors, summary)
        if stop.event.is_set():
            summary.interrupted = True
            summary.add(pipeline.finish())
    summary.seconds = time.monotonic() - started
    return summary


def _admit(
    known: KnownFiles,
    pipeline: Pipeline,
    files: list[tuple[str, os.stat_result]],
    encoding: str,
    decode_errors: str,
    summary: Summary,
) -> list[tuple[str, os.stat_result]]:
    """Decide on each file (see knownfiles.py); return those sent to be counted."""
    now = time.monotonic()
    sent = []
    for path, st in files:
        verdict = admit(known, pipeline, path, st, encoding, now, decode_errors)
        if verdict.action in (SKIP, APPENDED):
            summary.already += 1
        elif verdict.action == COUNT:
            sent.append((path, st))
    return sent
