"""NVM commands: range and field errors of every command, flags, and data they leave behind.

For Read, Write, Compare, Write Zeroes, Write Uncorrectable and Verify: the last LBA works,
a start at NSZE and a range crossing the end fail with 00/80, NSID 0, NN+1 and FFFFFFFFh fail
with 00/0B. Flush with the broadcast NSID as VWC says, FUA and Limited Retry on Read/Write,
Write MDTS, Write Zeroes with FUA and Deallocate, DSM with 256 ranges, out of range and as a
hint, Copy limits (01/83) and ranges, Write Uncorrectable cleared by write/zeroes/deallocate,
fused commands the controller does not support, and transfer sizes 1..MDTS with verify on.
"""

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")

FUA = 1 << 14
LR = 1 << 15

# name: (opcode, ONCS bit or None, moves data)
COMMANDS = {
    "read": (0x02, None, True),
    "write": (0x01, None, True),
    "compare": (0x05, 0, True),
    "write_zeroes": (0x08, 3, False),
    "write_uncorrectable": (0x04, 1, False),
    "verify": (0x0C, 7, False),
}


def need(oncs, name):
    bit = COMMANDS[name][1]
    if bit is not None and not oncs & (1 << bit):
        pytest.skip(f"{name} not supported (ONCS bit {bit})")


def issue(nvme0n1, qpair, name, lba, n, buf=None):
    """Send command `name` for LBAs lba..lba+n-1 with the namespace's own NSID."""
    opcode, _, data = COMMANDS[name]
    b = buf if buf is not None else (Buffer(n * nvme0n1.sector_size) if data else None)
    return nvme0n1.send_cmd(
        opcode, qpair, b, nsid=nvme0n1.nsid, cdw10=lba & 0xFFFFFFFF, cdw11=lba >> 32, cdw12=n - 1
    )


def written(nvme0n1, qpair, lba, n, value):
    b = Buffer(n * nvme0n1.sector_size, ptype=32, pvalue=value)
    nvme0n1.write(qpair, b, lba, n).waitdone()
    return b


@pytest.mark.device
@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_last_lba(nvme0n1, qpair, oncs, nsze, name):
    """Each NVM command on the last LBA of the namespace succeeds.

    Spec: NVM command set spec 3.2 (Read, Write, Compare, Write Zeroes, Write Uncorrectable,
    Verify): SLBA + NLB may reach NSZE - 1.

    Steps:
    1. Skip if ONCS does not report the command.
    2. Write the last LBA (for Compare: with the data the compare sends).
    3. Send the command for the last LBA: success.
    4. Write the block again so Write Uncorrectable leaves nothing behind.
    """
    need(oncs, name)
    b = written(nvme0n1, qpair, nsze - 1, 1, 0)
    issue(nvme0n1, qpair, name, nsze - 1, 1, b if name == "compare" else None).waitdone()
    written(nvme0n1, qpair, nsze - 1, 1, 0)


@pytest.mark.device
@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_slba_at_nsze(nvme0n1, qpair, oncs, nsze, name):
    """Each NVM command starting at NSZE fails with LBA Out of Range (00/80).

    Spec: NVMe 2.0 base spec 4.2.3 Generic Command Status (LBA Out of Range); NVM command set
    spec 3.2.

    Steps:
    1. Skip if ONCS does not report the command.
    2. Send it for one block at LBA NSZE.
    3. Check status 00/80.
    """
    need(oncs, name)
    with pytest.warns(UserWarning, match="ERROR status: 00/80"):
        issue(nvme0n1, qpair, name, nsze, 1).waitdone()


@pytest.mark.device
@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_range_crosses_end(nvme0n1, qpair, oncs, nsze, name):
    """Each NVM command whose range starts inside and ends beyond the namespace fails 00/80.

    Spec: NVMe 2.0 base spec 4.2.3 (LBA Out of Range: "exceeds the size of the namespace").

    Steps:
    1. Skip if ONCS does not report the command.
    2. Send it for 8 blocks starting at NSZE - 4.
    3. Check status 00/80.
    """
    need(oncs, name)
    with pytest.warns(UserWarning, match="ERROR status: 00/80"):
        issue(nvme0n1, qpair, name, nsze - 4, 8).waitdone()


