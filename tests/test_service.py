"""Service behaviour: the systemd notify protocol and `streamcount status`."""

import contextlib
import json
import os
import signal
import socket
import threading

import pytest

from streamcount.notify import Notifier

from .helpers import (
    db_counts,
    db_ledger,
    make_text,
    reference_counts,
    wait_until,
    write_config,
)
from .test_cli import cli


class NotifyListener:
    """A unix datagram socket standing in for systemd; keeps every message."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self.running = True
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        while self.running:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def fields(self) -> list[str]:
        return [f for m in list(self.messages) for f in m.split("\n")]

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_notify_ready_status_watchdog_stopping_in_order(tmp_path, rng, daemon_factory, abstract):
    address = f"@streamcount-test-{os.getpid()}" if abstract else str(tmp_path / "notify.sock")
    listener = NotifyListener(address)
    try:
        env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"}
        daemon = daemon_factory(env=env).start()
        wait_until(lambda: "READY=1" in listener.fields(), what="READY=1")
        (tmp_path / "inbox" / "a.txt").write_text(make_text(rng))
        wait_until(
            lambda: any(f.startswith("STATUS=1 files counted") for f in listener.fields()),
            what="a STATUS line with the file counted",
        )
        wait_until(lambda: listener.fields().count("WATCHDOG=1") >= 3, what="watchdog pings")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
        wait_until(lambda: "STOPPING=1" in listener.fields(), what="STOPPING=1")
    finally:
        listener.close()
    fields = listener.fields()
    ready, stopping = fields.index("READY=1"), fields.index("STOPPING=1")
    first_status = next(i for i, f in enumerate(fields) if f.startswith("STATUS="))
    first_ping = fields.index("WATCHDOG=1")
    assert ready < first_ping < stopping and first_status <= ready + 1
    assert "WATCHDOG=1" not in fields[stopping:]


def test_notifier_outside_systemd_and_watchdog_ownership(tmp_path):
    quiet = Notifier({})
    assert quiet.watchdog_interval is None
    quiet.send("READY=1")  # no socket: nothing to send to, and no error
    ours = Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "3000000",
                     "WATCHDOG_PID": str(os.getpid())})  # fmt: skip
    assert ours.watchdog_interval == 1.5  # half the timeout
    theirs = Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"})
    assert theirs.watchdog_interval is None  # the watchdog is another process's
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    gone.send("READY=1")  # a socket that is not there is logged, not raised
    for n in (quiet, ours, theirs, gone):
        n.close()


def test_status_command(tmp_path, rng, daemon_factory):
    db = tmp_path / "db.sqlite"
    daemon = daemon_factory().start()
    (tmp_path / "inbox" / "a.txt").write_text(make_text(rng))
    wait_until(lambda: db_ledger(db), what="the file counted")

    def status():
        return cli("status", "--db", db, "--json")

    wait_until(lambda: json.loads(status().stdout).get("counted_since_start") == 1, what="status")
    running = status()
    info = json.loads(running.stdout)
    assert running.returncode == 0
    assert info["running"] and info["pid"] == info["writer_pid"] == daemon.pid
    assert info["state"] == "running" and info["backlog"] == 0 and info["last_merge"]
    assert info["held"] == 0  # the one file's counts were handed over with it: merged
    text = cli("status", "--db", db)
    assert text.returncode == 0 and f"running: pid {daemon.pid} since" in text.stdout
    assert "held 0 files" in text.stdout

    daemon.kill()  # no chance to update its status file: the lock tells the truth
    dead = cli("status", "--db", db)
    assert dead.returncode == 3
    assert "not running" in dead.stdout and "last seen running" in dead.stdout

    again = daemon_factory().start()
    assert again.stop() == 0
    stopped = cli("status", "--db", db)
    assert stopped.returncode == 3 and "last seen stopped" in stopped.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[str, float]:
    """The samples of a Prometheus text page, by name and labels."""
    from urllib.request import urlopen

    with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_endpoint(tmp_path, rng, daemon_factory):
    port = free_port()
    daemon = daemon_factory(metrics_port=port).start()
    inbox, db = tmp_path / "inbox", tmp_path / "db.sqlite"
    texts = [make_text(rng) for _ in range(3)]
    for i, text in enumerate(texts):
        (inbox / f"{i}.txt").write_text(text)
    (inbox / "bin.txt").write_bytes(b"\0\0")
    wait_until(lambda: len(db_ledger(db)) == 4, what="the files")
    samples = wait_until(
        lambda: (s := scrape(port)).get('streamcount_files_total{status="counted"}') == 3 and s,
        what="the counted files in the metrics",
    )
    assert samples['streamcount_files_total{status="skipped"}'] == 1
    assert samples['streamcount_files_total{status="failed"}'] == 0
    assert samples["streamcount_bytes_total"] == sum(len(t.encode()) for t in texts) + 2
    assert samples["streamcount_tokens_total"] == sum(reference_counts(texts).values())
    assert samples["streamcount_batch_seconds_count"] >= 1
    assert samples["streamcount_merge_seconds_count"] >= 1
    assert samples["streamcount_backlog"] == 0
    assert samples["streamcount_workers_alive"] == 2
    assert daemon.stop() == 0


def listening_ports(pid: int) -> set[int]:
    """TCP ports on which process `pid` holds a listening socket (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_metrics_off_by_default(daemon_factory):
    daemon = daemon_factory().start()
    assert listening_ports(daemon.pid) == set()
    assert daemon.stop() == 0


def test_metrics_port_is_listened_on_when_set(daemon_factory):
    port = free_port()
    daemon = daemon_factory(metrics_port=port).start()
    wait_until(lambda: listening_ports(daemon.pid) == {port}, what="the metrics port")
    assert daemon.stop() == 0


def test_sighup_reloads_watched_folders_and_refuses_tokenizer_changes(
    tmp_path, rng, daemon_factory
):
    inbox, second, db = tmp_path / "inbox", tmp_path / "second", tmp_path / "db.sqlite"
    second.mkdir()
    config = tmp_path / "config.toml"
    daemon = daemon_factory().start()
    counted = {}

    def drop(path):
        counted[path] = make_text(rng)
        path.write_text(counted[path])

    def reload(watch, expect, **settings):
        write_config(config, watch, db, **settings)
        seen = sum(expect in line for line in daemon.log)
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: sum(expect in line for line in daemon.log) > seen, what=expect)

    reload([inbox, second], "config reloaded; watching")
    drop(second / "x.txt")
    wait_until(lambda: str(second / "x.txt") in db_ledger(db), what="a file in the added folder")

    reload([second], "config reloaded; watching", rescan_seconds=0.3, log_level="DEBUG")
    (inbox / "unwatched.txt").write_text(make_text(rng))
    drop(second / "y.txt")  # written after: were inbox still watched, this comes second
    wait_until(lambda: str(second / "y.txt") in db_ledger(db), what="y.txt")
    rescans = sum("rescanned" in line for line in daemon.log)
    wait_until(
        lambda: sum("rescanned" in line for line in daemon.log) >= rescans + 2,
        what="two full rescans, which would find it if the folder were still watched",
    )
    assert str(inbox / "unwatched.txt") not in db_ledger(db)

    reload([second], "reload refused: tokenizer cannot change while running", mode="search")
    drop(second / "z.txt")
    wait_until(lambda: str(second / "z.txt") in db_ledger(db), what="z.txt")
    assert daemon.stop() == 0
    assert db_counts(db) == reference_counts(counted.values())  # accurate mode throughout


def test_json_logs_one_object_a_line(tmp_path, rng, daemon_factory):
    db = tmp_path / "db.sqlite"
    daemon = daemon_factory(log_format="json").start()
    (tmp_path / "inbox" / "a.txt").write_text(make_text(rng))
    (tmp_path / "inbox" / "bad.txt").write_bytes(b"\xfd\x81\x30\xff\xfe\x80" * 10)
    wait_until(lambda: len(db_ledger(db)) == 2, what="both files")
    wait_until(lambda: daemon.saw("merged"), what="the batch line")
    assert daemon.stop() == 0
    entries = [json.loads(line) for line in daemon.log]
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in entries)
    failed = [e for e in entries if e["level"] == "WARNING" and "bad.txt" in e["message"]]
    assert failed and "failed: not valid UTF-8, GB18030 or Big5" in failed[0]["message"]
    assert any(e["level"] == "INFO" and e["message"].startswith("merged ") for e in entries)
