"""A writer that creates, renames, replaces, rotates, links, deletes and recreates
files at random moments while the daemon is SIGKILLed now and then.

Every version of a file the writer makes is distinct and small (its
fingerprint covers all of it), so the ledger's fingerprint names exactly which
version was counted. At the end: every file present is counted, no version is
counted twice, every counted row is a version the writer made whole, and the
totals equal the reference count of exactly the versions counted.

Short in `make test`; `make soak` runs it for minutes
(STREAMCOUNT_SOAK_SECONDS).
"""

import os
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

from streamcount.identity import fingerprint_of

from .helpers import db_counts, make_text, reference_counts, wait_until

SECONDS = float(os.environ.get("STREAMCOUNT_SOAK_SECONDS", "12"))


class Writer:
    """The files in the inbox, as the writer made them: name -> fingerprint."""

    def __init__(self, inbox: Path, stage: Path, rng) -> None:
        self.inbox, self.stage, self.rng = inbox, stage, rng
        self.present: dict[str, str] = {}
        self.versions: dict[str, str] = {}  # fingerprint -> text
        self.made = 0

    def _name(self) -> str:
        self.made += 1
        return f"f{self.made}.txt"

    def _version(self) -> tuple[Path, str]:
        """A new version, written whole outside the inbox (to be renamed in)."""
        text = f"version {len(self.versions)}\n" + make_text(self.rng, paragraphs=2)
        staged = self.stage / "next.txt"
        staged.write_text(text)
        fp = fingerprint_of(text.encode())
        self.versions[fp] = text
        return staged, fp

    def create(self, name: str | None = None) -> None:
        name = name or self._name()
        staged, fp = self._version()
        os.rename(staged, self.inbox / name)  # complete the moment it appears
        self.present[name] = fp

    def _pick(self) -> str | None:
        return self.rng.choice(sorted(self.present)) if self.present else None

    def rename(self) -> None:
        if (old := self._pick()) is not None:
            new = self._name()
            os.rename(self.inbox / old, self.inbox / new)
            self.present[new] = self.present.pop(old)

    def replace(self) -> None:
        if (name := self._pick()) is not None:
            self.create(name)  # renamed over the old one

    def rotate(self) -> None:
        if (name := self._pick()) is not None:
            rotated = self._name()
            os.rename(self.inbox / name, self.inbox / rotated)
            self.present[rotated] = self.present.pop(name)
            self.create(name)

    def link(self) -> None:
        if (name := self._pick()) is not None:
            new = self._name()
            os.link(self.inbox / name, self.inbox / new)
            self.present[new] = self.present[name]

    def delete(self) -> None:
        if (name := self._pick()) is not None:
            (self.inbox / name).unlink()
            del self.present[name]

    def recreate(self) -> None:
        if (name := self._pick()) is not None:
            (self.inbox / name).unlink()
            del self.present[name]
            self.create(name)


def ledger(db: Path) -> list[tuple[str, str, str]]:
    """(file name, status, fingerprint) of every row, oldest first."""
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            rows = conn.execute("SELECT path, status, fingerprint FROM files ORDER BY id")
            return [(Path(p).name, s, f) for p, s, f in rows]
        except sqlite3.OperationalError:
            return []


def test_random_writer_and_kills_count_every_version_at_most_once(tmp_path, rng, daemon_factory):
    inbox, db, stage = tmp_path / "inbox", tmp_path / "db.sqlite", tmp_path / "stage"
    stage.mkdir()
    writer = Writer(inbox, stage, rng)
    daemon = daemon_factory(settle_seconds=0.3, rescan_seconds=0.5).start()
    ops = [writer.create] * 4 + [
        writer.rename, writer.replace, writer.rotate, writer.link, writer.delete, writer.recreate,
    ]  # fmt: skip
    kills = 0
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        if rng.random() < 0.03:
            daemon.signal(signal.SIGKILL)
            daemon.wait()
            kills += 1
            daemon.start()
        rng.choice(ops)()
        time.sleep(rng.uniform(0, 0.05))  # the workload's own pace, not a wait for a result

    def settled() -> bool:
        latest = {name: (status, fp) for name, status, fp in ledger(db)}
        return all(latest.get(name, ("", ""))[1] == fp for name, fp in writer.present.items())

    wait_until(settled, 120, "every file present to be in the ledger as it is")
    assert daemon.stop() == 0
    rows = ledger(db)
    counted = Counter(fp for _, status, fp in rows if status == "counted")
    assert max(counted.values(), default=1) == 1, "a version counted twice"
    assert set(counted) <= set(writer.versions), "a counted row that is no whole version"
    assert set(writer.present.values()) <= set(counted), "a file present but not counted"
    assert db_counts(db) == reference_counts(writer.versions[fp] for fp in counted)
    print(f"{len(writer.versions)} versions, {len(rows)} ledger rows, {kills} kills")
