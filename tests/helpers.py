"""Shared helpers: sample texts, the reference count, a real daemon subprocess.

The oracle for every count is the plainest one possible: `jieba.cut` over
the decoded text of each file, the filter as the README states it (written
here again, not imported: a wrong filter must not agree with itself),
`collections.Counter`.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import jieba
import pytest

jieba.setLogLevel(logging.WARNING)

SENTENCES = [
    "新华社北京一月一日电，国家主席在人民大会堂发表新年贺词。",
    "今年我国经济保持平稳增长，粮食产量再创历史新高。",
    "上海浦东新区的高新技术企业数量比去年增加了百分之二十。",
    "记者从铁道部获悉，春运期间全国铁路将增开临时旅客列车。",
    "科学家们在南极考察中发现了新的冰川运动规律！",
    "他说：“我们要坚持改革开放，推动经济社会全面发展。”",
    "北京大学和清华大学联合举办了国际学术研讨会。",
    "这部电影讲述了一个普通家庭在城市化进程中的故事？",
    "中国足球队在亚洲杯比赛中以２比１战胜对手。",
    "Python 3.11 和 jieba 0.42.1 被用于处理 THUCNews 语料。",
    "天气预报说，明天长江中下游地区有小到中雨，气温下降５度。",
    "农民们利用互联网销售农产品，收入明显提高……",
    "人工智能、大数据、云计算正在改变各行各业。",
    "博物馆展出了三百多件珍贵文物，吸引了大量游客。",
    "研究表明，每天锻炼三十分钟有助于身体健康。",
    "The quick brown fox jumps over the lazy dog; 价格为 99.5 元。",
    "深圳市政府宣布将建设更多的公共图书馆和体育场馆。",
    "《人民日报》发表评论员文章，题为《团结奋斗 共创未来》。",
]


def make_text(rng: random.Random, paragraphs: int = 3, per_paragraph: int = 4) -> str:
    """A small article: paragraphs of sentences drawn from SENTENCES."""
    return "\n".join(
        "".join(rng.choice(SENTENCES) for _ in range(per_paragraph)) for _ in range(paragraphs)
    ) + "\n"


def countable(token: str) -> bool:
    """The README's rule: a token counts unless it is all whitespace, or all
    punctuation and symbols (Unicode categories P* and S*)."""
    if token.strip() == "":
        return False
    return any(unicodedata.category(ch)[0] not in "PS" for ch in token)


def reference_counts(texts: Iterable[str]) -> Counter[str]:
    """The oracle: jieba.cut token by token, the README's filter, Counter."""
    total: Counter[str] = Counter()
    for text in texts:
        total.update(t for t in jieba.cut(text) if countable(t))
    return total


def skip_or_fail(reason: str) -> None:
    """Skip, saying why; in CI (CI=true) fail instead: a skipped test proves nothing."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; in CI this test must run")
    pytest.skip(reason)


def doubling_ctes(levels: int) -> str:
    """A hostile query: a chain of CTEs, each twice the one before (exponential to compile)."""
    parts = ["a0(x) AS (SELECT 1)"] + [
        f"a{i}(x) AS (SELECT x FROM a{i - 1} UNION ALL SELECT x FROM a{i - 1})"
        for i in range(1, levels + 1)
    ]
    return f"WITH {', '.join(parts)} SELECT count(*) FROM a{levels}"


def db_counts(db: Path) -> Counter[str]:
    with sqlite3.connect(db) as conn:
        return Counter(dict(conn.execute("SELECT token, count FROM counts")))


def db_ledger(db: Path) -> dict[str, str]:
    """path -> status, for every file in the ledger."""
    if not db.exists():
        return {}
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT path, status FROM files"))
    except sqlite3.OperationalError:
        return {}  # not created yet
    finally:
        conn.close()


def wait_until(condition: Callable[[], object], timeout: float = 30.0, what: str = "") -> object:
    """Poll `condition` until it is truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.05)


def write_config(
    path: Path, watch: Path | list[Path], db: Path | str, **settings: object
) -> Path:
    """A config file for tests: quick settle and batching, 2 workers, then `settings`."""
    sections = {
        "discovery": ("settle_seconds", "rescan_seconds", "include", "exclude"),
        "batching": ("batch_max_wait", "batch_max_files", "batch_max_bytes", "chunk_bytes"),
        "tokenizer": ("mode", "hmm", "user_dict", "stopwords", "lowercase", "min_length"),
        "buckets": ("period", "time", "timezone", "keep"),
    }
    settings = {
        "workers": 2,
        "settle_seconds": 1.0,
        "batch_max_wait": 0.2,
        "batch_max_files": 50,
    } | settings
    in_section = {k for keys in sections.values() for k in keys}
    lines = [f'db = "{db}"']
    lines += [
        f"{k} = {_toml(v)}"
        for k, v in settings.items()
        if k not in in_section and not k.startswith("cluster_")
    ]
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        if section == "discovery":
            lines.append(f"watch = {_toml(watch if isinstance(watch, list) else [watch])}")
        lines += [f"{k} = {_toml(settings[k])}" for k in keys if k in settings]
    cluster = {k: v for k, v in settings.items() if k.startswith("cluster_")}
    if cluster:  # cluster_scheduler=... -> [cluster] scheduler = ...
        lines.append("[cluster]")
        lines += [f"{k.removeprefix('cluster_')} = {_toml(v)}" for k, v in cluster.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


class DaemonProcess:
    """`python -m streamcount run` as a real subprocess, with its stderr kept."""

    def __init__(
        self, config: Path, env: dict[str, str] | None = None, user: str | None = None
    ) -> None:
        self.config = config
        self.env = env
        self.user = user
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: list[str] = []

    def start(self, wait_ready: bool = True) -> DaemonProcess:
        self.log = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamcount", "run", "--config", str(self.config)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env={**os.environ, **(self.env or {})},
            user=self.user,
        )
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        if wait_ready:
            wait_until(lambda: self.saw("watching") or self.proc.poll() is not None, 60, "start")
            assert self.proc.poll() is None, self.text()
        return self

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log.append(line.decode(errors="replace"))

    def saw(self, needle: str) -> bool:
        return any(needle in line for line in list(self.log))

    def text(self) -> str:
        return "".join(self.log)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait()


