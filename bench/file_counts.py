"""keep_file_counts: what keeping each file's own counts costs at ingest.

    python -m bench.file_counts [--copies 1] [--rounds 2]

The corpus cut into article-sized files, ingested into a fresh SQLite
database with keep_file_counts off and on, alternating, `--rounds` times
each, in the same run (this machine's speed drifts: compare only within a
run). Prints the best seconds of each, files/s, the database size and the
kept rows.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.corpus import articles, write_files
from streamcount.config import Config
from streamcount.ingest import ingest


def run(folder: Path, db: Path, keep: bool) -> tuple[float, int, int]:
    """Seconds to ingest `folder` into a fresh `db`, its size, and its kept rows."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    config = Config(db=db, workers=os.cpu_count() or 1, keep_file_counts=keep)
    started = time.perf_counter()
    ingest(config, [folder])
    seconds = time.perf_counter() - started
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        kept = conn.execute("SELECT count(*) FROM file_counts").fetchone()[0]
    finally:
        conn.close()
    return seconds, db.stat().st_size, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "inbox"
        paths = write_files(articles(copies=args.copies), folder)
        mb = sum(p.stat().st_size for p in paths) / 1e6
        best: dict[bool, tuple[float, int, int]] = {}
        for _ in range(args.rounds):
            for keep in (False, True):
                got = run(folder, Path(tmp) / "db.sqlite", keep)
                if keep not in best or got[0] < best[keep][0]:
                    best[keep] = got
        print(f"\n{len(paths):,} files, {mb:,.1f} MB, best of {args.rounds} rounds each")
        print("| keep_file_counts | seconds | files/s | database MB | file_counts rows |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for keep, (seconds, size, kept) in best.items():
            print(f"| {str(keep).lower()} | {seconds:.1f} | {len(paths) / seconds:,.0f} | "
                  f"{size / 1e6:.1f} | {kept:,} |")  # fmt: skip
        off, on = best[False][0], best[True][0]
        print(f"\ncost: {100 * (on / off - 1):+.0f} % time, "
              f"{best[True][1] / best[False][1]:.1f}x database size")  # fmt: skip


if __name__ == "__main__":
    main()
