"""MSI-X interrupts of IO completion queues.

A completion sets the queue's vector, a masked vector holds the interrupt pending until unmasked,
a queue created with interrupts disabled never signals, and Interrupt Coalescing (08h) with an
aggregation threshold still delivers every completion.
"""

import pytest

from nvme import *


@pytest.mark.device
def test_interrupt_qpair_msix_mask(nvme0, nvme0n1, buf, qpair):
    """A masked vector does not signal; unmasking delivers the pending interrupt.

    Spec: PCIe base spec 7.7.2 MSI-X (Mask bit, Pending Bit); NVMe 2.0 base spec 2.6.

    Steps:
    1. Read one block: the vector signals.
    2. Mask, read again: no interrupt.
    3. Unmask: the pending interrupt arrives.
    """
    qpair.msix_clear()
    assert not qpair.msix_isset()
    nvme0n1.read(qpair, buf, 0, 4096 // nvme0n1.sector_size).waitdone()
    assert qpair.msix_isset()
    qpair.msix_clear()
    qpair.msix_mask()
    assert not qpair.msix_isset()
    nvme0n1.read(qpair, buf, 0, 4096 // nvme0n1.sector_size).waitdone()
    assert not qpair.msix_isset(), "a masked vector signalled"
    qpair.msix_unmask()
    assert qpair.wait_msix(1.0), "the pending interrupt was not delivered at unmask"


@pytest.mark.device
def test_interrupt_disabled_queue(nvme0, nvme0n1, buf):
    """A CQ created with IEN = 0 does not signal its vector.

    Spec: NVMe 2.0 base spec 5.4 Create I/O Completion Queue (IEN).

    Steps:
    1. Create a qpair with IEN = 0 on vector 1.
    2. Read one block.
    3. Check the vector is not set.
    """
    # The CQ names vector 1, which no other queue of this test uses, with IEN=0: the vector must
    # stay quiet. (Without iv= the driver gives an IEN=0 queue vector 0, the admin queue's, whose
    # late interrupts for the queue creation would race with the check.)
    q = Qpair(nvme0, 8, ien=False, iv=1)
    try:
        q.msix_clear()
        nvme0n1.read(q, buf, 0, 4096 // nvme0n1.sector_size).waitdone()
        assert not q.msix_isset(), "a queue created with IEN=0 signalled"
    finally:
        q.delete()


@pytest.mark.device
def test_interrupt_coalescing_delivers_completions(nvme0, nvme0n1, qpair, buf, require_changeable):
    """With interrupt coalescing set, completions still raise an interrupt.

    Spec: NVMe 2.0 base spec 5.27.1.6 Interrupt Coalescing.

    Steps:
    1. Skip if the feature is not changeable.
    2. Set TIME 1, THR 3.
    3. Send 4 reads and wait.
    4. Check the vector signalled; restore.
    """
    require_changeable(8)
    original = nvme0.getfeatures(8).waitdone()
    try:
        nvme0.setfeatures(8, cdw11=0x0103).waitdone()
        qpair.msix_clear()
        for _ in range(4):
            nvme0n1.read(qpair, buf, 0, 1)
        qpair.waitdone(4)
        assert qpair.wait_msix(1.0)
    finally:
        nvme0.setfeatures(8, cdw11=original).waitdone()
