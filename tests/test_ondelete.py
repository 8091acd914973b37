"""`on_delete = "forget"`: a counted file removed from a watched folder is forgotten."""

import json
import signal

import pytest

from streamcount.config import ConfigError, load_config

from .helpers import DaemonProcess, db_counts, db_ledger, make_text, reference_counts, wait_until


def forget_config(tmp_path, keep_file_counts: bool = True, after: str = "keep"):
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    entry = {"path": str(inbox), "on_delete": "forget", "after": after}
    watch = ", ".join(f"{k} = {json.dumps(v)}" for k, v in entry.items())
    config = tmp_path / "config.toml"
    config.write_text(
        f'db = "{tmp_path / "db.sqlite"}"\nworkers = 2\n'
        f"keep_file_counts = {json.dumps(keep_file_counts)}\n"
        f"[discovery]\nwatch = [{{ {watch} }}]\nsettle_seconds = 0.5\nrescan_seconds = 2.0\n"
        "[batching]\nbatch_max_wait = 0.2\n"
    )
    return config, inbox


def test_daemon_forgets_files_removed_while_running_and_while_stopped(tmp_path, rng):
    config, inbox = forget_config(tmp_path)
    db = tmp_path / "db.sqlite"
    texts = {}
    for i in range(30):
        path = inbox / f"{i:02d}.txt"
        texts[str(path)] = make_text(rng)
        path.write_text(texts[str(path)], encoding="utf-8")
    daemon = DaemonProcess(config).start()
    wait_until(lambda: sum(s == "counted" for s in db_ledger(db).values()) == 30, 60, "counted")
    assert db_counts(db) == reference_counts(texts.values())

    def removed(paths):
        for p in paths:
            (inbox / p).unlink()
            del texts[str(inbox / p)]

    removed([f"{i:02d}.txt" for i in range(10)])  # while it runs: delete events
    wait_until(lambda: db_counts(db) == reference_counts(texts.values()), 60, "forgotten")
    ledger = db_ledger(db)
    assert sum(s == "forgotten" for s in ledger.values()) == 10
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0

    removed([f"{i:02d}.txt" for i in range(10, 15)])  # while stopped: missing at start
    new = inbox / "03.txt"  # a new file at a forgotten path is counted
    texts[str(new)] = make_text(rng, paragraphs=5)
    new.write_text(texts[str(new)], encoding="utf-8")
    daemon = DaemonProcess(config).start()
    wait_until(lambda: db_counts(db) == reference_counts(texts.values()), 60, "at restart")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert db_counts(db) == reference_counts(texts.values())
    assert "Traceback" not in daemon.text()


@pytest.mark.parametrize(
    ("keep", "after", "message"),
    [
        (False, "keep", 'on_delete\' = "forget" needs keep_file_counts = true'),
        (True, "delete", "cannot go with an 'after' that empties the folder"),
    ],
)
def test_on_delete_forget_is_refused_without_kept_counts_or_with_after(
    tmp_path, keep, after, message
):
    config, _ = forget_config(tmp_path, keep_file_counts=keep, after=after)
    with pytest.raises(ConfigError, match=message):
        load_config(config)
