"""Resets and shutdown: the controller comes back and serves IO after each of them.

Controller reset (CC.EN 1 -> 0 -> 1) with and without commands outstanding, PCIe function level
reset and hot reset, NVM subsystem reset (when CAP.NSSRS), normal and abrupt shutdown
notification (CSTS.SHST reaches 10b), and CC.EN = 0 clearing CSTS.RDY within CAP.TO.
"""

import time
import warnings

import pytest

from nvme import *


def io_works(nvme0, nvme0n1, lba=0):
    # The admin queue answers in time (no timeout warning) and raises its interrupt.
    nvme0.timeout = 2000
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        nvme0.getfeatures(7).waitdone()
    assert not [str(w.message) for w in record], "admin command after the event"
    q = Qpair(nvme0, 8)
    try:
        w = Buffer(nvme0n1.sector_size, ptype=32, pvalue=0x600DF00D)
        r = Buffer(nvme0n1.sector_size)
        nvme0n1.write(q, w, lba).waitdone()
        nvme0n1.read(q, r, lba).waitdone()
        assert r == w
    finally:
        q.delete()


@pytest.mark.device
def test_controller_reset(nvme0, nvme0n1):
    """After a controller reset, admin and IO commands work and CSTS.RDY is 1.

    Spec: NVMe 2.0 base spec 3.7.2 Controller Reset.

    Steps:
    1. Reset the controller.
    2. Check an admin command and a write/read work.
    3. Check CSTS.RDY.
    """
    nvme0.reset()
    io_works(nvme0, nvme0n1)
    assert nvme0[0x1C] & 1 == 1, "CSTS.RDY is not 1 after reset"


@pytest.mark.device
def test_controller_reset_with_io_outstanding(nvme0, nvme0n1):
    """A controller reset with 32 reads outstanding leaves a working controller.

    Spec: NVMe 2.0 base spec 3.7.2 Controller Reset (outstanding commands aborted).

    Steps:
    1. Submit 32 reads and a Get Features without waiting.
    2. Reset the controller: the Get Features completes during the reset with 00/08 (aborted by
       the host).
    3. Check admin and IO work.
    """
    q = Qpair(nvme0, 64)
    b = Buffer(8 * nvme0n1.sector_size)
    for i in range(32):
        nvme0n1.read(q, b, i * 8, 8)
    nvme0.getfeatures(7)
    with pytest.warns(UserWarning, match="ERROR status: 00/08"):
        nvme0.reset()
    q.delete()
    io_works(nvme0, nvme0n1)


@pytest.mark.device
def test_cc_en_clears_csts_rdy(nvme0, nvme0n1):
    """CC.EN = 0 clears CSTS.RDY within CAP.TO.

    Spec: NVMe 2.0 base spec 3.1.3.5 CC.EN, 3.1.3.1 CAP.TO.

    Steps:
    1. Clear CC.EN.
    2. Poll CSTS.RDY until 0 or CAP.TO.
    3. Reinitialise and check IO.
    """
    timeout = ((nvme0.cap >> 24) & 0xFF) * 0.5
    nvme0[0x14] = nvme0[0x14] & ~1
    start = time.time()
    while nvme0[0x1C] & 1 and time.time() - start < timeout:
        time.sleep(0.001)
    assert nvme0[0x1C] & 1 == 0, f"CSTS.RDY still 1 {timeout} s (CAP.TO) after CC.EN = 0"
    nvme0.reset()
    io_works(nvme0, nvme0n1)


@pytest.mark.device
def test_pcie_flr_reset(pcie, nvme0, nvme0n1):
    """After a function level reset the controller reinitialises and serves IO.

    Spec: PCIe base spec 6.6.2 Function Level Reset; NVMe 2.0 base spec 3.7.

    Steps:
    1. FLR.
    2. Reinitialise; check admin and IO.
    """
    pcie.flr()
    nvme0.reset()
    io_works(nvme0, nvme0n1)


@pytest.mark.device
def test_pcie_hot_reset(pcie, nvme0, nvme0n1):
    """After a PCIe hot reset the controller reinitialises and serves IO.

    Spec: PCIe base spec 6.6.1 Conventional Reset (hot reset); NVMe 2.0 base spec 3.7.

    Steps:
    1. Hot reset.
    2. Reinitialise; check admin and IO.
    """
    pcie.reset()
    nvme0.reset()
    io_works(nvme0, nvme0n1)


@pytest.mark.device
def test_subsystem_reset(nvme0, nvme0n1, subsystem):
    """An NVM subsystem reset sets CSTS.NSSRO; the controller works after reinit.

    Spec: NVMe 2.0 base spec 3.7.1 NVM Subsystem Reset, 3.1.3.6 CSTS.NSSRO.

    Steps:
    1. Skip unless CAP.NSSRS.
    2. Write NSSR; reinitialise.
    3. Check NSSRO, clear it, check IO.
    """
    if not (nvme0.cap >> 36) & 1:
        pytest.skip("NVM subsystem reset not supported (CAP.NSSRS)")
    assert subsystem.reset()
    nvme0.reset()
    # CSTS.NSSRO reports that a subsystem reset occurred; writing 1 clears it.
    assert nvme0[0x1C] & 0x10, "CSTS.NSSRO not set after an NVM subsystem reset"
    nvme0[0x1C] = 0x10
    io_works(nvme0, nvme0n1)


@pytest.mark.device
@pytest.mark.parametrize("abrupt", [False, True])
def test_shutdown_notification(nvme0, nvme0n1, subsystem, abrupt):
    """Normal and abrupt shutdown reach CSTS.SHST = 10b; the controller works after reset.

    Spec: NVMe 2.0 base spec 3.6.2 Shutdown, 3.1.3.5 CC.SHN.

    Steps:
    1. Check IO works.
    2. Send the shutdown notification: SHST = 10b.
    3. Reset: SHST = 00b; check IO.
    """
    io_works(nvme0, nvme0n1)
    subsystem.shutdown_notify(abrupt)
    assert (nvme0[0x1C] >> 2) & 0x3 == 2, "CSTS.SHST is not 'shutdown processing complete'"
    nvme0.reset()
    assert (nvme0[0x1C] >> 2) & 0x3 == 0
    io_works(nvme0, nvme0n1)


@pytest.mark.device
def test_data_persists_across_power_cycle(nvme0, nvme0n1, subsystem):
    """A flushed block survives a clean power cycle.

    Spec: NVMe 2.0 base spec 3.6.2 Shutdown; NVM command set spec 3.2.2 Flush.

    Steps:
    1. Write and flush one block.
    2. Shutdown notification, power cycle, reinitialise.
    3. Read the block and compare.
    """
    w = Buffer(nvme0n1.sector_size, ptype=32, pvalue=0xFEEDC0DE)
    q = Qpair(nvme0, 8)
    nvme0n1.write(q, w, 77).waitdone()
    nvme0n1.flush(q).waitdone()
    q.delete()
    subsystem.shutdown_notify()
    subsystem.power_cycle(10)
    nvme0.reset()
    q = Qpair(nvme0, 8)
    r = Buffer(nvme0n1.sector_size)
    nvme0n1.read(q, r, 77).waitdone()
    q.delete()
    assert r == w
