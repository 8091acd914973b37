"""Rows to text: an aligned table for people, JSON or CSV for programs."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO
from unicodedata import east_asian_width

FORMATS = ("table", "json", "csv")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def emit(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str, out: TextIO = sys.stdout
) -> None:
    if fmt == "json":
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        json.dump(records, out, ensure_ascii=False, indent=1, default=_cell)
        out.write("\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(v) for v in row] for row in rows)
    else:
        cells = [[_cell(v) for v in row] for row in rows]
        widths = [max([_width(c)] + [_width(r[i]) for r in cells]) for i, c in enumerate(columns)]
        for line in [list(columns), *cells]:
            out.write("  ".join(_pad(v, w) for v, w in zip(line, widths, strict=True)).rstrip())
            out.write("\n")


def _width(text: str) -> int:
    """Display width: CJK characters take two terminal columns."""
    return sum(2 if ch >= "\u1100" and east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
