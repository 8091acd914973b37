"""Start-up with a large ledger: from `streamcount run` to READY=1 (watching, catch-up done).

    python -m bench.startup [--files 100000]

Creates --files small files that are all already in the ledger (inserted
through Store.merge, as counting them would), then times the daemon's start
to its READY=1 notification: loading the ledger, starting the pool, the
catch-up scan and the watches. Prints the median of three starts.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from streamcount.config import TokenizerSettings
from streamcount.identity import file_id, fingerprint_of
from streamcount.store import LedgerRow, Merge, Store


def prepare(root: Path, db: Path, files: int) -> None:
    """`files` small files, an hour old, and a ledger that has counted each of them."""
    old = time.time() - 3600
    rows = []
    for i in range(files):
        folder = root / f"{i // 1000:04d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True)
        path = folder / f"{i:07d}.txt"
        path.write_bytes(b"x\n")
        os.utime(path, (old, old))
        file = file_id(path.stat(), fingerprint_of(b"x\n"))
        rows.append(LedgerRow(str(path), file, 1, "counted", "", "ascii"))
    store = Store.open_writer(db, TokenizerSettings())
    store.merge(Merge({"x": files}, rows))
    store.close()


def time_start(root: Path, db: Path) -> float:
    address = str(root.parent / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamcount", "run", "--watch", str(root), "--db", str(db)],
            env={**os.environ, "NOTIFY_SOCKET": address}, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            while b"READY=1" not in sock.recv(4096):
                pass
            return time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait()
            os.unlink(address)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, db = Path(tmp) / "inbox", Path(tmp) / "db.sqlite"
        prepare(root, db, args.files)
        times = [time_start(root, db) for _ in range(3)]
    each = ", ".join(f"{t:.2f}" for t in times)
    print(f"{args.files:,} files already counted: start to READY=1 in "
          f"{statistics.median(times):.2f} s (median of {each})")  # fmt: skip


if __name__ == "__main__":
    main()
