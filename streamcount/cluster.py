"""The Dask worker's side: the tokenizer loaded once per worker process, tasks checked.

The daemon registers a `TokenizerPlugin` holding the tokenizer settings and
the *contents* of the user dictionaries and stopword list (workers need not
see the daemon's disks); its `setup` runs once in every worker process, also
in one that joins or is restarted later, and loads jieba there. Each task
carries the streamcount version and the tokenizer fingerprint it was planned
with; a worker whose own differ refuses it with `WorkerRefused`, so a cluster
with a stale install cannot add tokens of another tokenizer to the totals.

`dask worker tcp://… --preload streamcount.cluster` (or `streamcount worker`)
imports this module when the worker starts (`dask_setup`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import socket
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from . import __version__, failpoints
from .config import TokenizerSettings
from .tokens import Loaded, Tokenizer, count_pieces
from .work import Task, TaskResult

log = logging.getLogger(__name__)

PLUGIN_NAME = "streamcount-tokenizer"


class WorkerRefused(Exception):
    """This worker cannot count the task as the daemon would (another version,
    another tokenizer, or none loaded): the task goes back, uncounted."""


@dataclass(frozen=True)
class TokenizerSpec:
    """TokenizerSettings with its files' contents instead of their paths."""

    settings: TokenizerSettings
    user_dicts: tuple[bytes, ...]
    stopwords: bytes | None

    @classmethod
    def of(cls, settings: TokenizerSettings) -> TokenizerSpec:
        """Read the files the settings name (on the daemon's host)."""
        stopwords = settings.stopwords.read_bytes() if settings.stopwords else None
        return cls(settings, tuple(p.read_bytes() for p in settings.user_dict), stopwords)

    @property
    def fingerprint(self) -> str:
        """Whose tokens these are: the settings, the files' bytes, and the engine
        versions installed where this is computed."""
        s = self.settings
        h = hashlib.blake2b(digest_size=12)
        fields = (s.engine, s.mode, s.hmm, s.lowercase, s.min_length, engine_versions(s.engine))
        h.update(repr(fields).encode())
        for content in (*self.user_dicts, self.stopwords or b""):
            h.update(hashlib.blake2b(content, digest_size=16).digest())
        h.update(b"stop" if self.stopwords is not None else b"none")
        return h.hexdigest()


def engine_versions(engine: str) -> str:
    """The installed versions of the packages that produce the tokens."""
    names = ("jieba", "rjieba") if engine == "jieba-rs" else ("jieba",)
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} missing")
    return ", ".join(found)


_loaded: dict[str, Tokenizer] = {}  # fingerprint -> the tokenizer, in this worker process


def install(spec: TokenizerSpec) -> str:
    """Load the tokenizer of `spec` in this process (once); return its fingerprint here."""
    fingerprint = spec.fingerprint
    if fingerprint in _loaded:
        return fingerprint
    folder = Path(tempfile.mkdtemp(prefix="streamcount-tokenizer-"))
    dicts = []
    for i, content in enumerate(spec.user_dicts):
        (path := folder / f"user{i}.txt").write_bytes(content)
        dicts.append(path)
    stopwords = None
    if spec.stopwords is not None:
        (stopwords := folder / "stopwords.txt").write_bytes(spec.stopwords)
    settings = replace(spec.settings, user_dict=tuple(dicts), stopwords=stopwords)
    _loaded[fingerprint] = Tokenizer(settings)
    log.info("streamcount %s: tokenizer %s loaded", __version__, fingerprint)
    return fingerprint


class TokenizerPlugin(WorkerPlugin):
    """Loads the daemon's tokenizer in each worker process, once."""

    idempotent = False  # a changed tokenizer replaces the old registration

    def __init__(self, spec: TokenizerSpec) -> None:
        self.spec = spec

    def setup(self, worker: Any) -> None:
        install(self.spec)


def count_remote(
    task: Task, loaded: tuple[Loaded, ...] | None, fingerprint: str, version: str
) -> TaskResult:
    """Count a task in this worker: with the bytes read by the daemon (`loaded`),
    or (shared filesystem) reading the paths here."""
    if version != __version__:
        raise WorkerRefused(
            f"worker {socket.gethostname()} runs streamcount {__version__}, the daemon "
            f"{version}; install the same version on both"
        )
    tokenizer = _loaded.get(fingerprint)
    if tokenizer is None:
        have = ", ".join(_loaded) or "none"
        raise WorkerRefused(
            f"worker {socket.gethostname()} has no tokenizer {fingerprint} (it has: {have}); "
            "its jieba version or the settings differ from the daemon's"
        )
    failpoints.fail("cluster-task", [p.file.path for p in task.pieces])  # a task that raises
    return count_pieces(tokenizer, task.id, task.pieces, loaded, task.per_file)


def dask_setup(worker: Any) -> None:
    """`--preload streamcount.cluster`: import jieba now, not on the first task."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    log.info("streamcount %s ready (%s)", __version__, engine_versions("jieba"))
