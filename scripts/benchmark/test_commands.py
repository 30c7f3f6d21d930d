"""Command latency: trim (one range, many ranges, the whole drive) and format; time to ready
after clean and dirty power cycles."""

import statistics
import time

import pytest
from benchlib import blocks, power_control, verdict

from nvme import *
from nvme.report import log_series

pytestmark = pytest.mark.device


def write_ranges(nvme0, nvme0n1, qpair, ranges):
    """Write every LBA of `ranges` [(slba, nlb)] with plain write commands (up to 32 in
    flight), so that a trim has mapped data to drop."""
    piece = blocks(nvme0n1, min(128 << 10, nvme0.mdts))
    buf = Buffer(piece * nvme0n1.sector_size, ptype=0xBEEF, pvalue=100)
    outstanding = 0
    for slba, nlb in ranges:
        for lba in range(slba, slba + nlb, piece):
            nvme0n1.write(qpair, buf, lba, min(piece, slba + nlb - lba))
            outstanding += 1
            if outstanding == 32:
                qpair.waitdone(32)
                outstanding = 0
    if outstanding:
        qpair.waitdone(outstanding)


def trim_us(nvme0n1, qpair, ranges):
    """Latency of one Dataset Management (deallocate) with `ranges` [(slba, nlb)], µs."""
    buf = Buffer(4096, "dsm ranges")
    for i, (slba, nlb) in enumerate(ranges):
        buf.set_dsm_range(i, slba, nlb)
    t = time.perf_counter()
    nvme0n1.dsm(qpair, buf, len(ranges)).waitdone()
    return (time.perf_counter() - t) * 1e6


def test_trim_latency(nvme0, nvme0n1, qpair, id_ctrl, bench, lbas):
    """Latency of trim (Dataset Management, deallocate) of one range, many ranges, the drive.

    Measures: latency of each trim, µs, per case (series "trim latency <case>", x = repeat):
    one 4 KiB range, one 4 MiB range, 256 ranges of 8 LBAs, 256 ranges of 512 LBAs, the whole
    used part of the drive in 256 ranges.

    Steps:
    1. Skip unless the drive supports Dataset Management (ONCS bit 2).
    2. For each case, `cmd_repeats` times: write the ranges (not for the whole drive), then
       time one DSM command with attribute deallocate.
    3. Verdict: the median latency of each case.

    Parameters: cmd_repeats (10), max_bytes.
    """
    if not id_ctrl.oncs & 0x4:
        pytest.skip("Dataset Management not supported (ONCS bit 2)")
    four_k = blocks(nvme0n1, 4096)
    four_m = blocks(nvme0n1, 4 << 20)
    whole = -(-lbas // 256)
    cases = {
        "one 4k range": [(0, four_k)],
        "one 4M range": [(0, four_m)],
        "256 ranges of 8 LBAs": [(i * 64, 8) for i in range(256)],
        "256 ranges of 512 LBAs": [(i * 1024, 512) for i in range(256)],
        "whole drive": [(i * whole, min(whole, lbas - i * whole)) for i in range(256)],
    }
    medians = {}
    for name, wanted in cases.items():
        ranges = [(s, n) for s, n in wanted if n > 0 and s + n <= lbas]
        if not ranges:
            continue
        times = []
        for _ in range(bench.cmd_repeats):
            if name != "whole drive":
                write_ranges(nvme0, nvme0n1, qpair, ranges)
            times.append(trim_us(nvme0n1, qpair, ranges))
        log_series(f"trim latency {name}", times, unit="us")
        medians[name] = statistics.median(times)
    assert medians, "no trim case fits the drive"
    verdict(None, "trim latency: " + ", ".join(f"{k} {v:.0f} us" for k, v in medians.items()))


def test_format_latency(nvme0, nvme0n1, id_ctrl, bench):
    """Latency of Format NVM (no secure erase) of the namespace, in its current LBA format.

    Measures: the time of each format, ms (series "format latency").

    Steps:
    1. Skip unless the drive supports Format NVM (OACS bit 1).
    2. `cmd_repeats` times: format the namespace with its current data size, timing it.
    3. Verdict: the median and the longest.

    Parameters: cmd_repeats (10).
    """
    if not id_ctrl.oacs & 0x2:
        pytest.skip("Format NVM not supported (OACS bit 1)")
    times = []
    for _ in range(bench.cmd_repeats):
        t = time.perf_counter()
        nvme0n1.format(nvme0n1.sector_size)
        times.append((time.perf_counter() - t) * 1e3)
    log_series("format latency", times, unit="ms")
    verdict(
        None, f"format latency: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms"
    )


@pytest.mark.parametrize("kind", ["clean", "dirty"])
def test_time_to_ready(pcie, nvme0, nvme0n1, subsystem, bench, lbas, kind):
    """Time to ready after a clean (shutdown notification) or dirty (power loss) power cycle.

    Measures: per repeat, the time from power on until the controller is initialised (enable,
    CSTS.RDY, identify, queues) and until the first read of the last LBA completes (media
    ready), ms (series "ready time", "media ready time").

    Steps:
    1. Skip unless the power can be switched (the simulated SSD, or PYNVME_POWER_OFF/ON).
    2. `ready_repeats` times: 4 KiB random writes at QD 64 for `ready_write_seconds`; power
       off (clean: after a normal shutdown notification); wait `ready_off_seconds`; power on
       and time the controller's initialisation and a read of the last LBA.
    3. Verdict: median and longest times.

    Parameters: ready_repeats (10), ready_write_seconds (10), ready_off_seconds (10).
    """
    power_control(pcie)
    ready, media = [], []
    buf = Buffer(nvme0n1.sector_size)
    for _ in range(bench.ready_repeats):
        r = (
            nvme0n1.ioworker(
                io_size=blocks(nvme0n1, 4096),
                lba_random=True,
                read_percentage=0,
                region_end=lbas,
                qdepth=64,
                time=bench.ready_write_seconds,
            )
            .start()
            .close()
        )
        assert r.error == 0, f"writes before the power cycle: error {r.error:#06x}"
        subsystem.poweroff(clean=kind == "clean")
        time.sleep(bench.ready_off_seconds)
        subsystem.poweron()
        t = time.perf_counter()
        nvme0.reset()
        ready.append((time.perf_counter() - t) * 1e3)
        q = Qpair(nvme0, 2)
        try:
            nvme0n1.read(q, buf, nvme0n1.id_ns().nsze - 1).waitdone()
        finally:
            q.delete()
        media.append((time.perf_counter() - t) * 1e3)
    log_series("ready time", ready, unit="ms")
    log_series("media ready time", media, unit="ms")
    verdict(
        None,
        f"time to ready after a {kind} power cycle: median {statistics.median(ready):.1f} ms "
        f"(max {max(ready):.1f}), media ready median {statistics.median(media):.1f} ms",
    )
