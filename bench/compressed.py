"""Compressed inputs: peak RSS of the worker and MB/s, a large .zst against plain text.

    python -m bench.compressed [--mb 1024] [--engine jieba-rs] [--formats zst,gz]

The corpus repeated into --mb MB of text, written plain and compressed
(streamed: the benchmark never holds it whole either), each counted by
`streamcount ingest` in a fresh database, in the same run. Peak RSS (VmHWM)
of the parent and of each worker is sampled as bench.memory does. A plain
file is cut into chunks across the workers; a compressed one is read by one
worker, streaming, so its MB/s is one worker's.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import lzma
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import zstandard

from bench.corpus import CORPUS
from bench.memory import measure

WRITERS: dict[str, Callable[[BinaryIO], BinaryIO]] = {
    "zst": lambda f: zstandard.ZstdCompressor().stream_writer(f),
    "gz": lambda f: gzip.GzipFile(fileobj=f, mode="wb", compresslevel=6),
    "bz2": lambda f: bz2.BZ2File(f, "wb"),
    "xz": lambda f: lzma.LZMAFile(f, "wb", preset=1),  # noqa: SIM115 (closed by write_inputs)
}


def write_inputs(folder: Path, mb: int, formats: list[str]) -> dict[str, Path]:
    """big.txt and big.txt.<format> for each format: the corpus repeated to `mb` MB."""
    corpus = CORPUS.read_bytes()
    copies = max(1, mb * 1024 * 1024 // len(corpus))
    paths = {"plain": folder / "big.txt"}
    paths |= {fmt: folder / f"big.txt.{fmt}" for fmt in formats}
    for name, path in paths.items():
        with open(path, "wb") as raw:
            out = raw if name == "plain" else WRITERS[name](raw)
            for _ in range(copies):
                out.write(corpus)
            if out is not raw:
                out.close()
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--engine", default="jieba-rs")
    parser.add_argument("--formats", default="zst")
    args = parser.parse_args()
    formats = args.formats.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_inputs(folder, args.mb, formats)
        text_mb = paths["plain"].stat().st_size / 1e6
        rows = []
        for name, path in paths.items():
            seconds, parent, workers = measure([path], folder / f"db-{name}.sqlite", args.engine)
            rows.append((name, path.stat().st_size / 1e6, seconds, parent, max(workers.values())))
        print(f"\n{text_mb:,.0f} MB of text (the corpus repeated), engine {args.engine}")
        print("| input | on disk MB | seconds | text MB/s | parent peak MB | worker peak MB |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, disk, seconds, parent, worker in rows:
            print(f"| {name} | {disk:,.0f} | {seconds:.1f} | {text_mb / seconds:.1f} | "
                  f"{parent / 1024:.0f} | {worker / 1024:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
