"""Bytes to text: BOM, strict UTF-8, then GB18030; binary files are refused.

Pure functions. A file that cannot be decoded is never guessed at: counting
garbage tokens silently is worse than reporting the file as failed.
"""

from __future__ import annotations

import codecs

ASCII = "ascii"  # reported for pure-ASCII text: compatible with every encoding we accept
_FALLBACK = "gb18030"  # a superset of GBK and GB2312
_WIDE = ("utf-16", "utf-32")  # encodings in which NUL bytes are normal text


class DecodeFailure(Exception):
    """The bytes are not text we can count. `status` goes into the ledger."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def decode(data: bytes, encoding: str = "auto") -> tuple[str, str]:
    """Decode `data`, returning (text, the encoding used).

    `encoding` is "auto" or a codec name. Raises DecodeFailure for binary
    data (a NUL byte) or bytes that are not valid in the encoding(s) tried.
    """
    if encoding != "auto" and codecs.lookup(encoding).name.startswith(_WIDE):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            raise DecodeFailure("failed", f"not valid {encoding.upper()}: {exc.reason}") from exc
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    nul = data.find(b"\0")
    if nul >= 0:
        raise DecodeFailure("skipped", f"binary: NUL byte at offset {nul}")
    if data.isascii():
        return data.decode("ascii"), ASCII
    tried = ("utf-8", _FALLBACK) if encoding == "auto" else (encoding,)
    for name in tried:
        try:
            return data.decode(name), name
        except UnicodeDecodeError:
            continue
    raise DecodeFailure("failed", f"not valid {' or '.join(n.upper() for n in tried)}")
