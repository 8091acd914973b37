"""The shared benchmark corpus, cut into article-sized files (tests and bench).

../shared/corpus/pd199801.txt is People's Daily, January 1998, one paragraph
a line. An article is a run of consecutive paragraphs.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("STREAMCOUNT_CORPUS", ROOT.parent / "shared/corpus/pd199801.txt"))


def articles(paragraphs_per_file: int = 6, copies: int = 1) -> list[str]:
    """The corpus as texts of `paragraphs_per_file` paragraphs, repeated `copies` times."""
    lines = CORPUS.read_text(encoding="utf-8").splitlines(keepends=True)
    texts = [
        "".join(lines[i : i + paragraphs_per_file])
        for i in range(0, len(lines), paragraphs_per_file)
    ]
    return texts * copies


def write_files(texts: list[str], folder: Path, per_folder: int = 1000) -> list[Path]:
    """One file per text, `per_folder` to a subfolder; returns the paths."""
    paths = []
    for i, text in enumerate(texts):
        sub = folder / f"{i // per_folder:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"{i:07d}.txt"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
