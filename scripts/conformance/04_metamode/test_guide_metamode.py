"""Metamode IO: the examples of the PyNVMe3 Script Development Guide ("metamode IO", "Buffer").

The script builds the IO queues, SQEs, PRPs, PRP lists and SGLs in memory itself and rings the
doorbells by hand; the driver only creates and deletes the queues. Each test is the guide's script,
with the lines its text describes, plus assertions on what the guide says should happen. Queue
ids 1..4 must be allocated (Set Features Number of Queues): the default init asks for all.
"""

import logging

import pytest

from nvme import *


def _sgls(nvme0: Controller) -> int:
    """SGL Support (Identify Controller bytes 539:536)."""
    b = Buffer(4096)
    nvme0.identify(b).waitdone()
    return b.data(539, 536)


@pytest.mark.device
def test_metamode_write(nvme0):
    """Two Flush commands with the same CID in a metamode SQ both complete.

    Spec: NVMe 2.0 base spec 4.2 SQE (CID), 4.6 CQE.

    Steps:
    1. Create an IOCQ and IOSQ of 10 entries.
    2. Write the same Flush SQE into two slots, ring the tail with 2.
    3. Check two CQEs with that CID.
    """
    cq = IOCQ(nvme0, 1, 10, PRP(10 * 16))
    sq = IOSQ(nvme0, 1, 10, PRP(10 * 64), cq=cq)
    sqe = SQE(1 << 16, 1)
    sq[0] = sqe
    sq[1] = sqe
    sq.tail = 2

    # Two Flush commands with the same CID: the device answers both, whatever the status.
    assert cq.wait_pbit(1, 1)
    assert cq[0].cid == cq[1].cid == 1
    cq.head = 2
    sq.delete()
    cq.delete()


@pytest.mark.device
def test_metamode_read_command(nvme0):
    """A read built by hand in a metamode SQ completes with status 0, CID 0, SQID 1, phase 1.

    Spec: NVMe 2.0 base spec 3.3 queue mechanics, 4.6 CQE.

    Steps:
    1. Create the queues; write a Read SQE with PRP1.
    2. Ring the tail; wait for the phase tag.
    3. Check the CQE fields; move the head.
    """
    # Create an IOCQ and IOSQ
    cq = IOCQ(nvme0, 1, 10, PRP(10 * 16))
    sq = IOSQ(nvme0, 1, 10, PRP(10 * 64), cq=cq)

    # Step1: Host writes command to SQ Entry
    cmd_read = SQE(2, 1)
    cmd_read.cid = 0
    buf = PRP(4096)
    cmd_read.prp1 = buf
    sq[0] = cmd_read

    # Step2: The host updates the SQ tail doorbell register.
    # Notify SSD that a new command is pending.
    sq.tail = 1

    # Step7: Host processes Completion entry
    assert cq.wait_pbit(cq.head, 1)

    # Step8: The host writes the CQ head doorbell to release the completion entry
    cq.head = 1

    # print first CQE's status field
    logging.info(cq[0].status)
    assert cq[0].status == 0
    assert (cq[0].cid, cq[0].sqid, cq[0].p) == (0, 1, 1)

    sq.delete()
    cq.delete()


@pytest.mark.device
def test_metamode_example(nvme0):
    """IOSQ.read() builds an SQE; the pointers follow the doorbells.

    Spec: NVMe 2.0 base spec 3.3 queue mechanics.

    Steps:
    1. Create the queues; sq.read() at slot 0.
    2. Ring tail 1; wait; move head 1.
    3. Check status 0 and the write/read pointers.
    """
    # Create an IOCQ and IOSQ
    cq = IOCQ(nvme0, 1, 10, PRP(10 * 16))
    sq = IOSQ(nvme0, 1, 10, PRP(10 * 64), cq=cq)

    # Step1: Host writes command to SQ Entry
    sq.read(cid=0, nsid=1, lba=0, lba_count=1, prp1=PRP(4096))

    # Step2: The host updates the SQ tail doorbell register.
    # Notify SSD that a new command is pending.
    sq.tail = 1

    # Step7: Host processes Completion entry
    cq.waitdone(1)

    # Step8: The host writes the CQ head doorbell to release the completion entry
    cq.head = 1

    # print first CQE's status field
    logging.info(cq[0].status)
    assert cq[0].status == 0
    assert (sq.wpointer, cq.rpointer) == (1, 1)

    sq.delete()
    cq.delete()


