"""PCI configuration space of the NVMe function.

Header type 0, command register (memory space and bus master on after init), status register
capabilities list, BAR0 a 64-bit memory BAR, BIST, the capability lists (standard and
extended) well formed, PCI Express capability version and device type, payload sizes,
link status within the link capabilities, power management capability version and PMCSR, and
the MSI-X table and PBA inside a BAR.
"""

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")


@pytest.mark.device
def test_header_type_0(pcie):
    """The function has a type 0 (endpoint) configuration header.

    Spec: PCIe base spec 7.5.1.1.9 Header Type (bits 6:0 = 00h).

    Steps:
    1. Read Header Type (0Eh).
    2. Check bits 6:0 are 0.
    """
    assert pcie.cfg_byte_read(0x0E) & 0x7F == 0


@pytest.mark.device
def test_command_register_after_init(pcie, nvme0):
    """After initialisation Memory Space Enable and Bus Master Enable are set.

    Spec: PCIe base spec 7.5.1.1.3 Command register (bits 1, 2); NVMe 2.0 base spec 3.5.1.

    Steps:
    1. Read the Command register (04h).
    2. Check bits 1 (memory space) and 2 (bus master) are set.
    """
    cmd = pcie.cfg_word_read(0x04)
    assert cmd & 0x6 == 0x6, f"Command {cmd:#x}"


@pytest.mark.device
def test_status_capabilities_list(pcie):
    """The Status register says a capabilities list exists, and the pointer is valid.

    Spec: PCIe base spec 7.5.1.1.4 Status (bit 4 Capabilities List), 7.5.1.1.11.

    Steps:
    1. Read Status (06h): bit 4 set.
    2. Read the Capabilities Pointer (34h): 40h..FCh, dword aligned.
    """
    assert pcie.cfg_word_read(0x06) & 0x10
    ptr = pcie.cfg_byte_read(0x34)
    assert 0x40 <= ptr <= 0xFC and ptr % 4 == 0, f"capabilities pointer {ptr:#x}"


@pytest.mark.device
def test_bar0_memory_64bit(pcie):
    """BAR0 is a memory BAR of 64 bits, as NVMe requires (MLBAR/MUBAR).

    Spec: NVMe 2.0 base spec 2.1.10-2.1.11 (MLBAR: memory space, 64-bit); PCIe 7.5.1.2.1.

    Steps:
    1. Read BAR0 (10h).
    2. Check bit 0 = 0 (memory) and bits 2:1 = 10b (64-bit).
    """
    bar = pcie.cfg_dword_read(0x10)
    assert bar & 1 == 0
    assert (bar >> 1) & 0x3 == 0x2, f"BAR0 {bar:#x} is not 64-bit"


@pytest.mark.device
def test_bist_register(pcie):
    """BIST reports its capability with reserved bits clear and no test running.

    Spec: PCIe base spec 7.5.1.1.10 BIST register (bits 5:4 reserved, bit 6 start).

    Steps:
    1. Read BIST (0Fh).
    2. Check bits 5:4 and 6 are 0.
    """
    bist = pcie.cfg_byte_read(0x0F)
    assert bist & 0x70 == 0, f"BIST {bist:#x}"


@pytest.mark.device
def test_capability_list_well_formed(pcie):
    """The standard capability list ends, has no loop, and lists PCIe, PM and MSI-X/MSI once.

    Spec: PCIe base spec 7.5.1.1.11 Capabilities Pointer, 7.5.3 PCI Express Capability; NVMe
    2.0 base spec 2.4-2.7 (PM, MSI/MSI-X, PCIe capabilities).

    Steps:
    1. Walk the list from 34h: at most 48 entries, offsets 40h-FCh, dword aligned.
    2. Check the walk ends at pointer 0 and no capability id repeats.
    3. Check PCI Express (10h) and Power Management (01h) are present.
    """
    ptr, seen, ids = pcie.cfg_byte_read(0x34), set(), []
    while ptr:
        assert 0x40 <= ptr <= 0xFC and ptr % 4 == 0, f"capability at {ptr:#x}"
        assert ptr not in seen, "capability list loops"
        assert len(seen) < 48
        seen.add(ptr)
        ids.append(pcie.cfg_byte_read(ptr))
        ptr = pcie.cfg_byte_read(ptr + 1)
    assert len(ids) == len(set(ids)), f"capability ids repeat: {ids}"
    assert 0x10 in ids and 0x01 in ids


@pytest.mark.device
def test_extended_capability_list_well_formed(pcie):
    """The extended capability list at 100h ends and has no loop.

    Spec: PCIe base spec 7.6.3 PCI Express Extended Capability Header.

    Steps:
    1. Read the header at 100h; skip if it is 0 or all ones (no extended capabilities).
    2. Walk the next pointers: each 100h-FFCh, dword aligned, visited once, until 0.
    """
    header = pcie.cfg_dword_read(0x100)
    if header in (0, 0xFFFFFFFF):
        pytest.skip("no extended capabilities")
    ptr, seen = 0x100, set()
    while ptr:
        assert 0x100 <= ptr <= 0xFFC and ptr % 4 == 0, f"extended capability at {ptr:#x}"
        assert ptr not in seen, "extended capability list loops"
        seen.add(ptr)
        header = pcie.cfg_dword_read(ptr)
        assert header & 0xFFFF, f"extended capability at {ptr:#x} has id 0"
        ptr = header >> 20


