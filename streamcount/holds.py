"""The parent's record of the tasks whose counts wait in a worker's hold.

A worker adds a `hold` task's counts to its hold (tokens.Hold) and sends back
only the task's results per file. Those results wait here, by slot (one
worker process each), until the worker hands its hold over: then the counts
and the ledger rows of exactly those tasks go into one merge. A hold that is
lost (its worker died, or dropped it) is never merged: its tasks are counted
again. So each file's counts reach the database once, with its ledger row.

Pure bookkeeping: no I/O; time comes in as `now`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .work import Task, TaskResult


@dataclass(slots=True)
class _Slot:
    since: float  # when its oldest held task came back
    done: list[tuple[Task, TaskResult]] = field(default_factory=list)
    bytes: int = 0


class Holds:
    def __init__(self, max_seconds: float, max_bytes: int) -> None:
        """A hold is due to be handed over once it is `max_seconds` old or holds the
        counts of `max_bytes` of files (a worker's memory grows with it)."""
        self.max_seconds = max_seconds
        self.max_bytes = max_bytes
        self._slots: dict[int, _Slot] = {}

    def __bool__(self) -> bool:
        return bool(self._slots)

    def slots(self) -> list[int]:
        """The slots whose worker holds counts."""
        return list(self._slots)

    def files(self) -> int:
        """How many files' counts wait in the workers' holds, not yet merged."""
        return sum(len(r.pieces) for held in self._slots.values() for _, r in held.done)

    def keep(self, slot: int, task: Task, result: TaskResult, now: float) -> None:
        """`result` came back `held`: its counts are in the hold of `slot`'s worker."""
        held = self._slots.setdefault(slot, _Slot(now))
        held.done.append((task, result))
        held.bytes += _bytes(result)

    def due(self, slot: int, now: float) -> bool:
        held = self._slots.get(slot)
        if held is None:
            return False
        return now - held.since >= self.max_seconds or held.bytes >= self.max_bytes

    def take(self, slot: int, handed: tuple[int, ...], last: Task) -> list[tuple[Task, TaskResult]]:
        """The held results that counts handed over by `slot` with task `last` are
        of: `handed` names them (and `last`). ValueError if they are not exactly
        what is held there: the counts must then not be merged."""
        held = self._slots.pop(slot, _Slot(0.0))
        ids = [task.id for task, _ in held.done]
        if sorted(handed) != sorted([*ids, last.id]):
            self._slots[slot] = held
            raise ValueError(f"tasks {sorted(handed)} handed over, {sorted(ids)} held")
        return held.done

    def lose(self, slot: int, ids: tuple[int, ...] | None = None) -> list[Task]:
        """The tasks of `slot`'s hold (or of those of `ids`), which will not be handed
        over: to be counted again."""
        held = self._slots.pop(slot, None)
        if held is None:
            return []
        if ids is None:
            return [task for task, _ in held.done]
        lost = [task for task, _ in held.done if task.id in ids]
        kept = [(task, result) for task, result in held.done if task.id not in ids]
        if kept:
            self._slots[slot] = _Slot(held.since, kept, sum(_bytes(r) for _, r in kept))
        return lost


def _bytes(result: TaskResult) -> int:
    """The bytes of the files a held result is of."""
    return sum(r.bytes for r in result.pieces)
