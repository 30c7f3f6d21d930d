"""Buffer: patterns, indexing and slicing, data(), dump(), offset/size, DSM ranges, equality.

Buffers need no device; these tests pin pynvme's documented behaviour (section 3 of the API
reference) so scripts written for pynvme read the same bytes here.
"""

import re

import pytest

from nvme import *


def test_default_buffer_is_4k_of_zeroes():
    b = Buffer()
    assert len(b) == 4096
    assert b.size == 4096 and b.offset == 0
    assert b[0:4096] == bytes(4096)


def test_pattern_ptype0_pvalue_nonzero_is_all_ones_by_dword():
    b = Buffer(10, pvalue=1)
    # Written as 32-bit words: the trailing bytes of a size that is not a multiple of 4 stay 0.
    assert b[0:8] == b"\xff" * 8
    assert b[8:10] == b"\x00\x00"


def test_pattern_ptype32_repeats_dword_little_endian():
    b = Buffer(4096, ptype=32, pvalue=0x12345678)
    assert b[0:8] == bytes.fromhex("7856341278563412")
    assert b.data(4095, 4092) == 0x12345678


def test_pattern_beef_is_percent_random_then_zero():
    b = Buffer(4096, ptype=0xBEEF, pvalue=50)
    assert b[2048:4096] == bytes(2048)
    assert len(set(b[0:2048])) > 100, "the first half is not random"
    assert Buffer(4096, ptype=0xBEEF, pvalue=0)[0:4096] == bytes(4096)
    full = Buffer(4096, ptype=0xBEEF, pvalue=100)
    assert full[4000:4096] != bytes(96)


def test_pattern_beef_random_differs_between_buffers():
    assert Buffer(4096, ptype=0xBEEF, pvalue=100) != Buffer(4096, ptype=0xBEEF, pvalue=100)


def test_pattern_1234_and_4321_are_word_counters():
    up = Buffer(16, ptype=0x1234, pvalue=0x10)
    down = Buffer(16, ptype=0x4321, pvalue=0x10)
    assert [up.data(2 * i + 1, 2 * i) for i in range(4)] == [0x10, 0x11, 0x12, 0x13]
    assert [down.data(2 * i + 1, 2 * i) for i in range(4)] == [0x10, 0x0F, 0x0E, 0x0D]


def test_fill_pattern_refills():
    b = Buffer(64)
    b.fill_pattern(0xA5A5A5A5, 32)
    assert b[0:64] == b"\xa5" * 64
    b.fill_pattern(0, 0)
    assert b[0:64] == bytes(64)


def test_size_keyword_of_pynvme():
    assert len(Buffer(size=512)) == 512


def test_index_and_negative_index():
    b = Buffer(16)
    b[0] = 0x12
    b[-1] = 0x34
    assert b[0] == 0x12 and b[15] == 0x34 and b[-1] == 0x34


def test_index_out_of_range_and_wrong_type():
    b = Buffer(16)
    with pytest.raises(IndexError):
        b[16]
    with pytest.raises(IndexError):
        b[16] = 1
    with pytest.raises(TypeError):
        b["0"]


def test_slice_get_returns_bytes_with_step():
    b = Buffer(8)
    b[0:8] = range(8)
    assert b[2:5] == b"\x02\x03\x04"
    assert b[::2] == b"\x00\x02\x04\x06"
    assert isinstance(b[0:1], bytes)


def test_slice_set_writes_from_start_ignoring_stop():
    b = Buffer(16)
    # pynvme: the iterable goes in from the slice's start; stop and step are ignored.
    b[4:5] = b"hello"
    assert b[4:9] == b"hello"
    b[0:] = [1, 2]
    assert b[0:3] == b"\x01\x02\x00"


def test_slice_set_beyond_end_raises():
    b = Buffer(4)
    with pytest.raises((IndexError, ValueError)):
        b[2:] = b"abcd"


def test_data_int_is_little_endian_inclusive():
    b = Buffer(16)
    b[0:4] = [1, 2, 3, 4]
    assert b.data(3, 0) == 0x04030201
    assert b.data(1) == 2
    assert b.data(1, 0) == 0x0201


def test_data_wide_field():
    b = Buffer(32, ptype=32, pvalue=0xFFFFFFFF)
    assert b.data(15, 0) == (1 << 128) - 1


def test_data_str_strips_trailing_spaces():
    b = Buffer(64)
    b[24:] = b"model name      "
    assert b.data(39, 24, str) == "model name"


def test_data_beyond_buffer_raises():
    b = Buffer(16)
    with pytest.raises((IndexError, ValueError)):
        b.data(16, 0)


def test_dump_format():
    b = Buffer(40, "named")
    b[0:4] = b"ABCD"
    text = b.dump()
    lines = text.splitlines()
    assert lines[0] == "named"
    assert re.fullmatch(
        r"\[0x00000000\]  41 42 43 44 00 00 00 00  00 00 00 00 00 00 00 00  ABCD\.+", lines[1]
    )
    assert lines[3].startswith("[0x00000020]  00 00 00 00 00 00 00 00")
    assert len([x for x in lines if x.startswith("[0x")]) == 3


def test_dump_size_limits_output():
    b = Buffer(4096)
    assert len([x for x in b.dump(32).splitlines() if x.startswith("[0x")]) == 2
    assert len([x for x in b.dump().splitlines() if x.startswith("[0x")]) == 256


def test_repr_and_name():
    b = Buffer(16, "my buffer")
    assert repr(b) == "<buffer name: my buffer>"
    assert b.name == "my buffer"


def test_offset_and_size():
    b = Buffer(4096)
    base = b.phys_addr
    b.offset = 8
    assert b.phys_addr == base + 8
    b.size = 512
    assert (b.offset, b.size, len(b)) == (8, 512, 4096)


def test_size_larger_than_length_raises_naming_size():
    b = Buffer(4096)
    with pytest.raises(NvmeArgumentError, match="size"):
        b.size = 4097


def test_offset_larger_than_length_raises_naming_offset():
    b = Buffer(4096)
    with pytest.raises(NvmeArgumentError, match="offset"):
        b.offset = 4097


def test_zero_length_raises():
    with pytest.raises(NvmeArgumentError, match="length"):
        Buffer(0)


def test_beef_percentage_over_100_raises():
    with pytest.raises(NvmeArgumentError, match="pvalue"):
        Buffer(4096, ptype=0xBEEF, pvalue=101)


def test_byte_value_out_of_range_raises():
    b = Buffer(4)
    with pytest.raises(NvmeArgumentError, match="value"):
        b[0] = 256


def test_set_dsm_range_layout():
    b = Buffer(4096)
    b.set_dsm_range(0, 0x1122334455, 8, attr=0xA)
    b.set_dsm_range(3, 7, 1)
    assert b.data(3, 0) == 0xA
    assert b.data(7, 4) == 8
    assert b.data(15, 8) == 0x1122334455
    assert (b.data(51, 48), b.data(55, 52), b.data(63, 56)) == (0, 1, 7)
    assert b[16:48] == bytes(32)


def test_equality_compares_data():
    a = Buffer(512, ptype=32, pvalue=0x1234)
    b = Buffer(512, ptype=32, pvalue=0x1234)
    assert a == b
    b[100] ^= 1
    assert a != b
    assert not (a == b)
    assert a != b"not a buffer"


def test_sgl_flag():
    b = Buffer(512)
    assert b.sgl is False
    b.sgl = True
    assert b.sgl is True
