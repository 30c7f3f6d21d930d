"""Create/Delete I/O queues (01h, 05h, 00h, 04h): more error statuses and the limits.

Queue id 0 for create and delete (01/01), a second SQ on an existing id, non-contiguous queues
when CAP.CQR requires contiguous ones (00/02), queue memory not page aligned (00/13), the
smallest and the largest queue that carry IO, every allocated queue id in use at once, queues
recreated after deletion, and the simulated SSD's `queues` knob.
"""

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")


def write_read(nvme0n1, q, lba, value):
    w = Buffer(nvme0n1.sector_size, ptype=32, pvalue=value)
    r = Buffer(nvme0n1.sector_size)
    nvme0n1.write(q, w, lba).waitdone()
    nvme0n1.read(q, r, lba).waitdone()
    assert r == w, f"data read back differs on qid {q.sqid}"


@pytest.mark.device
def test_create_sq_qid_zero(raw_queues):
    """Create I/O SQ with queue id 0 (the admin queue) fails with Invalid Queue Identifier.

    Spec: NVMe 2.0 base spec 5.5 Create I/O Submission Queue (01/01).

    Steps:
    1. Create an IO CQ to bind to.
    2. Create an IO SQ with QID 0.
    3. Check status 01/01.
    """
    cqid = raw_queues.top_qid()
    assert raw_queues.create_cq(cqid, 16) == (0, 0)
    with pytest.warns(UserWarning, match="ERROR status: 01/01"):
        assert raw_queues.create_sq(0, 16, cqid) == (1, 1)


@pytest.mark.device
def test_create_sq_existing_qid(raw_queues):
    """A second Create I/O SQ with the id of an existing SQ fails with 01/01.

    Spec: NVMe 2.0 base spec 5.5 Create I/O Submission Queue (QID already in use).

    Steps:
    1. Create an IO CQ and an IO SQ with the same id.
    2. Create the SQ again.
    3. Check status 01/01.
    """
    qid = raw_queues.top_qid()
    assert raw_queues.create_cq(qid, 16) == (0, 0)
    assert raw_queues.create_sq(qid, 16, qid) == (0, 0)
    with pytest.warns(UserWarning, match="ERROR status: 01/01"):
        assert raw_queues.create_sq(qid, 16, qid) == (1, 1)


@pytest.mark.device
@pytest.mark.parametrize("opcode", [0x00, 0x04])
def test_delete_admin_queue_id(nvme0, opcode):
    """Delete I/O SQ/CQ of queue id 0 fails with Invalid Queue Identifier.

    Spec: NVMe 2.0 base spec 5.6 Delete I/O Completion Queue, 5.7 Delete I/O Submission Queue
    ("a value of 0h ... is invalid").

    Steps:
    1. Send Delete I/O SQ (00h) or Delete I/O CQ (04h) with QID 0.
    2. Check status 01/01 and the admin queue still works.
    """
    with pytest.warns(UserWarning, match="ERROR status: 01/01"):
        nvme0.send_cmd(opcode, cdw10=0).waitdone()
    nvme0.getfeatures(7).waitdone()


@pytest.mark.device
@pytest.mark.parametrize("opcode", [0x05, 0x01])
def test_create_queue_not_contiguous(nvme0, raw_queues, opcode):
    """With CAP.CQR = 1 a queue created with PC = 0 fails with Invalid Field in Command.

    Spec: NVMe 2.0 base spec 5.4/5.5 Create I/O CQ/SQ (PC), 3.1.3.1 CAP.CQR.

    Steps:
    1. Skip if CAP.CQR is 0 (non-contiguous queues allowed).
    2. Create an IO CQ (for the SQ case), then send the create command with PC = 0.
    3. Check status 00/02.
    """
    if not (nvme0.cap >> 16) & 1:
        pytest.skip("CAP.CQR = 0: non-contiguous queues are allowed")
    qid = raw_queues.top_qid()
    cdw11 = 0
    if opcode == 0x01:
        assert raw_queues.create_cq(qid, 16) == (0, 0)
        cdw11 = qid << 16
    mem = Buffer(4096)
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.send_cmd(opcode, mem, cdw10=15 << 16 | qid, cdw11=cdw11).waitdone()


@pytest.mark.device
def test_create_cq_memory_offset(nvme0, raw_queues):
    """A contiguous queue whose PRP Entry 1 has a non-zero page offset fails with 00/13.

    Spec: NVMe 2.0 base spec 5.4 Create I/O Completion Queue (PRP1 "shall be memory page
    aligned"), status PRP Offset Invalid.

    Steps:
    1. Take a page buffer and set its offset to 0x200.
    2. Send Create I/O CQ (PC = 1) with that buffer.
    3. Check status 00/13.
    """
    qid = raw_queues.top_qid()
    mem = Buffer(8192)
    mem.offset = 0x200
    with pytest.warns(UserWarning, match="ERROR status: 00/13"):
        nvme0.send_cmd(0x05, mem, cdw10=15 << 16 | qid, cdw11=1).waitdone()


