"""Compressed inputs (.gz, .bz2, .xz, .zst): decompressed and decoded as a stream.

A compressed file is never held whole in memory: it is decompressed a block
at a time, decoded by an incremental decoder (so a multi-byte character or a
UTF-16 code unit split between blocks is whole), and handed on as text cut
after its last newline (else, in a very long line, after a separator: see
`split_text`), so the tokenizer sees the same tokens as for the plain file.

The encoding is found once, from the file's first HEAD_BYTES decompressed
bytes, by the same rules as a plain file (decoding.decode_with); the rest is
read in that encoding (ASCII found in the head widens to UTF-8). A stream
cannot be split by byte offset, so one worker reads a compressed file from
start to end.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import re
from collections.abc import Callable, Iterator
from typing import BinaryIO

from .decoding import ASCII, STRICT, DecodeFailure, bom_encoding, decode_with, is_wide

BLOCK_BYTES = 1 << 20  # decompressed bytes read at a time
HEAD_BYTES = 1 << 20  # decompressed bytes the encoding is judged on
PACKED_READ = 1 << 16  # compressed bytes fed to zstd at a time (its output is this × ratio)
MAX_CARRY_CHARS = 1 << 22  # a line longer than this is cut at a separator
_SEPARATOR = re.compile(r"[^\u3400-\u9fff\uf900-\ufaff0-9A-Za-z+#&._%\-]")


class _ZstdReader(io.RawIOBase):
    """zstd frames, one after another (zstd a b > c), read as one stream; a cut frame
    raises ZstdError. (zstandard's stream_reader ends quietly at a cut frame.)"""

    def __init__(self, raw: BinaryIO) -> None:
        import zstandard

        self._raw, self._zstd = raw, zstandard
        self._obj = zstandard.ZstdDecompressor().decompressobj()
        self._pending = b""
        self._started = False  # data fed to the current frame

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while len(self._pending) < size or size < 0:
            packed = self._raw.read(PACKED_READ)
            if not packed:
                if self._started and not self._obj.eof:
                    raise self._zstd.ZstdError("truncated: the last frame is incomplete")
                break
            self._feed(packed)
        out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def _feed(self, packed: bytes) -> None:
        while packed:
            if self._obj.eof:
                self._obj = self._zstd.ZstdDecompressor().decompressobj()
            self._started = True
            self._pending += self._obj.decompress(packed)
            packed = self._obj.unused_data if self._obj.eof else b""


_OPENERS: dict[str, Callable[[BinaryIO], BinaryIO]] = {
    ".gz": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    ".bz2": lambda raw: bz2.BZ2File(raw, "rb"),
    ".xz": lambda raw: lzma.LZMAFile(raw, "rb"),  # noqa: SIM115 (closed with the file)
    ".zst": _ZstdReader,
}
SUFFIXES = tuple(_OPENERS)


def _corrupt_errors() -> tuple[type[BaseException], ...]:
    import zstandard

    return (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError)


# What the decompressors raise for corrupt or truncated data (gzip.BadGzipFile
# and bz2's "Invalid data stream" are OSErrors; a cut stream is an EOFError).
CORRUPT_ERRORS = _corrupt_errors()


def compression_of(path: str) -> str | None:
    """The compression suffix of `path` (".gz", ".bz2", ".xz", ".zst"), or None."""
    for suffix in SUFFIXES:
        if path.endswith(suffix):
            return suffix
    return None


def decompressing(raw: BinaryIO, suffix: str) -> BinaryIO:
    """A reader of the decompressed bytes of `raw` (a binary file)."""
    return _OPENERS[suffix](raw)


class TextStream:
    """The decoded text of a decompressed stream, in blocks cut where tokens may be.

    Iterate for the text; then `encoding` (as decoding reports it), `bytes`
    (decompressed bytes read) and `replaced` (U+FFFD characters produced by a
    replacing decoder) describe what was read. Corrupt or truncated data
    raises from the decompressor (OSError, EOFError, lzma.LZMAError,
    zstandard.ZstdError); a decoding failure raises DecodeFailure.
    """

    def __init__(self, reader: BinaryIO, encoding: str = "auto", errors: str = STRICT) -> None:
        self._reader, self._wanted, self._errors = reader, encoding, errors
        self.encoding, self.bytes, self.replaced = "", 0, 0

    def __iter__(self) -> Iterator[str]:
        head = self._read(HEAD_BYTES)
        codec = self._judge(head)
        decoder = codecs.getincrementaldecoder(codec)(
            "strict" if self._errors == STRICT else "replace"
        )
        carry = ""
        data = head
        while True:
            final = not data
            try:
                text = carry + decoder.decode(data, final)
            except UnicodeDecodeError as exc:
                raise DecodeFailure(
                    "failed", f"not valid {codec.upper()} at decompressed byte "
                    f"~{self.bytes}: {exc.reason}"
                ) from exc
            if "\0" in text and not is_wide(codec):
                raise DecodeFailure("skipped", "binary: NUL byte in the decompressed text")
            if final:
                self.replaced += text.count("\ufffd") if self._errors != STRICT else 0
                if text:
                    yield text
                return
            done, carry = split_text(text)
            if done:
                if self._errors != STRICT:
                    self.replaced += done.count("\ufffd")
                yield done
            data = self._read(BLOCK_BYTES)

    def _read(self, size: int) -> bytes:
        data = self._reader.read(size)
        self.bytes += len(data)
        return data

    def _judge(self, head: bytes) -> str:
        """The codec to read the whole stream with, judged on its head."""
        bom = bom_encoding(head) if self._wanted == "auto" else None
        if bom is not None:
            self.encoding = bom.removesuffix("-sig")
            return bom
        if self._wanted != "auto":
            self.encoding = self._wanted
            return self._wanted
        found = _judge_head(head, len(head) == HEAD_BYTES, self._errors)
        self.encoding = "utf-8" if found == ASCII and len(head) == HEAD_BYTES else found
        return "utf-8" if found == ASCII else found


def _judge_head(head: bytes, cut_short: bool, errors: str) -> str:
    """The encoding decoding.decode_with finds for `head`; a head `cut_short` may end
    inside a character, so it is judged up to its last newline (or, with none,
    without its last 0 to 3 bytes: a character has at most 4)."""
    if not cut_short:
        return decode_with(head, "auto", errors).encoding
    cut = head.rfind(b"\n") + 1
    if cut:
        return decode_with(head[:cut], "auto", errors).encoding
    first: DecodeFailure | None = None
    for trim in range(4):
        try:
            return decode_with(head[: len(head) - trim], "auto", errors).encoding
        except DecodeFailure as failure:
            first = first or failure
    assert first is not None
    raise first


def split_text(text: str) -> tuple[str, str]:
    """(the part of `text` to count now, the rest to carry to the next block).

    Cut after the last newline; a line longer than MAX_CARRY_CHARS is cut
    after its last separator (or at its end): a cut where no token changes
    unless a single run of word characters is that long.
    """
    cut = text.rfind("\n") + 1
    if cut == 0 and len(text) > MAX_CARRY_CHARS:
        ends = [m.end() for m in _SEPARATOR.finditer(text, len(text) - 65536)]
        cut = ends[-1] if ends else len(text)
    return text[:cut], text[cut:]
