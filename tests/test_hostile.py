"""Hostile and unusual paths: each has a defined outcome, and nothing else is lost."""

import os
import pwd
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from streamcount.config import Config
from streamcount.pipeline import open_pipeline
from streamcount.work import FileRef

from .helpers import (
    DaemonProcess,
    db_counts,
    db_ledger,
    make_text,
    reference_counts,
    wait_until,
    write_config,
)


def test_fifos_symlinks_and_loops_are_passed_over(tmp_path, rng, daemon_factory):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    outside = tmp_path / "outside.txt"
    outside.write_text(make_text(rng))
    os.mkfifo(inbox / "pipe.txt")  # present at start: the catch-up scan must not hang on it
    (inbox / "link.txt").symlink_to(outside)  # points outside the watched root
    (inbox / "loop").symlink_to(inbox, target_is_directory=True)  # a loop, if followed
    (inbox / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    daemon = daemon_factory(rescan_seconds=0.5).start()
    os.mkfifo(inbox / "pipe2.txt")  # and arriving while it runs
    (inbox / "link2.txt").symlink_to(outside)
    texts = []
    for i in range(3):  # the daemon keeps counting, rescans included
        texts.append(make_text(rng))
        (inbox / f"good{i}.txt").write_text(texts[-1])
        wait_until(lambda i=i: str(inbox / f"good{i}.txt") in db_ledger(db), what=f"good{i}")
    assert set(db_ledger(db)) == {str(inbox / f"good{i}.txt") for i in range(3)}
    assert daemon.stop() == 0
    assert db_counts(db) == reference_counts(texts)


def test_file_deleted_before_it_is_read_is_not_in_the_ledger(tmp_path, rng):
    config = Config(db=tmp_path / "db.sqlite", workers=1)
    kept = tmp_path / "kept.txt"
    kept.write_text(text := make_text(rng))
    with open_pipeline(config) as pipeline:
        pipeline.add(FileRef(str(tmp_path / "gone.txt"), 10, 0, 0), 0.0)
        st = kept.stat()
        pipeline.add(FileRef(str(kept), st.st_size, st.st_mtime_ns, st.st_ino), 0.0)
        vanished, rows = [], []
        while pipeline.busy:
            progress = pipeline.drain()
            vanished += progress.vanished
            rows += progress.rows
    assert vanished == [str(tmp_path / "gone.txt")]
    assert [r.path for r in rows] == [str(kept)]
    assert db_counts(config.db) == reference_counts([text])


def test_appended_after_counting_is_not_counted_again(tmp_path, rng, daemon_factory):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    daemon = daemon_factory(rescan_seconds=0.5).start()
    first = make_text(rng)
    (inbox / "log.txt").write_text(first)
    wait_until(lambda: str(inbox / "log.txt") in db_ledger(db), what="log.txt")
    with open(inbox / "log.txt", "a") as f:
        f.write(make_text(rng))
    later = make_text(rng)
    (inbox / "later.txt").write_text(later)
    wait_until(lambda: str(inbox / "later.txt") in db_ledger(db), what="later.txt")
    assert daemon.stop() == 0
    assert db_counts(db) == reference_counts([first, later])  # the appended part is not counted


def _nobody_can_run_python() -> str | None:
    """Why a daemon cannot be run as `nobody` here, or None if it can."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return "there is no user nobody"
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import streamcount"], user="nobody", capture_output=True
        )
    except OSError as exc:
        return f"user nobody cannot run {sys.executable}: {exc.strerror}"
    if probe.returncode != 0:
        return f"user nobody cannot run {sys.executable}: {probe.stderr.decode()[-200:]}"
    return None


def test_unreadable_file_is_failed_with_its_reason_and_the_rest_counted(rng):
    """As root every file is readable, so the daemon runs as `nobody` (or skips, saying why)."""
    why = _nobody_can_run_python()
    if why:
        pytest.skip(f"running as root, and cannot drop privileges for the daemon: {why}")
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        root = Path(tmp)
        root.chmod(0o777)
        inbox = root / "inbox"
        inbox.mkdir(mode=0o777)
        inbox.chmod(0o777)
        db = root / "db.sqlite"
        (inbox / "secret.txt").write_text(make_text(rng))
        (inbox / "secret.txt").chmod(0o000)
        text = make_text(rng)
        (inbox / "open.txt").write_text(text)
        (inbox / "open.txt").chmod(0o644)
        config = write_config(root / "config.toml", inbox, db)
        config.chmod(0o644)
        daemon = DaemonProcess(config, user="nobody" if os.geteuid() == 0 else None).start()
        try:
            wait_until(lambda: len(db_ledger(db)) == 2, what="both files")
        finally:
            assert daemon.stop() == 0
        ledger = db_ledger(db)
        assert ledger[str(inbox / "secret.txt")] == "failed"
        assert db_counts(db) == reference_counts([text])


def test_a_dead_file_watcher_is_restarted_and_nothing_is_missed(tmp_path, rng, daemon_factory):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    env = {"STREAMCOUNT_FAILPOINTS": "watcher-event=poison"}
    daemon = daemon_factory(env=env).start()
    texts = {name: make_text(rng) for name in ("poison.txt", "after.txt")}
    (inbox / "poison.txt").write_text(texts["poison.txt"])  # its event kills the observer
    wait_until(lambda: daemon.saw("the file watcher stopped; restarting"), what="the restart")
    (inbox / "after.txt").write_text(texts["after.txt"])
    wait_until(lambda: len(db_ledger(db)) == 2, what="both files")
    assert daemon.stop() == 0
    assert db_counts(db) == reference_counts(texts.values())


def test_a_counted_file_renamed_in_the_tree_is_not_counted_again(tmp_path, rng, daemon_factory):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    daemon = daemon_factory().start()
    text = make_text(rng)
    (inbox / "a.txt").write_text(text)
    wait_until(lambda: str(inbox / "a.txt") in db_ledger(db), what="a.txt")
    (inbox / "sub").mkdir()
    (inbox / "a.txt").rename(inbox / "sub" / "b.txt")  # seen by its event
    wait_until(lambda: str(inbox / "sub" / "b.txt") in db_ledger(db), what="b.txt")
    copy = make_text(rng)
    (inbox / "copy.txt").write_text(copy)  # a new file with other content: counted
    wait_until(lambda: str(inbox / "copy.txt") in db_ledger(db), what="copy.txt")
    assert daemon.stop() == 0
    (inbox / "sub" / "b.txt").rename(inbox / "c.txt")  # while stopped: found by the scan
    again = daemon_factory().start()
    wait_until(lambda: str(inbox / "c.txt") in db_ledger(db), what="c.txt")
    assert again.stop() == 0
    ledger = db_ledger(db)
    assert ledger[str(inbox / "sub" / "b.txt")] == ledger[str(inbox / "c.txt")] == "moved"
    assert db_counts(db) == reference_counts([text, copy])


def test_without_inotify_the_daemon_polls_and_still_counts(tmp_path, rng, daemon_factory):
    """inotify refused at start (its watch limit reached, simulated): poll instead."""
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    daemon = daemon_factory(env={"STREAMCOUNT_FAILPOINTS": "watcher-start"}).start()
    assert daemon.saw("polling the folders instead")
    texts = [make_text(rng) for _ in range(3)]
    (inbox / "new").mkdir()
    for i, text in enumerate(texts):
        (inbox / "new" / f"{i}.txt").write_text(text)
    wait_until(lambda: len(db_ledger(db)) == 3, what="the files, by polling")
    assert daemon.stop() == 0
    assert db_counts(db) == reference_counts(texts)


def test_file_truncated_after_discovery_counts_what_was_read(tmp_path, rng):
    """The worker counts the bytes it reads; the ledger records how many."""
    config = Config(db=tmp_path / "db.sqlite", workers=1)
    text = make_text(rng, paragraphs=20)
    path = tmp_path / "shrinks.txt"
    path.write_text(text)
    st = path.stat()
    ref = FileRef(str(path), st.st_size, st.st_mtime_ns, st.st_ino)  # discovered whole...
    kept = text[: len(text) // 2]
    path.write_text(kept)  # ... then truncated before a worker reads it
    with open_pipeline(config) as pipeline:
        pipeline.add(ref, 0.0)
        while pipeline.busy:
            pipeline.drain()
    assert db_counts(config.db) == reference_counts([kept])
    with sqlite3.connect(config.db) as conn:
        assert conn.execute("SELECT size FROM files").fetchone() == (len(kept.encode()),)


def test_a_hundred_thousand_files_in_one_folder(tmp_path, daemon_factory):
    """All present at start, in one directory: scanned, watched and counted once."""
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    old = time.time() - 3600
    for i in range(100_000):
        path = inbox / f"{i:06d}.txt"
        path.write_text(f"第{i % 97}号文件\n")
        os.utime(path, (old, old))
    daemon = daemon_factory(batch_max_files=1000).start()
    (inbox / "late.txt").write_text("最后一个文件\n")
    wait_until(lambda: len(db_ledger(db)) == 100_001, 300, "100,001 files")
    assert daemon.stop() == 0
    expected: Counter[str] = Counter()  # file i has text i % 97: count each text once, times
    for i in range(97):
        copies = len(range(i, 100_000, 97))
        for token, n in reference_counts([f"第{i}号文件\n"]).items():
            expected[token] += n * copies
    expected.update(reference_counts(["最后一个文件\n"]))
    assert db_counts(db) == expected


def _deep_folder(root: Path, past: int = 4600) -> tuple[str, int]:
    """Folders below `root` until the path passes `past` bytes (PATH_MAX is 4,096),
    made relative to descriptors; the path and a descriptor of the deepest."""
    fd, path = os.open(root, os.O_RDONLY | os.O_DIRECTORY), str(root)
    while len(path) < past:
        name = "d" * 200
        os.mkdir(name, dir_fd=fd)
        inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd, path = inner, f"{path}/{name}"
    return path, fd


def _write_at(folder: int, name: str, text: str) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=folder)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def test_files_deeper_than_path_max_are_counted(tmp_path, rng, daemon_factory):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    deep, folder = _deep_folder(inbox)
    try:
        texts = [make_text(rng), make_text(rng)]
        _write_at(folder, "at-start.txt", texts[0])
        daemon = daemon_factory(rescan_seconds=0.5).start()
        _write_at(folder, "arriving.txt", texts[1])  # no event reaches that deep: a rescan finds it
        wanted = {f"{deep}/at-start.txt", f"{deep}/arriving.txt"}
        wait_until(lambda: set(db_ledger(db)) == wanted, what="both deep files")
        assert set(db_ledger(db).values()) == {"counted"}
        (inbox / "shallow.txt").write_text(shallow := make_text(rng))  # the watcher still runs
        wait_until(lambda: str(inbox / "shallow.txt") in db_ledger(db), what="a shallow file")
        assert daemon.stop() == 0
        assert db_counts(db) == reference_counts([*texts, shallow])
    finally:
        os.close(folder)
