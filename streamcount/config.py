"""Load and validate config.toml into frozen dataclasses.

Every option, its default and its check live here, so the rest of the code
takes a `Config` and never looks at raw TOML. Errors name the file and key.
"""

from __future__ import annotations

import os
import socket
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .decoding import DECODE_ERRORS, REPLACE
from .timebuckets import PERIODS, TIMES, BucketSettings, TimeError, parse_duration, zone

ENV_VAR = "STREAMCOUNT_CONFIG"
MODES = ("accurate", "search", "full")
URL_SCHEMES = ("postgresql://", "postgres://")  # a PostgreSQL database; anything else: SQLite
SQLITE_SCHEME = "sqlite:///"


class ConfigError(Exception):
    """A config file or option is missing, malformed or out of range."""


@dataclass(frozen=True)
class WatchDir:
    """A directory to watch, and how its files are decoded."""

    path: Path
    encoding: str = "auto"
    decode_errors: str | None = None  # None: the global [discovery] decode_errors
    follow: bool = False  # growing files: lines counted as they arrive (follow.py)
    after: str = "keep"  # or "delete", "move:DIR": what to do once counted (inbox.py)
    on_delete: str = "keep"  # or "forget": a counted file removed is forgotten (ondelete.py)


@dataclass(frozen=True)
class TokenizerSettings:
    """Everything that changes which tokens a text yields.

    Totals made with different settings must never be mixed, so these are
    recorded in the database (see store.py) and checked on every open.
    """

    engine: str = "jieba"
    mode: str = "accurate"
    hmm: bool = True
    user_dict: tuple[Path, ...] = ()
    stopwords: Path | None = None
    lowercase: bool = False
    min_length: int = 1


