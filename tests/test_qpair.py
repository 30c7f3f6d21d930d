"""Qpair: creation limits, depth, properties, waitdone, callbacks, lazy doorbell, MSI-X, deletion.

A queue of depth N holds N-1 commands; one more is refused (AssertionError, as pynvme); queues
run out with QpairCreationError; waitdone re-entry from a callback and waitdone with nothing
outstanding raise instead of hanging; interrupts follow ien/iv and the mask.
"""

import time

import pytest

from nvme import *


def test_properties(nvme0):
    q = Qpair(nvme0, 16)
    try:
        assert (q.depth, q.prio, q.ien, q.lazy_doorbell) == (16, 0, True, False)
        assert q.sqid >= 1
        assert repr(q) == f"<qpair: {q.sqid}>"
        assert q.nvme is nvme0
    finally:
        q.delete()


def test_lowest_free_qid_and_explicit_sqid(nvme0):
    a = Qpair(nvme0, 4)
    b = Qpair(nvme0, 4, sqid=40)
    c = Qpair(nvme0, 4)
    try:
        assert b.sqid == 40
        assert c.sqid == a.sqid + 1
    finally:
        for q in (a, b, c):
            q.delete()


def test_depth_limit_is_depth_minus_one(nvme0, nvme0n1, buf):
    q = Qpair(nvme0, 4)
    try:
        # Distinct LBAs: commands on LBAs held by an outstanding command wait outside the SQ.
        for i in range(3):
            nvme0n1.read(q, buf, 8 * i)
        with pytest.raises(AssertionError, match="full"):
            nvme0n1.read(q, buf, 24)
        q.waitdone(3)
        nvme0n1.read(q, buf, 0).waitdone()
    finally:
        q.delete()


def test_depth_bounds(nvme0):
    assert Qpair(nvme0, 2).depth == 2
    with pytest.raises(NvmeArgumentError, match="depth"):
        Qpair(nvme0, 1)
    with pytest.raises(NvmeArgumentError, match="depth"):
        Qpair(nvme0, 1025)


def test_depth_above_mqes_raises():
    pcie = Pcie("sim://?mqes=63")
    try:
        nvme0 = Controller(pcie)
        assert Qpair(nvme0, 64).depth == 64
        with pytest.raises(NvmeArgumentError, match="depth"):
            Qpair(nvme0, 65)
    finally:
        pcie.close()


def test_queues_run_out():
    pcie = Pcie("sim://?queues=4")
    try:
        nvme0 = Controller(pcie)
        qpairs = [Qpair(nvme0, 2) for _ in range(4)]
        with pytest.raises(QpairCreationError, match="qpair create fail"):
            Qpair(nvme0, 2)
        qpairs.pop().delete()
        qpairs.append(Qpair(nvme0, 2))
        for q in qpairs:
            q.delete()
    finally:
        pcie.close()


def test_delete_then_reuse_qid(nvme0):
    q = Qpair(nvme0, 8)
    qid = q.sqid
    q.delete()
    q2 = Qpair(nvme0, 8)
    assert q2.sqid == qid
    q2.delete()


def test_close_is_refused(qpair):
    with pytest.raises(AssertionError, match=r"use Qpair\.delete\(\)"):
        qpair.close()


def test_waitdone_exact_count_and_cdw0(nvme0n1, qpair, buf):
    for i in range(5):
        nvme0n1.read(qpair, buf, i)
    assert qpair.waitdone(5) == 0


def test_waitdone_nothing_outstanding_raises(qpair):
    start = time.time()
    with pytest.raises(AssertionError, match="none is outstanding"):
        qpair.waitdone()
    assert time.time() - start < 1


def test_waitdone_reentry_from_callback_raises(nvme0n1, qpair, buf):
    errors = []

    def cb(cqe):
        try:
            qpair.waitdone()
        except AssertionError as e:
            errors.append(str(e))

    nvme0n1.read(qpair, buf, 0, cb=cb).waitdone()
    assert len(errors) == 1 and errors[0].startswith("cannot re-entry waitdone()")


