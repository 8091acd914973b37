"""Bytes to text: a BOM, else strict UTF-8, else GB18030 or Big5; never a guess.

Pure functions. Order for `encoding = "auto"`: a byte-order mark names the
encoding (UTF-8, UTF-16, UTF-32); binary data (a NUL byte) is refused;
strict UTF-8; then the Chinese legacy encodings, GB18030 (a superset of GBK
and GB2312) and Big5 (Traditional Chinese). Nearly every Big5 file is also
valid GB18030 (and decodes to garbage as such), so when both decode,
charset-normalizer, limited to those two, decides. A file that fits none is
reported, not counted: silently counting garbage tokens is worse.
"""

from __future__ import annotations

import codecs

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
