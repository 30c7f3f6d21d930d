"""Steady state: random mixes after preconditioning with latency percentiles, the IOPS versus
latency curve over queue depths, IOPS consistency, and sequential speed at 10 % and 50 % fill."""

import pytest
from benchlib import blocks, human, iops, mbps, sample_worker, verdict

from nvme import *
from nvme.report import log_series

pytestmark = pytest.mark.device

#: Latency percentiles of the steady-state table.
PERCENTILES = (50, 90, 99, 99.9, 99.99, 99.999)


def precondition(nvme0, nvme0n1, region, seconds):
    """Fill the region sequentially once, then write it at random (4 KiB, QD 64) for
    `seconds` (if not 0): the drive's mapping is then as fragmented as the workload makes it."""
    io = blocks(nvme0n1, min(128 << 10, nvme0.mdts))
    r = (
        nvme0n1.ioworker(
            io_size=io,
            lba_random=False,
            read_percentage=0,
            region_end=region // io * io,
            qdepth=32,
        )
        .start()
        .close()
    )
    assert r.error == 0, f"precondition fill: error {r.error:#06x}"
    if not seconds:
        return
    r = (
        nvme0n1.ioworker(
            io_size=blocks(nvme0n1, 4096),
            lba_random=True,
            read_percentage=0,
            region_end=region,
            qdepth=64,
            time=seconds,
        )
        .start()
        .close()
    )
    assert r.error == 0, f"precondition random writes: error {r.error:#06x}"


def random_run(nvme0n1, region, read_percentage, qdepth, seconds, percentiles=PERCENTILES):
    """One 4 KiB random run; returns (result, {percentile: µs})."""
    pct = dict.fromkeys(percentiles, 0)
    r = (
        nvme0n1.ioworker(
            io_size=blocks(nvme0n1, 4096),
            lba_random=True,
            read_percentage=read_percentage,
            region_end=region,
            qdepth=qdepth,
            time=seconds,
            output_percentile_latency=pct,
        )
        .start()
        .close()
    )
    assert r.error == 0, f"4k random {read_percentage}% read QD{qdepth}: error {r.error:#06x}"
    return r, pct


def test_steady_state_read_ratios(nvme0, nvme0n1, bench, lbas):
    """Steady-state 4 KiB random performance at read ratios 100/90/70/50/30/0 %.

    Measures: per read ratio, IOPS and latency percentiles 50, 90, 99, 99.9, 99.99, 99.999
    (series "IOPS by read ratio" and "p<N> latency by read ratio", x = read %); each run's
    per-second and latency files.

    Steps:
    1. Precondition: fill `steady_region_fraction` of the drive sequentially, then 4 KiB
       random writes there for `steady_precondition_seconds`.
    2. For each ratio of `steady_read_ratios`: 4 KiB random at QD 64 over that region for
       `steady_seconds`, with latency percentiles.
    3. Log the series and the verdict (IOPS and p99.9 per ratio).

    Parameters: steady_precondition_seconds (1800), steady_seconds (100),
    steady_read_ratios (100, 90, 70, 50, 30, 0), steady_region_fraction (0.2).
    """
    region = max(blocks(nvme0n1, 1 << 20), int(lbas * bench.steady_region_fraction))
    precondition(nvme0, nvme0n1, region, bench.steady_precondition_seconds)
    rows = []
    for ratio in bench.steady_read_ratios:
        r, pct = random_run(nvme0n1, region, ratio, 64, bench.steady_seconds)
        rows.append((ratio, iops(r), pct))
    ratios = [row[0] for row in rows]
    log_series("IOPS by read ratio", [row[1] for row in rows], x=ratios, unit="IOPS")
    for p in PERCENTILES:
        log_series(
            f"p{p:g} latency by read ratio", [row[2][p] for row in rows], x=ratios, unit="us"
        )
    text = "; ".join(f"{ra}% read {human(io)} IOPS p99.9 {pc[99.9]:.0f} us" for ra, io, pc in rows)
    verdict(None, f"steady state 4k random QD64: {text}")


def test_iops_latency_curve(nvme0, nvme0n1, bench, lbas):
    """IOPS versus latency of 4 KiB random reads over queue depths.

    Measures: per queue depth, IOPS, average and 99th percentile latency (series "IOPS by
    queue depth", "latency by IOPS": average latency at each IOPS point, the curve).

    Steps:
    1. Write the region (`steady_region_fraction` of the drive) once so reads hit data.
    2. For each queue depth of `curve_qdepths` (limited by CAP.MQES): 4 KiB random reads for
       `curve_seconds`.
    3. Log the series and the verdict: the knee (the highest IOPS reached and its depth).

    Parameters: curve_qdepths (1 .. 256), curve_seconds (30), steady_region_fraction.
    """
    region = max(blocks(nvme0n1, 1 << 20), int(lbas * bench.steady_region_fraction))
    precondition(nvme0, nvme0n1, region, 0)
    mqes = nvme0.cap & 0xFFFF
    depths = sorted({min(q, mqes) for q in bench.curve_qdepths})
    points = []
    for qd in depths:
        r, pct = random_run(nvme0n1, region, 100, qd, bench.curve_seconds, (99,))
        points.append((qd, iops(r), r.latency_average_us, pct[99]))
    log_series("IOPS by queue depth", [p[1] for p in points], x=depths, unit="IOPS")
    log_series("latency by IOPS", [p[2] for p in points], x=[p[1] for p in points], unit="us")
    log_series("p99 latency by queue depth", [p[3] for p in points], x=depths, unit="us")
    best = max(points, key=lambda p: p[1])
    assert all(p[1] > 0 for p in points), f"a queue depth completed no IO: {points}"
    verdict(
        None,
        f"4k random read curve: QD1 {human(points[0][1])} IOPS {points[0][2]:.0f} us; "
        f"best QD{best[0]} {human(best[1])} IOPS {best[2]:.0f} us; "
        f"QD{points[-1][0]} {human(points[-1][1])} IOPS {points[-1][2]:.0f} us",
    )


