"""Many hosts, one set of totals: real daemons (one per host_id, each on its own
inbox) into one real PostgreSQL, checked against the reference count."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from .helpers import DaemonProcess, make_text, reference_counts, wait_until, write_config

BAD_SIGNS = ("deadlock", "could not serialize", "Traceback", "merge refused")


def pg_counts(url: str) -> Counter[str]:
    import psycopg  # here: without it the pg_server fixture skips (fails in CI)

    with psycopg.connect(url) as conn:
        return Counter(dict(conn.execute("SELECT token, count FROM counts")))


def pg_ledger(url: str) -> list[tuple[str, str, str]]:
    """(host, path, status) of every ledger row; [] before the schema exists."""
    import psycopg

    with psycopg.connect(url) as conn:
        if not conn.execute("SELECT to_regclass('files') IS NOT NULL").fetchone()[0]:
            return []
        return conn.execute("SELECT host, path, status FROM files").fetchall()


def feed(
    inbox: Path, texts: list[str], pace: float = 0.01, part: slice = slice(None)
) -> threading.Thread:
    """Write the files (`part` of them) one by one, written aside and renamed in."""

    def run() -> None:
        for i, text in list(enumerate(texts))[part]:
            tmp = inbox / f".{i}.txt"
            tmp.write_text(text)
            tmp.rename(inbox / f"{i}.txt")
            time.sleep(pace)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


class Hosts:
    """A daemon per host_id, each with its inbox and config, all on `url`."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp, self.url = tmp_path, url
        self.started: list[DaemonProcess] = []

    def daemon(self, host: str, **settings: object) -> DaemonProcess:
        inbox = self.tmp / host
        inbox.mkdir(exist_ok=True)
        settings = {"workers": 1, "batch_max_files": 20, "host_id": host} | settings
        config = write_config(self.tmp / f"{host}.toml", inbox, self.url, **settings)  # type: ignore[arg-type]
        daemon = DaemonProcess(config)
        self.started.append(daemon)
        return daemon

    def stop_all(self) -> None:
        for d in self.started:
            if d.proc is not None and d.proc.poll() is None:
                d.kill()


@pytest.fixture
def hosts(tmp_path, pg_url):
    h = Hosts(tmp_path, pg_url)
    yield h
    h.stop_all()


def assert_exact(url: str, expected: dict[str, list[str]], logs: str) -> None:
    """Totals = reference of every host's files; each file once in its host's ledger."""
    ledger = pg_ledger(url)
    assert Counter((h, p) for h, p, _ in ledger).most_common(1)[0][1] == 1
    assert {(h, s) for h, _, s in ledger} == {(h, "counted") for h in expected}
    assert Counter(h for h, _, _ in ledger) == {h: len(t) for h, t in expected.items()}
    assert pg_counts(url) == reference_counts(t for texts in expected.values() for t in texts)
    for sign in BAD_SIGNS:
        assert sign not in logs


def test_three_hosts_into_one_database_are_exact(hosts, rng):
    names = ("h1", "h2", "h3")
    texts = {h: [make_text(rng, paragraphs=rng.randint(1, 6)) for _ in range(120)] for h in names}
    texts["h3"][:10] = texts["h1"][:10]  # the same files on two hosts: counted on each
    daemons = [hosts.daemon(h).start() for h in names]
    feeds = [feed(hosts.tmp / h, texts[h]) for h in names]
    for f in feeds:
        f.join()
    total = sum(len(t) for t in texts.values())
    wait_until(lambda: len(pg_ledger(hosts.url)) == total, 180, "every file on every host")
    assert [d.stop() for d in daemons] == [0, 0, 0]
    assert_exact(hosts.url, texts, "".join(d.text() for d in daemons))


def test_a_host_killed_again_and_again_mid_stream_stays_exact(hosts, rng):
    names = ("h1", "h2")
    texts = {h: [make_text(rng, paragraphs=rng.randint(1, 6)) for _ in range(150)] for h in names}
    steady = hosts.daemon("h1").start()
    victim = hosts.daemon("h2").start()
    feeds = [feed(hosts.tmp / h, texts[h], pace=0.03) for h in names]
    logs = []
    for kill in range(1, 4):
        wait_until(
            lambda k=kill: sum(h == "h2" for h, _, _ in pg_ledger(hosts.url)) >= 25 * k,
            120, f"h2 to count more before kill {kill}",
        )  # fmt: skip
        victim.signal(signal.SIGKILL)
        victim.wait()
        counted = sum(h == "h2" for h, _, _ in pg_ledger(hosts.url))
        assert counted < len(texts["h2"]), "the kill came too late to test anything"
        logs.append(victim.text())
        victim = hosts.daemon("h2").start()  # its advisory lock went with its session
    for f in feeds:
        f.join()
    wait_until(lambda: len(pg_ledger(hosts.url)) == 300, 180, "every file on both hosts")
    assert steady.stop() == 0 and victim.stop() == 0
    assert_exact(hosts.url, texts, "".join([*logs, steady.text(), victim.text()]))


