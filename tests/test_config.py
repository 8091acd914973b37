from pathlib import Path

import pytest

from streamcount.config import Config, ConfigError, WatchDir, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_when_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STREAMCOUNT_CONFIG", raising=False)
    assert load_config(None) == Config()


def test_full_file_resolves_paths_from_its_folder(tmp_path):
    path = write(
        tmp_path,
        """
db = "data/x.db"
workers = 3
[discovery]
watch = ["in", { path = "gbk", encoding = "gb18030" }]
settle_seconds = 1
[batching]
batch_max_files = 10
[tokenizer]
mode = "search"
hmm = false
user_dict = ["dict.txt"]
[sql]
max_timeout = 60
max_memory_mb = 1024
""",
    )
    cfg = load_config(path)
    assert cfg.db == tmp_path / "data/x.db"
    assert cfg.workers == 3
    assert cfg.watch == (WatchDir(tmp_path / "in"), WatchDir(tmp_path / "gbk", "gb18030"))
    assert cfg.settle_seconds == 1.0
    assert cfg.batch_max_files == 10
    assert cfg.tokenizer.mode == "search" and cfg.tokenizer.hmm is False
    assert cfg.tokenizer.user_dict == (tmp_path / "dict.txt",)
    assert (cfg.sql_max_timeout, cfg.sql_max_memory_mb, cfg.sql_max_rows) == (60.0, 1024, 1_000_000)


def test_env_var_names_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, "workers = 5\n")
    monkeypatch.setenv("STREAMCOUNT_CONFIG", str(path))
    assert load_config(None).workers == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n", "unknown key 'colour'"),
        ("[batching]\nbatch_size = 3\n", "unknown key 'batching.batch_size'"),
        ("workers = 0\n", "'workers' must be a positive int"),
        ('workers = "two"\n', "'workers' must be int, not str"),
        ("[tokenizer]\nmode = \"fast\"\n", "'tokenizer.mode' must be one of"),
        ("[tokenizer]\nhmm = 1\n", "'tokenizer.hmm' must be bool"),
        ('[discovery]\nwatch = [{ path = "x", encoding = "klingon" }]\n', "unknown encoding"),
        ("workers = \n", "not valid TOML"),
        ("[sql]\nmax_timeout = inf\n", "'sql.max_timeout' must be a positive, finite number"),
        ("[sql]\nmax_rows = 0\n", "'sql.max_rows' must be a positive int"),
        ('keep_file_counts = "yes"\n', "'keep_file_counts' must be bool, not str"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.toml")


def test_override_keeps_unset_values():
    cfg = Config(workers=4).override(workers=None, db=Path("/x.db"))
    assert cfg.workers == 4 and cfg.db == Path("/x.db")


def test_decode_errors_global_and_per_watch_entry(tmp_path):
    path = write(
        tmp_path,
        """
[discovery]
decode_errors = "strict"
watch = ["a", { path = "b", decode_errors = "replace" }]
""",
    )
    cfg = load_config(path)
    a, b = cfg.watch
    assert (cfg.decode_errors_of(a), cfg.decode_errors_of(b)) == ("strict", "replace")
    assert Config().decode_errors == "replace"


@pytest.mark.parametrize(
    "text",
    [
        '[discovery]\ndecode_errors = "ignore"\n',
        '[discovery]\nwatch = [{ path = "x", decode_errors = "ignore" }]\n',
    ],
)
def test_bad_decode_errors_is_refused(tmp_path, text):
    with pytest.raises(ConfigError, match="decode_errors' must be one of strict, replace"):
        load_config(write(tmp_path, text))


def test_keep_file_counts_is_off_unless_set(tmp_path):
    assert load_config(write(tmp_path, "workers = 1\n")).keep_file_counts is False
    assert load_config(write(tmp_path, "keep_file_counts = true\n")).keep_file_counts is True
