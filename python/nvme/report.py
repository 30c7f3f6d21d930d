"""Run reports: results.json, CSV files, plots and index.html of a test run, and the progress line.

Under pytest, the plugin (`nvme.pytest_plugin`) makes one folder per run,
`results/<date>_<time>_<device>/`, and an active `RunReport` that collects the run there:

* `run.log`: every log record at DEBUG and above, every warning, every test's outcome;
* `junit.xml`: pytest's own JUnit XML (unless `--junitxml` sends it elsewhere);
* `results.json`: one JSON document: run start and end, the device (PCI address and the
  identity from Identify Controller), and every test with its outcome, duration, warnings and
  the ioworkers and series it recorded;
* per ioworker: `<test>_ioworker<N>_per_second.csv`, `<test>_ioworker<N>_latency.csv`,
  `<test>_ioworker<N>_throughput.png` (IOPS and MB/s over time) and
  `<test>_ioworker<N>_latency.png` (latency distribution and percentile curve);
* per series logged by a script: `<test>_series<N>_<name>.csv` and `.png`;
* `index.html`: a summary page that opens from disk, with the plots.

The public API:

* `record_ioworker(args, result)`: the ioworker reports its keyword arguments and its result
  when it closes;
* `log_series(name, values, x=None, unit="")`: a script logs any series for the current test;
* `Progress(total_seconds)`: a status line on the terminal while an ioworker runs.

Outside a run (no pytest, or `--results=` empty) `record_ioworker` and `log_series` record
nothing. matplotlib is imported only when the run has something to plot, rich only when a
progress line is shown.
"""

from __future__ import annotations

import bisect
import csv
import html
import itertools
import json
import logging
import math
import os
import re
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

__all__ = [
    "PERCENTILES",
    "CombinedReport",
    "Progress",
    "RunReport",
    "active_run",
    "compact_distribution",
    "expand_distribution",
    "log_series",
    "percentiles_from_distribution",
    "record_controller",
    "record_ioworker",
]

logger = logging.getLogger(__name__)

#: Latency percentiles reported when the ioworker gives a distribution but no percentiles
#: (fio's default list).
PERCENTILES = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.5, 99.9, 99.95, 99.99)

#: Version of the layout of results.json; it grows when fields change meaning.
RESULTS_FORMAT = 1

#: Version of the layout of the combined results.json of a run on several drives.
COMBINED_FORMAT = 1

#: Lists longer than this in ioworker arguments (an io_sequence, an output list) are kept as
#: their length and first entries in results.json.
MAX_ARG_LIST = 1000

#: Ioworkers of a run that get plots (about half a second each); later ones get their CSV
#: files and their entry in results.json only.
MAX_PLOTTED_IOWORKERS = 100

#: Result keys of an ioworker that are series or distributions, written in their own form.
_SERIES_KEYS = ("io_count_per_second", "read_per_second", "write_per_second", "bytes_per_second")

_lock = threading.RLock()
_active: RunReport | None = None


# --------------------------------------------------------------------------------------------
# public API


def active_run() -> RunReport | None:
    """The run being recorded (set by the pytest plugin), or None outside a recorded run."""
    return _active


def record_ioworker(args: Mapping[str, Any], result: Mapping[str, Any]) -> None:
    """Record one finished ioworker in the current test's report.

    Called by the ioworker when it closes, with its keyword arguments and its result as a dict
    with pynvme's keys: io_count_read, io_count_nonread, io_count_write, lba_count_read,
    lba_count_nonread, lba_count_write, mseconds, latency_max_us, latency_average_us, error,
    cpu_usage and, when collected, io_count_per_second, read_per_second, write_per_second,
    bytes_per_second (lists, one entry per second), latency_percentiles (percentile -> µs) and
    latency_distribution (list: index = µs, value = count). Any key may be missing.

    The run gets the arguments and result in results.json (the distribution compacted to its
    non-zero buckets), a CSV of the per-second IOPS and bandwidth, a CSV of the latency
    percentiles and their plots. Outside a recorded run it does nothing; a file that cannot be
    written is logged as an error, not raised.
    """
    run = _active
    if run is not None:
        try:
            run.add_ioworker(args, result)
        except OSError as e:
            # The report's disk trouble is not the ioworker's failure: say it, go on.
            logger.error("ioworker not recorded in %s: %s", run.folder, e)