@dataclass(frozen=True)
class Config:
    db: Path | str = Path("streamcount.db")  # a SQLite file, or a postgresql:// URL
    host_id: str = field(default_factory=socket.gethostname)  # whose ledger we keep
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    log_level: str = "INFO"
    log_format: str = "text"
    metrics_port: int = 0
    metrics_address: str = "127.0.0.1"
    watch: tuple[WatchDir, ...] = ()
    decode_errors: str = REPLACE
    include: tuple[str, ...] = ("*.txt", "*.txt.gz", "*.txt.bz2", "*.txt.xz", "*.txt.zst")
    exclude: tuple[str, ...] = (".*", "*.tmp", "*.part", "*.swp", "*~")
    settle_seconds: float = 2.0
    rescan_seconds: float = 60.0
    follow_idle_seconds: float = 300.0  # a followed file's last line without a newline
    batch_max_files: int = 4000
    batch_max_bytes: int = 64 * 1024 * 1024
    batch_max_wait: float = 0.5
    chunk_bytes: int = 8 * 1024 * 1024
    tokenizer: TokenizerSettings = TokenizerSettings()
    buckets: BucketSettings = BucketSettings()  # noqa: RUF009 (frozen)
    # The most an analyst's `streamcount sql` may ask for with its flags.
    sql_max_timeout: float = 300.0
    sql_max_memory_mb: int = 2048
    sql_max_rows: int = 1_000_000
    # [cluster]: tokenize on a Dask cluster instead of the local pool (docs/scale-out.md).
    cluster_scheduler: str = ""  # "tcp://host:8786"; "": the local process pool
    cluster_shared_filesystem: bool = False  # workers read the paths themselves
    cluster_max_bytes_in_flight: int = 256 * 1024 * 1024  # file bytes sent, not yet back
    cluster_fallback: str = "none"  # "local": count locally while the scheduler is away
    # Each counted file's own counts kept in the database, so `forget` can take
    # back a file that changed or is gone (forget.py).
    keep_file_counts: bool = False

    def override(self, **changes: Any) -> Config:
        """Return a copy with the given fields replaced; None means keep."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def decode_errors_of(self, root: WatchDir) -> str:
        """How bad bytes are handled under `root`: its own setting, else the global one."""
        return root.decode_errors or self.decode_errors


def _positive(kind: type) -> Any:
    def check(value: Any) -> str | None:
        return None if value > 0 else f"must be a positive {kind.__name__}"

    return check


def _finite_positive(value: float) -> str | None:
    return None if 0 < value < float("inf") else "must be a positive, finite number"


def _log_level(value: str) -> str | None:
    levels = ("DEBUG", "INFO", "WARNING", "ERROR")
    return None if value.upper() in levels else f"must be one of {', '.join(levels)}"


def _one_of(*choices: str) -> Any:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def _problem_of(parse: Any) -> Any:
    """A check from a parser that raises TimeError: its message is the problem."""

    def check(value: str) -> str | None:
        try:
            parse(value)
        except TimeError as exc:
            return str(exc)
        return None

    return check


_mode = _one_of(*MODES)
_decode_errors = _one_of(*DECODE_ERRORS)


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a port number, or 0 for off"


def encoding_problem(value: str) -> str | None:
    """Why `value` is not "auto" or a codec that decodes bytes to text, or None.

    A codec that exists is not enough: rot13, base64 or zlib are codecs too,
    and a worker would fail on every file."""
    if value == "auto":
        return None
    try:
        b"\n".decode(value)
    except LookupError as exc:
        if "not a text encoding" in str(exc):
            return f"{value!r} is not a text encoding"
        return f"unknown encoding {value!r}"
    except UnicodeDecodeError:
        pass  # a text encoding; one byte is simply not enough for it (UTF-16)
    return None


# section -> key -> (expected type, extra check or None)
_SCHEMA: dict[str, dict[str, tuple[Any, Any]]] = {
    "": {
        "db": (str, None),
        "host_id": (str, lambda v: None if v.strip() else "must not be empty"),
        "workers": (int, _positive(int)),
        "log_level": (str, _log_level),
        "log_format": (str, _one_of("text", "json")),
        "metrics_port": (int, _port),
        "metrics_address": (str, None),
        "keep_file_counts": (bool, None),
    },
    "discovery": {
        "watch": (list, None),
        "decode_errors": (str, _decode_errors),
        "include": (list, None),
        "exclude": (list, None),
        "settle_seconds": (float, _positive(float)),
        "rescan_seconds": (float, _positive(float)),
        "follow_idle_seconds": (float, _positive(float)),
    },
    "batching": {
        "batch_max_files": (int, _positive(int)),
        "batch_max_bytes": (int, _positive(int)),
        "batch_max_wait": (float, _positive(float)),
        "chunk_bytes": (int, _positive(int)),
    },
    "tokenizer": {
        "engine": (str, _one_of("jieba", "jieba-rs")),
        "mode": (str, _mode),
        "hmm": (bool, None),
        "user_dict": (list, None),
        "stopwords": (str, None),
        "lowercase": (bool, None),
        "min_length": (int, _positive(int)),
    },
    "buckets": {
        "period": (str, _one_of(*PERIODS)),
        "time": (str, _one_of(*TIMES)),
        "timezone": (str, _problem_of(zone)),
        "keep": (str, _problem_of(parse_duration)),
    },
    "cluster": {
        "scheduler": (str, None),
        "shared_filesystem": (bool, None),
        "max_bytes_in_flight": (int, _positive(int)),
        "fallback": (str, _one_of("none", "local")),
    },
    "sql": {
        "max_timeout": (float, _finite_positive),
        "max_memory_mb": (int, _positive(int)),
        "max_rows": (int, _positive(int)),
    },
}


def _buckets(values: dict[str, Any]) -> BucketSettings:
    keep = values.get("keep")
    return BucketSettings(
        period=values.get("period", "day"),
        time=values.get("time", "counted"),
        timezone=values.get("timezone", "UTC"),
        keep_seconds=parse_duration(keep) if keep else None,
    )


def is_url(db: Path | str) -> bool:
    """Whether `db` names a PostgreSQL database (else it is a SQLite file)."""
    return isinstance(db, str) and db.startswith(URL_SCHEMES)


def parse_db(value: str, base: Path) -> Path | str:
    """The `db` key or `--db`: a postgresql:// URL as it is; a path, or
    `sqlite:///path`, as a path relative to `base`."""
    if is_url(value):
        return value
    value = value.removeprefix(SQLITE_SCHEME) if value.startswith(SQLITE_SCHEME) else value
    return (base / os.path.expanduser(value)).resolve()


def find_config_file(explicit: Path | None) -> Path | None:
    """`--config`, else $STREAMCOUNT_CONFIG, else ./config.toml if present, else None."""
    if explicit is not None:
        return explicit
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    local = Path("config.toml")
    return local if local.is_file() else None


def load_config(explicit: Path | None = None) -> Config:
    """Find and load the config file; built-in defaults when there is none."""
    path = find_config_file(explicit)
    if path is None:
        return Config()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path) -> Config:
    """Validate a parsed TOML document; relative paths are taken from the file's folder."""
    values = _check(raw, path)
    base = path.resolve().parent

    def resolve(p: str) -> Path:
        return (base / os.path.expanduser(p)).resolve()

    top = values[""]
    disc = values["discovery"]
    tok = values["tokenizer"]
    defaults = Config()
    tokenizer = TokenizerSettings(
        engine=tok.get("engine", "jieba"),
        mode=tok.get("mode", "accurate"),
        hmm=tok.get("hmm", True),
        user_dict=tuple(
            resolve(p) for p in _strings(tok.get("user_dict", []), path, "tokenizer.user_dict")
        ),
        stopwords=resolve(tok["stopwords"]) if tok.get("stopwords") else None,
        lowercase=tok.get("lowercase", False),
        min_length=tok.get("min_length", 1),
    )
    watch = tuple(_watch_dirs(disc.get("watch", []), path, resolve))
    keep_file_counts = top.get("keep_file_counts", defaults.keep_file_counts)
    if any(w.on_delete == "forget" and w.after != "keep" for w in watch):
        raise ConfigError(
            f"{path}: 'discovery.watch.on_delete' = \"forget\" cannot go with an 'after' that "
            "empties the folder (it would forget every file it counts)"
        )
    if any(w.on_delete == "forget" for w in watch) and not keep_file_counts:
        raise ConfigError(
            f"{path}: 'discovery.watch.on_delete' = \"forget\" needs keep_file_counts = true "
            "(a deleted file cannot be counted again to take it back)"
        )
    return Config(
        db=parse_db(top["db"], base) if "db" in top else defaults.db,
        host_id=top.get("host_id", defaults.host_id),
        workers=top.get("workers", defaults.workers),
        log_level=top.get("log_level", defaults.log_level).upper(),
        log_format=top.get("log_format", defaults.log_format),
        metrics_port=top.get("metrics_port", defaults.metrics_port),
        metrics_address=top.get("metrics_address", defaults.metrics_address),
        keep_file_counts=keep_file_counts,
        watch=watch,
        decode_errors=disc.get("decode_errors", defaults.decode_errors),
        include=tuple(_strings(disc.get("include", defaults.include), path, "discovery.include")),
        exclude=tuple(_strings(disc.get("exclude", defaults.exclude), path, "discovery.exclude")),
        settle_seconds=disc.get("settle_seconds", defaults.settle_seconds),
        rescan_seconds=disc.get("rescan_seconds", defaults.rescan_seconds),
        follow_idle_seconds=disc.get("follow_idle_seconds", defaults.follow_idle_seconds),
        tokenizer=tokenizer,
        buckets=_buckets(values["buckets"]),
        **values["batching"],
        **{f"sql_{key}": value for key, value in values["sql"].items()},
        **{f"cluster_{key}": value for key, value in values["cluster"].items()},
    )