@pytest.mark.device
def test_prp_valid_offset_in_prplist(nvme0):
    """A read with PRP1 at offset 10h and a PRP list starting at offset 20h succeeds.

    Spec: NVMe 2.0 base spec 4.1.1 PRP lists (the list pointer may have an offset).

    Steps:
    1. Build PRP1 and a PRP list of 8 entries at the offsets.
    2. Read 2 blocks.
    3. Check status 0 and PRP2 is the list address.
    """
    # Create an IOCQ and IOSQ
    cq = IOCQ(nvme0, 1, 10, PRP(10 * 16))
    sq = IOSQ(nvme0, 1, 10, PRP(10 * 64), cq=cq)

    # Construct PRP1, set offset to 0x10
    buf = PRP(ptype=32, pvalue=0xFFFFFFFF)
    buf.offset = 0x10
    buf.size -= 0x10

    # Construct PRP list, and set offset to 0x20
    prp_list = PRPList()
    prp_list.offset = 0x20
    prp_list.size -= 0x20

    # Fill 8 PRP entries into the PRP list
    for i in range(8):
        prp_list[i] = PRP(ptype=32, pvalue=0xFFFFFFFF)

    # Construct a read command with the above PRP and PRP list
    cmd = SQE(2, 1)
    cmd.prp1 = buf
    cmd.prp2 = prp_list

    # Set the cdw12 of the command to 1
    cmd[12] = 1

    # Write command to SQ Entry, update SQ tail doorbell
    sq[0] = cmd
    sq.tail = 1

    # Wait for the CQ pbit to flip
    assert cq.wait_pbit(0, 1)

    # Updated CQ head doorbell
    cq.head = 1
    assert cq[0].status == 0
    assert cmd.prp2 == prp_list.phys_addr and prp_list.phys_addr & 0xFFF == 0x20

    sq.delete()
    cq.delete()


@pytest.mark.device
def test_multi_sq_and_single_cq(nvme0):
    """Several SQs completing into one CQ: every command completes.

    Spec: NVMe 2.0 base spec 5.5 Create I/O Submission Queue (several SQs per CQ).

    Steps:
    1. Create one CQ and several SQs on it.
    2. Submit commands on each SQ.
    3. Check all completions arrive on the CQ.
    """
    # Create 3 IOSQ, and mapping to a single IOCQ
    cq = IOCQ(nvme0, 1, 10, PRP(10 * 16))
    sq1 = IOSQ(nvme0, 1, 10, PRP(10 * 64), cq=cq)
    sq2 = IOSQ(nvme0, 2, 10, PRP(10 * 64), cq=cq)
    sq3 = IOSQ(nvme0, 3, 10, PRP(10 * 64), cq=cq)

    # Construct a write command
    cmd_write = SQE(1, 1)
    cmd_write.cid = 1
    cmd_write[12] = 1 << 30

    # Set buffer of the write command
    buf2 = PRP(4096)
    buf2[10:21] = b"hello world"
    cmd_write.prp1 = buf2

    # Construct a read command
    cmd_read1 = SQE(2, 1)
    buf1 = PRP(4096)
    cmd_read1.prp1 = buf1
    cmd_read1.cid = 2

    # Construct another read command
    cmd_read2 = SQE(2, 1)
    buf3 = PRP(4096)
    cmd_read2.prp1 = buf3
    cmd_read2.cid = 3

    # place the commands into the SQs
    sq1[0] = cmd_write
    sq2[0] = cmd_read1
    sq3[0] = cmd_read2

    # Update SQ1 Tail doorbell to 1
    sq1.tail = 1

    # Wait for the Phase Tag of the head of CQE to be 1
    assert cq.wait_pbit(cq.head, 1)

    # Update CQ Head doorbell to 1
    cq.head = 1

    # Update SQ2 Tail doorbell to 1, and wait for the command completion
    sq2.tail = 1
    assert cq.wait_pbit(cq.head, 1)

    # Update CQ Head doorbell to 2
    cq.head = 2

    # Update SQ3 Tail doorbell to 1
    sq3.tail = 1
    assert cq.wait_pbit(cq.head, 1)

    # update CQ Head doorbell to 3
    cq.head = 3

    # Get the command represented by the first entry in CQ to complete the whole and command id
    logging.info(cq[0].status)
    logging.info(cq[0].cid)
    assert [(cq[i].sqid, cq[i].cid, cq[i].status) for i in range(3)] == [
        (1, 1, 0),
        (2, 2, 0),
        (3, 3, 0),
    ]
    assert buf1[10:21] == b"hello world" == buf3[10:21]

    for q in (sq1, sq2, sq3, cq):
        q.delete()


