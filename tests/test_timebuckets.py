"""Bucket arithmetic and the --since forms (pure; checked against hand-made datetimes)."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from streamcount.config import ConfigError, parse_config
from streamcount.timebuckets import (
    TimeError,
    bucket_label,
    bucket_start,
    buckets_between,
    parse_duration,
    parse_instant,
)
from streamcount.trends import g2, sparkline


def at(tz: str, *fields: int) -> float:
    return datetime(*fields, tzinfo=ZoneInfo(tz)).timestamp()


@pytest.mark.parametrize(
    ("period", "start"),
    [("hour", (2026, 3, 4, 23)), ("day", (2026, 3, 4)), ("week", (2026, 3, 2)),
     ("month", (2026, 3, 1))],
)  # fmt: skip
def test_bucket_start_in_a_timezone(period, start):
    ts = at("Asia/Shanghai", 2026, 3, 4, 23, 59, 59)  # Wednesday; 15:59 UTC
    assert bucket_start(ts, period, "Asia/Shanghai") == at("Asia/Shanghai", *start)


def test_day_buckets_across_a_dst_change_are_local_midnights():
    tz = "America/New_York"
    days = buckets_between(int(at(tz, 2026, 3, 7)), int(at(tz, 2026, 3, 10)), "day", tz)
    assert [bucket_label(d, "day", tz) for d in days] == [
        "2026-03-07", "2026-03-08", "2026-03-09", "2026-03-10"
    ]
    assert days[2] - days[1] == 23 * 3600  # the short day


def test_durations_and_instants():
    assert parse_duration("7d") == 7 * 86400 and parse_duration("30m") == 1800
    assert parse_instant("12h", 100_000.0) == 100_000.0 - 12 * 3600
    assert parse_instant("2026-11-01", 0, "Asia/Shanghai") == at("Asia/Shanghai", 2026, 11, 1)
    assert parse_instant("2026-11-01T08:00+00:00", 0, "Asia/Shanghai") == at("UTC", 2026, 11, 1, 8)
    for bad in ("yesterday", "0d", "7x", "-3d"):
        with pytest.raises(TimeError, match="7d, 12h, 30m"):
            parse_instant(bad, 0)


def test_bucket_settings_errors_name_the_key(tmp_path):
    for text, key in (({"period": "fortnight"}, "buckets.period"),
                      ({"timezone": "Mars/Base"}, "buckets.timezone"),
                      ({"keep": "400x"}, "buckets.keep")):  # fmt: skip
        with pytest.raises(ConfigError, match=key):
            parse_config({"buckets": text}, tmp_path / "c.toml")
    settings = parse_config({"buckets": {"keep": "400d"}}, tmp_path / "c.toml").buckets
    assert (settings.period, settings.time, settings.timezone) == ("day", "counted", "UTC")
    assert settings.keep_seconds == 400 * 86400


def test_g2_and_sparkline():
    assert g2(10, 1000, 10, 1000) == 0.0
    assert g2(40, 1000, 0, 7000) > g2(5, 1000, 0, 7000) > 0
    assert sparkline([0, 1, 8]) == "▁▁█" and sparkline([0, 0]) == "▁▁"
