"""Paths longer than the kernel takes in one call (PATH_MAX, 4,096 bytes on Linux).

A tree can be deeper than that (each name may be 255 bytes), and `open`,
`lstat` and `scandir` on such a path fail with ENAMETOOLONG. Here they walk
to the file's folder a piece at a time, each piece relative to the folder
descriptor before it, and act relative to that folder. Short paths, nearly
all of them, take the plain call.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

PATH_MAX = 4096


def is_long(path: str) -> bool:
    return len(os.fsencode(path)) >= PATH_MAX


def open_file(path: str, flags: int) -> int:
    """os.open, for a path of any length."""
    if not is_long(path):
        return os.open(path, flags)
    with _parent(path) as (folder, name):
        return os.open(name, flags, dir_fd=folder)


def lstat(path: str) -> os.stat_result:
    """os.lstat, for a path of any length."""
    if not is_long(path):
        return os.lstat(path)
    with _parent(path) as (folder, name):
        return os.lstat(name, dir_fd=folder)


@contextmanager
def scandir(folder: str) -> Iterator[Iterator[tuple[str, os.DirEntry[str]]]]:
    """(path, entry) for each entry of `folder`, a path of any length. The
    entries' is_dir/is_file/stat work while the block runs."""
    if not is_long(folder):
        with os.scandir(folder) as entries:
            yield ((entry.path, entry) for entry in entries)
        return
    fd = _open_folder(folder)
    try:
        with os.scandir(fd) as entries:
            yield ((os.path.join(folder, entry.name), entry) for entry in entries)
    finally:
        os.close(fd)


@contextmanager
def _parent(path: str) -> Iterator[tuple[int, str]]:
    """A descriptor of the folder `path` is in, and its name there."""
    folder, name = os.path.split(path)
    fd = _open_folder(folder)
    try:
        yield fd, name
    finally:
        os.close(fd)


def _open_folder(folder: str) -> int:
    """A descriptor of `folder`, opened a piece of under PATH_MAX bytes at a time."""
    flags = os.O_RDONLY | os.O_DIRECTORY
    pieces = _pieces(os.fsencode(folder))
    fd = os.open(pieces[0], flags)
    for piece in pieces[1:]:
        try:
            inner = os.open(piece, flags, dir_fd=fd)
        finally:
            os.close(fd)
        fd = inner
    return fd


def _pieces(path: bytes) -> list[bytes]:
    """`path` cut at slashes into pieces shorter than PATH_MAX bytes, the first one
    absolute (as given), the rest relative to the one before."""
    pieces: list[bytes] = []
    current = b""
    for name in path.split(b"/"):
        step = name if not current or current == b"/" else b"/" + name
        if current and len(current) + len(step) >= PATH_MAX:
            pieces.append(current)
            current, step = b"", name
        current = (current + step) if current or name else b"/"
    pieces.append(current)
    return pieces
