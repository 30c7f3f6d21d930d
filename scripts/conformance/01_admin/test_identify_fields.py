"""Identify (06h): more fields and CNS values.

Vendor ids against PCI configuration space, power state descriptors, CNS 00h with the broadcast
NSID, the active namespace list from a starting NSID and with the reserved NSIDs, the controller
list (CNS 13h), the allocated namespace list (CNS 10h), every LBA format, SGL support encoding,
and OACS / ONCS against the Commands Supported and Effects log.
"""

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")


def id_list(b):
    """The non-zero dword ids at the start of a 4 KiB list."""
    out = []
    for i in range(1024):
        v = b.data(4 * i + 3, 4 * i)
        if v == 0:
            break
        out.append(v)
    return out


@pytest.mark.device
def test_identify_vendor_ids_match_config_space(pcie, id_ctrl_buf):
    """VID and SSVID equal the PCI Vendor ID and Subsystem Vendor ID; no byte of them is zero.

    Spec: NVMe 2.0 base spec 5.17.2.1 Identify Controller (VID, SSVID); PCIe base spec 7.5.1.

    Steps:
    1. Read VID (bytes 1:0) and SSVID (bytes 3:2) of Identify Controller.
    2. Read Vendor ID (00h) and Subsystem Vendor ID (2Ch) from configuration space.
    3. Check they are equal and that neither byte of VID is zero.
    """
    vid, ssvid = id_ctrl_buf.data(1, 0), id_ctrl_buf.data(3, 2)
    assert vid == pcie.cfg_word_read(0x00), f"VID {vid:#06x} is not the PCI vendor id"
    assert ssvid == pcie.cfg_word_read(0x2C), f"SSVID {ssvid:#06x} is not the PCI SSVID"
    assert vid & 0xFF and vid >> 8, f"VID {vid:#06x} has a zero byte"


@pytest.mark.device
def test_identify_power_state_descriptors(id_ctrl_buf):
    """NPSS+1 power state descriptors are filled in; PS0 is operational; the rest are zero.

    Spec: NVMe 2.0 base spec 5.17.2.1 Identify Controller (NPSS, PSD0-PSD31).

    Steps:
    1. Read NPSS (byte 263) and the 32 descriptors at byte 2048, 32 bytes each.
    2. Check PS0 is operational (NOPS = 0) and every described state has a maximum power.
    3. Check relative read/write throughput and latency indices are at most NPSS.
    4. Check descriptors beyond NPSS are all zero.
    """
    npss = id_ctrl_buf.data(263)
    for ps in range(32):
        base = 2048 + 32 * ps
        raw = id_ctrl_buf[base : base + 32]
        if ps > npss:
            assert raw == bytes(32), f"PSD{ps} beyond NPSS={npss} is not zero"
            continue
        assert id_ctrl_buf.data(base + 1, base) > 0, f"PSD{ps}: maximum power is 0"
        if ps == 0:
            assert not id_ctrl_buf.data(base + 3) & 0x2, "PS0 is non-operational"
        for name, off in (("RRT", 12), ("RRL", 13), ("RWT", 14), ("RWL", 15)):
            assert id_ctrl_buf.data(base + off) & 0x1F <= npss, f"PSD{ps} {name} > NPSS"


@pytest.mark.device
def test_identify_power_state_latencies_reported(id_ctrl_buf):
    """Every non-operational power state reports entry and exit latencies.

    Spec: NVMe 2.0 base spec 5.17.2.1 (ENLAT, EXLAT), 8.15 Power Management.

    Steps:
    1. Skip if the controller has no non-operational power state.
    2. For each state with NOPS set, read ENLAT (bytes 7:4) and EXLAT (bytes 11:8).
    3. Check both are non-zero: entering and leaving a non-operational state takes time.
    """
    npss = id_ctrl_buf.data(263)
    nonop = [ps for ps in range(npss + 1) if id_ctrl_buf.data(2048 + 32 * ps + 3) & 0x2]
    if not nonop:
        pytest.skip("no non-operational power state")
    for ps in nonop:
        base = 2048 + 32 * ps
        assert id_ctrl_buf.data(base + 7, base + 4) > 0, f"PS{ps}: ENLAT not reported"
        assert id_ctrl_buf.data(base + 11, base + 8) > 0, f"PS{ps}: EXLAT not reported"


@pytest.mark.device
def test_identify_namespace_broadcast_nsid(nvme0, oacs, error_statuses):
    """Identify Namespace with NSID FFFFFFFFh returns the common capabilities, or 00/0B.

    Spec: NVMe 2.0 base spec 5.17.2.1 CNS 00h (NSID FFFFFFFFh).

    Steps:
    1. Send Identify CNS 00h with NSID FFFFFFFFh.
    2. With Namespace Management (OACS bit 3): success, NSZE/NCAP/NUSE are zero.
    3. Without it: success with zero sizes or Invalid Namespace or Format (00/0B).
    """
    b = Buffer(4096, "identify ns broadcast")
    got = error_statuses(lambda: nvme0.identify(b, nsid=0xFFFFFFFF, cns=0).waitdone())
    if oacs & 0x8:
        assert got == [], f"namespace management controller rejected NSID FFFFFFFFh: {got}"
    assert got in ([], ["00/0b"]), got
    if not got:
        assert b[0:24] == bytes(24), "common namespace capabilities report a size"


