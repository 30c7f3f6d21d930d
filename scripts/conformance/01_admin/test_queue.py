"""Create/Delete I/O Submission and Completion Queue (01h, 05h, 00h, 04h): error statuses.

Queues are created with raw admin commands on memory of the test's own, so every field can be
wrong on purpose: an invalid queue identifier (01/01), an invalid queue size (01/02), an SQ bound
to a missing CQ (01/00), an invalid interrupt vector (01/08), deleting a CQ that still has an SQ
(01/0c) and deleting a queue that does not exist (01/01). A doorbell write beyond the queue size
must raise the asynchronous event "invalid doorbell write value" (0x010100).
"""

import time

import pytest

from nvme import *


@pytest.mark.device
def test_create_cq_invalid_qid(raw_queues):
    """Create I/O CQ with queue id 0 or beyond the allocation fails with 01/01.

    Spec: NVMe 2.0 base spec 5.4 Create I/O Completion Queue.

    Steps:
    1. Create CQ 0: 01/01.
    2. Create CQ NCQA+1: 01/01.
    """
    with pytest.warns(UserWarning, match="ERROR status: 01/01"):
        assert raw_queues.create_cq(0, 16) == (1, 1)
    if raw_queues.ncqa < 0xFFFF:
        with pytest.warns(UserWarning, match="ERROR status: 01/01"):
            assert raw_queues.create_cq(raw_queues.ncqa + 1, 16) == (1, 1)


@pytest.mark.device
def test_create_cq_invalid_size(raw_queues):
    """A CQ larger than MQES+1 or of one entry fails with Invalid Queue Size.

    Spec: NVMe 2.0 base spec 5.4 Create I/O Completion Queue (01/02), 3.1.3.1 CAP.MQES.

    Steps:
    1. Create a CQ of MQES+2 entries: 01/02.
    2. Create a CQ of 1 entry: 01/02.
    """
    qid = raw_queues.top_qid()
    if raw_queues.mqes < 0xFFFF:
        with pytest.warns(UserWarning, match="ERROR status: 01/02"):
            assert raw_queues.create_cq(qid, raw_queues.mqes + 2) == (1, 2)
    # A queue of one entry (QSIZE 0) is invalid.
    with pytest.warns(UserWarning, match="ERROR status: 01/02"):
        assert raw_queues.create_cq(qid, 1) == (1, 2)


@pytest.mark.device
def test_create_cq_existing_qid(raw_queues):
    """A second CQ with an existing id fails with 01/01.

    Spec: NVMe 2.0 base spec 5.4 Create I/O Completion Queue.

    Steps:
    1. Create a CQ.
    2. Create it again: 01/01.
    """
    qid = raw_queues.top_qid()
    assert raw_queues.create_cq(qid, 16) == (0, 0)
    with pytest.warns(UserWarning, match="ERROR status: 01/01"):
        assert raw_queues.create_cq(qid, 16) == (1, 1)


@pytest.mark.device
def test_create_cq_invalid_vector(nvme0, pcie, raw_queues):
    """A CQ with an interrupt vector beyond the MSI-X table fails with 01/08.

    Spec: NVMe 2.0 base spec 5.4 Create I/O Completion Queue (Invalid Interrupt Vector).

    Steps:
    1. Skip without MSI-X.
    2. Create a CQ with IV = table size, IEN = 1.
    3. Check 01/08.
    """
    msix = pcie.cap_offset(0x11)
    if msix is None:
        pytest.skip("no MSI-X capability")
    vectors = (pcie.register(msix + 2, 2) & 0x7FF) + 1
    with pytest.warns(UserWarning, match="ERROR status: 01/08"):
        assert raw_queues.create_cq(raw_queues.top_qid(), 16, iv=vectors, ien=True) == (1, 8)


@pytest.mark.device
def test_create_sq_invalid_cq(raw_queues):
    """An SQ bound to a missing CQ or the admin CQ fails with Completion Queue Invalid.

    Spec: NVMe 2.0 base spec 5.5 Create I/O Submission Queue (01/00).

    Steps:
    1. Create an SQ naming a CQ that does not exist: 01/00.
    2. Create an SQ naming CQ 0: 01/00.
    """
    qid = raw_queues.top_qid()
    with pytest.warns(UserWarning, match="ERROR status: 01/00"):
        assert raw_queues.create_sq(qid, 16, cqid=qid) == (1, 0)
    # The admin CQ cannot take IO submissions.
    with pytest.warns(UserWarning, match="ERROR status: 01/00"):
        assert raw_queues.create_sq(qid, 16, cqid=0) == (1, 0)


