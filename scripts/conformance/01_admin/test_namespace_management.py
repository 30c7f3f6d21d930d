"""Namespace Management (0Dh) and Namespace Attachment (15h), with the AER they raise.

Create, attach, verified IO, detach and delete a namespace; the Namespace Attribute Changed
notice (AER 0x040002) and the Changed Namespace List; capacity, attach and detach errors (01/15,
01/18, 01/1A), deleting a namespace that does not exist, IO to a detached namespace (00/0B), and
Identify of an allocated but inactive namespace (CNS 00h zeroes, CNS 11h the data). On the
simulated SSD the tests open their own device without namespaces (`sim://?namespaces=0`); on a
real drive they need Namespace Management and unallocated capacity, else they skip.
"""

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")

BLOCKS = 1 << 18  # blocks of each namespace the tests create


@pytest.fixture
def mgmt(pciaddr, nvme0):
    """A controller with Namespace Management and room for two namespaces of BLOCKS blocks."""
    own = None
    ctrl = nvme0
    if not pciaddr or pciaddr.startswith("sim"):
        own = Pcie("sim://?namespaces=0")
        ctrl = Controller(own)
    try:
        b = Buffer(4096)
        ctrl.identify(b).waitdone()
        if not b.data(257, 256) & 0x8:
            pytest.skip("Namespace Management not supported (OACS bit 3)")
        if b.data(311, 296) < 2 * BLOCKS * 4096:
            pytest.skip("not enough unallocated capacity (UNVMCAP) for two namespaces")
        yield ctrl
    finally:
        if own is not None:
            own.close()


def create(ctrl):
    nsid = ctrl.ns_create(BLOCKS)
    assert nsid, "namespace creation failed"
    return nsid


def active(ctrl):
    b = Buffer(4096)
    ctrl.identify(b, nsid=0, cns=2).waitdone()
    out = []
    for i in range(1024):
        v = b.data(4 * i + 3, 4 * i)
        if not v:
            break
        out.append(v)
    return out


@pytest.mark.device
def test_ns_create_attach_io_delete(mgmt):
    """A created and attached namespace has the requested size and keeps verified data.

    Spec: NVMe 2.0 base spec 5.23 Namespace Management, 5.22 Namespace Attachment, 8.11.

    Steps:
    1. Create a namespace of 2^18 blocks in LBA format 0; attach it to this controller.
    2. Check it is in the active list and Identify reports NSZE = NCAP = 2^18.
    3. Write and read 8 blocks with verification.
    4. Detach and delete it; check it left the active list.
    """
    nsid = create(mgmt)
    try:
        assert mgmt.ns_attach(nsid)
        assert nsid in active(mgmt)
        b = Buffer(4096)
        mgmt.identify(b, nsid=nsid, cns=0).waitdone()
        assert b.data(7, 0) == BLOCKS and b.data(15, 8) == BLOCKS
        ns = Namespace(mgmt, nsid)
        try:
            ns.verify_enable(True)
            q = Qpair(mgmt, 8)
            w = Buffer(8 * ns.sector_size, ptype=32, pvalue=nsid)
            r = Buffer(len(w))
            ns.write(q, w, BLOCKS - 8, 8).waitdone()
            ns.read(q, r, BLOCKS - 8, 8).waitdone()
            assert r == w
            q.delete()
        finally:
            ns.close()
        assert mgmt.ns_detach(nsid)
    finally:
        assert mgmt.ns_delete(nsid)
    assert nsid not in active(mgmt)


@pytest.mark.device
def test_ns_attribute_changed_notice(mgmt):
    """Attaching a namespace raises the Namespace Attribute Changed notice and lists the NSID.

    Spec: NVMe 2.0 base spec 5.2 AER (notice 02h, info 00h, log 04h), 5.16.1.5 Changed
    Namespace List, 5.27.1.8 (FID 0Bh bit 8).

    Steps:
    1. Skip unless OAES bit 8; enable the notice in FID 0Bh.
    2. Create and attach a namespace: the AER notification 0x40002 arrives.
    3. Read log 04h: the NSID is listed.
    4. Detach and delete (the detach raises the notice again).
    """
    b = Buffer(4096)
    mgmt.identify(b).waitdone()
    if not b.data(95, 92) & (1 << 8):
        pytest.skip("Namespace Attribute Notices not supported (OAES bit 8)")
    aec = mgmt.getfeatures(0x0B).waitdone()
    mgmt.setfeatures(0x0B, cdw11=aec | 1 << 8).waitdone()
    nsid = create(mgmt)
    try:
        with pytest.warns(UserWarning, match="AER notification is triggered: 0x40002"):
            assert mgmt.ns_attach(nsid)
            mgmt.getfeatures(7).waitdone()
        log = Buffer(4096)
        mgmt.getlogpage(4, log, 4096).waitdone()
        listed = [log.data(4 * i + 3, 4 * i) for i in range(1024)]
        assert nsid in listed or listed[0] == 0xFFFFFFFF
        with pytest.warns(UserWarning, match="AER notification is triggered: 0x40002"):
            assert mgmt.ns_detach(nsid)
            mgmt.getfeatures(7).waitdone()
        mgmt.getlogpage(4, log, 4096).waitdone()
    finally:
        mgmt.setfeatures(0x0B, cdw11=aec).waitdone()
        assert mgmt.ns_delete(nsid)


