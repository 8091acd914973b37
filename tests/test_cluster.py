"""Tokenizing on a real Dask cluster (issue 13): LocalCluster process workers, or a
real `dask scheduler` and `streamcount worker` processes; the corpus; real signals.

Kept small for a shared 2-core machine: 2 worker processes, 1 thread each.
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bench.corpus import CORPUS, articles, write_files
from streamcount import __version__
from streamcount.config import Config
from streamcount.ingest import ingest
from streamcount.statusfile import read_status
from streamcount.work import Piece, Task

from .helpers import (
    db_counts,
    db_ledger,
    make_text,
    reference_counts,
    skip_or_fail,
    wait_until,
)

try:
    import distributed
except ImportError:  # the tests that need it skip (fail in CI)
    distributed = None

MiB = 1 << 20


def _need_distributed() -> None:
    if distributed is None:
        skip_or_fail("distributed is not installed (pip install 'streamcount[cluster]')")


@pytest.fixture(scope="module")
def cluster():
    _need_distributed()
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def texts():
    if not CORPUS.is_file():
        skip_or_fail(f"corpus not found at {CORPUS} (set STREAMCOUNT_CORPUS)")
    return articles()


def test_ingest_of_the_corpus_through_the_cluster_equals_reference(tmp_path, cluster, texts):
    write_files(texts, tmp_path / "inbox")
    big = tmp_path / "inbox" / "whole.txt"  # the corpus as one file: cut into chunks
    shutil.copy(CORPUS, big)
    config = Config(
        db=tmp_path / "db.sqlite", workers=2, cluster_scheduler=cluster.scheduler_address,
        chunk_bytes=1 * MiB,
    )  # fmt: skip
    summary = ingest(config, [tmp_path / "inbox"])
    whole = CORPUS.read_text(encoding="utf-8")
    assert db_counts(config.db) == reference_counts([*texts, whole])
    ledger = db_ledger(config.db)
    assert len(ledger) == len(texts) + 1 == summary.by_status["counted"]
    assert set(ledger.values()) == {"counted"}


@pytest.mark.parametrize("shared", [False, True], ids=["bytes-sent", "shared-filesystem"])
def test_compressed_files_through_the_cluster_equal_reference(tmp_path, cluster, rng, shared):
    """A .gz and a .zst read on the daemon's host and decompressed on a worker (or
    read there, with a shared filesystem); a truncated .gz is failed, adds nothing."""
    import zstandard

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    texts = [make_text(rng, paragraphs=40) for _ in range(2)]
    (inbox / "a.txt.gz").write_bytes(gzip.compress(texts[0].encode()))
    (inbox / "b.txt.zst").write_bytes(zstandard.ZstdCompressor().compress(texts[1].encode()))
    cut = gzip.compress(make_text(rng, paragraphs=40).encode())
    (inbox / "c.txt.gz").write_bytes(cut[: len(cut) // 2])
    config = Config(
        db=tmp_path / "db.sqlite", workers=2, cluster_scheduler=cluster.scheduler_address,
        cluster_shared_filesystem=shared,
    )  # fmt: skip
    ingest(config, [inbox])
    assert db_counts(config.db) == reference_counts(texts)
    ledger = db_ledger(config.db)
    assert {Path(p).name: s for p, s in ledger.items()} == {
        "a.txt.gz": "counted", "b.txt.zst": "counted", "c.txt.gz": "failed",
    }  # fmt: skip


def test_a_worker_with_another_tokenizer_or_version_refuses_the_task(tmp_path, cluster):
    from streamcount.cluster import WorkerRefused, count_remote

    (path := tmp_path / "a.txt").write_text("北京大学")
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        task = Task(1, (Piece(_ref(path)),))
        with pytest.raises(WorkerRefused, match="has no tokenizer 0000"):
            client.submit(count_remote, task, None, "0000", __version__, pure=False).result()
        with pytest.raises(WorkerRefused, match=r"runs streamcount .* the daemon 0\.0\.0-other"):
            client.submit(count_remote, task, None, "0000", "0.0.0-other", pure=False).result()


def _ref(path: Path):
    from streamcount.work import FileRef

    st = path.stat()
    return FileRef(str(path), st.st_size, st.st_mtime_ns, st.st_ino, dev=st.st_dev)


def test_daemon_exact_while_a_worker_process_is_sigkilled(tmp_path, daemon_factory, cluster, texts):
    staging = tmp_path / "staging"
    write_files(texts, staging)
    daemon = daemon_factory(
        cluster_scheduler=cluster.scheduler_address, batch_max_files=20, batch_max_wait=0.2
    ).start()
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        pids = client.run(os.getpid)
        shutil.copytree(staging, tmp_path / "inbox" / "drop")
        db = tmp_path / "db.sqlite"
        wait_until(lambda: len(db_ledger(db)) > 0, 120, "the first merge")
        victim = next(iter(pids.values()))
        os.kill(victim, signal.SIGKILL)  # a Dask worker process, mid-run
        wait_until(lambda: len(db_ledger(db)) == len(texts), 300, "the whole corpus")
        assert victim not in client.run(os.getpid).values()  # it really died
    assert daemon.stop() == 0
    assert set(db_ledger(db).values()) == {"counted"}
    assert db_counts(db) == reference_counts(texts)


def test_bytes_in_flight_never_exceed_the_bound(tmp_path, daemon_factory, cluster, texts):
    limit = 3 * MiB  # tasks of up to 1.5 MiB: two fit; four (2 per worker) would not
    staging = tmp_path / "staging"
    write_files(texts, staging)
    daemon = daemon_factory(
        cluster_scheduler=cluster.scheduler_address, cluster_max_bytes_in_flight=limit,
        batch_max_files=4000, batch_max_bytes=limit // 2, chunk_bytes=64 * 1024,
        batch_max_wait=0.5,
    ).start()  # fmt: skip
    shutil.copytree(staging, tmp_path / "inbox" / "drop")
    db = tmp_path / "db.sqlite"
    wait_until(lambda: len(db_ledger(db)) == len(texts), 300, "the whole corpus")
    status = wait_until(lambda: (s := read_status(db)) and s.get("bytes_in_flight") == 0 and s)
    assert daemon.stop() == 0
    assert status["bytes_in_flight_limit"] == limit
    assert 0 < status["bytes_in_flight_peak"] <= limit
    assert db_counts(db) == reference_counts(texts)


class _Scheduler:
    """A real `dask scheduler` and `streamcount worker` processes on one port."""

    def __init__(self, port: int, tmp: Path) -> None:
        self.address = f"tcp://127.0.0.1:{port}"
        self.port, self.tmp = port, tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        log = open(self.tmp / "cluster.log", "ab")  # noqa: SIM115 (closed with the test's tmp)
        sched = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1"]
        sched += ["--port", str(self.port), "--no-dashboard"]
        worker = [sys.executable, "-m", "streamcount", "worker", self.address, "--nworkers", "2"]
        for args in (sched, worker):
            self.procs.append(
                subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
            )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: nanny and workers too
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs = []


@pytest.fixture
def scheduler(tmp_path):
    _need_distributed()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sched = _Scheduler(port, tmp_path)
    yield sched
    sched.stop()


def test_scheduler_closed_mid_run_and_restarted_exact_daemon_never_exits(
    tmp_path, daemon_factory, scheduler, texts
):
    half = len(texts) // 2
    staging = tmp_path / "staging"
    write_files(texts[:half], staging / "a")
    write_files(texts[half:], staging / "b")
    scheduler.start()
    daemon = daemon_factory(
        cluster_scheduler=scheduler.address, batch_max_files=20, batch_max_wait=0.2
    ).start()
    db = tmp_path / "db.sqlite"
    shutil.copytree(staging / "a", tmp_path / "inbox" / "a")
    wait_until(lambda: len(db_ledger(db)) > 0, 120, "the first merge")
    scheduler.stop()  # mid-run: tasks in flight are cancelled by Dask
    shutil.copytree(staging / "b", tmp_path / "inbox" / "b")  # the backlog grows meanwhile
    wait_until(lambda: daemon.saw("retrying with back-off"), 60, "the daemon to notice")
    assert daemon.proc.poll() is None
    assert len(db_ledger(db)) < len(texts)
    scheduler.start()
    wait_until(lambda: len(db_ledger(db)) == len(texts), 300, "the whole corpus")
    assert daemon.proc.poll() is None, daemon.text()  # never exited
    assert daemon.saw("goes back to the backlog")  # tasks were in flight when it went
    assert daemon.saw("is back after")
    assert daemon.stop() == 0
    assert set(db_ledger(db).values()) == {"counted"}
    assert db_counts(db) == reference_counts(texts)


def test_missing_distributed_is_one_clear_line(tmp_path):
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from streamcount.cli import main; main()"
    )
    (tmp_path / "a.txt").write_text("北京")
    out = subprocess.run(
        [sys.executable, "-c", code, "ingest", str(tmp_path / "a.txt"),
         "--db", str(tmp_path / "db.sqlite"), "--scheduler", "tcp://127.0.0.1:9"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "streamcount: cluster.scheduler needs Dask's distributed package: "
        "pip install 'streamcount[cluster]'"
    ]


def test_a_task_that_raises_on_a_worker_fails_only_its_file(tmp_path, rng):
    """The task raises as a whole on the worker: its batch is retried file by file,
    the guilty file is failed with the reason, the others counted exactly once."""
    _need_distributed()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good = [make_text(rng) for _ in range(6)]
    for i, text in enumerate(good):
        (inbox / f"{i}.txt").write_text(text)
    (inbox / "bad.txt").write_text(make_text(rng))
    env = {"STREAMCOUNT_FAILPOINTS": "cluster-task=bad.txt"}
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0", env=env
    ) as cluster:
        config = Config(db=tmp_path / "db.sqlite", cluster_scheduler=cluster.scheduler_address)
        summary = ingest(config, [inbox])
    assert summary.by_status == {"counted": 6, "failed": 1}
    assert db_counts(config.db) == reference_counts(good)
    ledger = db_ledger(config.db)
    assert ledger[str(inbox / "bad.txt")] == "failed"


def test_scheduler_unreachable_with_fallback_local_counts_on_the_local_pool(tmp_path, rng):
    _need_distributed()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    texts = [make_text(rng) for _ in range(8)]
    for i, text in enumerate(texts):
        (inbox / f"{i}.txt").write_text(text)
    config = Config(
        db=tmp_path / "db.sqlite", workers=1, cluster_scheduler=f"tcp://127.0.0.1:{port}",
        cluster_fallback="local",
    )  # fmt: skip
    summary = ingest(config, [inbox])
    assert summary.by_status == {"counted": 8}
    assert db_counts(config.db) == reference_counts(texts)
