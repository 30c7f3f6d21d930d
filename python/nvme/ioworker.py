"""The IO generator: `Namespace.ioworker(...)`, pynvme's and PyNVMe3's `ioworker`.

Each worker is a native thread of the driver with its own IO queue pair; the script's thread
stays free while it runs (admin commands, ns.cmd IO, resets, power cycles). Workers go through
the same LBA locks and data verification as ns.cmd, shared with the script and every other
worker, so overlapping workers never report a false miscompare::

    with nvme0n1.ioworker(io_size=8, lba_random=True, read_percentage=0, time=10) as w:
        while w.running:
            time.sleep(1)
    r = w.close()   # the result; `with` already closed it, close() returns it again
    print(r.io_count_write, r.latency_average_us)

Parameters follow PyNVMe3 (keywords only); differences from pynvme and PyNVMe3 are in the
README ("The IO generator").
"""

from __future__ import annotations

import logging
import os
import random
import sys
import threading
import warnings
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from nvme._native import NvmeArgumentError, _IOWorker, _StartGate

logger = logging.getLogger(__name__)

#: Seeds of workers given no `seed`: reseeded by `nvme.srand()`, so runs repeat.
_seeds = random.Random()

#: Percentiles every result carries (fio's default list), beside those a script asks for.
DEFAULT_PERCENTILES = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.5, 99.9, 99.95, 99.99)

#: Workers started and not yet closed (`close()` returned), for the live monitor's thread.
_live: weakref.WeakSet[IOWorker] = weakref.WeakSet()
_live_lock = threading.Lock()


def live_workers() -> list[IOWorker]:
    """The workers started and not yet closed (a dropped worker is gone too), by qid."""
    with _live_lock:
        workers = list(_live)
    return sorted(workers, key=lambda w: w.qid)


def reseed(seed: int) -> None:
    """Make the seeds of later workers (those given no `seed`) follow `seed`."""
    _seeds.seed(seed)


class Result(dict):
    """An ioworker's result: a dict whose keys are also attributes (`r.io_count_read`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


def _bad(arg: str, msg: str) -> Exception:
    return NvmeArgumentError(f"{arg}: {msg}")


def _weights(io_size: Any) -> dict[int, int]:
    """{size: weight} from pynvme's forms of `io_size`: int, list, range or dict."""
    if isinstance(io_size, bool):
        raise _bad("io_size", "an int, list, range or {size: weight} dict, not a bool")
    if isinstance(io_size, int):
        weights = {io_size: 1}
    elif isinstance(io_size, Mapping):
        weights = dict(io_size)
    elif isinstance(io_size, Iterable):
        weights = dict.fromkeys(io_size, 1)
    else:
        raise _bad("io_size", f"{io_size!r} is not an int, list, range or {{size: weight}} dict")
    if not weights:
        raise _bad("io_size", "no IO size given")
    for size, weight in weights.items():
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise _bad("io_size", f"{size!r}: io_size cannot be 0 (sizes are 1..65536 blocks)")
        if size > 65536:
            raise _bad("io_size", f"{size}: io_size is a 16bit-field in commands (1..65536)")
        if not isinstance(weight, int) or weight < 0:
            raise _bad("io_size", f"weight {weight!r} of size {size} is not an int >= 0")
    return weights


def _aligns(lba_align: Any, n: int) -> list[int]:
    """One alignment per IO size from `lba_align`: None (1), an int, or a list."""
    if lba_align is None:
        return [1] * n
    if isinstance(lba_align, int) and not isinstance(lba_align, bool):
        aligns = [lba_align] * n
    else:
        aligns = list(lba_align)
        if len(aligns) != n:
            raise _bad("lba_align", "size and align not match: one alignment per io_size")
    for a in aligns:
        if not isinstance(a, int) or a <= 0:
            raise _bad("lba_align", f"{a!r}: lba_align cannot be 0")
    return aligns


def _sizes(io_size: Any, lba_align: Any) -> list[tuple[int, int, int]]:
    """(nlb, align, weight) for each IO size."""
    weights = _weights(io_size)
    aligns = _aligns(lba_align, len(weights))
    return [(s, a, w) for (s, w), a in zip(weights.items(), aligns)]


def _sequence(p: dict[str, Any]) -> list[tuple[int, int, int, int]] | None:
    """`io_sequence` as (slba, nlb, opcode, time_sent_us) tuples, checked."""
    sequence = p["io_sequence"]
    if sequence is None:
        return None
    if p["iops"]:
        raise _bad("iops", "run sequence instead of fixed iops workload")
    try:
        sequence = [(int(s), int(n), int(o), int(t)) for s, n, o, t in sequence]
    except (TypeError, ValueError) as e:
        raise _bad("io_sequence", f"entries are (slba, nlb, opcode, time_sent_us): {e}") from None
    if not sequence:
        raise _bad("io_sequence", "is empty")
    return sequence


