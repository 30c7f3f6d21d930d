"""Resets with IO in flight, and the state and data afterwards.

Controller reset, PCIe function level reset, PCIe hot reset, NVM subsystem reset and power
cycles (clean and abrupt) while an ioworker writes and reads with verification; afterwards the
controller serves IO again, the whole region reads back as the verification table expects, the
SMART unsafe shutdown count moves only for an abrupt power loss, and completed writes survive a
power loss when the volatile write cache is off or was flushed.
"""

import time

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")

REGION = 20000  # LBAs the workers use


def read_back_region(nvme0n1):
    """Read the whole region sequentially with verification on; return the result."""
    r = (
        nvme0n1.ioworker(
            io_size=8,
            lba_random=False,
            read_percentage=100,
            region_end=REGION,
            qdepth=16,
            io_count=REGION // 8,
        )
        .start()
        .close()
    )
    assert r.error == 0, f"read back after the reset: error {r.error:#x}"
    assert r.io_count_read == REGION // 8
    return r


def smart_unsafe(nvme0):
    b = Buffer(512)
    nvme0.getlogpage(2, b, 512).waitdone()
    return b.data(159, 144)


def start_worker(nvme0n1, seconds=2):
    return nvme0n1.ioworker(
        io_size=8, lba_random=True, read_percentage=50, region_end=REGION, qdepth=32, time=seconds
    ).start()


def event(name, pcie, nvme0, subsystem):
    """Cause the reset `name`; leave the controller initialised again."""
    if name == "controller":
        nvme0.reset()
    elif name == "flr":
        pcie.flr()
        nvme0.reset()
    elif name == "hot":
        pcie.reset()
        nvme0.reset()
    elif name == "nssr":
        if not (nvme0.cap >> 36) & 1:
            pytest.skip("NVM subsystem reset not supported (CAP.NSSRS)")
        subsystem.reset()
        nvme0.reset()
        nvme0[0x1C] = 0x10  # clear CSTS.NSSRO


@pytest.mark.device
@pytest.mark.parametrize("name", ["controller", "flr", "hot", "nssr"])
def test_reset_during_verified_io(pcie, nvme0, nvme0n1, subsystem, verify, name):
    """A reset while a verified ioworker runs: IO resumes and every LBA reads back as expected.

    Spec: NVMe 2.0 base spec 3.7 Resets (3.7.1 NVM Subsystem Reset, 3.7.2 Controller Reset,
    3.7.3 Queue Level); PCIe base spec 6.6 (Function Level Reset, hot reset).

    Steps:
    1. Start a 2 s ioworker: 4 KiB random, 50% reads, QD 32, over 20000 LBAs, verify on.
    2. After 0.5 s cause the reset (controller, FLR, hot reset or NSSR) and reinitialise.
    3. Close the worker: no data error (commands the reset aborted are counted apart).
    4. Read the whole region with verification: no mismatch, every read completes.
    """
    w = start_worker(nvme0n1)
    time.sleep(0.5)
    try:
        event(name, pcie, nvme0, subsystem)
    finally:
        r = w.close()
    assert r.error == 0, f"worker error {r.error:#x}"
    assert r.io_count_read + r.io_count_nonread > 0
    read_back_region(nvme0n1)


@pytest.mark.device
def test_repeated_controller_resets_during_io(nvme0, nvme0n1, verify):
    """Five controller resets during one verified ioworker; data stays consistent.

    Spec: NVMe 2.0 base spec 3.7.2 Controller Reset (outstanding commands are aborted, queues
    deleted; the host recreates them).

    Steps:
    1. Start a 3 s verified ioworker (50% reads, QD 32).
    2. Reset the controller every 0.4 s, five times.
    3. Close the worker: no error, and it reports commands aborted by the resets.
    4. Read the region back with verification.
    """
    w = start_worker(nvme0n1, 3)
    try:
        for _ in range(5):
            time.sleep(0.4)
            nvme0.reset()
    finally:
        r = w.close()
    assert r.error == 0
    assert r.io_count_aborted > 0, "no command was in flight at any of five resets"
    read_back_region(nvme0n1)


