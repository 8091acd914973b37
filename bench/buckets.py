"""Time buckets: what they cost at ingest, and how fast the window queries are.

    python -m bench.buckets [--copies 10] [--rounds 1] [--distinct 2000000] [--days 365]
                            [--per-day 50000] [--skip-ingest]

Part 1 ingests the corpus (cut into articles, --copies times) through
`ingest` (the daemon's pipeline) into fresh SQLite databases with
period = "none" (the baseline), period = "day" with every file counted in
one day, and period = "day", time = "mtime" with the files' mtimes spread
over 365 days: in file order (a backfill of dated files: consecutive files
share a day) and interleaved (file i on day i mod 365: every task holds one
file, the worst case for tasks grouped by bucket). The database's size
beside the baseline's is the bucket tables' size.

Part 2 builds a database of --distinct tokens in the totals and --days
daily buckets of --per-day tokens each (drawn with a Zipf-like skew, through
Store.merge with one bucket per day; the totals' remaining tokens are added
by one upsert), then times `top 100 --since 7d` and a `trend` of 5 words
over 365 days (median of 9, from a reader).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from streamcount.config import Config, TokenizerSettings
from streamcount.store import Merge, Store
from streamcount.timebuckets import BucketSettings, bucket_start, now_utc
from streamcount.windows import top_since, trend

from .corpus import articles, write_files

DAY = 86400


def ingest_run(files: Path, db: Path, buckets: BucketSettings) -> tuple[float, int]:
    from streamcount.ingest import ingest

    config = Config(db=db, workers=2, buckets=buckets)
    started = time.perf_counter()
    summary = ingest(config, [files])
    assert summary.by_status["counted"] > 0
    return time.perf_counter() - started, sum(
        p.stat().st_size for p in db.parent.glob(db.name + "*")
    )


def set_mtimes(paths: list[Path], interleaved: bool) -> None:
    now = time.time()
    n = len(paths)
    for i, path in enumerate(paths):
        day = i % 365 if interleaved else i * 365 // n
        os.utime(path, (now - day * DAY, now - day * DAY))


def part1(copies: int, rounds: int) -> None:
    texts = articles(copies=copies)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    print(f"\ningest of the corpus x{copies} ({len(texts):,} files, {mb:.1f} MB), 2 workers")
    print("| run | seconds | MB/s | vs none | database MB | bucket tables MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = write_files(texts, root / "files")
        runs = [
            ("period = none", BucketSettings(period="none"), None),
            ("period = day, one day", BucketSettings(), None),
            ("day, mtime over 365 days, in file order", BucketSettings(time="mtime"), False),
            ("day, mtime over 365 days, interleaved", BucketSettings(time="mtime"), True),
        ]
        base = base_size = 0.0
        for i, (label, settings, interleaved) in enumerate(runs):
            if interleaved is not None:
                set_mtimes(paths, interleaved)
            seconds = float("inf")
            for r in range(rounds):  # the best of `rounds`: this machine's speed drifts
                db = root / f"db{i}-{r}.sqlite"
                took, size = ingest_run(root / "files", db, settings)
                seconds = min(seconds, took)
            base, base_size = (seconds, size) if i == 0 else (base, base_size)
            print(f"| {label} | {seconds:.1f} | {mb / seconds:.2f} | {base / seconds:.2f} | "
                  f"{size / 1e6:.1f} | {(size - base_size) / 1e6:.1f} |", flush=True)  # fmt: skip


def day_counts(rng: random.Random, distinct: int, per_day: int) -> dict[str, int]:
    """A day's counts: the 2,000 frequent tokens every day, the rest Zipf-like."""
    counts = {f"t{k}": rng.randint(50, 500) for k in range(2000)}
    while len(counts) < per_day:
        k = int(distinct ** rng.random()) - 1  # log-uniform: P(k) ~ 1/k, as Zipf
        counts[f"t{k}"] = counts.get(f"t{k}", 0) + 1
    return counts


def part2(distinct: int, days: int, per_day: int) -> None:
    rng = random.Random(10)
    now = now_utc()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "db.sqlite"
        store = Store.open_writer(db, TokenizerSettings(), buckets=BucketSettings(time="mtime"))
        started = time.perf_counter()
        for d in range(days):
            merge = Merge()
            merge.add(day_counts(rng, distinct, per_day), [], bucket_start(now - d * DAY, "day"))
            store.merge(merge)
        with store._transaction():  # the totals' other tokens, as years of text would leave
            store._add_counts({f"t{k}": 1 for k in range(distinct)})
        build = time.perf_counter() - started
        rows = store.conn.execute("SELECT COUNT(*) FROM buckets").fetchone()[0]
        size = db.stat().st_size
        store.close()
        reader = Store.open_reader(db)
        words = ["t0", "t1", "t150", "t7000", "t123456"]

        def median_ms(call) -> float:
            times = []
            for _ in range(9):
                t = time.perf_counter()
                call()
                times.append(time.perf_counter() - t)
            return statistics.median(times) * 1000

        top_ms = median_ms(lambda: top_since(reader, 100, "7d"))
        trend_ms = median_ms(lambda: trend(reader, words, f"{days}d"))
        print(f"\n{reader.distinct_tokens():,} distinct tokens, {days} daily buckets of "
              f"{per_day:,} tokens ({rows:,} bucket rows, {size / 1e6:.0f} MB), built in "
              f"{build:.0f} s")  # fmt: skip
        print("| query | ms (median of 9) |")
        print("| --- | ---: |")
        print(f"| top 100 --since 7d | {top_ms:.1f} |")
        print(f"| trend of 5 words over {days} days | {trend_ms:.1f} |")
        reader.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--distinct", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=1, help="ingest runs each; the best")
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    if not args.skip_ingest:
        part1(args.copies, args.rounds)
    part2(args.distinct, args.days, args.per_day)


if __name__ == "__main__":
    main()