def test_iops_consistency(nvme0, nvme0n1, bench, lbas):
    """IOPS consistency of sustained 4 KiB random writes.

    Measures: IOPS in each `consistency_interval` (series "write IOPS"), and the consistency:
    the IOPS at the 99th percentile of the slowest intervals divided by the average (1.0 is
    perfectly steady).

    Steps:
    1. 4 KiB random writes at QD 32 over the used part of the drive for
       `consistency_seconds`, sampling the IO count every `consistency_interval`.
    2. Consistency from the samples; verdict PASS when it reaches `consistency_target`.

    Parameters: consistency_seconds (1200), consistency_interval (1 s), consistency_target
    (0.5; SNIA's enterprise steady-state criterion is 0.9).
    """
    w = nvme0n1.ioworker(
        io_size=blocks(nvme0n1, 4096),
        lba_random=True,
        read_percentage=0,
        region_end=lbas,
        qdepth=32,
        time=bench.consistency_seconds,
    ).start()
    try:
        samples = list(sample_worker(w, bench.consistency_interval))
    finally:
        r = w.close()
    assert r.error == 0, f"4k random write: error {r.error:#06x}"
    assert len(samples) >= 3, "fewer than three samples: shorten consistency_interval"
    values = [s[1] for s in samples]
    log_series("write IOPS", values, x=[s[0] for s in samples], unit="IOPS")
    ordered = sorted(values, reverse=True)
    slow = ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)]
    consistency = slow / (sum(values) / len(values))
    ok = consistency >= bench.consistency_target
    verdict(
        ok,
        f"iops consistency 4k random write QD32: {consistency:.2f} (target "
        f"{bench.consistency_target}), average {human(sum(values) / len(values))} IOPS",
    )
    assert ok, f"IOPS consistency {consistency:.2f} below {bench.consistency_target}"


def test_sequential_speed_at_fill(nvme0, nvme0n1, bench, lbas):
    """Sequential read and write speed with the drive 10 % and 50 % full.

    Measures: 128 KiB sequential read MB/s over the filled part and write MB/s just beyond
    it, at each fill level (series "sequential read by fill", "sequential write by fill",
    x = fill %).

    Steps:
    1. Write sequentially from LBA 0 up to 10 % of the drive.
    2. Read the filled part sequentially (QD 16) for `seqfill_seconds`; write sequentially
       beyond it for `seqfill_seconds`.
    3. Fill up to 50 % and measure again.
    4. Verdict: the speeds and the read ratio 50 %/10 % (reads should not drop with fill).

    Parameters: seqfill_seconds (30), max_bytes.
    """
    io = blocks(nvme0n1, min(128 << 10, nvme0.mdts))
    filled = 0
    reads, writes = [], []
    for level in (10, 50):
        target = lbas * level // 100 // io * io
        if target > filled:
            r = (
                nvme0n1.ioworker(
                    io_size=io,
                    lba_random=False,
                    read_percentage=0,
                    region_start=filled,
                    region_end=target,
                    qdepth=32,
                )
                .start()
                .close()
            )
            assert r.error == 0, f"fill to {level}%: error {r.error:#06x}"
            filled = target
        common = dict(io_size=io, lba_random=False, qdepth=16, time=bench.seqfill_seconds)
        r = nvme0n1.ioworker(read_percentage=100, region_end=filled, **common).start().close()
        assert r.error == 0, f"read at {level}% fill: error {r.error:#06x}"
        reads.append(mbps(r, nvme0n1.sector_size))
        r = (
            nvme0n1.ioworker(
                read_percentage=0, region_start=filled, region_end=lbas // io * io, **common
            )
            .start()
            .close()
        )
        assert r.error == 0, f"write at {level}% fill: error {r.error:#06x}"
        writes.append(mbps(r, nvme0n1.sector_size))
    log_series("sequential read by fill", reads, x=[10, 50], unit="MB/s")
    log_series("sequential write by fill", writes, x=[10, 50], unit="MB/s")
    verdict(
        None,
        f"sequential 128k at 10%/50% fill: read {reads[0]:.0f}/{reads[1]:.0f} MB/s "
        f"(ratio {reads[1] / reads[0]:.2f}), write {writes[0]:.0f}/{writes[1]:.0f} MB/s",
    )
