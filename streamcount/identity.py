"""File identity: which file a path names, and whether two sightings are the same bytes.

`(dev, inode)` says which file a path names now; size and mtime say whether
it changed; a fingerprint of its first and last 4 KiB tells a renamed file
from a new one that took a deleted file's inode with the same size and
mtime (ext4 reuses inodes at once; `cp -p`, `rsync -t` and `tar` preserve
mtimes). The fingerprint of the first `n` bytes of a file is also how an
append is told from a rewrite: the counted prefix is still in place.

Workers record the identity of the bytes they actually counted (fstat of
the open file, checked again after reading), so the ledger never mixes two
snapshots of a file.
"""

from __future__ import annotations

import hashlib
import os
from typing import NamedTuple

from . import longpaths

EDGE_BYTES = 4096  # the fingerprint reads this much at each end of the file


class FileId(NamedTuple):
    dev: int  # 0: unknown (ledger rows from before schema 3)
    inode: int
    size: int
    mtime_ns: int
    fingerprint: str  # "": unknown (ledger rows from before schema 3)

    @property
    def key(self) -> tuple[int, int]:
        """Which file on which filesystem: what a path names, whatever its bytes."""
        return (self.dev, self.inode)

    def same_stat(self, st: os.stat_result) -> bool:
        """The file `st` describes is this one, unchanged (no I/O)."""
        return (
            st.st_ino == self.inode
            and st.st_size == self.size
            and st.st_mtime_ns == self.mtime_ns
            and (self.dev == 0 or st.st_dev == self.dev)
        )


def stat_key(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def fingerprint(head: bytes, tail: bytes) -> str:
    """A short hash of the first and last EDGE_BYTES of a file (or of its first n bytes)."""
    h = hashlib.blake2b(head, digest_size=8)
    t = hashlib.blake2b(tail, digest_size=8)
    return h.hexdigest() + t.hexdigest()


def fingerprint_of(data: bytes) -> str:
    """The fingerprint of a whole file's bytes, already in memory."""
    return fingerprint(data[:EDGE_BYTES], data[-EDGE_BYTES:])


def read_fingerprint(fd: int, size: int) -> str:
    """The fingerprint of the first `size` bytes of the open file `fd` (two preads)."""
    n = min(size, EDGE_BYTES)
    return fingerprint(os.pread(fd, n, 0), os.pread(fd, n, size - n))


def path_fingerprint(path: str, size: int) -> str | None:
    """The fingerprint of the first `size` bytes of `path`; None if it cannot be read."""
    try:
        fd = longpaths.open_file(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        return read_fingerprint(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


def file_id(st: os.stat_result, fingerprint: str = "") -> FileId:
    return FileId(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, fingerprint)
