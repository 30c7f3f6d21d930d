"""Python round trips: `nvme0n1.read(qpair, buf, lba).waitdone()` in a loop, QD 1.

Each iteration crosses into the native module twice (submit, then waitdone with the GIL
released), so this measures the per-command cost a script pays, on top of the driver and the
simulated SSD. Prints one Markdown table row in the format of the Rust benchmarks.

    .venv/bin/python bench/python_roundtrip.py [--runs 5] [--secs 1] [--pciaddr sim://?null=1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import nvme

TARGET = 150e3
CHUNK = 1000


def pin_threads() -> str:
    """Device thread(s) on CPU 0, this thread on CPU 1, as the Rust benchmarks do."""
    if len(os.sched_getaffinity(0)) < 2:
        return "not pinned (1 CPU)"
    sim = []
    for task in Path("/proc/self/task").iterdir():
        try:
            if (task / "comm").read_text().strip() == "nvme-sim":
                sim.append(int(task.name))
        except OSError:
            continue
    try:
        for tid in sim:
            os.sched_setaffinity(tid, {0})
        os.sched_setaffinity(threading.get_native_id(), {1})
    except OSError as e:
        return f"not pinned ({e})"
    return "device thread on CPU 0, host on CPU 1"


def fmt_rate(r: float) -> str:
    if r >= 1e6:
        return f"{r / 1e6:.2f} M/s"
    if r >= 1e3:
        return f"{r / 1e3:.1f} K/s"
    return f"{r:.0f} /s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--secs", type=float, default=1.0)
    ap.add_argument("--warmup", type=float, default=0.3)
    ap.add_argument("--pciaddr", default="sim://?null=1")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--no-header", action="store_true")
    a = ap.parse_args()

    pcie = nvme.Pcie(a.pciaddr)
    nvme0 = nvme.Controller(pcie)
    nvme0n1 = nvme.Namespace(nvme0, 1)
    qpair = nvme.Qpair(nvme0, 64)
    buf = nvme.Buffer(4096)
    lba_count = 4096 // nvme0n1.sector_size
    placement = "not pinned" if a.no_pin else pin_threads()
    print(f"python_roundtrip: {a.pciaddr}, {placement}", file=sys.stderr)

    read = nvme0n1.read

    def chunk(lba: int) -> None:
        for i in range(CHUNK):
            read(qpair, buf, lba + i * lba_count, lba_count).waitdone()

    until = time.perf_counter() + a.warmup
    while time.perf_counter() < until:
        chunk(0)
    rates = []
    for _ in range(a.runs):
        n = 0
        t0 = time.perf_counter()
        while True:
            chunk(n * lba_count)
            n += CHUNK
            elapsed = time.perf_counter() - t0
            if elapsed >= a.secs:
                break
        rates.append(n / elapsed)
    rates.sort()
    med = statistics.median(rates)
    verdict = f"≥ {fmt_rate(TARGET)} " + ("met" if med >= TARGET else "**missed**")
    if not a.no_header:
        print("| benchmark | configuration | median | min | max | spread | ns/cmd | target |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    print(
        f"| Python round trip | read(qpair, buf, lba).waitdone(), 4 KiB, QD 1, null media "
        f"| {fmt_rate(med)} | {fmt_rate(rates[0])} | {fmt_rate(rates[-1])} "
        f"| {(rates[-1] - rates[0]) / med * 100:.1f}% | {1e9 / med:.0f} | {verdict} |"
    )
    nvme0n1.close()
    qpair.delete()
    pcie.close()


if __name__ == "__main__":
    main()