def _check(raw: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    """Split the document into sections, refusing unknown keys and wrong types."""
    out: dict[str, dict[str, Any]] = {name: {} for name in _SCHEMA}
    for key, value in raw.items():
        if key in _SCHEMA and key and isinstance(value, dict):
            section, items = key, value
        else:
            section, items = "", {key: value}
        for name, val in items.items():
            where = f"{section}.{name}" if section else name
            spec = _SCHEMA[section].get(name)
            if spec is None:
                raise ConfigError(f"{path}: unknown key '{where}'")
            kind, extra = spec
            if kind is float and isinstance(val, int) and not isinstance(val, bool):
                val = float(val)
            if not isinstance(val, kind) or (kind is int and isinstance(val, bool)):
                raise ConfigError(
                    f"{path}: '{where}' must be {kind.__name__}, not {type(val).__name__}"
                )
            problem = extra(val) if extra else None
            if problem:
                raise ConfigError(f"{path}: '{where}' {problem} (got {val!r})")
            out[section][name] = val
    return out


def _strings(values: Any, path: Path, where: str) -> list[str]:
    if not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{path}: '{where}' must be a list of strings")
    return list(values)


def after_problem(value: str) -> str | None:
    """What is wrong with a watch entry's `after` value (see inbox.py), or None."""
    if value in ("keep", "delete") or (value.startswith("move:") and value[5:].strip()):
        return None
    return 'must be "keep", "delete" or "move:DIR"'


def _watch_dirs(entries: list[Any], path: Path, resolve: Any) -> list[WatchDir]:
    dirs = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ConfigError(
                f"{path}: 'discovery.watch' entries are paths or "
                "{ path = ..., encoding = ..., decode_errors = ..., follow = ... }"
            )
        keys = {"path", "encoding", "decode_errors", "follow", "after", "on_delete"}
        unknown = set(entry) - keys
        if unknown:
            raise ConfigError(f"{path}: unknown key 'discovery.watch.{sorted(unknown)[0]}'")
        checks = {
            "encoding": encoding_problem, "decode_errors": _decode_errors, "after": after_problem,
            "on_delete": _one_of("keep", "forget"),
        }
        for key, check in checks.items():
            value = entry.get(key)
            problem = check(value) if isinstance(value, str) else "must be a string"
            if key in entry and problem:
                raise ConfigError(f"{path}: 'discovery.watch.{key}' {problem} (got {value!r})")
        if not isinstance(entry.get("follow", False), bool):
            raise ConfigError(f"{path}: 'discovery.watch.follow' must be true or false")
        encoding = entry.get("encoding", "auto")
        follow = entry.get("follow", False)
        after = entry.get("after", "keep")
        if after.startswith("move:"):
            after = f"move:{resolve(after.removeprefix('move:'))}"
        on_delete = entry.get("on_delete", "keep")
        dirs.append(
            WatchDir(
                resolve(entry["path"]), encoding, entry.get("decode_errors"), follow, after,
                on_delete,
            )
        )  # fmt: skip
    return dirs


def watch_dirs_from_flags(paths: list[Path]) -> tuple[WatchDir, ...]:
    """`--watch DIR` flags, relative to the working directory, auto encoding."""
    return tuple(WatchDir(p.resolve()) for p in paths)
