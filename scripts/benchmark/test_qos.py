"""Quality of service: latency percentiles of 4 KiB random reads against targets."""

import pytest
from benchlib import blocks, human, iops, verdict

from nvme import *
from nvme.report import log_series

pytestmark = pytest.mark.device


def test_qos_latency_targets(nvme0, nvme0n1, bench, lbas):
    """QoS: 4 KiB random read latency percentiles must stay within their targets.

    Measures: latency percentiles 50 .. 99.999 and those of `qos_targets` (series "read
    latency percentiles", x = percentile), IOPS.

    Steps:
    1. Write the first `fresh_region` bytes once so reads hit data.
    2. 4 KiB random reads at QD `qos_qdepth` over that region for `qos_seconds`.
    3. Verdict PASS when every percentile of `qos_targets` is at or below its target; the
       test fails otherwise, naming the percentiles that missed.

    Parameters: qos_seconds (600), qos_qdepth (32), qos_targets (99 %: 1 ms, 99.9 %: 5 ms,
    99.99 %: 20 ms; `--bench qos_targets=99:500,99.99:2000`).
    """
    region = min(lbas, blocks(nvme0n1, bench.fresh_region))
    io = blocks(nvme0n1, min(128 << 10, nvme0.mdts))
    r = (
        nvme0n1.ioworker(
            io_size=io, lba_random=False, read_percentage=0, region_end=region // io * io, qdepth=32
        )
        .start()
        .close()
    )
    assert r.error == 0, f"prefill: error {r.error:#06x}"
    wanted = {50, 90, 99, 99.9, 99.99, 99.999} | {p for p, _ in bench.qos_targets}
    pct = dict.fromkeys(sorted(wanted), 0)
    r = (
        nvme0n1.ioworker(
            io_size=blocks(nvme0n1, 4096),
            lba_random=True,
            read_percentage=100,
            region_end=region,
            qdepth=min(bench.qos_qdepth, nvme0.cap & 0xFFFF),
            time=bench.qos_seconds,
            output_percentile_latency=pct,
        )
        .start()
        .close()
    )
    assert r.error == 0, f"4k random read: error {r.error:#06x}"
    keys = sorted(pct)
    log_series("read latency percentiles", [pct[k] for k in keys], x=keys, unit="us")
    missed = [(p, pct[p], us) for p, us in bench.qos_targets if pct[p] > us]
    shown = ", ".join(f"p{p:g} {pct[p]:.0f}/{us:.0f} us" for p, us in bench.qos_targets)
    verdict(not missed, f"qos 4k random read QD{bench.qos_qdepth} {human(iops(r))} IOPS: {shown}")
    assert not missed, "latency targets missed: " + ", ".join(
        f"p{p:g} {got:.0f} us > {us:.0f} us" for p, got, us in missed
    )
