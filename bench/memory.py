"""Peak memory of every process while counting a huge file, or a huge backlog.

    python -m bench.memory bigfile [--mb 1024] [--engine jieba-rs] [--no-newlines]
    python -m bench.memory backlog [--files 100000] [--engine jieba-rs]

Runs `streamcount ingest` (the daemon's pipeline) and samples the peak RSS
(VmHWM) of the parent and of each worker every 0.2 s. `bigfile` is the
corpus repeated into one file of --mb MB (cut into line-aligned chunks);
`backlog` is --files article files all present at start.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.corpus import CORPUS, articles, write_files


def peak_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def measure(paths: list[Path], db: Path, engine: str) -> tuple[float, int, dict[int, int]]:
    config = db.with_suffix(".toml")
    config.write_text(f'[tokenizer]\nengine = "{engine}"\n')
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamcount", "ingest", *map(str, paths), "--db", str(db),
         "--config", str(config)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    parent, workers = 0, {}
    while proc.poll() is None:
        parent = max(parent, peak_kb(proc.pid))
        for child in children(proc.pid):
            workers[child] = max(workers.get(child, 0), peak_kb(child))
        time.sleep(0.2)
    print(proc.stdout.read().strip() if proc.stdout else "")
    return time.perf_counter() - started, parent, workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["bigfile", "backlog"])
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--engine", default="jieba-rs")
    parser.add_argument("--no-newlines", action="store_true", help="bigfile: one single line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if args.what == "bigfile":
            corpus = CORPUS.read_bytes()
            if args.no_newlines:
                corpus = corpus.replace(b"\n", b"")
            path = tmp_path / "big.txt"
            with open(path, "wb") as f:
                for _ in range(max(1, args.mb * 1024 * 1024 // len(corpus))):
                    f.write(corpus)
            lines = "line" if args.no_newlines else "file"
            paths, label = [path], f"one {path.stat().st_size / 1e6:,.0f} MB {lines}"
        else:
            texts = articles()
            texts = (texts * (args.files // len(texts) + 1))[: args.files]
            write_files(texts, tmp_path / "inbox")
            paths, label = [tmp_path / "inbox"], f"a backlog of {args.files:,} files"
        seconds, parent, workers = measure(paths, tmp_path / "db.sqlite", args.engine)
    peaks = ", ".join(f"{kb / 1024:.0f}" for kb in workers.values())
    print(f"{label}, engine {args.engine}: {seconds:.1f} s; peak RSS parent "
          f"{parent / 1024:.0f} MB, workers {peaks} MB")  # fmt: skip


if __name__ == "__main__":
    main()
