"""PostgreSQL against SQLite: the merge, `top 100`, and `ingest` end to end.

    python -m bench.scale_out [--distinct 2000000] [--batch 50000] [--copies 10] [--rounds 3]

Starts a throwaway PostgreSQL (tests/pgserver.py, with PostgreSQL's own
durability defaults: fsync on, synchronous_commit on) on loopback. Then:

- merge: synthetic batches (bench/store_scale.py's, Zipf-like, 40 % new
  tokens) through Store.merge into a fresh database of each kind; merge
  rows/s and `top 100` latency as the table passes 250k, 500k, 1M, 2M;
- ingest: `streamcount ingest` of the corpus ×copies (jieba-rs, so the
  store's share of the time is as large as it gets) into each, rounds
  interleaved; MB/s medians and totals compared token for token;
- writers: 1, 2 and 3 processes (host ids) merging at once into one
  PostgreSQL database, tokenizing taken out: batches shaped like a daemon's
  merge (a few thousand tokens, the hot ones in every batch); merges/s in
  all and merge latency p50/p99 -- what the database sustains.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.corpus import articles, write_files
from bench.store_scale import merge_and_top
from streamcount.config import TokenizerSettings
from streamcount.identity import FileId
from streamcount.store import LedgerRow, Merge, Store
from tests.pgserver import PgServer, find_bindir


def merge_run(db: Path | str, distinct: int, size: int) -> list[tuple[int, float, float]]:
    """(distinct tokens, merge rows/s, top 100 ms) at each doubling from 250k."""
    store = Store.open_writer(db, TokenizerSettings(), "bench")
    rows = merge_and_top(store, db, distinct, size)
    store.close()
    return rows


def merge_table(work: Path, server: PgServer, distinct: int, batch: int) -> None:
    print(f"merge: batches of {batch:,} tokens up to {distinct:,} distinct")
    print("| store | distinct tokens | merge rows/s | top 100 ms |")
    print("| --- | ---: | ---: | ---: |")
    for label, db in (("SQLite", work / "m.db"), ("PostgreSQL", server.new_database())):
        for n, rate, top_ms in merge_run(db, distinct, batch):
            print(f"| {label} | {n:,} | {rate:,.0f} | {top_ms:.1f} |", flush=True)


def ingest_once(folder: Path, db: Path | str, config: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "streamcount", "ingest", str(folder), "--db", str(db),
         "--config", str(config), "--workers", str(os.cpu_count() or 1)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - started


def writer_proc(url: str, host: str, merges: int, seed: int) -> list[float]:
    """One host's writer: `merges` batches of ~3,000 tokens from a 200,000-token
    vocabulary (Zipf-like), the 300 most frequent in every batch."""
    rng = random.Random(seed)
    vocab = [f"词{k:x}" for k in range(200_000)]
    weights = [1 / (k + 1) for k in range(len(vocab))]
    store = Store.open_writer(url, TokenizerSettings(), host)
    latencies = []
    for i in range(merges):
        counts: dict[str, int] = {t: rng.randint(20, 200) for t in vocab[:300]}
        for t in rng.choices(vocab, weights, k=3000):
            counts[t] = counts.get(t, 0) + 1
        row = LedgerRow(f"/{host}/{i}", FileId(1, i, 1, 1, ""), 1, "counted", "", "")
        started = time.perf_counter()
        store.merge(Merge(counts, [row]))
        latencies.append(time.perf_counter() - started)
    store.close()
    return latencies


def writers_table(server: PgServer, merges: int) -> None:
    print(f"\nwriters: each merges {merges} batches of ~3,000 tokens (300 hot) into one database")
    print("| writers | merges/s in all | p50 ms | p99 ms |")
    print("| ---: | ---: | ---: | ---: |")
    for n in (1, 2, 3):
        url = server.new_database()
        Store.open_writer(url, TokenizerSettings(), "setup").close()  # the schema, once
        with multiprocessing.get_context("spawn").Pool(n) as pool:
            started = time.perf_counter()
            results = pool.starmap(writer_proc, [(url, f"h{k}", merges, k) for k in range(n)])
            seconds = time.perf_counter() - started
        lat = sorted(x for r in results for x in r)
        p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(f"| {n} | {n * merges / seconds:,.0f} | {p50 * 1000:.1f} | {p99 * 1000:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--distinct", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--merges", type=int, default=200, help="per writer, in `writers`")
    parser.add_argument("--only", choices=("merge", "ingest", "writers"), action="append")
    args = parser.parse_args()
    parts = set(args.only or ("merge", "ingest", "writers"))
    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL is not installed (apt-get install postgresql)")
    server = PgServer(bindir, durable=True).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            if "merge" in parts:
                merge_table(work, server, args.distinct, args.batch)
            if "writers" in parts:
                writers_table(server, args.merges)
            if "ingest" not in parts:
                return
            texts = articles(copies=args.copies)
            folder = work / "corpus"
            write_files(texts, folder)
            megabytes = sum(len(t.encode()) for t in texts) / 1e6
            config = work / "config.toml"
            config.write_text('[tokenizer]\nengine = "jieba-rs"\n')
            seconds: dict[str, list[float]] = {"SQLite": [], "PostgreSQL": []}
            totals = {}
            for r in range(args.rounds):
                dbs = {"SQLite": work / f"i{r}.db", "PostgreSQL": server.new_database()}
                for label, db in dbs.items():
                    seconds[label].append(ingest_once(folder, db, config))
                    reader = Store.open_reader(db)
                    totals[label] = dict(reader.counts())
                    reader.close()
            print(
                f"\ningest: corpus x{args.copies} ({megabytes:.1f} MB, {len(texts):,} files), "
                f"jieba-rs, {os.cpu_count()} workers, {args.rounds} rounds interleaved"
            )
            print("| into | median s | MB/s | vs SQLite |")
            print("| --- | ---: | ---: | ---: |")
            base = statistics.median(seconds["SQLite"])
            for label, runs in seconds.items():
                med = statistics.median(runs)
                print(f"| {label} | {med:.2f} | {megabytes / med:.2f} | {base / med:.2f} |")
            print(f"totals equal: {totals['SQLite'] == totals['PostgreSQL']}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
