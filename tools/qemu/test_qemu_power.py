"""QEMU lane: what a power cycle of QEMU's NVMe controller really loses, and what it keeps.

Runs in the vfio and uio lanes, whose power hook (tools/qemu/power-switch) powers the slot off
and has QEMU delete the controller and add a new one (tools/qemu/power_agent.py). Skipped when
the lane's hook is only a function reset (no power channel).
"""

from __future__ import annotations

import os

import pytest

import nvme

pytestmark = [
    pytest.mark.device,
    pytest.mark.skipif(
        "power-switch" not in os.environ.get("PYNVME_POWER_ON", ""),
        reason="no QEMU power channel: the lane's power cycle is a function reset",
    ),
]

TEMPERATURE_THRESHOLD = 0x04


def test_power_cycle_gives_a_new_controller(nvme0: nvme.Controller) -> None:
    """The registers and features come back with their power-on values.

    A changed Temperature Threshold survives a controller reset on QEMU (a known difference,
    DIFFERENCES.md); after a power cycle the controller is a new device object: CC, AQA and
    CSTS read as after power-on until the driver initialises it, and the threshold is the
    default again.
    """
    default = nvme0.getfeatures(TEMPERATURE_THRESHOLD, sel=1).waitdone() & 0xFFFF
    nvme0.setfeatures(TEMPERATURE_THRESHOLD, cdw11=default - 7).waitdone()
    try:
        assert nvme0.getfeatures(TEMPERATURE_THRESHOLD).waitdone() & 0xFFFF == default - 7
        subsystem = nvme.Subsystem(nvme0)
        subsystem.power_cycle(1)
        assert nvme0[0x14] & 1 == 0, "CC.EN set after power-on"
        assert nvme0[0x24] == 0, "AQA kept across the power cycle"
        assert nvme0[0x1C] & 1 == 0, "CSTS.RDY set after power-on"
        nvme0.reset()
        assert nvme0.getfeatures(TEMPERATURE_THRESHOLD).waitdone() & 0xFFFF == default
    finally:
        nvme0.setfeatures(TEMPERATURE_THRESHOLD, cdw11=default).waitdone()


@pytest.mark.parametrize("clean", [True, False], ids=["clean", "dirty"])
def test_data_written_before_the_power_cycle_is_kept(
    nvme0: nvme.Controller, nvme0n1: nvme.Namespace, clean: bool
) -> None:
    """Blocks written without a Flush read back after a power cycle, clean or not.

    The spec lets a drive lose what its volatile write cache held at a power loss; QEMU's
    controller writes each command through to the host's image file (its cache is the host's
    page cache, which deleting the device does not drop), so nothing is lost. What a script can
    rely on there: data completed before the power went off is kept.
    """
    ss = nvme0n1.sector_size
    w = nvme.Buffer(8 * ss, ptype=32, pvalue=0x0DDBA11 + clean)
    q = nvme.Qpair(nvme0, 8)
    nvme0n1.write(q, w, 4096, 8).waitdone()
    q.delete()
    nvme.Subsystem(nvme0).power_cycle(1, clean=clean)
    nvme0.reset()
    q = nvme.Qpair(nvme0, 8)
    r = nvme.Buffer(8 * ss)
    nvme0n1.read(q, r, 4096, 8).waitdone()
    q.delete()
    assert bytes(r[0 : 8 * ss]) == bytes(w[0 : 8 * ss])


def test_buffers_created_while_the_power_is_off_work_after_it(
    nvme0: nvme.Controller, nvme0n1: nvme.Namespace
) -> None:
    """A script may create buffers while the controller is removed.

    With vfio, the controller's removal takes its IOMMU group out of the driver's container,
    which loses its IOMMU and refuses DMA mappings until the controller is back: the driver
    maps such buffers when the power comes on. Both buffers carry a write and a read.
    """
    ss = nvme0n1.sector_size
    subsystem = nvme.Subsystem(nvme0)
    subsystem.poweroff()
    try:
        w = nvme.Buffer(16 * ss, ptype=32, pvalue=0x0FF0FF)
        r = nvme.Buffer(16 * ss)
    finally:
        subsystem.poweron()
    nvme0.reset()
    q = nvme.Qpair(nvme0, 8)
    nvme0n1.write(q, w, 8192, 16).waitdone()
    nvme0n1.read(q, r, 8192, 16).waitdone()
    q.delete()
    assert bytes(r[0 : 16 * ss]) == bytes(w[0 : 16 * ss])
