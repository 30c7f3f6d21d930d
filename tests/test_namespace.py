"""Namespace: properties, identify data, NVM commands and what they do to the data, format.

Checked on the simulated SSD shaped by sim:// URIs (block size, namespace count), so the values
are exact: write/read round trips, write zeroes, DSM deallocation, write uncorrectable, compare,
copy, raw send_cmd, and Namespace.format() switching the block size.
"""

import warnings

import pytest

from nvme import *


def test_properties(nvme0n1):
    assert nvme0n1.nsid == 1
    assert nvme0n1.sector_size == 512
    assert nvme0n1.meta_size == 0
    assert nvme0n1.capacity == 8 << 30
    assert repr(nvme0n1) == "<namespace: 1>"


def test_id_ns_fields(nvme0n1, id_ns):
    assert id_ns.nsze == (8 << 30) // 512
    assert id_ns.ncap == id_ns.nsze
    assert id_ns.flbas & 0xF == 0
    assert id_ns.nlbaf == 3
    assert len(id_ns.raw) == 4096


def test_id_data(nvme0n1, id_ns):
    assert nvme0n1.id_data(7, 0) == id_ns.nsze == (8 << 30) // 512, "8 GB of 512-byte LBAs"
    assert nvme0n1.id_data(26) == id_ns.flbas == 0
    assert nvme0n1.id_data(15, 8) == id_ns.ncap == id_ns.nsze


@pytest.mark.parametrize(
    ("uri", "nsid", "sector"),
    [
        ("sim://?lba=4096", 1, 4096),
        ("sim://?namespaces=2&lba=4096", 2, 4096),
        ("sim://?namespaces=2", 2, 512),
    ],
)
def test_sim_uri_shapes_namespaces(uri, nsid, sector):
    pcie = Pcie(uri)
    try:
        nvme0 = Controller(pcie)
        ns = Namespace(nvme0, nsid)
        assert ns.sector_size == sector
        q = Qpair(nvme0, 8)
        w = Buffer(sector, ptype=32, pvalue=nsid)
        r = Buffer(sector)
        ns.write(q, w, 0).waitdone()
        ns.read(q, r, 0).waitdone()
        assert r == w
        q.delete()
    finally:
        pcie.close()


def test_namespaces_share_capacity_and_are_separate():
    pcie = Pcie("sim://?namespaces=2&capacity=1G")
    try:
        nvme0 = Controller(pcie)
        ns1, ns2 = Namespace(nvme0, 1), Namespace(nvme0, 2)
        assert ns1.capacity + ns2.capacity <= 1 << 30
        q = Qpair(nvme0, 8)
        ns1.write(q, Buffer(512, ptype=32, pvalue=0x11111111), 0).waitdone()
        ns2.write(q, Buffer(512, ptype=32, pvalue=0x22222222), 0).waitdone()
        r = Buffer(512)
        ns1.read(q, r, 0).waitdone()
        assert r.data(259, 256) == 0x11111111
        q.delete()
    finally:
        pcie.close()


def test_inactive_namespace_raises(nvme0):
    with pytest.raises(NamespaceCreationError):
        Namespace(nvme0, 5)


def test_write_read_multiple_blocks(nvme0n1, qpair):
    w = Buffer(8 * 512, ptype=0xBEEF, pvalue=100)
    r = Buffer(8 * 512)
    nvme0n1.write(qpair, w, 1000, 8).waitdone()
    nvme0n1.read(qpair, r, 1000, 8).waitdone()
    assert r == w


def test_io_returns_qpair_for_chaining(nvme0n1, qpair, buf):
    assert nvme0n1.read(qpair, buf, 0) is qpair
    qpair.waitdone()


def test_read_unwritten_is_zero(nvme0n1, qpair):
    r = Buffer(512, pvalue=1)
    nvme0n1.read(qpair, r, 123456).waitdone()
    assert r[0:512] == bytes(512)


def test_write_zeroes(nvme0n1, qpair):
    w = Buffer(1024, pvalue=1)
    nvme0n1.write(qpair, w, 10, 2).waitdone()
    nvme0n1.write_zeroes(qpair, 11, 1).waitdone()
    r = Buffer(1024)
    nvme0n1.read(qpair, r, 10, 2).waitdone()
    assert r[0:512] == w[0:512] and r[512:1024] == bytes(512)


def test_dsm_deallocate_reads_zeroes(nvme0n1, qpair, id_ns):
    # DLFEAT 001b: deallocated blocks read as zeroes.
    assert id_ns.dlfeat & 0x7 == 1
    w = Buffer(2048, pvalue=1)
    nvme0n1.write(qpair, w, 20, 4).waitdone()
    ranges = Buffer(4096)
    ranges.set_dsm_range(0, 20, 1)
    ranges.set_dsm_range(1, 22, 2)
    nvme0n1.dsm(qpair, ranges, 2).waitdone()
    r = Buffer(2048)
    nvme0n1.read(qpair, r, 20, 4).waitdone()
    assert r[0:512] == bytes(512)
    assert r[512:1024] == w[512:1024]
    assert r[1024:2048] == bytes(1024)


def test_write_uncorrectable(nvme0n1, qpair, buf):
    nvme0n1.write_uncorrectable(qpair, 30, 2).waitdone()
    with pytest.warns(UserWarning, match="ERROR status: 02/81"):
        nvme0n1.read(qpair, buf, 31).waitdone()
    nvme0n1.write(qpair, buf, 31).waitdone()
    nvme0n1.read(qpair, buf, 31).waitdone()


