"""The command line: thin typer commands over the library.

Each command loads the config, calls one library function and prints; known
errors become one clear line on stderr and exit status 2, not a traceback.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .config import Config, ConfigError, is_url, load_config, parse_db, watch_dirs_from_flags
from .logs import setup_logging
from .output import emit
from .sqlquery import Bounds, QueryError
from .store import (
    Store,
    StoreError,
    copy_store,
    open_store,
    redact_location,
    writer_statuses,
)
from .trends import sparkline
from .windows import count_since, top_since
from .windows import rising as rising_rows
from .windows import trend as trend_rows
from .writerlock import LockError

if TYPE_CHECKING:
    from .pipeline import Progress

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Exact, running word counts over a stream of Chinese text files.",
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="config.toml (default: $STREAMCOUNT_CONFIG, ./config.toml)"),
]
DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="a SQLite file or a postgresql:// URL (default: from config)"),
]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", min=1, help="worker processes (default: CPUs)")
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", help="a Dask scheduler, tcp://host:8786 (default: local pool)"),
]
SQL = Bounds()  # the defaults of `streamcount sql`
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="print CSV")]


class DecodeErrors(enum.StrEnum):
    strict = "strict"
    replace = "replace"


@contextlib.contextmanager
def _clean_errors() -> Iterator[None]:
    try:
        yield
    except (ConfigError, StoreError, LockError, QueryError) as exc:
        typer.echo(f"streamcount: {exc}", err=True)
        raise typer.Exit(2) from None


def _db(db: str | None) -> Path | str | None:
    """`--db`: a path from the working directory, or a URL."""
    return parse_db(db, Path.cwd()) if db else None


def _config(config: Path | None, db: str | None = None, **overrides: object) -> Config:
    with _clean_errors():
        return load_config(config).override(db=_db(db), **overrides)


def _reader(config: Path | None, db: str | None) -> Store:
    location = _config(config, db).db
    with _clean_errors():
        return open_store(location)


def _fmt(as_json: bool, as_csv: bool) -> str:
    if as_json and as_csv:
        typer.echo("streamcount: choose one of --json and --csv", err=True)
        raise typer.Exit(2)
    return "json" if as_json else "csv" if as_csv else "table"


@app.command()
def run(
    config: ConfigOpt = None,
    watch: Annotated[
        list[Path] | None, typer.Option("--watch", help="a folder to watch (repeatable)")
    ] = None,
    db: DbOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
) -> None:
    """Run the daemon in the foreground: watch folders, count files as they complete.

    SIGTERM or SIGINT finishes and commits the batches in flight, then exits 0;
    a second signal exits at once.
    """
    def load() -> Config:
        return load_config(config).override(
            db=_db(db),
            workers=workers,
            cluster_scheduler=scheduler,
            watch=watch_dirs_from_flags(watch) if watch else None,
        )

    from . import daemon  # imported here: the query commands start faster without it

    with _clean_errors():
        cfg = load()
        setup_logging(cfg.log_level, cfg.log_format)
        daemon.run(cfg, reload=load)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files and folders to count")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    encoding: Annotated[str, typer.Option(help="auto, or a codec name")] = "auto",
    decode_errors: Annotated[
        DecodeErrors | None,
        typer.Option(help="bad bytes fail the file, or are replaced; default: the config's"),
    ] = None,
) -> None:
    """Count files and folders once, through the same pipeline and ledger as `run`.

    Files already in the ledger are skipped, so running it twice counts nothing twice.
    """
    from .ingest import ingest as ingest_files

    errors = decode_errors.value if decode_errors else None
    cfg = _config(
        config, db, workers=workers, decode_errors=errors, cluster_scheduler=scheduler
    )
    setup_logging("WARNING")
    with _clean_errors(), _progress_bar() as bar:
        summary = ingest_files(cfg, paths, encoding, on_start=bar.start, on_progress=bar.advance)
    by = summary.by_status
    renamed = f", {by['moved']} moved, {by['linked']} linked" if by["moved"] + by["linked"] else ""
    changing = f", {summary.changing} kept changing" if summary.changing else ""
    typer.echo(
        f"{by['counted']} files counted, {by['skipped']} skipped, {by['failed']} failed, "
        f"{summary.already} already counted{renamed}{changing}; {summary.tokens:,} tokens, "
        f"{summary.bytes / 1e6:.1f} MB in {summary.seconds:.1f} s "
        f"({summary.bytes / 1e6 / max(summary.seconds, 1e-9):.2f} MB/s)"
        + (" — interrupted; run again to finish" if summary.interrupted else "")
    )
    if summary.interrupted:
        raise typer.Exit(130)


@app.command()
def worker(
    scheduler: Annotated[str, typer.Argument(help="the Dask scheduler, tcp://host:8786")],
    nworkers: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
) -> None:
    """Run Dask worker processes with streamcount ready (one thread each: jieba holds
    the GIL); `dask worker SCHEDULER --preload streamcount.cluster` does the same."""
    import os
    import sys

    with _clean_errors():
        from .executors import require_distributed

        require_distributed()  # the one-line error when it is missing
    args = [sys.executable, "-m", "distributed.cli.dask_worker", scheduler, "--nthreads", "1"]
    args += ["--nworkers", str(nworkers), "--preload", "streamcount.cluster"]
    os.execv(sys.executable, args)


@app.command()
def forget(
    paths: Annotated[list[Path], typer.Argument(help="counted files to take back")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    dry_run: Annotated[bool, typer.Option(help="print what would be subtracted")] = False,
    recount: Annotated[
        bool, typer.Option(help="then count the files as they are now (those still there)")
    ] = False,
) -> None:
    """Subtract exactly what these counted files added; their ledger rows become
    `forgotten`. All or nothing: if one cannot be taken back, nothing is."""
    from .forget import plan
    from .ingest import ingest as ingest_files

    cfg = _config(config, db)
    with _clean_errors():
        store = open_store(cfg.db, cfg.tokenizer, cfg.host_id, buckets=cfg.buckets)
        try:
            found = plan(store, cfg, map(str, paths))
            for path, why in found.refused:
                typer.echo(f"streamcount: cannot forget {path}: {why}", err=True)
            if found.refused:
                typer.echo("nothing forgotten", err=True)
                raise typer.Exit(1)
            tokens = sum(found.counts.values())
            what = f"{len(found.rows)} files, {tokens:,} tokens, {len(found.counts):,} distinct"
            if dry_run:
                for row in found.rows:
                    typer.echo(f"{row.path}\t{row.tokens}")
                typer.echo(f"would subtract {what}")
                return
            store.subtract(found.counts, found.rows, found.by_bucket)
            typer.echo(f"forgot {what}")
        finally:
            store.close()
        there = [row.path for row in found.rows if os.path.isfile(row.path)]
        if recount and there:  # the writer lock is free again: count them now
            summary = ingest_files(cfg, [Path(p) for p in there], recount=there)
            typer.echo(f"counted again {summary.by_status['counted']} files, "
                       f"{summary.tokens:,} tokens")  # fmt: skip


class _Bar:
    """A rich progress bar on a terminal; silent otherwise."""

    def __init__(self) -> None:
        self.progress = None
        self.task = None

    def start(self, files: int, size: int) -> None:
        if sys.stderr.isatty():
            from rich.progress import Progress as RichProgress

            self.progress = RichProgress(transient=True)
            self.progress.start()
            self.task = self.progress.add_task("counting", total=files)

    def advance(self, progress: Progress) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, len(progress.rows) + len(progress.vanished))

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@contextlib.contextmanager
def _progress_bar() -> Iterator[_Bar]:
    bar = _Bar()
    try:
        yield bar
    finally:
        bar.stop()


SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="only buckets starting after: 7d, 12h, 30m, or an ISO date/time"),
]
UntilOpt = Annotated[
    str | None, typer.Option("--until", help="only buckets starting before: as --since")
]


@app.command()
def top(
    n: Annotated[int, typer.Argument(min=1, help="how many")] = 20,
    since: SinceOpt = None,
    until: UntilOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """The N most frequent tokens: rank, token, count, share of all tokens (of the
    window's, with --since/--until)."""
    fmt = _fmt(as_json, as_csv)
    store = _reader(config, db)
    with _clean_errors():
        rows = top_since(store, n, since, until) if since or until else store.top(n)
    emit(["rank", "token", "count", "share"], [list(r.values()) for r in rows], fmt)


@app.command()
def count(
    words: Annotated[list[str], typer.Argument(help="tokens to look up")],
    since: SinceOpt = None,
    until: UntilOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """How often each WORD was counted (0 if never), in the window if one is given."""
    fmt = _fmt(as_json, as_csv)
    store = _reader(config, db)
    with _clean_errors():
        windowed = since or until
        rows = count_since(store, words, since, until) if windowed else store.lookup(words)
    emit(["token", "count", "share"], [list(r.values()) for r in rows], fmt)


@app.command()
def trend(
    words: Annotated[list[str], typer.Argument(help="tokens to follow")],
    since: SinceOpt = None,
    until: UntilOpt = None,
    by: Annotated[
        str | None, typer.Option("--by", help="hour, day, week or month (default: as kept)")
    ] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Each WORD's count and share per bucket, zeros included (a sparkline per word
    under the table)."""
    fmt = _fmt(as_json, as_csv)
    with _clean_errors():
        rows = trend_rows(_reader(config, db), words, since, until, by)
    emit(["bucket", "token", "count", "share"], [list(r.values()) for r in rows], fmt)
    if fmt == "table":
        for word in words:
            values = [r["count"] for r in rows if r["token"] == word]
            typer.echo(f"{word}  {sparkline(values)}  {sum(values)}")


@app.command()
def rising(
    window: Annotated[str, typer.Option("--window", help="the recent window")] = "1d",
    against: Annotated[str, typer.Option("--against", help="the window before it")] = "7d",
    min_count: Annotated[int, typer.Option("--min-count", min=1, help="in the window")] = 5,
    limit: Annotated[int, typer.Option("--limit", min=1, help="how many")] = 20,
    until: Annotated[
        str | None, typer.Option("--until", help="the window ends here (default: now)")
    ] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Words whose rate in the last --window grew most against the --against before
    it, scored by log-likelihood (G2); words new in the window included."""
    fmt = _fmt(as_json, as_csv)
    with _clean_errors():
        rows = rising_rows(_reader(config, db), window, against, min_count, limit, until=until)
    columns = ["rank", "token", "count", "share", "reference_count", "reference_share", "g2"]
    emit(columns, [list(r.values()) for r in rows], fmt)


@app.command()
def stats(config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Files counted and not, total and distinct tokens, database size, last merge."""
    values = _reader(config, db).stats()
    if as_json:
        typer.echo(json.dumps(values, indent=1))
    else:
        for key, value in values.items():
            typer.echo(f"{key:18} {value}")


@app.command()
def files(
    status: Annotated[
        str | None, typer.Option(help="only this status: counted, skipped, failed, moved, linked")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many rows")] = None,
    host: Annotated[str | None, typer.Option(help="only the files of this host_id")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """The ledger: every file seen, its size, tokens, status, reason and host."""
    fmt = _fmt(as_json, as_csv)
    rows = _reader(config, db).files(status, limit, host)
    columns = ["path", "size", "tokens", "status", "reason", "encoding", "counted_at", "host"]
    emit(columns, [[r[c] for c in columns] for r in rows], fmt)


@app.command()
def status(config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Is a daemon running on this database, and what is it doing?

    Alive means it holds the database's writer lock (the kernel drops the
    lock when a process dies, however it dies); the details come from the
    status file it refreshes every 2 s. Exit status 0 if running, 3 if not.
    """
    cfg = _config(config, db)
    with _clean_errors():
        writers = writer_statuses(cfg.db)
    many = is_url(cfg.db)  # PostgreSQL: a line per host; the exit status is this host's
    mine = [w for w in writers if not many or w["host"] == cfg.host_id]
    running = any(w["writer_pid"] is not None for w in mine)
    if as_json:
        one = mine[0] if mine else {"writer_pid": None}
        shown = {"running": running, "hosts": writers} if many else {"running": running, **one}
        typer.echo(json.dumps(shown, indent=1))
    else:
        for w in writers or [{"host": cfg.host_id, "writer_pid": None}]:
            prefix = f"{w['host']}: " if many else ""
            typer.echo(prefix + _status_line(w, redact_location(cfg.db)))
    if not running:
        raise typer.Exit(3)


def _status_line(info: dict[str, object], location: str) -> str:
    holder = info["writer_pid"]
    problem = info.get("writer_problem")
    if holder is not None and info.get("pid") == holder:
        return (
            f"running: pid {holder} since {info['started_at']}; backlog {info['backlog']}, "
            f"in flight {info['in_flight']}, held {info.get('held', 0)} files, "
            f"{info['counted_since_start']} files counted "
            f"since start ({info['files_per_second']} files/s); last merge {info['last_merge']}"
            + (f"; the database cannot take merges: {problem}" if problem else "")
        )
    if holder is not None:
        return f"running: pid {holder} holds {location} (a one-shot ingest, or starting up)"
    last = f"; last seen {info['state']} at {info['updated_at']}" if info.get("state") else ""
    return f"not running on {location}{last}"


@app.command()
def copy(
    source: Annotated[str, typer.Option("--from", help="the database to copy (a SQLite file)")],
    target: Annotated[str, typer.Option("--to", help="the database to copy into (a URL)")],
    add: Annotated[bool, typer.Option(help="add to a target that already holds counts")] = False,
    host: Annotated[
        str | None, typer.Option(help="file the ledger under this host_id (default: config's)")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Copy a database's totals, ledger and settings into another, in one transaction.

    Moving up: `copy --from streamcount.db --to postgresql://…` files the
    ledger under this host's id, so its daemon, pointed at the new database,
    counts nothing again.
    """
    cfg = _config(config)
    host_id = host or cfg.host_id
    with _clean_errors():
        done = copy_store(_db(source), _db(target), host_id, add)
    typer.echo(
        f"copied {done['files']:,} ledger rows (host {host_id!r}), "
        f"{done['distinct_tokens']:,} distinct tokens, {done['total_tokens']:,} tokens "
        f"into {redact_location(_db(target))}"
    )


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="one SELECT statement")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    timeout: Annotated[
        float | None, typer.Option(help=f"seconds before it is stopped [default: {SQL.timeout:g}]")
    ] = None,
    memory: Annotated[
        int | None, typer.Option(help=f"MiB of memory it may use [default: {SQL.memory_mb}]")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help=f"rows printed at most [default: {SQL.rows:,}]")
    ] = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Run one read-only SQL query, bounded in time, memory and rows.

    Anything that would write is refused. The flags may raise the bounds up
    to the maxima in the config's [sql] section.
    """
    from .sqlchild import run_query

    fmt = _fmt(as_json, as_csv)
    cfg = _config(config, db)
    maxima = Bounds(cfg.sql_max_timeout, cfg.sql_max_memory_mb, cfg.sql_max_rows)
    bounds = Bounds(
        timeout if timeout is not None else min(SQL.timeout, maxima.timeout),
        memory if memory is not None else min(SQL.memory_mb, maxima.memory_mb),
        limit if limit is not None else min(SQL.rows, maxima.rows),
    )
    with _clean_errors(), _quiet_broken_pipe():
        bounds.within(maxima)
        if is_url(cfg.db):  # the server bounds time and memory; rows stream, cut here
            cut = _sql_postgres(cfg.db, query, bounds, fmt)
        else:
            result = run_query(cfg.db, query, bounds, maxima)
            with contextlib.closing(result):
                emit(result.columns, result.rows, fmt)
            cut = result.cut
        if cut:
            typer.echo(
                f"streamcount: the first {bounds.rows:,} rows are shown and the rest cut "
                f"(--limit N shows more, up to {maxima.rows:,})",
                err=True,
            )


def _sql_postgres(url: str, sql: str, bounds: Bounds, fmt: str) -> bool:
    """`sql` on PostgreSQL: READ ONLY, statement_timeout, rows streamed and cut at
    `bounds.rows` (store/postgres.py `query`); whether rows were cut."""
    from .store.postgres import query

    store = open_store(url)
    try:
        columns, rows = query(store, sql, bounds.timeout)  # type: ignore[arg-type]
        shown = itertools.islice(rows, bounds.rows)
        emit(columns, shown, fmt)
        cut = next(rows, None) is not None
        rows.close()  # type: ignore[attr-defined]
        return cut
    finally:
        store.close()


@contextlib.contextmanager
def _quiet_broken_pipe() -> Iterator[None]:
    """`… | head`: the reader has what it wanted; stop without a traceback."""
    try:
        yield
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python flushes stdout at exit
        raise typer.Exit(141) from None


def main() -> None:
    app()


plot_app = typer.Typer(no_args_is_help=True, help="Pictures: zipf, trend, rising (PNG or SVG).")
app.add_typer(plot_app, name="plot")
OutOpt = Annotated[Path, typer.Option("-o", "--output", help="a .png or .svg file")]
WidthOpt = Annotated[int, typer.Option("--width", min=100, help="pixels")]
HeightOpt = Annotated[int, typer.Option("--height", min=100, help="pixels")]


@contextlib.contextmanager
def _plot_errors() -> Iterator[None]:
    from .plots import PlotError

    try:
        with _clean_errors():
            yield
    except PlotError as exc:
        typer.echo(f"streamcount: {exc}", err=True)
        raise typer.Exit(2) from None


@plot_app.command("zipf")
def plot_zipf(
    output: OutOpt, n: Annotated[int, typer.Option("--top", min=2)] = 10_000,
    width: WidthOpt = 800, height: HeightOpt = 500, config: ConfigOpt = None, db: DbOpt = None,
) -> None:  # fmt: skip
    """Rank against count of the top tokens, log-log, with the fitted Zipf exponent."""
    from . import plots

    with _plot_errors():
        plots.plot_zipf(_reader(config, db).top(n), output, width, height)


@plot_app.command("trend")
def plot_trend(
    words: Annotated[list[str], typer.Argument(help="tokens to follow")], output: OutOpt,
    since: SinceOpt = None, until: UntilOpt = None,
    by: Annotated[str | None, typer.Option("--by")] = None,
    width: WidthOpt = 800, height: HeightOpt = 500, config: ConfigOpt = None, db: DbOpt = None,
) -> None:  # fmt: skip
    """One line per WORD: its count per bucket."""
    from . import plots

    with _plot_errors():
        rows = trend_rows(_reader(config, db), words, since, until, by)
        plots.plot_trend(rows, words, output, width, height)


@plot_app.command("rising")
def plot_rising(
    output: OutOpt, window: Annotated[str, typer.Option("--window")] = "1d",
    against: Annotated[str, typer.Option("--against")] = "7d",
    min_count: Annotated[int, typer.Option("--min-count", min=1)] = 5,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 20, until: UntilOpt = None,
    width: WidthOpt = 800, height: HeightOpt = 500, config: ConfigOpt = None, db: DbOpt = None,
) -> None:  # fmt: skip
    """The rising words as bars of their G2 score."""
    from . import plots

    with _plot_errors():
        rows = rising_rows(_reader(config, db), window, against, min_count, limit, until=until)
        plots.plot_rising(rows, output, width, height)
