"""Namespace management and attachment helpers, and iostat, on the simulated SSD."""

import time

import pytest

import nvme
from nvme import Buffer, Namespace

pytestmark = pytest.mark.skipif(not nvme.native_available(), reason="nvme._native is not built")


def test_create_attach_use_detach_delete(nvme0, qpair):
    # The simulated SSD's namespace 1 holds all its capacity: free it first.
    assert nvme0.ns_detach(1)
    assert nvme0.ns_delete(1)
    nsid = nvme0.ns_create(1 << 20)
    assert nsid >= 1
    assert nvme0.ns_attach(nsid)
    ns = Namespace(nvme0, nsid)
    buf = Buffer(4096, ptype=0xBEEF, pvalue=100)
    ns.write(qpair, buf, 0, 8).waitdone()
    ns.close()
    assert nvme0.ns_detach(nsid)
    with pytest.warns(UserWarning, match="ERROR status"):
        assert not nvme0.ns_detach(nsid)  # not attached any more
    assert nvme0.ns_delete(nsid)
    with pytest.warns(UserWarning, match="ERROR status: 00/0b"):
        assert not nvme0.ns_delete(nsid)


def test_ns_create_too_big_warns_and_returns_0(nvme0):
    with pytest.warns(UserWarning, match="ERROR status: 01/15"):
        assert nvme0.ns_create(1 << 60) == 0


def test_iostat_counts_reads_and_writes(nvme0, nvme0n1, qpair):
    nvme0.iostat()
    buf = Buffer(4096)
    t0 = time.time()
    for i in range(100):
        nvme0n1.read(qpair, buf, i, 8).waitdone()
    elapsed = time.time() - t0
    speed, iops = nvme0.iostat()
    assert iops > 0
    assert speed == pytest.approx(iops * 4096, rel=0.01)
    assert iops <= 100 / elapsed * 1.5