@pytest.mark.device
@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_slba_64bit(nvme0n1, qpair, oncs, nsze, name):
    """An SLBA with bits above 31 set (CDW11) is out of range for any namespace below 2^32.

    Spec: NVM command set spec 3.2 (SLBA in CDW10 and CDW11).

    Steps:
    1. Skip if ONCS does not report the command or NSZE reaches 2^32 blocks.
    2. Send it for LBA 2^32 (CDW10 = 0, CDW11 = 1).
    3. Check status 00/80: the controller reads the upper dword.
    """
    need(oncs, name)
    if nsze > 1 << 32:
        pytest.skip("namespace of 2^32 blocks or more")
    with pytest.warns(UserWarning, match="ERROR status: 00/80"):
        issue(nvme0n1, qpair, name, 1 << 32, 1).waitdone()


@pytest.mark.device
@pytest.mark.parametrize("name", list(COMMANDS))
@pytest.mark.parametrize("which", ["zero", "above_nn", "broadcast"])
def test_command_invalid_nsid(nvme0n1, qpair, oncs, id_ctrl_buf, name, which):
    """Each NVM command with NSID 0, NN+1 or FFFFFFFFh fails with 00/0B.

    Spec: NVMe 2.0 base spec 4.2.3 (Invalid Namespace or Format), 3.2.1.2 (the broadcast NSID
    is not valid for these I/O commands).

    Steps:
    1. Skip if ONCS does not report the command (or NN leaves no NN+1).
    2. Send it for LBA 0 with the NSID.
    3. Check status 00/0B.
    """
    need(oncs, name)
    nn = id_ctrl_buf.data(519, 516)
    nsid = {"zero": 0, "above_nn": nn + 1, "broadcast": 0xFFFFFFFF}[which]
    if which == "above_nn" and nn >= 0xFFFFFFFE:
        pytest.skip("NN leaves no invalid namespace id")
    opcode, _, data = COMMANDS[name]
    b = Buffer(nvme0n1.sector_size) if data else None
    with pytest.warns(UserWarning, match="ERROR status: 00/0b"):
        nvme0n1.send_cmd(opcode, qpair, b, nsid=nsid).waitdone()


@pytest.mark.device
def test_flush_broadcast_nsid(nvme0n1, qpair, id_ctrl_buf, error_statuses):
    """Flush with NSID FFFFFFFFh succeeds or fails as VWC bits 2:1 announce.

    Spec: NVMe 2.0 base spec 5.17.2.1 VWC bits 2:1; NVM command set spec 3.2.2 Flush.

    Steps:
    1. Read VWC bits 2:1.
    2. Send Flush with NSID FFFFFFFFh.
    3. 11b: success; 10b: 00/0B; 00b (before 1.4): either.
    """
    vwc = (id_ctrl_buf.data(525) >> 1) & 0x3
    got = error_statuses(lambda: nvme0n1.send_cmd(0x00, qpair, nsid=0xFFFFFFFF).waitdone())
    if vwc == 0x3:
        assert got == [], got
    elif vwc == 0x2:
        assert got == ["00/0b"], got
    else:
        assert got in ([], ["00/0b"]), got


@pytest.mark.device
def test_flush_invalid_nsid(nvme0n1, qpair, id_ctrl_buf):
    """Flush of a namespace id above NN fails with Invalid Namespace or Format.

    Spec: NVM command set spec 3.2.2 Flush; NVMe 2.0 base spec 4.2.3.

    Steps:
    1. Send Flush with NSID NN+1.
    2. Check status 00/0B.
    """
    nn = id_ctrl_buf.data(519, 516)
    if nn >= 0xFFFFFFFE:
        pytest.skip("NN leaves no invalid namespace id")
    with pytest.warns(UserWarning, match="ERROR status: 00/0b"):
        nvme0n1.send_cmd(0x00, qpair, nsid=nn + 1).waitdone()