def log_series(
    name: str, values: Sequence[float], x: Sequence[float] | None = None, unit: str = ""
) -> None:
    """Log a series of numbers for the current test: the run gets a CSV and a plot of it.

    Args:
        name: what the values are ("temperature", "write latency"); names the files.
        values: the numbers (int or float).
        x: where each value is (seconds, LBAs, ...), as long as `values`; default 0, 1, 2 ...
        unit: the unit of the values, shown on the plot's axis and kept in results.json.

    Raises ValueError for an empty name, values that are not numbers or an `x` of another
    length, whether or not a run is recorded.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError("log_series: name must be a non-empty string")
    ys = _numbers(values, "values")
    xs = _numbers(x, "x") if x is not None else [float(i) for i in range(len(ys))]
    if len(xs) != len(ys):
        raise ValueError(f"log_series: x has {len(xs)} entries, values {len(ys)}")
    run = _active
    if run is not None:
        try:
            run.add_series(name, ys, xs, unit, explicit_x=x is not None)
        except OSError as e:
            logger.error("series %r not recorded in %s: %s", name, run.folder, e)


def record_controller(controller: Any) -> None:
    """Record the identity of the device under test from its controller, once per run.

    The `nvme0` fixture calls it: the first controller of a recorded run is asked for Identify
    Controller (model number, serial number, firmware revision, PCI vendor id). A failure is
    logged and leaves the identity unknown; nothing is sent outside a recorded run or once the
    identity is known.
    """
    run = _active
    if run is None or run.identity is not None:
        return
    try:
        with warnings.catch_warnings():
            # An error status here is the report's problem, not the test's.
            warnings.simplefilter("ignore")
            data = controller.id_ctrl()
            identity = {
                "model_number": str(data.mn).strip(),
                "serial_number": str(data.sn).strip(),
                "firmware_revision": str(data.fr).strip(),
                "vid": int(data.vid),
                "ssvid": int(data.ssvid),
            }
    except Exception as e:
        logger.debug("device identity not recorded: %s", e)
        return
    run.set_identity(identity)


def percentiles_from_distribution(
    distribution: Sequence[int], percentiles: Sequence[float] = PERCENTILES
) -> dict[str, int]:
    """Latency (µs) at each percentile of a distribution of 1 µs buckets.

    The latency at percentile k is the first bucket whose running count reaches k % of all
    IOs, as pynvme computes it. Keys are the percentiles as text ("99.9"); an empty
    distribution gives an empty dict.
    """
    return _bucket_percentiles(*_nonzero_buckets(distribution), percentiles)


def _nonzero_buckets(distribution: Sequence[int]) -> tuple[list[int], list[int]]:
    """The indexes (µs) and counts of the non-zero buckets of a distribution."""
    indexes = list(itertools.compress(range(len(distribution)), distribution))
    return indexes, [int(distribution[i]) for i in indexes]


def _bucket_percentiles(
    indexes: Sequence[int], counts: Sequence[int], percentiles: Sequence[float]
) -> dict[str, int]:
    """`percentiles_from_distribution` on the non-zero buckets of a distribution."""
    running = list(itertools.accumulate(counts))
    total = running[-1] if running else 0
    if total <= 0:
        return {}
    found = {}
    for k in percentiles:
        target = total * float(k) / 100.0
        found[_percentile_key(k)] = indexes[
            min(bisect.bisect_left(running, target), len(running) - 1)
        ]
    return found


def compact_distribution(distribution: Sequence[int]) -> dict[str, Any]:
    """A latency distribution (index = µs, value = count) as its non-zero buckets.

    Returns `{"bucket_us": 1, "length": len, "total": count, "buckets": [[µs, count], ...]}`;
    `expand_distribution` gives the list back.
    """
    indexes, counts = _nonzero_buckets(distribution)
    return {
        "bucket_us": 1,
        "length": len(distribution),
        "total": sum(counts),
        "buckets": [[i, c] for i, c in zip(indexes, counts)],
    }


def expand_distribution(compact: Mapping[str, Any]) -> list[int]:
    """The list of counts of a distribution made by `compact_distribution`."""
    counts = [0] * int(compact["length"])
    for index, count in compact["buckets"]:
        counts[int(index)] = int(count)
    return counts


# --------------------------------------------------------------------------------------------
# helpers


def _numbers(values: Any, what: str) -> list[float]:
    """The values as floats; ValueError naming `what` if one is not a number."""
    try:
        items = list(values)
    except TypeError:
        raise ValueError(f"log_series: {what} must be a sequence of numbers") from None
    out = []
    for item in items:
        try:
            if isinstance(item, (str, bytes)):
                raise TypeError
            out.append(float(item))  # int, float, numpy scalars
        except (TypeError, ValueError):
            raise ValueError(f"log_series: {what} holds {item!r}, not a number") from None
    return out


def _percentile_key(k: Any) -> str:
    """A percentile as text without trailing zeros: 99.9 -> "99.9", 50 -> "50"."""
    return f"{float(k):.6f}".rstrip("0").rstrip(".")


def _jsonable(value: Any, limit: int | None = None) -> Any:  # noqa: PLR0911 - one per kind
    """Turn a value into what JSON can hold: dict keys as text, non-finite floats as None,
    ranges and other objects as their repr; lists longer than `limit` as length and head."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, limit) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        if limit is not None and len(value) > limit:
            return {
                "length": len(value),
                "head": [_jsonable(v, limit) for v in value[:100]],
            }
        return [_jsonable(v, limit) for v in value]
    for convert in ("tolist", "item"):  # numpy arrays and scalars, array.array
        method = getattr(value, convert, None)
        if callable(method):
            try:
                return _jsonable(method(), limit)
            except (TypeError, ValueError):
                pass
    return repr(value)


def _plain_lists(result: dict[str, Any]) -> dict[str, Any]:
    """The result with its series and distribution as lists, whatever sequence type the
    ioworker handed over (numpy array, array.array, a native sequence)."""
    for key in (*_SERIES_KEYS, "latency_distribution"):
        value = result.get(key)
        if value is None or isinstance(value, (str, bytes, Mapping, list)):
            continue
        try:
            result[key] = value.tolist() if hasattr(value, "tolist") else list(value)
        except TypeError:
            pass
    return result


