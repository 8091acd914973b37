"""The totals table at scale: merge speed and `top 100` as distinct tokens grow.

    python -m bench.store_scale [--distinct 2000000] [--batch 50000]

Merges synthetic batches through Store.merge (the daemon's own code) into a
fresh database: each batch mixes tokens already in the table (drawn with a
Zipf-like skew, as real text is) with new ones, until the table holds
--distinct rows. Prints merge rows/s and `top 100` latency at each size, for
the schema as shipped (a partial index on the frequent tokens' counts) and,
for comparison, with no index on `count` and with a full one.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from streamcount.config import TokenizerSettings
from streamcount.identity import FileId
from streamcount.store import LedgerRow, Merge, Store

CHARS = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工"


def batches(distinct: int, size: int, seed: int = 1):
    """Yield count dicts shaped like a batch of text: the frequent words (the
    first 2,000 tokens) every time with large counts, ~40% tokens new to the
    table, the rest drawn from the tokens already there."""
    rng = random.Random(seed)
    made = 0
    while made < distinct:
        fresh = min(int(size * 0.4), distinct - made)
        ids = list(range(made, made + fresh))
        hot = list(range(min(2000, made)))
        rest = min(size - fresh - len(hot), max(made - len(hot), 0))
        ids += hot + rng.sample(range(len(hot), made), rest) if rest > 0 else hot
        made += fresh
        yield {
            f"{CHARS[k % len(CHARS)]}{k:x}": rng.randint(50, 500) if k < 2000 else rng.randint(1, 5)
            for k in ids
        }


def merge_and_top(
    store: Store, db: Path | str, distinct: int, size: int
) -> list[tuple[int, float, float]]:
    """Merge batches into `store` until `distinct` tokens: (distinct tokens, merge
    rows/s, top 100 ms from a reader of `db`) at each doubling from 250k."""
    rows = []
    checkpoint = 250_000
    for i, counts in enumerate(batches(distinct, size)):
        row = LedgerRow(f"/f{i}", FileId(1, i, 1, 1, ""), 1, "counted", "", "")
        started = time.perf_counter()
        store.merge(Merge(counts, [row]))
        rate = len(counts) / (time.perf_counter() - started)
        n = store.distinct_tokens()
        if n >= checkpoint or n >= distinct:
            reader = Store.open_reader(db)
            times = []
            for _ in range(9):
                t = time.perf_counter()
                reader.top(100)
                times.append(time.perf_counter() - t)
            reader.close()
            rows.append((n, rate, statistics.median(times) * 1000))
            checkpoint *= 2
    return rows


def run(distinct: int, size: int, index: str) -> list[tuple[int, float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open_writer(Path(tmp) / "db.sqlite", TokenizerSettings())
        store.conn.execute("DROP INDEX counts_top") if index != "partial" else None
        if index == "full":
            store.conn.execute("CREATE INDEX counts_count ON counts(count)")
        rows = merge_and_top(store, store.path, distinct, size)
        store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--distinct", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    args = parser.parse_args()
    print(f"batches of {args.batch:,} tokens up to {args.distinct:,} distinct")
    print("| schema | distinct tokens | merge rows/s | top 100 ms |")
    print("| --- | ---: | ---: | ---: |")
    variants = (
        ("as shipped: partial index (count >= 1000)", "partial"),
        ("no index on count", "none"),
        ("full index on count", "full"),
    )
    for label, index in variants:
        for n, rate, top_ms in run(args.distinct, args.batch, index):
            print(f"| {label} | {n:,} | {rate:,.0f} | {top_ms:.1f} |", flush=True)


if __name__ == "__main__":
    main()
