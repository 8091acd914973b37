"""Peak memory of every process while counting a huge file, or a huge backlog.

    python -m bench.memory bigfile [--mb 1024] [--engine jieba-rs] [--no-newlines | --letters]
    python -m bench.memory backlog [--files 100000] [--engine jieba-rs]
    ... [--baseline REV]

Runs `streamcount ingest` (the daemon's pipeline) and samples the peak RSS
(VmHWM) of the parent and of each worker every 0.2 s. `bigfile` is the
corpus repeated into one file of --mb MB (cut into line-aligned chunks),
or with its newlines removed (one line), or random ASCII letters with no
space or punctuation at all (one line, one run); `backlog` is --files
article files all present at start. `--baseline REV` measures the same
input again with the code of git revision REV (exported to a temporary
folder and put first on PYTHONPATH), in the same run.
"""

from __future__ import annotations

import argparse
import os
import random
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


def measure(
    paths: list[Path], db: Path, engine: str, code: Path | None = None
) -> tuple[float, int, dict[int, int]]:
    config = db.with_suffix(".toml")
    config.write_text(f'[tokenizer]\nengine = "{engine}"\n')
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")]))
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamcount", "ingest", *map(str, paths), "--db", str(db),
         "--config", str(config)],
        stdout=subprocess.PIPE, text=True, env=env, cwd=db.parent,  # not this checkout
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
    parser.add_argument("--letters", action="store_true", help="bigfile: one run of letters")
    parser.add_argument("--baseline", metavar="REV", help="measure the code of REV too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if args.what == "bigfile":
            corpus = CORPUS.read_bytes()
            if args.no_newlines:
                corpus = corpus.replace(b"\n", b"")
            if args.letters:
                rng = random.Random(1)
                corpus = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(1 << 20))
            path = tmp_path / "big.txt"
            with open(path, "wb") as f:
                for _ in range(max(1, args.mb * 1024 * 1024 // len(corpus))):
                    f.write(corpus)
            lines = "line of letters" if args.letters else "line" if args.no_newlines else "file"
            paths, label = [path], f"one {path.stat().st_size / 1e6:,.0f} MB {lines}"
        else:
            texts = articles()
            texts = (texts * (args.files // len(texts) + 1))[: args.files]
            write_files(texts, tmp_path / "inbox")
            paths, label = [tmp_path / "inbox"], f"a backlog of {args.files:,} files"
        codes: list[tuple[str, Path | None]] = [("this code", None)]
        if args.baseline:
            code = tmp_path / "baseline"
            code.mkdir()
            archive = subprocess.run(
                ["git", "archive", args.baseline, "streamcount"], check=True, capture_output=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
            codes.append((f"baseline {args.baseline}", code))
        for name, code in codes:
            db = tmp_path / f"db-{len(name)}.sqlite"
            seconds, parent, workers = measure(paths, db, args.engine, code)
            peaks = ", ".join(f"{kb / 1024:.0f}" for kb in workers.values())
            print(f"{label}, engine {args.engine}, {name}: {seconds:.1f} s; peak RSS parent "
                  f"{parent / 1024:.0f} MB, workers {peaks} MB")  # fmt: skip


if __name__ == "__main__":
    main()
