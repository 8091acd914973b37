"""One analyst query in a process of its own, killed at its deadline.

Compiling a statement, or one call of a function such as `hex(randomblob(…))`,
never yields to SQLite's progress handler, so only another process can stop
it on time. The child sets its own ceilings (SQLite's heap, its address
space, no core file, no file larger than 64 MiB, death with its parent),
runs the statement under sqlquery's rules and writes the rows to a pipe in
batches as they come; the parent reads them, and kills the child at the
deadline (plus a grace second for the child to say so itself). The rows are
pickled: both ends are this code, and pickle keeps SQLite's types as they are.

    python -m streamcount.sqlchild    (reads its request from stdin)
"""

from __future__ import annotations

import contextlib
import os
import pickle
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .sqlquery import MIB, Bounds, QueryError, apply_bounds, check_text, explain, timed_out

GRACE_SECONDS = 0.5  # after the deadline: the child's own handler, then the kill
BATCH_ROWS = 500  # rows a message holds at most; and at most about BATCH_BYTES
BATCH_BYTES = MIB


def address_space(memory_mb: int) -> int:
    """The kernel's cap on the query process (RLIMIT_AS), in bytes.

    SQLite's heap limit counts what it asked malloc for; malloc's own headers
    add about a third for the many small nodes of a parse tree (measured:
    349 MiB RSS at 256, 682 at 512, 1,348 at 1,024, 2,681 at 2,048), and
    Python with the rows in flight needs ~50 MiB more. The heap limit stops
    a query first; this is the backstop.
    """
    return memory_mb * MIB * 3 // 2 + 256 * MIB
FILE_SIZE_LIMIT = 64 * MIB  # SQLite writes no file here; a backstop in case it would


@dataclass
class Query:
    """A running query: its columns, then its rows as they arrive.

    After the rows are exhausted: `cut` says whether rows were left out at
    the row cap, `peak_rss` is the child's peak resident memory in bytes and
    `seconds` its wall time.
    """

    columns: list[str]
    rows: Iterator[tuple[Any, ...]]
    cut: bool = False
    peak_rss: int = 0
    seconds: float = 0.0
    child: _Child | None = None

    def close(self) -> None:
        """Stop the child if it is still running (the reader stopped early)."""
        if self.child is not None:
            self.child.stop()


def run_query(db: Path, sql: str, bounds: Bounds, maxima: Bounds) -> Query:
    """Start the query in a child process; QueryError if it is refused or fails.

    Errors after the first row come from iterating `rows`, also as QueryError.
    """
    check_text(sql)
    if not db.is_file():
        raise QueryError(f"no database at {db}")
    started = time.monotonic()
    deadline = started + bounds.timeout
    child = _Child(deadline + GRACE_SECONDS)
    request = {"db": str(db), "sql": sql, "bounds": bounds, "maxima": maxima,
               "deadline": deadline, "parent": os.getpid()}  # fmt: skip
    child.send(request)
    query = Query([], iter(()), child=child)

    def finish(kind: str, value: Any) -> None:
        query.peak_rss, query.seconds = child.reap(), time.monotonic() - started
        query.cut = kind == "cut"
        if kind not in ("cut", "end", "error"):  # no answer: killed, or it died
            kind, value = "error", timed_out(bounds, maxima) if child.killed else child.death()
        child.close_pipes()
        if kind == "error":
            error = QueryError(value)
            error.peak_rss, error.seconds = query.peak_rss, query.seconds
            raise error

    kind, value = child.receive()
    if kind != "columns":
        finish(kind, value)
    query.columns = value

    def rows() -> Iterator[tuple[Any, ...]]:
        while True:
            kind, value = child.receive()
            if kind != "rows":
                finish(kind, value)
                return
            yield from value

    query.rows = rows()
    return query


