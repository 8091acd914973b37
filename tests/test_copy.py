"""Moving up: `streamcount copy --from x.db --to postgresql://…`, in one transaction."""

import json
import os
import socket

from .helpers import make_text
from .test_cli import cli


def outputs(db) -> dict[str, object]:
    stats = json.loads(cli("stats", "--json", "--db", db).stdout)
    del stats["database_bytes"]  # the only thing that differs
    return {
        "top": cli("top", "50", "--db", db).stdout,
        "stats": stats,
        "files": cli("files", "--csv", "--db", db).stdout,
        "count": cli("count", "北京", "的", "--json", "--db", db).stdout,
    }


def test_copy_to_postgres_is_identical_and_refuses_a_target_with_data(tmp_path, pg_url, rng):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(30):
        (folder / f"{i}.txt").write_text(make_text(rng))
    (folder / "bin.txt").write_bytes(b"\x00binary")
    (folder / os.fsdecode(b"not-utf8-\xff.txt")).write_text(make_text(rng))  # bytes, kept
    sqlite = tmp_path / "db.sqlite"
    assert cli("ingest", folder, "--db", sqlite, "--workers", "1").returncode == 0

    copied = cli("copy", "--from", sqlite, "--to", pg_url)
    assert copied.returncode == 0, copied.stderr
    assert "copied 32 ledger rows" in copied.stdout
    assert outputs(pg_url) == outputs(sqlite)  # also the ledger's times, and its host

    # The host's ledger came along: ingesting the folder again counts nothing.
    again = cli("ingest", folder, "--db", pg_url, "--workers", "1")
    assert "0 files counted" in again.stdout and "32 already counted" in again.stdout

    refused = cli("copy", "--from", sqlite, "--to", pg_url)
    assert refused.returncode == 2 and "already holds counts; give --add" in refused.stderr
    same_host = cli("copy", "--from", sqlite, "--to", pg_url, "--add")
    assert same_host.returncode == 2 and "unique" in same_host.stderr.lower()
    assert outputs(pg_url) == outputs(sqlite)  # both refusals changed nothing

    added = cli("copy", "--from", sqlite, "--to", pg_url, "--add", "--host", "elsewhere")
    assert added.returncode == 0, added.stderr
    doubled = json.loads(cli("count", "的", "--json", "--db", pg_url).stdout)[0]["count"]
    once = json.loads(cli("count", "的", "--json", "--db", sqlite).stdout)[0]["count"]
    assert doubled == 2 * once > 0
    hosts = cli("files", "--host", socket.gethostname(), "--csv", "--db", pg_url).stdout
    assert len(hosts.splitlines()) == 33  # a header and this host's 32 rows


def test_copy_refuses_other_tokenizer_settings(tmp_path, pg_url, rng):
    (tmp_path / "a.txt").write_text(make_text(rng))
    accurate, search = tmp_path / "a.db", tmp_path / "s.db"
    (tmp_path / "search.toml").write_text('[tokenizer]\nmode = "search"\n')
    assert cli("ingest", tmp_path / "a.txt", "--db", accurate).returncode == 0
    assert cli("ingest", tmp_path / "a.txt", "--db", search,
               "--config", tmp_path / "search.toml").returncode == 0  # fmt: skip
    assert cli("copy", "--from", accurate, "--to", pg_url).returncode == 0
    refused = cli("copy", "--from", search, "--to", pg_url, "--add", "--host", "h2")
    assert refused.returncode == 2
    assert "mode: 'accurate' in the database, 'search' in" in refused.stderr