@pytest.mark.device
def test_same_cid(nvme0):
    """Two reads with the same CID in flight: the device still posts a CQE for the second.

    Spec: NVMe 2.0 base spec 4.2 SQE (CID unique per SQ while outstanding; the host broke the
    rule, the device must not hang).

    Steps:
    1. Submit two reads with CID 1 and ring the tail once with 2.
    2. Wait for the second CQE; check it carries CID 1.
    """
    # Create IOCQ/IOSQ with the depth of 10
    cq = IOCQ(nvme0, 1, 10, PRP(10 * 16))
    sq = IOSQ(nvme0, 1, 10, PRP(10 * 64), cq=cq)

    # Write two commands, and both cid are 1
    cmd_read1 = SQE(2, 1)
    buf1 = PRP(4096)
    cmd_read1.prp1 = buf1
    cmd_read1.cid = 1

    cmd_read2 = SQE(2, 1)
    buf2 = PRP(4096)
    cmd_read2.prp1 = buf2
    cmd_read2.cid = 1

    # fill two SQE to SQ
    sq[0] = cmd_read1
    sq[1] = cmd_read2

    # Updated SQ tail doorbell
    sq.tail = 2

    # Wait for the Phase Tag in entry 1 in CQ to be 1
    assert cq.wait_pbit(1, 1)

    # Update CQ Head doorbell to 1
    cq.head = 2

    # Get the command completion status and command id indicated by the second entry in CQ
    logging.info(cq[1].status)
    logging.info(cq[1].cid)
    assert cq[1].cid == 1

    sq.delete()
    cq.delete()


@pytest.mark.device
def test_sq_doorbell_invalid(nvme0):
    """An SQ tail of the queue size raises the Invalid Doorbell Write Value event.

    Spec: NVMe 2.0 base spec 5.2 AER (0x010100).

    Steps:
    1. Create queues of 10 entries.
    2. Write 10 to the tail doorbell.
    3. Check the AER notification.
    """
    cq = IOCQ(nvme0, 1, 10, PRP())
    sq = IOSQ(nvme0, 1, 10, PRP(), cq=cq)

    with pytest.warns(UserWarning, match="AER notification is triggered: 0x10100"):
        sq.tail = 10
        nvme0.getfeatures(7).waitdone()

    sq.delete()
    cq.delete()


