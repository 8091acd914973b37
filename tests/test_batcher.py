from streamcount.batcher import Batcher, plan_chunks
from streamcount.work import FileRef


def ref(name: str, size: int = 10) -> FileRef:
    return FileRef(name, size, 0, 0)


def test_plan_chunks_covers_the_file():
    assert plan_chunks(25, 10) == [(0, 10), (10, 20), (20, 25)]
    assert plan_chunks(0, 10) == []


def test_full_batch_goes_at_once():
    b = Batcher(max_files=3, max_bytes=10**9, max_wait=60, chunk_bytes=10**6)
    for name in "abcd":
        b.add(ref(name), now=0)
    task = b.take(now=0)
    assert [p.file.path for p in task.pieces] == ["a", "b", "c"]
    assert b.take(now=0) is None  # "d" alone waits for company or its deadline
    assert [p.file.path for p in b.take(now=60).pieces] == ["d"]


def test_bytes_bound_the_batch():
    b = Batcher(max_files=100, max_bytes=25, max_wait=60, chunk_bytes=10**6)
    for name in "abc":
        b.add(ref(name, 10), now=0)
    assert [p.file.path for p in b.take(now=0).pieces] == ["a", "b"]


def test_age_of_first_file_flushes_despite_steady_stream():
    b = Batcher(max_files=1000, max_bytes=10**9, max_wait=0.5, chunk_bytes=10**6)
    now = 0.0
    b.add(ref("first"), now)
    while now < 0.5:
        assert b.take(now) is None
        now += 0.1
        b.add(ref(f"f{now}"), now)  # a new file every 0.1 s must not postpone the batch
    assert b.deadline() == 0.5
    assert b.take(now).pieces[0].file.path == "first"


def test_large_file_becomes_chunk_tasks_first():
    b = Batcher(max_files=10, max_bytes=10**9, max_wait=0, chunk_bytes=100)
    b.add(ref("small"), 0)
    assert b.add(ref("big", 250), 0) == 3
    chunks = [b.take(0) for _ in range(3)]
    assert all(t.is_chunk for t in chunks)
    ranges = [(t.pieces[0].start, t.pieces[0].end) for t in chunks]
    assert ranges == [(0, 100), (100, 200), (200, 250)]
    assert not b.take(0).is_chunk
    assert len(b) == 0


def test_flush_sends_partial_batches():
    b = Batcher(max_files=10, max_bytes=10**9, max_wait=60, chunk_bytes=100)
    b.add(ref("a"), 0)
    assert b.take(0) is None
    assert b.take(0, flush=True) is not None


def test_backlog_is_shared_between_free_workers():
    b = Batcher(max_files=1000, max_bytes=10**9, max_wait=0, chunk_bytes=10**6)
    for i in range(10):
        b.add(ref(str(i)), 0)
    sizes = [len(b.take(0, share=s).pieces) for s in (4, 3, 2, 1)]
    assert sizes == [2, 2, 3, 3]  # bytes 100 / 4 = 25 -> 2 files; 80 / 3 -> 2; ...


def test_a_task_pickles_as_columns_and_comes_back_whole():
    """Tasks travel to the workers pickled as columns (work.Task.__reduce__)."""
    import pickle

    from streamcount.work import Piece, Task

    odd = FileRef("/in/一.txt", 10, 123, 5, "gb18030", 7, "strict")
    tasks = [
        Task(1, (Piece(odd), Piece(ref("b"))), per_file=True, hold=True),
        Task(2, (Piece(odd, 100, 200),), hand_over=True),  # a chunk
        Task(3, ()),  # a request for a worker's hold
    ]
    for task in tasks:
        back = pickle.loads(pickle.dumps(task, pickle.HIGHEST_PROTOCOL))
        assert back == task and type(back) is Task
        assert all(type(p) is Piece and type(p.file) is FileRef for p in back.pieces)


def test_an_idle_worker_takes_files_before_their_batch_is_due():
    """With workers idle, waiting for company only loses their time: files go to
    them once the oldest has waited IDLE_WAIT, split between them."""
    from streamcount.batcher import IDLE_WAIT

    b = Batcher(max_files=1000, max_bytes=10**9, max_wait=0.5, chunk_bytes=10**6)
    for name in "abcd":
        b.add(ref(name), now=0)
    assert b.take(now=IDLE_WAIT / 2, idle=2) is None  # a burst may still be arriving
    assert b.take(now=IDLE_WAIT, idle=0) is None  # every worker busy: batch by age
    first = b.take(now=IDLE_WAIT, idle=2)
    assert [p.file.path for p in first.pieces] == ["a", "b"]  # half, for one of the two
    assert [p.file.path for p in b.take(now=IDLE_WAIT, idle=1).pieces] == ["c", "d"]