def test_controller_waitdone_from_io_callback_raises(nvme0, nvme0n1, qpair, buf):
    errors = []

    def cb(cqe):
        try:
            nvme0.getfeatures(7).waitdone()
        except AssertionError as e:
            errors.append(str(e))

    nvme0n1.read(qpair, buf, 0, cb=cb).waitdone()
    # The admin command was submitted and is still reaped by the script.
    nvme0.waitdone()
    assert len(errors) == 1 and "cannot re-entry waitdone()" in errors[0]


def test_callback_submits_io(nvme0n1, qpair):
    w = Buffer(512, ptype=32, pvalue=0x77777777)
    r = Buffer(512)
    seen = []

    def write_cb(cqe):
        seen.append(("write", cqe.sqid))
        nvme0n1.read(qpair, r, 5, cb=lambda c: seen.append(("read", c.sqid)))

    nvme0n1.write(qpair, w, 5, cb=write_cb)
    qpair.waitdone(2)
    assert seen == [("write", qpair.sqid), ("read", qpair.sqid)]
    assert r == w


def test_io_callback_two_argument_form(nvme0n1, qpair, buf):
    got = []
    nvme0n1.read(qpair, buf, 0, cb=lambda cdw0, status1: got.append((cdw0, status1)))
    qpair.waitdone()
    assert got == [(0, 1)]


def test_latest_cid_and_latency(pcie, nvme0n1, qpair, buf):
    cids = []
    pcie.sim.inject("delay", 30, opcode=2, count=1)
    nvme0n1.read(qpair, buf, 0, cb=lambda c: cids.append(c.cid)).waitdone()
    assert qpair.latest_cid == cids[0]
    # The device held the completion 30 ms: the latency is of this command, in µs.
    assert 30_000 <= qpair.latest_latency < 10_000_000


def test_cmdlog(nvme0n1, qpair, buf):
    nvme0n1.write(qpair, buf, 7).waitdone()
    nvme0n1.read(qpair, buf, 7).waitdone()
    log = qpair.cmdlog(2)
    assert f"Read, sqid: {qpair.sqid}]" in log[0]
    assert f"Write, sqid: {qpair.sqid}]" in log[1]
    assert "[cpl: SUCCESS]" in log[0]


def test_lazy_doorbell_rings_in_waitdone(nvme0, nvme0n1, buf):
    q = Qpair(nvme0, 16, lazy_doorbell=True)
    try:
        q.msix_clear()
        for _ in range(3):
            nvme0n1.read(q, buf, 0)
        assert not q.wait_msix(0.1), "the device saw commands before waitdone"
        q.waitdone(3)
        assert q.msix_isset()
    finally:
        q.delete()


def test_doorbell_rung_at_submission(nvme0, nvme0n1, buf, qpair):
    qpair.msix_clear()
    nvme0n1.read(qpair, buf, 0)
    assert qpair.wait_msix(1.0)
    qpair.waitdone()


def test_msix_mask_holds_interrupt(nvme0n1, qpair, buf):
    qpair.msix_clear()
    qpair.msix_mask()
    nvme0n1.read(qpair, buf, 0).waitdone()
    assert not qpair.msix_isset()
    qpair.msix_unmask()
    assert qpair.wait_msix(1.0)


def test_interrupt_disabled(nvme0, nvme0n1, buf):
    q = Qpair(nvme0, 8, ien=False)
    try:
        assert q.ien is False
        q.msix_clear()
        nvme0n1.read(q, buf, 0).waitdone()
        assert not q.wait_msix(0.05)
    finally:
        q.delete()


def test_interrupt_vector_choice(nvme0):
    q = Qpair(nvme0, 8, iv=3)
    try:
        assert q.iv == 3
    finally:
        q.delete()


def test_garbage_collected_qpair_is_deleted(nvme0):
    q = Qpair(nvme0, 8)
    qid = q.sqid
    del q
    q2 = Qpair(nvme0, 8, sqid=qid)
    assert q2.sqid == qid
    q2.delete()


def test_prio_without_wrr_fails(nvme0):
    # The default init selects round robin arbitration: SQ priorities need WRR.
    with pytest.raises(QpairCreationError):
        Qpair(nvme0, 8, prio=1)


def test_a_dropped_qpair_is_deleted_and_its_id_reused(nvme0):
    q = Qpair(nvme0, 16)
    sqid = q.sqid
    del q
    q2 = Qpair(nvme0, 16, sqid=sqid)
    assert q2.sqid == sqid
    q2.delete()
