"""Hostile text shapes: the tokenizer's time on long runs, before and after the cut,
and what cutting a long line at chunk edges changes.

    python -m bench.textbounds [--quick]

`before` gives the run to the engine whole, as streamcount did; `after` goes
through `Tokenizer.count` (runs cut every MAX_RUN_CHARS). Then the pd199801
corpus with its newlines removed, in GB18030, is read in 1 MiB chunks with
a 256 KiB edge window (one line: every edge is a character-boundary cut)
and counted with jieba-rs, against the same text counted whole.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.corpus import CORPUS
from streamcount import textbounds
from streamcount.config import TokenizerSettings
from streamcount.tokens import Tokenizer, read_piece
from streamcount.work import FileRef, Piece


def seconds(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def runs(quick: bool) -> None:
    rng = random.Random(1)
    shapes = [
        ("ASCII letters", 1_000_000, lambda n: "".join(rng.choice("abcdefgh") for _ in range(n))),
        ("ASCII letters", 3_000_000, lambda n: "".join(rng.choice("abcdefgh") for _ in range(n))),
        ('"的" repeated', 50_000, lambda n: "的" * n),
        ('"的" repeated', 100_000, lambda n: "的" * n),
        ('"的" repeated', 1_000_000, lambda n: "的" * n),
    ]
    print("| run | characters | engine | before (whole) | after (cut) |")
    print("| --- | ---: | --- | ---: | ---: |")
    for engine in ("jieba", "jieba-rs"):
        tokenizer = Tokenizer(TokenizerSettings(engine=engine))
        for name, n, make in shapes:
            if quick:
                n //= 10
            text = make(n)
            # whole, 1 M "的" would take jieba about an hour (quadratic): not tried
            if engine == "jieba" and "的" in name and n > 100_000:
                before = "—"
            else:
                before = f"{seconds(lambda: list(tokenizer.cut(text))):.2f} s"  # noqa: B023
            after = seconds(lambda: tokenizer.count(text))  # noqa: B023
            print(f"| {name} | {n:,} | {engine} | {before} | {after:.2f} s |")


def chunk_edges() -> None:
    text = CORPUS.read_text(encoding="utf-8").replace("\n", "")
    data = text.encode("gb18030")
    tokenizer = Tokenizer(TokenizerSettings(engine="jieba-rs"))
    textbounds.MAX_LINE_BYTES = 1 << 18
    chunk = 1 << 20
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "line.txt"
        path.write_bytes(data)
        ref = FileRef(str(path), len(data), 0, 0)
        parts = [read_piece(Piece(ref, s, s + chunk))[0] for s in range(0, len(data), chunk)]
    assert b"".join(parts) == data
    cut: Counter[str] = Counter()
    for part in parts:
        cut.update(tokenizer.count(part.decode("gb18030")))
    whole = Counter(tokenizer.count(text))
    differ = (cut - whole) + (whole - cut)
    print(f"\none {len(data) / 1e6:.1f} MB line (pd199801 without newlines, GB18030), "
          f"{len(parts)} chunks of 1 MiB, {len(parts) - 1} edges: "
          f"{sum(whole.values()):,} tokens whole, {sum(cut.values()):,} in chunks; "
          f"{sum(differ.values())} token counts differ: {dict(differ)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes")
    args = parser.parse_args()
    runs(args.quick)
    chunk_edges()


if __name__ == "__main__":
    main()
