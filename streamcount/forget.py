"""`streamcount forget`: take back what counted files added, exactly.

With `keep_file_counts = true` each counted file's own counts are in the
database (file_counts), and those are subtracted: the file may have changed
or be gone. A file counted without them kept has its contribution found by
counting it again, with the same tokenizer (the writer refuses other
settings) and the worker's own read and decode path. That is exact only for
the very bytes that were counted, so the file must still be what the ledger
recorded (device, inode, size, mtime and the fingerprint of its first and
last 64 KiB), and counting it again must give the token total the ledger
recorded; anything else is refused with the reason, and nothing is changed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from .config import Config
from .decoding import ASCII, REPLACE
from .store import LedgerRow, Store, add_into
from .tokens import Tokenizer, count_pieces
from .work import COUNTED, FileRef, Piece


@dataclass
class Plan:
    """What forgetting the asked-for files would do."""

    rows: list[LedgerRow] = field(default_factory=list)  # the counted rows to forget
    counts: dict[str, int] = field(default_factory=dict)  # what they added, summed
    by_bucket: dict[int, dict[str, int]] = field(default_factory=dict)  # the same, per bucket
    refused: list[tuple[str, str]] = field(default_factory=list)  # (path, why)


def plan(store: Store, config: Config, paths: Iterable[str]) -> Plan:
    """Find each path's `counted` ledger row and count its file again (see module doc)."""
    wanted = {os.path.abspath(p) for p in paths}
    # This host's counted rows (a PostgreSQL database holds every host's ledger).
    mine = {(p, f) for p, f, status in store.ledger() if status == COUNTED and p in wanted}
    counted = {row.path: row for row, _ in store.ledger_rows() if (row.path, row.file) in mine}
    tokenizer = Tokenizer(config.tokenizer)
    result = Plan()
    for path in sorted(wanted):
        row = counted.get(path)
        if row is None:
            result.refused.append((path, "not in the ledger as counted"))
            continue
        own = _kept(store, row)
        if own is None:
            own = _recount(tokenizer, row)
        if isinstance(own, str):
            result.refused.append((path, own))
            continue
        result.rows.append(row)
        add_into(result.counts, own)
        if row.bucket is not None:  # its counts went to that time bucket too
            add_into(result.by_bucket.setdefault(row.bucket, {}), own)
    return result


def _kept(store: Store, row: LedgerRow) -> dict[str, int] | None:
    """The counts kept for `row` (keep_file_counts), if they are all there: they
    must sum to the tokens its ledger row says it added."""
    if row.tokens == 0:
        return {}
    kept = store.file_counts(row)
    return kept if kept and sum(kept.values()) == row.tokens else None


def _recount(tokenizer: Tokenizer, row: LedgerRow) -> dict[str, int] | str:
    """`row`'s file counted again: its counts, or why they cannot be trusted."""
    f = row.file
    if not f.fingerprint:
        return "counted before identities were recorded: cannot prove it unchanged"
    try:
        st = os.stat(row.path, follow_symlinks=False)
    except OSError as exc:
        return f"cannot be read again ({exc.strerror}): its counts are not kept"
    if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != f[:4]:
        return "changed since it was counted: its counts are not kept"
    ref = FileRef(row.path, f.size, f.mtime_ns, f.inode, "auto", f.dev, REPLACE)
    done = count_pieces(tokenizer, 0, [Piece(ref)])
    piece = done.pieces[0]
    if piece.encoding != row.encoding and row.encoding not in ("", ASCII):
        # counted with an encoding the watch entry named
        done = count_pieces(tokenizer, 0, [Piece(ref._replace(encoding=row.encoding))])
        piece = done.pieces[0]
    if piece.status != COUNTED or piece.file != f:
        return f"changed since it was counted ({piece.reason or piece.status})"
    if piece.tokens != row.tokens:
        return f"counted again it gives {piece.tokens} tokens, the ledger says {row.tokens}"
    return done.counts
