"""MSI-X interrupts of IO completion queues.

One vector per queue (a completion signals only its own queue's vector), two queues sharing a
vector, repeated masking of a vector with the pending interrupt delivered at unmask, the MSI-X
Function Mask, a queue without interrupts completing many commands by polling, and Interrupt
Vector Configuration (FID 09h) Coalescing Disable.
"""

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")


def vectors(pcie):
    cap = pcie.cap_offset(0x11)
    if cap is None:
        pytest.skip("no MSI-X capability")
    return cap, (pcie.cfg_word_read(cap + 2) & 0x7FF) + 1


def read_one(nvme0n1, q):
    nvme0n1.read(q, Buffer(nvme0n1.sector_size), 0).waitdone()


@pytest.mark.device
def test_msix_vector_per_queue(pcie, nvme0, nvme0n1):
    """Each IO CQ with its own vector signals that vector only.

    Spec: NVMe 2.0 base spec 5.4 Create I/O Completion Queue (IV, IEN), 2.6 MSI-X.

    Steps:
    1. Create up to 4 qpairs, vectors 1..4 (as the MSI-X table and queue allocation allow).
    2. For each queue: clear all flags, read one block on it.
    3. Check its vector is set and the other queues' vectors are not.
    """
    _, n = vectors(pcie)
    cdw0 = nvme0.getfeatures(7).waitdone()
    count = min(4, n - 1, (cdw0 & 0xFFFF) + 1)
    if count < 2:
        pytest.skip("fewer than 2 IO queues with their own vector")
    qs = [Qpair(nvme0, 8, iv=i + 1) for i in range(count)]
    try:
        for k, q in enumerate(qs):
            for other in qs:
                other.msix_clear()
            read_one(nvme0n1, q)
            assert q.wait_msix(1.0), f"queue {q.sqid} (vector {k + 1}) did not signal"
            for other in qs:
                if other is not q:
                    assert not other.msix_isset(), f"vector {other.iv} signalled for {q.sqid}"
    finally:
        for q in qs:
            q.delete()


@pytest.mark.device
def test_msix_vector_shared_by_two_queues(pcie, nvme0, nvme0n1):
    """Two CQs created with the same vector both signal it.

    Spec: NVMe 2.0 base spec 5.4 Create I/O Completion Queue (several CQs may share a vector).

    Steps:
    1. Create two qpairs with vector 1.
    2. Read on the first: the vector is set; clear it, read on the second: set again.
    """
    _, n = vectors(pcie)
    if n < 2:
        pytest.skip("a single MSI-X vector")
    a, b = Qpair(nvme0, 8, iv=1), Qpair(nvme0, 8, iv=1)
    try:
        for q in (a, b):
            a.msix_clear()
            read_one(nvme0n1, q)
            assert a.wait_msix(1.0) and b.msix_isset()
    finally:
        a.delete()
        b.delete()


@pytest.mark.device
def test_msix_mask_repeated(nvme0, nvme0n1, qpair):
    """Masking a vector holds its interrupt; unmasking delivers it, three times over.

    Spec: PCIe base spec 7.7.2 MSI-X (Vector Control Mask bit, Pending Bits); NVMe 2.0 base
    spec 2.6.

    Steps:
    1. Three times: clear, mask the queue's vector, read one block (completes by polling).
    2. Check no interrupt arrived while masked.
    3. Unmask: the pending interrupt arrives.
    """
    for _ in range(3):
        qpair.msix_clear()
        qpair.msix_mask()
        read_one(nvme0n1, qpair)
        assert not qpair.msix_isset(), "a masked vector signalled"
        qpair.msix_unmask()
        assert qpair.wait_msix(1.0), "pending interrupt not delivered at unmask"


@pytest.mark.device
def test_msix_function_mask(pcie, nvme0, nvme0n1, qpair):
    """With the MSI-X Function Mask set, no vector signals; clearing it delivers the pending.

    Spec: PCIe base spec 7.7.2.2 Message Control (Function Mask bit 14).

    Steps:
    1. Set Function Mask in the MSI-X Message Control register.
    2. Clear the queue's flag, read one block: no interrupt.
    3. Clear Function Mask: the pending interrupt arrives.
    """
    cap, _ = vectors(pcie)
    ctl = pcie.cfg_word_read(cap + 2)
    qpair.msix_clear()
    pcie.cfg_word_write(cap + 2, ctl | 0x4000)
    try:
        read_one(nvme0n1, qpair)
        assert not qpair.msix_isset(), "interrupt while the function is masked"
    finally:
        pcie.cfg_word_write(cap + 2, ctl & ~0x4000)
    assert qpair.wait_msix(1.0), "pending interrupt not delivered after Function Mask cleared"


@pytest.mark.device
def test_polled_queue_many_commands(nvme0, nvme0n1, verify):
    """A CQ created without interrupts (IEN = 0) completes 200 commands by polling.

    Spec: NVMe 2.0 base spec 5.4 Create I/O Completion Queue (IEN = 0: no interrupts).

    Steps:
    1. Create a qpair with IEN = 0 on vector 1.
    2. Write then read 100 blocks one by one with verification.
    3. Check the vector never signalled.
    """
    q = Qpair(nvme0, 16, ien=False, iv=1)
    try:
        q.msix_clear()
        for i in range(100):
            b = Buffer(nvme0n1.sector_size, ptype=32, pvalue=i)
            nvme0n1.write(q, b, 8000 + i).waitdone()
            nvme0n1.read(q, Buffer(nvme0n1.sector_size), 8000 + i).waitdone()
        assert not q.msix_isset()
    finally:
        q.delete()


@pytest.mark.device
def test_interrupt_vector_coalescing_disable(pcie, nvme0, qpair, oncs):
    """Interrupt Vector Configuration sets and clears Coalescing Disable of an IO vector.

    Spec: NVMe 2.0 base spec 5.27.1.7 Interrupt Vector Configuration (CD bit 16); 5.15 Get
    Features SEL=11b (a controller may make a feature not changeable: Set Features then fails
    with 01/0E Feature Not Changeable).

    Steps:
    1. Read the configuration of the qpair's vector (its IV is echoed).
    2. Skip if the feature is not changeable (SEL=11b, with Select support: ONCS bit 4).
    3. Set CD = 1, read it back; set the original back and read it.
    """
    vectors(pcie)
    iv = qpair.iv
    original = nvme0.getfeatures(9, cdw11=iv).waitdone()
    assert original & 0xFFFF == iv
    if oncs & (1 << 4) and not nvme0.getfeatures(9, sel=3, cdw11=iv).waitdone() & 0x4:
        pytest.skip("Interrupt Vector Configuration is not changeable (SEL=11b)")
    try:
        nvme0.setfeatures(9, cdw11=1 << 16 | iv).waitdone()
        assert nvme0.getfeatures(9, cdw11=iv).waitdone() >> 16 & 1 == 1
    finally:
        nvme0.setfeatures(9, cdw11=original & 0x1FFFF).waitdone()
    assert nvme0.getfeatures(9, cdw11=iv).waitdone() == original