def safe_name(text: str, limit: int = 80) -> str:
    """A file-name-safe form of a test or series name: `test_x[4k-1]` -> `test_x_4k-1`."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.")
    return name[:limit] or "x"


def _number(result: Mapping[str, Any], key: str) -> float | None:
    """A numeric field of a result as float, or None if missing or not a number."""
    value = result.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def ioworker_summary(result: Mapping[str, Any]) -> dict[str, float | None]:
    """IOPS, MB/s and latency of an ioworker result, derived from its counters.

    `iops` is all IOs per second of run time; `mbps` (10^6 bytes per second) is computed from
    `bytes_per_second` when the result has it, else None.
    """
    ms = _number(result, "mseconds")
    ios = sum(_number(result, k) or 0.0 for k in ("io_count_read", "io_count_nonread"))
    iops = ios * 1000.0 / ms if ms else None
    per_second = result.get("bytes_per_second")
    mbps = None
    if isinstance(per_second, Sequence) and per_second:
        mbps = sum(per_second) / len(per_second) / 1e6
    return {
        "iops": iops,
        "mbps": mbps,
        "latency_average_us": _number(result, "latency_average_us"),
        "latency_max_us": _number(result, "latency_max_us"),
    }


# --------------------------------------------------------------------------------------------
# the run


class RunReport:
    """What one run records: tests, warnings, ioworkers, series, the device; written to a folder.

    The pytest plugin makes one per run, makes it active (`activate`) for the session and calls
    `finish` at its end, which draws the plots and writes results.json and index.html.
    `results.json` is also written (marked `"complete": false`) during the run, at most every
    `checkpoint_seconds`, so a run that dies leaves most of its record.
    """

    def __init__(
        self,
        folder: Path,
        pciaddr: str = "",
        nsid: int = 1,
        driver_version: str = "",
        files: Mapping[str, str] | None = None,
        checkpoint_seconds: float = 30.0,
    ) -> None:
        """Record into `folder` (created if needed) a run on `pciaddr`; `files` names the run's
        other files (log, junit) relative to the folder, for results.json and index.html."""
        self.folder = Path(folder)
        self.start = time.time()
        self.end: float | None = None
        self.exitstatus: int | None = None
        self.pciaddr = pciaddr
        self.nsid = nsid
        self.driver_version = driver_version
        self.files = dict(files or {})
        self.identity: dict[str, Any] | None = None
        self.tests: dict[str, dict[str, Any]] = {}
        self.session: dict[str, Any] = self._new_test("<session>", "session")
        self.current: dict[str, Any] | None = None
        self.checkpoint_seconds = checkpoint_seconds
        self._last_checkpoint = 0.0
        self._names: Counter[str] = Counter()
        self._plots: list[tuple[str, Any]] = []
        self.max_plotted_ioworkers = MAX_PLOTTED_IOWORKERS
        self._plotted_ioworkers = 0
        self._lock = threading.RLock()

    # -- lifecycle ------------------------------------------------------------------------

    def activate(self) -> None:
        """Make this the run that `record_ioworker` and `log_series` record into."""
        global _active
        with _lock:
            _active = self

    def deactivate(self) -> None:
        """Stop recording into this run (another active run is left alone)."""
        global _active
        with _lock:
            if _active is self:
                _active = None

    @staticmethod
    def _new_test(nodeid: str, name: str) -> dict[str, Any]:
        """An empty record of a test (or of the session)."""
        return {
            "nodeid": nodeid,
            "name": name,
            "outcome": None,
            "duration": 0.0,
            "phases": {},
            "longrepr": None,
            "warnings": [],
            "ioworkers": [],
            "series": [],
        }

    def begin_test(self, nodeid: str, name: str | None = None) -> None:
        """A test starts: what is recorded until `end_test` belongs to it."""
        with self._lock:
            test = self.tests.get(nodeid)
            if test is None:
                short = name or nodeid.rpartition("::")[2] or nodeid
                test = self.tests[nodeid] = self._new_test(nodeid, short)
            self.current = test

    def end_test(self) -> None:
        """The current test is over (its teardown included)."""
        with self._lock:
            self.current = None
        self.checkpoint()

    def _test(self, nodeid: str | None = None) -> dict[str, Any]:
        """The record of a test by node id (made if new), else the current test, else the
        session's."""
        if nodeid:
            if nodeid not in self.tests:
                short = nodeid.rpartition("::")[2] or nodeid
                self.tests[nodeid] = self._new_test(nodeid, short)
            return self.tests[nodeid]
        return self.current if self.current is not None else self.session

    def add_phase(
        self,
        nodeid: str,
        when: str,
        outcome: str,
        duration: float,
        longrepr: str | None = None,
        wasxfail: bool = False,
    ) -> None:
        """Record one phase (setup, call, teardown) of a test and update its outcome as pytest
        names it: passed, failed, skipped, error (setup or teardown failed), xfailed, xpassed."""
        with self._lock:
            test = self._test(nodeid)
            test["phases"][when] = {"outcome": outcome, "duration": round(duration, 6)}
            test["duration"] = round(sum(p["duration"] for p in test["phases"].values()), 6)
            if longrepr:
                test["longrepr"] = (test["longrepr"] + "\n" if test["longrepr"] else "") + longrepr
            if wasxfail:
                test["outcome"] = "xpassed" if outcome == "passed" else "xfailed"
            elif when == "call":
                test["outcome"] = outcome
            elif outcome == "failed":
                if test["outcome"] != "failed":
                    test["outcome"] = "error"
            elif outcome == "skipped":
                test["outcome"] = "skipped"
            elif test["outcome"] is None and when == "teardown":
                test["outcome"] = "passed"

    def add_warning(
        self,
        message: str,
        category: str,
        nodeid: str = "",
        when: str = "",
        filename: str = "",
        lineno: int = 0,
    ) -> None:
        """Record a warning of a test (by node id) or of the session (empty node id)."""
        with self._lock:
            test = self._test(nodeid) if nodeid else self.session
            test["warnings"].append(
                {
                    "message": message,
                    "category": category,
                    "when": when,
                    "filename": filename,
                    "lineno": lineno,
                }
            )

    def set_identity(self, identity: Mapping[str, Any]) -> None:
        """Record the device's identity (model_number, serial_number, firmware_revision ...)."""
        with self._lock:
            self.identity = dict(identity)

    # -- ioworkers and series -------------------------------------------------------------

    def _stem(self, test: dict[str, Any], kind: str) -> str:
        """The next file name stem of `kind` for a test: `<test>_<kind><N>`."""
        base = safe_name(test["name"])
        self._names[(base, kind)] += 1
        return f"{base}_{kind}{self._names[(base, kind)]}"

    def add_ioworker(self, args: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
        """Record an ioworker's arguments and result in the current test, write its CSV files
        and queue its plots; returns its entry of results.json.

        Only the non-zero buckets of the latency distribution are kept, so a run of many
        ioworkers does not hold their million-entry distributions until it ends.
        """
        result = _plain_lists(dict(result))
        distribution = result.get("latency_distribution")
        buckets = None
        if isinstance(distribution, Sequence) and distribution:
            buckets = _nonzero_buckets(distribution)
        percentiles = _given_percentiles(result)
        if not percentiles and buckets is not None:
            percentiles = {
                k: float(v) for k, v in _bucket_percentiles(*buckets, PERCENTILES).items()
            }
        out = {}
        for key, value in result.items():
            if key == "latency_distribution" and isinstance(value, Sequence):
                indexes, counts = buckets or ([], [])
                out[key] = {
                    "bucket_us": 1,
                    "length": len(value),
                    "total": sum(counts),
                    "buckets": [[i, c] for i, c in zip(indexes, counts)],
                }
            else:
                out[key] = _jsonable(value)
        if not out.get("latency_percentiles") and percentiles:
            out["latency_percentiles"] = percentiles
        columns = _per_second_table(result)
        with self._lock:
            test = self._test()
            stem = self._stem(test, "ioworker")
            entry: dict[str, Any] = {
                "index": len(test["ioworkers"]) + 1,
                "name": stem,
                "args": _jsonable(dict(args), MAX_ARG_LIST),
                "result": out,
                "summary": _jsonable(ioworker_summary(result)),
                "files": {},
            }
            test["ioworkers"].append(entry)
            plot = self._plotted_ioworkers < self.max_plotted_ioworkers
            self._plotted_ioworkers += 1
            if self._plotted_ioworkers == self.max_plotted_ioworkers + 1:
                logger.info(
                    "more than %d ioworkers in this run: the next ones get no plots",
                    self.max_plotted_ioworkers,
                )
        self.folder.mkdir(parents=True, exist_ok=True)
        files = entry["files"]
        if write_per_second_csv(self.folder / f"{stem}_per_second.csv", result):
            files["per_second_csv"] = f"{stem}_per_second.csv"
            if plot:
                files["throughput_png"] = f"{stem}_throughput.png"
        if percentiles:
            _write_csv(
                self.folder / f"{stem}_latency.csv",
                ["percentile", "latency_us"],
                sorted(([float(k), v] for k, v in percentiles.items())),
            )
            files["latency_csv"] = f"{stem}_latency.csv"
            if plot:
                files["latency_png"] = f"{stem}_latency.png"
        if plot:
            with self._lock:
                self._plots.append(("ioworker", (stem, columns, buckets, percentiles, files)))
        return entry

    def add_series(
        self,
        name: str,
        values: list[float],
        x: list[float],
        unit: str = "",
        explicit_x: bool = True,
    ) -> dict[str, Any]:
        """Record a series in the current test, write its CSV and queue its plot."""
        with self._lock:
            test = self._test()
            stem = self._stem(test, "series") + "_" + safe_name(name, 40)
            entry = {
                "name": name,
                "unit": unit,
                "x": _jsonable(x) if explicit_x else None,
                "values": _jsonable(values),
                "files": {"csv": f"{stem}.csv", "png": f"{stem}.png"},
            }
            test["series"].append(entry)
        self.folder.mkdir(parents=True, exist_ok=True)
        header = ["x", f"{name} ({unit})" if unit else name]
        _write_csv(self.folder / f"{stem}.csv", header, zip(x, values))
        with self._lock:
            self._plots.append(("series", (stem, name, x, values, unit, explicit_x)))
        return entry

    # -- output ---------------------------------------------------------------------------

    def to_json(self, complete: bool = False) -> dict[str, Any]:
        """The run as the document results.json holds."""
        with self._lock:
            tests = [dict(t) for t in self.tests.values()]
            counts = Counter(t["outcome"] or "unfinished" for t in tests)
            end = self.end
            return {
                "format": RESULTS_FORMAT,
                "complete": complete,
                "start": _iso(self.start),
                "end": _iso(end) if end is not None else None,
                "duration": round((end or time.time()) - self.start, 3),
                "exitstatus": self.exitstatus,
                "device": {
                    "pciaddr": self.pciaddr or "sim://",
                    "simulated": self.pciaddr == "" or self.pciaddr.startswith("sim:"),
                    "nsid": self.nsid,
                    "driver_version": self.driver_version,
                    "identity": self.identity,
                },
                "summary": dict(sorted(counts.items())),
                "files": dict(self.files),
                "tests": tests,
                "session": {
                    "warnings": list(self.session["warnings"]),
                    "ioworkers": list(self.session["ioworkers"]),
                    "series": list(self.session["series"]),
                },
            }

    def write_json(self, complete: bool = False) -> Path:
        """Write results.json (atomically: a reader never sees half a document)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "results.json"
        tmp = path.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_json(complete), f, indent=1, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
        return path

    def checkpoint(self) -> None:
        """Write results.json if the last write is older than `checkpoint_seconds`."""
        now = time.monotonic()
        if now - self._last_checkpoint >= self.checkpoint_seconds:
            self._last_checkpoint = now
            try:
                self.write_json(complete=False)
            except OSError as e:
                logger.warning("results.json not written: %s", e)

    def draw_plots(self) -> list[Path]:
        """Draw the queued plots (PNG files); returns the files written."""
        with self._lock:
            jobs, self._plots = self._plots, []
        written: list[Path] = []
        for kind, job in jobs:
            try:
                if kind == "ioworker":
                    stem, columns, buckets, percentiles, files = job
                    written += _plot_ioworker(self.folder, stem, columns, buckets, percentiles)
                    for key in ("throughput_png", "latency_png"):
                        if key in files and not (self.folder / files[key]).exists():
                            del files[key]
                else:
                    stem, name, x, values, unit, explicit_x = job
                    written.append(
                        plot_series(
                            self.folder / f"{stem}.png",
                            name,
                            x,
                            values,
                            unit,
                            x_label="" if explicit_x else "sample",
                        )
                    )
            except Exception as e:
                logger.error("plot %s not drawn: %s: %s", job[0], type(e).__name__, e)
        return written

    def finish(self, exitstatus: int | None = None) -> None:
        """End the run: draw the plots, write results.json and index.html."""
        self.end = time.time()
        self.exitstatus = exitstatus
        self.draw_plots()
        self.write_json(complete=True)
        (self.folder / "index.html").write_text(render_html(self.to_json(True)), encoding="utf-8")


def _iso(timestamp: float) -> str:
    """A time stamp as ISO 8601 text in local time with its offset, to the millisecond."""
    return (
        datetime.fromtimestamp(timestamp, timezone.utc)
        .astimezone()
        .isoformat(timespec="milliseconds")
    )


def _write_csv(path: Path, header: Sequence[str], rows: Any) -> None:
    """Write a CSV file: the header row, then the rows."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _series(result: Mapping[str, Any], key: str) -> list[float] | None:
    """A per-second list of a result as floats, or None if missing or empty."""
    value = result.get(key)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        return None
    return [float(v) for v in value]


def _per_second_table(result: Mapping[str, Any]) -> dict[str, list[float]]:
    """The per-second columns an ioworker result has: iops, read_iops, write_iops,
    bytes_per_second, mb_per_second (a column only if the result gives what it needs)."""
    reads = _series(result, "read_per_second")
    writes = _series(result, "write_per_second")
    total = _series(result, "io_count_per_second")
    if total is None and reads is not None and writes is not None:
        total = [r + w for r, w in zip(reads, writes)]
    columns: dict[str, list[float]] = {}
    if total is not None:
        columns["iops"] = total
    if reads is not None:
        columns["read_iops"] = reads
    if writes is not None:
        columns["write_iops"] = writes
    per_second_bytes = _series(result, "bytes_per_second")
    if per_second_bytes is not None:
        columns["bytes_per_second"] = per_second_bytes
        columns["mb_per_second"] = [b / 1e6 for b in per_second_bytes]
    return columns


def write_per_second_csv(path: Path, result: Mapping[str, Any]) -> bool:
    """Write the per-second IOPS and bandwidth of an ioworker result as CSV (second 1 is the
    first second); False, and no file, when the result has no per-second series."""
    columns = _per_second_table(result)
    if not columns:
        return False
    length = max(len(c) for c in columns.values())
    rows = []
    for i in range(length):
        row: list[Any] = [i + 1]
        for column in columns.values():
            row.append(_cell(column[i]) if i < len(column) else "")
        rows.append(row)
    _write_csv(path, ["second", *columns], rows)
    return True


def _cell(value: float) -> Any:
    """A CSV cell: whole numbers without ".0", others rounded to 6 decimals."""
    return int(value) if float(value).is_integer() else round(value, 6)


def _given_percentiles(result: Mapping[str, Any]) -> dict[str, float]:
    """Percentile -> µs from the result's latency_percentiles (entries that are not numbers
    left out)."""
    given = result.get("latency_percentiles")
    out: dict[str, float] = {}
    if isinstance(given, Mapping):
        for k, v in given.items():
            try:
                out[_percentile_key(k)] = float(v)
            except (TypeError, ValueError):
                continue
    return out


def _latency_percentiles(result: Mapping[str, Any]) -> dict[str, float]:
    """Percentile -> µs from the result's latency_percentiles, else from its distribution."""
    given = _given_percentiles(result)
    if given:
        return given
    distribution = result.get("latency_distribution")
    if isinstance(distribution, Sequence) and distribution:
        return {k: float(v) for k, v in percentiles_from_distribution(distribution).items()}
    return {}


# --------------------------------------------------------------------------------------------
# plots


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display needed), imported on first use."""
    # The run log takes DEBUG records: keep matplotlib's start-up and font search out of it.
    for name in ("matplotlib", "PIL"):
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)
    import matplotlib  # noqa: PLC0415 - lazily: a run without plots does not pay for it

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def plot_ioworker(folder: Path, stem: str, result: Mapping[str, Any]) -> list[Path]:
    """Draw `<stem>_throughput.png` (IOPS and MB/s over time) and `<stem>_latency.png`
    (distribution on log scales and percentile curve) for what the result has; returns the
    files written."""
    result = _plain_lists(dict(result))
    distribution = result.get("latency_distribution")
    buckets = None
    if isinstance(distribution, Sequence) and distribution:
        buckets = _nonzero_buckets(distribution)
    return _plot_ioworker(
        folder, stem, _per_second_table(result), buckets, _latency_percentiles(result)
    )


def _plot_ioworker(
    folder: Path,
    stem: str,
    columns: dict[str, list[float]],
    buckets: tuple[list[int], list[int]] | None,
    percentiles: Mapping[str, float],
) -> list[Path]:
    """`plot_ioworker` from the per-second table, the non-zero latency buckets and the
    percentiles."""
    written = []
    if columns:
        written.append(_plot_throughput(folder / f"{stem}_throughput.png", stem, columns))
    if percentiles or (buckets is not None and buckets[0]):
        written.append(_plot_latency(folder / f"{stem}_latency.png", stem, buckets, percentiles))
    return written


def _plot_throughput(path: Path, title: str, columns: dict[str, list[float]]) -> Path:
    """Draw IOPS (total, read, write) and MB/s over time into `path`."""
    plt = _pyplot()
    has_bw = "mb_per_second" in columns
    fig, axes = plt.subplots(2 if has_bw else 1, 1, figsize=(8, 5 if has_bw else 3), sharex=True)
    axes = list(axes) if has_bw else [axes]
    for key, label in (("iops", "total"), ("read_iops", "read"), ("write_iops", "write")):
        if key in columns:
            seconds = range(1, len(columns[key]) + 1)
            axes[0].plot(seconds, columns[key], marker=".", label=label)
    axes[0].set_ylabel("IOPS")
    axes[0].legend(loc="best", fontsize="small")
    if has_bw:
        seconds = range(1, len(columns["mb_per_second"]) + 1)
        axes[1].plot(seconds, columns["mb_per_second"], marker=".", color="tab:purple")
        axes[1].set_ylabel("MB/s")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    axes[-1].set_xlabel("second")
    axes[-1].xaxis.get_major_locator().set_params(integer=True)
    axes[0].set_title(title, fontsize="medium")
    # Fixed margins: tight_layout would double the time of a plot.
    top, bottom = (0.93, 0.1) if has_bw else (0.88, 0.17)
    fig.subplots_adjust(left=0.1, right=0.98, top=top, bottom=bottom, hspace=0.12)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


#: Percentiles of the latency curve drawn from a distribution.
_CURVE = [*range(1, 100), 99.5, 99.9, 99.95, 99.99, 99.995, 99.999, 99.9999]


def _plot_latency(
    path: Path,
    title: str,
    buckets: tuple[list[int], list[int]] | None,
    percentiles: Mapping[str, float],
) -> Path:
    """Draw the latency distribution (if any) and the percentile curve into `path`."""
    plt = _pyplot()
    import numpy as np  # noqa: PLC0415 - matplotlib's own dependency

    has_dist = buckets is not None and bool(buckets[0])
    fig, axes = plt.subplots(1, 2 if has_dist else 1, figsize=(10 if has_dist else 5, 3.6))
    axes = list(axes) if has_dist else [axes]
    if buckets is not None and has_dist:
        indexes, counts = buckets
        top = max(float(indexes[-1]) + 2.0, 2.0)
        edges = np.unique(np.logspace(0, math.log10(top), 60).round())
        hist, edges = np.histogram(
            np.asarray(indexes, dtype=float) + 0.5, bins=edges, weights=np.asarray(counts)
        )
        ax = axes[0]
        ax.stairs(hist, edges, fill=True, alpha=0.7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_labels(ax.xaxis)
        ax.set_xlabel("latency (µs)")
        ax.set_ylabel("IOs")
        ax.set_title("latency distribution", fontsize="medium")
        ax.grid(True, alpha=0.3)
        curve = _bucket_percentiles(indexes, counts, _CURVE)
        points = sorted((float(k), float(v)) for k, v in curve.items())
    else:
        points = sorted((float(k), float(v)) for k, v in percentiles.items())
    ax = axes[-1]
    # x: "nines" (90 -> 1, 99 -> 2, 99.9 -> 3), so the tail is as wide as the body.
    xs = [-math.log10(1.0 - min(p, 99.9999) / 100.0) for p, _ in points]
    ax.plot(xs, [max(v, 1e-3) for _, v in points], marker=".")
    ticks = [p for p in (50, 90, 99, 99.9, 99.99, 99.999, 99.9999) if p <= points[-1][0] + 1e-9]
    ax.set_xticks([-math.log10(1.0 - p / 100.0) for p in ticks])
    ax.set_xticklabels([_percentile_key(p) for p in ticks], fontsize="small")
    ax.set_yscale("log")
    _plain_log_labels(ax.yaxis)
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (µs)")
    ax.set_title("latency percentiles", fontsize="medium")
    ax.grid(True, alpha=0.3)
    fig.suptitle(title, fontsize="medium")
    fig.subplots_adjust(
        left=0.08 if has_dist else 0.16, right=0.98, top=0.83, bottom=0.15, wspace=0.28
    )
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _plain_log_labels(axis: Any) -> None:
    """Label a log axis with plain numbers (20, 50, 100, 2000) instead of powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator  # noqa: PLC0415

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda value, _: ""))