@pytest.mark.device
def test_create_sq_invalid_qid_and_size(raw_queues):
    """SQ id 0 fails with 01/01, an SQ beyond MQES with 01/02; a valid one succeeds.

    Spec: NVMe 2.0 base spec 5.5 Create I/O Submission Queue.

    Steps:
    1. Create a CQ.
    2. Create SQ 0: 01/01; an SQ of MQES+2 entries: 01/02.
    3. Create a valid SQ.
    """
    qid = raw_queues.top_qid()
    assert raw_queues.create_cq(qid, 16) == (0, 0)
    with pytest.warns(UserWarning, match="ERROR status: 01/01"):
        assert raw_queues.create_sq(0, 16, cqid=qid) == (1, 1)
    if raw_queues.mqes < 0xFFFF:
        with pytest.warns(UserWarning, match="ERROR status: 01/02"):
            assert raw_queues.create_sq(qid, raw_queues.mqes + 2, cqid=qid) == (1, 2)
    assert raw_queues.create_sq(qid, 16, cqid=qid) == (0, 0)


@pytest.mark.device
def test_delete_cq_with_sq_attached(raw_queues):
    """Deleting a CQ that an SQ still uses fails with Invalid Queue Deletion.

    Spec: NVMe 2.0 base spec 5.6 Delete I/O Completion Queue (01/0C).

    Steps:
    1. Create a CQ and an SQ on it.
    2. Delete the CQ: 01/0C.
    3. Delete the SQ, then the CQ: success.
    """
    qid = raw_queues.top_qid()
    assert raw_queues.create_cq(qid, 16) == (0, 0)
    assert raw_queues.create_sq(qid, 16, cqid=qid) == (0, 0)
    with pytest.warns(UserWarning, match="ERROR status: 01/0c"):
        assert raw_queues.delete_cq(qid) == (1, 0x0C)
    assert raw_queues.delete_sq(qid) == (0, 0)
    assert raw_queues.delete_cq(qid) == (0, 0)


@pytest.mark.device
def test_delete_missing_queue(raw_queues):
    """Deleting an SQ or CQ that does not exist, or the admin SQ, fails with 01/01.

    Spec: NVMe 2.0 base spec 5.6/5.7 Delete I/O CQ/SQ.

    Steps:
    1. Delete a missing SQ and CQ: 01/01.
    2. Delete SQ 0: 01/01.
    """
    qid = raw_queues.top_qid()
    with pytest.warns(UserWarning, match="ERROR status: 01/01"):
        assert raw_queues.delete_sq(qid) == (1, 1)
    with pytest.warns(UserWarning, match="ERROR status: 01/01"):
        assert raw_queues.delete_cq(qid) == (1, 1)
    # The admin queues cannot be deleted.
    with pytest.warns(UserWarning, match="ERROR status: 01/01"):
        assert raw_queues.delete_sq(0) == (1, 1)


@pytest.mark.device
def test_aer_sq_doorbell_out_of_range(nvme0, raw_queues, buf):
    """An SQ tail doorbell beyond the queue raises the Invalid Doorbell Write Value event.

    Spec: NVMe 2.0 base spec 5.2 Asynchronous Event Request (0x010100), 3.1.4.3.

    Steps:
    1. Create a CQ and SQ of 16 entries.
    2. Write 20 to the SQ tail doorbell.
    3. Check the AER notification; read the error log to clear it.
    """
    qid = raw_queues.top_qid()
    assert raw_queues.create_cq(qid, 16) == (0, 0)
    assert raw_queues.create_sq(qid, 16, cqid=qid) == (0, 0)
    with pytest.warns(UserWarning, match="AER notification is triggered: 0x10100"):
        # The tail of a 16-entry queue is 0..15.
        nvme0[raw_queues.sq_tail_doorbell(qid)] = 20
        time.sleep(0.1)
        nvme0.getfeatures(7).waitdone()
    # Reading the error log clears the event so that later ones can be reported.
    nvme0.getlogpage(1, buf, 64).waitdone()
