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
    nvme0.reset()
    io_works(nvme0, nvme0n1)
    assert nvme0[0x1C] & 1 == 1, "CSTS.RDY is not 1 after reset"


@pytest.mark.device
def test_controller_reset_with_io_outstanding(nvme0, nvme0n1):
    q = Qpair(nvme0, 64)
    b = Buffer(8 * nvme0n1.sector_size)
    for i in range(32):
        nvme0n1.read(q, b, i * 8, 8)
    nvme0.getfeatures(7)
    nvme0.reset()
    q.delete()
    io_works(nvme0, nvme0n1)


@pytest.mark.device
def test_cc_en_clears_csts_rdy(nvme0, nvme0n1):
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
    pcie.flr()
    nvme0.reset()
    io_works(nvme0, nvme0n1)


@pytest.mark.device
def test_pcie_hot_reset(pcie, nvme0, nvme0n1):
    pcie.reset()
    nvme0.reset()
    io_works(nvme0, nvme0n1)


@pytest.mark.device
def test_subsystem_reset(nvme0, nvme0n1, subsystem):
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
    io_works(nvme0, nvme0n1)
    subsystem.shutdown_notify(abrupt)
    assert (nvme0[0x1C] >> 2) & 0x3 == 2, "CSTS.SHST is not 'shutdown processing complete'"
    nvme0.reset()
    assert (nvme0[0x1C] >> 2) & 0x3 == 0
    io_works(nvme0, nvme0n1)


@pytest.mark.device
def test_data_persists_across_power_cycle(nvme0, nvme0n1, subsystem):
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