@pytest.mark.device
@pytest.mark.parametrize("flags", [0, FUA, LR, FUA | LR], ids=["none", "fua", "lr", "fua_lr"])
def test_write_read_flags(nvme0n1, qpair, verify, flags):
    """Write and Read with every combination of FUA and Limited Retry move the same data.

    Spec: NVM command set spec 3.2.4 Read, 3.2.6 Write (CDW12 bit 30 FUA, bit 31 LR).

    Steps:
    1. Write 8 blocks of a pattern with the flags.
    2. Read them with the same flags (verification on).
    3. Check the data read equals the data written.
    """
    w = Buffer(8 * nvme0n1.sector_size, ptype=32, pvalue=0xF1A90000 | flags >> 8)
    r = Buffer(len(w))
    nvme0n1.write(qpair, w, 900, 8, io_flags=flags).waitdone()
    nvme0n1.read(qpair, r, 900, 8, io_flags=flags).waitdone()
    assert r == w


@pytest.mark.device
def test_write_beyond_mdts(nvme0, nvme0n1, qpair, id_ctrl_buf):
    """A Write of MDTS bytes succeeds; one block more fails with 00/02.

    Spec: NVMe 2.0 base spec 5.17.2.1 MDTS; NVM command set spec 3.2.6 Write.

    Steps:
    1. Skip if MDTS is 0 or above the driver's 2 MiB transfer limit.
    2. Write MDTS / block size blocks: success.
    3. Write one block more: status 00/02.
    """
    if id_ctrl_buf.data(77) == 0:
        pytest.skip("MDTS is 0: no transfer size limit")
    if nvme0.mdts >= 2 << 20:
        pytest.skip("MDTS is 2 MiB or more, beyond the driver's transfer limit")
    blocks = nvme0.mdts // nvme0n1.sector_size
    b = Buffer((blocks + 1) * nvme0n1.sector_size, ptype=32, pvalue=0x3D75)
    nvme0n1.write(qpair, b, 0, blocks).waitdone()
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0n1.write(qpair, b, 0, blocks + 1).waitdone()


@pytest.mark.device
def test_transfer_sizes_up_to_mdts(nvme0, nvme0n1, qpair, verify):
    """Writes and reads of 1, 2, 3, 7, 8, 9, 31, 64 ... blocks up to MDTS return the data.

    Spec: NVM command set spec 3.2.4/3.2.6 (NLB); NVMe 2.0 base spec 4.1.1 PRP lists.

    Steps:
    1. For each size up to min(MDTS, 1 MiB): write a pattern at an odd LBA, read it back
       (verification on).
    2. Check each read equals its write.
    """
    ss = nvme0n1.sector_size
    limit = min(nvme0.mdts, 1 << 20) // ss
    sizes = sorted({n for n in (1, 2, 3, 7, 8, 9, 31, 64, 65, 127, 255, 256) if n <= limit})
    sizes.append(limit)
    for i, n in enumerate(sizes):
        w = Buffer(n * ss, ptype=32, pvalue=0x51250000 + n)
        r = Buffer(n * ss)
        lba = 10001 + i * 2048
        nvme0n1.write(qpair, w, lba, n).waitdone()
        nvme0n1.read(qpair, r, lba, n).waitdone()
        assert r == w, f"{n} blocks"


@pytest.mark.device
@pytest.mark.parametrize("flags", [0, FUA], ids=["plain", "fua"])
def test_write_zeroes_fua(nvme0n1, qpair, verify, oncs, flags):
    """Write Zeroes (with and without FUA) makes the blocks read as zeroes.

    Spec: NVM command set spec 3.2.8 Write Zeroes (CDW12 FUA).

    Steps:
    1. Skip unless Write Zeroes is supported (ONCS bit 3).
    2. Write a pattern to 16 blocks; Write Zeroes blocks 4..11.
    3. Read all 16 (verification on): 4..11 are zero, the rest keep the pattern.
    """
    need(oncs, "write_zeroes")
    ss = nvme0n1.sector_size
    w = written(nvme0n1, qpair, 1200, 16, 0x2E505A)
    nvme0n1.write_zeroes(qpair, 1204, 8, io_flags=flags).waitdone()
    r = Buffer(16 * ss)
    nvme0n1.read(qpair, r, 1200, 16).waitdone()
    assert r[4 * ss : 12 * ss] == bytes(8 * ss)
    assert r[0 : 4 * ss] == w[0 : 4 * ss]
    assert r[12 * ss : 16 * ss] == w[12 * ss : 16 * ss]


