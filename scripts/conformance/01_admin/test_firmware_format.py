"""Firmware Image Download / Commit (11h/10h) and Format NVM (80h).

Firmware: a reserved commit action (00/02), activation of an empty slot (01/07), and on the
simulated SSD (which accepts any image) a download committed to a slot, activation at the next
reset and immediate activation. Format: data erased with SES 0 and 1, cryptographic erase when
supported, a reserved SES, NSID 0, a protection setting the namespace cannot have (01/0A), the
broadcast NSID, and a change of the LBA data size with verified IO before and after.
"""

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")


def need_fw(oacs):
    if not oacs & 0x4:
        pytest.skip("Firmware Commit/Download not supported (OACS bit 2)")


def need_format(oacs):
    if not oacs & 0x2:
        pytest.skip("Format NVM not supported (OACS bit 1)")


def fw_slots(nvme0):
    b = Buffer(512, "fw slot log")
    nvme0.getlogpage(3, b, 512).waitdone()
    afi = b.data(0)
    revs = {s: bytes(b[8 * s : 8 * s + 8]) for s in range(1, 8)}
    return afi, revs


def current_lbaf(id_ns_buf):
    flbas = id_ns_buf.data(26)
    return (flbas & 0xF) | ((flbas >> 5) & 0x3) << 4


def download(nvme0, revision):
    img = Buffer(4096, "fw image")
    img[0:8] = revision
    nvme0.fw_download(img, 0, 4096).waitdone()


@pytest.mark.device
def test_firmware_commit_reserved_action(nvme0, oacs):
    """Firmware Commit with a reserved commit action (100b) fails with 00/02.

    Spec: NVMe 2.0 base spec 5.12 Firmware Commit (CA values 100b and 101b are
    reserved).

    Steps:
    1. Skip unless firmware commands are supported (OACS bit 2).
    2. Send Firmware Commit with CA 100b to slot 1.
    3. Check status 00/02.
    """
    need_fw(oacs)
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.fw_commit(1, 4).waitdone()


@pytest.mark.device
def test_firmware_activate_empty_slot(nvme0, oacs, id_ctrl_buf):
    """Activating a slot that holds no image fails with Invalid Firmware Image (01/07).

    Spec: NVMe 2.0 base spec 5.12 Firmware Commit (CA 010b) status values.

    Steps:
    1. Skip unless firmware commands are supported; find an empty slot within NOFS.
    2. Send Firmware Commit CA 010b (activate at the next reset) to it.
    3. Check status 01/07 and the active slot is unchanged.
    """
    need_fw(oacs)
    nofs = (id_ctrl_buf.data(260) >> 1) & 0x7
    afi, revs = fw_slots(nvme0)
    empty = [s for s in range(1, nofs + 1) if not revs[s].strip(b"\0 ")]
    if not empty:
        pytest.skip("every firmware slot holds an image")
    with pytest.warns(UserWarning, match="ERROR status: 01/07"):
        nvme0.fw_commit(empty[0], 2).waitdone()
    assert fw_slots(nvme0)[0] & 0x7 == afi & 0x7


@pytest.mark.sim_only
def test_firmware_download_commit_to_slot(nvme0, oacs, id_ctrl_buf):
    """A downloaded image committed with CA 000b lands in its slot; the active slot stays.

    Spec: NVMe 2.0 base spec 5.13 Firmware Image Download, 5.12 Firmware Commit, 5.16.1.4.
    Simulated SSD only: a real drive rejects an image that is not its own (01/07).

    Steps:
    1. Pick a slot that is neither active nor read-only (FRMW bit 0 guards slot 1).
    2. Download a 4 KiB image whose first 8 bytes are the revision "SIMFW002".
    3. Commit it with CA 000b to the slot.
    4. Check the slot log shows the revision in that slot and AFI still names the old slot.
    """
    need_fw(oacs)
    nofs = (id_ctrl_buf.data(260) >> 1) & 0x7
    afi, _ = fw_slots(nvme0)
    first = 2 if id_ctrl_buf.data(260) & 1 else 1
    slot = next((s for s in range(first, nofs + 1) if s != afi & 7), None)
    if slot is None:
        pytest.skip("no writable slot besides the active one")
    download(nvme0, b"SIMFW002")
    nvme0.fw_commit(slot, 0).waitdone()
    afi2, revs = fw_slots(nvme0)
    assert revs[slot] == b"SIMFW002"
    assert afi2 & 7 == afi & 7


