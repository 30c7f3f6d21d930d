"""QEMU lane, `features` guest: several namespaces, a controller memory buffer, 4096+8 metadata.

Runs on the guest that tools/qemu/run starts with three namespaces (nsid 1: 512 B, nsid 2:
4096 B, nsid 3: 4096 B + 8 B of metadata, extended LBA) and a 16 MiB CMB. The checks hold for
any controller configured that way; the simulated SSD is configured to match with
`sim://?namespaces=3` only in part (it has no per-namespace formats), so these tests need the
guest.
"""

from __future__ import annotations

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
    nvme0[0x50] = 1
    cmbloc, cmbsz = nvme0[0x38], nvme0[0x3C]
    assert cmbsz != 0
    szu = 16 ** ((cmbsz >> 8) & 0xF) * 4096  # 4 KiB, 64 KiB, 1 MiB, ...
    assert (cmbsz >> 12) * szu == 16 << 20
    bir = cmbloc & 7
    assert bir == 2, "QEMU puts the CMB in BAR2"
