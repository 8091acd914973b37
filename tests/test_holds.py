"""Counts held by a worker across tasks: handed over whole, merged once, and
counted again (never twice) when the worker that holds them dies."""

import logging
import os
import signal
import time

import pytest

from streamcount import failpoints
from streamcount.config import Config, TokenizerSettings
from streamcount.discovery import file_ref
from streamcount.holds import Holds
from streamcount.pipeline import open_pipeline
from streamcount.tokens import Hold, Tokenizer
from streamcount.work import COUNTED, FAILED, Piece, PieceResult, Task, TaskResult

from .helpers import db_counts, db_ledger, make_text, reference_counts


def _files(folder, rng, n, prefix="f"):
    folder.mkdir(exist_ok=True)
    texts = {}
    for i in range(n):
        path = folder / f"{prefix}{i:03d}.txt"
        path.write_text(text := make_text(rng))
        texts[str(path)] = text
    return texts


def _task(task_id, paths, hand_over=False):
    pieces = tuple(Piece(file_ref(p, os.stat(p), "auto")) for p in paths)
    return Task(task_id, pieces, hold=True, hand_over=hand_over)


def test_a_hold_handed_over_is_the_counts_of_its_tasks(tmp_path, rng):
    texts = _files(tmp_path, rng, 9)
    paths = sorted(texts)
    hold = Hold(Tokenizer(TokenizerSettings()))
    first = hold.count(_task(1, paths[:3]))
    second = hold.count(_task(2, paths[3:6]))
    last = hold.count(_task(3, paths[6:], hand_over=True))
    assert first.held and second.held and first.counts == second.counts == {}
    assert last.handed == (1, 2, 3) and not last.held
    assert last.counts == reference_counts(texts.values())
    assert [r.tokens for r in first.pieces + second.pieces + last.pieces] == [
        sum(reference_counts([texts[p]]).values()) for p in paths
    ]
    again = hold.count(_task(4, paths[:1], hand_over=True))  # the hold starts empty again
    assert again.handed == (4,) and again.counts == reference_counts([texts[paths[0]]])


def test_a_piece_failing_in_the_tokenizer_drops_the_hold_and_says_which(
    tmp_path, rng, monkeypatch
):
    texts = _files(tmp_path, rng, 6)
    paths = sorted(texts)
    poison = tmp_path / "poison.txt"
    poison.write_text(make_text(rng))
    monkeypatch.setitem(failpoints._POINTS, "worker-count", "poison")
    hold = Hold(Tokenizer(TokenizerSettings()))
    assert hold.count(_task(1, paths[:3])).held
    result = hold.count(_task(2, [*paths[3:], str(poison)]))
    assert result.lost == (1,) and not result.held and not result.handed
    assert result.counts == reference_counts(texts[p] for p in paths[3:])  # task 2 alone
    assert [r.status for r in result.pieces] == [COUNTED, COUNTED, COUNTED, FAILED]
    assert hold.count(_task(3, paths[:1], hand_over=True)).handed == (3,)


def _held(task_id, size):
    return TaskResult(task_id, {}, (PieceResult("p", COUNTED, "", size, 1, "utf-8"),), held=True)


def test_holds_are_due_by_age_or_size_and_taken_only_whole():
    holds = Holds(max_seconds=1.0, max_bytes=100)
    a, b, c = Task(1, ()), Task(2, ()), Task(3, ())
    holds.keep(0, a, _held(1, 40), now=10.0)
    holds.keep(0, b, _held(2, 40), now=10.5)
    assert not holds.due(0, now=10.9) and holds.due(0, now=11.0)
    holds.keep(0, c, _held(3, 40), now=10.6)
    assert holds.due(0, now=10.6)  # 120 bytes
    assert holds.files() == 3  # a file a task: what `status` shows as held
    with pytest.raises(ValueError):
        holds.take(0, (1, 3, 9), Task(9, ()))  # 2 is held too: none of it may be merged
    assert holds.slots() == [0]
    assert holds.lose(0, (2,)) == [b] and holds.files() == 2
    assert not holds.due(0, now=10.6)  # 80 bytes left
    assert [t for t, _ in holds.take(0, (1, 3, 9), Task(9, ()))] == [a, c]
    assert not holds and holds.lose(0) == []


def _worker_pids(pipeline):
    """The process of each slot of the local pool (concurrent.futures keeps them)."""
    return {slot: list(pool._processes) for slot, pool in enumerate(pipeline._pool._pools)}


def test_a_worker_killed_while_it_holds_counts_loses_nothing_and_doubles_nothing(
    tmp_path, rng, caplog
):
    texts = _files(tmp_path / "in", rng, 300)
    config = Config(db=tmp_path / "db.sqlite", workers=2, batch_max_files=5)
    caplog.set_level(logging.WARNING, logger="streamcount.pipeline")
    with open_pipeline(config) as pipeline:
        now = time.monotonic()
        for path in texts:
            pipeline.add(file_ref(path, os.stat(path), "auto"), now)
        deadline = time.monotonic() + 60
        killed = None
        while pipeline.busy and time.monotonic() < deadline:
            pipeline.pump(0.05)
            holding = [s for s in pipeline._holds.slots() if s not in pipeline._handing]
            if killed is None and holding:
                assert pipeline.held > 0  # what `status` shows
                killed = holding[0]
                for pid in _worker_pids(pipeline)[killed]:
                    os.kill(pid, signal.SIGKILL)
        assert not pipeline.busy, "the pipeline did not finish"
    assert killed is not None, "no worker ever held counts"
    assert "tasks held by a worker are counted again: its worker process died" in caplog.text
    ledger = db_ledger(config.db)
    assert set(ledger) == set(texts) and set(ledger.values()) == {COUNTED}
    assert db_counts(config.db) == reference_counts(texts.values())