@pytest.mark.sim_only
def test_firmware_activate_at_reset(nvme0, oacs, id_ctrl_buf):
    """CA 001b replaces a slot and activates it at the next controller reset.

    Spec: NVMe 2.0 base spec 5.12 Firmware Commit (CA 001b), 5.16.1.4 AFI bits 6:4.
    Simulated SSD only: the image is not a real firmware.

    Steps:
    1. Download an image with revision "SIMFW003" and commit it with CA 001b to a free slot.
    2. Check AFI bits 6:4 (next active) name the slot, bits 2:0 do not yet.
    3. Reset the controller.
    4. Check AFI bits 2:0 name the slot and Identify Controller FR is "SIMFW003".
    """
    need_fw(oacs)
    nofs = (id_ctrl_buf.data(260) >> 1) & 0x7
    afi, _ = fw_slots(nvme0)
    first = 2 if id_ctrl_buf.data(260) & 1 else 1
    slot = next((s for s in range(first, nofs + 1) if s != afi & 7), None)
    if slot is None:
        pytest.skip("no writable slot besides the active one")
    download(nvme0, b"SIMFW003")
    nvme0.fw_commit(slot, 1).waitdone()
    afi2, _ = fw_slots(nvme0)
    assert (afi2 >> 4) & 7 == slot
    assert afi2 & 7 == afi & 7
    nvme0.reset()
    assert fw_slots(nvme0)[0] & 7 == slot
    b = Buffer(4096)
    nvme0.identify(b).waitdone()
    assert b[64:72] == b"SIMFW003"


@pytest.mark.sim_only
def test_firmware_activate_immediately(nvme0, oacs, id_ctrl_buf):
    """CA 011b activates the image at once, with the firmware activation notice when enabled.

    Spec: NVMe 2.0 base spec 5.12 Firmware Commit (CA 011b), 5.2 AER Firmware Activation
    Starting notice (type 2h, info 01h).
    Simulated SSD only: the image is not a real firmware.

    Steps:
    1. Enable the firmware activation notice (FID 0Bh bit 9) when OAES bit 9 allows it.
    2. Download an image "SIMFW004", commit it with CA 000b to a free slot, then activate the
       slot with CA 011b.
    3. Check the AER notice (when enabled) and that AFI and FR name the new image at once.
    """
    need_fw(oacs)
    if not id_ctrl_buf.data(260) & 0x10:
        pytest.skip("activation without reset not supported (FRMW bit 4)")
    nofs = (id_ctrl_buf.data(260) >> 1) & 0x7
    afi, _ = fw_slots(nvme0)
    first = 2 if id_ctrl_buf.data(260) & 1 else 1
    slot = next((s for s in range(first, nofs + 1) if s != afi & 7), None)
    if slot is None:
        pytest.skip("no writable slot besides the active one")
    notice = bool(id_ctrl_buf.data(95, 92) & (1 << 9))
    if notice:
        aec = nvme0.getfeatures(0x0B).waitdone()
        nvme0.setfeatures(0x0B, cdw11=aec | (1 << 9)).waitdone()
    download(nvme0, b"SIMFW004")
    nvme0.fw_commit(slot, 0).waitdone()
    if notice:
        with pytest.warns(UserWarning, match="AER notification is triggered: 0x30102"):
            nvme0.fw_commit(slot, 3).waitdone()
            nvme0.getfeatures(7).waitdone()
    else:
        nvme0.fw_commit(slot, 3).waitdone()
    assert fw_slots(nvme0)[0] & 7 == slot
    b = Buffer(4096)
    nvme0.identify(b).waitdone()
    assert b[64:72] == b"SIMFW004"


