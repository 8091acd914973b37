"""encoding = "auto": every supported encoding counts exactly like the same text in UTF-8."""

import codecs
import random

import pytest

from streamcount.config import Config
from streamcount.decoding import DecodeFailure, decode
from streamcount.ingest import ingest

from .helpers import SENTENCES, db_counts, db_ledger, make_text, reference_counts

TRADITIONAL = [
    "臺灣的大學生們在圖書館裡認真讀書，準備期末考試。",
    "這個國家的經濟發展非常迅速，人民生活水準顯著提高。",
    "颱風過後，許多農民開始整理被損壞的農田與房屋。",
    "博物館展覽了許多珍貴的歷史文物，吸引眾多遊客參觀。",
    "電腦與網際網路已經改變了我們學習和工作的方式。",
]
SIMPLIFIED = [s for s in SENTENCES if all(not c.isascii() or not c.isalnum() for c in s)]


def article(sentences, rng, paragraphs=6):
    return "\n".join("".join(rng.choice(sentences) for _ in range(5)) for _ in range(paragraphs))


CASES = {
    "utf-8": ("utf-8", SIMPLIFIED),
    "utf-8 with BOM": ("utf-8-sig", SIMPLIFIED),
    "utf-16 LE with BOM": ("utf-16", SIMPLIFIED),
    "utf-16 BE with BOM": ("utf-16-be", SIMPLIFIED),
    "utf-32 with BOM": ("utf-32", SIMPLIFIED),
    "gb18030": ("gb18030", SIMPLIFIED),
    "gbk": ("gbk", SIMPLIFIED),
    "gb2312": ("gb2312", SIMPLIFIED),
    "big5": ("big5", TRADITIONAL),
}


def encode(text: str, codec: str) -> bytes:
    data = text.encode(codec)
    return codecs.BOM_UTF16_BE + data if codec == "utf-16-be" else data


@pytest.mark.parametrize("case", CASES)
def test_auto_decodes_like_utf8(case):
    codec, sentences = CASES[case]
    text = article(sentences, random.Random(case))
    decoded, _ = decode(encode(text, codec))
    assert decoded == text


def test_gb18030_four_byte_characters():
    text = "罕见字𠀀𪚥出现在古籍中，" * 20
    assert decode(text.encode("gb18030")) == (text, "gb18030")


def test_big5_is_not_read_as_gb18030_garbage():
    text = article(TRADITIONAL, random.Random(9))
    data = text.encode("big5")
    data.decode("gb18030")  # it *is* valid GB18030 ...
    assert decode(data) == (text, "big5")  # ... but it is Big5


@pytest.mark.parametrize(
    "data", [b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", b"\x7fELF\x02\x01\x01\0\0\0\0\0", b"a\0b"]
)
def test_binary_is_skipped(data):
    with pytest.raises(DecodeFailure) as err:
        decode(data)
    assert err.value.status == "skipped"


def test_bad_utf16_after_bom_fails():
    with pytest.raises(DecodeFailure, match="not valid UTF-16"):
        decode(codecs.BOM_UTF16_LE + b"\x00\xd8\x41")  # a lone surrogate, odd length


def test_every_encoding_counts_like_utf8_through_ingest(tmp_path):
    rng = random.Random(7)
    texts = []
    for i, (codec, sentences) in enumerate(CASES.values()):
        text = article(sentences, rng, paragraphs=30)
        (tmp_path / f"{i}.txt").write_bytes(encode(text, codec))
        texts.append(text)
    big = make_text(rng, paragraphs=600)  # larger than chunk_bytes, UTF-16: counted whole
    (tmp_path / "big16.txt").write_bytes(big.encode("utf-16"))
    texts.append(big)
    config = Config(db=tmp_path / "db.sqlite", workers=2, chunk_bytes=8192)
    assert ingest(config, [tmp_path]).by_status == {"counted": len(texts)}
    assert db_counts(config.db) == reference_counts(texts)
    assert set(db_ledger(config.db).values()) == {"counted"}