@pytest.mark.device
def test_pcie_capability_type(pcie):
    """The PCI Express capability is version 2 and the device is an endpoint.

    Spec: PCIe base spec 7.5.3.2 PCI Express Capabilities register (version, device/port
    type 0000b endpoint, 0001b legacy endpoint, 1001b RCiEP).

    Steps:
    1. Read the PCI Express Capabilities register.
    2. Check version 2 and device/port type 0, 1 or 9.
    """
    cap = pcie.cap_offset(0x10)
    reg = pcie.cfg_word_read(cap + 2)
    assert reg & 0xF == 2, f"PCIe capability version {reg & 0xF}"
    assert (reg >> 4) & 0xF in (0, 1, 9), f"device/port type {(reg >> 4) & 0xF}"


@pytest.mark.device
def test_payload_sizes_within_capability(pcie):
    """Device Control's Max Payload Size does not exceed what Device Capabilities supports.

    Spec: PCIe base spec 7.5.3.3 Device Capabilities (bits 2:0), 7.5.3.4 Device Control
    (MPS bits 7:5, MRRS bits 14:12).

    Steps:
    1. Read Device Capabilities and Device Control.
    2. Check MPS <= Max_Payload_Size Supported; MRRS is a defined value (0-5).
    """
    cap = pcie.cap_offset(0x10)
    devcap = pcie.cfg_dword_read(cap + 4)
    devctl = pcie.cfg_word_read(cap + 8)
    assert (devctl >> 5) & 0x7 <= devcap & 0x7
    assert (devctl >> 12) & 0x7 <= 5


@pytest.mark.device
def test_link_status_within_capabilities(pcie):
    """The current link speed and width are non-zero and within Link Capabilities.

    Spec: PCIe base spec 7.5.3.6 Link Capabilities, 7.5.3.8 Link Status.

    Steps:
    1. Skip for a Root Complex integrated endpoint (no link).
    2. Read Link Capabilities (max speed 3:0, max width 9:4) and Link Status.
    3. Check 1 <= current speed <= max speed and 1 <= current width <= max width.
    """
    cap = pcie.cap_offset(0x10)
    if (pcie.cfg_word_read(cap + 2) >> 4) & 0xF == 9:
        pytest.skip("Root Complex integrated endpoint: no link")
    linkcap = pcie.cfg_dword_read(cap + 0x0C)
    status = pcie.cfg_word_read(cap + 0x12)
    assert 1 <= status & 0xF <= linkcap & 0xF, f"link speed {status & 0xF}"
    assert 1 <= (status >> 4) & 0x3F <= (linkcap >> 4) & 0x3F, "link width"
    assert pcie.speed == status & 0xF


@pytest.mark.device
def test_power_management_capability(pcie):
    """The PM capability is version 3 (PCI PM 1.2) and the function is in D0 after init.

    Spec: PCI Power Management spec 1.2 (PMC version bits 2:0 = 011b, PMCSR PowerState);
    NVMe 2.0 base spec 2.4.

    Steps:
    1. Read PMC and PMCSR.
    2. Check PMC version 3 and PMCSR bits 1:0 = 00b (D0); pcie.power_state reads 0.
    """
    cap = pcie.cap_offset(0x01)
    assert pcie.cfg_word_read(cap + 2) & 0x7 == 3
    assert pcie.cfg_word_read(cap + 4) & 0x3 == 0
    assert pcie.power_state == 0


@pytest.mark.device
def test_msix_table_in_bar(pcie, nvme0):
    """The MSI-X table and PBA are in a BAR, and the table has enough room for the vectors.

    Spec: PCIe base spec 7.7.2 MSI-X Capability (Table Size, Table/PBA BIR and offset); NVMe
    2.0 base spec 2.6.

    Steps:
    1. Skip unless MSI-X exists; read Message Control, Table and PBA registers.
    2. Check MSI-X is enabled after init, table and PBA BIR are 0-5, offsets 8-byte aligned.
    3. Check the PBA does not start inside the table (16 bytes per vector).
    """
    cap = pcie.cap_offset(0x11)
    if cap is None:
        pytest.skip("no MSI-X capability")
    ctl = pcie.cfg_word_read(cap + 2)
    vectors = (ctl & 0x7FF) + 1
    table, pba = pcie.cfg_dword_read(cap + 4), pcie.cfg_dword_read(cap + 8)
    assert ctl & 0x8000, "MSI-X not enabled after init"
    assert table & 7 <= 5 and pba & 7 <= 5
    assert (table & ~7) % 8 == 0 and (pba & ~7) % 8 == 0
    if table & 7 == pba & 7:
        t, p = table & ~7, pba & ~7
        assert p >= t + 16 * vectors or p + (vectors + 63) // 64 * 8 <= t, "PBA overlaps table"
