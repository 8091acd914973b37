"""Rows to text: an aligned table for people, JSON or CSV for programs.

Rows are written as they come, so printing costs the same memory for ten
rows or ten million: CSV and JSON a row at a time (`--json` is one array with
an object a line), the table a block of TABLE_BLOCK rows at a time (its
columns widen, if they must, from one block to the next).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TextIO
from unicodedata import east_asian_width

FORMATS = ("table", "json", "csv")
TABLE_BLOCK = 1000


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
    """Write the rows in `fmt` (one of FORMATS), as they come."""
    if fmt == "json":
        out.write("[")
        sep = "\n"
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            out.write(sep + json.dumps(record, ensure_ascii=False, default=_cell))
            sep = ",\n"
        out.write("]\n" if sep == "\n" else "\n]\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(v) for v in row] for row in rows)
    else:
        _table(columns, rows, out)


def _table(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> None:
    widths = [_width(c) for c in columns]
    header: list[list[str]] = [list(columns)]
    for block in _blocks(rows, TABLE_BLOCK):
        cells = [[_cell(v) for v in row] for row in block]
        widths = [max([w] + [_width(r[i]) for r in cells]) for i, w in enumerate(widths)]
        _lines(header + cells, widths, out)
        header = []
    _lines(header, widths, out)


def _blocks(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    it = iter(rows)
    while block := list(islice(it, size)):
        yield block


def _lines(lines: list[list[str]], widths: list[int], out: TextIO) -> None:
    for line in lines:
        out.write("  ".join(_pad(v, w) for v, w in zip(line, widths, strict=True)).rstrip())
        out.write("\n")


def _width(text: str) -> int:
    """Display width: CJK characters take two terminal columns."""
    return sum(2 if ch >= "\u1100" and east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
