"""The IO generator against fio, in the same run: IOPS ratios, verification cost, many workers.

Three measurements, each repeated `--runs` times with the two sides alternating (so a noisy
neighbour hurts both alike), reported as medians:

1. one ioworker, 4 KiB random reads, QD 63, on the simulated SSD's null media (commands complete
   without touching media or data), against `fio --ioengine=null --rw=randread --bs=4k
   --iodepth=63 --thread` (fio's own ceiling: its null engine completes IO at once, in its
   thread); the ratio ioworker IOPS / fio IOPS;
2. the same worker with real data (the in-memory media) writing then reading 4 KiB random
   blocks of a 1 GiB region, with data verification on and off; the ratio on / off;
3. 16 workers (QD 16 each) on null media: total IOPS and the workers' CPU time per IO.

The simulator's device thread is pinned to CPU 0 and the workers to CPU 1 (`cpu_id`), fio to
CPU 1 (`--cpus_allowed=1`). Prints Markdown table rows like the other benchmarks.

    .venv/bin/python bench/ioworker_vs_fio.py [--runs 3] [--secs 3] [--no-header]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import nvme


def sim_threads() -> list[int]:
    out = []
    for task in Path("/proc/self/task").iterdir():
        try:
            if (task / "comm").read_text().strip() == "nvme-sim":
                out.append(int(task.name))
        except OSError:
            continue
    return out


def pin_device() -> bool:
    if len(os.sched_getaffinity(0)) < 2:
        return False
    for tid in sim_threads():
        os.sched_setaffinity(tid, {0})
    return True


def fio_null(secs: float, pin: bool) -> float:
    cmd = [
        "fio",
        "--name=null",
        "--ioengine=null",
        "--rw=randread",
        "--bs=4k",
        "--iodepth=63",
        "--thread",
        "--size=1T",
        "--time_based",
        f"--runtime={secs}",
        "--output-format=json",
    ]
    if pin:
        cmd.append("--cpus_allowed=1")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(json.loads(out)["jobs"][0]["read"]["iops"])


class Device:
    """A simulated SSD with one namespace, its device thread pinned."""

    def __init__(self, uri: str, pin: bool) -> None:
        self.pcie = nvme.Pcie(uri)
        self.nvme0 = nvme.Controller(self.pcie)
        self.ns = nvme.Namespace(self.nvme0, 1)
        self.pinned = pin and pin_device()

    def close(self) -> None:
        self.ns.close()
        self.pcie.close()


def worker_iops(dev: Device, secs: float, **kw) -> tuple[float, float]:
    """IOPS of one worker and its CPU usage."""
    cpu = {"cpu_id": 1} if dev.pinned else {}
    r = dev.ns.ioworker(time=secs, **cpu, **kw).start().close()
    n = r.io_count_read + r.io_count_nonread
    return n / (r.mseconds / 1000), r.cpu_usage


def many_workers(dev: Device, secs: float, count: int) -> tuple[float, float]:
    """Total IOPS of `count` workers and CPU ns per IO."""
    cpu = {"cpu_id": 1} if dev.pinned else {}
    ws = nvme.IOWorker.start_together(
        *(dev.ns.ioworker(io_size=8, qdepth=16, time=secs, **cpu) for _ in range(count))
    )
    rs = [w.close() for w in ws]
    ios = sum(r.io_count_read for r in rs)
    wall = max(r.mseconds for r in rs) / 1000
    cpu_s = sum(r.cpu_usage * r.mseconds / 1000 for r in rs)
    return ios / wall, cpu_s / ios * 1e9


def rate(v: float) -> str:
    return f"{v / 1e6:.2f} M/s" if v >= 1e6 else f"{v / 1e3:.0f} K/s"


def row(name: str, conf: str, values: list[float], fmt=rate, target: str = "") -> str:
    med = statistics.median(values)
    spread = (max(values) - min(values)) / med if med else 0
    return (
        f"| {name} | {conf} | {fmt(med)} | {fmt(min(values))} | {fmt(max(values))} "
        f"| {spread:.0%} | | {target} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--secs", type=float, default=3.0)
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--no-header", action="store_true")
    a = ap.parse_args()
    pin = not a.no_pin
    if not a.no_header:
        print("| benchmark | configuration | median | min | max | spread | ns/cmd | target |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    rows = []

    # 1. one worker against fio's null engine, alternating.
    if shutil.which("fio") is None:
        rows.append("| ioworker vs fio | skipped: fio is not installed | | | | | | |")
    else:
        dev = Device("sim://?null=1", pin)
        ours, theirs, ratios = [], [], []
        for _ in range(a.runs):
            w, _cpu = worker_iops(dev, a.secs, io_size=8, qdepth=63, read_percentage=100)
            f = fio_null(a.secs, pin)
            ours.append(w)
            theirs.append(f)
            ratios.append(w / f)
        dev.close()
        rows.append(row("ioworker", "1 worker, 4K randread QD63, null media", ours))
        rows.append(row("fio", "--ioengine=null randread 4k iodepth 63 --thread", theirs))
        rows.append(
            row(
                "ioworker / fio",
                "ratio per run pair",
                ratios,
                fmt=lambda v: f"{v:.2f}x",
                target=">= 1.0x, aim 1.5x",
            )
        )

    # 2. verification cost with real data.
    dev = Device("sim://", pin)
    region = (1 << 30) // dev.ns.sector_size
    dev.ns.ioworker(
        io_size=8, lba_align=8, lba_random=False, region_end=region, read_percentage=0, qdepth=63
    ).start().close()
    on, off, vratios = [], [], []
    for _ in range(a.runs):
        dev.ns.verify_enable(True)
        v_on, _ = worker_iops(
            dev, a.secs, io_size=8, lba_align=8, region_end=region, read_percentage=50, qdepth=63
        )
        dev.ns.verify_enable(False)
        v_off, _ = worker_iops(
            dev, a.secs, io_size=8, lba_align=8, region_end=region, read_percentage=50, qdepth=63
        )
        on.append(v_on)
        off.append(v_off)
        vratios.append(v_on / v_off)
    dev.close()
    rows.append(row("ioworker verify on", "4K random 50% read, real data, 1 GiB", on))
    rows.append(row("ioworker verify off", "the same", off))
    rows.append(
        row(
            "verify on / off",
            "ratio per run pair",
            vratios,
            fmt=lambda v: f"{v:.2f}x",
            target=">= 0.85x",
        )
    )

    # 3. sixteen workers.
    dev = Device("sim://?null=1", pin)
    totals, cpu_per_io = [], []
    for _ in range(a.runs):
        t, c = many_workers(dev, a.secs, 16)
        totals.append(t)
        cpu_per_io.append(c)
    dev.close()
    rows.append(row("16 ioworkers", "4K randread QD16 each, null media", totals))
    rows.append(
        row(
            "16 ioworkers CPU",
            "worker CPU time per IO",
            cpu_per_io,
            fmt=lambda v: f"{v:.0f} ns",
        )
    )
    for r in rows:
        print(r)
    print(f"ioworker_vs_fio: runs={a.runs} secs={a.secs} pinned={pin}", file=sys.stderr)


if __name__ == "__main__":
    main()