class _Child:
    """The parent's end: the process, its pipes, and the kill at the deadline."""

    def __init__(self, kill_at: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamcount.sqlchild"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.killed = False
        self.peak = 0  # the child's own VmHWM, when it or the kill could read it
        self._lock = threading.Lock()
        self._reaped = False
        self._timer = threading.Timer(max(0.0, kill_at - time.monotonic()), self._kill)
        self._timer.daemon = True
        self._timer.start()

    def _kill(self) -> None:
        with self._lock:
            if not self._reaped:
                self.peak = max(self.peak, peak_rss(self.proc.pid))
                self.killed = True
                self.proc.kill()

    def stop(self) -> None:
        self._kill()
        self.killed = False  # stopped by us, not by the deadline
        self.reap()
        self.close_pipes()

    def close_pipes(self) -> None:
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def send(self, request: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(pickle.dumps(request))
            self.proc.stdin.close()
        except BrokenPipeError:
            pass  # it died at once; receive() says how

    def receive(self) -> tuple[str, Any]:
        """The child's next message, or ("died", None) when its pipe ends."""
        try:
            kind, value, peak = pickle.load(self.proc.stdout)  # type: ignore[arg-type]
        except (EOFError, pickle.UnpicklingError, OSError, ValueError):
            return "died", None
        self.peak = max(self.peak, peak)
        return kind, value

    def reap(self) -> int:
        """Wait for the child (the deadline still holds); its peak RSS in bytes.

        The kernel's figure (wait4) also counts the parent's RSS when the child
        was spawned (vfork shares it until exec), so the child's own VmHWM,
        read by it or at the kill, is preferred; wait4 is the fallback.
        """
        try:  # wait for its exit, but leave it unreaped: its pid cannot be reused yet
            os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            return 0  # reaped already
        with self._lock:
            self._reaped = True
            self._timer.cancel()
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return self.peak or usage.ru_maxrss * 1024


def peak_rss(pid: int | str) -> int:
    """A process's peak resident memory (VmHWM) in bytes; 0 if it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0

    def death(self) -> str:
        """One line on how the (reaped) child ended without an answer."""
        err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace")
        last = err.strip().splitlines()[-1:] or [""]
        code = self.proc.returncode or 0
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        return f"the query process ended without an answer ({how}) {last[0]}".strip()


# -- the child's side ------------------------------------------------------


def _ceilings(memory_mb: int, parent: int) -> None:
    """Limits the kernel enforces on this process, whatever SQLite does."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before we got here
        os._exit(1)
    space = address_space(memory_mb)
    resource.setrlimit(resource.RLIMIT_AS, (space, space))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails, not the process
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop


def _serve(request: dict[str, Any], out: BinaryIO) -> None:
    from . import readonly

    bounds: Bounds = request["bounds"]
    db = Path(request["db"])

    def send(kind: str, value: Any = None) -> None:
        peak = 0 if kind == "rows" else peak_rss("self")
        pickle.dump((kind, value, peak), out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    try:
        conn, stamp = _open(db)
    except sqlite3.Error as exc:
        send("error", f"cannot read {db}: {exc}")
        return
    try:
        apply_bounds(conn, bounds, request["deadline"])
        cursor = conn.execute(request["sql"])
        send("columns", [d[0] for d in cursor.description or ()])
        for batch in _batches(cursor, bounds.rows):
            send("rows", batch)
        cut = cursor.fetchone() is not None
        if stamp is not None and readonly.Stamp.of(db) != stamp:
            send("error", "the database was written while it was read; run the query again")
        else:
            send("cut" if cut else "end")
    except (sqlite3.Error, sqlite3.Warning, MemoryError) as exc:
        send("error", explain(exc, bounds, request["maxima"]))


def _open(db: Path) -> tuple[sqlite3.Connection, Any]:
    from . import readonly

    conn, stamp = readonly.connect(db)
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'counts'").fetchone():
        raise sqlite3.DatabaseError("not a streamcount database")
    return conn, stamp


def _batches(cursor: sqlite3.Cursor, most: int) -> Iterator[list[tuple[Any, ...]]]:
    """Up to `most` rows, in lists of at most BATCH_ROWS rows or about BATCH_BYTES."""
    batch: list[tuple[Any, ...]] = []
    size = 0
    for row in cursor:
        batch.append(row)
        size += sum(len(v) for v in row if isinstance(v, str | bytes))
        most -= 1
        if len(batch) == BATCH_ROWS or size >= BATCH_BYTES or most == 0:
            yield batch
            batch, size = [], 0
        if most == 0:
            return
    if batch:
        yield batch


def main() -> None:
    request = pickle.load(sys.stdin.buffer)
    _ceilings(request["bounds"].memory_mb, request["parent"])
    with contextlib.suppress(BrokenPipeError):  # the parent stopped reading: nobody to tell
        _serve(request, sys.stdout.buffer)


if __name__ == "__main__":
    main()
