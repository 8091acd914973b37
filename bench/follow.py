"""What following growing files costs: daemon CPU per line and per MB.

    python -m bench.follow [--files 200] [--rate 3] [--seconds 20]

Three runs of the daemon, each measured from after its warm-up (jieba
loaded) to the moment all the text is counted, CPU of the daemon and its
workers together (/proc: user + system):

- idle:   --files followed files, nothing written for --seconds (what having
          them costs: no per-file polling, so about nothing);
- follow: the same files, each appended --rate lines a second (corpus
          paragraphs, one a line) for --seconds;
- whole:  the very same lines, written as --files complete files at once into
          a plain (not followed) folder: the cost of counting the text itself.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

from bench.corpus import CORPUS
from bench.daemon import start_with

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and of its live children (the workers)."""
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    pids += [int(c) for c in children]
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def total_tokens(db: Path) -> int:
    """The database's total of tokens; 0 before it exists (the tests use it too)."""
    if not db.exists():
        return 0  # (connecting would create it)
    try:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'total_tokens'").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0]) if row else 0


def wait_for(condition, timeout: float = 600.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise SystemExit("timed out")
        time.sleep(0.02)


def start(tmp: Path, folder: Path, follow: bool, workers: int) -> subprocess.Popen[str]:
    config = tmp / "config.toml"
    entry = f'{{ path = "{folder}", follow = {str(follow).lower()} }}'
    config.write_text(
        f'db = "{tmp / "db.sqlite"}"\nworkers = {workers}\n[discovery]\n'
        f'watch = [{entry}]\ninclude = ["*.log"]\nsettle_seconds = 0.5\n'
    )
    return start_with(["--config", str(config)])


def warm_up(folder: Path, db: Path) -> None:
    """One line counted: the daemon's tokenizer (and the workers') loaded."""
    (folder / "warm.log").write_text("今天天气很好。\n", encoding="utf-8")
    wait_for(lambda: total_tokens(db) > 0)


def run(kind: str, lines: list[str], args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        folder, db = tmp / "logs", tmp / "db.sqlite"
        folder.mkdir()
        paths = [folder / f"f{i:03d}.log" for i in range(args.files)]
        if kind != "whole":
            for p in paths:
                p.write_bytes(b"")
        proc = start(tmp, folder, kind != "whole", args.workers)
        try:
            warm_up(folder, db)
            time.sleep(1.0)  # the warm-up's merge and log settle
            before_tokens = total_tokens(db)
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            if kind == "follow":
                feed(paths, lines, args.rate)
            elif kind == "whole":
                for i, p in enumerate(paths):
                    p.write_text("".join(lines[i :: args.files]), encoding="utf-8")
            else:
                time.sleep(args.seconds)
            if kind != "idle":
                wait_for(lambda: total_tokens(db) >= before_tokens + args.expected_tokens)
                wait_for(lambda: total_tokens(db) == before_tokens + args.expected_tokens)
            cpu, wall = cpu_seconds(proc.pid) - cpu0, time.monotonic() - t0
        finally:
            proc.terminate()
            proc.wait()
    return {"cpu": cpu, "wall": wall}


def feed(paths: list[Path], lines: list[str], rate: float) -> None:
    """Each file gets `rate` lines a second, the files' writes spread over the second."""
    files = [open(p, "a", encoding="utf-8") for p in paths]  # noqa: SIM115
    try:
        started = time.monotonic()
        n = 0
        per_second = rate * len(paths)
        while n < len(lines):
            due = min(len(lines), int((time.monotonic() - started) * per_second))
            while n < due:
                f = files[n % len(files)]
                f.write(lines[n])
                f.flush()
                n += 1
            time.sleep(0.005)
    finally:
        for f in files:
            f.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rate", type=float, default=3.0, help="lines a second per file")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    text = CORPUS.read_text(encoding="utf-8")
    corpus = [line + "\n" for line in text.splitlines() if line.strip()]
    count = int(args.files * args.rate * args.seconds)
    lines = [corpus[i % len(corpus)] for i in range(count)]
    mb = sum(len(line.encode()) for line in lines) / 1e6
    args.expected_tokens = expected_tokens(lines)
    print(
        f"{args.files} files, {args.rate:g} lines/s each for {args.seconds:g} s: {count} "
        f"lines, {mb:.2f} MB, {args.expected_tokens} tokens; {args.workers} workers"
    )
    print("| run | daemon CPU s | wall s | CPU ms per 1,000 lines | CPU s per MB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind in ("idle", "follow", "whole"):
        r = run(kind, lines, args)
        per_k = r["cpu"] / count * 1e6 if kind != "idle" else float("nan")
        per_mb = r["cpu"] / mb if kind != "idle" else float("nan")
        print(f"| {kind} | {r['cpu']:.2f} | {r['wall']:.1f} | {per_k:.0f} | {per_mb:.2f} |")


def expected_tokens(lines: list[str]) -> int:
    """The tokens the lines give, counted as the daemon counts them."""
    from streamcount.config import TokenizerSettings
    from streamcount.tokens import Tokenizer

    return sum(Tokenizer(TokenizerSettings()).count("".join(lines)).values())


if __name__ == "__main__":
    main()
