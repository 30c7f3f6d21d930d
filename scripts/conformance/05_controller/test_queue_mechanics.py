"""Submission and completion queue mechanics, in metamode (queues and SQEs built by the test).

The phase tag inverting on each CQ wrap, SQ Head Pointer in every CQE, CID and SQID echoed,
a completion queue that is full holding completions until the head doorbell moves, a full
submission queue, reserved SQE fields ignored, reserved admin and NVM opcodes (00/01), an
invalid CQ head doorbell value (asynchronous event 0x10100), and PRP entries: dword-aligned
offsets work, unaligned ones fail (00/13), PRP list entries at any dword offset in the page.
"""

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")

QID = 3  # metamode queue id used by this file (must be allocated: the default init asks for all)


def pair(nvme0, cq_size, sq_size):
    cq = IOCQ(nvme0, QID, cq_size, PRP(max(4096, cq_size * 16)))
    sq = IOSQ(nvme0, QID, sq_size, PRP(max(4096, sq_size * 64)), cq=cq)
    return cq, sq


def flush_sqe(cid, nsid=1):
    sqe = SQE(cid << 16 | 0x00, nsid)
    return sqe


@pytest.mark.device
def test_cq_phase_tag_inverts_on_wrap(nvme0):
    """The phase tag of posted CQEs is 1 on the first pass through the CQ, 0 on the second.

    Spec: NVMe 2.0 base spec 4.6 Completion Queue Entry (Phase Tag), 3.3.1.2 queue wrap.

    Steps:
    1. Create a CQ and an SQ of 4 entries.
    2. Submit 11 Flush commands one at a time, moving both doorbells after each.
    3. Check the phase tag of entry i is 1 on passes 0 and 2, 0 on pass 1.
    """
    cq, sq = pair(nvme0, 4, 4)
    try:
        for i in range(11):
            slot = i % 4
            phase = 1 - (i // 4) % 2
            sq[slot] = flush_sqe(i)
            sq.tail = (slot + 1) % 4
            assert cq.wait_pbit(slot, phase), f"command {i}: no CQE with phase {phase}"
            assert cq[slot].p == phase
            assert cq[slot].cid == i
            cq.head = (slot + 1) % 4
    finally:
        sq.delete()
        cq.delete()


@pytest.mark.device
def test_sqhd_follows_sq_head(nvme0):
    """Each CQE's SQ Head Pointer names the SQ slot after the command it completes (or later).

    Spec: NVMe 2.0 base spec 4.6 Completion Queue Entry (SQHD, SQID).

    Steps:
    1. Create a CQ of 16 and an SQ of 8 entries.
    2. Submit 12 Flush commands one at a time.
    3. Check SQHD equals (index + 1) mod 8 and SQID equals the queue id.
    """
    cq, sq = pair(nvme0, 16, 8)
    try:
        for i in range(12):
            sq[i % 8] = flush_sqe(0x100 + i)
            sq.tail = (i + 1) % 8
            assert cq.wait_pbit(i, 1)
            cqe = cq[i]
            assert cqe.sqid == QID
            assert cqe.sqhd == (i + 1) % 8, f"command {i}: SQHD {cqe.sqhd}"
            cq.head = i + 1
    finally:
        sq.delete()
        cq.delete()


@pytest.mark.device
@pytest.mark.parametrize("cid", [0, 1, 0x7FFF, 0xFFFE])
def test_cid_echoed(nvme0, cid):
    """Any command identifier the host chooses comes back unchanged in the CQE.

    Spec: NVMe 2.0 base spec 4.2 Submission Queue Entry (CID), 4.6 (CID of the completion).

    Steps:
    1. Submit one Flush with the CID.
    2. Check the CQE's CID, SQID and a successful status.
    """
    cq, sq = pair(nvme0, 4, 4)
    try:
        sq[0] = flush_sqe(cid)
        sq.tail = 1
        assert cq.wait_pbit(0, 1)
        assert (cq[0].cid, cq[0].sqid, cq[0].status) == (cid, QID, 0)
        cq.head = 1
    finally:
        sq.delete()
        cq.delete()


@pytest.mark.device
def test_cq_full_holds_completions(nvme0):
    """A full CQ takes no more entries until the host moves its head doorbell.

    Spec: NVMe 2.0 base spec 3.3.1.3 Full Queue (a CQ is full when Head = Tail + 1).

    Steps:
    1. Create a CQ of 3 entries (two usable) and an SQ of 8.
    2. Submit 4 Flush commands at once.
    3. Check entries 0 and 1 are posted, and that while the head stays nothing is posted in
       slot 2 and slots 0 and 1 keep their entries (commands may complete in any order, so
       which CIDs they hold is not fixed).
    4. Move the head; the remaining completions arrive, 4 distinct CIDs in all.
    """
    cq, sq = pair(nvme0, 3, 8)
    try:
        for i in range(4):
            sq[i] = flush_sqe(0x200 + i)
        sq.tail = 4
        assert cq.wait_pbit(0, 1) and cq.wait_pbit(1, 1)
        cids = [cq[0].cid, cq[1].cid]
        assert not cq.wait_pbit(2, 1, timeout=0.3), "a completion was posted into a full CQ"
        assert [cq[0].cid, cq[1].cid] == cids, "a completion overwrote an entry of a full CQ"
        assert cq[0].p == 1 and cq[1].p == 1
        cq.head = 2
        assert cq.wait_pbit(2, 1)
        cids.append(cq[2].cid)
        cq.head = 0
        assert cq.wait_pbit(0, 0)
        cids.append(cq[0].cid)
        cq.head = 1
        assert sorted(cids) == [0x200, 0x201, 0x202, 0x203]
    finally:
        sq.delete()
        cq.delete()


@pytest.mark.device
def test_sq_full_all_commands_complete(nvme0):
    """An SQ filled to its capacity (size - 1 commands) has all of them completed.

    Spec: NVMe 2.0 base spec 3.3.1.3 Full Queue (an SQ holds size - 1 commands).

    Steps:
    1. Create an SQ of 8 and a CQ of 16 entries.
    2. Write 7 Flush commands and ring the tail doorbell once with 7.
    3. Check 7 completions with the 7 CIDs.
    """
    cq, sq = pair(nvme0, 16, 8)
    try:
        for i in range(7):
            sq[i] = flush_sqe(0x300 + i)
        sq.tail = 7
        assert cq.wait_pbit(6, 1)
        assert sorted(cq[i].cid for i in range(7)) == list(range(0x300, 0x307))
        cq.head = 7
    finally:
        sq.delete()
        cq.delete()


@pytest.mark.device
def test_reserved_sqe_fields_ignored(nvme0):
    """Flush with non-zero reserved dwords (2, 3 and 10-15) completes successfully.

    Spec: NVMe 2.0 base spec 4.2 (reserved fields: the controller ignores them); NVM command
    set spec 3.2.2 Flush (CDW2-3 and CDW10-15 reserved).

    Steps:
    1. Build a Flush SQE and fill dwords 2, 3, 10-15 with a pattern.
    2. Submit it; check status 0.
    """
    cq, sq = pair(nvme0, 4, 4)
    try:
        sqe = flush_sqe(0x400)
        for dw in (2, 3, 10, 11, 12, 13, 14, 15):
            sqe[dw] = 0xA5A50000 | dw
        sq[0] = sqe
        sq.tail = 1
        assert cq.wait_pbit(0, 1)
        assert cq[0].status == 0, f"status {cq[0].status:#x}"
        cq.head = 1
    finally:
        sq.delete()
        cq.delete()


@pytest.mark.device
@pytest.mark.parametrize("opcode", [0x03, 0x07, 0x0B, 0x0E, 0x13, 0x17, 0x1B, 0x3F, 0x7E, 0x83])
def test_reserved_admin_opcode(nvme0, opcode):
    """A reserved admin opcode fails with Invalid Command Opcode (00/01).

    Spec: NVMe 2.0 base spec 5 (Opcodes for Admin Commands), 4.2.3 (00/01).

    Steps:
    1. Send the reserved opcode on the admin queue.
    2. Check status 00/01; the admin queue still works.
    """
    with pytest.warns(UserWarning, match="ERROR status: 00/01"):
        nvme0.send_cmd(opcode).waitdone()
    nvme0.getfeatures(7).waitdone()


@pytest.mark.device
@pytest.mark.parametrize("opcode", [0x03, 0x07, 0x0B, 0x0F, 0x10, 0x13, 0x16, 0x1B, 0x1F, 0x3F])
def test_reserved_nvm_opcode(nvme0n1, qpair, opcode):
    """A reserved NVM command set opcode fails with Invalid Command Opcode (00/01).

    Spec: NVM command set spec 3 (Opcodes for NVM Commands); NVMe 2.0 base spec
    4.2.3.

    Steps:
    1. Send the reserved opcode on an IO queue with the namespace's NSID.
    2. Check status 00/01; a read on the queue still works.
    """
    with pytest.warns(UserWarning, match="ERROR status: 00/01"):
        nvme0n1.send_cmd(opcode, qpair, nsid=nvme0n1.nsid).waitdone()
    nvme0n1.read(qpair, Buffer(nvme0n1.sector_size), 0).waitdone()


@pytest.mark.device
def test_cq_head_doorbell_invalid(nvme0, buf):
    """A CQ head doorbell beyond the queue size raises the Invalid Doorbell Write Value event.

    Spec: NVMe 2.0 base spec 5.2 Asynchronous Event Request (error type 0h, info 01h Invalid
    Doorbell Write Value), 3.1.4.4 Completion Queue y Head Doorbell.

    Steps:
    1. Create a CQ and SQ of 8 entries.
    2. Write 12 to the CQ head doorbell.
    3. Check the AER notification 0x10100; read the error log to clear the event.
    """
    cq, sq = pair(nvme0, 8, 8)
    try:
        with pytest.warns(UserWarning, match="AER notification is triggered: 0x10100"):
            cq.head = 12
            nvme0.getfeatures(7).waitdone()
        nvme0.getlogpage(1, buf, 64).waitdone()
    finally:
        sq.delete()
        cq.delete()


@pytest.mark.device
@pytest.mark.parametrize("offset", [4, 0x200, 0xFFC])
def test_prp1_dword_aligned_offset(nvme0, nvme0n1, offset):
    """A data buffer starting at any dword offset in its page reads the right data.

    Spec: NVMe 2.0 base spec 4.1.1 Physical Region Page Entry and List (offset bits 1:0 =
    00b); PRP2 addresses the next page when the transfer crosses it.

    Steps:
    1. Write 2 blocks (1 if blocks are larger than 2 KiB) at LBA 16 through the driver.
    2. Read them in metamode into a buffer at the page offset (PRP1), PRP2 for the rest.
    3. Check status 0 and the data.
    """
    ss = nvme0n1.sector_size
    n = 2 if ss <= 2048 else 1  # the data fits in two pages at any offset
    q = Qpair(nvme0, 4)
    w = Buffer(n * ss, ptype=32, pvalue=0x0FF5E7)
    nvme0n1.write(q, w, 16, n).waitdone()
    q.delete()
    cq, sq = pair(nvme0, 4, 4)
    try:
        first = PRP(8192)
        first.offset = offset
        head = min(4096 - offset, n * ss)
        sqe = SQE(0x500 << 16 | 0x02, nvme0n1.nsid)
        sqe.prp1 = first
        second = PRP(4096)
        if head < n * ss:
            sqe.prp2 = second
        sqe[10] = 16
        sqe[12] = n - 1
        sq[0] = sqe
        sq.tail = 1
        assert cq.wait_pbit(0, 1)
        assert cq[0].status == 0
        cq.head = 1
        got = bytes(first[offset : offset + head])
        if head < n * ss:
            got += bytes(second[0 : n * ss - head])
        assert got == bytes(w[0 : n * ss])
    finally:
        sq.delete()
        cq.delete()


@pytest.mark.device
@pytest.mark.parametrize("offset", [1, 2, 3])
def test_prp1_unaligned_offset(nvme0, nvme0n1, error_statuses, offset):
    """A data pointer that is not dword aligned fails with PRP Offset Invalid (00/13), or is
    used as if its bits 1:0 were 00b.

    Spec: NVMe 2.0 base spec 4.1.1 (PRP entry: bits 1:0 of the offset are 00b; the controller
    is not required to check them, may report PRP Offset Invalid, and if it does not, operates
    as if they were cleared), 4.2.3 status 13h.

    Steps:
    1. Write one block of a known pattern at LBA 600h through the driver.
    2. Build a Read of that block whose PRP1 has the unaligned offset; submit it in metamode.
    3. Check the CQE status is 00/13, or success with the data at the dword-aligned offset.
    """
    ss = nvme0n1.sector_size
    if ss > 4096:
        pytest.skip("blocks larger than a page")
    q = Qpair(nvme0, 4)
    w = Buffer(ss, ptype=32, pvalue=0x5EC7 + offset)
    nvme0n1.write(q, w, 0x600, 1).waitdone()
    q.delete()
    cq, sq = pair(nvme0, 4, 4)
    try:
        b = PRP(8192)
        b.offset = offset
        sqe = SQE(0x600 << 16 | 0x02, nvme0n1.nsid)
        sqe.prp1 = b
        sqe.prp2 = PRP(4096)
        sqe[10] = 0x600
        sq[0] = sqe
        sq.tail = 1
        assert cq.wait_pbit(0, 1)
        got = (cq[0].sct, cq[0].sc)
        cq.head = 1
        assert got in ((0, 0x13), (0, 0)), f"status {cq[0].status:#x}"
        if got == (0, 0):
            at_offset = bytes(b[offset : offset + ss]) == bytes(w[0:ss])
            assert bytes(b[0:ss]) == bytes(w[0:ss]), "data not at the dword-aligned address" + (
                " but at the unaligned one" if at_offset else ""
            )
    finally:
        sq.delete()
        cq.delete()


@pytest.mark.device
def test_prp_list_three_pages(nvme0, nvme0n1):
    """A read of three pages through PRP1 and a PRP list of two entries returns the data.

    Spec: NVMe 2.0 base spec 4.1.1 (PRP2 points to a PRP list when the transfer spans more
    than two memory pages).

    Steps:
    1. Write 12 KiB at LBA 32 through the driver.
    2. Read them in metamode: PRP1 one page, PRP2 a list of two page entries.
    3. Check status 0 and the three pages hold the data in order.
    """
    if nvme0.mdts < 3 * 4096 or nvme0n1.sector_size > 4096:
        pytest.skip("MDTS below 12 KiB or blocks larger than a page")
    ss = nvme0n1.sector_size
    n = 3 * 4096 // ss
    q = Qpair(nvme0, 4)
    w = Buffer(n * ss, ptype=32, pvalue=0x3A6E)
    nvme0n1.write(q, w, 32, n).waitdone()
    q.delete()
    cq, sq = pair(nvme0, 4, 4)
    try:
        pages = [PRP(4096) for _ in range(3)]
        plist = PRPList()
        plist[0] = pages[1]
        plist[1] = pages[2]
        sqe = SQE(0x800 << 16 | 0x02, nvme0n1.nsid)
        sqe.prp1 = pages[0]
        sqe.prp2 = plist
        sqe[10] = 32
        sqe[12] = n - 1
        sq[0] = sqe
        sq.tail = 1
        assert cq.wait_pbit(0, 1)
        assert cq[0].status == 0
        cq.head = 1
        got = b"".join(bytes(p[0:4096]) for p in pages)
        assert got == bytes(w[0 : n * ss])
    finally:
        sq.delete()
        cq.delete()


@pytest.mark.device
def test_prp_list_entry_with_offset(nvme0, nvme0n1):
    """A PRP list entry with a non-zero offset fails with PRP Offset Invalid (00/13).

    Spec: NVMe 2.0 base spec 4.1.1 ("PRP entries contained within a PRP List shall have a
    memory page offset of 0h"), 4.2.3 status 13h.

    Steps:
    1. Build a three-page read: PRP1 one page, PRP2 a list whose second entry has offset 100h.
    2. Submit it in metamode.
    3. Check the CQE status is 00/13.
    """
    if nvme0.mdts < 3 * 4096 or nvme0n1.sector_size > 4096:
        pytest.skip("MDTS below 12 KiB or blocks larger than a page")
    ss = nvme0n1.sector_size
    cq, sq = pair(nvme0, 4, 4)
    try:
        first, second, third = PRP(4096), PRP(4096), PRP(8192)
        third.offset = 0x100
        plist = PRPList()
        plist[0] = second
        plist[1] = third
        sqe = SQE(0x801 << 16 | 0x02, nvme0n1.nsid)
        sqe.prp1 = first
        sqe.prp2 = plist
        sqe[12] = 3 * 4096 // ss - 1
        sq[0] = sqe
        sq.tail = 1
        assert cq.wait_pbit(0, 1)
        assert (cq[0].sct, cq[0].sc) == (0, 0x13), f"status {cq[0].status:#x}"
        cq.head = 1
    finally:
        sq.delete()
        cq.delete()


@pytest.mark.device
def test_prp2_data_pointer_with_offset(nvme0, nvme0n1):
    """For a two-page transfer, PRP2 (a data page) with a non-zero offset fails with 00/13.

    Spec: NVMe 2.0 base spec 4.1.1 (PRP2 is a PRP entry of the second page: offset 0h).

    Steps:
    1. Build a read of two pages: PRP1 page aligned, PRP2 at offset 200h.
    2. Submit it in metamode.
    3. Check the CQE status is 00/13.
    """
    if nvme0.mdts < 2 * 4096 or nvme0n1.sector_size > 4096:
        pytest.skip("MDTS below 8 KiB or blocks larger than a page")
    ss = nvme0n1.sector_size
    cq, sq = pair(nvme0, 4, 4)
    try:
        first, second = PRP(4096), PRP(8192)
        second.offset = 0x200
        sqe = SQE(0x802 << 16 | 0x02, nvme0n1.nsid)
        sqe.prp1 = first
        sqe.prp2 = second
        sqe[12] = 2 * 4096 // ss - 1
        sq[0] = sqe
        sq.tail = 1
        assert cq.wait_pbit(0, 1)
        assert (cq[0].sct, cq[0].sc) == (0, 0x13), f"status {cq[0].status:#x}"
        cq.head = 1
    finally:
        sq.delete()
        cq.delete()
