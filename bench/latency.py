"""Latency: from a file's close to its tokens being queryable, under a steady feed.

    python -m bench.latency [--rate-mb 1.0] [--seconds 30] [--engine jieba|jieba-rs]

Starts the daemon on an empty inbox, then writes article files from the
corpus at a steady rate (default 1 MB/s: about half of what the daemon
drains on 2 cores, see docs/benchmarks.md) for --seconds. A reader polls
the ledger every 5 ms; a file's tokens and its ledger row commit in one
transaction, so the moment its row is visible is the moment `streamcount
count` sees its tokens. The goal is about a steady feed, so one file is
counted first (the workers load jieba, ~1 s, after the daemon says it is
watching); its latency is printed as the cold start. Prints p50/p90/p99/max
latency, and per 5-second window the p99 and how far the count lagged
behind the feed (a growing lag would be a growing backlog).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.corpus import articles
from bench.daemon import start_with


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate-mb", type=float, default=1.0, help="feed rate, MB/s")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--engine", default="jieba", choices=("jieba", "jieba-rs"))
    args = parser.parse_args()
    texts = [t.encode() for t in articles(copies=10)]
    with tempfile.TemporaryDirectory() as tmp:
        inbox, db = Path(tmp) / "inbox", Path(tmp) / "db.sqlite"
        inbox.mkdir()
        config = Path(tmp) / "config.toml"
        config.write_text(f'[tokenizer]\nengine = "{args.engine}"\n')
        proc = start_with(
            ["--watch", str(inbox), "--db", str(db), "--workers", str(args.workers),
             "--config", str(config)]
        )  # fmt: skip
        try:
            cold = warm_up(inbox, db, texts[0])
            closed, seen, lag = feed_and_watch(inbox, db, texts, args.rate_mb, args.seconds)
        finally:
            proc.terminate()
            proc.wait()
    print(f"cold start: the first file after start visible in {cold * 1000:.0f} ms")
    report(closed, seen, lag, args)


def warm_up(inbox: Path, db: Path, text: bytes) -> float:
    """Write one file and wait until it is counted; return how long that took."""
    path = inbox / "warm-up.txt"
    path.write_bytes(text)
    closed = time.monotonic()
    while True:
        try:
            with sqlite3.connect(db) as conn:
                if conn.execute("SELECT 1 FROM files WHERE path = ?", (str(path),)).fetchone():
                    return time.monotonic() - closed
        except sqlite3.OperationalError:
            pass  # no table yet
        time.sleep(0.005)


def feed_and_watch(inbox: Path, db: Path, texts: list[bytes], rate_mb: float, seconds: float):
    closed: dict[str, float] = {}
    seen: dict[str, float] = {}
    lag: list[tuple[float, int]] = []
    done = threading.Event()

    def watch() -> None:
        conn = sqlite3.connect(db)
        last = 0
        while not done.is_set() or len(seen) < len(closed):
            now = time.monotonic()
            for rowid, path in conn.execute(
                "SELECT rowid, path FROM files WHERE rowid > ? ORDER BY rowid", (last,)
            ):
                seen[path] = now
                last = rowid
            lag.append((now, len(closed) - len(seen)))
            time.sleep(0.005)
        conn.close()

    watcher = threading.Thread(target=watch)
    started = time.monotonic()
    sent = 0
    i = 0
    watcher.start()
    while (now := time.monotonic()) - started < seconds:
        due = (now - started) * rate_mb * 1e6
        while sent < due:
            path = inbox / f"{i:07d}.txt"
            with open(path, "wb") as f:
                f.write(texts[i % len(texts)])
            closed[str(path)] = time.monotonic()
            sent += len(texts[i % len(texts)])
            i += 1
        time.sleep(0.002)
    done.set()
    watcher.join(timeout=120)
    return closed, seen, [(t - started, n) for t, n in lag]


def report(closed, seen, lag, args) -> None:
    latencies = sorted(seen[p] - closed[p] for p in closed if p in seen)
    q = statistics.quantiles(latencies, n=100)
    print(f"{args.engine}, feed {args.rate_mb} MB/s for {args.seconds:g} s: {len(closed)} files, "
          f"{len(latencies)} seen")  # fmt: skip
    print("| p50 | p90 | p99 | max |")
    print("| ---: | ---: | ---: | ---: |")
    print(f"| {q[49]*1000:.0f} ms | {q[89]*1000:.0f} ms | {q[98]*1000:.0f} ms "
          f"| {latencies[-1]*1000:.0f} ms |")  # fmt: skip
    print("\nper 5-second window of the feed: p99 latency of the files closed in it,")
    print("and the most files written but not yet visible:")
    start = min(closed.values())
    by_window: dict[int, list[float]] = {}
    for p in closed:
        if p in seen:
            by_window.setdefault(int((closed[p] - start) // 5), []).append(seen[p] - closed[p])
    windows: dict[int, int] = {}
    for t, n in lag:
        windows[int(t // 5)] = max(windows.get(int(t // 5), 0), n)
    for w, n in sorted(windows.items()):
        times = sorted(by_window.get(w, []))
        p99 = f"{times[int(len(times) * 0.99)] * 1000:.0f} ms" if times else "–"
        print(f"  {w * 5:3d}-{w * 5 + 5}s: p99 {p99}, pending {n}")


if __name__ == "__main__":
    main()
