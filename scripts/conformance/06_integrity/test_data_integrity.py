"""Data integrity: every read checked against what was written.

Data patterns (zeroes, ones, alternating, random, LBA-stamped), verified random mixed IO by
several ioworkers on overlapping LBAs with a full read-back, data unchanged across a
controller reset and a clean power cycle with the verification table saved and loaded, and
deallocated blocks read without a verification error. On the simulated SSD, injected media
faults (flipped bits, lost, misdirected and stale writes) must be caught by verification
(07/81): proof that the checking itself works.
"""

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")

REGION = 16384


def full_read(nvme0n1, end=REGION):
    r = (
        nvme0n1.ioworker(
            io_size=8,
            lba_random=False,
            read_percentage=100,
            region_end=end,
            qdepth=16,
            io_count=end // 8,
        )
        .start()
        .close()
    )
    assert r.error == 0, f"read back: error {r.error:#x}"
    assert r.io_count_read == end // 8


@pytest.mark.device
@pytest.mark.parametrize(
    "ptype,pvalue",
    [(0, 0), (0, 1), (32, 0x55555555), (32, 0xAAAAAAAA), (0xBEEF, 100), (0xBEEF, 0)],
    ids=["zeroes", "ones", "0x55", "0xaa", "random", "random_compressible"],
)
def test_data_patterns(nvme0n1, qpair, verify, ptype, pvalue):
    """Data patterns written in 64 KiB chunks read back identical.

    Spec: NVM command set spec 3.2.4 Read, 3.2.6 Write (data returned is the data written).

    Steps:
    1. Fill a 64 KiB buffer with the pattern (Buffer ptype/pvalue).
    2. Write it to 4 places (first, middle and last 64 KiB of a 16 MiB region, one odd LBA).
    3. Read each back with verification on; compare with the buffer.
    """
    ss = nvme0n1.sector_size
    n = 65536 // ss
    for lba in (0, REGION // 2, REGION - n, 4097):
        w = Buffer(n * ss, ptype=ptype, pvalue=pvalue)
        r = Buffer(n * ss)
        nvme0n1.write(qpair, w, lba, n).waitdone()
        nvme0n1.read(qpair, r, lba, n).waitdone()
        assert r == w, f"LBA {lba}"


@pytest.mark.device
def test_verified_random_mixed_io(nvme0n1, verify):
    """A 3 s random mixed ioworker with verification, then a full sequential read-back.

    Spec: NVM command set spec 3.2.4/3.2.6 (each read returns the latest data written).

    Steps:
    1. Run an ioworker: sizes 1, 8 and up to 64 blocks (MDTS permitting), random LBAs, 50%
       reads, QD 32, over 16384 LBAs.
    2. Check it saw no error.
    3. Read the whole region sequentially with verification: no mismatch.
    """
    big = max(8, min(64, nvme0n1.nvme.mdts // nvme0n1.sector_size))
    r = (
        nvme0n1.ioworker(
            io_size={1: 30, 8: 40, big: 30},
            lba_random=True,
            read_percentage=50,
            region_end=REGION,
            qdepth=32,
            time=3,
        )
        .start()
        .close()
    )
    assert r.error == 0
    assert r.io_count_read > 0 and r.io_count_nonread > 0
    full_read(nvme0n1)


@pytest.mark.device
def test_overlapping_workers_verified(nvme0n1, verify):
    """Four ioworkers on the same LBAs, all verified, stay consistent.

    Spec: NVM command set spec 3.2 (commands to the same LBAs; the host orders them).

    Steps:
    1. Start 4 ioworkers (4 KiB, random, 50% reads, QD 8) over the same 2048 LBAs for 2 s.
    2. Check none saw an error.
    3. Read the region back with verification.
    """
    ws = [
        nvme0n1.ioworker(
            io_size=8, lba_random=True, read_percentage=50, region_end=2048, qdepth=8, time=2
        ).start()
        for _ in range(4)
    ]
    results = [w.close() for w in ws]
    assert all(r.error == 0 for r in results)
    assert all(r.io_count_read > 0 for r in results)
    full_read(nvme0n1, 2048)


@pytest.mark.device
def test_data_across_controller_reset(nvme0, nvme0n1, verify):
    """Data written before a controller reset reads back unchanged after it.

    Spec: NVMe 2.0 base spec 3.7.2 Controller Reset (user data is not affected).

    Steps:
    1. Write the region sequentially (ioworker, verification table filled).
    2. Reset the controller.
    3. Read the region back with verification.
    """
    r = (
        nvme0n1.ioworker(
            io_size=8,
            lba_random=False,
            read_percentage=0,
            region_end=REGION,
            qdepth=16,
            io_count=REGION // 8,
        )
        .start()
        .close()
    )
    assert r.error == 0
    nvme0.reset()
    full_read(nvme0n1)


@pytest.mark.device
def test_data_across_power_cycle_with_saved_table(nvme0, nvme0n1, subsystem, verify, tmp_path):
    """Data written before a clean power cycle reads back; the verification table is saved.

    Spec: NVMe 2.0 base spec 3.6.2 Shutdown (data is non-volatile after shutdown complete).

    Steps:
    1. Write the region sequentially with verification; save the table to a file.
    2. Shutdown notification, power cycle, reinitialise; load the table again.
    3. Read the region back with verification.
    """
    r = (
        nvme0n1.ioworker(
            io_size=8,
            lba_random=False,
            read_percentage=0,
            region_end=REGION,
            qdepth=16,
            io_count=REGION // 8,
        )
        .start()
        .close()
    )
    assert r.error == 0
    table = tmp_path / "ns.crc"
    nvme0n1.save_crc(table)
    assert table.stat().st_size > 0
    subsystem.shutdown_notify()
    subsystem.power_cycle(3)
    nvme0.reset()
    nvme0n1.load_crc(table)
    full_read(nvme0n1)


@pytest.mark.device
def test_deallocated_blocks_verified(nvme0n1, qpair, verify, oncs):
    """Reads of deallocated blocks raise no verification error; rewritten blocks verify again.

    Spec: NVM command set spec 3.2.3 Dataset Management (deallocate), 4.1.5.1 DLFEAT.

    Steps:
    1. Skip unless DSM is supported; write n = min(64, MDTS) blocks.
    2. Deallocate the middle half of them.
    3. Read all n with verification (the table knows which were deallocated).
    4. Rewrite the middle half and read it back verified.
    """
    if not oncs & 0x4:
        pytest.skip("Dataset Management not supported (ONCS bit 2)")
    ss = nvme0n1.sector_size
    n = min(64, nvme0n1.nvme.mdts // ss)  # blocks in one command
    q = n // 4
    b = Buffer(n * ss, ptype=32, pvalue=0xDA11)
    nvme0n1.write(qpair, b, 12000, n).waitdone()
    ranges = Buffer(4096)
    ranges.set_dsm_range(0, 12000 + q, 2 * q)
    nvme0n1.dsm(qpair, ranges, 1).waitdone()
    nvme0n1.read(qpair, Buffer(n * ss), 12000, n).waitdone()
    w = Buffer(2 * q * ss, ptype=32, pvalue=0xDA12)
    nvme0n1.write(qpair, w, 12000 + q, 2 * q).waitdone()
    r = Buffer(2 * q * ss)
    nvme0n1.read(qpair, r, 12000 + q, 2 * q).waitdone()
    assert r == w


@pytest.mark.sim_only
@pytest.mark.parametrize("action", ["flip_bits", "stale_data"])
def test_verification_catches_bad_read_data(pcie, nvme0n1, qpair, verify, action):
    """Verification reports 07/81 when the device returns wrong data for a read.

    Spec: pynvme-rs data verification (per-LBA check of every read); NVM command set spec
    3.2.4 Read. Simulated SSD only: the fault is injected.

    Steps:
    1. Inject the fault for the next read of 8 blocks (stale data: the device keeps the
       previous version of the LBAs from now on).
    2. Write the 8 blocks twice.
    3. Read them: the fault hits once, status 07/81 (data miscompare found by the host).
    4. Read again without the fault: the data is correct.
    """
    ss = nvme0n1.sector_size
    value = 3 if action == "flip_bits" else None
    fault = pcie.sim.inject(action, value, opcode=0x02, lba=(13000, 13008), count=1)
    for v in (1, 2):
        nvme0n1.write(qpair, Buffer(8 * ss, ptype=32, pvalue=v), 13000, 8).waitdone()
    with pytest.warns(UserWarning, match="ERROR status: 07/81"):
        nvme0n1.read(qpair, Buffer(8 * ss), 13000, 8).waitdone()
    assert pcie.sim.hits(fault) == 1
    nvme0n1.read(qpair, Buffer(8 * ss), 13000, 8).waitdone()


@pytest.mark.sim_only
@pytest.mark.parametrize("action", ["lost_write", "misdirected_write"])
def test_verification_catches_bad_writes(pcie, nvme0n1, qpair, verify, action):
    """Verification reports 07/81 when a write was lost or landed on other LBAs.

    Spec: pynvme-rs data verification; NVM command set spec 3.2.6 Write. Simulated SSD only:
    the fault is injected.

    Steps:
    1. Write 8 blocks of one pattern.
    2. Inject the fault; write 8 blocks of another pattern over them (it completes
       successfully).
    3. Read them: status 07/81.
    """
    ss = nvme0n1.sector_size
    nvme0n1.write(qpair, Buffer(8 * ss, ptype=32, pvalue=1), 14000, 8).waitdone()
    value = 64 if action == "misdirected_write" else None
    pcie.sim.inject(action, value, opcode=0x01, lba=(14000, 14008), count=1)
    nvme0n1.write(qpair, Buffer(8 * ss, ptype=32, pvalue=2), 14000, 8).waitdone()
    with pytest.warns(UserWarning, match="ERROR status: 07/81"):
        nvme0n1.read(qpair, Buffer(8 * ss), 14000, 8).waitdone()
