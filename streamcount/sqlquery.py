"""The rules for an analyst's SQL: what may run, and the bounds it runs under.

`mode=ro` alone is not enough (a read-only connection can still ATTACH a new
file, VACUUM INTO one, or load an extension), so a statement must start with
a reading keyword and every step of it passes an authorizer allow-list.
Politeness is not assumed either: SQLite's own limits cap the size of any
value and of the statement, `hard_heap_limit` caps the memory of the query
(temp storage included, as it is kept in memory), and the query runs in a
process of its own that is killed at its deadline (sqlchild.py), because
neither compiling a statement nor one heavy function call ever yields to a
progress handler.

`Bounds` is what any backend honours; `apply_bounds` is SQLite's way. A
PostgreSQL backend would map the same Bounds to `statement_timeout`,
`work_mem`/`temp_file_limit` and a cursor that stops at `rows`.
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024

# Hard limits on what one statement may build, whatever it does.
LIMITS = {
    sqlite3.SQLITE_LIMIT_LENGTH: 64 * MIB,  # any string, blob or row
    sqlite3.SQLITE_LIMIT_SQL_LENGTH: 100_000,  # the statement's text, in bytes
    sqlite3.SQLITE_LIMIT_COLUMN: 200,
    sqlite3.SQLITE_LIMIT_EXPR_DEPTH: 100,
    sqlite3.SQLITE_LIMIT_COMPOUND_SELECT: 50,
    sqlite3.SQLITE_LIMIT_VDBE_OP: 1_000_000,  # the compiled program's size
    sqlite3.SQLITE_LIMIT_FUNCTION_ARG: 100,
    sqlite3.SQLITE_LIMIT_ATTACHED: 0,
    sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER: 0,
    sqlite3.SQLITE_LIMIT_WORKER_THREADS: 0,
}
LENGTH_LIMIT = LIMITS[sqlite3.SQLITE_LIMIT_LENGTH]
SQL_LIMIT = LIMITS[sqlite3.SQLITE_LIMIT_SQL_LENGTH]

# A statement must start with one of these; everything else (VACUUM among
# them, which the authorizer never sees for the temp schema) is refused.
READING_KEYWORDS = frozenset({"select", "with", "values", "pragma", "explain"})

# PRAGMAs whose argument is the name of a table or index: reading either way.
NAME_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
     "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check"}
)  # fmt: skip
# PRAGMAs that read when given no value (`PRAGMA user_version = 7` writes).
VALUE_PRAGMAS = frozenset(
    {"user_version", "application_id", "schema_version", "data_version", "page_count",
     "page_size", "freelist_count", "journal_mode", "encoding", "auto_vacuum",
     "database_list", "collation_list", "function_list", "module_list", "pragma_list",
     "compile_options"}
)  # fmt: skip
DENIED_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})

REFUSED = (
    "refused: `streamcount sql` runs read-only queries only "
    "(SELECT, and PRAGMAs that read); use sqlite3 for anything else"
)


class QueryError(Exception):
    """The statement was refused or failed; nothing was changed.

    `peak_rss` (bytes) and `seconds` describe the query's process, if it ran.
    """

    peak_rss: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Bounds:
    """How long, how much memory and how many rows one query may take."""

    timeout: float = 10.0  # seconds of wall clock, compiling included
    memory_mb: int = 512  # SQLite's heap for the query, temp storage included
    rows: int = 10_000  # rows printed; the rest are cut, saying so

    def within(self, maxima: Bounds) -> None:
        """Refuse any bound that is not above 0 and at most the server's maximum."""
        for name, (flag, key) in BOUND_NAMES.items():
            asked, most = getattr(self, name), getattr(maxima, name)
            if not (math.isfinite(asked) and 0 < asked <= most):
                raise QueryError(
                    f"{flag} {asked:g} is not allowed: it must be above 0 and at most "
                    f"{most:g} (the server's maximum, {key} in the config)"
                )


