"""What only the PostgreSQL store has: many writers (one per host_id) on one
database, a ledger per host, an advisory lock, and passwords kept out of sight."""

import random
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from streamcount.config import TokenizerSettings
from streamcount.identity import FileId
from streamcount.store import LedgerRow, Merge, MergeRefused, Store, StoreError
from streamcount.store.postgres import QueryRefused, query
from streamcount.writerlock import LockError

from .pgserver import free_port


def row(path: str, inode: int, tokens: int = 1) -> LedgerRow:
    return LedgerRow(path, FileId(1, inode, 10, 1, "f"), tokens, "counted", "", "utf-8")


def writer(url: str, host: str) -> Store:
    return Store.open_writer(url, TokenizerSettings(), host)


def test_one_writer_per_host_id_and_the_lock_goes_with_the_session(pg_url):
    first = writer(pg_url, "h1")
    with pytest.raises(LockError, match=r"host_id 'h1' is already being written .* pid \d+"):
        writer(pg_url, "h1")
    other = writer(pg_url, "h2")  # another host on the same database
    other.close()
    first.close()
    writer(pg_url, "h1").close()  # closed: free again


def test_a_killed_writer_leaves_no_lock_behind(pg_url):
    code = (
        "import os, sys; from streamcount.config import TokenizerSettings; "
        "from streamcount.store import Store; "
        "Store.open_writer(sys.argv[1], TokenizerSettings(), 'h1'); "
        "print('locked', flush=True); os.kill(os.getpid(), 9)"
    )
    out = subprocess.run([sys.executable, "-c", code, pg_url], capture_output=True, text=True)
    assert out.stdout == "locked\n" and out.returncode == -9
    writer(pg_url, "h1").close()


def test_each_host_has_its_own_ledger_and_all_add_to_one_total(pg_url):
    a, b = writer(pg_url, "h1"), writer(pg_url, "h2")
    a.merge(Merge({"的": 2, "北京": 1}, [row("/x", 1, 3)]))
    b.merge(Merge({"的": 5}, [row("/x", 1, 5)]))  # the same identity, on another host
    with pytest.raises(MergeRefused):
        a.merge(Merge({"的": 9}, [row("/y", 1)]))  # the same bytes twice on one host
    assert [p for p, _, _ in a.ledger()] == ["/x"] and [p for p, _, _ in b.ledger()] == ["/x"]
    assert a.counted_as(row("/x", 1).file) == "/x"
    reader = Store.open_reader(pg_url)
    assert reader.total_tokens() == 8
    assert reader.lookup(["的"])[0]["count"] == 7
    assert [r["host"] for r in reader.files()] == ["h1", "h2"]
    for s in (a, b, reader):
        s.close()


def test_concurrent_writers_with_overlapping_tokens_never_deadlock(pg_url):
    """Three writers merge batches that share hot tokens, at once: every merge
    commits (sorted upserts take row locks in one order) and the totals add up."""
    vocab = [f"词{i}" for i in range(400)]
    expected: Counter[str] = Counter()
    batches = []
    rng = random.Random(9)
    for host in ("h1", "h2", "h3"):
        mine = []
        for i in range(40):
            tally = Counter({"的": 3, "了": 1}) + Counter(rng.choices(vocab, k=300))
            expected.update(tally)
            mine.append(Merge(dict(tally), [row(f"/{host}/{i}", i)]))
        batches.append((host, mine))
    errors: list[BaseException] = []

    def run(host: str, merges: list[Merge]) -> None:
        store = writer(pg_url, host)
        try:
            for merge in merges:
                store.merge(merge)
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=run, args=batch) for batch in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    reader = Store.open_reader(pg_url)
    assert Counter(dict(reader.conn.execute("SELECT token, count FROM counts"))) == expected
    assert reader.total_tokens() == sum(expected.values())
    reader.close()


def test_a_reader_refuses_a_database_that_is_not_streamcount(pg_url):
    with pytest.raises(StoreError, match="not a streamcount database"):
        Store.open_reader(pg_url)