@pytest.mark.device
@pytest.mark.parametrize("ses", [0, 1])
def test_format_erases_data(nvme0, nvme0n1, qpair, verify, oacs, id_ns_buf, ses):
    """Format NVM (SES 0 and 1) leaves no written data: reads differ from what was written.

    Spec: NVMe 2.0 base spec 5.14 Format NVM (SES 000b, 001b User Data Erase).

    Steps:
    1. Write a pattern to 8 LBAs at 0 and at the last 8 LBAs, read them back verified.
    2. Format with the current LBA format and the SES.
    3. Read the same LBAs: they no longer hold the pattern (verification on: the driver's
       table knows the LBAs were formatted).
    """
    need_format(oacs)
    n = 8
    last = nvme0n1.id_ns().nsze - n
    w = Buffer(n * nvme0n1.sector_size, ptype=32, pvalue=0xF0F0F0F0)
    for lba in (0, last):
        nvme0n1.write(qpair, w, lba, n).waitdone()
        nvme0n1.read(qpair, Buffer(len(w)), lba, n).waitdone()
    nvme0.format(current_lbaf(id_ns_buf), ses=ses, nsid=nvme0n1.nsid).waitdone()
    for lba in (0, last):
        r = Buffer(len(w))
        nvme0n1.read(qpair, r, lba, n).waitdone()
        assert r != w, f"LBA {lba}: the pattern survived the format"


@pytest.mark.device
def test_format_cryptographic_erase(nvme0, nvme0n1, qpair, verify, oacs, id_ctrl_buf, id_ns_buf):
    """Cryptographic erase (SES 010b) succeeds when FNA bit 2 says it is supported.

    Spec: NVMe 2.0 base spec 5.14 Format NVM (SES 010b), 5.17.2.1 FNA bit 2.

    Steps:
    1. Skip unless Format NVM and cryptographic erase (FNA bit 2) are supported.
    2. Write a pattern to 8 LBAs.
    3. Format with SES 010b; read the LBAs: the pattern is gone.
    """
    need_format(oacs)
    if not id_ctrl_buf.data(524) & 0x4:
        pytest.skip("cryptographic erase not supported (FNA bit 2)")
    w = Buffer(8 * nvme0n1.sector_size, ptype=32, pvalue=0x0C0C0C0C)
    nvme0n1.write(qpair, w, 64, 8).waitdone()
    nvme0.format(current_lbaf(id_ns_buf), ses=2, nsid=nvme0n1.nsid).waitdone()
    r = Buffer(len(w))
    nvme0n1.read(qpair, r, 64, 8).waitdone()
    assert r != w


@pytest.mark.device
@pytest.mark.parametrize("ses", [3, 7])
def test_format_reserved_ses(nvme0, nvme0n1, oacs, id_ns_buf, error_statuses, ses):
    """Format NVM with a reserved Secure Erase Setting fails (00/02, or 01/0A).

    Spec: NVMe 2.0 base spec 5.14 Format NVM (SES 011b-111b reserved).

    Steps:
    1. Skip unless Format NVM is supported.
    2. Send Format NVM with the current LBA format and the reserved SES.
    3. Check the status is Invalid Field in Command or Invalid Format.
    """
    need_format(oacs)
    got = error_statuses(
        lambda: nvme0.format(current_lbaf(id_ns_buf), ses=ses, nsid=nvme0n1.nsid).waitdone()
    )
    assert got in (["00/02"], ["01/0a"]), got


@pytest.mark.device
def test_format_nsid_zero(nvme0, oacs, id_ns_buf):
    """Format NVM with NSID 0 fails with Invalid Namespace or Format (00/0B).

    Spec: NVMe 2.0 base spec 5.14 Format NVM (NSID), 4.5 Namespace identifiers (0 is invalid).

    Steps:
    1. Skip unless Format NVM is supported.
    2. Send Format NVM with NSID 0.
    3. Check status 00/0B.
    """
    need_format(oacs)
    with pytest.warns(UserWarning, match="ERROR status: 00/0b"):
        nvme0.format(current_lbaf(id_ns_buf), nsid=0).waitdone()


