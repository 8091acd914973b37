"""The exactly-once holes of issue 15, each as real processes on real files.

Each test ends with the totals equal to the reference count of what was really
there, every version of a file counted at most once, and the ledger saying
what happened.
"""

import os
import resource
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from streamcount.config import Config
from streamcount.identity import file_id, fingerprint_of
from streamcount.ingest import ingest
from streamcount.store import Store

from .helpers import db_counts, make_text, reference_counts, wait_until


def rows(db: Path) -> list[tuple[str, str, str]]:
    """(file name, status, reason) of every ledger row, oldest first."""
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            found = conn.execute("SELECT path, status, reason FROM files ORDER BY id").fetchall()
        except sqlite3.OperationalError:
            return []
    return [(Path(p).name, s, r) for p, s, r in found]


def statuses(db: Path, name: str) -> list[str]:
    return [s for n, s, _ in rows(db) if n == name]


def big_text(rng, mb: float) -> str:
    text = ""
    while len(text.encode()) < mb * 1e6:
        text += make_text(rng, paragraphs=200, per_paragraph=20)
    return text


def cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streamcount", *map(str, args)], capture_output=True, text=True
    )


def test_1_rename_while_counting_counts_once(tmp_path, rng, daemon_factory):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    text = big_text(rng, 2.5)
    (inbox / "big.txt").write_text(text)
    daemon = daemon_factory(workers=1, log_level="DEBUG").start(wait_ready=False)
    wait_until(lambda: daemon.saw("sent task"), 60, "the big file to be sent")
    os.rename(inbox / "big.txt", inbox / "renamed.txt")
    wait_until(lambda: statuses(db, "renamed.txt"), 60, "the renamed file in the ledger")
    assert daemon.stop() == 0
    assert db_counts(db) == reference_counts([text])
    # Read before the rename: counted as big.txt, the new name `moved`; or not yet
    # opened: big.txt vanished, counted as renamed.txt. Never both.
    assert [statuses(db, "big.txt"), statuses(db, "renamed.txt")] in (
        [["counted"], ["moved"]],
        [[], ["counted"]],
    )


def test_2_rotation_counts_the_new_file_and_not_the_old_one_again(tmp_path, rng, daemon_factory):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    daemon = daemon_factory(rescan_seconds=0.5).start()
    old, new = make_text(rng), make_text(rng)
    (inbox / "a.txt").write_text(old)
    wait_until(lambda: statuses(db, "a.txt") == ["counted"], what="a.txt counted")
    os.rename(inbox / "a.txt", inbox / "a.1.txt")
    (inbox / "a.txt").write_text(new)
    wait_until(lambda: len(rows(db)) == 3, what="the rotated and the new file")
    assert statuses(db, "a.txt") == ["counted", "counted"]
    assert statuses(db, "a.1.txt") == ["moved"]
    assert daemon.stop() == 0
    assert db_counts(db) == reference_counts([old, new])


