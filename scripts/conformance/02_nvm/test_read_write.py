"""NVM Read (02h), Write (01h), Flush (00h) and their error statuses.

Data written is read back byte for byte (one block, many blocks, unaligned buffers through a
PRP offset, SGL when the controller supports it, FUA writes and reads); a transfer larger than
MDTS is rejected (00/02), an LBA range beyond the namespace (00/80), a namespace id that is not
valid (00/0b), an IO opcode that does not exist (00/01).
"""

import pytest

from nvme import *


def pattern(size, seed):
    return Buffer(size, ptype=32, pvalue=0x01010101 * (seed & 0xFF) ^ 0xA5C3E1F0)


@pytest.mark.device
@pytest.mark.parametrize("lba_count", [1, 8, 9, 64])
def test_write_read_back(nvme0, nvme0n1, qpair, lba_count):
    """Data written to 1, 8, 9 and 64 blocks reads back identical.

    Spec: NVM command set spec 3.2.4 Read, 3.2.6 Write.

    Steps:
    1. Skip sizes beyond MDTS.
    2. Write a pattern at LBA 100, read it back.
    3. Compare.
    """
    size = lba_count * nvme0n1.sector_size
    if size > nvme0.mdts:
        pytest.skip(f"{size} bytes exceed MDTS ({nvme0.mdts} bytes)")
    wbuf = pattern(size, lba_count)
    rbuf = Buffer(size)
    nvme0n1.write(qpair, wbuf, 100, lba_count).waitdone()
    nvme0n1.read(qpair, rbuf, 100, lba_count).waitdone()
    assert rbuf[0:size] == wbuf[0:size]


@pytest.mark.device
def test_write_read_last_lba(nvme0n1, qpair, nsze):
    """The last LBA of the namespace can be written and read.

    Spec: NVM command set spec 3.2.4/3.2.6 (SLBA up to NSZE-1).

    Steps:
    1. Write a pattern to LBA NSZE-1.
    2. Read it back and compare.
    """
    wbuf = pattern(nvme0n1.sector_size, 7)
    rbuf = Buffer(nvme0n1.sector_size)
    nvme0n1.write(qpair, wbuf, nsze - 1).waitdone()
    nvme0n1.read(qpair, rbuf, nsze - 1).waitdone()
    assert rbuf == wbuf


@pytest.mark.device
@pytest.mark.parametrize("offset", [4, 512, 2048 + 4])
def test_read_prp_page_offset(nvme0n1, qpair, offset):
    """A read into a buffer at a dword offset in its page fills exactly that buffer.

    Spec: NVMe 2.0 base spec 4.1.1 PRP entry offset.

    Steps:
    1. Write 2 blocks.
    2. Read them into a buffer at the offset.
    3. Check the data and that the bytes before the offset stay zero.
    """
    ss = nvme0n1.sector_size
    wbuf = pattern(2 * ss, 3)
    nvme0n1.write(qpair, wbuf, 10, 2).waitdone()
    rbuf = Buffer(2 * ss + offset)
    rbuf.offset = offset
    rbuf.size = 2 * ss
    nvme0n1.read(qpair, rbuf, 10, 2).waitdone()
    assert rbuf[offset : offset + 2 * ss] == wbuf[0 : 2 * ss]
    assert rbuf[0:offset] == bytes(offset), "data written before the PRP offset"


@pytest.mark.device
def test_write_read_sgl(nvme0n1, qpair, id_ctrl_buf):
    """Write and read through SGL data descriptors when the controller supports SGLs.

    Spec: NVMe 2.0 base spec 4.1.2 Scatter Gather List, 5.17.2.1 SGLS.

    Steps:
    1. Skip unless SGLS bits 1:0 report SGL support.
    2. Write and read 4 blocks with SGL buffers.
    3. Compare.
    """
    if id_ctrl_buf.data(539, 536) & 0x3 == 0:
        pytest.skip("SGLs not supported for NVM commands (SGLS bits 1:0)")
    ss = nvme0n1.sector_size
    wbuf = pattern(4 * ss, 5)
    wbuf.sgl = True
    rbuf = Buffer(4 * ss)
    rbuf.sgl = True
    nvme0n1.write(qpair, wbuf, 20, 4).waitdone()
    nvme0n1.read(qpair, rbuf, 20, 4).waitdone()
    assert rbuf == wbuf


@pytest.mark.device
def test_write_fua_read_fua(nvme0n1, qpair):
    """A Write and a Read with FUA move the data.

    Spec: NVM command set spec 3.2.4/3.2.6 (FUA).

    Steps:
    1. Write one block with FUA.
    2. Read it with FUA and compare.
    """
    wbuf = pattern(nvme0n1.sector_size, 9)
    rbuf = Buffer(nvme0n1.sector_size)
    nvme0n1.write(qpair, wbuf, 30, 1, io_flags=1 << 14).waitdone()
    nvme0n1.read(qpair, rbuf, 30, 1, io_flags=1 << 14).waitdone()
    assert rbuf == wbuf