def test_the_server_restarting_and_away_mid_stream_loses_nothing(hosts, pg_server, rng):
    """`pg_ctl restart -m fast` while files stream in, then the server stopped
    while more arrive, until the daemons have retried a few times: they hold
    their work, say so once each way, never exit, and end exact."""
    names = ("h1", "h2")
    texts = {h: [make_text(rng, paragraphs=rng.randint(1, 6)) for _ in range(150)] for h in names}
    daemons = [hosts.daemon(h, log_level="DEBUG").start() for h in names]

    def stream(part: slice) -> None:
        feeds = [feed(hosts.tmp / h, texts[h], pace=0.01, part=part) for h in names]
        for f in feeds:
            f.join()

    stream(slice(0, 50))
    wait_until(lambda: len(pg_ledger(hosts.url)) >= 40, 120, "some files counted")
    restart = threading.Thread(target=pg_server.restart)
    restart.start()  # while the next files stream in
    stream(slice(50, 100))
    restart.join()
    wait_until(lambda: len(pg_ledger(hosts.url)) == 200, 120, "counting after the restart")
    pg_server.pause()
    try:
        stream(slice(100, 150))
        wait_until(
            lambda: all(d.saw("merge try 3 failed") for d in daemons), 60, "a few retries"
        )
        assert all(d.proc.poll() is None for d in daemons)
    finally:
        pg_server.resume()
    wait_until(lambda: len(pg_ledger(hosts.url)) == 300, 180, "every file on both hosts")
    assert all(d.proc.poll() is None for d in daemons)  # never exited
    assert [d.stop() for d in daemons] == [0, 0]
    for d in daemons:
        down, up = d.text().count("cannot take merges"), d.text().count("takes merges again")
        assert 1 <= down == up <= 2, d.text()  # one line each way per outage, not per try
    assert_exact(hosts.url, texts, "".join(d.text() for d in daemons))


def test_a_second_daemon_with_the_same_host_id_is_refused(hosts):
    first = hosts.daemon("h1").start()
    second = hosts.daemon("h1")
    second.start(wait_ready=False)
    assert second.wait() == 2
    assert "host_id 'h1' is already being written" in second.text()
    assert "Traceback" not in second.text()
    assert first.proc.poll() is None and first.stop() == 0


def test_other_tokenizer_settings_are_refused_on_another_host(hosts, rng):
    first = hosts.daemon("h1").start()
    (hosts.tmp / "h1" / "a.txt").write_text(make_text(rng))
    wait_until(lambda: pg_ledger(hosts.url), 60, "a file counted")
    other = hosts.daemon("h2", mode="search")
    other.start(wait_ready=False)
    assert other.wait() == 2
    assert "other tokenizer settings (mode: 'accurate' in the database, 'search' now)" in (
        other.text()
    )
    assert first.stop() == 0


def test_no_password_in_logs_status_or_errors(hosts, pg_server, rng):
    name = hosts.url.rsplit("/", 1)[1]
    hosts.url = pg_server.url(name, password="s3cret-pw")  # trust: accepted, ignored
    daemon = hosts.daemon("h1").start()
    (hosts.tmp / "h1" / "a.txt").write_text(make_text(rng))
    wait_until(lambda: pg_ledger(hosts.url), 60, "a file counted")
    from .test_cli import cli

    wait_until(lambda: "running: pid" in cli("status", "--config", daemon.config).stdout, 30)
    status = cli("status", "--config", daemon.config, "--json")
    second = hosts.daemon("h1")
    second.start(wait_ready=False)
    second.wait()
    import psycopg

    with psycopg.connect(hosts.url) as conn:
        published = str(conn.execute("SELECT status FROM hosts").fetchall())
    assert daemon.stop() == 0
    assert status.returncode == 0 and '"running": true' in status.stdout
    for text in (daemon.text(), status.stdout, status.stderr, second.text(), published):
        assert "s3cret" not in text
    assert "streamcount:***@" in second.text()


def test_query_commands_say_the_same_on_both_backends(tmp_path, pg_url, rng):
    """`ingest` the same folder into SQLite and into PostgreSQL: top, count, stats
    and files print the same (but for the database's size and the clock)."""
    import json

    from .test_cli import cli

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(40):
        (folder / f"{i}.txt").write_text(make_text(rng, paragraphs=rng.randint(1, 5)))
    (folder / "bin.txt").write_bytes(b"\x00\x01binary")
    sqlite = tmp_path / "db.sqlite"
    for db in (sqlite, pg_url):
        done = cli("ingest", folder, "--db", db, "--workers", "1")
        assert done.returncode == 0, done.stderr

    def outputs(db: Path | str) -> list[object]:
        stats = json.loads(cli("stats", "--json", "--db", db).stdout)
        del stats["database_bytes"], stats["last_merge"]
        files = json.loads(cli("files", "--json", "--db", db).stdout)
        for f in files:
            del f["counted_at"]
        hosts = {f["host"] for f in files}
        mine = cli("files", "--host", min(hosts), "--csv", "--db", db).stdout
        return [
            cli("top", "30", "--db", db).stdout,
            cli("top", "30", "--json", "--db", db).stdout,
            cli("count", "北京", "中国", "的", "无此词", "--json", "--db", db).stdout,
            stats,
            sorted(files, key=lambda f: f["path"]),
            hosts,
            len(mine.splitlines()),
            cli("files", "--host", "nobody-here", "--csv", "--db", db).stdout,
        ]

    on_sqlite, on_postgres = outputs(sqlite), outputs(pg_url)
    assert on_sqlite == on_postgres
    assert on_sqlite[3]["files_counted"] == 40 and on_sqlite[3]["files_not_counted"] == 1
    assert on_sqlite[6] == 42  # a header and 41 files
