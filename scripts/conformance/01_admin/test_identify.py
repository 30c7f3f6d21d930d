"""Identify (06h): controller and namespace data structures and their relations.

Checks the fields the NVMe base specification constrains (SQES/CQES, MDTS against CAP.MPSMIN,
VER against the VS register, NN against the active namespace list, NSZE >= NCAP >= NUSE, the
current LBA format), the namespace identification descriptors, and the error statuses of
Identify with a reserved CNS (00/02) and an invalid namespace (00/0b).
"""

import pytest

from nvme import *


@pytest.mark.device
def test_identify_controller_queue_entry_sizes(id_ctrl_buf):
    """SQES and CQES require 64-byte and 16-byte entries, with maxima at least the minima.

    Spec: NVMe 2.0 base spec 5.17.2.1 Identify Controller (SQES, CQES).

    Steps:
    1. Read SQES (byte 512) and CQES (byte 513).
    2. Check minimum 6 and 4, maximum >= minimum.
    """
    sqes = id_ctrl_buf.data(512)
    cqes = id_ctrl_buf.data(513)
    # NVM command set: required (minimum) SQ entry size 64 bytes, CQ entry size 16 bytes.
    assert sqes & 0xF == 6, f"SQES minimum is 2^{sqes & 0xF}, NVM needs 64 bytes"
    assert sqes >> 4 >= sqes & 0xF, f"SQES maximum below minimum: {sqes:#x}"
    assert cqes & 0xF == 4, f"CQES minimum is 2^{cqes & 0xF}, NVM needs 16 bytes"
    assert cqes >> 4 >= cqes & 0xF, f"CQES maximum below minimum: {cqes:#x}"


@pytest.mark.device
def test_identify_controller_strings_are_ascii(id_ctrl_buf):
    """SN, MN and FR are printable ASCII and not empty.

    Spec: NVMe 2.0 base spec 5.17.2.1 Identify Controller (SN, MN, FR), 1.5 ASCII strings.

    Steps:
    1. Read the three fields.
    2. Check every byte is 20h-7Eh and the field is not blank.
    """
    for name, (end, begin) in {"SN": (23, 4), "MN": (63, 24), "FR": (71, 64)}.items():
        raw = id_ctrl_buf[begin : end + 1]
        assert all(0x20 <= c <= 0x7E for c in raw), f"{name} is not printable ASCII: {raw!r}"
        assert raw.strip(b" "), f"{name} is empty"


@pytest.mark.device
def test_identify_controller_version_matches_vs_register(nvme0, id_ctrl_buf):
    """VER in Identify Controller equals the VS register.

    Spec: NVMe 2.0 base spec 5.17.2.1 VER, 3.1.3.2 VS.

    Steps:
    1. Skip if VER is 0 (NVMe 1.0/1.1).
    2. Compare VER with VS.
    """
    ver = id_ctrl_buf.data(83, 80)
    vs = nvme0[0x08]
    if ver == 0:
        pytest.skip("VER is 0: an NVMe 1.0/1.1 controller does not report it")
    assert ver == vs, f"Identify VER {ver:#x} differs from the VS register {vs:#x}"


@pytest.mark.device
def test_identify_controller_mdts_and_page_size(nvme0, id_ctrl_buf):
    """The driver's transfer limit follows MDTS in units of CAP.MPSMIN.

    Spec: NVMe 2.0 base spec 5.17.2.1 MDTS, 3.1.3.1 CAP.MPSMIN.

    Steps:
    1. Read MDTS and CAP.MPSMIN.
    2. Check the driver's limit is MPSMIN << MDTS (capped at 2 MiB), or positive when MDTS is
       0.
    """
    mdts = id_ctrl_buf.data(77)
    mpsmin = 1 << (12 + ((nvme0.cap >> 48) & 0xF))
    if mdts == 0:
        assert nvme0.mdts > 0
    else:
        # The driver caps its own transfers at 2 MiB.
        assert nvme0.mdts == min(mpsmin << mdts, 2 << 20)


@pytest.mark.device
def test_identify_controller_firmware_slots(id_ctrl_buf):
    """FRMW.NOFS, the number of firmware slots, is within its range.

    Spec: NVMe 2.0 base spec 5.17.2.1 FRMW.

    Steps:
    1. Read FRMW (byte 260).
    2. Check NOFS (bits 3:1) is 1..7.
    """
    # ACL and AERL (bytes 258-259) are 0's based counts that any value fits; AERL's limit is
    # exercised by test_aer_limit_exceeded and ELPE's by test_error_log_entries.
    frmw = id_ctrl_buf.data(260)
    nofs = (frmw >> 1) & 0x7
    assert 1 <= nofs <= 7, f"FRMW.NOFS {nofs}: a controller has 1..7 firmware slots"