def _distribution(dist: Any, lba_random: int) -> list[int] | None:
    if dist is None:
        return None
    dist = list(dist)
    if len(dist) != 100:
        raise _bad("distribution", "distribution on 100 equal sections")
    if sum(dist) != 10000:
        raise _bad("distribution", "distribute 10000 IO on 100 sections")
    if lba_random != 100:
        raise _bad("distribution", "distribution has to be all random IO")
    return dist


def _check_time(t: Any) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float)) or t < 0:
        raise _bad("time", f"{t!r} is not a number of seconds >= 0")
    if t > 1000 * 3600:
        raise _bad("time", "worker needs a rest :) (at most 1000 hours)")
    return float(t)


def _ops(read_percentage: int, op_percentage: Mapping[int, int] | None) -> list[tuple[int, int]]:
    if op_percentage is None:
        if not isinstance(read_percentage, int) or not 0 <= read_percentage <= 100:
            raise _bad("read_percentage", f"{read_percentage!r}: read percentage is 0..100")
        ops = {2: read_percentage, 1: 100 - read_percentage}
    else:
        if not isinstance(op_percentage, Mapping) or not op_percentage:
            raise _bad("op_percentage", "op_percentage definition error: {opcode: percent}")
        ops = dict(op_percentage)
        for op, pct in ops.items():
            if not (isinstance(op, int) and 0 <= op <= 0xFF):
                raise _bad("op_percentage", f"opcode {op!r} is not 0..255")
            if not (isinstance(pct, int) and pct >= 0):
                raise _bad("op_percentage", f"percentage {pct!r} of opcode {op} is not an int")
        if sum(ops.values()) != 100:
            raise _bad(
                "op_percentage",
                f"op_percentage definition error: percentages sum to {sum(ops.values())}, not 100",
            )
    return [(op, pct) for op, pct in ops.items() if pct > 0]


def _lba_random(lba_random: Any) -> int:
    if isinstance(lba_random, bool):
        return 100 if lba_random else 0
    if not isinstance(lba_random, int):
        raise _bad("lba_random", f"{lba_random!r}: lba_random is a percentage, int")
    if not 0 <= lba_random <= 100:
        raise _bad("lba_random", f"{lba_random}: lba_random is a percentage, 0-100")
    return lba_random