def plot_series(
    path: Path,
    name: str,
    x: Sequence[float],
    values: Sequence[float],
    unit: str = "",
    x_label: str = "",
) -> Path:
    """Draw a series logged with `log_series` as a line plot in `path` (PNG); `x_label`
    "sample" (values without x) makes the x ticks whole numbers."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot(list(x), list(values), marker="." if len(values) <= 200 else None)
    if x_label:
        ax.set_xlabel(x_label)
    if x_label == "sample":
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(f"{name} ({unit})" if unit else name)
    ax.set_title(name, fontsize="medium")
    ax.grid(True, alpha=0.3)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.88, bottom=0.15)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# index.html

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
h3 { font-size: 1em; margin: 1em 0 0.3em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.passed, .xfailed { color: #176f2c; } .failed, .error, .xpassed { color: #b00020; }
.skipped, .unfinished { color: #8a6d00; }
pre { background: #f7f7f7; padding: 0.5em; overflow-x: auto; font-size: 12px; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.3em 0; }
section.test { border-top: 1px solid #ddd; }
"""


def _fmt(value: Any, digits: int = 1) -> str:
    """A value for the page: "-" for None, thousands separators for numbers."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_html(doc: Mapping[str, Any]) -> str:
    """The summary page of a run (from its results.json document): device, tests with outcome,
    duration and warnings, ioworker results with their plots (`<img>` of the PNG files beside
    the page). Self-contained: no script, no style sheet or font from elsewhere."""
    e = html.escape
    device = doc["device"]
    identity = device.get("identity") or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>pynvme-rs run {e(doc['start'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Test run {e(doc['start'])}</h1>",
        "<table>",
    ]
    rows = [
        ("device", device["pciaddr"] + (" (simulated SSD)" if device["simulated"] else "")),
        ("model number", identity.get("model_number")),
        ("serial number", identity.get("serial_number")),
        ("firmware revision", identity.get("firmware_revision")),
        ("namespace", device.get("nsid")),
        ("driver", device.get("driver_version")),
        ("start", doc["start"]),
        ("end", doc["end"]),
        ("duration", f"{doc['duration']:.2f} s"),
        ("exit status", doc.get("exitstatus")),
        ("summary", ", ".join(f"{n} {k}" for k, n in doc["summary"].items()) or "no tests"),
    ]
    for label, value in rows:
        parts.append(f"<tr><th>{e(label)}</th><td>{e(_fmt(value))}</td></tr>")
    files = " ".join(
        f'<a href="{e(name)}">{e(name)}</a>'
        for name in [*doc.get("files", {}).values(), "results.json"]
    )
    parts += ["</table>", f"<p>Files: {files}</p>", "<h2>Tests</h2>", "<table>"]
    parts.append(
        "<tr><th>test</th><th>outcome</th><th>duration (s)</th><th>warnings</th>"
        "<th>ioworkers</th></tr>"
    )
    for i, test in enumerate(doc["tests"]):
        outcome = test["outcome"] or "unfinished"
        parts.append(
            f'<tr><td><a href="#t{i}">{e(test["nodeid"])}</a></td>'
            f'<td class="{e(outcome)}">{e(outcome)}</td>'
            f'<td class="num">{test["duration"]:.3f}</td>'
            f'<td class="num">{len(test["warnings"])}</td>'
            f'<td class="num">{len(test["ioworkers"])}</td></tr>'
        )
    parts.append("</table>")
    session = doc.get("session", {})
    blocks = list(enumerate(doc["tests"]))
    if any(session.get(k) for k in ("warnings", "ioworkers", "series")):
        blocks.append(("session", {"nodeid": "outside any test", "outcome": None, **session}))
    for i, test in blocks:
        parts += _html_test(i, test)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_test(anchor: Any, test: Mapping[str, Any]) -> list[str]:
    """The section of the page for one test (or the session)."""
    e = html.escape
    outcome = test.get("outcome") or ""
    out = [
        f'<section class="test" id="t{anchor}">',
        f'<h2>{e(test["nodeid"])} <span class="{e(outcome)}">{e(outcome)}</span></h2>',
    ]
    if test.get("longrepr"):
        out.append(f"<pre>{e(test['longrepr'])}</pre>")
    if test.get("warnings"):
        out.append("<h3>Warnings</h3><ul>")
        out += [f"<li>{e(w['category'])}: {e(str(w['message']))}</li>" for w in test["warnings"]]
        out.append("</ul>")
    for worker in test.get("ioworkers", []):
        summary = worker.get("summary", {})
        result = worker.get("result", {})
        out.append(f"<h3>ioworker {worker['index']}</h3><table>")
        args = ", ".join(f"{k}={json.dumps(v)}" for k, v in worker.get("args", {}).items())
        out.append(f"<tr><th>arguments</th><td>{e(args)}</td></tr>")
        for label, value, digits in (
            ("IOPS", summary.get("iops"), 0),
            ("MB/s", summary.get("mbps"), 1),
            ("latency average (µs)", summary.get("latency_average_us"), 1),
            ("latency max (µs)", summary.get("latency_max_us"), 0),
            ("IOs read / non-read", _pair(result, "io_count_read", "io_count_nonread"), 0),
            ("run time (ms)", result.get("mseconds"), 0),
            ("error", result.get("error"), 0),
        ):
            out.append(f'<tr><th>{e(label)}</th><td class="num">{e(_fmt(value, digits))}</td></tr>')
        percentiles = result.get("latency_percentiles") or {}
        if percentiles:
            text = ", ".join(f"p{k}: {_fmt(v, 0)} µs" for k, v in percentiles.items())
            out.append(f"<tr><th>latency percentiles</th><td>{e(text)}</td></tr>")
        out.append("</table>")
        out += _html_files(worker.get("files", {}))
    for series in test.get("series", []):
        unit = f" ({series['unit']})" if series.get("unit") else ""
        out.append(f"<h3>{e(series['name'])}{e(unit)}</h3>")
        out += _html_files(series.get("files", {}))
    out.append("</section>")
    return out


def _pair(result: Mapping[str, Any], a: str, b: str) -> str | None:
    """Two counters of a result as "a / b", or None if the result has neither."""
    if a not in result and b not in result:
        return None
    return f"{_fmt(result.get(a))} / {_fmt(result.get(b))}"


def _html_files(files: Mapping[str, str]) -> list[str]:
    """Links to the CSV files and `<img>` elements of the PNG files."""
    e = html.escape
    out = []
    links = [f'<a href="{e(n)}">{e(n)}</a>' for k, n in files.items() if not n.endswith(".png")]
    if links:
        out.append("<p>" + " ".join(links) + "</p>")
    out += [
        f'<img src="{e(n)}" alt="{e(k)}" loading="lazy">'
        for k, n in files.items()
        if n.endswith(".png")
    ]
    return out


# --------------------------------------------------------------------------------------------
# several drives


class CombinedReport:
    """The combined summary of a run on several drives, one pytest-xdist worker per drive.

    Each worker writes a whole run report of its drive (`RunReport`) into a subfolder of the
    run folder; the controller process makes this report, is told by each worker when it ends
    (`drive_finished`) and, at the end of the session (`finish`), reads the drives'
    results.json and writes into the run folder:

    * `results.json`: `"format"`, `"combined": true`, start, end, duration, exit status,
      `drives` (per drive: `drive` index, `worker`, `pciaddr`, `folder`, `complete`,
      `exitstatus`, `identity`, `summary`, `error`: the crashes of its workers, if any),
      `summary` (outcomes over all drives)
      and `tests` (per drive and test: `drive`, `nodeid`, `outcome`, `duration`, counts of
      `warnings` and `ioworkers`);
    * `index.html`: the drives with links to their own pages, and a table of the tests with
      one column per drive.
    """

    def __init__(
        self, folder: Path, devices: Sequence[str], files: Mapping[str, str] | None = None
    ):
        """Combine the drives `devices` (their `--pciaddr`, in worker order) of the run in
        `folder`; `files` names the controller's own files (log, junit) in the folder."""
        self.folder = Path(folder)
        self.devices = list(devices)
        self.files = dict(files or {})
        self.start = time.time()
        self.end: float | None = None
        self.exitstatus: int | None = None
        self.drives: dict[int, dict[str, Any]] = {}

    def drive_finished(
        self, drive: int, worker: str, folder: str | None, error: str | None = None
    ) -> None:
        """Drive `drive`'s worker ended; `folder` is its results subfolder (None if it made
        none), `error` what went wrong if the worker crashed. A worker that replaced a crashed
        one ends later: the drive's entry is then its, and keeps the crash in its `error`."""
        told = self.drives.setdefault(drive, {"errors": []})
        told.update(worker=worker, folder=folder)
        if error:
            told["errors"].append(f"{worker}: {error}")

    def _drive(self, index: int, pciaddr: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The entry of one drive and its tests, from its results.json."""
        told = self.drives.get(index, {})
        entry: dict[str, Any] = {
            "drive": index,
            "worker": told.get("worker"),
            "pciaddr": pciaddr or "sim://",
            "folder": None,
            "complete": False,
            "exitstatus": None,
            "identity": None,
            "summary": {},
            "error": "; ".join(told.get("errors", [])) or None,
        }
        tests: list[dict[str, Any]] = []
        folder = told.get("folder")
        if not folder:
            if entry["error"] is None:
                entry["error"] = "the drive's worker reported no results folder"
            return entry, tests
        path = Path(folder)
        try:
            entry["folder"] = str(path.absolute().relative_to(self.folder.absolute()))
        except ValueError:
            entry["folder"] = str(path)
        try:
            doc = json.loads((path / "results.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            entry["error"] = entry["error"] or f"results.json not read: {e}"
            return entry, tests
        # A worker that crashed left the results.json of its last checkpoint, if any.
        entry.update(
            complete=bool(doc.get("complete")),
            exitstatus=doc.get("exitstatus"),
            identity=(doc.get("device") or {}).get("identity"),
            summary=doc.get("summary") or {},
        )
        for test in doc.get("tests", []):
            tests.append(
                {
                    "drive": index,
                    "nodeid": test.get("nodeid"),
                    "outcome": test.get("outcome"),
                    "duration": test.get("duration"),
                    "warnings": len(test.get("warnings") or []),
                    "ioworkers": len(test.get("ioworkers") or []),
                }
            )
        return entry, tests

    def to_json(self, complete: bool = False) -> dict[str, Any]:
        """The combined document results.json holds."""
        drives, tests = [], []
        for index, pciaddr in enumerate(self.devices):
            entry, drive_tests = self._drive(index, pciaddr)
            drives.append(entry)
            tests += drive_tests
        counts = Counter(t["outcome"] or "unfinished" for t in tests)
        end = self.end
        return {
            "format": COMBINED_FORMAT,
            "combined": True,
            "complete": complete,
            "start": _iso(self.start),
            "end": _iso(end) if end is not None else None,
            "duration": round((end or time.time()) - self.start, 3),
            "exitstatus": self.exitstatus,
            "drives": drives,
            "summary": dict(sorted(counts.items())),
            "files": dict(self.files),
            "tests": tests,
        }

    def finish(self, exitstatus: int | None = None) -> Path:
        """End the run: write results.json and index.html into the run folder; returns the
        path of results.json."""
        self.end = time.time()
        self.exitstatus = exitstatus
        doc = self.to_json(complete=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "results.json"
        tmp = path.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
        (self.folder / "index.html").write_text(render_combined_html(doc), encoding="utf-8")
        return path


def render_combined_html(doc: Mapping[str, Any]) -> str:
    """The summary page of a run on several drives (from its combined results.json): the
    drives with their identity, outcomes and a link to their own page, then the tests with
    one column per drive. Self-contained, like `render_html`."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>pynvme-rs run {e(doc['start'])} on {len(doc['drives'])} drives</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Test run {e(doc['start'])} on {len(doc['drives'])} drives</h1>",
        "<table>",
    ]
    rows = [
        ("start", doc["start"]),
        ("end", doc["end"]),
        ("duration", f"{doc['duration']:.2f} s"),
        ("exit status", doc.get("exitstatus")),
        ("summary", ", ".join(f"{n} {k}" for k, n in doc["summary"].items()) or "no tests"),
    ]
    for label, value in rows:
        parts.append(f"<tr><th>{e(label)}</th><td>{e(_fmt(value))}</td></tr>")
    files = " ".join(
        f'<a href="{e(name)}">{e(name)}</a>'
        for name in [*doc.get("files", {}).values(), "results.json"]
    )
    parts += ["</table>", f"<p>Files: {files}</p>", "<h2>Drives</h2>", "<table>"]
    parts.append(
        "<tr><th>drive</th><th>device</th><th>model number</th><th>serial number</th>"
        "<th>summary</th><th>exit status</th><th>results</th></tr>"
    )
    for drive in doc["drives"]:
        identity = drive.get("identity") or {}
        summary = ", ".join(f"{n} {k}" for k, n in drive["summary"].items())
        if drive.get("error"):
            summary = (summary + "; " if summary else "") + str(drive["error"])
        folder = drive.get("folder")
        link = f'<a href="{e(folder)}/index.html">{e(folder)}</a>' if folder else ""
        parts.append(
            f"<tr><td>{drive['drive']}</td><td>{e(drive['pciaddr'])}</td>"
            f"<td>{e(_fmt(identity.get('model_number')))}</td>"
            f"<td>{e(_fmt(identity.get('serial_number')))}</td>"
            f"<td>{e(summary or 'no tests')}</td><td>{e(_fmt(drive.get('exitstatus')))}</td>"
            f"<td>{link}</td></tr>"
        )
    parts += ["</table>", "<h2>Tests</h2>", "<table>"]
    parts.append(
        "<tr><th>test</th>"
        + "".join(f"<th>drive {d['drive']}</th>" for d in doc["drives"])
        + "</tr>"
    )
    cells: dict[str, dict[int, Mapping[str, Any]]] = {}
    for test in doc["tests"]:
        cells.setdefault(test["nodeid"], {})[test["drive"]] = test
    for nodeid, by_drive in cells.items():
        row = [f"<tr><td>{e(nodeid)}</td>"]
        for drive in doc["drives"]:
            test = by_drive.get(drive["drive"])
            if test is None:
                row.append("<td></td>")
                continue
            outcome = test["outcome"] or "unfinished"
            row.append(
                f'<td class="{e(outcome)}">{e(outcome)} ({_fmt(test["duration"] or 0.0, 3)} s)</td>'
            )
        parts.append("".join(row) + "</tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------------
# progress line


class Progress:
    """A status line on the terminal while an ioworker runs, updated in place, like fio's.

    ::

        with Progress(total_seconds=10) as p:
            while running:
                p.update(read_iops=r, write_iops=w, mbps=mb, lat_avg_us=a, lat_max_us=m,
                         elapsed=t)

    It shows nothing when `file` (default: `sys.stdout` when entered) is not a terminal, which
    includes pytest capturing the output (run pytest with `-s` to see it). The line is redrawn
    at most once per `interval` seconds (the first and last update always), and removed when
    the block ends. Drawn with rich, imported only when a line is shown.
    """

    def __init__(
        self, total_seconds: float = 0, file: IO[str] | None = None, interval: float = 1.0
    ) -> None:
        """`total_seconds`: the planned run time (0: unknown); `file`: where the line goes."""
        self.total_seconds = float(total_seconds or 0)
        self.file = file
        self.interval = interval
        self.values: dict[str, float] = {}
        self._live: Any = None
        self._last_draw = 0.0
        self._pending = False

    @property
    def enabled(self) -> bool:
        """Whether a line is being shown (inside the block, on a terminal)."""
        return self._live is not None

    def __enter__(self) -> Progress:
        """Start showing the line if the output is a terminal."""
        stream = self.file if self.file is not None else sys.stdout
        try:
            is_tty = bool(stream.isatty())
        except (AttributeError, ValueError):
            is_tty = False
        if is_tty:
            from rich.console import Console  # noqa: PLC0415 - only on a terminal
            from rich.live import Live  # noqa: PLC0415

            console = Console(file=stream, force_terminal=True, highlight=False)
            self._live = Live(
                self.render(),
                console=console,
                auto_refresh=False,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            # Drawn at the first update: a line of zeros would tell nothing.
            self._live.start(refresh=False)
            self._last_draw = -math.inf
        return self

    def __exit__(self, *exc: object) -> None:
        """Draw the last values and remove the line."""
        if self._live is not None:
            if self._pending:
                self._live.update(self.render(), refresh=True)
            self._live.stop()
            self._live = None

    def update(
        self,
        read_iops: float = 0,
        write_iops: float = 0,
        mbps: float = 0,
        lat_avg_us: float = 0,
        lat_max_us: float = 0,
        elapsed: float = 0,
    ) -> None:
        """Set the values of the line: IOPS of reads and writes, MB/s, average and maximum
        latency (µs), seconds elapsed (None counts as 0). Cheap when no line is shown."""
        given = {
            "read_iops": read_iops,
            "write_iops": write_iops,
            "mbps": mbps,
            "lat_avg_us": lat_avg_us,
            "lat_max_us": lat_max_us,
            "elapsed": elapsed,
        }
        self.values = {k: float(v) if v is not None else 0.0 for k, v in given.items()}
        if self._live is None:
            return
        now = time.monotonic()
        if now - self._last_draw >= self.interval:
            self._live.update(self.render(), refresh=True)
            self._last_draw = now
            self._pending = False
        else:
            self._pending = True

    def line(self) -> str:
        """The status line as text, e.g.
        `[r=12.3k w=4.1k IOPS][r+w 66.0MB/s][lat avg 45us max 1.2ms][00:05/00:10 50%]`."""
        v = self.values
        elapsed = float(v.get("elapsed", 0))
        when = _clock(elapsed)
        if self.total_seconds > 0:
            percent = min(100.0, 100.0 * elapsed / self.total_seconds)
            when += f"/{_clock(self.total_seconds)} {percent:.0f}%"
        return (
            f"[r={_si(v.get('read_iops', 0))} w={_si(v.get('write_iops', 0))} IOPS]"
            f"[{v.get('mbps', 0):.1f}MB/s]"
            f"[lat avg {_us(v.get('lat_avg_us', 0))} max {_us(v.get('lat_max_us', 0))}]"
            f"[{when}]"
        )

    def render(self) -> Any:
        """The line as a rich `Text`."""
        from rich.text import Text  # noqa: PLC0415

        return Text(self.line(), no_wrap=True, overflow="ellipsis")


def _si(value: float) -> str:
    """A rate with a k, M or G suffix: 12345 -> "12.3k"."""
    value = float(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


def _us(value: float) -> str:
    """A latency in µs as us, ms or s."""
    value = float(value)
    if value >= 1e6:
        return f"{value / 1e6:.2f}s"
    if value >= 1e3:
        return f"{value / 1e3:.1f}ms"
    return f"{value:.0f}us"


def _clock(seconds: float) -> str:
    """Seconds as mm:ss, or h:mm:ss from an hour on."""
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
