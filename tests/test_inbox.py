"""`after = "delete" | "move:DIR"`: an inbox that empties itself, only after the commit."""

import json
from collections import Counter

import pytest

from streamcount.config import ConfigError, load_config
from streamcount.store import open_store

from .helpers import (
    DaemonProcess,
    db_counts,
    db_ledger,
    make_text,
    reference_counts,
    wait_until,
    write_config,
)


def inbox_config(tmp_path, after: str, db=None):
    """A daemon config whose one watch entry is tmp_path/inbox with `after`, writing
    to `db` (default: tmp_path/db.sqlite)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    config = write_config(tmp_path / "config.toml", inbox, db or tmp_path / "db.sqlite")
    entry = f"watch = [{{ path = {json.dumps(str(inbox))}, after = {json.dumps(after)} }}]"
    lines = [entry if line.startswith("watch = ") else line for line in
             config.read_text().splitlines()]  # fmt: skip
    config.write_text("\n".join(lines) + "\n")
    return config, inbox


def drop(inbox, rng, n: int) -> dict[str, str]:
    texts = {}
    for i in range(n):
        sub = inbox / f"d{i % 2}"
        sub.mkdir(exist_ok=True)
        texts[f"d{i % 2}/{i}.txt"] = text = make_text(rng)
        (sub / f"{i}.txt").write_text(text, encoding="utf-8")
    return texts


def test_move_after_commit_keeps_the_tree_and_counts_once(tmp_path, rng):
    done = tmp_path / "done"
    config, inbox = inbox_config(tmp_path, f"move:{done}")
    daemon = DaemonProcess(config).start()
    texts = drop(inbox, rng, 12)
    wait_until(lambda: all((done / p).exists() for p in texts), 60, "all moved")
    assert daemon.stop() == 0
    assert not list(inbox.rglob("*.txt"))
    assert {p: (done / p).read_text(encoding="utf-8") for p in texts} == texts
    assert db_counts(tmp_path / "db.sqlite") == reference_counts(texts.values())


def test_delete_after_commit(tmp_path, rng):
    config, inbox = inbox_config(tmp_path, "delete")
    daemon = DaemonProcess(config).start()
    texts = drop(inbox, rng, 5)
    wait_until(lambda: not list(inbox.rglob("*.txt")), 60, "all deleted")
    assert daemon.stop() == 0
    assert set(db_ledger(tmp_path / "db.sqlite").values()) == {"counted"}
    assert db_counts(tmp_path / "db.sqlite") == reference_counts(texts.values())


def ledger_and_counts(db) -> tuple[dict[str, str], Counter]:
    """path -> status, and the totals, through the store (either backend)."""
    store = open_store(db)
    try:
        return {r.path: r.status for r, _ in store.ledger_rows()}, Counter(dict(store.counts()))
    finally:
        store.close()


def test_crash_between_commit_and_move_is_finished_at_restart(tmp_path, rng, db):
    done = tmp_path / "done"
    config, inbox = inbox_config(tmp_path, f"move:{done}", db)
    texts = drop(inbox, rng, 6)
    dying = DaemonProcess(config, {"STREAMCOUNT_FAILPOINTS": "inbox-before-settle=3.txt"})
    dying.start(wait_ready=False)
    assert dying.wait() == 137  # died after the commit, before moving d1/3.txt
    assert ledger_and_counts(db)[0][str(inbox / "d1/3.txt")] == "counted"
    assert (inbox / "d1/3.txt").exists()
    daemon = DaemonProcess(config).start()
    wait_until(lambda: all((done / p).exists() for p in texts), 60, "all moved")
    assert daemon.stop() == 0
    assert not (inbox / "d1/3.txt").exists()
    ledger, counts = ledger_and_counts(db)
    assert list(ledger.values()).count("counted") == len(texts)
    assert counts == reference_counts(texts.values())


@pytest.mark.parametrize("after", ["move:", "remove", "move"])
def test_bad_after_is_refused_in_one_line(tmp_path, after):
    config, _ = inbox_config(tmp_path, after)
    with pytest.raises(ConfigError, match=r"discovery\.watch\.after"):
        load_config(config)
