"""Write cache (SLC) behaviour: a sequential fill of the drive shows the cache phase and the
sustained phase; idle time gives the cache back (background flush), more with a longer rest."""

import statistics
import time

import pytest
from benchlib import blocks, sampled, verdict

from nvme import *
from nvme.report import log_series

pytestmark = pytest.mark.device


def sustained_speed(speeds):
    """The sustained speed of a write run: the median of its last half."""
    return statistics.median(speeds[len(speeds) // 2 :])


def test_sequential_fill_cache_phases(nvme0, nvme0n1, bench, lbas):
    """Sequential fill of the whole drive: write speed over the capacity written.

    Measures: MB/s in each `fill_interval` (series "fill write bandwidth", x = GB written);
    the cache (SLC) phase's length and speed and the sustained speed after it. The ioworker's
    own per-second CSV and plot are recorded too.

    Steps:
    1. Write the drive once from LBA 0 to its end with 128 KiB (or MDTS) sequential writes at
       QD 32 (stopping after `fill_max_seconds` if set), sampling the bytes written every
       `fill_interval` seconds.
    2. Sustained speed: the median of the second half of the samples; the cache phase: the
       leading samples faster than the midpoint between it and the fastest sample.
    3. Log the series and the verdict: cache phase GB and MB/s, sustained MB/s.

    Parameters: fill_interval (1 s), fill_max_seconds (0: the whole drive; a 2 TB drive at a
    1 GB/s sustained rate takes about 35 min), max_bytes.
    """
    io = blocks(nvme0n1, min(128 << 10, nvme0.mdts))
    r, samples = sampled(
        nvme0n1,
        bench.fill_interval,
        io_size=io,
        lba_random=False,
        read_percentage=0,
        region_end=lbas // io * io,
        lba_count=lbas // io * io,
        qdepth=32,
        time=bench.fill_max_seconds,
    )
    assert r.error == 0, f"fill: error {r.error:#06x}"
    assert len(samples) >= 4, "the fill ended before four samples: shorten fill_interval"
    speeds = [s[1] for s in samples]
    written = [s[2] / 1e3 for s in samples]
    log_series("fill write bandwidth", speeds, x=written, unit="MB/s")
    sustained = sustained_speed(speeds)
    peak = max(speeds)
    n = 0
    if peak > sustained * 1.25:
        while n < len(speeds) and speeds[n] >= (peak + sustained) / 2:
            n += 1
    if n:
        text = (
            f"fill: cache phase {written[n - 1]:.3g} GB at "
            f"{statistics.median(speeds[:n]):.0f} MB/s, then sustained {sustained:.0f} MB/s"
        )
    else:
        text = f"fill: no cache phase seen, {sustained:.0f} MB/s throughout"
    verdict(None, f"{text} ({written[-1]:.3g} GB written)")


def test_cache_recovery_after_idle(nvme0, nvme0n1, bench, lbas):
    """Write cache recovery: after each idle time, how much is written at cache speed.

    Measures: per idle time, the fast stage of a sequential write burst: the bytes written at
    cache speed before the speed drops to the sustained rate (series "fast stage after idle",
    x = idle seconds); each burst's throughput as a series.

    Steps:
    1. Write sequentially for `recovery_burst_seconds` to use up the cache.
    2. For each idle time of `recovery_idle`: send nothing for that long, then write
       sequentially (128 KiB, QD 32) for `recovery_burst_seconds`, sampling the throughput
       every `recovery_interval`.
    3. Sustained speed S: the median of the second halves of the bursts; cache speed F: the
       median of the first quarter of the burst after the longest idle. F below 1.5 S: no
       cache phase is seen, verdict INFO (nothing to judge). Otherwise a burst of B bytes in T
       seconds had a fast stage of (B - S*T) / (1 - S/F) bytes (the bytes beyond what the
       sustained rate gives, at cache speed): robust against single slow samples.
    4. Verdict PASS when the longest idle gives a fast stage at least as long as the shortest
       idle's (within 10 % of the longest): the drive gives its cache back over time.

    Parameters: recovery_idle (60, 120, 180, 240 s), recovery_burst_seconds (60),
    recovery_interval (1 s).
    """
    io = blocks(nvme0n1, min(128 << 10, nvme0.mdts))
    kwargs = dict(io_size=io, lba_random=False, read_percentage=0, region_end=lbas // io * io)
    kwargs.update(qdepth=32, time=bench.recovery_burst_seconds)
    sampled(nvme0n1, bench.recovery_interval, **kwargs)
    bursts = []
    for idle in bench.recovery_idle:
        time.sleep(idle)
        r, samples = sampled(nvme0n1, bench.recovery_interval, **kwargs)
        assert r.error == 0, f"burst after {idle} s: error {r.error:#06x}"
        assert len(samples) >= 2, "a burst gave fewer than two samples"
        bursts.append((r, samples))
        log_series(f"burst after {idle:g} s idle", [s[1] for s in samples], unit="MB/s")
    slow = statistics.median(s[1] for _, ss in bursts for s in ss[len(ss) // 2 :])
    longest = [s[1] for s in bursts[-1][1]]
    fast = statistics.median(longest[: max(1, len(longest) // 4)])
    cached = fast >= 1.5 * slow
    fast_mb = []
    for r, _ in bursts:
        total = r.lba_count_write * nvme0n1.sector_size / 1e6
        extra = total - slow * r.mseconds / 1000
        fast_mb.append(max(0.0, extra / (1 - slow / fast)) if cached else 0.0)
    log_series("fast stage after idle", fast_mb, x=list(bench.recovery_idle), unit="MB")
    stages = ", ".join(f"{i:g}s: {m:.0f} MB" for i, m in zip(bench.recovery_idle, fast_mb))
    if not cached:
        verdict(
            None,
            f"cache recovery after idle: no cache phase seen after {bench.recovery_idle[-1]:g} s "
            f"idle (first quarter {fast:.0f} MB/s, sustained {slow:.0f} MB/s)",
        )
        return
    grows = fast_mb[-1] >= fast_mb[0] - 0.1 * max(fast_mb)
    verdict(
        grows,
        f"cache recovery after idle: fast stage {stages} (cache {fast:.0f} MB/s, "
        f"sustained {slow:.0f} MB/s)",
    )
    assert grows, f"the fast stage shrank with a longer idle time: {stages}"
