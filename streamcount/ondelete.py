"""`on_delete = "forget"`: a counted file removed from a watched folder is forgotten.

The daemon sees a removal as a delete event, or as a counted path missing at
a rescan (the source of truth: events can be lost). What the file added is
taken back from its kept counts (keep_file_counts, required by the config),
in one transaction with its ledger row becoming `forgotten` (forget.py,
Store.subtract). A file in flight is left to its merge; a path refused once
(no counts kept for it: counted before the setting was on) is logged once
and not tried again by this daemon.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from .config import Config
from .forget import plan
from .knownfiles import KnownFiles
from .store import Store
from .work import FORGOTTEN

log = logging.getLogger(__name__)


def counted_here(known: KnownFiles, path: str) -> bool:
    """Whether the ledger holds counted bytes at `path` (not in flight)."""
    file = known.at_path.get(path)
    if file is None or path in known.inflight:
        return False
    return known.holder.get(file.key, ("",))[0] == path


def missing(known: KnownFiles, root: Path, seen: set[str]) -> list[str]:
    """The counted paths under `root` that a scan (which saw `seen`) did not find."""
    prefix = os.path.join(str(root), "")
    under = (p for p in known.at_path if p.startswith(prefix) and p not in seen)
    return sorted(p for p in under if counted_here(known, p))


def forget_removed(
    store: Store, config: Config, known: KnownFiles, paths: Iterable[str], refused: set[str]
) -> int:
    """Forget the counted files at `paths` that are gone; return how many were.

    Refusals are logged and added to `refused` (not tried again); a database
    that cannot take it now is logged, and the next rescan tries again.
    """
    gone = [p for p in paths if p not in refused and counted_here(known, p)]
    gone = [p for p in gone if not os.path.lexists(p)]
    if not gone:
        return 0
    found = plan(store, config, gone)
    for path, why in found.refused:
        log.warning("%s: removed, but cannot be forgotten: %s", path, why)
        refused.add(path)
    if not found.rows:
        return 0
    store.subtract(found.counts, found.rows, found.by_bucket)
    for row in found.rows:
        known.record(row._replace(status=FORGOTTEN))
        log.info("%s: removed; forgotten (%d tokens taken back)", row.path, row.tokens)
    return len(found.rows)
