"""Deterministic failure points for tests: die here as a SIGKILL would, or raise.

`STREAMCOUNT_FAILPOINTS` is a comma-separated list of `name` or
`name=text`; with `text`, the point fires only when its detail (a path, for
instance) contains that text. Unset in production: then `hit` costs one
dictionary lookup.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

ENV = "STREAMCOUNT_FAILPOINTS"


def _parse(spec: str) -> dict[str, str]:
    points = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, text = item.partition("=")
        points[name] = text
    return points


_POINTS = _parse(os.environ.get(ENV, ""))


def armed(name: str, detail: str | Iterable[str] = "") -> bool:
    """Whether `name` is armed for `detail`: a string, or strings (any of them),
    looked at only when the point is armed, so a caller on a hot path can pass
    every path of a batch without building anything in production."""
    text = _POINTS.get(name)
    if text is None:
        return False
    return any(text in d for d in ((detail,) if isinstance(detail, str) else detail))


def hit(name: str, detail: str = "") -> None:
    """Exit at once (status 137, no clean-up) if failpoint `name` is armed for `detail`."""
    if armed(name, detail):
        os._exit(137)


def fail(
    name: str, detail: str | Iterable[str] = "", error: type[Exception] = RuntimeError
) -> None:
    """Raise `error` if failpoint `name` is armed for `detail` (a bug or a refusal, simulated)."""
    if armed(name, detail):
        raise error(f"failpoint {name}: {_POINTS[name]}")
