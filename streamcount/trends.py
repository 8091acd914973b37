"""Pure arithmetic for the time queries: the rising score and the sparkline.

`rising` scores a word by Dunning's log-likelihood ratio G2 (Dunning 1993,
"Accurate methods for the statistics of surprise and coincidence"): how
unlikely its count in the window is if its rate were the same as in the
reference window. Unlike a plain ratio of rates it does not put a word seen
twice now and never before above one seen 5,000 times now and 500 before:
G2 grows with the evidence, so rare words need many more occurrences to
rank, and a word absent from the reference (b = 0) still gets a finite score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

SPARKS = "▁▂▃▄▅▆▇█"
PERIOD_ORDER = ("hour", "day", "week", "month")


def g2(a: int, n1: int, b: int, n2: int) -> float:
    """Log-likelihood ratio of count `a` of `n1` tokens against `b` of `n2`."""
    total = n1 + n2
    if total == 0 or a + b == 0:
        return 0.0
    e1 = n1 * (a + b) / total
    e2 = n2 * (a + b) / total
    score = (a * math.log(a / e1) if a else 0.0) + (b * math.log(b / e2) if b else 0.0)
    return max(0.0, 2.0 * score)


def rises(a: int, n1: int, b: int, n2: int) -> bool:
    """Whether the rate a/n1 is above b/n2 (a word new in the window rises; with
    no reference at all, every word seen does, and G2 is 0 for all)."""
    if not n2:
        return a > 0
    return a * n2 > b * n1


def sparkline(values: Sequence[int]) -> str:
    """One block character per value, scaled to the largest; zeros as the lowest."""
    top = max(values, default=0)
    if top <= 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[min(len(SPARKS) - 1, v * len(SPARKS) // (top + 1))] for v in values)


def coarser_problem(stored: str, by: str) -> str | None:
    """Why buckets of `stored` cannot be summed into `by` ones, or None."""
    if by not in PERIOD_ORDER:
        return f"--by must be one of {', '.join(PERIOD_ORDER)}"
    if PERIOD_ORDER.index(by) < PERIOD_ORDER.index(stored):
        return f"the database keeps {stored} buckets; --by {by} is finer than that"
    if stored == "week" and by == "month":
        return "weeks do not add up to months; --by week"
    return None
