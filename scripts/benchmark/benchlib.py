"""Parameters and helpers of the benchmark suite (scripts/benchmark); its conftest.py makes
the fixtures `bench`, `lbas` and `sim` from them.

Every duration, region and target of the suite is a field of `BenchParams`. The defaults are
sized for a real drive (a full run takes hours on a large drive); `--quick` replaces them with
values that run each benchmark in seconds, and `--bench KEY=VALUE` (repeatable) sets any one of
them, e.g. `--bench fresh_seconds=30 --bench qos_targets=99:500,99.99:2000`.

Each benchmark writes its series with `nvme.report.log_series` (CSV and plot in the run's
results folder; ioworkers record their own per-second and latency files) and ends with one
log line `verdict: PASS|FAIL|INFO <what> <numbers>` (logger `benchmark`, level INFO).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from nvme import *
from nvme.report import log_series

logger = logging.getLogger("benchmark")

GiB = 1 << 30
MiB = 1 << 20


@dataclasses.dataclass
class BenchParams:
    """The suite's parameters (seconds, bytes, percentages, µs); `--bench KEY=VALUE` sets one."""

    #: Largest part of the namespace the suite uses, bytes (0: all of it).
    max_bytes: int = 0
    #: Fresh-drive runs: seconds per run and the region they use (bytes from LBA 0).
    fresh_seconds: float = 60
    fresh_region: int = GiB
    #: Sequential fill: seconds between throughput samples; seconds after which the fill stops
    #: early (0: never).
    fill_interval: float = 1.0
    fill_max_seconds: float = 0
    #: Cache recovery: idle times between bursts, seconds; the length of each write burst,
    #: seconds; seconds between throughput samples.
    recovery_idle: tuple[float, ...] = (60, 120, 180, 240)
    recovery_burst_seconds: float = 60
    recovery_interval: float = 1.0
    #: Steady state: random-write preconditioning seconds after the sequential fill, the
    #: measured seconds per read ratio and the read ratios, the region (fraction of the drive).
    steady_precondition_seconds: float = 1800
    steady_seconds: float = 100
    steady_read_ratios: tuple[int, ...] = (100, 90, 70, 50, 30, 0)
    steady_region_fraction: float = 0.2
    #: IOPS-versus-latency curve: queue depths and seconds per depth.
    curve_qdepths: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    curve_seconds: float = 30
    #: IOPS consistency: seconds, sampling interval, target (IOPS at the 99th percentile of
    #: the slowest intervals divided by the average).
    consistency_seconds: float = 1200
    consistency_interval: float = 1.0
    consistency_target: float = 0.5
    #: Sequential speed at fill levels: seconds per measurement.
    seqfill_seconds: float = 30
    #: Trim and format latency: repeats.
    cmd_repeats: int = 10
    #: Time to ready: repeats per kind, seconds of writes before the power cycle, seconds off.
    ready_repeats: int = 10
    ready_write_seconds: float = 10
    ready_off_seconds: float = 10
    #: JEDEC endurance workloads: seconds each.
    endurance_seconds: float = 3600
    #: Reset and power cycle loops: iterations, seconds of verified IO before each event.
    loop_count: int = 100
    loop_io_seconds: float = 5
    #: Write-verify marathon: passes (write the region, read it back with verification) and
    #: the region (fraction of the drive).
    marathon_passes: int = 10
    marathon_fraction: float = 1.0
    #: QoS: seconds, queue depth, and the latency targets (percentile -> µs).
    qos_seconds: float = 600
    qos_qdepth: int = 32
    qos_targets: tuple[tuple[float, float], ...] = (
        (99.0, 1000.0),
        (99.9, 5000.0),
        (99.99, 20000.0),
    )


#: What `--quick` changes: every benchmark in seconds (on the simulated SSD), and the targets.
QUICK = {
    "max_bytes": GiB,
    "fresh_seconds": 1.0,
    "fresh_region": 64 * MiB,
    "fill_interval": 0.1,
    "fill_max_seconds": 3.0,
    "recovery_idle": (0.1, 0.2, 0.4),
    "recovery_burst_seconds": 0.5,
    "recovery_interval": 0.02,
    "steady_precondition_seconds": 0.5,
    "steady_seconds": 0.3,
    "curve_qdepths": (1, 4, 16, 64),
    "curve_seconds": 0.3,
    "consistency_seconds": 2.0,
    "consistency_interval": 0.2,
    "seqfill_seconds": 0.5,
    "cmd_repeats": 3,
    "ready_repeats": 2,
    "ready_write_seconds": 0.5,
    "ready_off_seconds": 0.1,
    "endurance_seconds": 1.0,
    "loop_count": 3,
    "loop_io_seconds": 0.2,
    "marathon_passes": 2,
    "marathon_fraction": 0.05,
    "qos_seconds": 1.0,
    # --quick shows that the suite runs; it measures nothing worth judging. Its targets only
    # catch a device that stops: a loaded 2-core machine stalls threads for 100 ms and more.
    "consistency_target": 0.02,
    "qos_targets": ((99.0, 100_000.0), (99.9, 500_000.0)),
}


