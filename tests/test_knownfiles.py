"""What a file just seen is, given the ledger: real files, real stat, real inodes."""

import os

from streamcount.identity import FileId, file_id, fingerprint_of
from streamcount.knownfiles import APPENDED, COUNT, SKIP, WAIT, KnownFiles
from streamcount.work import COUNTED, LINKED, MOVED


def counted(path, data: bytes | None = None) -> tuple[str, FileId, str]:
    """The ledger row a worker would have written for `path` as it is now."""
    data = path.read_bytes() if data is None else data
    return str(path), file_id(path.stat(), fingerprint_of(data)), COUNTED


def test_an_unchanged_counted_file_is_skipped_without_reading_it(tmp_path):
    a = tmp_path / "a.txt"
    a.write_bytes(b"hello\n")
    known = KnownFiles([counted(a)])
    assert known.unchanged(str(a), a.stat())
    assert known.classify(str(a), a.stat()).action == SKIP


def test_rename_is_moved_and_rotation_counts_the_new_file(tmp_path):
    a, rotated = tmp_path / "a.txt", tmp_path / "a.1.txt"
    a.write_bytes(b"old content\n")
    known = KnownFiles([counted(a)])
    a.rename(rotated)
    a.write_bytes(b"new content, another file\n")
    verdict = known.classify(str(rotated), rotated.stat())
    assert verdict.action == MOVED and verdict.other == str(a)
    assert verdict.file.inode == rotated.stat().st_ino
    assert known.classify(str(a), a.stat()).action == COUNT


def test_inode_reused_with_same_size_and_mtime_is_a_new_file(tmp_path):
    """The ledger holds a counted file with this very inode, size and mtime, but
    other bytes: what a deleted file leaves behind when `cp -p` reuses its inode."""
    b = tmp_path / "b.txt"
    b.write_bytes(b"brand new bytes\n")
    st = b.stat()
    gone = FileId(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, fingerprint_of(b"x" * 16))
    known = KnownFiles([(str(tmp_path / "a.txt"), gone, COUNTED)])
    assert known.classify(str(b), st).action == COUNT


def test_a_hard_link_is_linked(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"shared\n")
    os.link(a, b)
    verdict = KnownFiles([counted(a)]).classify(str(b), b.stat())
    assert verdict.action == LINKED and verdict.other == str(a)


def test_grown_is_appended_rewritten_is_counted(tmp_path):
    a = tmp_path / "a.txt"
    a.write_bytes(b"first line\n")
    known = KnownFiles([counted(a)])
    with a.open("ab") as f:
        f.write(b"appended\n")
    assert known.classify(str(a), a.stat()).action == APPENDED
    known.note(str(a), a.stat())
    assert known.unchanged(str(a), a.stat())
    with a.open("r+b") as f:
        f.write(b"FIRST")  # the counted bytes are no longer in place
    assert known.classify(str(a), a.stat()).action == COUNT


def test_renamed_and_grown_is_moved_not_counted_again(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"counted part\n")
    known = KnownFiles([counted(a)])
    with a.open("ab") as f:
        f.write(b"appended after counting\n")
    a.rename(b)
    verdict = known.classify(str(b), b.stat())
    assert verdict.action == MOVED and "grew" in verdict.reason
    assert verdict.file.size == len(b"counted part\n")  # the row describes what was counted


def test_a_file_renamed_while_in_flight_waits_for_its_merge(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"being counted\n")
    known = KnownFiles()
    known.sent(str(a), a.stat())
    a.rename(b)
    verdict = known.classify(str(b), b.stat())
    assert verdict.action == WAIT and verdict.other == str(a)
    known.wait(str(b), verdict.other)
    assert known.settle(str(a)) == [str(b)]
    assert known.classify(str(b), b.stat()).action == COUNT  # it vanished uncounted


def test_rows_from_before_fingerprints_keep_the_old_rules(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"legacy\n")
    st = a.stat()
    legacy = FileId(0, st.st_ino, st.st_size, st.st_mtime_ns, "")
    known = KnownFiles([(str(a), legacy, COUNTED)])
    assert known.classify(str(a), st).action == SKIP
    with a.open("ab") as f:
        f.write(b"more\n")
    assert known.classify(str(a), a.stat()).action == APPENDED  # changed: not counted again
    os.truncate(a, st.st_size)
    os.utime(a, ns=(st.st_mtime_ns, st.st_mtime_ns))
    a.rename(b)
    assert known.classify(str(b), b.stat()).action == MOVED
