"""Fresh-drive performance: 4 KiB random and 128 KiB sequential, read and write.

Each run is one ioworker over a small region at the start of the drive; the run's results
folder gets its per-second throughput (`..._ioworker<N>_per_second.csv` and the plot) and its
latency percentiles.
"""

import pytest
from benchlib import blocks, human, iops, mbps, timed_write, verdict

from nvme import *

pytestmark = pytest.mark.device


def prefill(nvme0n1, region, mdts):
    """Write the region once so that reads find mapped data."""
    timed_write(nvme0n1, 0, region, blocks(nvme0n1, min(128 << 10, mdts)), 64)


@pytest.mark.parametrize("rw", ["read", "write"])
def test_fresh_random_4k(nvme0, nvme0n1, bench, lbas, rw):
    """4 KiB random read or write at QD 64 on a fresh drive.

    Measures: IOPS per second (per-second CSV and plot), average IOPS, latency percentiles.

    Steps:
    1. For reads, write the region first (128 KiB sequential) so reads hit mapped data.
    2. Run 4 KiB random IO at QD 64 over the first `fresh_region` bytes for `fresh_seconds`.
    3. Log the verdict: IOPS and the 99.9th percentile latency.

    Parameters: fresh_seconds (60), fresh_region (1 GiB).
    """
    region = min(lbas, blocks(nvme0n1, bench.fresh_region))
    if rw == "read":
        prefill(nvme0n1, region, nvme0.mdts)
    pct = {50: 0, 99: 0, 99.9: 0}
    r = (
        nvme0n1.ioworker(
            io_size=blocks(nvme0n1, 4096),
            lba_random=True,
            read_percentage=100 if rw == "read" else 0,
            region_end=region,
            qdepth=64,
            time=bench.fresh_seconds,
            output_percentile_latency=pct,
        )
        .start()
        .close()
    )
    assert r.error == 0, f"4k random {rw}: error {r.error:#06x}"
    assert r.io_count_read + r.io_count_nonread > 0
    verdict(None, f"4k random {rw} QD64 {human(iops(r))} IOPS, p99.9 {pct[99.9]:.0f} us")


@pytest.mark.parametrize("rw", ["read", "write"])
def test_fresh_sequential_128k(nvme0, nvme0n1, bench, lbas, rw):
    """128 KiB sequential read or write at QD 16 on a fresh drive.

    Measures: MB/s per second (per-second CSV and plot) and on average.

    Steps:
    1. For reads, write the region first so reads hit mapped data.
    2. Run 128 KiB (or MDTS, if smaller) sequential IO at QD 16 over the first `fresh_region`
       bytes, wrapping around, for `fresh_seconds`.
    3. Log the verdict: MB/s.

    Parameters: fresh_seconds (60), fresh_region (1 GiB).
    """
    region = min(lbas, blocks(nvme0n1, bench.fresh_region))
    size = blocks(nvme0n1, min(128 << 10, nvme0.mdts))
    if rw == "read":
        prefill(nvme0n1, region, nvme0.mdts)
    r = (
        nvme0n1.ioworker(
            io_size=size,
            lba_random=False,
            read_percentage=100 if rw == "read" else 0,
            region_end=region,
            qdepth=16,
            time=bench.fresh_seconds,
        )
        .start()
        .close()
    )
    assert r.error == 0, f"128k sequential {rw}: error {r.error:#06x}"
    assert r.io_count_read + r.io_count_nonread > 0
    speed = mbps(r, nvme0n1.sector_size)
    verdict(None, f"128k sequential {rw} QD16 {speed:.0f} MB/s")
