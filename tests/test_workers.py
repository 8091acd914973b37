"""Workers that die are replaced; their work is retried; a poison file is failed."""

import os
import signal

from .helpers import db_counts, db_ledger, make_text, reference_counts, wait_until
from .test_daemon import big_file, descendants


def spawn_workers(pid):
    def is_worker(p):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                return b"spawn_main" in f.read()
        except OSError:
            return False

    return [p for p in descendants(pid) if is_worker(p)]


def test_killed_worker_is_replaced_and_its_batch_retried(tmp_path, rng, daemon_factory):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    daemon = daemon_factory(log_level="DEBUG").start()
    path, text = big_file(inbox, rng)
    wait_until(lambda: daemon.saw("sent task"), what="the task to be sent")
    for pid in spawn_workers(daemon.pid):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: str(path) in db_ledger(db), 60, "the retried file")
    assert daemon.saw("a worker process died; starting a new one")
    later = inbox / "later.txt"
    later.write_text(more := make_text(rng))
    wait_until(lambda: str(later) in db_ledger(db), what="a file after the restart")
    assert daemon.stop() == 0
    assert db_counts(db) == reference_counts([text, more])
    assert set(db_ledger(db).values()) == {"counted"}


def test_file_that_kills_workers_is_failed_and_nothing_else_lost(tmp_path, rng, daemon_factory):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    texts = [make_text(rng) for _ in range(20)]
    for i, text in enumerate(texts):
        (inbox / f"{i}.txt").write_text(text)
    (inbox / "poison.txt").write_text(make_text(rng))
    daemon = daemon_factory(env={"STREAMCOUNT_FAILPOINTS": "worker-read=poison"}).start()
    wait_until(lambda: len(db_ledger(db)) == 21, 90, "every file, the poison one failed")
    assert db_ledger(db)[str(inbox / "poison.txt")] == "failed"
    assert daemon.stop() == 0
    assert db_counts(db) == reference_counts(texts)
    assert daemon.saw("poison.txt: failed: worker process died 3 times counting it")
