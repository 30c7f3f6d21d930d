"""Optional NVM commands, each tested only when ONCS says the controller supports it.

Compare (05h: match succeeds, mismatch 02/85), Write Uncorrectable (04h: a read fails 02/81
until the block is written again), Write Zeroes (08h: the blocks read as zeroes), Dataset
Management deallocate (09h: the blocks read as DLFEAT says), Verify (0Ch) and Copy (19h).
"""

import pytest

from nvme import *


def written(nvme0n1, qpair, lba, count, value):
    b = Buffer(count * nvme0n1.sector_size, ptype=32, pvalue=value)
    nvme0n1.write(qpair, b, lba, count).waitdone()
    return b


def need(oncs, bit, name):
    if not oncs & (1 << bit):
        pytest.skip(f"{name} not supported (ONCS bit {bit})")


@pytest.mark.device
def test_compare_match_and_miscompare(nvme0n1, qpair, oncs):
    """Compare succeeds on equal data and fails with 02/85 when one byte differs.

    Spec: NVM command set spec 3.2.1 Compare.

    Steps:
    1. Skip unless ONCS bit 0.
    2. Write 4 blocks, compare with the same data.
    3. Change the last byte and compare: 02/85.
    """
    need(oncs, 0, "Compare")
    data = written(nvme0n1, qpair, 200, 4, 0x11223344)
    nvme0n1.compare(qpair, data, 200, 4).waitdone()
    other = Buffer(len(data), ptype=32, pvalue=0x11223344)
    other[len(data) - 1] = 0x00
    with pytest.warns(UserWarning, match="ERROR status: 02/85"):
        nvme0n1.compare(qpair, other, 200, 4).waitdone()


@pytest.mark.device
def test_write_uncorrectable_then_read(nvme0n1, qpair, oncs):
    """A block marked uncorrectable fails reads with 02/81 until rewritten; its neighbour is intact.

    Spec: NVM command set spec 3.2.7 Write Uncorrectable.

    Steps:
    1. Skip unless ONCS bit 1.
    2. Write 2 blocks, mark the first uncorrectable.
    3. Read it: 02/81; read the second: intact.
    4. Write the first again and read it back.
    """
    need(oncs, 1, "Write Uncorrectable")
    ss = nvme0n1.sector_size
    before = written(nvme0n1, qpair, 300, 2, 0x5A5A5A5A)
    nvme0n1.write_uncorrectable(qpair, 300, 1).waitdone()
    rbuf = Buffer(ss)
    with pytest.warns(UserWarning, match="ERROR status: 02/81"):
        nvme0n1.read(qpair, rbuf, 300).waitdone()
    # The neighbour is untouched, and a write makes the block readable again.
    nvme0n1.read(qpair, rbuf, 301).waitdone()
    assert rbuf[0:ss] == before[ss : 2 * ss]
    data = written(nvme0n1, qpair, 300, 1, 0x0F0F0F0F)
    nvme0n1.read(qpair, rbuf, 300).waitdone()
    assert rbuf == data


@pytest.mark.device
def test_write_zeroes_reads_zeroes(nvme0n1, qpair, oncs):
    """Write Zeroes makes exactly its blocks read as zeroes.

    Spec: NVM command set spec 3.2.8 Write Zeroes.

    Steps:
    1. Skip unless ONCS bit 3.
    2. Write 8 blocks, Write Zeroes the middle 6.
    3. Check the 6 are zero and the ends unchanged.
    """
    need(oncs, 3, "Write Zeroes")
    ss = nvme0n1.sector_size
    before = written(nvme0n1, qpair, 400, 8, 0xFFFFFFFF)
    nvme0n1.write_zeroes(qpair, 401, 6).waitdone()
    rbuf = Buffer(8 * ss)
    nvme0n1.read(qpair, rbuf, 400, 8).waitdone()
    assert rbuf[0:ss] == before[0:ss]
    assert rbuf[ss : 7 * ss] == bytes(6 * ss)
    assert rbuf[7 * ss : 8 * ss] == before[7 * ss : 8 * ss]