@pytest.mark.device
def test_active_namespace_list_within_nn(nvme0, id_ctrl_buf):
    """The active namespace list is increasing, not empty, and within NN.

    Spec: NVMe 2.0 base spec 5.17.2.1 CNS 02h, NN.

    Steps:
    1. Read NN and the active namespace list from NSID 0.
    2. Check it is not empty, strictly increasing and every NSID is 1..NN.
    """
    nn = id_ctrl_buf.data(519, 516)
    assert nn >= 1
    ids = Buffer(4096, "active ns list")
    nvme0.identify(ids, nsid=0, cns=2).waitdone()
    active = []
    for i in range(1024):
        nsid = ids.data(4 * i + 3, 4 * i)
        if nsid == 0:
            break
        active.append(nsid)
    assert active, "no active namespace"
    assert active == sorted(set(active)), f"list not increasing: {active}"
    assert all(1 <= n <= nn for n in active), f"an active nsid exceeds NN={nn}: {active}"


@pytest.mark.device
def test_identify_namespace_sizes(id_ns_buf):
    """NSZE >= NCAP >= NUSE, and NSZE is not zero.

    Spec: NVMe 2.0 base spec 5.17.2.1 (NVM command set spec 4.1.5.1) NSZE, NCAP, NUSE.

    Steps:
    1. Read the three sizes of the namespace.
    2. Check the order.
    """
    nsze = id_ns_buf.data(7, 0)
    ncap = id_ns_buf.data(15, 8)
    nuse = id_ns_buf.data(23, 16)
    assert nsze > 0
    assert nsze >= ncap >= nuse, f"NSZE {nsze} NCAP {ncap} NUSE {nuse}"


@pytest.mark.device
def test_identify_namespace_current_lba_format(nvme0n1, id_ns_buf):
    """FLBAS names an existing LBA format of at least 512 bytes, the driver's sector size.

    Spec: NVM command set spec 4.1.5.1 FLBAS, NLBAF, LBA Format.

    Steps:
    1. Read NLBAF and FLBAS.
    2. Check the index is <= NLBAF and LBADS >= 9.
    3. Check the Namespace's sector_size is 2^LBADS.
    """
    nlbaf = id_ns_buf.data(25)
    flbas = id_ns_buf.data(26)
    index = (flbas & 0xF) | ((flbas >> 5) & 0x3) << 4
    assert index <= nlbaf, f"FLBAS selects format {index}, NLBAF is {nlbaf}"
    lbaf = id_ns_buf.data(128 + 4 * index + 3, 128 + 4 * index)
    lbads = (lbaf >> 16) & 0xFF
    assert lbads >= 9, f"LBADS {lbads}: a logical block is at least 512 bytes"
    assert nvme0n1.sector_size == 1 << lbads


@pytest.mark.device
def test_identify_namespace_id_descriptors(nvme0, nvme0n1, id_ctrl_buf):
    """The Namespace Identification Descriptor list has known types with their lengths, once each.

    Spec: NVMe 2.0 base spec 5.17.2.1 CNS 03h.

    Steps:
    1. Skip before NVMe 1.3.
    2. Walk the descriptors: NIDT 1-4 with NIDL 8, 16, 16, 1.
    3. Check at least one and no type repeated.
    """
    if id_ctrl_buf.data(83, 80) < 0x10300:
        pytest.skip("Namespace Identification Descriptor list (CNS 03h) is NVMe 1.3+")
    b = Buffer(4096, "ns id descriptors")
    nvme0.identify(b, nsid=nvme0n1.nsid, cns=3).waitdone()
    offset, found = 0, []
    lengths = {1: 8, 2: 16, 3: 16, 4: 1}
    while offset + 4 <= 4096 and b.data(offset) != 0:
        nidt, nidl = b.data(offset), b.data(offset + 1)
        assert nidt in lengths, f"reserved NIDT {nidt} at {offset}"
        assert nidl == lengths[nidt], f"NIDT {nidt} has NIDL {nidl}"
        found.append(nidt)
        offset += 4 + nidl
    assert found, "no namespace identifier descriptor"
    assert len(found) == len(set(found)), f"a descriptor type repeats: {found}"


@pytest.mark.device
def test_identify_reserved_cns(nvme0, buf):
    """Identify with a reserved CNS (FFh) fails with Invalid Field in Command.

    Spec: NVMe 2.0 base spec 5.17 Identify (CNS values).

    Steps:
    1. Send Identify CNS FFh.
    2. Check status 00/02.
    """
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.identify(buf, cns=0xFF).waitdone()


@pytest.mark.device
def test_identify_invalid_namespace(nvme0, id_ctrl_buf, buf):
    """Identify Namespace for NSID NN+1 fails with Invalid Namespace or Format.

    Spec: NVMe 2.0 base spec 5.17.2.1 CNS 00h (00/0B).

    Steps:
    1. Skip if NN leaves no invalid namespace id.
    2. Send Identify CNS 00h for NN+1.
    3. Check status 00/0B.
    """
    nn = id_ctrl_buf.data(519, 516)
    if nn >= 0xFFFFFFFE:
        pytest.skip("NN leaves no invalid namespace id")
    with pytest.warns(UserWarning, match="ERROR status: 00/0b"):
        nvme0.identify(buf, nsid=nn + 1, cns=0).waitdone()