@pytest.mark.device
def test_overwrite_returns_latest_data(nvme0n1, qpair):
    """After four writes to one LBA, a read returns the last data.

    Spec: NVM command set spec 3.2.6 Write.

    Steps:
    1. Write four patterns to LBA 40.
    2. Read it: the fourth pattern.
    """
    rbuf = Buffer(nvme0n1.sector_size)
    for seed in range(1, 5):
        wbuf = pattern(nvme0n1.sector_size, seed)
        nvme0n1.write(qpair, wbuf, 40).waitdone()
    nvme0n1.read(qpair, rbuf, 40).waitdone()
    assert rbuf == wbuf


@pytest.mark.device
def test_flush(nvme0n1, qpair):
    """Flush after a write completes successfully.

    Spec: NVM command set spec 3.2.2 Flush.

    Steps:
    1. Write one block.
    2. Flush and check status 0.
    """
    nvme0n1.write(qpair, pattern(nvme0n1.sector_size, 1), 50).waitdone()
    got = []
    nvme0n1.flush(qpair, cb=got.append).waitdone()
    assert (got[0].sct, got[0].sc) == (0, 0)


@pytest.mark.device
def test_read_beyond_mdts(nvme0, nvme0n1, qpair, id_ctrl_buf):
    """A read of MDTS bytes succeeds; one block more fails with 00/02.

    Spec: NVMe 2.0 base spec 5.17.2.1 MDTS.

    Steps:
    1. Skip if MDTS is 0 or above 2 MiB.
    2. Read MDTS bytes: success.
    3. Read one block more: 00/02.
    """
    if id_ctrl_buf.data(77) == 0:
        pytest.skip("MDTS is 0: no transfer size limit")
    if nvme0.mdts >= 2 << 20:
        pytest.skip("MDTS is 2 MiB or more, beyond the driver's transfer limit")
    blocks = nvme0.mdts // nvme0n1.sector_size
    rbuf = Buffer((blocks + 1) * nvme0n1.sector_size)
    nvme0n1.read(qpair, rbuf, 0, blocks).waitdone()
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0n1.read(qpair, rbuf, 0, blocks + 1).waitdone()


@pytest.mark.device
def test_lba_out_of_range(nvme0n1, qpair, buf, nsze):
    """Reads and writes at NSZE, or ending beyond it, fail with LBA Out of Range.

    Spec: NVMe 2.0 base spec 4.2.3 (00/80).

    Steps:
    1. Read and write LBA NSZE: 00/80.
    2. Read 2 blocks from NSZE-1: 00/80.
    """
    with pytest.warns(UserWarning, match="ERROR status: 00/80"):
        nvme0n1.read(qpair, buf, nsze, 1).waitdone()
    with pytest.warns(UserWarning, match="ERROR status: 00/80"):
        nvme0n1.write(qpair, buf, nsze, 1).waitdone()
    # The range ends beyond the last LBA.
    two = Buffer(2 * nvme0n1.sector_size)
    with pytest.warns(UserWarning, match="ERROR status: 00/80"):
        nvme0n1.read(qpair, two, nsze - 1, 2).waitdone()


@pytest.mark.device
def test_io_invalid_namespace(nvme0n1, qpair, buf, id_ctrl_buf):
    """A read for NSID NN+1 or 0 fails with Invalid Namespace or Format.

    Spec: NVMe 2.0 base spec 4.2.3 (00/0B).

    Steps:
    1. Skip if NN leaves no invalid namespace id.
    2. Read with NSID NN+1 and with NSID 0.
    3. Check 00/0B each time.
    """
    nn = id_ctrl_buf.data(519, 516)
    if nn >= 0xFFFFFFFE:
        pytest.skip("NN leaves no invalid namespace id")
    with pytest.warns(UserWarning, match="ERROR status: 00/0b"):
        nvme0n1.send_cmd(0x02, qpair, buf, nsid=nn + 1).waitdone()
    with pytest.warns(UserWarning, match="ERROR status: 00/0b"):
        nvme0n1.send_cmd(0x02, qpair, buf, nsid=0).waitdone()


@pytest.mark.device
def test_invalid_io_opcode(nvme0n1, qpair):
    """IO opcode 7Fh fails with Invalid Command Opcode.

    Spec: NVM command set spec 3 (opcodes), NVMe 2.0 base spec 4.2.3 (00/01).

    Steps:
    1. Send opcode 7Fh on an IO queue.
    2. Check status 00/01.
    """
    # 7Fh is not an NVM command set opcode.
    with pytest.warns(UserWarning, match="ERROR status: 00/01"):
        nvme0n1.send_cmd(0x7F, qpair).waitdone()