@pytest.mark.device
def test_aer_doorbell_out_of_range(nvme0, buf):
    """An SQ tail beyond a 16-entry queue raises the event; the error log read clears it.

    Spec: NVMe 2.0 base spec 5.2 AER (0x010100), 5.16.1.2.

    Steps:
    1. Send an AER; create queues of 16 entries.
    2. Write 20 to the tail doorbell: AER notification.
    3. Read the error log.
    """
    # Send an AER command
    nvme0.aer()

    # Create a pair of CQ and SQ with a queue depth of 16
    cq = IOCQ(nvme0, 4, 16, PRP(16 * 16))
    sq = IOSQ(nvme0, 4, 16, PRP(16 * 64), cq=cq)

    # Update the SQ tail to 20, which exceeds the SQ depth
    with pytest.warns(UserWarning, match="AER notification is triggered: 0x10100"):
        sq.tail = 20

    # Send get logpage command to clear asynchronous events
    nvme0.getlogpage(1, buf, 512).waitdone()

    # Delete SQ and CQ
    sq.delete()
    cq.delete()


@pytest.mark.device
def test_sgl_segment_example(nvme0, nvme0n1):
    """A read described by chained SGL segments with a bit bucket succeeds.

    Spec: NVMe 2.0 base spec 4.1.2 SGL (Segment, Last Segment, Data Block, Bit Bucket).

    Steps:
    1. Skip unless SGLs and bit buckets are supported.
    2. Build three segments: data blocks and a bit bucket for 26 blocks.
    3. Read; check status 0.
    """
    sgls = _sgls(nvme0)
    if sgls & 3 == 0:
        pytest.skip("SGLs not supported for NVM commands (SGLS bits 1:0)")
    if not sgls & (1 << 16):
        pytest.skip("SGL Bit Bucket descriptors not supported (SGLS bit 16)")

    sector_size = nvme0n1.sector_size
    cq = IOCQ(nvme0, 1, 10, PRP(10 * 16))
    sq = IOSQ(nvme0, 1, 10, PRP(10 * 64), cq=cq)
    sseg0 = SegmentSGL(16 * 2)
    sseg1 = SegmentSGL(16 * 3)
    sseg2 = LastSegmentSGL(16)
    sseg0[0] = DataBlockSGL(sector_size * 6)
    sseg0[1] = sseg1
    sseg1[0] = DataBlockSGL(sector_size * 8)
    sseg1[1] = BitBucketSGL(sector_size * 4)
    sseg1[2] = sseg2
    sseg2[0] = DataBlockSGL(sector_size * 8)

    sq.read(cid=0, nsid=1, lba=100, lba_count=26, sgl=sseg0)
    sq.tail = sq.wpointer
    cq.waitdone()
    cq.head = cq.rpointer
    assert cq[0].status == 0

    sq.delete()
    cq.delete()


@pytest.mark.device
def test_cmb_sqs_single_cmd(nvme0):
    """An SQ placed in the Controller Memory Buffer carries a read.

    Spec: NVMe 2.0 base spec 8.2 Controller Memory Buffer (SQS).

    Steps:
    1. Enable CMB reporting; skip without a CMB or CMB buffers.
    2. Create the SQ in the CMB; read one block.
    3. Check status 0.
    """
    nvme0[0x50] = nvme0[0x50] | 1  # CMBMSC.CRE: CMBLOC and CMBSZ report the CMB
    if nvme0[0x3C] == 0:
        pytest.skip("no Controller Memory Buffer (CMBSZ is 0)")
    try:
        cmb_buf = Buffer(10 * 64, nvme=nvme0)
    except TypeError:
        pytest.skip("Buffers in the Controller Memory Buffer (Buffer(nvme=...)) are not supported")
    cq = IOCQ(nvme0, 1, 10, PRP(10 * 16))
    sq = IOSQ(nvme0, 1, 10, cmb_buf, cq=cq)
    sq.read(cid=0, nsid=1, lba=0, lba_count=1, prp1=PRP(4096))
    sq.tail = 1
    cq.waitdone(1)
    cq.head = 1
    assert cq[0].status == 0
    sq.delete()
    cq.delete()
