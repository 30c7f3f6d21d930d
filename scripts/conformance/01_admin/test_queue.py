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
    with pytest.warns(UserWarning, match="ERROR status: 01/01"):
        assert raw_queues.create_cq(0, 16) == (1, 1)
    if raw_queues.ncqa < 0xFFFF:
        with pytest.warns(UserWarning, match="ERROR status: 01/01"):
            assert raw_queues.create_cq(raw_queues.ncqa + 1, 16) == (1, 1)


@pytest.mark.device
def test_create_cq_invalid_size(raw_queues):
    qid = raw_queues.top_qid()
    if raw_queues.mqes < 0xFFFF:
        with pytest.warns(UserWarning, match="ERROR status: 01/02"):
            assert raw_queues.create_cq(qid, raw_queues.mqes + 2) == (1, 2)
    # A queue of one entry (QSIZE 0) is invalid.
    with pytest.warns(UserWarning, match="ERROR status: 01/02"):
        assert raw_queues.create_cq(qid, 1) == (1, 2)


@pytest.mark.device
def test_create_cq_existing_qid(raw_queues):
    qid = raw_queues.top_qid()
    assert raw_queues.create_cq(qid, 16) == (0, 0)
    with pytest.warns(UserWarning, match="ERROR status: 01/01"):
        assert raw_queues.create_cq(qid, 16) == (1, 1)


@pytest.mark.device
def test_create_cq_invalid_vector(nvme0, pcie, raw_queues):
    msix = pcie.cap_offset(0x11)
    if msix is None:
        pytest.skip("no MSI-X capability")
    vectors = (pcie.register(msix + 2, 2) & 0x7FF) + 1
    with pytest.warns(UserWarning, match="ERROR status: 01/08"):
        assert raw_queues.create_cq(raw_queues.top_qid(), 16, iv=vectors, ien=True) == (1, 8)


@pytest.mark.device
def test_create_sq_invalid_cq(raw_queues):
    qid = raw_queues.top_qid()
    with pytest.warns(UserWarning, match="ERROR status: 01/00"):
        assert raw_queues.create_sq(qid, 16, cqid=qid) == (1, 0)
    # The admin CQ cannot take IO submissions.
    with pytest.warns(UserWarning, match="ERROR status: 01/00"):
        assert raw_queues.create_sq(qid, 16, cqid=0) == (1, 0)


@pytest.mark.device
def test_create_sq_invalid_qid_and_size(raw_queues):
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
    qid = raw_queues.top_qid()
    assert raw_queues.create_cq(qid, 16) == (0, 0)
    assert raw_queues.create_sq(qid, 16, cqid=qid) == (0, 0)
    with pytest.warns(UserWarning, match="ERROR status: 01/0c"):
        assert raw_queues.delete_cq(qid) == (1, 0x0C)
    assert raw_queues.delete_sq(qid) == (0, 0)
    assert raw_queues.delete_cq(qid) == (0, 0)


@pytest.mark.device
def test_delete_missing_queue(raw_queues):
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
