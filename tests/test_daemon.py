"""The daemon as a real subprocess on a real folder, with real signals."""

import os
import signal
import sqlite3
import threading
import time

from .helpers import db_counts, db_ledger, make_text, reference_counts, wait_until


def all_counted(db, paths):
    return lambda: set(map(str, paths)) <= set(db_ledger(db))


def test_counts_files_however_they_arrive(tmp_path, rng, daemon_factory):
    daemon = daemon_factory().start()
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    texts = {}

    def put(path, text):
        """Remember what `path` must count as; return the text to write."""
        texts[path] = text
        return text

    # written in place
    (inbox / "plain.txt").write_text(put(inbox / "plain.txt", make_text(rng)))
    # renamed in from a temporary name inside the tree, and moved in from outside it
    part = inbox / "upload.txt.part"
    part.write_text(put(inbox / "upload.txt", make_text(rng)))
    part.rename(inbox / "upload.txt")
    outside = tmp_path / "outside.txt"
    outside.write_text(put(inbox / "moved.txt", make_text(rng)))
    outside.rename(inbox / "moved.txt")
    # created in new, nested folders after start, written at once
    deep = inbox / "2026" / "11" / "26"
    deep.mkdir(parents=True)
    for i in range(5):
        (deep / f"{i}.txt").write_text(put(deep / f"{i}.txt", make_text(rng)))
    wait_until(all_counted(db, texts), what="the first files")

    # written slowly over ~3 s, flushed as it goes: never counted half-written
    slow = inbox / "slow.txt"
    lines = put(slow, make_text(rng, paragraphs=12)).splitlines(keepends=True)
    with open(slow, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line)
            f.flush()
            time.sleep(0.25)  # the writer's pace, not a wait for the daemon
            assert str(slow) not in db_ledger(db)
    wait_until(all_counted(db, texts), what="the slow file")

    (inbox / "ignored.tmp").write_text(make_text(rng))
    (inbox / "last.txt").write_text(put(inbox / "last.txt", make_text(rng)))
    wait_until(all_counted(db, texts), what="the last file")
    assert daemon.stop() == 0
    assert set(db_ledger(db)) == set(map(str, texts))
    assert db_counts(db) == reference_counts(texts.values())


def test_files_present_before_start_are_counted(tmp_path, rng, daemon_factory):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    texts = [make_text(rng) for _ in range(30)]
    for i, text in enumerate(texts):
        (inbox / f"{i}.txt").write_text(text)
        os.utime(inbox / f"{i}.txt", (time.time() - 60,) * 2)
    daemon = daemon_factory().start()
    wait_until(lambda: len(db_ledger(db)) == 30, what="the backlog")
    assert daemon.stop() == 0
    assert db_counts(db) == reference_counts(texts)


def writer_thread(inbox, texts, stop):
    """Write the files one by one, as a feed would, until done or stopped."""

    def run():
        for i, text in enumerate(texts):
            if stop.is_set():
                return
            tmp = inbox / f".{i}.txt"
            tmp.write_text(text)
            tmp.rename(inbox / f"{i}.txt")
            if i % 10 == 0:
                time.sleep(0.02)  # the feed's pace

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_sigkill_mid_stream_then_restart_is_exact(tmp_path, rng, daemon_factory):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    texts = [make_text(rng, paragraphs=rng.randint(1, 8)) for _ in range(400)]
    daemon = daemon_factory(batch_max_files=20).start()
    stop = threading.Event()
    feed = writer_thread(inbox, texts, stop)
    try:
        wait_until(lambda: len(db_ledger(db)) >= 40, what="some files counted")
        daemon.kill()
        assert len(db_ledger(db)) < len(texts), "the kill came too late to test anything"
    finally:
        feed.join()
    restarted = daemon_factory(batch_max_files=20).start()
    wait_until(lambda: len(db_ledger(db)) == len(texts), 60, "every file after restart")
    assert restarted.stop() == 0
    assert db_counts(db) == reference_counts(texts)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def big_file(inbox, rng):
    text = make_text(rng, paragraphs=3000)  # ~1 MB: about a second of jieba
    path = inbox / "big.txt"
    path.write_text(text)
    return path, text


def sigterm_mid_task(tmp_path, rng, daemon_factory):
    """A daemon sent SIGTERM while it counts a big file; the daemon, the file, its text."""
    daemon = daemon_factory(log_level="DEBUG").start()
    path, text = big_file(tmp_path / "inbox", rng)
    wait_until(lambda: daemon.saw("sent task"), what="the task to be sent")
    daemon.signal(signal.SIGTERM)
    return daemon, path, text


def test_sigterm_commits_the_batches_in_flight(tmp_path, rng, daemon_factory):
    db = tmp_path / "db.sqlite"
    daemon, path, text = sigterm_mid_task(tmp_path, rng, daemon_factory)
    assert daemon.wait() == 0
    assert daemon.saw("finishing 1 tasks in flight")
    assert db_ledger(db) == {str(path): "counted"}
    assert db_counts(db) == reference_counts([text])


def test_second_signal_exits_at_once_and_loses_nothing(tmp_path, rng, daemon_factory):
    db = tmp_path / "db.sqlite"
    daemon, path, text = sigterm_mid_task(tmp_path, rng, daemon_factory)
    wait_until(lambda: daemon.saw("finishing"), what="the warm stop")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 128 + signal.SIGTERM
    restarted = daemon_factory().start()
    wait_until(lambda: db_ledger(db) == {str(path): "counted"}, what="the recount")
    assert restarted.stop() == 0
    assert db_counts(db) == reference_counts([text])


def descendants(pid):
    """Every live process below `pid`, read from /proc."""
    children = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def test_workers_do_not_outlive_a_killed_daemon(daemon_factory):
    daemon = daemon_factory(workers=2).start()
    pids = wait_until(lambda: (d := descendants(daemon.pid)) and len(d) >= 3 and d, what="workers")
    daemon.kill()
    wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids), what="orphans to exit")


def test_second_daemon_on_the_same_database_is_refused(daemon_factory):
    first = daemon_factory().start()
    second = daemon_factory().start(wait_ready=False)
    assert second.wait() == 2
    assert "already being written by another streamcount process" in second.text()
    assert f"pid {first.pid}" in second.text()
    assert first.stop() == 0