class IOWorker:
    """One IO generator on a namespace; made by `Namespace.ioworker(...)`, not directly.

    `start()` starts it (its queue pair is created then: errors such as no free IO queue raise
    there) and returns it; `close()` waits for its end and returns the result; `running` tells
    whether it still runs. As a context manager, it starts on entry and closes on exit.
    """

    def __init__(self, namespace: Any, params: dict[str, Any]) -> None:
        self._params = params
        self._ns = namespace
        p = params
        seconds = _check_time(p["time"])
        sequence = _sequence(p)
        if sequence is not None:
            sizes, ops, lba_random = [(1, 1, 1)], [(2, 100)], 0
        else:
            sizes = _sizes(p["io_size"], p["lba_align"])
            ops = _ops(p["read_percentage"], p["op_percentage"])
            lba_random = _lba_random(p["lba_random"])
        dist = _distribution(p["distribution"], lba_random)
        pct = p["output_percentile_latency"]
        for k in pct or ():
            if not 0 < k < 100:
                raise _bad("output_percentile_latency", f"{k}: percentile should be in (0, 100)")
        cmdlog_list = p["output_cmdlog_list"]
        seed = p["seed"]
        if seed is None:
            seed = _seeds.getrandbits(64)
        one_pass = (
            sequence is None
            and lba_random == 0
            and len(sizes) == 1
            and not seconds
            and not p["io_count"]
            and not p["lba_count"]
        )
        self._seed = seed
        self._core = _IOWorker(
            namespace,
            io_sizes=sizes,
            ops=ops,
            lba_random=lba_random,
            lba_start=p["lba_start"],
            lba_step=p["lba_step"],
            sgl_percentage=p["sgl_percentage"],
            qdepth=p["qdepth"],
            qprio=p["qprio"],
            region_start=p["region_start"],
            region_end=min(p["region_end"], 2**64 - 1),
            iops=p["iops"],
            io_count=p["io_count"],
            lba_count=p["lba_count"],
            time=seconds or None,
            io_flags=p["io_flags"],
            distribution=dist,
            ptype=p["ptype"],
            pvalue=p["pvalue"],
            io_sequence=sequence,
            slow_latency_us=p["slow_latency"],
            exit_on_error=p["exit_on_error"],
            cpu_id=p["cpu_id"],
            seed=seed,
            per_second=True,
            latency_distribution=pct is not None,
            latency_opcode=p["output_percentile_latency_opcode"],
            cmdlog=len(cmdlog_list) if cmdlog_list is not None else 0,
            cmdlog_error_only=p["cmdlog_error_only"],
            one_pass=one_pass,
            fw_debug=p["fw_debug"],
        )
        self._started = False
        self._result: Result | None = None
        self._progress_stop = threading.Event()
        self._progress_thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> IOWorker:
        """Start the worker (its queue pair is created now); returns the worker."""
        return self._start(None)

    @staticmethod
    def start_together(*workers: IOWorker) -> list[IOWorker]:
        """Start `workers` so that they send their first IO at the same moment: each one's
        queue pair and buffers are made first, then all go. Returns them, as a list.

        If one cannot start (no free queue ...), those already made are stopped and closed
        before the error is raised.
        """
        gate = _StartGate()
        started: list[IOWorker] = []
        try:
            for w in workers:
                started.append(w._start(gate))
        except BaseException:
            for w in started:
                w.stop()
            gate.open()
            for w in started:
                w.close()
            raise
        gate.open()
        return started

    def _start(self, gate: Any) -> IOWorker:
        if self._started:
            raise _bad("start", "the ioworker was already started")
        self._core.start(gate)
        self._started = True
        with _live_lock:
            _live.add(self)
        self._start_progress()
        return self

    def _start_progress(self) -> None:
        """A status line on the terminal while the worker runs (nothing without a terminal)."""
        try:
            # rich is imported only when a worker runs on a terminal.
            from nvme.report import Progress  # noqa: PLC0415
        except ImportError:
            return
        try:
            if not sys.stdout.isatty():
                return
        except (AttributeError, ValueError):
            return
        progress = Progress(float(self._params["time"] or 0))

        def run() -> None:
            with progress:
                if not progress.enabled:
                    return
                last = self._core.snapshot()
                while not self._progress_stop.wait(1.0) and self._core.running:
                    now = self._core.snapshot()
                    dt = max(now["elapsed"] - last["elapsed"], 1e-9)
                    n = (now["reads"] + now["writes"] + now["others"]) - (
                        last["reads"] + last["writes"] + last["others"]
                    )
                    lat = now["latency_sum_ns"] - last["latency_sum_ns"]
                    progress.update(
                        read_iops=(now["reads"] - last["reads"]) / dt,
                        write_iops=(now["writes"] - last["writes"]) / dt,
                        mbps=(now["bytes"] - last["bytes"]) / dt / 1e6,
                        lat_avg_us=lat / n / 1000 if n else 0.0,
                        lat_max_us=now["latency_max_ns"] / 1000,
                        elapsed=now["elapsed"],
                    )
                    last = now

        self._progress_thread = threading.Thread(target=run, name="ioworker-progress", daemon=True)
        self._progress_thread.start()

    @property
    def running(self) -> bool:
        """Whether the worker still sends or waits for IO (False before `start()`)."""
        return self._core.running

    @property
    def qid(self) -> int:
        """Queue id of the worker's qpair (0 before `start()`)."""
        return self._core.qid

    @property
    def seed(self) -> int:
        """The seed of this run: give it as `seed=` to repeat the run."""
        return self._seed

    def stop(self) -> None:
        """Ask the worker to stop sending; `close()` returns once its IO completed."""
        self._core.stop()

    def progress(self) -> dict[str, float]:
        """Counters since the start, while it runs: reads, writes, others, bytes,
        latency_sum_ns, latency_max_ns, aborted, outstanding, elapsed (seconds)."""
        return dict(self._core.snapshot())

    def close(self) -> Result:
        """Wait for the worker to end and return its result (again on later calls).

        Raises the pynvme warnings: "ioworker device respond an ERROR status: SCT/SC" for a
        failing IO, "ioworker host ERROR N: text" when the host ended the run; logs each data
        miscompare. The output parameters given to `ioworker()` are filled here.
        """
        if self._result is not None:
            return self._result
        if not self._started:
            raise _bad("close", "the ioworker was not started: call start() first")
        p = self._params
        pct = p["output_percentile_latency"]
        wanted = sorted({float(k) for k in (pct or ())} | set(map(float, DEFAULT_PERCENTILES)))
        try:
            r = Result(self._core.join(wanted))
        finally:
            with _live_lock:
                _live.discard(self)
            self._progress_stop.set()
            if self._progress_thread is not None:
                self._progress_thread.join()
        self._result = r
        self._fill_outputs(r)
        if p["fw_debug"] and r["error"]:
            self._fw_debug_exit(r)
        self._report(r)
        self._record(r)
        return r

    def __enter__(self) -> IOWorker:
        return self.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._started:
            if exc_type is not None:
                self.stop()
            self.close()

    # -- outputs -----------------------------------------------------------------------------

    def _fill_outputs(self, r: Result) -> None:
        p = self._params
        per_second = r.pop("io_per_second")
        r["io_count_per_second"] = per_second
        out = p["output_io_per_second"]
        if out is not None:
            out.clear()
            out.extend(per_second)
            r["iops_consistency"] = self.iops_consistency() if per_second else None
        pct = p["output_percentile_latency"]
        if pct is not None:
            for k in list(pct):
                pct[k] = r["latency_percentiles"][float(k)]
        else:
            r["latency_distribution"] = None
        ops = p["op_percentage"]
        if isinstance(ops, dict):
            counts = dict(r["op_counts"])
            for op in list(ops):
                ops[op] = counts.get(op, 0)
        cmdlog = p["output_cmdlog_list"]
        log = r.pop("cmdlog")
        if cmdlog is not None:
            entries = log[-len(cmdlog) :] if cmdlog else []
            pad = [(0, 0, 0, 0, 0, 0)] * (len(cmdlog) - len(entries))
            cmdlog[:] = entries + pad

    def _report(self, r: Result) -> None:
        for m in r["miscompares"]:
            logger.error(m)
        for a in r["anomalies"]:
            warnings.warn(a, UserWarning, stacklevel=3)
        for n in r["notes"]:
            logger.warning("ioworker: %s", n)
        for e in r["slow_ios"]:
            logger.debug(
                "slow IO: slba %d nlb %d opcode %#x sent %d us completed %d us status %#x", *e
            )
        if r["slow_count"]:
            warnings.warn(
                f"ioworker: {r['slow_count']} IOs slower than {self._params['slow_latency']} us",
                UserWarning,
                stacklevel=3,
            )
        if r["host_error"]:
            warnings.warn(
                f"ioworker host ERROR {r['host_error']}: {r['host_error_text']}",
                UserWarning,
                stacklevel=3,
            )
        if r["error"]:
            sct, sc = r["error"] >> 8, r["error"] & 0xFF
            logger.warning("ioworker error happen in cpl, error 0x%04x", r["error"])
            warnings.warn(
                f"ioworker device respond an ERROR status: {sct:02x}/{sc:02x}",
                UserWarning,
                stacklevel=3,
            )

    def _fw_debug_exit(self, r: Result) -> None:
        """pynvme's `fw_debug`: the run ended on a failing IO, so the test process ends now,
        leaving the drive as it is (the worker's queue pair too) for the firmware's debugger.
        Exit status: the error's low byte (SC), or 1."""
        sct, sc = r["error"] >> 8, r["error"] & 0xFF
        logger.critical(
            "ioworker fw_debug: the device responded an ERROR status %02x/%02x; the test "
            "process exits now, the drive and the worker's qpair left as they are",
            sct,
            sc,
        )
        for n in r["notes"]:
            logger.critical("ioworker: %s", n)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(sc or 1)

    def _record(self, r: Result) -> None:
        """Hand the run to the run report, when the report module is there."""
        try:
            # The report needs matplotlib only when it draws: imported when a run ends.
            from nvme import report  # noqa: PLC0415
        except ImportError:
            return
        record = getattr(report, "record_ioworker", None)
        if record is not None:
            args = {k: v for k, v in self._params.items() if not k.startswith("output_")}
            result = dict(r)
            for key, table in r.items():
                if key.startswith("latency_percentiles"):
                    result[key] = {f"{k:g}": v for k, v in table.items()}
            record(args, result)

    def iops_consistency(self, slowest_percentage: float = 99.9) -> float:
        """The per-second IO count at `slowest_percentage` (seconds sorted from the fastest
        down) divided by the average: 1.0 is perfectly steady. Needs `output_io_per_second`."""
        if self._result is None:
            raise _bad("iops_consistency", "close() the ioworker first")
        data = self._result.get("io_count_per_second")
        if not data or self._params["output_io_per_second"] is None:
            raise _bad("output_io_per_second", "iops consistency data is not collected")
        v = sorted(data, reverse=True)
        i = min(int(len(v) * slowest_percentage) // 100, len(v) - 1)
        mean = sum(v) / len(v)
        return v[i] / mean if mean else 0.0
