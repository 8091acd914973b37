import codecs

import pytest

from streamcount.decoding import ASCII, DecodeFailure, decode

TEXT = "中文分词测试，包括繁体字和𠀀四字节字符。\n"


def test_utf8():
    assert decode(TEXT.encode()) == (TEXT, "utf-8")


def test_utf8_bom_is_stripped():
    assert decode(codecs.BOM_UTF8 + TEXT.encode()) == (TEXT, "utf-8")


def test_gb18030_fallback_including_four_byte_characters():
    assert decode(TEXT.encode("gb18030")) == (TEXT, "gb18030")


def test_gbk_is_read_as_gb18030():
    text = "简体中文的新闻报道"
    assert decode(text.encode("gbk"))[0] == text


def test_ascii_is_reported_as_such():
    assert decode(b"hello world\n") == ("hello world\n", ASCII)


def test_binary_is_skipped():
    with pytest.raises(DecodeFailure) as err:
        decode(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    assert err.value.status == "skipped" and "NUL byte" in err.value.reason


def test_undecodable_fails():
    with pytest.raises(DecodeFailure) as err:
        decode(b"\xfd\x81\x30\xff\xfe not text")
    assert err.value.status == "failed" and "not valid UTF-8, GB18030 or Big5" in err.value.reason


def test_explicit_encoding():
    assert decode("繁體中文".encode("big5"), "big5") == ("繁體中文", "big5")
    assert decode("中文".encode("utf-16"), "utf-16") == ("中文", "utf-16")
