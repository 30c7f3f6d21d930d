"""Scatter Gather Lists for NVM commands, in metamode (SQEs built by the test).

A Data Block descriptor at a byte offset when SGLS allows byte alignment, a descriptor shorter
than the transfer (00/0F), longer than the transfer as SGLS bit 18 says, a reserved descriptor
type (00/11), a Bit Bucket in a write (00/11), a Last Segment of two data blocks, and SGLs on a
controller without SGL support (00/02).
"""

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")

QID = 2


def sgls(nvme0):
    b = Buffer(4096)
    nvme0.identify(b).waitdone()
    return b.data(539, 536)


def need_sgl(nvme0):
    s = sgls(nvme0)
    if s & 0x3 == 0:
        pytest.skip("SGLs not supported for NVM commands (SGLS bits 1:0)")
    return s


def run(nvme0, sqe):
    """Submit one SQE on a fresh metamode queue pair; return (SCT, SC) of its completion."""
    cq = IOCQ(nvme0, QID, 4, PRP(4096))
    sq = IOSQ(nvme0, QID, 4, PRP(4096), cq=cq)
    try:
        sq[0] = sqe
        sq.tail = 1
        assert cq.wait_pbit(0, 1), "no completion"
        got = (cq[0].sct, cq[0].sc)
        cq.head = 1
        return got
    finally:
        sq.delete()
        cq.delete()


def rw_sqe(opcode, nsid, lba, nlb, cid=0x700):
    sqe = SQE(cid << 16 | opcode, nsid)
    sqe[10] = lba
    sqe[12] = nlb - 1
    return sqe


def raw_sgl(sqe, addr, length, type_byte):
    """Put a raw SGL descriptor in DPTR (dwords 6-9) and set PSDT to 01b."""
    sqe[0] = (sqe[0] & ~(0x3 << 14)) | (1 << 14)
    sqe[6] = addr & 0xFFFFFFFF
    sqe[7] = addr >> 32
    sqe[8] = length
    sqe[9] = type_byte << 24


def written(nvme0, nvme0n1, lba, n, value):
    q = Qpair(nvme0, 4)
    try:
        b = Buffer(n * nvme0n1.sector_size, ptype=32, pvalue=value)
        nvme0n1.write(q, b, lba, n).waitdone()
        return bytes(b[0 : n * nvme0n1.sector_size])
    finally:
        q.delete()


@pytest.mark.device
def test_sgl_data_block_byte_aligned(nvme0, nvme0n1):
    """A Data Block at an odd byte address receives the read when SGLS allows byte alignment.

    Spec: NVMe 2.0 base spec 4.1.2 SGL Data Block descriptor, 5.17.2.1 SGLS bits 1:0 (01b: no
    alignment requirement; 10b: dword alignment required).

    Steps:
    1. Skip unless SGLS bits 1:0 are 01b.
    2. Write 2 blocks; read them through one Data Block at byte offset 3 of a buffer.
    3. Check status 0 and the data at the offset.
    """
    if need_sgl(nvme0) & 0x3 != 0x1:
        pytest.skip("SGLs require dword alignment (SGLS bits 1:0 = 10b)")
    ss = nvme0n1.sector_size
    data = written(nvme0, nvme0n1, 60, 2, 0x5617)
    b = Buffer(2 * ss + 64)
    sqe = rw_sqe(0x02, nvme0n1.nsid, 60, 2)
    raw_sgl(sqe, b.phys_addr + 3, 2 * ss, 0x00)
    assert run(nvme0, sqe) == (0, 0)
    assert bytes(b[3 : 3 + 2 * ss]) == data


@pytest.mark.device
def test_sgl_data_block_too_short(nvme0, nvme0n1):
    """A Data Block shorter than the transfer fails with Data SGL Length Invalid (00/0F).

    Spec: NVMe 2.0 base spec 4.1.2 (the SGL describes at least the data of the command),
    4.2.3 status 0Fh.

    Steps:
    1. Skip without SGL support.
    2. Read 2 blocks through one Data Block of 1 block.
    3. Check status 00/0F.
    """
    need_sgl(nvme0)
    ss = nvme0n1.sector_size
    b = Buffer(2 * ss)
    sqe = rw_sqe(0x02, nvme0n1.nsid, 0, 2)
    raw_sgl(sqe, b.phys_addr, ss, 0x00)
    assert run(nvme0, sqe) == (0, 0x0F)


