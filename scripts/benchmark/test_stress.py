"""Endurance and stress: JEDEC client and enterprise workloads, reset and dirty power cycle
loops under verified IO, and a write-verify marathon."""

import statistics
import time

import pytest
from benchlib import blocks, human, iops, mbps, power_control, verdict

from nvme import *
from nvme.report import log_series

pytestmark = pytest.mark.device

#: JEDEC JESD219 enterprise workload, as the PyNVMe3 guide gives it: 10,000 IOs over 100
#: equal parts of the LBA space (half of them in the first 5 %, 30 % in the next 15 %) ...
JEDEC_DISTRIBUTION = [1000] * 5 + [200] * 15 + [25] * 80
#: ... and the IO size mix, in 512-byte units: weight (4 KiB is 67 %).
JEDEC_SIZES_512 = {1: 4, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1, 8: 67, 16: 10, 32: 7, 64: 3, 128: 3}


def jedec_sizes(nvme0, nvme0n1, align_4k):
    """The JEDEC size mix in LBAs of this namespace ({nlb: weight}); with `align_4k`, every
    size rounded up to a multiple of 4 KiB. Sizes above MDTS are cut to MDTS."""
    bs = nvme0n1.sector_size
    unit = 4096 if align_4k else 512
    largest = nvme0.mdts // bs
    sizes = {}
    for s, weight in JEDEC_SIZES_512.items():
        nbytes = -(-s * 512 // unit) * unit
        nlb = min(largest, max(1, -(-nbytes // bs)))
        sizes[nlb] = sizes.get(nlb, 0) + weight
    return sizes


def smart(nvme0):
    """(data units written, unsafe shutdowns) from the SMART / Health log."""
    b = Buffer(512)
    nvme0.getlogpage(2, b, 512).waitdone()
    return b.data(63, 48), b.data(159, 144)


def read_back(nvme0n1, region, what):
    """Read LBAs [0, region) sequentially with verification on; fails on any error."""
    io = blocks(nvme0n1, 64 << 10)
    r = (
        nvme0n1.ioworker(
            io_size=io,
            lba_random=False,
            read_percentage=100,
            region_end=region // io * io,
            qdepth=32,
        )
        .start()
        .close()
    )
    assert r.error == 0, f"read back after {what}: error {r.error:#06x}"
    assert r.io_count_read == region // io, "the read back did not cover the region"
    return r


def endurance(nvme0, nvme0n1, bench, lbas, align_4k, qdepth):
    """Run the JEDEC workload for `endurance_seconds`; returns the ioworker result."""
    sizes = jedec_sizes(nvme0, nvme0n1, align_4k)
    before, _ = smart(nvme0)
    r = (
        nvme0n1.ioworker(
            io_size=sizes,
            lba_align=[blocks(nvme0n1, 4096) if align_4k else 1] * len(sizes),
            lba_random=True,
            distribution=JEDEC_DISTRIBUTION,
            read_percentage=0,
            region_end=lbas,
            qdepth=min(qdepth, nvme0.cap & 0xFFFF),
            time=bench.endurance_seconds,
        )
        .start()
        .close()
    )
    after, _ = smart(nvme0)
    assert r.error == 0, f"JEDEC workload: error {r.error:#06x}"
    assert r.io_count_write > 0
    # The hot 5 % of the drive got half of the writes: read it back with verification.
    read_back(nvme0n1, max(lbas // 20, blocks(nvme0n1, 64 << 10)), "the JEDEC workload")
    host_gb = r.lba_count_write * nvme0n1.sector_size / 1e9
    smart_gb = (after - before) * 512000 / 1e9
    return r, host_gb, smart_gb


def test_jedec_enterprise_endurance(nvme0, nvme0n1, verify, bench, lbas):
    """JEDEC enterprise endurance workload (JESD219): random writes with its LBA distribution
    and IO size mix, 512-byte granular, at QD 128.

    Measures: IOPS per second (the ioworker's files), host GB written, SMART data units
    written in the same time, errors.

    Steps:
    1. Random writes for `endurance_seconds`: 10,000-IO distribution [1000]*5 + [200]*15 +
       [25]*80 over 100 equal parts of the drive, sizes 512 B .. 64 KiB with 4 KiB at 67 %,
       unaligned, QD 128 (at most CAP.MQES), verification on.
    2. Read the hot first 5 % back with verification.
    3. Verdict PASS: no error and no miscompare; IOPS, host GB and SMART GB written.

    Parameters: endurance_seconds (3600), max_bytes.
    """
    r, host_gb, smart_gb = endurance(nvme0, nvme0n1, bench, lbas, False, 128)
    verdict(
        True,
        f"jedec enterprise {bench.endurance_seconds:g} s: {human(iops(r))} IOPS, host "
        f"{host_gb:.3g} GB, SMART {smart_gb:.3g} GB written, 0 errors",
    )


def test_jedec_client_endurance(nvme0, nvme0n1, verify, bench, lbas):
    """JEDEC-style client endurance workload: the same LBA distribution with every IO size
    rounded up to 4 KiB multiples and 4 KiB aligned, at QD 32.

    JESD219's client workload is a trace replay; this is the guide's distribution with the
    4 KiB granularity of a client drive's mapping (the trace itself is not included).

    Measures: IOPS per second, host GB written, SMART data units written, errors.

    Steps:
    1. Random writes for `endurance_seconds`: the JEDEC distribution, sizes 4 KiB .. 64 KiB
       (4 KiB at 78 %), 4 KiB aligned, QD 32, verification on.
    2. Read the hot first 5 % back with verification.
    3. Verdict PASS: no error and no miscompare.

    Parameters: endurance_seconds (3600), max_bytes.
    """
    r, host_gb, smart_gb = endurance(nvme0, nvme0n1, bench, lbas, True, 32)
    verdict(
        True,
        f"jedec client {bench.endurance_seconds:g} s: {human(iops(r))} IOPS, host "
        f"{host_gb:.3g} GB, SMART {smart_gb:.3g} GB written, 0 errors",
    )


def loop_worker(nvme0, nvme0n1, region, seconds):
    """128 KiB IO, 30 % reads, over `region`, as deep as the drive allows (at most 1024)."""
    return nvme0n1.ioworker(
        io_size=blocks(nvme0n1, min(128 << 10, nvme0.mdts)),
        lba_random=True,
        read_percentage=30,
        region_end=region,
        qdepth=min(1023, nvme0.cap & 0xFFFF),
        time=seconds * 2,
    ).start()


def test_reset_loop_verified_io(nvme0, nvme0n1, verify, bench, lbas):
    """Controller resets in a loop while verified IO runs.

    Measures: per iteration, the time the reset took (series "reset time"), commands the
    resets aborted; data integrity.

    Steps:
    1. `loop_count` times: start 128 KiB IO (30 % reads, verification on) over the first
       `fresh_region` bytes; after `loop_io_seconds` reset the controller; close the worker
       (no error: commands aborted by the reset are counted apart).
    2. Read the region back with verification.
    3. Verdict PASS: no error, no miscompare.

    Parameters: loop_count (100), loop_io_seconds (5), fresh_region (1 GiB).
    """
    region = min(lbas, blocks(nvme0n1, bench.fresh_region))
    times, aborted = [], 0
    for i in range(bench.loop_count):
        w = loop_worker(nvme0, nvme0n1, region, bench.loop_io_seconds)
        try:
            time.sleep(bench.loop_io_seconds)
            t = time.perf_counter()
            nvme0.reset()
            times.append((time.perf_counter() - t) * 1e3)
        finally:
            r = w.close()
        assert r.error == 0, f"iteration {i}: error {r.error:#06x}"
        aborted += r.io_count_aborted
    read_back(nvme0n1, region, f"{bench.loop_count} resets")
    log_series("reset time", times, unit="ms")
    verdict(
        True,
        f"{bench.loop_count} resets under verified IO: reset median "
        f"{statistics.median(times):.1f} ms, {aborted} IOs aborted, data intact",
    )


def test_dirty_power_cycle_loop_verified_io(pcie, nvme0, nvme0n1, subsystem, verify, bench, lbas):
    """Power loss in a loop while verified IO runs, with the volatile write cache off.

    Measures: per iteration, the time from power on to an initialised controller (series
    "power on time"); SMART unsafe shutdowns; data integrity.

    Steps:
    1. Skip unless the power can be switched (the simulated SSD, or PYNVME_POWER_OFF/ON).
    2. `loop_count` times: turn the volatile write cache off (completed writes must then
       survive a power loss), start 128 KiB IO (30 % reads, verification on), after
       `loop_io_seconds` cut the power without shutdown notification, power on, initialise
       the controller, close the worker.
    3. Read the region back with verification; the unsafe shutdown count grew by
       `loop_count`; the volatile write cache is turned on again.
    4. Verdict PASS: no error, no miscompare.

    Parameters: loop_count (100), loop_io_seconds (5), ready_off_seconds (10), fresh_region.
    """
    power_control(pcie)
    region = min(lbas, blocks(nvme0n1, bench.fresh_region))
    vwc = nvme0.id_ctrl().vwc & 1
    _, unsafe_before = smart(nvme0)
    times = []
    try:
        for i in range(bench.loop_count):
            if vwc:
                nvme0.setfeatures(6, cdw11=0).waitdone()
            w = loop_worker(nvme0, nvme0n1, region, bench.loop_io_seconds)
            try:
                time.sleep(bench.loop_io_seconds)
                subsystem.poweroff()
                time.sleep(bench.ready_off_seconds)
                subsystem.poweron()
                t = time.perf_counter()
                nvme0.reset()
                times.append((time.perf_counter() - t) * 1e3)
            finally:
                r = w.close()
            assert r.error == 0, f"iteration {i}: error {r.error:#06x}"
    finally:
        if vwc:
            nvme0.setfeatures(6, cdw11=1).waitdone()
    _, unsafe_after = smart(nvme0)
    read_back(nvme0n1, region, f"{bench.loop_count} power losses")
    log_series("power on time", times, unit="ms")
    assert unsafe_after == unsafe_before + bench.loop_count, (
        f"unsafe shutdowns {unsafe_before} -> {unsafe_after} after {bench.loop_count} power losses"
    )
    verdict(
        True,
        f"{bench.loop_count} dirty power cycles under verified IO: power on median "
        f"{statistics.median(times):.1f} ms, unsafe shutdowns +{unsafe_after - unsafe_before}, "
        "data intact",
    )


def test_write_verify_marathon(nvme0, nvme0n1, verify, bench, lbas):
    """Write-verify marathon: write the region and read it all back, pass after pass.

    Measures: per pass, write and read MB/s (series "marathon write", "marathon read");
    data integrity.

    Steps:
    1. `marathon_passes` times: write `marathon_fraction` of the drive sequentially with
       64 KiB writes at QD 64 (new random data each pass), then read it back with
       verification.
    2. Verdict PASS: every pass without error or miscompare.

    Parameters: marathon_passes (10), marathon_fraction (1.0: the whole drive), max_bytes.
    """
    io = blocks(nvme0n1, 64 << 10)
    region = max(io, int(lbas * bench.marathon_fraction) // io * io)
    writes, reads = [], []
    for i in range(bench.marathon_passes):
        r = (
            nvme0n1.ioworker(
                io_size=io,
                lba_random=False,
                read_percentage=0,
                region_end=region,
                qdepth=64,
                pvalue=100 + i,
            )
            .start()
            .close()
        )
        assert r.error == 0, f"pass {i} write: error {r.error:#06x}"
        writes.append(mbps(r, nvme0n1.sector_size))
        reads.append(mbps(read_back(nvme0n1, region, f"pass {i}"), nvme0n1.sector_size))
    log_series("marathon write", writes, unit="MB/s")
    log_series("marathon read", reads, unit="MB/s")
    gb = region * nvme0n1.sector_size * bench.marathon_passes / 1e9
    verdict(
        True,
        f"write-verify marathon: {bench.marathon_passes} passes, {gb:.3g} GB written and "
        f"verified, write {statistics.median(writes):.0f} MB/s read "
        f"{statistics.median(reads):.0f} MB/s",
    )
