"""Time-bucket arithmetic, pure: the start of a timestamp's bucket, and the
durations and instants people type (`7d`, `12h`, `30m`, an ISO date).

A bucket is named by the Unix time (seconds) of its start, computed in the
configured IANA timezone: a "day" bucket starts at local midnight, a "week"
one at Monday's, a "month" one at the 1st's. Integers sort and compare as
time does, whatever the timezone's offsets and DST, so a window of buckets
is one range scan of the table's primary key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .work import FileRef

PERIODS = ("hour", "day", "week", "month", "none")
TIMES = ("counted", "mtime")
SINCE_FORMS = "7d, 12h, 30m, 2w, or an ISO date or date-time (2026-11-01, 2026-11-01T08:00)"
_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class TimeError(ValueError):
    """A duration, instant or bucket setting that cannot be understood; one line."""


@dataclass(frozen=True)
class BucketSettings:
    """`[buckets]`: how counts are filed by time beside the totals."""

    period: str = "day"  # hour, day, week, month, or none (no buckets kept)
    time: str = "counted"  # when the file was counted, or its mtime
    timezone: str = "UTC"  # an IANA name: where a day starts
    keep_seconds: int | None = None  # buckets older than this are dropped; None: kept

    @property
    def enabled(self) -> bool:
        return self.period != "none"

    def fingerprint(self) -> dict[str, str]:
        """What a database's buckets were made with: changing any splits them differently."""
        return {"period": self.period, "time": self.time, "timezone": self.timezone}


def zone(name: str) -> ZoneInfo:
    """The IANA timezone `name`, or TimeError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimeError(f"unknown timezone {name!r} (an IANA name such as Asia/Shanghai)") from exc


def parse_duration(text: str) -> int:
    """Seconds in `7d`, `12h`, `30m` or `2w`; TimeError otherwise."""
    match = _DURATION.match(text)
    if not match or int(match[1]) == 0:
        raise TimeError(f"{text!r} is not a duration (give e.g. 7d, 12h, 30m, 2w)")
    return int(match[1]) * _UNIT_SECONDS[match[2]]


def parse_instant(text: str, now: float, tz: str = "UTC") -> float:
    """`--since`/`--until`: a duration before `now`, or an ISO date/date-time
    (in `tz` unless it gives its own offset); Unix seconds. TimeError names the forms."""
    if _DURATION.match(text):
        return now - parse_duration(text)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TimeError(f"cannot read {text!r} as a time: give {SINCE_FORMS}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone(tz))
    return when.timestamp()


def bucket_start(ts: float, period: str, tz: str = "UTC") -> int:
    """The Unix time of the start of the `period` bucket holding `ts`, in `tz`."""
    local = datetime.fromtimestamp(ts, zone(tz))
    if period == "hour":  # local: a zone half an hour off UTC has its own hours
        return int(local.replace(minute=0, second=0, microsecond=0).timestamp())
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    if period == "week":
        day -= timedelta(days=day.weekday())
    elif period == "month":
        day = day.replace(day=1)
    elif period != "day":
        raise TimeError(f"period must be one of {', '.join(PERIODS[:-1])} (got {period!r})")
    # the naive wall-clock midnight, placed in the zone again (DST may move it)
    return int(day.replace(tzinfo=None).replace(tzinfo=zone(tz)).timestamp())


def next_bucket(start: int, period: str, tz: str = "UTC") -> int:
    """The start of the bucket after the one starting at `start`."""
    local = datetime.fromtimestamp(start, zone(tz)).replace(tzinfo=None)
    if period == "hour":
        return start + 3600
    if period == "day":
        following = local + timedelta(days=1)
    elif period == "week":
        following = local + timedelta(days=7)
    else:
        following = (local.replace(day=28) + timedelta(days=4)).replace(day=1)
    return bucket_start(following.replace(tzinfo=zone(tz)).timestamp() + 1, period, tz)


def buckets_between(first: int, last: int, period: str, tz: str = "UTC") -> list[int]:
    """Every bucket start from `first` to `last` inclusive (both bucket starts)."""
    out = []
    b = first
    while b <= last:
        out.append(b)
        b = next_bucket(b, period, tz)
    return out


def bucket_label(start: int, period: str, tz: str = "UTC") -> str:
    """A bucket for people and programs: its start as an ISO date, or date-time for hours."""
    local = datetime.fromtimestamp(start, zone(tz))
    if period == "hour":
        return local.isoformat(timespec="minutes")
    return local.date().isoformat()


def now_utc() -> float:
    return datetime.now(UTC).timestamp()


def mtime_bucket(settings: BucketSettings) -> Callable[[FileRef], int] | None:
    """With time = "mtime", a file's bucket from its modification time; else None
    (the counts go to the bucket of the merge that commits them)."""
    if not settings.enabled or settings.time != "mtime":
        return None
    period, tz = settings.period, settings.timezone

    def bucket_of(ref: FileRef) -> int:
        return bucket_start(ref.mtime_ns / 1e9, period, tz)

    return bucket_of