@pytest.mark.device
def test_sgl_data_block_longer_than_transfer(nvme0, nvme0n1):
    """A Data Block longer than the transfer is accepted when SGLS bit 18 allows it.

    Spec: NVMe 2.0 base spec 5.17.2.1 SGLS bit 18 (SGL length larger than the data), 4.2.3
    status 0Fh Data SGL Length Invalid ("may occur if the length of a Data SGL is too long and
    the controller does not support" longer SGLs: a controller without bit 18 may reject it,
    and is not required to).

    Steps:
    1. Skip without SGL support.
    2. Read 1 block through a Data Block of 2 blocks.
    3. With SGLS bit 18: status 0; without: status 0 or Data SGL Length Invalid (00/0F).
    """
    s = need_sgl(nvme0)
    ss = nvme0n1.sector_size
    b = Buffer(2 * ss)
    sqe = rw_sqe(0x02, nvme0n1.nsid, 0, 1)
    raw_sgl(sqe, b.phys_addr, 2 * ss, 0x00)
    got = run(nvme0, sqe)
    assert got in (((0, 0),) if s & (1 << 18) else ((0, 0), (0, 0x0F))), got


@pytest.mark.device
@pytest.mark.parametrize("sgl_type", [0x6, 0xE])
def test_sgl_reserved_descriptor_type(nvme0, nvme0n1, sgl_type):
    """A reserved SGL descriptor type fails with SGL Descriptor Type Invalid (00/11).

    Spec: NVMe 2.0 base spec 4.1.2 (descriptor types 6h-Eh reserved), 4.2.3 11h.

    Steps:
    1. Skip without SGL support.
    2. Read 1 block with a descriptor of the reserved type.
    3. Check status 00/11.
    """
    need_sgl(nvme0)
    b = Buffer(nvme0n1.sector_size)
    sqe = rw_sqe(0x02, nvme0n1.nsid, 0, 1)
    raw_sgl(sqe, b.phys_addr, nvme0n1.sector_size, sgl_type << 4)
    assert run(nvme0, sqe) == (0, 0x11)


@pytest.mark.device
def test_sgl_bit_bucket_in_write(nvme0, nvme0n1):
    """A Bit Bucket describing data of a Write fails with SGL Descriptor Type Invalid.

    Spec: NVMe 2.0 base spec 4.1.2.2 SGL Bit Bucket ("only for data transferred from the
    controller to the host"), 4.2.3 11h.

    Steps:
    1. Skip unless bit buckets are supported (SGLS bit 16).
    2. Write 1 block with a Bit Bucket as the data pointer.
    3. Check status 00/11 and the block still holds what was written before.
    """
    if not need_sgl(nvme0) & (1 << 16):
        pytest.skip("SGL Bit Bucket not supported (SGLS bit 16)")
    ss = nvme0n1.sector_size
    before = written(nvme0, nvme0n1, 70, 1, 0xB0CE7)
    sqe = rw_sqe(0x01, nvme0n1.nsid, 70, 1)
    raw_sgl(sqe, 0, ss, 0x10)
    assert run(nvme0, sqe) == (0, 0x11)
    q = Qpair(nvme0, 4)
    try:
        r = Buffer(ss)
        nvme0n1.read(q, r, 70).waitdone()
        assert bytes(r[0:ss]) == before
    finally:
        q.delete()


@pytest.mark.device
def test_sgl_last_segment_two_blocks(nvme0, nvme0n1):
    """A Last Segment with two Data Blocks splits a read between two buffers in order.

    Spec: NVMe 2.0 base spec 4.1.2 (Last Segment descriptor, Data Block descriptors).

    Steps:
    1. Skip without SGL support; write 3 blocks.
    2. Read them through a Last Segment of [1 block, 2 blocks].
    3. Check status 0 and each buffer holds its part.
    """
    need_sgl(nvme0)
    ss = nvme0n1.sector_size
    data = written(nvme0, nvme0n1, 80, 3, 0x1A57)
    seg = LastSegmentSGL(32)
    first, second = DataBlockSGL(ss), DataBlockSGL(2 * ss)
    seg[0] = first
    seg[1] = second
    sqe = rw_sqe(0x02, nvme0n1.nsid, 80, 3)
    sqe.sgl = seg
    assert run(nvme0, sqe) == (0, 0)
    assert bytes(first[0:ss]) == data[0:ss]
    assert bytes(second[0 : 2 * ss]) == data[ss : 3 * ss]


@pytest.mark.device
def test_sgl_not_supported(nvme0, nvme0n1):
    """An NVM command with PSDT 01b fails with Invalid Field when SGLs are not supported.

    Spec: NVMe 2.0 base spec 4.2 (PSDT), 5.17.2.1 SGLS bits 1:0 = 00b.

    Steps:
    1. Skip if the controller supports SGLs.
    2. Read 1 block with an SGL Data Block.
    3. Check status 00/02.
    """
    if sgls(nvme0) & 0x3:
        pytest.skip("the controller supports SGLs")
    b = Buffer(nvme0n1.sector_size)
    sqe = rw_sqe(0x02, nvme0n1.nsid, 0, 1)
    raw_sgl(sqe, b.phys_addr, nvme0n1.sector_size, 0x00)
    assert run(nvme0, sqe) == (0, 0x02)
