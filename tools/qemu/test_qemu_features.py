"""QEMU lane, `features` guest: several namespaces, a controller memory buffer, 4096+8 metadata.

Runs on the guest that tools/qemu/run starts with three namespaces (nsid 1: 512 B, nsid 2:
4096 B, nsid 3: 4096 B + 8 B of metadata, extended LBA) and a 16 MiB CMB. The checks hold for
any controller configured that way; the simulated SSD is configured to match with
`sim://?namespaces=3` only in part (it has no per-namespace formats), so these tests need the
guest. With the power channel (tools/qemu/run's features lane) a power cycle deletes the
controller and adds a new one to the same NVMe subsystem, whose namespaces outlive it.
"""

from __future__ import annotations

import os

import pytest

import nvme

pytestmark = pytest.mark.device


def test_three_namespaces(nvme0: nvme.Controller) -> None:
    assert nvme0.id_data(519, 516) >= 3
    sizes = {}
    for nsid in (1, 2, 3):
        ns = nvme.Namespace(nvme0, nsid)
        sizes[nsid] = (ns.sector_size, ns.meta_size)
        ns.close()
    assert sizes == {1: (512, 0), 2: (4096, 0), 3: (4096, 8)}


@pytest.mark.parametrize("nsid", [1, 2])
def test_write_read_each_namespace(nvme0: nvme.Controller, nsid: int) -> None:
    ns = nvme.Namespace(nvme0, nsid)
    qpair = nvme.Qpair(nvme0, 16)
    lba_size = ns.sector_size
    write = nvme.Buffer(4 * lba_size, pvalue=0x5A5A5A5A, ptype=32)
    read = nvme.Buffer(4 * lba_size)
    ns.write(qpair, write, 8, 4).waitdone()
    ns.read(qpair, read, 8, 4).waitdone()
    assert read[16 : lba_size - 8] == write[16 : lba_size - 8]
    qpair.delete()
    ns.close()


def test_metadata_namespace_extended_lba(nvme0: nvme.Controller) -> None:
    ns = nvme.Namespace(nvme0, 3)
    assert ns.id_ns().flbas & 0x10, "metadata transferred at the end of each LBA (extended)"
    qpair = nvme.Qpair(nvme0, 16)
    write = nvme.Buffer(2 * 4104, pvalue=0xA5A5A5A5, ptype=32)
    read = nvme.Buffer(2 * 4104)
    ns.write(qpair, write, 0, 2).waitdone()
    ns.read(qpair, read, 0, 2).waitdone()
    assert read[4096:4104] == write[4096:4104], "the 8 metadata bytes come back"
    qpair.delete()
    ns.close()


def test_controller_memory_buffer(nvme0: nvme.Controller, pcie: nvme.Pcie) -> None:
    # NVMe 1.4: CMBLOC/CMBSZ read 0 until the host sets CMBMSC.CRE (bit 0 of 0x50).
    assert _cmb_size(nvme0) == 16 << 20
    bir = nvme0[0x38] & 7
    assert bir == 2, "QEMU puts the CMB in BAR2"


def _cmb_size(nvme0: nvme.Controller) -> int:
    """The CMB's size in bytes from CMBSZ, after enabling CMBLOC/CMBSZ (CMBMSC.CRE)."""
    nvme0[0x50] = 1
    cmbsz = nvme0[0x3C]
    return (cmbsz >> 12) * 16 ** ((cmbsz >> 8) & 0xF) * 4096


@pytest.mark.skipif(
    "power-switch" not in os.environ.get("PYNVME_POWER_ON", ""),
    reason="no QEMU power channel: the lane's power cycle is a function reset",
)
def test_power_cycle_brings_back_every_namespace(nvme0: nvme.Controller) -> None:
    """A power cycle deletes the controller; the new one has the subsystem's namespaces again.

    Each namespace gets its own pattern (nsid 3 with its 8 metadata bytes in each extended
    LBA); after the power cycle and a controller reset the three namespaces have their formats
    and their data, and the CMB is there again with its 16 MiB.
    """
    sizes = {1: 512, 2: 4096, 3: 4104}
    written = {}
    qpair = nvme.Qpair(nvme0, 16)
    for nsid, lba in sizes.items():
        ns = nvme.Namespace(nvme0, nsid)
        written[nsid] = nvme.Buffer(2 * lba, ptype=32, pvalue=0x600D0000 + nsid)
        ns.write(qpair, written[nsid], 64, 2).waitdone()
        ns.close()
    qpair.delete()
    nvme.Subsystem(nvme0).power_cycle(1)
    assert nvme0[0x14] & 1 == 0, "CC.EN set after power-on: the controller was not replaced"
    nvme0.reset()
    qpair = nvme.Qpair(nvme0, 16)
    for nsid, lba in sizes.items():
        ns = nvme.Namespace(nvme0, nsid)
        assert ns.sector_size + ns.meta_size == lba
        read = nvme.Buffer(2 * lba)
        ns.read(qpair, read, 64, 2).waitdone()
        assert bytes(read[0 : 2 * lba]) == bytes(written[nsid][0 : 2 * lba]), f"namespace {nsid}"
        ns.close()
    qpair.delete()
    assert _cmb_size(nvme0) == 16 << 20
