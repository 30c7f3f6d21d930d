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
    cq = IOCQ(nvme0, 1, 10, PRP())
    sq = IOSQ(nvme0, 1, 10, PRP(), cq=cq)

    with pytest.warns(UserWarning, match="AER notification is triggered: 0x10100"):
        sq.tail = 10
        nvme0.getfeatures(7).waitdone()

    sq.delete()
    cq.delete()


@pytest.mark.device
def test_aer_doorbell_out_of_range(nvme0, buf):
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
