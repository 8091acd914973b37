"""The cost of going through Dask: the local pool against a LocalCluster, same run.

    python -m bench.cluster [--copies 10] [--workers 2] [--rounds 1] [--trips 200]

1. `ingest` of the corpus ×copies (article files on disk), once with the local
   process pool and once through a `distributed.LocalCluster` with the same
   number of worker processes (1 thread each), rounds interleaved; MB/s,
   the ratio (goal ≥ 0.85), and the databases' totals compared. `dask-paths`
   is the cluster with `shared_filesystem = true` (workers read the files):
   the difference from `dask` is the cost of sending the bytes.
2. Per-task overhead: `trips` one-file tasks sent one after another through
   each executor (executors.py, as the pipeline sends them); the median round
   trip of each, and their difference: what Dask adds per task.
3. From those: the smallest batch for which that overhead is < 5 % of the
   time to count it, and the MB/s per worker core, for sizing a cluster.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import distributed

from bench.corpus import articles, write_files
from streamcount.config import Config
from streamcount.executors import DaskCluster, Executor, LocalPool
from streamcount.ingest import ingest
from streamcount.work import FileRef, Piece, Task


def _ingest(config: Config, folder: Path) -> tuple[float, int]:
    started = time.perf_counter()
    summary = ingest(config, [folder])
    return time.perf_counter() - started, summary.bytes


def _totals(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return hash(tuple(conn.execute("SELECT token, count FROM counts ORDER BY token")))


def _round_trips(executor: Executor, path: Path, trips: int) -> float:
    st = path.stat()
    ref = FileRef(str(path), st.st_size, st.st_mtime_ns, st.st_ino, dev=st.st_dev)
    times = []
    for i in range(trips + 5):  # the first few warm up (jieba's first cut)
        started = time.perf_counter()
        executor.submit(Task(i, (Piece(ref),))).result()
        times.append(time.perf_counter() - started)
    return statistics.median(times[5:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--trips", type=int, default=200)
    args = parser.parse_args()
    print(f"{platform.python_version()}, {os.cpu_count()} cores; corpus ×{args.copies}, "
          f"{args.workers} workers")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp, distributed.LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        root = Path(tmp)
        write_files(articles(copies=args.copies), root / "files")
        tiny = root / "tiny.txt"
        tiny.write_text("新华社北京一月一日电。\n", encoding="utf-8")
        local = Config(workers=args.workers)
        dask = local.override(cluster_scheduler=cluster.scheduler_address)
        paths = dask.override(cluster_shared_filesystem=True)
        runs = (("local", local), ("dask", dask), ("dask-paths", paths))
        rates: dict[str, list[float]] = {name: [] for name, _ in runs}
        dbs = {}
        for r in range(args.rounds):
            for name, config in runs[:: 1 if r % 2 == 0 else -1]:
                dbs[name] = root / f"{name}{r}.sqlite"
                seconds, size = _ingest(config.override(db=dbs[name]), root / "files")
                rates[name].append(size / 1e6 / seconds)
                print(f"  round {r + 1} {name:10}: {size / 1e6:.1f} MB in {seconds:.1f} s, "
                      f"{size / 1e6 / seconds:.2f} MB/s")  # fmt: skip
        same = len({_totals(db) for db in dbs.values()}) == 1
        pool, client = LocalPool(local), DaskCluster(dask, cluster.scheduler_address)
        try:
            trip_local = _round_trips(pool, tiny, args.trips)
            trip_dask = _round_trips(client, tiny, args.trips)
        finally:
            pool.close()
            client.close()
    mb_local, mb_dask, mb_paths = (statistics.median(rates[n]) for n, _ in runs)
    overhead = max(trip_dask - trip_local, 0.0)
    per_core = mb_dask / args.workers
    batch_mb = overhead * per_core / 0.05  # overhead < 5 % of the time to count the batch
    print()
    print("| measure | local pool | LocalCluster | note |")
    print("| --- | --- | --- | --- |")
    print(f"| ingest, corpus ×{args.copies} | {mb_local:.2f} MB/s | {mb_dask:.2f} MB/s "
          f"| ratio {mb_dask / mb_local:.2f} (goal ≥ 0.85); totals equal: {same} |")
    print(f"| the same, shared_filesystem (paths sent) | | {mb_paths:.2f} MB/s "
          f"| ratio {mb_paths / mb_local:.2f} |")
    print(f"| one-file task round trip (median of {args.trips}) | {trip_local * 1e3:.2f} ms "
          f"| {trip_dask * 1e3:.2f} ms | Dask adds {overhead * 1e3:.2f} ms per task |")
    print(f"| MB/s per worker core | {mb_local / args.workers:.2f} | {per_core:.2f} | |")
    print(f"| smallest batch where Dask costs < 5 % | | {batch_mb * 1e3:.0f} kB "
          f"| {overhead * 1e3:.2f} ms ÷ 5 % × {per_core:.2f} MB/s |")  # fmt: skip


if __name__ == "__main__":
    main()
