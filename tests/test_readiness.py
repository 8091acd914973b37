from types import SimpleNamespace

from streamcount.readiness import Readiness


def st(size: int, mtime: float) -> SimpleNamespace:
    """The two fields of os.stat_result that readiness looks at."""
    return SimpleNamespace(st_size=size, st_mtime_ns=int(mtime * 1e9))


def test_complete_event_is_ready_at_once():
    r = Readiness(2.0)
    assert r.offer("a", st(5, 100.0), now=0, wall=100.0, complete=True)


def test_old_file_found_by_scan_is_ready():
    r = Readiness(2.0)
    assert r.offer("a", st(5, 100.0), now=0, wall=103.0)


def test_fresh_file_settles_then_is_ready():
    r = Readiness(2.0)
    shapes = {"a": st(5, 100.0)}
    assert not r.offer("a", shapes["a"], now=0, wall=100.5)
    assert r.due(1.0, shapes.get) == []
    shapes["a"] = st(9, 101.0)  # still being written
    assert r.due(1.9, shapes.get) == []
    assert r.due(3.8, shapes.get) == []  # changed at 1.9: 2 s from there
    assert [p for p, _ in r.due(3.9, shapes.get)] == ["a"]
    assert r.settling == {}


def test_vanished_settling_file_is_dropped():
    r = Readiness(2.0)
    r.offer("a", st(5, 100.0), now=0, wall=100.0)
    assert r.due(5, lambda p: None) == []
    assert r.settling == {}
