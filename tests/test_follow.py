"""Followed growing files (`follow = true`): every line written counted exactly once,
across SIGKILLs, rename and copytruncate rotations, idle partial lines and wide encodings.

The oracle is the reference count of every line that reached the files.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import threading
from collections import Counter
from pathlib import Path

import pytest

from bench.follow import total_tokens
from streamcount.config import TokenizerSettings
from streamcount.follow import codec_of, line_end
from streamcount.store import Advance, Merge, MergeRefused, Store

from .helpers import SENTENCES, DaemonProcess, db_counts, reference_counts, wait_until, write_config


def followed_config(
    tmp_path: Path, entries: list[tuple[Path, str]], idle: float = 300.0
) -> Path:
    """A config whose watch entries are followed folders, each with its encoding."""
    db = tmp_path / "db.sqlite"
    config = write_config(
        tmp_path / "config.toml", [p for p, _ in entries], db,
        include=["*.log"], rescan_seconds=30.0,
    )  # fmt: skip
    watch = ", ".join(f'{{ path = "{p}", follow = true, encoding = "{e}" }}' for p, e in entries)
    lines = config.read_text().splitlines()
    lines = [
        f"watch = [{watch}]\nfollow_idle_seconds = {idle!r}" if line.startswith("watch = ")
        else line
        for line in lines
    ]  # fmt: skip
    config.write_text("\n".join(lines) + "\n")
    return config


def offset_of(db: Path, path: Path) -> int | None:
    """The committed offset of the file now at `path` (by its inode), if any."""
    st = os.stat(path)
    try:
        with sqlite3.connect(db) as conn:
            row = conn.execute(
                "SELECT offset FROM follows WHERE dev = ? AND inode = ?", (st.st_dev, st.st_ino)
            ).fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else row[0]


@pytest.fixture
def daemons():
    started: list[DaemonProcess] = []
    yield started
    for d in started:
        if d.proc is not None and d.proc.poll() is None:
            d.kill()


# -- pure ------------------------------------------------------------------


def test_line_end_is_aligned_to_the_newline_of_the_encoding():
    assert line_end(b"ab\ncd", b"\n") == 3
    assert line_end(b"abcd", b"\n") == 0
    # U+0A30 U+3000 in UTF-16-LE is 30 0A 00 30: a "\n\0" at an odd offset, not a newline
    tricky = "\u0a30\u3000".encode("utf-16-le")
    assert line_end(tricky, b"\n\x00") == 0
    assert line_end("甲\n".encode("utf-16-le") + tricky, b"\n\x00") == 4


def test_codec_of_names_the_byte_order_and_skips_the_bom():
    assert codec_of(b"\xff\xfea\x00", "auto") == ("utf-16-le", 2)
    assert codec_of(b"\xfe\xff\x00a", "utf-16") == ("utf-16-be", 2)
    assert codec_of(b"a\x00b\x00", "utf-16") == ("utf-16-le", 0)
    assert codec_of(b"\xef\xbb\xbfa", "auto") == ("utf-8", 3)
    assert codec_of(b"abcd", "gb18030") == ("gb18030", 0)


# -- the store: a range is merged at most once, in order ----------------------


def test_a_range_merges_only_where_the_ledger_offset_stands(db):
    store = Store.open_writer(db, TokenizerSettings(), "h1")
    try:
        first = Advance("/x/a.log", 1, 7, (-1, 0), 0, 10, 10, "h")
        store.merge(Merge({"甲": 1}, [], advances=[first]))
        again = Merge({"甲": 1}, [], advances=[first])
        with pytest.raises(MergeRefused, match="not where the range"):
            store.merge(again)  # the same range twice
        skip = Advance("/x/a.log", 1, 7, (0, 20), 0, 30, 10, "h")
        with pytest.raises(MergeRefused):
            store.merge(Merge({"乙": 1}, [], advances=[skip]))  # not where the ledger stands
        store.merge(Merge({"乙": 1}, [], advances=[first._replace(before=(0, 10), offset=25)]))
        assert dict(store.counts()) == {"甲": 1, "乙": 1}
        assert [(a.before, a.offset) for a in store.follows()] == [((0, 25), 25)]
    finally:
        store.close()


# -- the daemon ------------------------------------------------------------


def start(daemons: list[DaemonProcess], config: Path) -> DaemonProcess:
    d = DaemonProcess(config).start()
    daemons.append(d)
    return d


def test_kills_and_rotations_lose_no_line_and_count_none_twice(tmp_path, daemons):
    """20 files appended to while the daemon is SIGKILLed and restarted, with rename
    and copytruncate rotations: the totals are the reference of every line written.

    copytruncate loses, by nature, lines written between the copy and the
    truncation (a writer's race) and lines not yet read when the file is
    truncated (the copy is not followed: it would count them twice). This
    writer rotates between its own writes, after the daemon's committed
    offset has reached the file's end: what it wrote is what the files held.
    """
    logs = tmp_path / "logs"
    logs.mkdir()
    config = followed_config(tmp_path, [(logs, "utf-8")], idle=3600.0)
    db = tmp_path / "db.sqlite"
    rng = random.Random(11)
    written: list[str] = []
    stop = threading.Event()
    rotations = Counter()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            i = rng.randrange(20)
            path = logs / f"f{i:02d}.log"
            line = "".join(rng.choice(SENTENCES) for _ in range(rng.randint(1, 3))) + "\n"
            with open(path, "ab") as f:
                f.write(line.encode())
            written.append(line)
            n += 1
            if n % 60 == 0:
                rotated = logs / f"f{i:02d}.r{n}.log"  # still included: still followed
                os.rename(path, rotated)
                extra = "北京大学和清华大学。\n"
                with open(rotated, "ab") as f:  # still appended to after the rename
                    f.write(extra.encode())
                written.append(extra)
                rotations["rename"] += 1
            elif n % 60 == 30:
                size = path.stat().st_size
                if wait_for(lambda p=path, s=size: offset_of(db, p) == s, stop):
                    shutil.copy(path, logs / f"f{i:02d}.log.{n}")  # not *.log: not followed
                    with open(path, "r+b") as f:
                        f.truncate(0)
                    rotations["copytruncate"] += 1
            stop.wait(0.004)

    thread = threading.Thread(target=writer)
    daemon = start(daemons, config)
    thread.start()
    try:
        for _ in range(6):
            seen = total_tokens(db)
            wait_until(lambda s=seen: total_tokens(db) > s, 60, "counting progress")
            daemon.kill()
            daemon = start(daemons, config)
    finally:
        stop.set()
        thread.join()
    expected = reference_counts(written)
    wait_until(lambda: db_counts(db) == expected, 60, "every line written counted")
    daemon.stop()
    assert db_counts(db) == expected
    assert rotations["rename"] >= 2 and rotations["copytruncate"] >= 1, rotations


def wait_for(condition, stop: threading.Event, timeout: float = 30.0) -> bool:
    """The writer's own wait (a thread cannot fail the test): True once `condition`."""
    for _ in range(int(timeout / 0.02)):
        if condition():
            return True
        if stop.wait(0.02):
            return False
    return False


def test_a_last_line_without_newline_is_counted_once_when_idle(tmp_path, daemons):
    logs = tmp_path / "logs"
    logs.mkdir()
    config = followed_config(tmp_path, [(logs, "utf-8")], idle=1.0)
    db = tmp_path / "db.sqlite"
    path = logs / "a.log"
    path.write_bytes("今天天气很好\n我们去北京".encode())
    daemon = start(daemons, config)
    lines = ["今天天气很好\n", "我们去北京"]
    wait_until(lambda: db_counts(db) == reference_counts(lines), 30, "the idle last line")
    daemon.kill()  # the partial line is committed: not counted again after a restart
    daemon = start(daemons, config)
    with open(path, "ab") as f:
        f.write("大学\n上海\n".encode())
    lines += ["大学\n", "上海\n"]  # the rest of that line is counted as the next line
    wait_until(lambda: db_counts(db) == reference_counts(lines), 30, "the lines after it")
    daemon.stop()
    assert db_counts(db) == reference_counts(lines)


def test_gb18030_and_utf16_followed_files_are_exact(tmp_path, daemons):
    """Lines written in pieces that split characters (and, in UTF-16, the 2-byte
    newline): offsets only ever land on line starts."""
    gb, u16 = tmp_path / "gb", tmp_path / "u16"
    gb.mkdir()
    u16.mkdir()
    config = followed_config(tmp_path, [(gb, "gb18030"), (u16, "utf-16")])
    db = tmp_path / "db.sqlite"
    start(daemons, config)
    rng = random.Random(18030)
    lines: list[str] = []
    (u16 / "w.log").write_bytes(b"\xff\xfe")  # a BOM, then little-endian lines
    for k in range(30):
        line = rng.choice(SENTENCES) + ("\u0a30\u3000" if k % 5 == 0 else "") + "\n"
        for folder, codec in ((gb, "gb18030"), (u16, "utf-16-le")):
            data = line.encode(codec)
            cut = 3  # inside a character, and (UTF-16) an odd offset
            with open(folder / "w.log", "ab") as f:
                f.write(data[:cut])
                f.flush()
                os.fsync(f.fileno())
                f.write(data[cut:])
            lines.append(line)
        if k % 10 == 9:
            expected = reference_counts(lines)
            wait_until(lambda e=expected: db_counts(db) == e, 30, f"{len(lines)} lines")
    assert db_counts(db) == reference_counts(lines)


def test_follow_in_the_config(tmp_path):
    from streamcount.config import ConfigError, parse_config

    raw = {"discovery": {"watch": [{"path": "logs", "follow": True}], "follow_idle_seconds": 5}}
    config = parse_config(raw, tmp_path / "c.toml")
    assert config.watch[0].follow and config.follow_idle_seconds == 5.0
    assert not parse_config({"discovery": {"watch": ["x"]}}, tmp_path / "c.toml").watch[0].follow
    raw["discovery"]["watch"][0]["follow"] = "yes"
    with pytest.raises(ConfigError, match=r"'discovery\.watch\.follow' must be true or false"):
        parse_config(raw, tmp_path / "c.toml")
