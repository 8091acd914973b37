"""Time buckets: counts per day beside the totals, checked against the reference.

The per-day reference is computed here from the same files, with the day of
each file's mtime found by plain datetime arithmetic (not timebuckets.py).
`sum(buckets) == totals` is checked on both backends, also after SIGKILLs.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from streamcount.config import TokenizerSettings
from streamcount.store import Merge, Store, StoreError, open_store
from streamcount.timebuckets import BucketSettings, bucket_start
from streamcount.windows import rising

from .helpers import DaemonProcess, make_text, reference_counts, wait_until, write_config

TZ = "Asia/Shanghai"
DAYS = 30
EMPTY_DAY = 5  # no file has its mtime on this day: trend shows zeros for it
WORDS = ["经济", "北京", "从未出现"]


def cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streamcount", *map(str, args)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def local_midnight(days_ago: int) -> datetime:
    today = datetime.now(ZoneInfo(TZ)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today.replace(tzinfo=None) - timedelta(days=days_ago)).replace(tzinfo=ZoneInfo(TZ))


def store_sums(db) -> tuple[Counter, Counter, int, int]:
    """(summed buckets, totals, summed bucket totals, total tokens) as the store has them."""
    store = open_store(db)
    try:
        buckets: Counter = Counter()
        for _, token, n in store.bucket_rows(None, 0, None):
            buckets[token] += n
        totals = Counter(dict(store.counts()))
        summed = sum(n for _, n in store.bucket_totals(0, None))
        return buckets, totals, summed, store.total_tokens()
    finally:
        store.close()


@pytest.fixture
def thirty_days(tmp_path, db):
    """Files with mtimes on 30 days (two a day, at 01:00 and 23:00 local, one day
    none), ingested with time = "mtime": (config, per-day reference, file -> day)."""
    rng = random.Random(30)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    per_day: dict[str, Counter] = {}
    day_of: dict[str, datetime] = {}
    for d in range(DAYS):
        if d == EMPTY_DAY:
            continue
        midnight = local_midnight(d)
        for hour in (1, 23):
            text = make_text(rng, paragraphs=2)
            path = inbox / f"{d:02d}-{hour}.txt"
            path.write_text(text, encoding="utf-8")
            when = (midnight + timedelta(hours=hour)).timestamp()
            os.utime(path, (when, when))
            per_day.setdefault(midnight.date().isoformat(), Counter()).update(
                reference_counts([text])
            )
            day_of[str(path)] = midnight
    config = write_config(tmp_path / "config.toml", inbox, db, time="mtime", timezone=TZ)
    done = cli("ingest", inbox, "--config", config)
    assert done.returncode == 0, done.stderr
    return config, per_day, day_of


def test_mtime_buckets_give_top_since_and_trend_of_the_reference_per_day(thirty_days, db):
    config, per_day, day_of = thirty_days
    week = Counter()
    for day, counts in per_day.items():
        if day >= local_midnight(6).date().isoformat():  # the buckets starting in the last 7d
            week += counts
    out = cli("top", 100_000, "--since", "7d", "--config", config, "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert {r["token"]: r["count"] for r in rows} == week
    assert [r["count"] for r in rows] == sorted((r["count"] for r in rows), reverse=True)
    assert abs(sum(r["share"] for r in rows) - 1.0) < 1e-9

    first = local_midnight(DAYS - 1).date().isoformat()
    out = cli("trend", *WORDS, "--since", first, "--config", config, "--json")
    assert out.returncode == 0, out.stderr
    got = {(r["bucket"], r["token"]): r["count"] for r in json.loads(out.stdout)}
    days = [local_midnight(d).date().isoformat() for d in reversed(range(DAYS))]
    assert got == {(day, w): per_day.get(day, Counter())[w] for day in days for w in WORDS}
    assert got[(local_midnight(EMPTY_DAY).date().isoformat(), "经济")] == 0

    csv_out = cli("trend", "经济", "--since", "3d", "--config", config, "--csv")
    assert csv_out.stdout.splitlines()[0] == "bucket,token,count,share"

    buckets, totals, bucket_total, total = store_sums(db)
    assert buckets == totals == sum(per_day.values(), Counter())
    assert bucket_total == total == totals.total()

    store = open_store(db)
    try:  # each ledger row names the bucket its counts went to (forget needs it)
        for row, _ in store.ledger_rows():
            assert row.bucket == int(day_of[row.path].timestamp()), row.path
    finally:
        store.close()


def test_buckets_sum_to_the_totals_after_sigkills(tmp_path, db):
    rng = random.Random(9)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    texts = {f"{i:04d}.txt": make_text(rng, paragraphs=rng.choice((1, 3, 20))) for i in range(90)}
    config = write_config(
        tmp_path / "config.toml", inbox, db, period="hour", batch_max_files=5, settle_seconds=0.3
    )

    def counted() -> int:
        return store_sums(db)[3] if _exists(db) else 0

    stop = threading.Event()

    def feed() -> None:
        for name, text in texts.items():
            if stop.is_set():
                return
            (inbox / f".{name}").write_text(text, encoding="utf-8")
            (inbox / f".{name}").rename(inbox / name)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        for _ in range(3):
            daemon = DaemonProcess(config).start()
            seen = counted()
            wait_until(lambda s=seen: counted() > s or not feeder.is_alive(), 60, "more counted")
            daemon.kill()
            buckets, totals, bucket_total, total = store_sums(db)
            assert buckets == totals and bucket_total == total
    finally:
        stop.set()
        feeder.join()
    final = DaemonProcess(config).start()
    done = {n for n in texts if (inbox / n).exists()}
    expected = reference_counts(texts[n] for n in done)
    wait_until(lambda: store_sums(db)[1] == expected, 120, "every file")
    assert final.stop() == 0
    buckets, totals, bucket_total, total = store_sums(db)
    assert buckets == totals == expected and bucket_total == total


def _exists(db) -> bool:
    try:
        open_store(db).close()
    except StoreError:
        return False
    return True


def _writer(db, **buckets: object) -> Store:
    return Store.open_writer(db, TokenizerSettings(), "h1", BucketSettings(**buckets))


def test_keep_drops_old_buckets_and_leaves_the_totals(db):
    now = datetime.now(ZoneInfo("UTC")).timestamp()
    old, recent = bucket_start(now - 20 * 86400, "day"), bucket_start(now, "day")
    store = _writer(db, time="mtime")
    merge = Merge()
    merge.add({"旧": 3, "的": 2}, [], old)
    merge.add({"新": 1, "的": 1}, [], recent)
    store.merge(merge)
    store.close()
    store = _writer(db, time="mtime", keep_seconds=10 * 86400)
    store.merge(Merge())  # keep is applied by each merge
    store.close()
    reader = open_store(db)
    try:
        assert list(reader.bucket_rows(None, 0, None)) == [(recent, "新", 1), (recent, "的", 1)]
        assert reader.bucket_totals(0, None) == [(recent, 2)]
        assert dict(reader.counts()) == {"旧": 3, "的": 3, "新": 1}
        assert reader.total_tokens() == 7
    finally:
        reader.close()


def test_rising_finds_a_planted_word_and_ignores_those_below_min_count(db):
    now = bucket_start(datetime.now(ZoneInfo("UTC")).timestamp(), "day") + 12 * 3600
    store = _writer(db, time="mtime")
    base = {"的": 100, "经济": 20, "发展": 10}
    merge = Merge()
    for d in range(1, 8):
        merge.add(base, [], bucket_start(now - d * 86400, "day"))
    merge.add({**base, "发展": 30, "火箭": 40, "稀有": 3}, [], bucket_start(now, "day"))
    store.merge(merge)
    try:
        rows = rising(store, "1d", "7d", min_count=5, limit=10, now=now)
        assert rows[0]["token"] == "火箭" and rows[0]["reference_count"] == 0
        assert rows[0]["count"] == 40
        assert [r["token"] for r in rows] == ["火箭", "发展"]  # 的 and 经济 did not rise
        assert "稀有" in [r["token"] for r in rising(store, "1d", "7d", 1, 10, now)]
    finally:
        store.close()


@pytest.mark.parametrize(("setting", "value"), [("period", "week"), ("time", "mtime")])
def test_a_change_of_period_or_time_is_refused_naming_it(db, setting, value):
    store = _writer(db)
    merge = Merge()
    merge.add({"的": 1}, [])
    store.merge(merge)
    store.close()
    with pytest.raises(StoreError, match=rf"buckets\.{setting}: .* in the database, '{value}' now"):
        _writer(db, **{setting: value})
    _writer(db).close()  # the settings it was made with still open it


def test_a_bad_since_is_one_line_naming_the_accepted_forms(thirty_days):
    config = thirty_days[0]
    for args in (("top", "--since", "yesterday"), ("trend", "的", "--since", "7x"),
                 ("count", "的", "--until", "2026-13-45")):  # fmt: skip
        out = cli(*args, "--config", config)
        assert out.returncode == 2
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert "7d, 12h, 30m" in out.stderr or "e.g. 7d" in out.stderr, out.stderr


def test_copy_takes_the_buckets_and_their_settings(tmp_path, db):
    from streamcount.store import copy_store

    source = tmp_path / "source.sqlite"
    now = datetime.now(ZoneInfo("UTC")).timestamp()
    store = Store.open_writer(source, TokenizerSettings(), "", BucketSettings(time="mtime"))
    merge = Merge()
    merge.add({"旧": 3, "的": 2}, [], bucket_start(now - 3 * 86400, "day"))
    merge.add({"新": 1, "的": 1}, [], bucket_start(now, "day"))
    store.merge(merge)
    store.close()
    copy_store(source, db, "h1", add=False)
    buckets, totals, bucket_total, total = store_sums(db)
    assert buckets == totals == Counter({"旧": 3, "的": 3, "新": 1}) and bucket_total == total == 7
    with pytest.raises(StoreError, match=r"buckets\.time"):
        _writer(db)  # the copy was filed by mtime


def test_forget_takes_files_out_of_their_buckets_too(thirty_days, db):
    """`forget` of the files of ten days: each day's bucket is the reference of the
    files left, the emptied days hold nothing, and the buckets still sum to the totals."""
    config, _, day_of = thirty_days
    gone = sorted(p for p in day_of if Path(p).name < "10")
    done = cli("forget", *gone, "--config", config)
    assert done.returncode == 0, done.stderr
    left: dict[str, Counter] = {}
    for path, midnight in day_of.items():
        if path not in gone:
            text = Path(path).read_text(encoding="utf-8")
            left.setdefault(midnight.date().isoformat(), Counter()).update(reference_counts([text]))
    first = local_midnight(DAYS - 1).date().isoformat()
    out = cli("trend", *WORDS, "--since", first, "--config", config, "--json")
    assert out.returncode == 0, out.stderr
    got = {(r["bucket"], r["token"]): r["count"] for r in json.loads(out.stdout)}
    days = [local_midnight(d).date().isoformat() for d in reversed(range(DAYS))]
    assert got == {(day, w): left.get(day, Counter())[w] for day in days for w in WORDS}
    buckets, totals, bucket_total, total = store_sums(db)
    assert buckets == totals == sum(left.values(), Counter())
    assert bucket_total == total == totals.total()
