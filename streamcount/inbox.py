"""An inbox that empties itself: `after = "keep" | "delete" | "move:DIR"` per watch entry.

Done only after the commit that counted the file, and only to the file the
ledger says was counted (same device, inode, size and mtime): the ledger is
the record of what is done, so a crash between the commit and the move is
finished at the next start (`finish_pending`), and a file that replaced the
counted one at its path is left alone. Only `counted` files are moved or
deleted; skipped and failed ones stay where they are, to be looked at.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from . import failpoints
from .config import WatchDir
from .identity import FileId
from .store import LedgerRow
from .work import COUNTED

log = logging.getLogger(__name__)

KEEP, DELETE, MOVE = "keep", "delete", "move:"


def root_of(path: str, watch: Iterable[WatchDir]) -> WatchDir | None:
    """The watch entry `path` is under, if any."""
    for root in watch:
        if path == str(root.path) or path.startswith(str(root.path) + os.sep):
            return root
    return None


def settle(path: str, file: FileId, root: WatchDir) -> str:
    """Do `root.after` to the counted file at `path` if it is still the file counted;
    return what was done ("" for nothing). OSError if the move or delete fails."""
    if root.after == KEEP:
        return ""
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return ""  # done already (or deleted by someone else)
    if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != tuple(file[:4]):
        return ""  # another file at this path now: not the one counted
    failpoints.hit("inbox-before-settle", path)
    if root.after == DELETE:
        os.unlink(path)
        return "deleted"
    target = _free_name(Path(root.after[len(MOVE) :]) / os.path.relpath(path, root.path))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, target)  # a rename; across filesystems, copy then delete
    return f"moved to {target}"


def _free_name(target: Path) -> Path:
    """`target`, or `target.1`, `target.2`... : never over a file already moved there."""
    candidate, n = target, 0
    while candidate.exists():
        n += 1
        candidate = target.with_name(f"{target.name}.{n}")
    return candidate


def settle_rows(rows: Iterable[LedgerRow], watch: tuple[WatchDir, ...]) -> None:
    """After a commit: settle each counted row's file per its watch entry; a failure
    is logged in one line and tried again at the next start."""
    if all(root.after == KEEP for root in watch):  # the default: nothing to look up per row
        return
    for row in rows:
        if row.status == COUNTED:
            _settle_logged(row.path, row.file, watch)


def finish_pending(
    rows: Iterable[tuple[str, FileId, str]], watch: tuple[WatchDir, ...]
) -> None:
    """At start: settle counted files the last run committed but did not move or delete."""
    if all(root.after == KEEP for root in watch):
        return
    for path, file, status in rows:
        if status == COUNTED:
            _settle_logged(path, file, watch)


def _settle_logged(path: str, file: FileId, watch: tuple[WatchDir, ...]) -> None:
    root = root_of(path, watch)
    if root is None or root.after == KEEP:
        return
    try:
        done = settle(path, file, root)
    except OSError as exc:
        log.warning("%s: counted, but not %s: %s", path, root.after, exc.strerror or exc)
        return
    if done:
        log.info("%s: counted, %s", path, done)
