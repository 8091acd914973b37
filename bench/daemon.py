"""Start `streamcount run` for a benchmark and wait until it is watching."""

from __future__ import annotations

import subprocess
import sys
import threading


def start_with(flags: list[str]) -> subprocess.Popen[str]:
    """`streamcount run` with `flags`, returned once it logs that it is watching.

    The rest of its log is drained on a thread so it never blocks on a full pipe.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamcount", "run", *flags], stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "watching" in line:
            break
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    return proc