@pytest.mark.device
def test_write_zeroes_deallocate(nvme0n1, qpair, verify, oncs, id_ns_buf):
    """Write Zeroes with Deallocate reads zeroes afterwards.

    Spec: NVM command set spec 3.2.8 Write Zeroes (DEAC, CDW12 bit 25), 4.1.5.1 DLFEAT.

    Steps:
    1. Skip unless Write Zeroes is supported.
    2. Write a pattern to 8 blocks, then Write Zeroes with DEAC.
    3. Read them: all zero (Write Zeroes reads zero whether deallocated or not).
    """
    need(oncs, "write_zeroes")
    ss = nvme0n1.sector_size
    written(nvme0n1, qpair, 1300, 8, 0xDEAC)
    nvme0n1.write_zeroes(qpair, 1300, 8, io_flags=1 << 9).waitdone()
    r = Buffer(8 * ss)
    nvme0n1.read(qpair, r, 1300, 8).waitdone()
    assert r[0 : 8 * ss] == bytes(8 * ss)


@pytest.mark.device
def test_write_zeroes_beyond_mdts(nvme0, nvme0n1, qpair, verify, oncs, error_statuses):
    """Write Zeroes moves no data: a range larger than MDTS is allowed (WZSL permitting).

    Spec: NVM command set spec 3.2.8 Write Zeroes, 4.1.5.2 Identify Controller WZSL.

    Steps:
    1. Skip unless Write Zeroes is supported; read WZSL (CNS 06h, byte 1) if the controller
       answers it, skip if it limits the size below 2 * MDTS.
    2. Write Zeroes for 2 * MDTS of blocks.
    3. Read the first and last block: zero.
    """
    need(oncs, "write_zeroes")
    ss = nvme0n1.sector_size
    n = 2 * nvme0.mdts // ss
    if n > 0x10000:
        pytest.skip("2 * MDTS exceeds the 16-bit NLB field")
    b = Buffer(4096)
    if error_statuses(lambda: nvme0.identify(b, cns=6, csi=0).waitdone()):
        pytest.skip("no I/O command set specific Identify Controller (CNS 06h): WZSL unknown")
    wzsl = b.data(1)
    mpsmin = 1 << (12 + ((nvme0.cap >> 48) & 0xF))
    if wzsl and (mpsmin << wzsl) < n * ss:
        pytest.skip(f"WZSL {wzsl} limits Write Zeroes below {n} blocks")
    written(nvme0n1, qpair, 40000, 1, 1)
    written(nvme0n1, qpair, 40000 + n - 1, 1, 2)
    nvme0n1.write_zeroes(qpair, 40000, n).waitdone()
    r = Buffer(ss)
    for lba in (40000, 40000 + n - 1):
        nvme0n1.read(qpair, r, lba).waitdone()
        assert r[0:ss] == bytes(ss)