@pytest.mark.device
def test_ns_create_insufficient_capacity(mgmt):
    """A namespace larger than the unallocated capacity fails with 01/15.

    Spec: NVMe 2.0 base spec 5.23 Namespace Management (Namespace Insufficient Capacity).

    Steps:
    1. Read UNVMCAP.
    2. Create a namespace of UNVMCAP / 512 + 2^20 blocks (format 0, at least 512 bytes).
    3. Check status 01/15.
    """
    b = Buffer(4096)
    mgmt.identify(b).waitdone()
    blocks = b.data(311, 296) // 512 + (1 << 20)
    with pytest.warns(UserWarning, match="ERROR status: 01/15"):
        assert mgmt.ns_create(blocks) == 0


@pytest.mark.device
def test_ns_attach_twice(mgmt):
    """Attaching a namespace already attached fails with Namespace Already Attached (01/18).

    Spec: NVMe 2.0 base spec 5.22 Namespace Attachment.

    Steps:
    1. Create and attach a namespace.
    2. Attach it again: 01/18.
    3. Detach and delete it.
    """
    nsid = create(mgmt)
    try:
        assert mgmt.ns_attach(nsid)
        with pytest.warns(UserWarning, match="ERROR status: 01/18"):
            assert not mgmt.ns_attach(nsid)
        assert mgmt.ns_detach(nsid)
    finally:
        assert mgmt.ns_delete(nsid)


@pytest.mark.device
def test_ns_detach_not_attached(mgmt):
    """Detaching a namespace that is not attached fails with Namespace Not Attached (01/1A).

    Spec: NVMe 2.0 base spec 5.22 Namespace Attachment.

    Steps:
    1. Create a namespace (not attached).
    2. Detach it: 01/1A.
    3. Delete it.
    """
    nsid = create(mgmt)
    try:
        with pytest.warns(UserWarning, match="ERROR status: 01/1a"):
            assert not mgmt.ns_detach(nsid)
    finally:
        assert mgmt.ns_delete(nsid)


@pytest.mark.device
def test_ns_delete_not_allocated(mgmt):
    """Deleting a namespace id that is not allocated fails with 00/0B.

    Spec: NVMe 2.0 base spec 5.23 Namespace Management (delete: Invalid Namespace or Format).

    Steps:
    1. Create a namespace and delete it.
    2. Delete the same NSID again: 00/0B.
    """
    nsid = create(mgmt)
    assert mgmt.ns_delete(nsid)
    with pytest.warns(UserWarning, match="ERROR status: 00/0b"):
        assert not mgmt.ns_delete(nsid)


@pytest.mark.device
def test_io_to_detached_namespace(mgmt):
    """IO to a namespace that is allocated but not attached fails with 00/0B.

    Spec: NVMe 2.0 base spec 8.11 (an inactive namespace), 4.2.3 (00/0B).

    Steps:
    1. Create and attach namespace A; create namespace B without attaching it.
    2. Read LBA 0 through A's IO path with B's NSID: 00/0B.
    3. Read LBA 0 of A: success. Detach A; delete both.
    """
    a, b = create(mgmt), create(mgmt)
    try:
        assert mgmt.ns_attach(a)
        ns = Namespace(mgmt, a)
        q = Qpair(mgmt, 4)
        try:
            buf = Buffer(ns.sector_size)
            with pytest.warns(UserWarning, match="ERROR status: 00/0b"):
                ns.send_cmd(0x02, q, buf, nsid=b).waitdone()
            ns.read(q, buf, 0).waitdone()
        finally:
            q.delete()
            ns.close()
        assert mgmt.ns_detach(a)
    finally:
        assert mgmt.ns_delete(a)
        assert mgmt.ns_delete(b)


@pytest.mark.device
def test_identify_inactive_allocated_namespace(mgmt):
    """An allocated, inactive namespace: CNS 00h returns zeroes, CNS 11h returns its data.

    Spec: NVMe 2.0 base spec 5.17.2.1 CNS 00h (inactive NSID: zero filled), CNS 11h
    (Identify Namespace for an allocated NSID).

    Steps:
    1. Create a namespace without attaching it.
    2. Identify CNS 00h for it: success, all zero.
    3. Identify CNS 11h for it: NSZE is 2^18.
    4. Delete it.
    """
    nsid = create(mgmt)
    try:
        b = Buffer(4096)
        mgmt.identify(b, nsid=nsid, cns=0).waitdone()
        assert b[0:4096] == bytes(4096)
        mgmt.identify(b, nsid=nsid, cns=0x11).waitdone()
        assert b.data(7, 0) == BLOCKS
    finally:
        assert mgmt.ns_delete(nsid)
