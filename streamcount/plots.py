"""Pictures: Zipf's rank-frequency, words' trends, rising words; PNG or SVG.

matplotlib is an optional extra (`streamcount[plot]`). Chinese labels need
a font with CJK glyphs, which matplotlib does not ship: the first installed
font that has them is used (WenQuanYi Micro Hei from Debian's
fonts-wqy-microhei, which `make plot-tools` installs, or Noto/Source Han
Sans CJK, ...), found by asking each font file for the glyph of 的. With
none, a plot is refused in one line saying what to install, rather than
drawn with empty boxes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXTRA = "streamcount[plot]"
FORMATS = (".png", ".svg")
PREFERRED = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans SC")
PROBE = "的"


class PlotError(Exception):
    """A plot cannot be drawn as asked (no matplotlib, no CJK font, bad suffix)."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError(f"plots need matplotlib: pip install '{EXTRA}'") from None
    return plt


def cjk_font() -> str:
    """The family name of an installed font with CJK glyphs (PlotError if none)."""
    _pyplot()
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    fonts = sorted(
        font_manager.fontManager.ttflist,
        key=lambda f: PREFERRED.index(f.name) if f.name in PREFERRED else len(PREFERRED),
    )
    for font in fonts:
        if _has_cjk(FT2Font, font.fname):
            return font.name
    # installed after matplotlib cached its font list: look at the files themselves
    for path in font_manager.findSystemFonts():
        if _has_cjk(FT2Font, path):
            font_manager.fontManager.addfont(path)
            return font_manager.FontProperties(fname=path).get_name()
    raise PlotError(
        "no installed font has Chinese glyphs, so labels would be empty boxes: install one "
        "(apt-get install fonts-wqy-microhei, or `make plot-tools`)"
    )


def _has_cjk(ft2font: Any, path: str) -> bool:
    try:
        return bool(ft2font(path).get_char_index(ord(PROBE)))
    except (OSError, RuntimeError, ValueError):
        return False


def figure(width: int, height: int) -> tuple[Any, Any]:
    """A figure of width x height pixels, its text in the CJK font."""
    plt = _pyplot()
    plt.rcParams["font.family"] = [cjk_font(), "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    fig, ax = plt.subplots(figsize=(width / 100, height / 100), dpi=100)
    return fig, ax


def save(fig: Any, out: Path) -> None:
    if out.suffix.lower() not in FORMATS:
        raise PlotError(f"{out}: give a file ending in .png or .svg")
    try:
        fig.savefig(out, dpi=100)
    except OSError as exc:
        raise PlotError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        _pyplot().close(fig)


def zipf_exponent(counts: Sequence[int]) -> float:
    """s in count ~ rank^-s, by least squares on log-log (ranks 1..len)."""
    xs = [math.log(r) for r in range(1, len(counts) + 1)]
    ys = [math.log(c) for c in counts]
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return -sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def plot_zipf(rows: list[dict[str, Any]], out: Path, width: int, height: int) -> None:
    """Rank against count, log-log, the fitted exponent in the legend, top words named."""
    fig, ax = figure(width, height)
    counts = [r["count"] for r in rows]
    s = zipf_exponent(counts)
    ranks = range(1, len(counts) + 1)
    ax.loglog(ranks, counts, ".", markersize=3, label="tokens")
    if counts:
        ax.loglog(ranks, [counts[0] * r**-s for r in ranks], "-", label=f"Zipf fit, s = {s:.2f}")
    for r in rows[:8]:
        ax.annotate(r["token"], (r["rank"], r["count"]), fontsize=9)
    ax.set_xlabel("rank")
    ax.set_ylabel("count")
    ax.legend()
    save(fig, out)


def plot_trend(rows: list[dict[str, Any]], words: list[str], out: Path, width: int,
               height: int) -> None:  # fmt: skip
    """One line per word: its count per bucket."""
    fig, ax = figure(width, height)
    for word in words:
        mine = [r for r in rows if r["token"] == word]
        ax.plot([r["bucket"] for r in mine], [r["count"] for r in mine], marker=".", label=word)
    ax.set_ylabel("count")
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax.legend()
    fig.tight_layout()
    save(fig, out)


def plot_rising(rows: list[dict[str, Any]], out: Path, width: int, height: int) -> None:
    """The rising words as bars of their G2 score, the first on top."""
    fig, ax = figure(width, height)
    rows = rows[::-1]
    ax.barh([r["token"] for r in rows], [r["g2"] for r in rows])
    ax.set_xlabel("log-likelihood G2 (window against reference)")
    fig.tight_layout()
    save(fig, out)