@pytest.mark.device
def test_dsm_256_ranges(nvme0n1, qpair, verify, oncs):
    """Dataset Management with the maximum 256 ranges deallocates every range.

    Spec: NVM command set spec 3.2.3 Dataset Management (NR 0's based, up to 256 ranges).

    Steps:
    1. Skip unless DSM is supported (ONCS bit 2).
    2. Write a pattern to 512 blocks; deallocate every even block (256 ranges of 1).
    3. Read all 512 blocks one by one (verification on: the driver knows which were
       deallocated) and check the odd blocks keep the pattern.
    """
    need_bit(oncs, 2, "Dataset Management")
    ss = nvme0n1.sector_size
    # Written in chunks within MDTS; each buffer holds what was written.
    step = min(256, nvme0n1.nvme.mdts // ss)
    chunks = [written(nvme0n1, qpair, 2048 + c, step, 0xD5A0 + c) for c in range(0, 512, step)]
    ranges = Buffer(4096)
    for i in range(256):
        ranges.set_dsm_range(i, 2048 + 2 * i, 1)
    nvme0n1.dsm(qpair, ranges, 256).waitdone()
    r = Buffer(ss)
    for i in range(512):
        nvme0n1.read(qpair, r, 2048 + i).waitdone()
        if i % 2:
            h, j = chunks[i // step], i % step
            assert r[0:ss] == h[j * ss : (j + 1) * ss], f"block {2048 + i}"


@pytest.mark.device
def test_dsm_range_out_of_capacity(nvme0n1, qpair, oncs, nsze):
    """A DSM range beyond the namespace fails with LBA Out of Range.

    Spec: NVM command set spec 3.2.3 Dataset Management; NVMe 2.0 base spec 4.2.3.

    Steps:
    1. Skip unless DSM is supported.
    2. Deallocate one valid range and one starting at NSZE.
    3. Check status 00/80.
    """
    need_bit(oncs, 2, "Dataset Management")
    ranges = Buffer(4096)
    ranges.set_dsm_range(0, 0, 1)
    ranges.set_dsm_range(1, nsze, 1)
    with pytest.warns(UserWarning, match="ERROR status: 00/80"):
        nvme0n1.dsm(qpair, ranges, 2).waitdone()


@pytest.mark.device
def test_dsm_without_deallocate_keeps_data(nvme0n1, qpair, verify, oncs):
    """DSM with only access hints (AD = 0) leaves the data as it was.

    Spec: NVM command set spec 3.2.3 Dataset Management (IDR/IDW hints, AD bit 2 of CDW11).

    Steps:
    1. Skip unless DSM is supported.
    2. Write a pattern to 8 blocks; send DSM over them with attribute IDR|IDW (bits 1:0).
    3. Read them: the pattern is unchanged.
    """
    need_bit(oncs, 2, "Dataset Management")
    w = written(nvme0n1, qpair, 3100, 8, 0x1D1D)
    ranges = Buffer(4096)
    ranges.set_dsm_range(0, 3100, 8)
    nvme0n1.dsm(qpair, ranges, 1, attribute=0x3).waitdone()
    r = Buffer(len(w))
    nvme0n1.read(qpair, r, 3100, 8).waitdone()
    assert r == w


def copy_ranges(entries):
    """Copy source range entries, format 0: SLBA bytes 15:8, NLB (0's based) bytes 17:16."""
    b = Buffer(max(4096, 32 * len(entries)))
    for i, (slba, nlb) in enumerate(entries):
        b[32 * i + 8 : 32 * i + 16] = slba.to_bytes(8, "little")
        b[32 * i + 16 : 32 * i + 18] = (nlb - 1).to_bytes(2, "little")
    return b


def copy_limits(nvme0n1):
    id_ns = nvme0n1.id_ns()
    return id_ns.mssrl, id_ns.mcl, id_ns.msrc + 1


def need_two_block_copy(nvme0n1, oncs):
    """Skip unless Copy is supported and MSSRL and MCL allow one range of 2 blocks."""
    need_bit(oncs, 8, "Copy")
    mssrl, mcl, _ = copy_limits(nvme0n1)
    if mssrl < 2 or mcl < 2:
        pytest.skip(f"Copy limits allow no 2-block copy (MSSRL {mssrl}, MCL {mcl})")


@pytest.mark.device
def test_copy_multiple_ranges(nvme0n1, qpair, verify, oncs):
    """Copy of three source ranges writes them back to back at the destination.

    Spec: NVM command set spec 3.2.1 Copy (source range entries, SDLBA).

    Steps:
    1. Skip unless Copy is supported (ONCS bit 8) and MSRC allows 3 ranges, MSSRL 2 blocks.
    2. Write three 2-block patterns at different LBAs.
    3. Copy them to one destination; read 6 blocks there: the three patterns in order.
    """
    need_bit(oncs, 8, "Copy")
    mssrl, mcl, msrc = copy_limits(nvme0n1)
    if msrc < 3 or mssrl < 2 or mcl < 6:
        pytest.skip(f"copy limits MSSRL {mssrl} MCL {mcl} MSRC {msrc}")
    srcs = [written(nvme0n1, qpair, lba, 2, 0xC0 + lba) for lba in (4000, 4100, 4200)]
    nvme0n1.copy(qpair, copy_ranges([(4000, 2), (4100, 2), (4200, 2)]), 3, 4500).waitdone()
    ss = nvme0n1.sector_size
    r = Buffer(6 * ss)
    nvme0n1.read(qpair, r, 4500, 6).waitdone()
    for i, s in enumerate(srcs):
        assert r[2 * i * ss : 2 * (i + 1) * ss] == s[0 : 2 * ss], f"range {i}"


@pytest.mark.device
def test_copy_source_range_too_long(nvme0n1, qpair, oncs):
    """A source range longer than MSSRL fails with Command Size Limit Exceeded (01/83).

    Spec: NVM command set spec 3.2.1 Copy, 4.1.5.1 MSSRL; status 01/83.

    Steps:
    1. Skip unless Copy is supported and MSSRL leaves room for one block more.
    2. Copy one range of MSSRL + 1 blocks.
    3. Check status 01/83.
    """
    need_bit(oncs, 8, "Copy")
    mssrl, _, _ = copy_limits(nvme0n1)
    if not mssrl or mssrl >= 0xFFFF:
        pytest.skip(f"MSSRL {mssrl}")
    with pytest.warns(UserWarning, match="ERROR status: 01/83"):
        nvme0n1.copy(qpair, copy_ranges([(0, mssrl + 1)]), 1, 8000).waitdone()


@pytest.mark.device
def test_copy_too_many_ranges(nvme0n1, qpair, oncs):
    """More source ranges than MSRC + 1 fails with Command Size Limit Exceeded (01/83).

    Spec: NVM command set spec 3.2.1 Copy, 4.1.5.1 MSRC (0's based).

    Steps:
    1. Skip unless Copy is supported and MSRC + 1 < 256.
    2. Copy MSRC + 2 ranges of one block each.
    3. Check status 01/83.
    """
    need_bit(oncs, 8, "Copy")
    _, _, msrc = copy_limits(nvme0n1)
    if msrc >= 256:
        pytest.skip("MSRC allows all 256 ranges")
    entries = [(i, 1) for i in range(msrc + 1)]
    with pytest.warns(UserWarning, match="ERROR status: 01/83"):
        nvme0n1.copy(qpair, copy_ranges(entries), len(entries), 8000).waitdone()


@pytest.mark.device
def test_copy_destination_out_of_range(nvme0n1, qpair, oncs, nsze):
    """A Copy whose destination ends beyond the namespace fails with LBA Out of Range.

    Spec: NVM command set spec 3.2.1 Copy (SDLBA); NVMe 2.0 base spec 4.2.3.

    Steps:
    1. Skip unless Copy is supported and its limits (MSSRL, MCL) allow a copy of 2 blocks:
       otherwise Command Size Limit Exceeded applies as well, and the spec orders neither.
    2. Copy 2 blocks from LBA 0 to NSZE - 1.
    3. Check status 00/80.
    """
    need_two_block_copy(nvme0n1, oncs)
    with pytest.warns(UserWarning, match="ERROR status: 00/80"):
        nvme0n1.copy(qpair, copy_ranges([(0, 2)]), 1, nsze - 1).waitdone()


@pytest.mark.device
def test_copy_source_out_of_range(nvme0n1, qpair, oncs, nsze):
    """A Copy whose source range ends beyond the namespace fails with LBA Out of Range.

    Spec: NVM command set spec 3.2.1 Copy (source range SLBA/NLB).

    Steps:
    1. Skip unless Copy is supported and its limits (MSSRL, MCL) allow a copy of 2 blocks:
       otherwise Command Size Limit Exceeded applies as well, and the spec orders neither.
    2. Copy 2 blocks from NSZE - 1 to LBA 0.
    3. Check status 00/80.
    """
    need_two_block_copy(nvme0n1, oncs)
    with pytest.warns(UserWarning, match="ERROR status: 00/80"):
        nvme0n1.copy(qpair, copy_ranges([(nsze - 1, 2)]), 1, 0).waitdone()


@pytest.mark.device
@pytest.mark.parametrize("clear", ["write", "write_zeroes", "deallocate"])
def test_write_uncorrectable_cleared(nvme0n1, qpair, oncs, clear):
    """A block marked uncorrectable reads with 02/81 until written, zeroed or deallocated.

    Spec: NVM command set spec 3.2.7 Write Uncorrectable ("... until a write, Write Zeroes or
    deallocation of the logical block").

    Steps:
    1. Skip unless Write Uncorrectable and the clearing command are supported.
    2. Mark 4 blocks uncorrectable; a read fails with 02/81.
    3. Clear them with the command; read the 4 blocks: success.
    """
    need(oncs, "write_uncorrectable")
    if clear == "write_zeroes":
        need(oncs, "write_zeroes")
    if clear == "deallocate":
        need_bit(oncs, 2, "Dataset Management")
    ss = nvme0n1.sector_size
    nvme0n1.write_uncorrectable(qpair, 5200, 4).waitdone()
    r = Buffer(4 * ss)
    with pytest.warns(UserWarning, match="ERROR status: 02/81"):
        nvme0n1.read(qpair, r, 5200, 4).waitdone()
    if clear == "write":
        written(nvme0n1, qpair, 5200, 4, 0x5200)
    elif clear == "write_zeroes":
        nvme0n1.write_zeroes(qpair, 5200, 4).waitdone()
    else:
        ranges = Buffer(4096)
        ranges.set_dsm_range(0, 5200, 4)
        nvme0n1.dsm(qpair, ranges, 1).waitdone()
    nvme0n1.read(qpair, r, 5200, 4).waitdone()


@pytest.mark.device
def test_write_uncorrectable_partial_range(nvme0n1, qpair, oncs):
    """Only the blocks marked uncorrectable fail; their neighbours read normally.

    Spec: NVM command set spec 3.2.7 Write Uncorrectable.

    Steps:
    1. Skip unless Write Uncorrectable is supported.
    2. Write 3 blocks; mark the middle one uncorrectable.
    3. Read the first and third: success; the middle: 02/81; rewrite it.
    """
    need(oncs, "write_uncorrectable")
    ss = nvme0n1.sector_size
    written(nvme0n1, qpair, 5300, 3, 0x5300)
    nvme0n1.write_uncorrectable(qpair, 5301, 1).waitdone()
    r = Buffer(ss)
    nvme0n1.read(qpair, r, 5300).waitdone()
    nvme0n1.read(qpair, r, 5302).waitdone()
    with pytest.warns(UserWarning, match="ERROR status: 02/81"):
        nvme0n1.read(qpair, r, 5301).waitdone()
    written(nvme0n1, qpair, 5301, 1, 0)


@pytest.mark.device
def test_compare_after_write_zeroes(nvme0n1, qpair, oncs):
    """Compare against zeroes matches blocks written by Write Zeroes; a non-zero byte does not.

    Spec: NVM command set spec 3.2.1 Compare (02/85 Compare Failure), 3.2.8 Write Zeroes.

    Steps:
    1. Skip unless Compare and Write Zeroes are supported.
    2. Write Zeroes 4 blocks; Compare them with a zero buffer: success.
    3. Compare with a buffer with one byte set: status 02/85.
    """
    need(oncs, "compare")
    need(oncs, "write_zeroes")
    ss = nvme0n1.sector_size
    nvme0n1.write_zeroes(qpair, 5400, 4).waitdone()
    z = Buffer(4 * ss)
    z[0 : 4 * ss] = bytes(4 * ss)
    nvme0n1.compare(qpair, z, 5400, 4).waitdone()
    z[3 * ss + 7] = 1
    with pytest.warns(UserWarning, match="ERROR status: 02/85"):
        nvme0n1.compare(qpair, z, 5400, 4).waitdone()


@pytest.mark.device
def test_fused_not_supported(nvme0n1, qpair, id_ctrl_buf):
    """A fused command sent to a controller without fused support fails with 00/02.

    Spec: NVMe 2.0 base spec 4.2.1 (FUSE field), 5.17.2.1 FUSES; 4.2.3 Invalid Field.

    Steps:
    1. Skip if FUSES bit 0 (Compare and Write) is set.
    2. Send a Compare with FUSE = 01b (first of a fused pair) alone.
    3. Check status 00/02 (the controller does not wait for the second command).
    """
    if id_ctrl_buf.data(523, 522) & 1:
        pytest.skip("fused Compare and Write supported (FUSES bit 0)")
    b = Buffer(nvme0n1.sector_size)
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0n1.send_cmd(0x05 | 1 << 8, qpair, b, nsid=nvme0n1.nsid).waitdone()


def need_bit(oncs, bit, name):
    if not oncs & (1 << bit):
        pytest.skip(f"{name} not supported (ONCS bit {bit})")