def _parse_value(key: str, text: str, default: Any) -> Any:
    """`text` converted to the type of `default` (a tuple: comma-separated; QoS targets:
    `percentile:us,...`)."""
    try:
        if key == "qos_targets":
            pairs = []
            for item in text.split(","):
                p, us = item.split(":")
                pairs.append((float(p), float(us)))
            for p, us in pairs:
                if not 0 < p < 100 or us <= 0:
                    raise ValueError(f"{p}:{us}")
            return tuple(pairs)
        if isinstance(default, tuple):
            kind = type(default[0]) if default else float
            return tuple(kind(v) for v in text.split(",") if v.strip())
        if isinstance(default, int):
            return int(text, 0)
        return float(text)
    except ValueError as e:
        raise pytest.UsageError(f"--bench {key}={text}: not a valid value ({e})") from None


def make_params(quick: bool, settings: list[str]) -> BenchParams:
    """The parameters: defaults, `--quick`'s changes, then each `KEY=VALUE` of `--bench`."""
    p = BenchParams(**QUICK) if quick else BenchParams()
    names = {f.name for f in dataclasses.fields(BenchParams)}
    for item in settings:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or key not in names:
            raise pytest.UsageError(
                f"--bench {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(names))}"
            )
        setattr(p, key, _parse_value(key, text.strip(), getattr(p, key)))
    return p


def power_control(pcie):
    """Skip unless the power can be switched: the simulated SSD, or PYNVME_POWER_OFF/ON."""
    if pcie.sim is None and not (
        os.environ.get("PYNVME_POWER_OFF") and os.environ.get("PYNVME_POWER_ON")
    ):
        pytest.skip("no power control: set PYNVME_POWER_OFF and PYNVME_POWER_ON")


def verdict(passed: bool | None, text: str) -> None:
    """Log the benchmark's one-line verdict: PASS, FAIL, or INFO (measured, nothing judged)."""
    word = "INFO" if passed is None else ("PASS" if passed else "FAIL")
    logger.info("verdict: %s %s", word, text)


def blocks(nvme0n1: Namespace, nbytes: int) -> int:
    """`nbytes` as a number of LBAs of the namespace (at least 1)."""
    return max(1, nbytes // nvme0n1.sector_size)


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23M' (with `unit`)."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suffix}{unit}"
    return f"{n:.3g}{unit}"


def mbps(result: Any, nbytes_per_io: int | None = None) -> float:
    """MB/s (10^6 bytes per second) of an ioworker result."""
    seconds = max(result.mseconds, 1) / 1000
    lba_count = result.lba_count_read + result.lba_count_write
    return lba_count * (nbytes_per_io or 1) / seconds / 1e6


def iops(result: Any) -> float:
    """IOs per second of an ioworker result."""
    return (result.io_count_read + result.io_count_nonread) * 1000 / max(result.mseconds, 1)


def timed_write(nvme0n1: Namespace, start: int, count: int, io_lbas: int, qdepth: int) -> float:
    """Write LBAs [start, start + count) sequentially with `io_lbas`-block IOs; MB/s."""
    t = time.perf_counter()
    r = (
        nvme0n1.ioworker(
            io_size=io_lbas,
            lba_random=False,
            read_percentage=0,
            region_start=start,
            region_end=start + count,
            qdepth=qdepth,
        )
        .start()
        .close()
    )
    elapsed = time.perf_counter() - t
    assert r.error == 0, f"write of LBA {start}..{start + count}: error {r.error:#06x}"
    return r.lba_count_write * nvme0n1.sector_size / elapsed / 1e6


def sampled(nvme0n1: Namespace, interval: float, **kwargs: Any) -> tuple[Any, list[tuple]]:
    """Run one ioworker (`kwargs`) and sample its progress every `interval` seconds.

    Returns its result and the samples `(seconds, MB/s in the interval, MB done so far)`.
    """
    w = nvme0n1.ioworker(**kwargs).start()
    samples = []
    t0 = last_t = time.perf_counter()
    last_b = 0
    try:
        while w.running:
            time.sleep(interval)
            b = int(w.progress()["bytes"])
            now = time.perf_counter()
            if now > last_t and b > last_b:
                samples.append((now - t0, (b - last_b) / (now - last_t) / 1e6, b / 1e6))
            last_t, last_b = now, b
    finally:
        r = w.close()
    return r, samples


def sample_worker(worker: Any, interval: float) -> Iterator[tuple[float, float]]:
    """While `worker` runs: (seconds since start, IOPS in the last interval) every `interval`."""
    t0 = time.perf_counter()
    last_t, last_n = t0, 0.0
    while worker.running:
        time.sleep(interval)
        p = worker.progress()
        n = float(p["reads"] + p["writes"] + p["others"])
        now = time.perf_counter()
        if now > last_t and worker.running:
            yield now - t0, (n - last_n) / (now - last_t)
        last_t, last_n = now, n


def log_and_check_percentiles(name: str, percentiles: dict[float, float]) -> None:
    """Log a latency-percentile table as a series (x: percentile, values: µs)."""
    keys = sorted(percentiles)
    log_series(name, [percentiles[k] for k in keys], x=keys, unit="us")