@pytest.mark.device
@pytest.mark.parametrize("clean", [True, False], ids=["clean", "abrupt"])
def test_power_cycle_during_io(nvme0, nvme0n1, subsystem, clean):
    """Power cycle while IO runs: unsafe shutdowns move only without shutdown notification.

    Spec: NVMe 2.0 base spec 3.6.2 Shutdown, 5.16.1.3 SMART Unsafe Shutdowns.

    Steps:
    1. Read the unsafe shutdown count; start a 2 s ioworker (writes and reads).
    2. After 0.5 s: with "clean", send a normal shutdown notification first; power cycle.
    3. Reinitialise; close the worker.
    4. Check the count: unchanged after a clean cycle, one more after an abrupt one; IO works.
    """
    before = smart_unsafe(nvme0)
    w = start_worker(nvme0n1)
    time.sleep(0.5)
    try:
        if clean:
            subsystem.shutdown_notify()
        subsystem.power_cycle(3)
        nvme0.reset()
    finally:
        w.close()
    assert smart_unsafe(nvme0) == before + (0 if clean else 1)
    q = Qpair(nvme0, 8)
    try:
        b = Buffer(nvme0n1.sector_size, ptype=32, pvalue=0x9C)
        r = Buffer(nvme0n1.sector_size)
        nvme0n1.write(q, b, 30000).waitdone()
        nvme0n1.read(q, r, 30000).waitdone()
        assert r == b
    finally:
        q.delete()


def write_blocks(nvme0, nvme0n1, count, value, flush):
    q = Qpair(nvme0, 64)
    bufs = []
    try:
        for i in range(count):
            b = Buffer(nvme0n1.sector_size, ptype=32, pvalue=value + i)
            nvme0n1.write(q, b, 31000 + i).waitdone()
            bufs.append(b)
        if flush:
            nvme0n1.flush(q).waitdone()
    finally:
        q.delete()
    return bufs


def read_blocks(nvme0, nvme0n1, bufs):
    q = Qpair(nvme0, 64)
    try:
        for i, b in enumerate(bufs):
            r = Buffer(nvme0n1.sector_size)
            nvme0n1.read(q, r, 31000 + i).waitdone()
            assert r == b, f"LBA {31000 + i} lost in the power loss"
    finally:
        q.delete()


@pytest.mark.device
def test_flushed_writes_survive_power_loss(nvme0, nvme0n1, subsystem):
    """Writes followed by Flush survive an abrupt power loss.

    Spec: NVM command set spec 3.2.2 Flush ("... data ... made non-volatile"); NVMe 2.0 base
    spec 5.27.1.4 Volatile Write Cache.

    Steps:
    1. Write 32 blocks of distinct patterns; send Flush.
    2. Power cycle without shutdown notification; reinitialise.
    3. Read the 32 blocks: each holds its pattern.
    """
    bufs = write_blocks(nvme0, nvme0n1, 32, 0xF1500000, flush=True)
    subsystem.power_cycle(3)
    nvme0.reset()
    read_blocks(nvme0, nvme0n1, bufs)


@pytest.mark.device
def test_writes_with_cache_off_survive_power_loss(nvme0, nvme0n1, subsystem, id_ctrl_buf):
    """With the volatile write cache disabled, completed writes survive an abrupt power loss.

    Spec: NVMe 2.0 base spec 5.27.1.4 Volatile Write Cache (WCE = 0: writes are non-volatile
    when completed).

    Steps:
    1. Skip unless a volatile write cache is present; disable it (FID 06h WCE = 0).
    2. Write 32 blocks without Flush.
    3. Power cycle without shutdown notification; reinitialise (the cache setting returns to
       its default).
    4. Read the 32 blocks: each holds its pattern.
    """
    if not id_ctrl_buf.data(525) & 1:
        pytest.skip("no volatile write cache (VWC bit 0)")
    nvme0.setfeatures(6, cdw11=0).waitdone()
    bufs = write_blocks(nvme0, nvme0n1, 32, 0xCAC00000, flush=False)
    subsystem.power_cycle(3)
    nvme0.reset()
    read_blocks(nvme0, nvme0n1, bufs)


@pytest.mark.device
def test_reset_with_admin_commands_outstanding(nvme0, nvme0n1):
    """A controller reset with admin commands and AERs outstanding leaves a working controller.

    Spec: NVMe 2.0 base spec 3.7.2 Controller Reset (outstanding admin commands are aborted).

    Steps:
    1. Send up to three AERs and a Get Log Page without waiting.
    2. Reset the controller: the Get Log Page, never reaped, completes during the reset with
       00/08 (aborted by the host), exactly once; the AERs end without a callback.
    3. Check Identify and IO work and the AER limit is again available (AERL AERs accepted).
    """
    b = Buffer(4096)
    nvme0.identify(b).waitdone()
    aerl = b.data(259) + 1
    for _ in range(min(3, aerl - 1)):
        nvme0.aer()
    got = []
    nvme0.getlogpage(2, Buffer(512), 512, cb=lambda cdw0, status1: got.append(status1 >> 1))
    with pytest.warns(UserWarning, match="ERROR status: 00/08"):
        nvme0.reset()
    assert got == [0x08]
    for _ in range(aerl - 1):
        nvme0.aer()
    nvme0.identify(b).waitdone()
    q = Qpair(nvme0, 8)
    try:
        nvme0n1.read(q, Buffer(nvme0n1.sector_size), 0).waitdone()
    finally:
        q.delete()
