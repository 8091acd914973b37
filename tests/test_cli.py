"""The CLI as users run it: a real subprocess, real output formats and exit codes."""

import csv
import io
import json
import shutil
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from .helpers import db_counts, db_ledger, doubling_ctes, make_text, reference_counts


def cli(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "streamcount", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def counted(tmp_path_factory):
    import random

    tmp = tmp_path_factory.mktemp("cli")
    rng = random.Random(7)
    texts = [make_text(rng) for _ in range(12)]
    (tmp / "in").mkdir()
    for i, text in enumerate(texts):
        (tmp / "in" / f"{i}.txt").write_text(text, encoding="utf-8")
    (tmp / "in" / "bin.txt").write_bytes(b"\0\1\2")
    db = tmp / "db.sqlite"
    result = cli("ingest", tmp / "in", "--db", db, "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "12 files counted, 1 skipped, 0 failed, 0 already counted" in result.stdout
    return db, reference_counts(texts)


def test_ingest_twice_counts_nothing_twice(counted, tmp_path):
    shared, ref = counted
    db = tmp_path / "db.sqlite"  # a copy: the module's database stays as it was
    shutil.copy(shared, db)
    result = cli("ingest", shared.parent / "in", "--db", db)
    assert "0 files counted, 0 skipped, 0 failed, 13 already counted" in result.stdout
    assert db_counts(db) == ref
    assert sorted(db_ledger(db).values()) == ["counted"] * 12 + ["skipped"]


def test_top_formats(counted):
    db, ref = counted
    total = sum(ref.values())
    expected = sorted(ref.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    rows = json.loads(cli("top", "5", "--db", db, "--json").stdout)
    assert [(r["token"], r["count"]) for r in rows] == expected
    assert rows[0]["rank"] == 1 and rows[0]["share"] == pytest.approx(expected[0][1] / total)
    table = list(csv.reader(io.StringIO(cli("top", "5", "--db", db, "--csv").stdout)))
    assert table[0] == ["rank", "token", "count", "share"]
    assert [(r[1], int(r[2])) for r in table[1:]] == expected
    text = cli("top", "--db", db).stdout.splitlines()
    assert text[0].split() == ["rank", "token", "count", "share"] and len(text) == 21


def test_count_stats_files(counted):
    db, ref = counted
    word = max(ref, key=ref.get)
    rows = json.loads(cli("count", word, "不存在的词", "--db", db, "--json").stdout)
    assert [(r["token"], r["count"]) for r in rows] == [(word, ref[word]), ("不存在的词", 0)]
    stats = json.loads(cli("stats", "--db", db, "--json").stdout)
    assert stats["files_counted"] == 12 and stats["files_not_counted"] == 1
    assert stats["total_tokens"] == sum(ref.values()) and stats["distinct_tokens"] == len(ref)
    skipped = json.loads(cli("files", "--status", "skipped", "--db", db, "--json").stdout)
    assert [r["path"].rsplit("/", 1)[1] for r in skipped] == ["bin.txt"]
    assert "binary" in skipped[0]["reason"]


def test_sql(counted):
    db, ref = counted
    out = cli("sql", "SELECT sum(count) AS n FROM counts", "--db", db, "--json")
    assert json.loads(out.stdout) == [{"n": sum(ref.values())}]
    refused = cli("sql", "DELETE FROM counts", "--db", db)
    assert refused.returncode == 2
    assert "refused" in refused.stderr and "Traceback" not in refused.stderr
    stats = json.loads(cli("stats", "--db", db, "--json").stdout)
    assert stats["total_tokens"] == sum(ref.values())


def test_sql_streams_every_format_and_says_when_it_cuts(counted, tmp_path):
    db, _ = counted
    rows = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25) "
    out = cli("sql", rows + "SELECT i, 'é' AS e FROM n", "--db", db, "--json", "--limit", 20)
    assert json.loads(out.stdout) == [{"i": i, "e": "é"} for i in range(1, 21)]
    assert out.returncode == 0
    assert "the first 20 rows are shown and the rest cut (--limit N shows more" in out.stderr
    table = cli("sql", rows + "SELECT i FROM n", "--db", db, "--csv").stdout.splitlines()
    assert table == ["i", *map(str, range(1, 26))]
    empty = cli("sql", "SELECT token FROM counts WHERE 0", "--db", db, "--json")
    assert json.loads(empty.stdout) == [] and empty.stderr == ""
    config = tmp_path / "max.toml"
    config.write_text("[sql]\nmax_timeout = 5.0\nmax_rows = 10\n")
    capped = cli("sql", rows + "SELECT i FROM n", "--db", db, "--config", config)
    assert capped.returncode == 0 and len(capped.stdout.splitlines()) == 11
    assert "the first 10 rows are shown" in capped.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["SELECT 1", "--timeout", "inf"], "--timeout inf is not allowed: it must be above 0"),
        (["SELECT 1", "--timeout", "6", "--config", "{max}"], "at most 5 (the server's maximum"),
        (["SELECT 1", "--memory", "999999"], "--memory 999999 is not allowed"),
        (["SELECT 1", "--limit", "0"], "--limit 0 is not allowed"),
        ([b"SELECT '\xff'"], "the query is not valid UTF-8 (byte 0xff at character 8)"),
        (["SELECT 1", "--db", "/etc/passwd"], "cannot read /etc/passwd: file is not a database"),
        (["SELECT zeroblob(999999999)"], "a string or blob longer than 64 MiB"),
        (["VACUUM temp INTO '/tmp/never.db'"], "refused: `streamcount sql` runs read-only"),
        ([doubling_ctes(30), "--memory", "64"], "it needs more than 64 MiB of memory"),
    ],
)
def test_sql_failures_are_one_line_and_exit_2(counted, tmp_path, args, message):
    db, _ = counted
    config = tmp_path / "max.toml"
    config.write_text("[sql]\nmax_timeout = 5.0\n")
    args = [a.replace("{max}", str(config)) if isinstance(a, str) else a for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "streamcount", "sql", "--db", str(db), *args],
        capture_output=True, timeout=60,
    )  # fmt: skip
    err = result.stderr.decode()
    assert result.returncode == 2 and err.startswith("streamcount: ") and message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_top_and_stats_on_a_file_that_is_not_a_database():
    for command in ("top", "stats", "files"):
        result = cli(command, "--db", "/etc/passwd")
        assert result.returncode == 2
        assert result.stderr == "streamcount: cannot read /etc/passwd: file is not a database\n"


