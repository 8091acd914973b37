"""Read-only SQL for analysts: one SELECT, no side effects, bounded in time.

`mode=ro` alone is not enough (a read-only connection can still ATTACH a new
file, VACUUM INTO one, or load an extension), so every statement is checked
by an authorizer allow-list, and a progress handler stops runaway queries.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from typing import Any

from .store import Store

# PRAGMAs that only read; their argument (if any) is a table or index name.
READ_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
     "foreign_key_list", "database_list", "collation_list", "function_list", "user_version"}
)  # fmt: skip
DENIED_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})


class QueryError(Exception):
    """The statement was refused or failed; nothing was changed."""


def _authorize(action: int, arg1: str | None, arg2: str | None, db: str | None, src: Any) -> int:
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        denied = (arg2 or "").lower() in DENIED_FUNCTIONS
        return sqlite3.SQLITE_DENY if denied else sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in READ_PRAGMAS:
        # user_version with a value would write it; the rest take a name
        ok = arg2 is None or (arg1 or "").lower() != "user_version"
        return sqlite3.SQLITE_OK if ok else sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_DENY


def run_query(
    store: Store, sql: str, timeout: float = 10.0
) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    """Run one read-only statement; return its column names and rows.

    The store must be opened with Store.open_reader. Raises QueryError with
    a message for people when the statement is refused, fails or runs too long.
    """
    conn = store.conn
    deadline = time.monotonic() + timeout
    conn.set_authorizer(_authorize)
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        cursor = conn.execute(sql)
    except sqlite3.ProgrammingError as exc:
        if "one statement" in str(exc):
            raise QueryError("only one statement at a time") from exc
        raise QueryError(str(exc)) from exc
    except sqlite3.DatabaseError as exc:
        raise QueryError(_explain(exc, timeout)) from exc
    columns = [d[0] for d in cursor.description or ()]

    def rows() -> Iterator[tuple[Any, ...]]:
        try:
            yield from cursor
        except sqlite3.DatabaseError as exc:
            raise QueryError(_explain(exc, timeout)) from exc

    return columns, rows()


def _explain(exc: sqlite3.DatabaseError, timeout: float) -> str:
    text = str(exc)
    if "not authorized" in text:
        return (
            "refused: `streamcount sql` runs read-only queries only "
            "(SELECT, and PRAGMAs that read); use sqlite3 for anything else"
        )
    if "interrupted" in text:
        return f"query stopped after {timeout:g}s (use --timeout to allow longer)"
    return text
