"""Throughput: streamcount against the speed limit and the ways people count today.

    python -m bench.throughput [--copies N] [--rounds R] [--quick] [--write FILE]

The corpus (bench/corpus.py) is cut into article files on disk. Every
contender runs in a fresh subprocess, all of them once per round, rounds
interleaved so the machine's drift cancels out; the table shows medians.
Each contender's totals are compared with baseline (a), token for token.

Contenders:
  limit   raw jieba.cut over the texts in one process, no counting; its rate
          times the number of cores is the speed nothing built on jieba beats
  parallel  the same raw cut in `cores` processes at once, each over its share:
          what this machine really gives when every core is busy
  counted   `parallel`, and each process also counts its tokens in a Counter:
          the ceiling for any counter built on jieba here, before reading a
          file, starting a process or writing anything
  a       one process, one dict, d[t] = d.get(t, 0) + 1 token by token
  b       one process, a dict per 1000 documents, merged into the total
  c       multiprocessing.Pool(cores) over 1000-document batches, parent merges
  d       jieba.enable_parallel(cores), then (a)
  ingest  `streamcount ingest` end to end: files on disk to totals in SQLite
  daemon  a running `streamcount run` draining the files dropped into its inbox
  limit-rs   raw rjieba (jieba-rs) cut in one process, times the number of cores
  counted-rs `counted` with rjieba
  read, read-rs  `counted` / `counted-rs`, each process reading its files from
          disk as streamcount's workers do (open, fstat, read, fstat again,
          fingerprint, decode): the ceiling for a counter that reads its files
          and knows which bytes it counted, before any parent, ledger or database
  ingest-rs  `streamcount ingest` with tokenizer engine "jieba-rs"
  daemon-rs  `daemon` with tokenizer engine "jieba-rs"
  steady     `streamcount run` started on an inbox that already holds the files
          (a backlog), and its steady state
  steady-rs  `steady` with jieba-rs, fed `--steady-copies` times the files

The steady state (start-up costs are paid once in a service's life) is shown
beside `counted` / `counted-rs`, their ceilings, per round: the MB/s of the
difference between a daemon started on half the backlog and one started on
all of it (see `_daemon`). With jieba-rs
the corpus ×10 is counted in about 5 seconds, so `steady-rs` is
fed `--steady-copies` times as many files (real copies: a hard link is the
same file to the ledger); its row says how many MB it counted.

Times are wall-clock, each process's start-up and jieba load included, except
`limit`, `parallel` and `counted` (the work alone, workers already loaded) and
`daemon` (already running when the files arrive).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from bench.corpus import CORPUS, ROOT, articles, write_files
from bench.daemon import start_with

CONTENDERS = (
    "limit", "parallel", "counted", "a", "b", "c", "d", "ingest", "daemon",
    "steady", "limit-rs", "counted-rs", "read", "read-rs", "ingest-rs", "daemon-rs",
    "steady-rs",
)  # fmt: skip
# What `make bench` runs: issue 12's figures, each beside its ceiling.
CEILINGS = (
    "counted", "read", "ingest", "daemon", "steady",
    "counted-rs", "read-rs", "ingest-rs", "daemon-rs", "steady-rs",
)  # fmt: skip
BATCH_DOCS = 1000
POLL_SECONDS = 0.05  # how often the daemon's ledger is read: a light load beside it
PART_OF_BACKLOG = 0.5  # the steady state is the difference from a run on this part


# -- the contenders, each run in its own process (--one NAME) ----------------


def _texts(folder: Path) -> Iterator[str]:
    for path in sorted(folder.rglob("*.txt")):
        yield path.read_text(encoding="utf-8")


def _keep():
    from streamcount.tokens import is_countable

    return is_countable


def _count_docs(docs: list[str]) -> dict[str, int]:
    import jieba

    keep = _keep()
    d: dict[str, int] = {}
    for doc in docs:
        for t in jieba.cut(doc):
            if keep(t):
                d[t] = d.get(t, 0) + 1
    return d


def _batches(folder: Path) -> Iterator[list[str]]:
    batch: list[str] = []
    for text in _texts(folder):
        batch.append(text)
        if len(batch) == BATCH_DOCS:
            yield batch
            batch = []
    if batch:
        yield batch


def _merge(total: dict[str, int], part: dict[str, int]) -> None:
    for t, n in part.items():
        total[t] = total.get(t, 0) + n


def _quiet_jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def _init_jieba() -> None:
    _quiet_jieba().initialize()


def _noop(_: object) -> None:
    time.sleep(0.2)


def _cut_only(docs: list[str]) -> None:
    import jieba

    for doc in docs:
        for _ in jieba.cut(doc):
            pass


def _cut_and_count(docs: list[str], rs: bool = False) -> dict[str, int]:
    """jieba's (or rjieba's) tokens of `docs`, counted in a Counter, then filtered."""
    if rs:
        import rjieba as engine
    else:
        import jieba as engine

    tally: Counter[str] = Counter()
    for doc in docs:
        tally.update(engine.cut(doc))
    keep = _keep()
    return {t: n for t, n in tally.items() if keep(t)}


def _read_cut_and_count(paths: list[str], rs: bool = False) -> dict[str, int]:
    """`_cut_and_count` of the files at `paths`, each read and decoded as a worker
    reads it (tokens.read_piece: the file's identity checked around the read)."""
    import os

    from streamcount.decoding import decode_with
    from streamcount.tokens import read_piece
    from streamcount.work import FileRef, Piece

    texts = []
    for path in paths:
        st = os.stat(path)
        data, _ = read_piece(Piece(FileRef(path, st.st_size, st.st_mtime_ns, st.st_ino)))
        texts.append(decode_with(data, "auto", "replace").text)
    return _cut_and_count(texts, rs)


def _init_rjieba() -> None:
    import rjieba  # noqa: F401  (builds its tokenizer on import)


def _timed(work: Callable[..., dict[str, int]], *args: object, **kwargs: object) -> tuple:
    """`work(...)`, and the CPU seconds this process spent on it."""
    cpu = time.process_time()
    return work(*args, **kwargs), time.process_time() - cpu


def _counted(
    folder: Path, cores: int, rs: bool, read: bool = False
) -> tuple[float, dict[str, int], float]:
    """Preloaded texts, warm workers; the clock runs over cutting, counting and
    summing the parts only (`read`: and over reading the files, in the workers).
    Also the CPU seconds of all the processes over the same span."""
    import multiprocessing

    docs = [str(p) for p in sorted(folder.rglob("*.txt"))] if read else list(_texts(folder))
    shares = [docs[i::cores] for i in range(cores)]
    work = partial(_timed, _read_cut_and_count if read else _cut_and_count, rs=rs)
    init = _init_rjieba if rs else _init_jieba
    with multiprocessing.get_context("fork").Pool(cores, initializer=init) as pool:
        pool.map(_noop, range(cores))
        started, cpu = time.perf_counter(), time.process_time()
        totals: Counter[str] = Counter()
        parts = pool.map(work, shares, chunksize=1)
        for part, _ in parts:
            totals.update(part)
        cpu = time.process_time() - cpu + sum(seconds for _, seconds in parts)
        return time.perf_counter() - started, dict(totals), cpu


def _children_cpu() -> float:
    """CPU seconds of the child processes waited for so far (and of theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one(name: str, folder: Path, cores: int, work: Path, scale: int = 1) -> dict:
    """Run contender `name`; return its seconds and a digest of its totals."""
    started = time.perf_counter()
    totals: dict[str, int] | None = None
    if name == "limit":
        jieba = _quiet_jieba()
        jieba.initialize()
        docs = list(_texts(folder))
        started = time.perf_counter()
        for doc in docs:
            for _ in jieba.cut(doc):
                pass
    elif name == "parallel":
        import multiprocessing

        docs = list(_texts(folder))
        shares = [docs[i::cores] for i in range(cores)]
        with multiprocessing.get_context("fork").Pool(cores, initializer=_init_jieba) as pool:
            pool.map(_noop, range(cores))  # every worker has loaded jieba
            started = time.perf_counter()
            pool.map(_cut_only, shares, chunksize=1)
    elif name in ("counted", "counted-rs", "read", "read-rs"):
        rs, read = name.endswith("-rs"), name.startswith("read")
        seconds, totals, cpu = _counted(folder, cores, rs=rs, read=read)
        return {"seconds": seconds, "digest": _digest(totals), "cpu": cpu}
    elif name == "a":
        _quiet_jieba()
        totals = _count_docs(list(_texts(folder)))
    elif name == "b":
        _quiet_jieba()
        totals = {}
        for batch in _batches(folder):
            _merge(totals, _count_docs(batch))
    elif name == "c":
        import multiprocessing

        totals = {}
        with multiprocessing.get_context("fork").Pool(cores, initializer=_quiet_jieba) as pool:
            for part in pool.imap_unordered(_count_docs, _batches(folder)):
                _merge(totals, part)
    elif name == "d":
        jieba = _quiet_jieba()
        jieba.enable_parallel(cores)
        totals = _count_docs(list(_texts(folder)))
        jieba.disable_parallel()
    elif name == "limit-rs":
        import rjieba

        docs = list(_texts(folder))
        started = time.perf_counter()
        for doc in docs:
            rjieba.cut(doc)
    elif name in ("ingest", "ingest-rs"):
        db = work / "ingest.db"
        config = work / "config.toml"
        engine = "jieba-rs" if name == "ingest-rs" else "jieba"
        config.write_text(f'[tokenizer]\nengine = "{engine}"\n')
        cpu = _children_cpu()
        subprocess.run(
            [sys.executable, "-m", "streamcount", "ingest", str(folder), "--db", str(db),
             "--workers", str(cores), "--config", str(config)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        cpu = _children_cpu() - cpu  # the command, its workers included
        return {"seconds": seconds, "digest": _digest(_db_counts(db)), "cpu": cpu}
    elif name in ("daemon", "daemon-rs", "steady", "steady-rs"):
        engine = "jieba-rs" if name.endswith("-rs") else "jieba"
        return _daemon(folder, cores, work, engine, scale, backlog=name.startswith("steady"))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "digest": _digest(totals) if totals is not None else None}


def _daemon(
    folder: Path, cores: int, work: Path, engine: str, scale: int = 1, backlog: bool = False
) -> dict:
    """Seconds for a running daemon to drain the files dropped into its inbox (or,
    `backlog`, from its start on an inbox that holds them). `scale`: the folder
    holds the corpus that many times over; the digest is of the totals divided
    by it (a total that does not divide gives no match).

    With `backlog` also the steady state: the daemon is first started on part
    of the files (PART_OF_BACKLOG of its folders), then, in a fresh inbox and
    database, on all; the MB/s of the difference is what it counts once its
    start-up and ramp-up are behind it, and before its last merge. (Bytes
    counted are seen only at commits, seconds apart under a backlog: a rate
    read off the ledger after the first 5 s would be off by a commit's worth.)
    """
    config = work / "config.toml"
    config.write_text(f'[tokenizer]\nengine = "{engine}"\n')
    whole = _drain(folder, sorted(folder.iterdir()), cores, work / "all", config, backlog)
    steady = None
    if backlog:
        subdirs = sorted(folder.iterdir())
        part = _drain(
            folder, subdirs[: max(1, int(len(subdirs) * PART_OF_BACKLOG))], cores,
            work / "part", config, backlog,
        )  # fmt: skip
        if whole["seconds"] > part["seconds"]:
            steady = (whole["mb"] - part["mb"]) / (whole["seconds"] - part["seconds"])
    db = work / "all" / "daemon.db"
    return {
        "seconds": whole["seconds"], "digest": _digest(_scaled(_db_counts(db), scale)),
        "steady_mbps": steady, "mb": whole["mb"],
    }  # fmt: skip


def _drain(
    folder: Path, subdirs: list[Path], cores: int, work: Path, config: Path, backlog: bool
) -> dict:
    """Seconds for the daemon to count `subdirs` of `folder`, and the MB counted."""
    inbox, db = work / "inbox", work / "daemon.db"
    inbox.mkdir(parents=True)
    expected = sum(1 for sub in subdirs for _ in sub.rglob("*.txt"))

    def drop() -> None:
        for sub in subdirs:  # hard links: instant
            shutil.copytree(sub, inbox / "drop" / sub.name, copy_function=os.link)

    if backlog:
        drop()
    started = time.perf_counter()
    proc = start_with(
        ["--watch", str(inbox), "--db", str(db), "--workers", str(cores), "--config", str(config)]
    )
    try:
        if not backlog:
            started = time.perf_counter()
            drop()
        while (done := _ledger(db))[0] < expected:
            time.sleep(POLL_SECONDS)
        ended = time.perf_counter()
    finally:
        proc.terminate()
        proc.wait()
    return {"seconds": ended - started, "mb": done[1] / 1e6}


def _scaled(totals: dict[str, int], scale: int) -> dict[str, int]:
    if any(n % scale for n in totals.values()):
        return {"(a total that is not a multiple of the copies)": 1}
    return {t: n // scale for t, n in totals.items()}


def _ledger(db: Path) -> tuple[int, int]:
    """(files in the ledger, bytes counted)."""
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT count(*), coalesce(sum(size), 0) FROM files").fetchone()
    except sqlite3.OperationalError:
        return 0, 0


def _db_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT token, count FROM counts"))


def _digest(totals: dict[str, int]) -> str:
    h = hashlib.sha256()
    for token, n in sorted(totals.items()):
        h.update(f"{token}\t{n}\n".encode())
    return h.hexdigest()[:16]


# -- the driver ----------------------------------------------------------------


def machine() -> dict[str, str]:
    import jieba

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "jieba": jieba.__version__,
        "sqlite": sqlite3.sqlite_version,
    }


def run_contender(name: str, folder: Path, cores: int, scale: int = 1) -> dict:
    with tempfile.TemporaryDirectory() as work:
        out = subprocess.run(
            [sys.executable, "-m", "bench.throughput", "--one", name, "--dir", str(folder),
             "--cores", str(cores), "--work", work, "--scale", str(scale)],
            check=True, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=10, help="corpus replicas (default 10)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--only", help="comma-separated contenders")
    parser.add_argument(
        "--steady-copies", type=int, default=8,
        help="steady-rs is fed this many times the files, to have a steady state (default 8)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a small slice, one round (CI)")
    parser.add_argument(
        "--ceilings", action="store_true",
        help="only issue 12's contenders, each beside its ceiling (make bench)",
    )  # fmt: skip
    parser.add_argument("--write", type=Path, help="write the table as markdown here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        result = one(args.one, args.dir, args.cores, args.work, args.scale)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result["children_peak_rss_mb"] = (
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        )
        print(json.dumps(result))
        return

    if not CORPUS.is_file():
        sys.exit(f"corpus not found at {CORPUS} (set STREAMCOUNT_CORPUS)")
    texts = articles(copies=1 if args.quick else args.copies)
    if args.quick:
        texts = texts[:300]
        args.rounds = 1
    names = args.only.split(",") if args.only else list(CONTENDERS)
    if args.ceilings:
        names = list(CEILINGS)
    size = sum(len(t.encode()) for t in texts)
    results: dict[str, list[dict]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "corpus"
        write_files(texts, folder)
        folders = {name: (folder, 1) for name in names}
        if "steady-rs" in names and args.steady_copies > 1 and not args.quick:
            folders["steady-rs"] = (Path(tmp) / "steady", args.steady_copies)
            write_files(texts * args.steady_copies, folders["steady-rs"][0])
        print(f"{len(texts)} files, {size / 1e6:.1f} MB, {args.cores} cores, "
              f"{args.rounds} rounds", flush=True)  # fmt: skip
        for r in range(args.rounds):
            for name in names:
                result = run_contender(name, folders[name][0], args.cores, folders[name][1])
                results[name].append(result)
                print(f"  round {r + 1}  {name:10} {result['seconds']:7.2f} s", flush=True)
    table = render(results, size, len(texts), args)
    print(table)
    if args.write:
        write_doc(args.write, table, args)
    digests = {rs[0]["digest"] for n, rs in results.items() if rs[0]["digest"]}
    if len(digests) > 1:
        sys.exit("totals differ between contenders")


def render(results: dict[str, list[dict]], size: int, files: int, args: argparse.Namespace) -> str:
    med = {n: statistics.median(r["seconds"] for r in rs) for n, rs in results.items()}
    limit_rate = size / 1e6 / med["limit"] * args.cores if "limit" in med else None
    rs_rate = size / 1e6 / med["limit-rs"] * args.cores if "limit-rs" in med else None
    base = results.get("a", [{}])[0].get("digest")
    lines = [
        f"{files} files, {size / 1e6:.1f} MB; median of {args.rounds} rounds",
        "",
        "| contender | seconds | MB/s | of limit | vs (a) | totals = (a) "
        "| peak RSS MB (self / children) |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]  # fmt: skip
    for name, rs in results.items():
        mb = statistics.median(r.get("mb", size / 1e6) for r in rs)
        rate = mb / med[name]
        if name.startswith("limit"):
            rate = limit_rate if name == "limit" else rs_rate
        ceiling = rs_rate if name.endswith("-rs") else limit_rate
        of_limit = f"{rate / ceiling:.0%}" if ceiling else "–"
        vs_a = f"{med['a'] / med[name]:.2f}×" if "a" in med and name != "limit" else "–"
        if name in ("parallel", "counted", "limit-rs", "counted-rs", "read", "read-rs"):  # ceilings
            vs_a = "–"
        digest = rs[0]["digest"]
        same = "–" if digest is None or base is None else ("yes" if digest == base else "NO")
        own = max(r["peak_rss_mb"] for r in rs)
        rss = f"{own:.0f} / {max(r['children_peak_rss_mb'] for r in rs):.0f}"
        label = {
            "limit": f"limit ({args.cores} × one core's raw cut)",
            "limit-rs": f"limit-rs ({args.cores} × one core's raw rjieba cut)",
        }.get(name, name)
        if abs(mb - size / 1e6) > 0.05:
            label += f" ({mb:.0f} MB)"
        lines.append(
            f"| {label} | {med[name]:.2f} | {rate:.2f} | {of_limit} | {vs_a} | {same} | {rss} |"
        )
    return "\n".join(lines + _ratio_lines(results, size, med) + _cpu_lines(results))


# (contender, its ceiling, the share issue 12 asks of it)
GOALS = (
    ("read", "counted", None), ("read-rs", "counted-rs", None),
    ("ingest", "counted", 0.95), ("ingest-rs", "counted-rs", 0.80),
    ("daemon", "counted", None), ("daemon-rs", "counted-rs", None),
    ("steady", "counted", 0.97), ("steady-rs", "counted-rs", 0.90),
)  # fmt: skip


def _ratio_lines(results: dict[str, list[dict]], size: int, med: dict[str, float]) -> list[str]:
    """Each contender's MB/s against its ceiling's, round by round (the machine
    drifts between rounds); for `steady`, its steady state."""
    lines = ["", "| contender | of its ceiling, per round | median | goal |"]
    lines.append("| --- | --- | ---: | ---: |")
    for name, ceiling, goal in GOALS:
        if name not in results or ceiling not in results:
            continue
        ratios = []
        for mine, top in zip(results[name], results[ceiling], strict=True):
            rate = mine.get("steady_mbps") if name.startswith("steady") else (
                mine.get("mb", size / 1e6) / mine["seconds"]
            )  # fmt: skip
            if rate:
                ratios.append(rate / (size / 1e6 / top["seconds"]))
        if not ratios:
            continue
        label = name
        if name.startswith("steady"):
            label += " (steady state)"
        shown = " / ".join(f"{r:.2f}" for r in ratios)
        wanted = f"≥ {goal:.2f}" if goal else "–"
        median = statistics.median(ratios)
        lines.append(f"| {label} vs {ceiling} | {shown} | {median:.2f} | {wanted} |")
    return lines if len(lines) > 3 else []


def _cpu_lines(results: dict[str, list[dict]]) -> list[str]:
    """The CPU seconds each contender spent, all its processes together, beside its
    ceiling's, round by round: a share that the machine's drift moves less than
    the wall clock, and that shows what the work beyond the ceiling's costs."""
    lines = ["", "| contender | CPU s, median | its ceiling's | ceiling's / its own, per round |"]
    lines.append("| --- | ---: | ---: | --- |")
    for name, ceiling, _ in GOALS:
        mine, top = results.get(name, []), results.get(ceiling, [])
        if not mine or not all("cpu" in r for r in mine + top):
            continue
        shares = " / ".join(f"{t['cpu'] / m['cpu']:.2f}" for m, t in zip(mine, top, strict=True))
        own, theirs = (statistics.median(r["cpu"] for r in rs) for rs in (mine, top))
        lines.append(f"| {name} vs {ceiling} | {own:.2f} | {theirs:.2f} | {shares} |")
    return lines if len(lines) > 2 else []


def write_doc(path: Path, table: str, args: argparse.Namespace) -> None:
    m = machine()
    head = (
        f"Machine: {m['cores']} cores, {m['cpu']}; Python {m['python']}, jieba {m['jieba']}, "
        f"SQLite {m['sqlite']}. Command: `python -m bench.throughput --copies {args.copies} "
        f"--rounds {args.rounds}`."
    )
    start, end = "<!-- throughput:start -->", "<!-- throughput:end -->"
    block = f"{start}\n{head}\n\n{table}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else f"# Benchmarks\n\n{block}\n"
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