@pytest.mark.device
def test_active_namespace_list_starting_nsid(nvme0):
    """The active namespace list holds only NSIDs greater than the NSID of the command.

    Spec: NVMe 2.0 base spec 5.17.2.1 CNS 02h Active Namespace ID list.

    Steps:
    1. Read the active namespace list from NSID 0.
    2. Read it again from the first active NSID.
    3. Check the second list is the first one without its first entry.
    """
    b = Buffer(4096, "active ns list")
    nvme0.identify(b, nsid=0, cns=2).waitdone()
    full = id_list(b)
    assert full, "no active namespace"
    nvme0.identify(b, nsid=full[0], cns=2).waitdone()
    assert id_list(b) == full[1:]


@pytest.mark.device
@pytest.mark.parametrize("nsid", [0xFFFFFFFE, 0xFFFFFFFF])
def test_active_namespace_list_reserved_nsid(nvme0, nsid):
    """The active namespace list with NSID FFFFFFFEh or FFFFFFFFh fails with 00/0B.

    Spec: NVMe 2.0 base spec 5.17.2.1 CNS 02h (NSID FFFFFFFEh and FFFFFFFFh are invalid).

    Steps:
    1. Send Identify CNS 02h with the reserved NSID.
    2. Check the status is Invalid Namespace or Format (00/0B).
    """
    b = Buffer(4096)
    with pytest.warns(UserWarning, match="ERROR status: 00/0b"):
        nvme0.identify(b, nsid=nsid, cns=2).waitdone()


@pytest.mark.device
def test_identify_controller_list_has_this_controller(nvme0, id_ctrl_buf, oacs):
    """The controller list of the subsystem (CNS 13h) names this controller's CNTLID.

    Spec: NVMe 2.0 base spec 5.17.2.1 CNS 13h Controller List.

    Steps:
    1. Skip unless Namespace Management is supported (OACS bit 3: CNS 13h is mandatory then).
    2. Read the list from CNTID 0: a count, then 16-bit identifiers in increasing order.
    3. Check CNTLID (Identify Controller bytes 79:78) is in it.
    """
    if not oacs & 0x8:
        pytest.skip("Namespace Management not supported (OACS bit 3)")
    b = Buffer(4096, "controller list")
    nvme0.identify(b, cns=0x13, cntid=0).waitdone()
    count = b.data(1, 0)
    ids = [b.data(2 * i + 3, 2 * i + 2) for i in range(count)]
    assert 1 <= count <= 2047
    assert ids == sorted(set(ids))
    assert id_ctrl_buf.data(79, 78) in ids


@pytest.mark.device
def test_allocated_namespace_list_contains_active(nvme0, oacs):
    """Every active namespace is also allocated (CNS 10h lists a superset of CNS 02h).

    Spec: NVMe 2.0 base spec 5.17.2.1 CNS 10h Allocated Namespace ID list.

    Steps:
    1. Skip unless Namespace Management is supported (OACS bit 3).
    2. Read the active (02h) and allocated (10h) namespace lists from NSID 0.
    3. Check the allocated list increases and contains every active NSID.
    """
    if not oacs & 0x8:
        pytest.skip("Namespace Management not supported (OACS bit 3)")
    b = Buffer(4096)
    nvme0.identify(b, nsid=0, cns=2).waitdone()
    active = id_list(b)
    nvme0.identify(b, nsid=0, cns=0x10).waitdone()
    allocated = id_list(b)
    assert allocated == sorted(set(allocated))
    assert set(active) <= set(allocated), f"active {active} not in allocated {allocated}"


@pytest.mark.device
def test_identify_namespace_lba_formats(id_ns_buf):
    """Every LBA format up to NLBAF has a data size of at least 512 bytes; the rest are zero.

    Spec: NVMe 2.0 base spec 5.17.2.1 (NVM command set spec 4.1.5.1) LBA Format Data Structure.

    Steps:
    1. Read NLBAF (byte 25, 0's based) and the 64 LBA format descriptors at byte 128.
    2. Check each described format has LBADS >= 9 and RP <= 3.
    3. Check formats beyond NLBAF (of the first 16) are zero, and formats are distinct.
    """
    nlbaf = id_ns_buf.data(25)
    assert nlbaf <= 63
    seen = set()
    for i in range(16):
        lbaf = id_ns_buf.data(128 + 4 * i + 3, 128 + 4 * i)
        if i > nlbaf:
            assert lbaf == 0, f"LBAF{i} beyond NLBAF={nlbaf} is {lbaf:#x}"
            continue
        lbads = (lbaf >> 16) & 0xFF
        assert lbads >= 9, f"LBAF{i}: LBADS {lbads}"
        seen.add(lbaf & 0xFFFFFF)
    assert len(seen) == min(nlbaf, 15) + 1, "two LBA formats have the same sizes"