def test_no_password_in_errors(pg_server):
    url = f"postgresql://someone:s3cret@127.0.0.1:{free_port()}/nowhere"
    with pytest.raises(StoreError) as refused:
        Store.open_reader(url)
    assert "s3cret" not in str(refused.value) and "someone:***@" in str(refused.value)
    with pytest.raises(StoreError) as refused:
        Store.open_reader(url.replace("someone:s3cret@", "someone@") + "?password=s3cret")
    assert "s3cret" not in str(refused.value)


def test_without_psycopg_the_error_names_the_extra(pg_url):
    code = (
        "import sys; sys.modules['psycopg'] = None; from streamcount.cli import main; "
        "sys.argv = ['streamcount', 'stats', '--db', sys.argv[1]]; main()"
    )
    out = subprocess.run([sys.executable, "-c", code, pg_url], capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    assert "pip install 'streamcount[postgres]'" in out.stderr and "Traceback" not in out.stderr


def test_sql_reads_and_refuses_writes_ddl_two_statements_and_long_queries(pg_url):
    store = writer(pg_url, "h1")
    store.merge(Merge({"北京": 3, "上海": 1}, [row("/a", 1, 4)]))
    store.close()
    reader = Store.open_reader(pg_url)
    columns, rows = query(reader, "SELECT token, count FROM counts ORDER BY count DESC")
    assert columns == ["token", "count"] and list(rows) == [("北京", 3), ("上海", 1)]
    for sql in (
        "INSERT INTO counts VALUES ('x', 1)", "UPDATE counts SET count = 0",
        "DELETE FROM files", "CREATE TABLE t (a int)", "DROP TABLE counts",
        "SELECT nextval('files_id_seq')",
    ):  # fmt: skip
        with pytest.raises(QueryRefused, match="read-only"):
            query(reader, sql)
    with pytest.raises(QueryRefused, match="one statement"):
        query(reader, "SELECT 1; DELETE FROM counts")
    with pytest.raises(QueryRefused, match=r"stopped after 0.5s"):
        query(reader, "SELECT pg_sleep(5)", timeout=0.5)
    with pytest.raises(QueryRefused, match="does not exist"):
        query(reader, "SELECT nothing FROM nowhere")
    assert reader.lookup(["北京"])[0]["count"] == 3 and len(reader.files()) == 1
    assert list(query(reader, "SELECT count(*) FROM files")[1]) == [(1,)]  # still usable
    assert list(query(reader, "SELECT token FROM counts WHERE token LIKE '北%'")[1]) == [("北京",)]
    reader.close()


def test_the_sql_command_on_postgresql_streams_cuts_and_refuses_in_one_line(pg_url):
    """`streamcount sql` on a PostgreSQL URL: the bounds of issue 16 on the other backend.
    50,000,000 rows with --limit 10 end at once in little memory (a server-side
    cursor: the client holds 1,000 rows at a time); a write is one line, exit 2."""
    store = writer(pg_url, "h1")
    store.merge(Merge({"北京": 3, "上海": 1}, [row("/a", 1, 4)]))
    store.close()

    def sql(*args: str) -> tuple[subprocess.CompletedProcess, int]:
        # Run by a small Python that reports its child's peak RSS: a process forked
        # from this one (the test run, hundreds of MB) counts our pages until exec.
        measure = (
            "import resource, subprocess, sys; "
            "code = subprocess.run(sys.argv[1:]).returncode; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
            "sys.exit(code)"
        )
        command = [sys.executable, "-m", "streamcount", "sql", *args, "--db", pg_url]
        done = subprocess.run(
            [sys.executable, "-c", measure, *command], capture_output=True, text=True, timeout=60
        )
        *lines, peak = done.stderr.splitlines()
        done.stderr = "\n".join(lines)
        return done, int(peak)

    done, _ = sql("SELECT token, count FROM counts ORDER BY count DESC", "--csv")
    assert done.returncode == 0 and done.stdout.splitlines() == ["token,count", "北京,3", "上海,1"]
    started = time.monotonic()
    done, peak_kb = sql("SELECT g FROM generate_series(1, 50000000) g", "--limit", "10", "--csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [str(i) for i in range(1, 11)]
    assert "the first 10 rows are shown" in done.stderr
    assert time.monotonic() - started < 20 and peak_kb < 150_000, peak_kb
    done, _ = sql("DELETE FROM counts")
    assert done.returncode == 2 and "read-only" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