def test_3_a_new_file_in_a_reused_inode_is_counted(tmp_path, rng, daemon_factory):
    """a.txt counted, deleted, and a new b.txt in the same inode with the same size
    and mtime (ext4 reuses a freed inode at once; `cp -p` keeps the mtime). What the
    daemon then sees is made here without waiting on the filesystem's choice: the
    inode rewritten in place with other bytes, its mtime put back, renamed to b.txt.
    Nothing a stat shows tells it from a.txt renamed."""
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    first, second = make_text(rng).encode(), make_text(rng).encode()
    size = max(len(first), len(second))
    first, second = first.ljust(size, b"\n"), second.ljust(size, b"\n")  # the same size
    (inbox / "a.txt").write_bytes(first)
    daemon = daemon_factory().start()
    wait_until(lambda: statuses(db, "a.txt") == ["counted"], what="a.txt counted")
    assert daemon.stop() == 0
    st = (inbox / "a.txt").stat()
    with (inbox / "a.txt").open("r+b") as f:
        f.write(second)
    os.utime(inbox / "a.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    os.rename(inbox / "a.txt", inbox / "b.txt")
    now = (inbox / "b.txt").stat()
    assert (now.st_ino, now.st_size, now.st_mtime_ns) == (st.st_ino, st.st_size, st.st_mtime_ns)
    daemon.start()
    wait_until(lambda: statuses(db, "b.txt"), what="b.txt in the ledger")
    assert daemon.stop() == 0
    assert statuses(db, "b.txt") == ["counted"]
    assert db_counts(db) == reference_counts([first.decode(), second.decode()])


def test_4_a_chunked_file_replaced_mid_count_is_never_mixed(tmp_path, rng, daemon_factory):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    v1, v2 = big_text(rng, 2.0), big_text(rng, 2.0)
    daemon = daemon_factory(chunk_bytes=65536, log_level="DEBUG").start()
    (tmp_path / "v1.txt").write_text(v1)
    (tmp_path / "v2.txt").write_text(v2)
    os.rename(tmp_path / "v1.txt", inbox / "file.txt")
    wait_until(lambda: daemon.saw("sent task"), what="the first chunk to be sent")
    os.rename(tmp_path / "v2.txt", inbox / "file.txt")  # atomic rename over it
    v2_inode = (inbox / "file.txt").stat().st_ino
    with_v2 = "SELECT count(*) FROM files WHERE status = 'counted' AND inode = ?"

    def v2_counted():
        return db.exists() and sqlite3.connect(db).execute(with_v2, (v2_inode,)).fetchone()[0]

    wait_until(v2_counted, 90, "the second version counted")
    assert daemon.stop() == 0
    counted = statuses(db, "file.txt").count("counted")
    expected = [v2] if counted == 1 else [v1, v2]  # v1 may have finished before the rename
    assert db_counts(db) == reference_counts(expected)
    if counted == 1:  # a chunk of v1 found the file replaced: v1 was dropped whole
        assert daemon.saw("file.txt: changed between its chunks") or daemon.saw(
            "file.txt: replaced by another file"
        )


def test_5_ingest_after_a_rename_counts_nothing_again(tmp_path, rng):
    folder, db = tmp_path / "in", tmp_path / "db.sqlite"
    folder.mkdir()
    texts = [make_text(rng) for _ in range(3)]
    for i, text in enumerate(texts):
        (folder / f"{i}.txt").write_text(text)
    assert cli("ingest", folder, "--db", db).returncode == 0
    os.rename(folder / "0.txt", folder / "renamed.txt")
    again = cli("ingest", folder, "--db", db)
    assert again.returncode == 0, again.stderr
    assert "0 files counted" in again.stdout and "1 moved" in again.stdout
    assert statuses(db, "renamed.txt") == ["moved"]
    assert db_counts(db) == reference_counts(texts)


def six_files_and_a_bad_one(inbox: Path, rng) -> list[str]:
    """Six files to count and bad.txt, which a failpoint makes fail; the six texts."""
    texts = [make_text(rng) for _ in range(6)]
    for i, text in enumerate(texts):
        (inbox / f"{i}.txt").write_text(text)
    (inbox / "bad.txt").write_text(make_text(rng))
    return texts


def test_6_an_exception_in_a_worker_fails_that_file_only(tmp_path, rng, daemon_factory):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    texts = six_files_and_a_bad_one(inbox, rng)
    env = {"STREAMCOUNT_FAILPOINTS": "worker-count=bad.txt"}  # MemoryError in the tokenizer
    daemon = daemon_factory(env=env, batch_max_files=50).start()
    wait_until(lambda: len(rows(db)) == 7, what="every file, bad.txt failed")
    [(_, status, reason)] = [r for r in rows(db) if r[0] == "bad.txt"]
    assert status == "failed" and "MemoryError" in reason
    late = make_text(rng)
    (inbox / "late.txt").write_text(late)  # the daemon keeps counting
    wait_until(lambda: statuses(db, "late.txt") == ["counted"], what="a later file")
    assert daemon.stop() == 0
    assert db_counts(db) == reference_counts([*texts, late])


def test_6_an_exception_adding_a_result_fails_that_file_only(tmp_path, rng, daemon_factory):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    texts = six_files_and_a_bad_one(inbox, rng)
    env = {"STREAMCOUNT_FAILPOINTS": "pipeline-take=bad.txt"}  # MemoryError in the parent
    daemon = daemon_factory(env=env).start()
    wait_until(lambda: len(rows(db)) == 7, 60, "every file, bad.txt failed")
    assert statuses(db, "bad.txt") == ["failed"]
    assert daemon.stop() == 0
    assert db_counts(db) == reference_counts(texts)


def test_6_a_codec_that_is_not_a_text_encoding_is_refused_at_start(tmp_path):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    inbox.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f'db = "{db}"\n[discovery]\nwatch = [{{ path = "{inbox}", encoding = "rot13" }}]\n'
    )
    result = cli("run", "--config", config)
    assert result.returncode == 2
    assert "'rot13' is not a text encoding" in result.stderr
    assert "Traceback" not in result.stderr
    for encoding, message in (("nosuch", "unknown encoding"), ("base64", "not a text encoding")):
        result = cli("ingest", inbox, "--db", db, "--encoding", encoding)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_7_the_ledger_records_the_bytes_counted(tmp_path, rng, daemon_factory):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    daemon = daemon_factory(rescan_seconds=0.5).start()
    first, more = make_text(rng), make_text(rng)
    (inbox / "a.txt").write_text(first)
    with (inbox / "a.txt").open("a") as f:  # appended just after it was closed
        f.write(more)
    wait_until(lambda: statuses(db, "a.txt") == ["counted"], what="a.txt counted")
    size = sqlite3.connect(db).execute("SELECT size FROM files").fetchone()[0]
    counted_text = (inbox / "a.txt").read_bytes()[:size].decode()
    assert counted_text in (first, first + more)
    os.rename(inbox / "a.txt", inbox / "b.txt")  # unchanged since: not counted again
    wait_until(lambda: statuses(db, "b.txt") == ["moved"], what="b.txt moved")
    assert daemon.stop() == 0
    assert db_counts(db) == reference_counts([counted_text])