@pytest.mark.device
def test_dsm_deallocate_reads_per_dlfeat(nvme0n1, qpair, oncs, id_ns_buf):
    """Deallocated blocks read as DLFEAT says; others keep their data.

    Spec: NVM command set spec 3.2.3 Dataset Management, 4.1.5.1 DLFEAT.

    Steps:
    1. Skip unless ONCS bit 2.
    2. Write 4 blocks, deallocate 3 of them in 2 ranges.
    3. Check the kept block; skip unless DLFEAT reports the read value; check the others.
    """
    need(oncs, 2, "Dataset Management")
    ss = nvme0n1.sector_size
    before = written(nvme0n1, qpair, 500, 4, 0x12345678)
    ranges = Buffer(4096)
    ranges.set_dsm_range(0, 500, 2)
    ranges.set_dsm_range(1, 503, 1)
    nvme0n1.dsm(qpair, ranges, 2).waitdone()
    rbuf = Buffer(4 * ss)
    nvme0n1.read(qpair, rbuf, 500, 4).waitdone()
    # Block 502 was not deallocated.
    assert rbuf[2 * ss : 3 * ss] == before[2 * ss : 3 * ss]
    dlfeat = id_ns_buf.data(33) & 0x7
    expected = {1: b"\x00", 2: b"\xff"}.get(dlfeat)
    if expected is None:
        pytest.skip(f"DLFEAT {dlfeat}: the values read after deallocation are not reported")
    for lba in (0, 1, 3):
        assert rbuf[lba * ss : (lba + 1) * ss] == expected * ss, f"block {500 + lba}"


@pytest.mark.device
def test_verify(nvme0n1, qpair, oncs):
    """Verify of written blocks succeeds.

    Spec: NVM command set spec 3.2.9 Verify.

    Steps:
    1. Skip unless ONCS bit 7.
    2. Write 4 blocks, Verify them: status 0.
    """
    need(oncs, 7, "Verify")
    written(nvme0n1, qpair, 600, 4, 0x600)
    got = []
    nvme0n1.verify(qpair, 600, 4, cb=got.append).waitdone()
    assert (got[0].sct, got[0].sc) == (0, 0)


@pytest.mark.device
def test_verify_uncorrectable(nvme0n1, qpair, oncs):
    """Verify of an uncorrectable block fails with 02/81.

    Spec: NVM command set spec 3.2.9 Verify, 3.2.7 Write Uncorrectable.

    Steps:
    1. Skip unless Verify and Write Uncorrectable are supported.
    2. Mark a block uncorrectable; Verify it: 02/81.
    3. Rewrite it.
    """
    need(oncs, 7, "Verify")
    need(oncs, 1, "Write Uncorrectable")
    nvme0n1.write_uncorrectable(qpair, 610, 1).waitdone()
    with pytest.warns(UserWarning, match="ERROR status: 02/81"):
        nvme0n1.verify(qpair, 610, 1).waitdone()
    written(nvme0n1, qpair, 610, 1, 0)


@pytest.mark.device
def test_copy(nvme0n1, qpair, oncs):
    """Copy of 3 blocks writes the same data at the destination.

    Spec: NVM command set spec 3.2.1 Copy (format 0 source ranges).

    Steps:
    1. Skip unless ONCS bit 8 and MSSRL/MCL allow 3 blocks.
    2. Write 3 blocks, copy them to LBA 800.
    3. Read the destination and compare.
    """
    need(oncs, 8, "Copy")
    id_ns = nvme0n1.id_ns()
    if id_ns.mssrl < 3 or id_ns.mcl < 3:
        pytest.skip(f"copy limits below 3 blocks: MSSRL {id_ns.mssrl}, MCL {id_ns.mcl}")
    ss = nvme0n1.sector_size
    src = written(nvme0n1, qpair, 700, 3, 0xC0FFEE00)
    written(nvme0n1, qpair, 800, 3, 0)
    ranges = Buffer(4096)
    # Source range entry, format 0: SLBA at bytes 15:8, NLB (0's based) at bytes 17:16.
    ranges[8:16] = (700).to_bytes(8, "little")
    ranges[16:18] = (2).to_bytes(2, "little")
    nvme0n1.copy(qpair, ranges, 1, 800).waitdone()
    rbuf = Buffer(3 * ss)
    nvme0n1.read(qpair, rbuf, 800, 3).waitdone()
    assert rbuf == src
