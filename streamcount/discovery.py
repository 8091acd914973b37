"""Which files are ours, and finding them: include/exclude rules and the tree scan.

The scan is the source of truth for what exists (events only make the daemon
fast), so it is cheap: `os.scandir`, no symlinks followed, excluded folders
not entered.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fnmatch import translate
from pathlib import Path

from . import longpaths
from .work import FileRef


@dataclass(frozen=True)
class Rules:
    """A file is wanted when its name matches an include glob and no part of
    its path below the watched root matches an exclude glob."""

    include: tuple[str, ...]
    exclude: tuple[str, ...]
    # Each list as one regular expression: a scan tests every name it meets.
    excluded: Callable[[str], bool] = field(init=False, repr=False, compare=False)
    included: Callable[[str], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "excluded", _any_glob(self.exclude))
        object.__setattr__(self, "included", _any_glob(self.include))

    def wanted(self, path: str, root: Path) -> bool:
        """Whether `path`, under `root`, passes the rules: no part of it below the
        root excluded, its name included. On strings (the daemon asks this for
        every event; a PurePath per call was a tenth of its time under a backlog)."""
        base = os.path.join(str(root), "")
        if not path.startswith(base):
            return False
        parts = [p for p in path[len(base) :].split("/") if p and p != "."]
        if not parts or any(self.excluded(p) for p in parts):
            return False
        return self.included(parts[-1])


def _any_glob(globs: tuple[str, ...]) -> Callable[[str], bool]:
    """name -> whether it matches any of `globs`, as fnmatchcase would."""
    if not globs:
        return lambda name: False
    match = re.compile("|".join(f"(?:{translate(g)})" for g in globs)).match
    return lambda name: match(name) is not None


def file_ref(
    path: str, st: os.stat_result, encoding: str, decode_errors: str = "replace"
) -> FileRef:
    return FileRef(
        path, st.st_size, st.st_mtime_ns, st.st_ino, encoding, st.st_dev, decode_errors
    )  # fmt: skip


def regular_stat(path: str) -> os.stat_result | None:
    """lstat of a regular file, or None (gone, a symlink, a FIFO, a folder...)."""
    try:
        st = longpaths.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def scan(root: Path, rules: Rules) -> Iterator[tuple[str, os.stat_result]]:
    """Every wanted regular file below `root`, with its lstat (paths of any length)."""
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            with longpaths.scandir(folder) as entries:
                found = []
                for path, entry in entries:
                    if rules.excluded(entry.name):
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(path)
                        elif entry.is_file(follow_symlinks=False) and rules.included(entry.name):
                            found.append((path, entry.stat(follow_symlinks=False)))
                    except OSError:
                        continue
        except OSError:
            continue  # vanished or unreadable: the next rescan tries again
        yield from found