@pytest.mark.device
def test_format_protection_not_supported(nvme0, nvme0n1, oacs, id_ns_buf):
    """Format with protection information the namespace cannot have fails with 01/0A.

    Spec: NVMe 2.0 base spec 5.14 Format NVM (PI), status Invalid Format; NVM command set
    spec 4.1.5.1 DPC.

    Steps:
    1. Skip unless Format NVM is supported and the namespace supports no protection (DPC=0).
    2. Format with the current LBA format and PI type 1.
    3. Check status 01/0A and the namespace still reads and writes.
    """
    need_format(oacs)
    if id_ns_buf.data(28) & 0x7:
        pytest.skip("the namespace supports end-to-end protection (DPC)")
    with pytest.warns(UserWarning, match="ERROR status: 01/0a"):
        nvme0.format(current_lbaf(id_ns_buf), pi=1, nsid=nvme0n1.nsid).waitdone()


@pytest.mark.device
def test_format_all_namespaces(nvme0, nvme0n1, qpair, verify, oacs, id_ns_buf):
    """Format NVM with NSID FFFFFFFFh formats every namespace: data written before is gone.

    Spec: NVMe 2.0 base spec 5.14 Format NVM (NSID FFFFFFFFh), 5.17.2.1 FNA bit 0.

    Steps:
    1. Skip unless Format NVM is supported.
    2. Write a pattern to 8 LBAs of the namespace.
    3. Format with NSID FFFFFFFFh and the current LBA format.
    4. Check the pattern is gone and the LBA data size is unchanged.
    """
    need_format(oacs)
    w = Buffer(8 * nvme0n1.sector_size, ptype=32, pvalue=0xABCD0123)
    nvme0n1.write(qpair, w, 8, 8).waitdone()
    size = nvme0n1.sector_size
    nvme0.format(current_lbaf(id_ns_buf), nsid=0xFFFFFFFF).waitdone()
    r = Buffer(len(w))
    nvme0n1.read(qpair, r, 8, 8).waitdone()
    assert r != w
    assert nvme0n1.sector_size == size


@pytest.mark.device
def test_format_change_lba_data_size(nvme0, nvme0n1, qpair, verify, oacs, id_ns_buf):
    """Format to another LBA data size and back, with verified IO in each format.

    Spec: NVMe 2.0 base spec 5.14 Format NVM (LBAF); NVM command set spec 4.1.5.1 LBA Format.

    Steps:
    1. Skip unless Format NVM is supported and a second format without metadata exists.
    2. Format to the other data size (Namespace.format); check sector_size and NSZE * size.
    3. Write and read 8 blocks verified.
    4. Format back to the original data size and write and read again.
    """
    need_format(oacs)
    size = nvme0n1.sector_size
    nlbaf = id_ns_buf.data(25)
    sizes = []
    for i in range(min(nlbaf, 15) + 1):
        lbaf = id_ns_buf.data(128 + 4 * i + 3, 128 + 4 * i)
        if lbaf & 0xFFFF == 0:
            sizes.append(1 << ((lbaf >> 16) & 0xFF))
    other = [s for s in sizes if s != size]
    if not other:
        pytest.skip("no other LBA data size without metadata")
    capacity = nvme0n1.id_ns().nsze * size
    try:
        for s in (other[0], size):
            nvme0n1.format(s)
            assert nvme0n1.sector_size == s
            assert nvme0n1.id_ns().nsze * s == capacity
            w = Buffer(8 * s, ptype=32, pvalue=s)
            r = Buffer(8 * s)
            nvme0n1.write(qpair, w, 0, 8).waitdone()
            nvme0n1.read(qpair, r, 0, 8).waitdone()
            assert r == w
    finally:
        if nvme0n1.sector_size != size:
            nvme0n1.format(size)