def test_sql_into_a_closed_pipe_ends_quietly(counted):
    db, _ = counted
    rows = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000000) "
    sql = f"'{rows}SELECT i FROM n' --db {db} --limit 1000000"
    command = f"{sys.executable} -m streamcount sql {sql}"
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} | head -3"], capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.stdout.split() == ["i", "1", "2"]
    assert result.returncode == 141 and result.stderr == ""


def test_clear_errors(tmp_path):
    missing = cli("top", "--db", tmp_path / "none.db")
    assert missing.returncode == 2 and "no database at" in missing.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("colour = 'blue'\n")
    result = cli("run", "--config", bad)
    assert result.returncode == 2
    assert f"{bad}: unknown key 'colour'" in result.stderr and "Traceback" not in result.stderr
    nowatch = cli("run", "--watch", tmp_path / "nope", "--db", tmp_path / "x.db")
    assert nowatch.returncode == 2 and "does not exist" in nowatch.stderr


def test_python_dash_m_and_config_discovery(tmp_path):
    (tmp_path / "config.toml").write_text('db = "found.db"\n')
    result = cli("top", cwd=tmp_path)
    assert result.returncode == 2 and f"no database at {tmp_path / 'found.db'}" in result.stderr


def test_the_console_script_does_not_load_the_cli_into_every_worker():
    # A "spawn" worker re-runs the parent's main script: for the installed
    # `streamcount` command, that is an import of its entry point's module.
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "streamcount"]
    module = script.value.split(":")[0]
    code = (
        f"import sys, {module}; heavy = {{'typer', 'click', 'sqlite_utils'}} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