@pytest.mark.parametrize("delay", [0.3, 1.0, 2.0])
def test_8_sigint_during_ingest_then_again_counts_each_file_once(tmp_path, rng, delay):
    folder, db = tmp_path / "in", tmp_path / "db.sqlite"
    folder.mkdir()
    texts = [make_text(rng, paragraphs=20) for _ in range(150)]
    for i, text in enumerate(texts):
        (folder / f"{i:03d}.txt").write_text(text)
    args = [sys.executable, "-m", "streamcount", "ingest", str(folder), "--db", str(db)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.wait(delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130), err
    assert "Traceback" not in err
    again = cli("ingest", folder, "--db", db)
    assert again.returncode == 0, again.stderr
    assert db_counts(db) == reference_counts(texts)
    assert sorted(s for _, s, _ in rows(db)) == ["counted"] * len(texts)


def test_8_a_merge_refused_for_a_duplicate_is_diagnosed_and_the_rest_counted(tmp_path, rng, db):
    """The ledger gains a row for the very bytes of b.txt behind the writer's back,
    after it decided to count b.txt: the unique index refuses the merge; b.txt is
    recorded `linked` to that row, the other files are counted again, once. On
    each backend (`db`: a SQLite file, then a PostgreSQL database)."""
    folder = tmp_path / "in"
    folder.mkdir()
    texts = {name: make_text(rng) for name in ("a.txt", "b.txt", "c.txt")}
    for name, text in texts.items():
        (folder / name).write_text(text)
    b = folder / "b.txt"
    ident = file_id(b.stat(), fingerprint_of(b.read_bytes()))
    config = Config(db=db, workers=1)
    columns = "path, dev, inode, size, mtime_ns, fingerprint, tokens, status, reason, encoding"
    values = ("/elsewhere/b.txt", *ident, 0, "counted", "", "utf-8")

    def behind_the_writers_back(files: int, size: int) -> None:
        if isinstance(db, Path):
            with sqlite3.connect(db) as conn:
                conn.execute(
                    f"INSERT INTO files ({columns}, counted_at) VALUES ({'?, ' * 10}'now')", values
                )
            return
        import psycopg

        with psycopg.connect(db) as conn:
            conn.execute(
                f"INSERT INTO files (host, {columns}, counted_at) VALUES ({'%s, ' * 11}'now')",
                (config.host_id, *values),
            )

    summary = ingest(config, [folder], on_start=behind_the_writers_back)
    assert summary.by_status == {"counted": 2, "linked": 1}
    reader = Store.open_reader(db)
    try:
        [(status, reason)] = [
            (f["status"], f["reason"]) for f in reader.files() if f["path"] == str(b)
        ]
        totals = Counter({r["token"]: r["count"] for r in reader.top(1_000_000)})
    finally:
        reader.close()
    assert status == "linked" and "/elsewhere/b.txt" in reason
    assert totals == reference_counts([texts["a.txt"], texts["c.txt"]])


def test_hard_links_are_counted_once(tmp_path, rng, daemon_factory):
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    text = make_text(rng)
    (inbox / "a.txt").write_text(text)
    os.link(inbox / "a.txt", inbox / "b.txt")
    daemon = daemon_factory().start()
    wait_until(lambda: len(rows(db)) == 2, what="both names in the ledger")
    os.link(inbox / "a.txt", inbox / "c.txt")  # and one made while it runs
    wait_until(lambda: len(rows(db)) == 3, what="the third name")
    assert daemon.stop() == 0
    assert sorted(s for _, s, _ in rows(db)) == ["counted", "linked", "linked"]
    assert db_counts(db) == reference_counts([text])


def test_a_real_memory_error_fails_that_file_and_nothing_else(tmp_path):
    """Issue 17, item 3: under an address-space limit (as `prlimit --as` sets), a
    400 MB file counted whole runs a worker out of memory; that file is failed
    with the reason, the other counted, and the run ends normally."""
    folder, db = tmp_path / "in", tmp_path / "db.sqlite"
    folder.mkdir()
    with (folder / "huge.txt").open("wb") as f:
        for _ in range(40):
            f.write(b"a" * 10_000_000)
    (folder / "ok.txt").write_text(ok := "北京大学和清华大学联合举办了国际学术研讨会。\n")
    config = tmp_path / "config.toml"
    config.write_text(
        f'db = "{db}"\nworkers = 1\n'
        "[batching]\nchunk_bytes = 2000000000\nbatch_max_bytes = 2000000000\n"
    )
    limit = 700_000_000  # the file and its text cannot both fit; jieba and Python can

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "streamcount", "ingest", str(folder), "--config", str(config)],
        capture_output=True, text=True, preexec_fn=limited, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "1 files counted, 0 skipped, 1 failed" in result.stdout
    [(_, status, reason)] = [r for r in rows(db) if r[0] == "huge.txt"]
    assert status == "failed" and "MemoryError" in reason
    assert db_counts(db) == reference_counts([ok])
