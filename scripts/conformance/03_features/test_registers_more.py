"""Controller registers (BAR0): more fields, read-only behaviour, reserved ranges and timing.

VS, CAP.DSTRD against the doorbells, read-only CAP and VS, reserved register ranges reading
zero and ignoring writes, AQA sizes within MQES, CSTS.RDY set within CAP.TO after CC.EN = 1, a
normal shutdown within RTD3E, CMB registers consistent, and an NSSR write of a wrong value
doing nothing.
"""

import time

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")


@pytest.mark.device
def test_vs_version(nvme0):
    """VS reports a released version: major 1 or 2, reserved bits 7:0 clear.

    Spec: NVMe 2.0 base spec 3.1.3.2 Version (MJR 31:16, MNR 15:8, TER 7:0).

    Steps:
    1. Read VS (offset 08h).
    2. Check major is 1 or 2, and for 1.0 the minor is 0 or more.
    """
    vs = nvme0[0x08]
    assert vs >> 16 in (1, 2), f"VS {vs:#x}"
    assert (vs >> 8) & 0xFF <= 4 or vs >> 16 == 2, f"VS {vs:#x}: unknown minor version"


@pytest.mark.device
@pytest.mark.parametrize("offset", [0x00, 0x04, 0x08])
def test_read_only_registers(nvme0, offset):
    """CAP and VS are read-only: writing them changes nothing.

    Spec: NVMe 2.0 base spec 3.1.3 (CAP and VS attributes RO).

    Steps:
    1. Read the register.
    2. Write its complement.
    3. Read it again: unchanged.
    """
    before = nvme0[offset]
    nvme0[offset] = ~before & 0xFFFFFFFF
    assert nvme0[offset] == before


@pytest.mark.device
@pytest.mark.parametrize("offset", [0x6C, 0x100, 0x400, 0xDFC, 0xE20, 0xEFC])
def test_reserved_register_reads_zero(nvme0, offset):
    """Reserved registers read as zero and ignore writes.

    Spec: NVMe 2.0 base spec 3.1.3 (reserved ranges 6Ch-DFFh and E20h-EFFh; F00h-FFFh
    is command set specific).

    Steps:
    1. Read the reserved register: zero.
    2. Write a pattern; read again: still zero.
    3. Check the controller is still ready.
    """
    assert nvme0[offset] == 0
    nvme0[offset] = 0x5A5A5A5A
    assert nvme0[offset] == 0
    assert nvme0[0x1C] & 0x3 == 1


@pytest.mark.device
def test_aqa_within_mqes(nvme0):
    """The admin queue sizes in AQA are within CAP.MQES and at most 4096 entries.

    Spec: NVMe 2.0 base spec 3.1.3.8 Admin Queue Attributes (ASQS/ACQS 0's based, 2-4096).

    Steps:
    1. Read AQA and CAP.MQES.
    2. Check 1 <= ASQS, ACQS <= min(MQES, 4095).
    """
    aqa = nvme0[0x24]
    limit = min(nvme0.cap & 0xFFFF, 4095)
    for name, v in (("ASQS", aqa & 0xFFF), ("ACQS", (aqa >> 16) & 0xFFF)):
        assert 1 <= v <= limit, f"{name} {v}, MQES {nvme0.cap & 0xFFFF}"


@pytest.mark.device
def test_doorbell_stride_layout(nvme0, pcie):
    """Doorbells start at 1000h and follow CAP.DSTRD; the MSI-X table does not overlap them.

    Spec: NVMe 2.0 base spec 3.1.3.1 CAP.DSTRD, 3.1.4 doorbell registers.

    Steps:
    1. Compute the end of the doorbells for the allocated queues: 1000h + 2 * (n + 1) *
       (4 << DSTRD).
    2. If MSI-X is in BAR0, check its table and PBA start at or after that end.
    """
    cdw0 = nvme0.getfeatures(7).waitdone()
    n = max(cdw0 & 0xFFFF, cdw0 >> 16) + 1
    stride = 4 << ((nvme0.cap >> 32) & 0xF)
    end = 0x1000 + 2 * (n + 1) * stride
    cap = pcie.cap_offset(0x11)
    if cap is None:
        pytest.skip("no MSI-X capability")
    for name, reg in (("table", cap + 4), ("PBA", cap + 8)):
        v = pcie.cfg_dword_read(reg)
        if v & 0x7 == 0:
            assert v & ~0x7 >= end, f"MSI-X {name} at {v & ~7:#x} overlaps doorbells to {end:#x}"