# Each bound: the flag that raises it, and the config key that caps the flag.
BOUND_NAMES = {
    "timeout": ("--timeout", "[sql] max_timeout"),
    "memory_mb": ("--memory", "[sql] max_memory_mb"),
    "rows": ("--limit", "[sql] max_rows"),
}


def check_text(sql: str) -> None:
    """Refuse a statement SQLite could not be given: not UTF-8, or too long."""
    try:
        size = len(sql.encode("utf-8"))
    except UnicodeEncodeError as exc:
        bad = sql[exc.start]
        byte = f"byte 0x{ord(bad) - 0xDC00:02x}" if "\udc80" <= bad <= "\udcff" else repr(bad)
        where = f"{byte} at character {exc.start}"
        raise QueryError(f"the query is not valid UTF-8 ({where})") from None
    if size > SQL_LIMIT:
        raise QueryError(f"the query is {size:,} bytes long; at most {SQL_LIMIT:,} are allowed")
    if _first_keyword(sql) not in READING_KEYWORDS:
        raise QueryError(REFUSED)


_SKIP = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))*", re.S)


def _first_keyword(sql: str) -> str:
    """The statement's first word, after whitespace and comments, lowercased."""
    rest = sql[_SKIP.match(sql).end() :]  # type: ignore[union-attr]
    word = re.match(r"[A-Za-z_]+", rest)
    return word.group(0).lower() if word else ""


def _authorize(action: int, arg1: str | None, arg2: str | None, db: str | None, src: Any) -> int:
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        denied = (arg2 or "").lower() in DENIED_FUNCTIONS
        return sqlite3.SQLITE_DENY if denied else sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        reads = name in NAME_PRAGMAS or (name in VALUE_PRAGMAS and arg2 is None)
        return sqlite3.SQLITE_OK if reads else sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master" and src is None:
        # A table-valued function (json_each, pragma_table_info, …) declares its
        # columns with a CREATE TABLE that SQLite parses and never writes; a real
        # write to sqlite_master is refused by SQLite itself (no writable_schema,
        # which is a PRAGMA write), and the connection is read-only besides.
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def apply_bounds(conn: sqlite3.Connection, bounds: Bounds, deadline: float) -> None:
    """SQLite's way to honour `bounds` on this connection, in a process of its own.

    `hard_heap_limit` is process-wide: only the query's own process may set it.
    The progress handler ends a query that steps past the deadline cleanly; the
    parent kills the process shortly after, for one that does not step.
    """
    for limit, value in LIMITS.items():
        conn.setlimit(limit, value)
    conn.execute(f"PRAGMA hard_heap_limit = {bounds.memory_mb * MIB}")
    conn.execute("PRAGMA temp_store = MEMORY")  # temp b-trees and sorts count in the heap
    conn.set_authorizer(_authorize)
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)


def explain(exc: BaseException, bounds: Bounds, maxima: Bounds) -> str:
    """One line for people, from whatever SQLite (or Python) raised."""
    if isinstance(exc, MemoryError):
        more = _more(bounds, maxima, "memory_mb", " MiB")
        return f"query stopped: it needs more than {bounds.memory_mb} MiB of memory ({more})"
    text = str(exc)
    if "not authorized" in text:
        return REFUSED
    if "interrupted" in text:
        return timed_out(bounds, maxima)
    if "too big" in text:
        return f"query stopped: a string or blob longer than {LENGTH_LIMIT // MIB} MiB"
    if "one statement" in text:
        return "only one statement at a time"
    line = text.splitlines()[0] if text else type(exc).__name__
    return f"query failed: {line[:300]}"  # a message may quote a value of 64 MiB


def timed_out(bounds: Bounds, maxima: Bounds) -> str:
    return f"query stopped after {bounds.timeout:g}s ({_more(bounds, maxima, 'timeout', 's')})"


def _more(bounds: Bounds, maxima: Bounds, name: str, unit: str) -> str:
    """How to allow more, or that this is the most the server allows."""
    flag, key = BOUND_NAMES[name]
    most = getattr(maxima, name)
    if getattr(bounds, name) >= most:
        return f"the server's maximum, {key} in the config"
    return f"{flag} allows up to {most:g}{unit}"
