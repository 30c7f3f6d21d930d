"""QEMU lane: the PCIe face of a real backend (config space, capabilities, link, power, resets).

Runs in the vfio and uio lanes on QEMU's NVMe controller (1b36:0010) behind a PCIe root port.
"""

from __future__ import annotations

import pytest

import nvme

pytestmark = pytest.mark.device


def test_config_space_identity(pcie: nvme.Pcie) -> None:
    assert pcie.register(0, 2) == 0x1B36
    assert pcie.register(2, 2) == 0x0010
    assert pcie[9:12] == [0x02, 0x08, 0x01]  # class code 010802h: NVMe
    assert len(pcie[0:4096]) == 4096


def test_capabilities(pcie: nvme.Pcie) -> None:
    for cap_id in (0x01, 0x10, 0x11):  # power management, PCI Express, MSI-X
        offset = pcie.cap_offset(cap_id)
        assert offset is not None and 0x40 <= offset < 0x100
        assert pcie[offset] == cap_id


def test_link_and_power_state(pcie: nvme.Pcie) -> None:
    assert pcie.speed >= 1
    assert pcie.aspm in (0, 1, 2, 3)
    assert pcie.power_state == 0


@pytest.mark.parametrize("how", ["flr", "hot_reset"])
def test_controller_after_reset(pcie: nvme.Pcie, how: str) -> None:
    nvme0 = nvme.Controller(pcie)
    serial = nvme0.id_data(23, 4, str)
    if how == "flr":
        pcie.flr()
    else:
        pcie.reset()
    nvme0.reset()
    assert nvme0.id_data(23, 4, str) == serial