@pytest.mark.device
def test_smallest_queue_carries_io(nvme0, nvme0n1):
    """A queue pair of two entries (one usable slot) carries IO in order.

    Spec: NVMe 2.0 base spec 4.1.3 Queue Size ("minimum size ... is two entries").

    Steps:
    1. Create a qpair of depth 2.
    2. Write and read 20 different LBAs one at a time (the queues wrap many times).
    3. Check each read returns the data written.
    """
    q = Qpair(nvme0, 2)
    try:
        for i in range(20):
            write_read(nvme0n1, q, 300 + i, 0xA0000000 + i)
    finally:
        q.delete()


@pytest.mark.device
def test_largest_queue_carries_io(nvme0, nvme0n1):
    """A queue pair of CAP.MQES+1 entries (capped at 4096) holds a full queue of commands.

    Spec: NVMe 2.0 base spec 3.1.3.1 CAP.MQES, 4.1.3 Queue Size.

    Steps:
    1. Create a qpair of depth min(MQES + 1, 4096).
    2. Submit depth - 1 writes without waiting, then wait for all of them.
    3. Read back a sample of the LBAs and check the data.
    """
    depth = min((nvme0.cap & 0xFFFF) + 1, 4096)
    q = Qpair(nvme0, depth)
    try:
        bufs = []
        for i in range(depth - 1):
            b = Buffer(nvme0n1.sector_size, ptype=32, pvalue=0xB0000000 + i)
            bufs.append(b)
            nvme0n1.write(q, b, 5000 + i)
        q.waitdone(depth - 1)
        r = Buffer(nvme0n1.sector_size)
        for i in range(0, depth - 1, max(1, (depth - 1) // 16)):
            nvme0n1.read(q, r, 5000 + i).waitdone()
            assert r == bufs[i], f"LBA {5000 + i}"
    finally:
        q.delete()


@pytest.mark.device
def test_all_allocated_queues_at_once(nvme0, nvme0n1):
    """Every allocated IO queue pair can exist at the same time and carry IO (up to 64).

    Spec: NVMe 2.0 base spec 5.27.1.5 Number of Queues (NSQA/NCQA).

    Steps:
    1. Read NSQA/NCQA from Get Features Number of Queues.
    2. Create min(NSQA, NCQA, 64) qpairs of depth 4.
    3. Write and read one LBA through each, then delete them all.
    """
    cdw0 = nvme0.getfeatures(7).waitdone()
    n = min((cdw0 & 0xFFFF) + 1, (cdw0 >> 16) + 1, 64)
    qs = []
    try:
        for _ in range(n):
            qs.append(Qpair(nvme0, 4))
        assert len({q.sqid for q in qs}) == n
        for i, q in enumerate(qs):
            write_read(nvme0n1, q, 700 + i, 0xC0000000 + i)
    finally:
        for q in qs:
            q.delete()


@pytest.mark.device
def test_queue_recreated_after_delete(nvme0, nvme0n1, raw_queues):
    """A deleted queue id can be created again and used.

    Spec: NVMe 2.0 base spec 5.6/5.7 Delete I/O CQ/SQ, 5.4/5.5 Create I/O CQ/SQ.

    Steps:
    1. Create an IO CQ and SQ with the top queue id, delete the SQ then the CQ.
    2. Create both again with the same id: success.
    3. Delete them again: success.
    """
    qid = raw_queues.top_qid()
    for _ in range(2):
        assert raw_queues.create_cq(qid, 16) == (0, 0)
        assert raw_queues.create_sq(qid, 16, qid) == (0, 0)
        assert raw_queues.delete_sq(qid) == (0, 0)
        assert raw_queues.delete_cq(qid) == (0, 0)


@pytest.mark.device
def test_delete_sq_twice(raw_queues):
    """Deleting an SQ that was already deleted fails with Invalid Queue Identifier.

    Spec: NVMe 2.0 base spec 5.7 Delete I/O Submission Queue (01/01).

    Steps:
    1. Create an IO CQ and SQ, delete the SQ.
    2. Delete the SQ again: status 01/01.
    """
    qid = raw_queues.top_qid()
    assert raw_queues.create_cq(qid, 16) == (0, 0)
    assert raw_queues.create_sq(qid, 16, qid) == (0, 0)
    assert raw_queues.delete_sq(qid) == (0, 0)
    with pytest.warns(UserWarning, match="ERROR status: 01/01"):
        assert raw_queues.delete_sq(qid) == (1, 1)


@pytest.mark.sim_only
@pytest.mark.parametrize("queues", [16, 64])
def test_simulator_queue_count_knob(queues):
    """The simulated SSD allocates the number of IO queues its URI asks for (`queues=N`).

    Spec: NVMe 2.0 base spec 5.27.1.5 Number of Queues (NSQA/NCQA, 0's based).

    Steps:
    1. Open `sim://?queues=N` and initialise the controller the default way.
    2. Check Get Features Number of Queues reports N submission and N completion queues.
    3. Check queue N can be created and the driver refuses queue N+1 (beyond the allocation).
    """
    pcie = Pcie(f"sim://?queues={queues}")
    try:
        nvme0 = Controller(pcie)
        cdw0 = nvme0.getfeatures(7).waitdone()
        assert (cdw0 & 0xFFFF) + 1 == queues
        assert (cdw0 >> 16) + 1 == queues
        q = Qpair(nvme0, 4, sqid=queues)
        q.delete()
        with pytest.raises(QpairCreationError, match=f"not in 1..={queues}"):
            Qpair(nvme0, 4, sqid=queues + 1)
    finally:
        pcie.close()
