"""The time queries: top, count, trend and rising over a window of buckets.

A window is the buckets that *start* inside it: `--since 7d` on day buckets
at noon is the last seven days, today's included; `--until U` stops before
the bucket starting at U. The resolution is the bucket the database keeps.
Rows use the field names of `top --json` (token, count, share, rank) plus
`bucket`, the ISO date (date-time for hours) of the bucket's start.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .store import Store, StoreError
from .timebuckets import (
    BucketSettings,
    TimeError,
    bucket_label,
    bucket_start,
    buckets_between,
    next_bucket,
    now_utc,
    parse_duration,
    parse_instant,
)
from .trends import coarser_problem, g2, rises


def kept(store: Store) -> BucketSettings:
    """The bucket settings the database was filed with; StoreError if it keeps none."""
    stored = store.meta("buckets")
    settings = BucketSettings(**json.loads(stored)) if stored else None
    if settings is None or not settings.enabled:
        raise StoreError(
            f"{store.location} keeps no time buckets ([buckets] period = \"none\", "
            "or counted before buckets existed)"
        )
    return settings


def window(store: Store, since: str | None, until: str | None, now: float | None = None
           ) -> tuple[BucketSettings, int, int | None]:  # fmt: skip
    """(settings, first, end): the bucket starts a window takes are first <= b < end."""
    settings = kept(store)
    now = now_utc() if now is None else now
    try:
        first = math.ceil(parse_instant(since, now, settings.timezone)) if since else 0
        end = math.ceil(parse_instant(until, now, settings.timezone)) if until else None
    except TimeError as exc:
        raise StoreError(f"--since/--until: {exc}") from None
    return settings, first, end


def _total(store: Store, first: int, end: int | None) -> int:
    return sum(n for _, n in store.bucket_totals(first, end))


def top_since(
    store: Store, n: int, since: str | None, until: str | None = None
) -> list[dict[str, Any]]:
    """The n most frequent tokens in the window; share of the window's tokens."""
    _, first, end = window(store, since, until)
    total = _total(store, first, end)
    return [
        {"rank": i, "token": token, "count": count, "share": count / total}
        for i, (token, count) in enumerate(store.window_counts(first, end, limit=n), start=1)
    ]


def count_since(
    store: Store, words: list[str], since: str | None, until: str | None = None
) -> list[dict[str, Any]]:
    """Each word's count in the window (0 if none) and its share of the window's tokens."""
    _, first, end = window(store, since, until)
    total = _total(store, first, end)
    counts = store.counts_in(list(words), first, end)
    return [
        {"token": w, "count": counts.get(w, 0), "share": counts.get(w, 0) / total if total else 0.0}
        for w in words
    ]


def trend(
    store: Store, words: list[str], since: str | None = None, until: str | None = None,
    by: str | None = None, now: float | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per bucket (of `by`, default the kept period) and word, zeros
    included, from the window's first bucket to its last (or now's)."""
    settings, first, end = window(store, since, until, now)
    period, tz = settings.period, settings.timezone
    by = by or period
    problem = coarser_problem(period, by)
    if problem:
        raise StoreError(problem)
    totals = store.bucket_totals(first, end)
    if not totals:
        return []
    start = first if since else totals[0][0]
    held = bucket_start(start, period, tz)
    start = held if held == start else next_bucket(held, period, tz)
    now = now_utc() if now is None else now
    last = bucket_start(end - 1, period, tz) if end else bucket_start(now, period, tz)
    last = max(last, totals[-1][0])
    out_buckets = buckets_between(bucket_start(start, by, tz), bucket_start(last, by, tz), by, tz)
    sums = {b: 0 for b in out_buckets}
    for b, n in totals:
        sums[bucket_start(b, by, tz)] = sums.get(bucket_start(b, by, tz), 0) + n
    counts: dict[tuple[int, str], int] = {}
    for b, token, n in store.bucket_rows(list(words), first, end):
        key = (bucket_start(b, by, tz), token)
        counts[key] = counts.get(key, 0) + n
    rows = []
    for b in out_buckets:
        for w in words:
            c = counts.get((b, w), 0)
            rows.append({"bucket": bucket_label(b, by, tz), "token": w, "count": c,
                         "share": c / sums[b] if sums[b] else 0.0})  # fmt: skip
    return rows


def rising(
    store: Store, window_: str = "1d", against: str = "7d", min_count: int = 5,
    limit: int = 20, now: float | None = None, until: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Words whose rate in the last `window_` (before `until`, default now) grew
    most against the `against` before it, by log-likelihood G2 (trends.py);
    words new in the window included."""
    settings = kept(store)
    now = now_utc() if now is None else now
    try:
        now = parse_instant(until, now, settings.timezone) if until else now
        w_first = math.ceil(now - parse_duration(window_))
        r_first = math.ceil(w_first - parse_duration(against))
    except TimeError as exc:
        raise StoreError(f"--window/--against/--until: {exc}") from None
    end = math.ceil(now) if until else None
    n1, n2 = _total(store, w_first, end), _total(store, r_first, w_first)
    now_counts = store.window_counts(w_first, end, at_least=min_count)
    before = store.counts_in([t for t, _ in now_counts], r_first, w_first) if now_counts else {}
    scored = [
        (g2(a, n1, before.get(t, 0), n2), t, a, before.get(t, 0))
        for t, a in now_counts
        if rises(a, n1, before.get(t, 0), n2)
    ]
    scored.sort(key=lambda s: (-s[0], -s[2], s[1]))
    return [
        {"rank": i, "token": t, "count": a, "share": a / n1,
         "reference_count": b, "reference_share": b / n2 if n2 else 0.0, "g2": score}
        for i, (score, t, a, b) in enumerate(scored[:limit], start=1)
    ]  # fmt: skip
