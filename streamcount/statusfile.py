"""What a running daemon is doing, for `streamcount status`.

The daemon rewrites `<db>.status` (JSON, atomically by rename) every couple
of seconds. Whether it is alive is not read from that file (a killed daemon
cannot update it) but from the writer lock, which the kernel releases when
the holder dies.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def status_path(db: Path) -> Path:
    return Path(f"{db}.status")


def write_status(db: Path, status: dict[str, Any]) -> None:
    path = status_path(db)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_status(db: Path) -> dict[str, Any] | None:
    try:
        return json.loads(status_path(db).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
