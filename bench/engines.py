"""What the jieba-rs post-pass (streamcount/jiebacompat.py) costs.

    python -m bench.engines [--rounds R] [--mb M]

Cuts the same text in one process with raw rjieba and with the `jieba-rs`
engine (rjieba + the post-pass), each setting, rounds interleaved, medians.
Two texts: the corpus (Chinese news), and "mixed": the corpus with a line of
real ASCII text (the Python standard library's sources) after every fourth
line, the hard case. The post-pass's cost against the raw cut is an upper
bound of its cost against ingest, which does more per token.
"""

from __future__ import annotations

import argparse
import statistics
import sysconfig
import time
from pathlib import Path

import rjieba

from bench.corpus import CORPUS
from streamcount.config import TokenizerSettings
from streamcount.engines import make_cut
from streamcount.tokens import segments

SETTINGS = [(mode, hmm) for mode in ("accurate", "search") for hmm in (True, False)]


def texts(mb: float) -> dict[str, str]:
    news = CORPUS.read_text(encoding="utf-8")[: int(mb * 1_000_000 / 3)]
    code = [
        line.strip()
        for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:60]
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if line.strip()
    ]
    lines = news.splitlines()
    mixed = "\n".join(
        line + ("\n" + code[i % len(code)] if i % 4 == 3 else "") for i, line in enumerate(lines)
    )
    return {"corpus": news, "mixed": mixed}


def timed(cut, lines: list[str]) -> float:
    start = time.perf_counter()
    for line in lines:
        cut(line)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mb", type=float, default=5.0, help="MB of the corpus to cut")
    args = parser.parse_args()
    print("| text | mode | HMM | MB | raw rjieba MB/s | engine MB/s | post-pass cost |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for name, text in texts(args.mb).items():
        lines = list(segments(text))  # the pieces tokens.py cuts
        mb = len(text.encode()) / 1e6
        for mode, hmm in SETTINGS:
            raw_fn = rjieba.cut_for_search if mode == "search" else rjieba.cut
            engine = make_cut(TokenizerSettings(engine="jieba-rs", mode=mode, hmm=hmm))
            engine("A股 warm-up")  # loads what the post-pass loads on first need
            raw, fixed = [], []
            for _ in range(args.rounds):
                raw.append(timed(lambda t, f=raw_fn, h=hmm: f(t, h), lines))
                fixed.append(timed(engine, lines))
            r, f = statistics.median(raw), statistics.median(fixed)
            print(
                f"| {name} | {mode} | {'on' if hmm else 'off'} | {mb:.1f} | {mb / r:.2f} "
                f"| {mb / f:.2f} | {100 * (f / r - 1):+.1f} % |"
            )


if __name__ == "__main__":
    main()
