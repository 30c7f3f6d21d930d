"""Host Memory Buffer (FID 0Dh): the controller is given host memory and keeps working.

One descriptor of HMPRE (or HMMIN) pages and several smaller descriptors, each followed by a
verified ioworker; Get Features reports the buffer enabled with the size and list the host gave;
disabling it returns the memory (EHM = 0). Skips when HMPRE is 0 (no HMB).
"""

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")


def hmb_sizes(id_ctrl_buf):
    """(HMPRE, HMMIN, HMMINDS, HMMAXD): pages of 4 KiB, except HMMAXD (descriptors)."""
    hmpre = id_ctrl_buf.data(275, 272)
    if not hmpre:
        pytest.skip("Host Memory Buffer not supported (HMPRE = 0)")
    return (
        hmpre,
        id_ctrl_buf.data(279, 276),
        id_ctrl_buf.data(567, 564),
        id_ctrl_buf.data(569, 568),
    )


def enable(nvme0, chunks):
    """Enable the HMB with one descriptor per chunk (Buffers of whole pages); return the list."""
    mps = 4096 << ((nvme0[0x14] >> 7) & 0xF)
    desc = Buffer(max(4096, 16 * len(chunks)), "hmb descriptors")
    pages = 0
    for i, c in enumerate(chunks):
        desc[16 * i : 16 * i + 8] = c.phys_addr.to_bytes(8, "little")
        desc[16 * i + 8 : 16 * i + 12] = (len(c) // mps).to_bytes(4, "little")
        pages += len(c) // mps
    addr = desc.phys_addr
    nvme0.setfeatures(
        0x0D,
        cdw11=1,
        cdw12=pages,
        cdw13=addr & 0xFFFFFFFF,
        cdw14=addr >> 32,
        cdw15=len(chunks),
    ).waitdone()
    return desc, pages


def disable(nvme0):
    nvme0.setfeatures(0x0D, cdw11=0).waitdone()


def attributes(nvme0):
    b = Buffer(4096, "hmb attributes")
    cdw0 = nvme0.getfeatures(0x0D, buf=b).waitdone()
    return cdw0, b


def verified_io(nvme0n1):
    r = (
        nvme0n1.ioworker(
            io_size=8, lba_random=True, read_percentage=50, region_end=20000, qdepth=8, time=1
        )
        .start()
        .close()
    )
    assert r.error == 0
    assert r.io_count_read > 0 and r.io_count_nonread > 0


@pytest.mark.device
def test_hmb_single_descriptor(nvme0, nvme0n1, id_ctrl_buf, verify):
    """An HMB of one descriptor is accepted, reported by Get Features, and IO stays correct.

    Spec: NVMe 2.0 base spec 5.27.1.10 Host Memory Buffer (Set Features dwords 11-15, the
    Host Memory Buffer Attributes data structure), 8.9 Host Memory Buffer.

    Steps:
    1. Skip unless HMPRE > 0; allocate max(HMPRE, HMMIN) pages (at most 64 MiB) in one
       buffer.
    2. Enable the HMB with one descriptor (EHM = 1).
    3. Get Features: EHM = 1, HSIZE and the descriptor list address and count as given.
    4. Run a verified 1 s ioworker; disable the HMB and check EHM = 0.
    """
    hmpre, hmmin, _, _ = hmb_sizes(id_ctrl_buf)
    pages = min(max(hmpre, hmmin), 16384)
    chunk = Buffer(pages * 4096, "hmb")
    desc, given = enable(nvme0, [chunk])
    try:
        cdw0, attr = attributes(nvme0)
        assert cdw0 & 1 == 1, "EHM not set after enabling"
        # Attributes: HSIZE, HMDLLA, HMDLUA, HMDLEC (dwords 0-3).
        assert attr.data(3, 0) == given, "HSIZE differs"
        assert attr.data(11, 4) == desc.phys_addr, "descriptor list address differs"
        assert attr.data(15, 12) == 1, "descriptor count differs"
        verified_io(nvme0n1)
    finally:
        disable(nvme0)
    assert attributes(nvme0)[0] & 1 == 0


@pytest.mark.device
def test_hmb_multiple_descriptors(nvme0, nvme0n1, id_ctrl_buf, verify):
    """An HMB split over several descriptors is accepted and IO stays correct.

    Spec: NVMe 2.0 base spec 5.27.1.10 Host Memory Buffer (HMDLEC), 5.17.2.1 HMMINDS, HMMAXD.

    Steps:
    1. Skip unless HMPRE > 0; choose up to 4 descriptors (HMMAXD permitting), each at least
       HMMINDS pages, together at least HMMIN pages.
    2. Enable the HMB with them; Get Features reports EHM = 1 and the count.
    3. Run a verified 1 s ioworker; disable the HMB.
    """
    _, hmmin, hmminds, hmmaxd = hmb_sizes(id_ctrl_buf)
    count = min(4, hmmaxd) if hmmaxd else 4
    if count < 2:
        pytest.skip("HMMAXD allows one descriptor only")
    each = max(hmminds, -(-max(hmmin, 1) // count), 1)
    chunks = [Buffer(each * 4096, f"hmb{i}") for i in range(count)]
    enable(nvme0, chunks)
    try:
        cdw0, attr = attributes(nvme0)
        assert cdw0 & 1 == 1
        assert attr.data(15, 12) == count
        verified_io(nvme0n1)
    finally:
        disable(nvme0)


@pytest.mark.device
def test_hmb_reenable_after_reset(nvme0, nvme0n1, id_ctrl_buf, verify):
    """After a controller reset the HMB is disabled; it can be enabled again.

    Spec: NVMe 2.0 base spec 5.27.1.10 Host Memory Buffer (not persistent across Controller
    Level Reset), 8.9.

    Steps:
    1. Enable an HMB of max(HMPRE, HMMIN) pages (at most 64 MiB).
    2. Reset the controller: Get Features reports EHM = 0.
    3. Enable it again with the same memory; run a verified ioworker; disable.
    """
    hmpre, hmmin, _, _ = hmb_sizes(id_ctrl_buf)
    chunk = Buffer(min(max(hmpre, hmmin), 16384) * 4096, "hmb")
    enable(nvme0, [chunk])
    nvme0.reset()
    assert attributes(nvme0)[0] & 1 == 0, "the HMB stayed enabled across a controller reset"
    enable(nvme0, [chunk])
    try:
        verified_io(nvme0n1)
    finally:
        disable(nvme0)
