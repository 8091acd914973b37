"""Hostile `streamcount sql` queries, before and after the bounds: wall time, peak RSS, temp files.

    python -m bench.sql_bounds [--before 8f9a91c] [--cap-gb 4] [--cap-seconds 40]

Each query of issues 16 and 17 is run through the real command line, with
the timeout the issue used, by this checkout ("after") and by the code of
the commit `--before` (extracted with `git archive`; its queries ran in the
CLI's own process). Peak RSS is the kernel's figure for the command and
every process it waited for (os.wait4; it also counts this bench's own
~30 MB, which a spawned process shares until its exec); temp is the largest total of
SQLite's (deleted) temp files seen open by any of them, sampled every 50 ms.
The "before" runs are capped so that the bench cannot take the machine
down: address space `--cap-gb` (a MemoryError then) and `--cap-seconds` of
wall time (killed), shown as such.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from streamcount.config import TokenizerSettings
from streamcount.identity import FileId
from streamcount.store import LedgerRow, Merge, Store

ROOT = Path(__file__).resolve().parent.parent


def doubling(levels: int) -> str:
    parts = ["a0(x) AS (SELECT 1)"] + [
        f"a{i}(x) AS (SELECT x FROM a{i - 1} UNION ALL SELECT x FROM a{i - 1})"
        for i in range(1, levels + 1)
    ]
    return f"WITH {', '.join(parts)} SELECT count(*) FROM a{levels}"


def upto(n: int) -> str:
    return f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) "


ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
ALL_ROWS = ["--limit", "5000000", "--timeout", "60", "--config", "max.toml"]  # [sql] max_rows

# name, SQL, the flags the issue ran it with, flags only the new code knows
QUERIES = [
    ("length(hex(randomblob(499999999)))",
     "SELECT length(hex(randomblob(499999999)))", [], []),
    ("zeroblob(999999999), --timeout 1", "SELECT zeroblob(999999999)", ["--timeout", "1"], []),
    ("zeroblob x 20 in a CTE, --timeout 1",
     upto(20) + "SELECT zeroblob(999999999) FROM n", ["--timeout", "1"], []),
    ("22 doubling CTEs, --timeout 1", doubling(22), ["--timeout", "1"], []),
    ("25 doubling CTEs, --timeout 2", doubling(25), ["--timeout", "2"], []),
    ("300 doubling CTEs", doubling(300), [], []),
    ("endless count(DISTINCT randomblob(10000))",
     ENDLESS + "SELECT count(DISTINCT randomblob(10000)) FROM n", [], []),
    ("ORDER BY over 5 GB", upto(5_000_000) + "SELECT i, randomblob(1000) FROM n ORDER BY 2",
     [], []),
    ("recursive queue in order",
     "WITH RECURSIVE n(i, b) AS (SELECT 1, randomblob(1000) UNION ALL SELECT i + 1, "
     "randomblob(1000) FROM n, (SELECT 1 UNION ALL SELECT 2) ORDER BY 1) SELECT count(*) FROM n",
     [], []),
    ("5,000,000 rows, table", upto(5_000_000) + "SELECT i, 'row' FROM n", [], ALL_ROWS),
    ("5,000,000 rows, --json", upto(5_000_000) + "SELECT i, 'row' FROM n", ["--json"], ALL_ROWS),
]  # fmt: skip


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out


def temp_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if "etilqs" in os.readlink(f"/proc/{pid}/fd/{fd}"):
                    total += os.stat(f"/proc/{pid}/fd/{fd}").st_size
            except OSError:
                pass
    return total


def run(
    cmd: list[str], env: dict[str, str], cwd: Path, cap_bytes: int, cap_seconds: float
) -> tuple[float, int, int, str]:
    """Wall seconds, peak RSS (bytes), peak temp bytes, and how it ended."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=cap,
    )  # fmt: skip
    peak_temp, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak_temp
        while not done.wait(0.05):
            peak_temp = max(peak_temp, temp_bytes([proc.pid, *descendants(proc.pid)]))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    killer = threading.Timer(cap_seconds, proc.kill)
    killer.start()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    killer.cancel()
    done.set()
    sampler.join()
    code = os.waitstatus_to_exitcode(status)
    last = (err.strip().splitlines() or [""])[-1]
    if code < 0:
        capped = seconds >= cap_seconds
        how = f"killed at the {cap_seconds:g} s cap" if capped else f"signal {-code}"
    elif "Traceback" in err:
        how = f"traceback: {last[:40]}"
    else:
        how = f"exit {code}" + (f": {last.removeprefix('streamcount: ')[:48]}" if last else "")
    return seconds, usage.ru_maxrss * 1024, peak_temp, how


def make_db(path: Path) -> None:
    store = Store.open_writer(path, TokenizerSettings())
    counts = {f"词{i}": i for i in range(1, 20_001)}
    row = LedgerRow("/a", FileId(1, 1, 1, 1, ""), sum(counts.values()), "counted", "", "")
    store.merge(Merge(counts, [row]))
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="8f9a91c", help="the commit to compare with")
    parser.add_argument("--cap-gb", type=float, default=4.0)
    parser.add_argument("--cap-seconds", type=float, default=40.0)
    parser.add_argument("--only", help="run only the queries whose name contains this")
    args = parser.parse_args()
    cap_bytes = int(args.cap_gb * 2**30)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = work / "db.sqlite"
        make_db(db)
        (work / "max.toml").write_text("[sql]\nmax_rows = 5000000\n")
        old = work / "before"
        old.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "streamcount"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        versions = {"before": str(old), "after": str(ROOT)}
        print(f"{'query':42} {'':6} {'seconds':>8} {'peak RSS':>10} {'temp':>9}  outcome")
        for name, sql, flags, new_flags in QUERIES:
            if args.only and args.only not in name:
                continue
            for label, path in versions.items():
                env = dict(os.environ, PYTHONPATH=path)
                extra = new_flags if label == "after" else []
                cmd = [sys.executable, "-m", "streamcount", "sql", sql, "--db", str(db)]
                seconds, rss, temp, how = run(
                    cmd + flags + extra, env, work, cap_bytes, args.cap_seconds
                )
                print(
                    f"{name if label == 'before' else '':42} {label:6} {seconds:8.2f} "
                    f"{rss / 2**20:7,.0f} MB {temp / 2**20:6,.0f} MB  {how}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
