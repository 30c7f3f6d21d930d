"""Pcie: configuration space by index, slice and register(), capabilities, BAR0, resets.

The simulated SSD's function is an NVMe controller (class code 010802h) with PCI Express, power
management and MSI-X capabilities and extended AER and serial number capabilities; link and
power attributes read and write through them.
"""

import warnings

import pytest

from nvme import *


def admin_answers(nvme0):
    """Get Features (Number of Queues) with a 2 s timeout; the warnings it raised."""
    nvme0.timeout = 2000
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        nvme0.getfeatures(7).waitdone()
    return [str(w.message) for w in record]


def test_repr_and_addr(pcie):
    assert pcie.addr == "sim://"
    assert repr(pcie) == "<pcie: sim://>"


def test_config_space_ids(pcie):
    vid = pcie[0] | pcie[1] << 8
    assert vid not in (0, 0xFFFF)
    assert pcie.register(0, 2) == vid
    assert pcie.cfg_word_read(0) == vid
    assert pcie.register(0x09, 3) == 0x010802
    assert pcie[0x0B] == 0x01 and pcie[0x0A] == 0x08 and pcie[0x09] == 0x02


def test_config_space_slice(pcie):
    assert list(pcie[0:4]) == [pcie[i] for i in range(4)]
    assert list(pcie[0:8:2]) == [pcie[i] for i in range(0, 8, 2)]
    assert pcie.cfg_dword_read(0) == int.from_bytes(bytes(pcie[0:4]), "little")


def test_config_space_slice_is_a_list(pcie):
    assert pcie[0:2] == [pcie[0], pcie[1]]


def test_config_space_index_errors(pcie):
    with pytest.raises(IndexError):
        pcie[4096]
    with pytest.raises(TypeError):
        pcie["x"]


def test_register_widths(pcie):
    assert pcie.register(0, 8) == int.from_bytes(bytes(pcie[0:8]), "little")
    assert pcie.register(0, 1) == pcie[0]


def test_cap_offset(pcie):
    for cap_id in (0x01, 0x10, 0x11):
        off = pcie.cap_offset(cap_id)
        assert off is not None and 0x40 <= off < 0x100
        assert pcie[off] == cap_id
    assert pcie.cap_offset(0x09) is None


def test_cap_offset_extended(pcie):
    aer = pcie.cap_offset(0x0001, extend=True)
    dsn = pcie.cap_offset(0x0003, extend=True)
    assert aer is not None and aer >= 0x100
    assert dsn is not None and dsn >= 0x100
    assert pcie.register(aer, 2) == 0x0001
    assert pcie.cap_offset(0x0019, extend=True) is None


def test_command_register_write(pcie):
    cmd = pcie.cfg_word_read(0x04)
    assert cmd & 0x6 == 0x6, "memory space and bus master enabled"
    pcie.cfg_word_write(0x04, cmd | 0x400)
    assert pcie.cfg_word_read(0x04) & 0x400
    pcie.cfg_word_write(0x04, cmd)
    assert pcie.cfg_word_read(0x04) == cmd


def test_config_byte_write_by_index(pcie):
    # Latency timer / cache line size are plain read-write bytes in type 0 headers.
    original = pcie[0x0C]
    pcie[0x0C] = 0x10
    assert pcie[0x0C] == 0x10
    pcie[0x0C] = original


def test_aspm_roundtrip(pcie):
    original = pcie.aspm
    for value in (0, 2, original):
        pcie.aspm = value
        assert pcie.aspm == value


def test_power_state_roundtrip(pcie, nvme0):
    assert pcie.power_state == 0
    pcie.power_state = 3
    assert pcie.power_state == 3
    pcie.power_state = 0
    assert pcie.power_state == 0
    nvme0.reset()
    assert nvme0.getfeatures(7).waitdone()


def test_speed(pcie):
    lnksta = pcie.register(pcie.cap_offset(0x10) + 0x12, 2)
    assert pcie.speed == lnksta & 0xF == 4, "Link Status: current speed 16 GT/s"


def test_bar0_reads(pcie, nvme0):
    assert pcie.mem_qword_read(0) == nvme0.cap
    assert pcie.mem_dword_read(0x08) == nvme0[0x08]
    assert pcie.mem_word_read(0x0A) == nvme0[0x08] >> 16
    assert pcie.mem_byte_read(0x0B) == nvme0[0x08] >> 24


def test_bar0_write(pcie, nvme0):
    # INTMS/INTMC are not used with MSI-X; CC is a plain register.
    pcie.mem_dword_write(0x14, 0)
    assert nvme0.wait_csts(rdy=False)
    nvme0.reset()
    assert pcie.mem_dword_read(0x14) == 0x00460001


def test_flr_then_controller_reset(pcie, nvme0, nvme0n1, buf):
    w = Buffer(512, ptype=32, pvalue=0xF1F1F1F1)
    q = Qpair(nvme0, 8)
    nvme0n1.write(q, w, 0).waitdone()
    q.delete()
    assert pcie.flr() is True
    assert nvme0[0x14] & 1 == 0, "CC.EN survives a function level reset"
    nvme0.reset()
    assert admin_answers(nvme0) == []
    q = Qpair(nvme0, 8)
    r = Buffer(512)
    nvme0n1.read(q, r, 0).waitdone()
    q.delete()
    assert r == w


def test_hot_reset_then_controller_reset(pcie, nvme0, nvme0n1, buf):
    assert pcie.reset() is True
    assert nvme0[0x14] & 1 == 0
    nvme0.reset()
    assert admin_answers(nvme0) == []
    q = Qpair(nvme0, 8)
    nvme0n1.read(q, buf, 0).waitdone()
    q.delete()


def test_msix_enabled_after_flr_and_reset(pcie, nvme0):
    off = pcie.cap_offset(0x11)
    assert pcie.register(off + 2, 2) & 0x8000, "MSI-X enable after init"
    pcie.flr()
    nvme0.reset()
    assert pcie.register(off + 2, 2) & 0x8000, "MSI-X enable after FLR and Controller.reset()"


def test_msix_table_size(pcie):
    off = pcie.cap_offset(0x11)
    assert (pcie.register(off + 2, 2) & 0x7FF) + 1 == 65


def test_msix_vectors_from_uri():
    p = Pcie("sim://?vectors=8")
    try:
        off = p.cap_offset(0x11)
        assert (p.register(off + 2, 2) & 0x7FF) + 1 == 8
    finally:
        p.close()


def test_close(pciaddr):
    p = Pcie(pciaddr)
    p.close()
    with pytest.raises(NvmeArgumentError, match="closed"):
        p.register(0)


def test_a_tcp_port_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match=r"^port: "):
        Pcie("", port=4420)