@pytest.mark.device
def test_cc_enable_ready_within_timeout(nvme0, nvme0n1):
    """After CC.EN = 1, CSTS.RDY becomes 1 within CAP.TO (500 ms units).

    Spec: NVMe 2.0 base spec 3.1.3.1 CAP.TO, 3.5.1 Controller initialization.

    Steps:
    1. Clear CC.EN and wait for CSTS.RDY = 0.
    2. Set CC.EN again (admin queue registers keep their values) and time CSTS.RDY = 1.
    3. Check it came within CAP.TO; reinitialise the controller and check IO works.
    """
    timeout = ((nvme0.cap >> 24) & 0xFF) * 0.5
    cc = nvme0[0x14]
    nvme0[0x14] = cc & ~1
    assert nvme0.wait_csts(rdy=False)
    start = time.time()
    nvme0[0x14] = cc | 1
    while not nvme0[0x1C] & 1 and time.time() - start < timeout:
        time.sleep(0.001)
    elapsed = time.time() - start
    assert nvme0[0x1C] & 1, f"CSTS.RDY not set {timeout} s (CAP.TO) after CC.EN = 1"
    assert elapsed <= timeout
    nvme0.reset()
    q = Qpair(nvme0, 4)
    try:
        nvme0n1.read(q, Buffer(nvme0n1.sector_size), 0).waitdone()
    finally:
        q.delete()


@pytest.mark.device
def test_shutdown_within_rtd3e(nvme0, subsystem, id_ctrl_buf):
    """A normal shutdown completes (CSTS.SHST = 10b) within RTD3E, or 10 s if not reported.

    Spec: NVMe 2.0 base spec 3.6.2 Shutdown, 5.17.2.1 RTD3E (microseconds).

    Steps:
    1. Read RTD3E.
    2. Send a normal shutdown notification and time it.
    3. Check the time is within RTD3E (plus 100 ms for the host); reset the controller.
    """
    rtd3e = id_ctrl_buf.data(91, 88)
    limit = rtd3e / 1e6 + 0.1 if rtd3e else 10.0
    start = time.time()
    subsystem.shutdown_notify()
    elapsed = time.time() - start
    assert (nvme0[0x1C] >> 2) & 0x3 == 2
    nvme0.reset()
    assert elapsed <= limit, f"shutdown took {elapsed:.3f} s, RTD3E {rtd3e} us"


@pytest.mark.device
def test_cmb_registers_consistent(nvme0):
    """CMBLOC and CMBSZ are zero without a CMB, and consistent with one.

    Spec: NVMe 2.0 base spec 3.1.3.11 CMBLOC, 3.1.3.12 CMBSZ, 3.1.3.15 CMBMSC.CRE.

    Steps:
    1. Skip unless CAP.CMBS (bit 57) is set; set CMBMSC.CRE so the registers are reported.
    2. If CMBSZ is zero, check CMBLOC is zero too.
    3. Else check SZ > 0, SZU <= 6 and BIR names BAR 0, 2, 3, 4 or 5.
    """
    if not (nvme0.cap >> 57) & 1:
        pytest.skip("no Controller Memory Buffer (CAP.CMBS = 0)")
    nvme0[0x50] = nvme0[0x50] | 1
    cmbloc, cmbsz = nvme0[0x38], nvme0[0x3C]
    if cmbsz == 0:
        assert cmbloc == 0
        return
    assert cmbsz >> 12 > 0, "CMBSZ.SZ is 0"
    assert (cmbsz >> 8) & 0xF <= 6, "CMBSZ.SZU reserved value"
    assert cmbloc & 0x7 in (0, 2, 3, 4, 5), "CMBLOC.BIR reserved value"


@pytest.mark.device
def test_nssr_wrong_value_ignored(nvme0, nvme0n1):
    """A write to NSSR of anything but "NVMe" (4E564D65h) causes no subsystem reset.

    Spec: NVMe 2.0 base spec 3.1.3.7 NVM Subsystem Reset (only 4E564D65h initiates it).

    Steps:
    1. Skip unless CAP.NSSRS is set.
    2. Write 12345678h to NSSR (offset 20h).
    3. Check CSTS.RDY is still 1, NSSRO is not set, and IO still works.
    """
    if not (nvme0.cap >> 36) & 1:
        pytest.skip("NVM subsystem reset not supported (CAP.NSSRS)")
    nvme0[0x1C] = 0x10
    nvme0[0x20] = 0x12345678
    time.sleep(0.1)
    assert nvme0[0x1C] & 0x11 == 0x1
    q = Qpair(nvme0, 4)
    try:
        nvme0n1.read(q, Buffer(nvme0n1.sector_size), 0).waitdone()
    finally:
        q.delete()
