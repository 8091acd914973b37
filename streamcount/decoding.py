"""Bytes to text: a BOM, else strict UTF-8, else GB18030 or Big5; never a guess.

Pure functions. Order for `encoding = "auto"`: a byte-order mark names the
encoding (UTF-8, UTF-16, UTF-32); binary data (a NUL byte) is refused;
strict UTF-8; then the Chinese legacy encodings, GB18030 (a superset of GBK
and GB2312) and Big5 (Traditional Chinese). Nearly every Big5 file is also
valid GB18030 (and decodes to garbage as such), so when both decode,
charset-normalizer, limited to those two, decides. A file that fits none is
reported, not counted: silently counting garbage tokens is worse.

With errors = "replace" (see `decode_with`), a file that fails only because
a few of its bytes are bad (a corrupt byte, a character cut by `tail -c`) is
decoded with U+FFFD for them, provided its encoding is still clear: at most
MAX_REPLACED_SHARE of its bytes are replaced. The strict detection runs
first and unchanged, so replacement never changes how a valid file is read.
"""

from __future__ import annotations

import codecs
import threading
from typing import NamedTuple

ASCII = "ascii"  # reported for pure-ASCII text: compatible with every encoding we accept
LEGACY = ("gb18030", "big5")
_WIDE = ("utf-16", "utf-32")  # encodings in which NUL bytes are normal text
# Longest first: the UTF-32-LE mark begins with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


STRICT, REPLACE = "strict", "replace"
DECODE_ERRORS = (STRICT, REPLACE)
MAX_REPLACED_SHARE = 0.001  # replace: at most 0.1 % of a file's bytes may be bad,
MIN_REPLACED_LIMIT = 3  # or 3 bytes (a UTF-8 character cut at each end), if more


class Decoded(NamedTuple):
    text: str
    encoding: str  # as `decode` reports it
    replaced: int  # bytes replaced by U+FFFD (errors = "replace" only)


class DecodeFailure(Exception):
    """The bytes are not text we can count. `status` goes into the ledger."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def bom_encoding(data: bytes) -> str | None:
    """The encoding a byte-order mark at the start of `data` names, if any."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    return None


def is_wide(encoding: str) -> bool:
    """UTF-16 or UTF-32: NUL bytes are text, and b"\\n" is not a line boundary."""
    return codecs.lookup(encoding).name.startswith(_WIDE)


def decode(data: bytes, encoding: str = "auto") -> tuple[str, str]:
    """Decode `data`, returning (text, the encoding used; "ascii" for pure ASCII).

    `encoding` is "auto" or a codec name. Raises DecodeFailure for binary
    data (a NUL byte) or bytes that are not valid in the encoding(s) tried.
    """
    named = bom_encoding(data) if encoding == "auto" else encoding
    if named is not None and (is_wide(named) or encoding == "auto"):
        return _strict(data, named), named.removesuffix("-sig")
    nul = data.find(b"\0")
    if nul >= 0:
        raise DecodeFailure("skipped", f"binary: NUL byte at offset {nul}")
    if data.isascii():
        return data.decode("ascii"), ASCII
    if encoding != "auto":
        return _strict(data, encoding), encoding
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    texts = {}
    for name in LEGACY:
        try:
            texts[name] = data.decode(name)
        except UnicodeDecodeError:
            continue
    if len(texts) == 1:
        return next(iter(texts.values())), next(iter(texts))
    if not texts:
        raise DecodeFailure("failed", "not valid UTF-8, GB18030 or Big5")
    name = _detect(data)
    if name is None:
        raise DecodeFailure("failed", "valid as both GB18030 and Big5, and neither is likely")
    return texts[name], name


def decode_with(data: bytes, encoding: str = "auto", errors: str = STRICT) -> Decoded:
    """`decode`, and with errors = "replace", U+FFFD for the bad bytes of a file that
    is otherwise clearly in one encoding (see MAX_REPLACED_SHARE).

    Binary data (a NUL byte) is refused either way: it is not text with a flaw.
    """
    try:
        return Decoded(*decode(data, encoding), 0)
    except DecodeFailure as failure:
        if errors == STRICT or failure.status != "failed":
            raise
        return _replacing(data, encoding, failure.reason)


def replaced_reason(replaced: int) -> str:
    """The ledger's reason for a counted file with `replaced` bad bytes ("" for none)."""
    if not replaced:
        return ""
    return f"{replaced} byte{'s' if replaced > 1 else ''} replaced"


def _replacing(data: bytes, encoding: str, strict_reason: str) -> Decoded:
    """The candidate encoding that needs the fewest replacements, within the limit.

    Between GB18030 and Big5 (nearly every Big5 text is also GB18030), the
    same judge as the strict path decides, on the bytes both read cleanly.
    """
    limit = max(MIN_REPLACED_LIMIT, int(len(data) * MAX_REPLACED_SHARE))
    named = bom_encoding(data) if encoding == "auto" else encoding
    found: dict[str, tuple[str, list[tuple[int, int]]]] = {}
    for name in (named,) if named else ("utf-8", *LEGACY):
        try:
            found[name] = _decode_replacing(data, name, limit)
        except UnicodeDecodeError:
            continue  # more than `limit` bad bytes: not this encoding
    if not found:
        raise DecodeFailure(
            "failed", f"{strict_reason}, and more than {MAX_REPLACED_SHARE:.1%} of it is bad"
        )

    def replaced(name: str) -> int:
        return sum(end - start for start, end in found[name][1])

    name = min(found, key=replaced)
    if name in LEGACY and all(n in found for n in LEGACY):
        spans = sorted(found[LEGACY[0]][1] + found[LEGACY[1]][1])
        judged = _detect(_without(data, spans))
        if judged is None:
            raise DecodeFailure("failed", "valid as both GB18030 and Big5, and neither is likely")
        name = judged
    text = found[name][0]
    return Decoded(text, name if named is None else name.removesuffix("-sig"), replaced(name))


_spans = threading.local()  # the bad spans the error handler saw, per thread


def _record_and_replace(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _spans.found.append((exc.start, exc.end))
    _spans.bytes += exc.end - exc.start
    if _spans.bytes > _spans.limit:
        raise exc  # too many: give up early on this encoding
    return "\ufffd", exc.end


codecs.register_error("streamcount-replace", _record_and_replace)


def _decode_replacing(data: bytes, encoding: str, limit: int) -> tuple[str, list[tuple[int, int]]]:
    """(text with U+FFFD for each bad sequence, the bad spans); UnicodeDecodeError
    once more than `limit` bytes are bad. The same text as errors="replace"."""
    _spans.found, _spans.bytes, _spans.limit = [], 0, limit
    try:
        return data.decode(encoding, errors="streamcount-replace"), _spans.found
    finally:
        _spans.found = []


def _without(data: bytes, spans: list[tuple[int, int]]) -> bytes:
    """`data` with the (sorted, possibly overlapping) byte spans removed."""
    parts, pos = [], 0
    for start, end in spans:
        if start > pos:
            parts.append(data[pos:start])
        pos = max(pos, end)
    parts.append(data[pos:])
    return b"".join(parts)


def _strict(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DecodeFailure("failed", f"not valid {encoding.upper()}: {exc.reason}") from exc


def _detect(data: bytes) -> str | None:
    """GB18030 or Big5, by charset-normalizer's measure of how much each reads as text."""
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=list(LEGACY)).best()
    if best is None:
        return None
    name = codecs.lookup(best.encoding).name
    return {"gb18030": "gb18030", "big5": "big5"}.get(name)