def test_compare(nvme0n1, qpair):
    w = Buffer(512, ptype=32, pvalue=0x13579BDF)
    nvme0n1.write(qpair, w, 40).waitdone()
    nvme0n1.compare(qpair, w, 40).waitdone()
    w[7] ^= 0xFF
    with pytest.warns(UserWarning, match="ERROR status: 02/85"):
        nvme0n1.compare(qpair, w, 40).waitdone()


def test_verify_and_flush(nvme0n1, qpair):
    got = []
    nvme0n1.verify(qpair, 0, 8, cb=got.append)
    nvme0n1.flush(qpair, cb=got.append)
    qpair.waitdone(2)
    assert [c.status for c in got] == [0, 0]


def test_copy(nvme0n1, qpair):
    w = Buffer(1024, ptype=32, pvalue=0xC0C0C0C0)
    nvme0n1.write(qpair, w, 50, 2).waitdone()
    ranges = Buffer(4096)
    ranges[8:16] = (50).to_bytes(8, "little")
    ranges[16:18] = (1).to_bytes(2, "little")
    nvme0n1.copy(qpair, ranges, 1, 60).waitdone()
    r = Buffer(1024)
    nvme0n1.read(qpair, r, 60, 2).waitdone()
    assert r == w


def test_send_cmd_raw_io(nvme0n1, qpair):
    w = Buffer(512, ptype=32, pvalue=0x0BADCAFE)
    nvme0n1.send_cmd(0x01, qpair, w, cdw10=70).waitdone()
    r = Buffer(512)
    nvme0n1.send_cmd(0x02, qpair, r, cdw10=70).waitdone()
    assert r == w


def test_fua_write_survives_a_dirty_power_off(nvme0, nvme0n1, qpair, subsystem):
    ss = nvme0n1.sector_size
    w = Buffer(ss, ptype=0xBEEF, pvalue=80)
    old = Buffer(2 * ss)
    nvme0n1.write(qpair, old, 80, 2).waitdone()
    nvme0n1.flush(qpair).waitdone()
    flushed_data = old[ss : 2 * ss]
    nvme0n1.write(qpair, w, 80, 1, io_flags=1 << 14).waitdone()
    fua_data = w[:ss]
    nvme0n1.write(qpair, w, 81, 1).waitdone()  # no FUA: only in the volatile cache
    cached_data = w[:ss]
    subsystem.poweroff()
    subsystem.poweron()
    nvme0.reset()
    r = Buffer(ss)
    nvme0n1.read(qpair, r, 80, 1, io_flags=1 << 14).waitdone()
    assert r[:ss] == fua_data
    nvme0n1.read(qpair, r, 81, 1).waitdone()
    assert r[:ss] == flushed_data != cached_data


def test_sgl_buffer(nvme0n1, qpair):
    w = Buffer(4096, ptype=32, pvalue=0x5617)
    w.sgl = True
    r = Buffer(4096)
    r.sgl = True
    nvme0n1.write(qpair, w, 90, 8).waitdone()
    nvme0n1.read(qpair, r, 90, 8).waitdone()
    assert r == w


def test_buffer_offset_moves_data(nvme0n1, qpair):
    w = Buffer(512, ptype=32, pvalue=0x01020304)
    nvme0n1.write(qpair, w, 95).waitdone()
    r = Buffer(1024)
    r.offset = 256
    r.size = 512
    nvme0n1.read(qpair, r, 95).waitdone()
    assert r[256:768] == w[0:512]
    assert r[0:256] == bytes(256) and r[768:1024] == bytes(256)


def test_mdts_exceeded_is_device_error(nvme0, nvme0n1, qpair):
    n = nvme0.mdts // 512
    b = Buffer((n + 1) * 512)
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0n1.read(qpair, b, 0, n + 1).waitdone()


def test_namespace_format_changes_block_size():
    pcie = Pcie("sim://?lba=4096")
    try:
        nvme0 = Controller(pcie)
        ns = Namespace(nvme0)
        q = Qpair(nvme0, 8)
        ns.write(q, Buffer(4096, pvalue=1), 0).waitdone()
        assert ns.format(512) == 0
        assert ns.sector_size == 512
        assert ns.id_ns().flbas & 0xF == 0
        r = Buffer(512, pvalue=1)
        ns.read(q, r, 0).waitdone()
        assert r[0:512] == bytes(512), "format did not erase"
        ns.format(4096)
        assert ns.sector_size == 4096
        q.delete()
    finally:
        pcie.close()


def test_namespace_get_lba_format(nvme0n1):
    assert nvme0n1.get_lba_format(512, 0) == 0
    assert nvme0n1.get_lba_format(512, 8) == 1
    assert nvme0n1.get_lba_format(4096, 0) == 2
    assert nvme0n1.get_lba_format(2048, 0) is None


def test_set_timeout_ms_for_io_opcode(pcie, nvme0, nvme0n1, qpair, buf):
    pcie.sim.inject("delay", 300, opcode=0x02, count=1)
    nvme0n1.set_timeout_ms(0x02, 50)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        nvme0n1.read(qpair, buf, 0).waitdone()
    assert [str(w.message) for w in record] == [
        f"drive timeout: qpair: {qpair.sqid}, cid: {qpair.latest_cid}",
        "ERROR status: 07/ff",
    ]