@pytest.mark.device
def test_identify_sgl_support_encoding(id_ctrl_buf):
    """SGLS bits 1:0 use a defined encoding, and SGL-only features need SGL support.

    Spec: NVMe 2.0 base spec 5.17.2.1 Identify Controller SGLS (bytes 539:536).

    Steps:
    1. Read SGLS.
    2. Check bits 1:0 are not 11b (reserved).
    3. If bits 1:0 are 00b (no SGLs), check the bit bucket and other descriptor bits are 0.
    """
    sgls = id_ctrl_buf.data(539, 536)
    assert sgls & 0x3 != 0x3, f"SGLS {sgls:#x}: reserved support encoding"
    if sgls & 0x3 == 0:
        assert sgls & (1 << 16) == 0, "bit bucket descriptor without SGL support"
        assert sgls & (1 << 2) == 0, "keyed SGL data block without SGL support"


@pytest.mark.device
def test_oacs_matches_effects_log(nvme0, oacs, lpa):
    """Each optional admin command OACS reports is listed as supported in the effects log.

    Spec: NVMe 2.0 base spec 5.17.2.1 OACS, 5.16.1.6 Commands Supported and Effects.

    Steps:
    1. Skip unless the Commands Supported and Effects log is supported (LPA bit 1).
    2. For Format NVM, Firmware Commit/Download, Namespace Management and Device Self-test:
       when OACS says supported, check CSUPP of each opcode in log page 05h.
    """
    if not lpa & 0x2:
        pytest.skip("Commands Supported and Effects log not supported (LPA bit 1)")
    b = Buffer(4096, "effects")
    nvme0.getlogpage(5, b, 4096).waitdone()
    pairs = {1: [0x80], 2: [0x10, 0x11], 3: [0x0D], 4: [0x14]}
    checked = 0
    for bit, opcodes in pairs.items():
        if oacs & (1 << bit):
            for opc in opcodes:
                assert b.data(4 * opc) & 1, f"OACS bit {bit} set, opcode {opc:#04x} not listed"
                checked += 1
    if not checked:
        pytest.skip("no optional admin command reported in OACS")


@pytest.mark.device
def test_oncs_matches_effects_log(nvme0, oncs, lpa):
    """Each optional NVM command ONCS reports is listed as supported in the effects log.

    Spec: NVMe 2.0 base spec 5.16.1.6 Commands Supported and Effects; NVM command set spec
    4.1.5.1 ONCS.

    Steps:
    1. Skip unless the Commands Supported and Effects log is supported (LPA bit 1).
    2. For Compare, Write Uncorrectable, DSM, Write Zeroes, Verify and Copy: when ONCS
       says supported, check CSUPP of the I/O opcode (log offset 1024 + 4 * opcode).
    """
    if not lpa & 0x2:
        pytest.skip("Commands Supported and Effects log not supported (LPA bit 1)")
    b = Buffer(4096, "effects")
    nvme0.getlogpage(5, b, 4096).waitdone()
    pairs = {0: 0x05, 1: 0x04, 2: 0x09, 3: 0x08, 7: 0x0C, 8: 0x19}
    checked = 0
    for bit, opc in pairs.items():
        if oncs & (1 << bit):
            assert b.data(1024 + 4 * opc) & 1, f"ONCS bit {bit}: I/O opcode {opc:#04x} missing"
            checked += 1
    if not checked:
        pytest.skip("no optional NVM command reported in ONCS")


@pytest.mark.device
def test_identify_flush_behaviour_bits(id_ctrl_buf):
    """VWC bits 2:1 (flush with broadcast NSID) are not 00b on NVMe 1.4 and later.

    Spec: NVMe 2.0 base spec 5.17.2.1 Identify Controller VWC (byte 525).

    Steps:
    1. Skip for controllers older than 1.4 (VER).
    2. Check VWC bits 2:1 are not 00b (that value is only for earlier revisions).
    """
    if id_ctrl_buf.data(83, 80) < 0x10400:
        pytest.skip("VWC bits 2:1 are defined from NVMe 1.4")
    assert (id_ctrl_buf.data(525) >> 1) & 0x3 != 0, "VWC flush behaviour not reported"


@pytest.mark.device
def test_identify_controller_list_from_cntid(nvme0, id_ctrl_buf, oacs):
    """The controller list from a CNTID lists only controllers with that id or greater.

    Spec: NVMe 2.0 base spec 5.17.2.1 CNS 13h (CNTID: "greater than or equal to").

    Steps:
    1. Skip unless Namespace Management is supported (OACS bit 3).
    2. Read the list from this controller's CNTID + 1.
    3. Check every id is >= CNTID + 1 (this controller is not listed).
    """
    if not oacs & 0x8:
        pytest.skip("Namespace Management not supported (OACS bit 3)")
    cntlid = id_ctrl_buf.data(79, 78)
    if cntlid >= 0xFFEF:
        pytest.skip("no controller id above this one")
    b = Buffer(4096, "controller list")
    nvme0.identify(b, cns=0x13, cntid=cntlid + 1).waitdone()
    ids = [b.data(2 * i + 3, 2 * i + 2) for i in range(b.data(1, 0))]
    assert all(i >= cntlid + 1 for i in ids), ids
    assert cntlid not in ids
