"""Controller registers and PCI configuration space.

CAP fields in range (MQES, TO, DSTRD, CSS NVM, MPSMIN <= MPSMAX), CC as the default
initialisation programs it, AQA/ASQ/ACQ programmed, BAR0 read the same through the Controller and
the Pcie object, PCI class code of an NVMe controller, and the capability list holding PCI Express,
power management and MSI-X (or MSI).
"""

import pytest

from nvme import *


@pytest.mark.device
def test_cap_fields(nvme0):
    """CAP fields are in range: MQES >= 1, TO >= 1, NVM command set, MPSMIN <= MPSMAX.

    Spec: NVMe 2.0 base spec 3.1.3.1 Controller Capabilities.

    Steps:
    1. Read CAP.
    2. Check each field.
    """
    cap = nvme0.cap
    assert cap & 0xFFFF >= 1, "MQES must allow queues of at least 2 entries"
    assert (cap >> 24) & 0xFF >= 1, "CAP.TO is 0"
    assert (cap >> 37) & 0x1, "CAP.CSS does not include the NVM command set"
    mpsmin, mpsmax = (cap >> 48) & 0xF, (cap >> 52) & 0xF
    assert mpsmin <= mpsmax


@pytest.mark.device
def test_cc_after_init(nvme0):
    """After initialisation CC.EN = 1, IOSQES = 6, IOCQES = 4 and CSTS.RDY = 1, CFS = 0.

    Spec: NVMe 2.0 base spec 3.1.3.5 CC, 3.1.3.6 CSTS.

    Steps:
    1. Read CC and CSTS.
    2. Check the fields.
    """
    cc = nvme0[0x14]
    assert cc & 1 == 1, "CC.EN"
    assert (cc >> 16) & 0xF == 6, "CC.IOSQES"
    assert (cc >> 20) & 0xF == 4, "CC.IOCQES"
    assert nvme0[0x1C] & 0x3 == 0x1, "CSTS: RDY set, CFS clear"


@pytest.mark.device
def test_admin_queue_registers(nvme0):
    """AQA has non-zero sizes; ASQ and ACQ are page aligned and distinct.

    Spec: NVMe 2.0 base spec 3.1.3.8-3.1.3.10 AQA, ASQ, ACQ.

    Steps:
    1. Read AQA, ASQ and ACQ.
    2. Check sizes, alignment and that the queues differ.
    """
    aqa = nvme0[0x24]
    assert aqa & 0xFFF >= 1 and (aqa >> 16) & 0xFFF >= 1
    asq = nvme0[0x28] | nvme0[0x2C] << 32
    acq = nvme0[0x30] | nvme0[0x34] << 32
    assert asq and acq and asq != acq
    assert asq & 0xFFF == 0 and acq & 0xFFF == 0, "admin queues not page aligned"


@pytest.mark.device
def test_bar0_access(pcie, nvme0):
    """BAR0 reads through the Pcie object equal the controller's register reads.

    Spec: NVMe 2.0 base spec 3.1.3 (registers in MLBAR/MUBAR).

    Steps:
    1. Read CAP, VS and CC both ways.
    2. Compare.
    """
    assert pcie.mem_qword_read(0) == nvme0.cap
    assert pcie.mem_dword_read(8) == nvme0[8]
    assert pcie.mem_dword_read(0x14) == nvme0[0x14]


@pytest.mark.device
def test_pci_class_code(pcie):
    """The class code is 010802h (NVM Express) and the vendor id is valid.

    Spec: NVMe 2.0 base spec 2.1.6 Class Code; PCIe base spec 7.5.1.1.

    Steps:
    1. Read the class code and vendor id.
    2. Check them.
    """
    # Mass storage (01h), non-volatile memory (08h), NVM Express (02h).
    assert pcie.register(0x09, 3) == 0x010802
    assert pcie.register(0, 2) not in (0, 0xFFFF), "vendor id"


@pytest.mark.device
def test_pci_capabilities(pcie):
    """PCI Express, power management and MSI-X or MSI capabilities exist at valid offsets.

    Spec: NVMe 2.0 base spec 2.4-2.7; PCIe base spec 7.5.1.1.11.

    Steps:
    1. Look up each capability.
    2. Check its id and offset.
    """
    assert pcie.cap_offset(0x10) is not None, "no PCI Express capability"
    assert pcie.cap_offset(0x01) is not None, "no power management capability"
    assert pcie.cap_offset(0x11) is not None or pcie.cap_offset(0x05) is not None
    for cap_id in (0x10, 0x01, 0x11):
        off = pcie.cap_offset(cap_id)
        if off is not None:
            assert pcie[off] == cap_id
            assert 0x40 <= off < 0x100 and off % 4 == 0
