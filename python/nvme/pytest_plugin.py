"""pytest plugin of pynvme-rs: device options, the pynvme fixtures, and a log file per run.

Installed as the `pytest11` entry point `nvme`, so plain `pytest` in any folder has it. It gives
what pynvme's and PyNVMe3's conftest.py give:

* options `--pciaddr` (the device under test: a PCI address such as `0000:01:00.0`, or the
  simulated SSD: empty, `sim://` or `sim://?capacity=1T&lba=4096&namespaces=2`) and `--nsid`
  (namespace of the `nvme0n1` fixture, default 1); `--results=DIR` (default `results`, empty to
  disable) names the folder of the runs' reports; `--monitor[=PORT]` (`--monitor-host=ADDR`)
  serves the live monitor (`nvme.monitor`) in the browser during the run; `--quick` and
  `--bench KEY=VALUE` shorten or set the parameters of the benchmark suite (scripts/benchmark);
* fixtures `pciaddr`, `nsid` (session scope), `pcie`, `nvme0`, `subsystem`, `nvme0n1`, `qpair`,
  `buf`, `verify`, `id_ctrl`, `id_ns`, `aer` (function scope) and the autouse `script`;
* markers `device` and `sim_only`; a `sim_only` test is skipped on a real device;
* `item.rep_setup`, `item.rep_call`, `item.rep_teardown`: the reports of a test's phases, for
  fixtures that act on the outcome in their teardown;
* `results/<date>_<time>_<device>/`, a folder per run: `run.log` (every log record at DEBUG and
  above, every warning and every test outcome of the run), `junit.xml` (pytest's, unless
  `--junitxml` is given), `results.json`, CSV files and plots of ioworkers and logged series,
  and `index.html` (see `nvme.report`).

Any conftest.py or test module may redefine a fixture: pytest takes the nearest definition. A
conftest.py copied from pynvme that adds `--pciaddr` itself keeps working: this plugin then
leaves the option to it.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import logging
import os
import random
import re
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import pytest

import nvme
from nvme import cli, monitor, report

logger = logging.getLogger(__name__)

#: Format of the results log file, the same as the live log of the repository's pytest config.
LOG_FORMAT = "[%(asctime)s.%(msecs)03d] %(levelname)s %(funcName)s(%(lineno)d): %(message)s"
#: Date format of the results log file.
LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

_RESULTS_PLUGIN_NAME = "nvme-results-log"
#: Name of the run's log file in its results folder.
LOG_NAME = "run.log"
#: Name of the JUnit XML file the plugin asks pytest for in the results folder.
JUNIT_NAME = "junit.xml"


# --------------------------------------------------------------------------------------------
# options


class _Occurrences(list):  # type: ignore[type-arg]
    """The values of a repeated `--pciaddr` seen in one parse of the command line."""


class _DeviceList(argparse.Action):
    """`--pciaddr`: each occurrence adds a device; the plugin joins them with commas.

    The list is rebuilt at every parse: a value that is not a list of this parse (the default,
    or what the xdist controller handed a worker) is replaced, not added to.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        """Add one occurrence's value."""
        current = getattr(namespace, self.dest, None)
        occurrences = _Occurrences(current) if isinstance(current, _Occurrences) else _Occurrences()
        occurrences.append(str(values))
        setattr(namespace, self.dest, occurrences)


def _add_options(parser: pytest.Parser) -> None:
    """Add the plugin's options, leaving alone any that a conftest.py already added."""
    options: list[tuple[str, dict[str, Any]]] = [
        (
            "--pciaddr",
            {
                "action": _DeviceList,
                "default": "",
                "help": "device under test: PCI address (0000:01:00.0) or the simulated SSD "
                "('' or sim://, sim://?capacity=1T&lba=4096&namespaces=2); default: simulated "
                "SSD. Several devices (a,b or the option repeated) need pytest-xdist with one "
                "worker per device (-n N): worker N tests device N",
            },
        ),
        (
            "--nsid",
            {
                "action": "store",
                "type": int,
                "default": 1,
                "help": "namespace ID of the nvme0n1 fixture (default: 1)",
            },
        ),
        (
            "--results",
            {
                "action": "store",
                "default": "results",
                "metavar": "DIR",
                "help": "folder of the runs' reports: log, junit.xml, results.json, plots, "
                "index.html in DIR/<date>_<time>_<device>/ (default: results; empty: none)",
            },
        ),
        (
            "--plots",
            {
                "action": "store",
                "type": int,
                "default": report.MAX_PLOTTED_IOWORKERS,
                "metavar": "N",
                "help": "plot the first N ioworkers of the run (default: "
                f"{report.MAX_PLOTTED_IOWORKERS}; 0: none); every ioworker still gets its "
                "CSV files and its results.json entry",
            },
        ),
        (
            "--quick",
            {
                "action": "store_true",
                "default": False,
                "help": "benchmarks (scripts/benchmark): shorten every benchmark to seconds",
            },
        ),
        (
            "--bench",
            {
                "action": "append",
                "default": [],
                "metavar": "KEY=VALUE",
                "help": "benchmarks (scripts/benchmark): set one parameter (repeatable), e.g. "
                "--bench fresh_seconds=30",
            },
        ),
        (
            "--monitor",
            {
                "action": "store",
                "nargs": "?",
                "type": int,
                "const": monitor.DEFAULT_PORT,
                "default": None,
                "metavar": "PORT",
                "help": "serve the live monitor in the browser during the run, on PORT "
                f"(default {monitor.DEFAULT_PORT}; 0: any free port, shown at the start)",
            },
        ),
        (
            "--lab-wait",
            {
                "action": "store",
                "type": float,
                "default": 300.0,
                "metavar": "SECONDS",
                "help": "with labgrid's --lg-env: how long the session waits for its place to be "
                "reserved (default 300)",
            },
        ),
        (
            "--monitor-host",
            {
                "action": "store",
                "default": monitor.DEFAULT_HOST,
                "metavar": "ADDR",
                "help": "address the live monitor binds to (default 127.0.0.1: this machine "
                "only; 0.0.0.0 for a remote lab, no authentication)",
            },
        ),
    ]
    group = parser.getgroup("nvme", "NVMe device under test")
    for name, kwargs in options:
        try:
            group.addoption(name, **kwargs)
        except ValueError:
            # Already defined, typically by a conftest.py written for pynvme.
            pass


def _loaded_by_a_conftest(pluginmanager: pytest.PytestPluginManager) -> bool:
    """Tell whether a conftest.py is already registered, i.e. we came through `pytest_plugins`."""
    return any(
        str(getattr(plugin, "__file__", "") or "").endswith("conftest.py")
        for plugin in pluginmanager.get_plugins()
    )


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """Add the options now if a conftest.py loaded this plugin, else once conftests are loaded.

    Loaded as an entry point or with `-p`, the plugin comes before any conftest.py; adding the
    options then would make a pynvme conftest.py that adds `--pciaddr` fail with a conflict.
    """
    if _loaded_by_a_conftest(pluginmanager):
        _add_options(parser)


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Iterator[None]:
    """Add the options after the initial conftest.py files had their say."""
    try:
        return (yield)
    finally:
        _add_options(parser)


def is_simulator(pciaddr: str) -> bool:
    """Tell whether `pciaddr` names the simulated SSD ('' or a `sim://` URI)."""
    return pciaddr == "" or pciaddr.startswith("sim:")


def device_tag(pciaddr: str) -> str:
    """Short, file-name-safe name of a device: `sim`, `sim_namespaces=2`, `0000-01-00.0`."""
    if is_simulator(pciaddr):
        query = pciaddr.partition("?")[2]
        tag = "sim_" + query if query else "sim"
    else:
        tag = pciaddr.replace(":", "-")
    return re.sub(r"[^A-Za-z0-9.=+-]+", "_", tag)[:64]


#: A PCI address, with or without its domain: `0000:01:00.0`, `01:00.0`.
_PCI_ADDRESS = re.compile(r"^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")


def split_devices(value: str | list[str]) -> list[str]:
    """The devices a `--pciaddr` value names: `a,b` (or the option repeated) is a list.

    Each entry is a PCI address or a `sim://` URI; a comma inside a URI's value
    (`sim://?latency=read:50us,write:20us`) stays part of it. An empty value is one device,
    the default one. Raises `pytest.UsageError` naming `--pciaddr` for an empty entry or one
    that is neither.
    """
    text = ",".join(value) if isinstance(value, list) else value
    if "," not in text:
        return [text.strip()]
    devices: list[str] = []
    for part in text.split(","):
        entry = part.strip()
        if entry.startswith("sim:") or _PCI_ADDRESS.match(entry):
            devices.append(entry)
        elif devices and devices[-1].startswith("sim:") and entry:
            devices[-1] += "," + part
        else:
            raise pytest.UsageError(
                f"--pciaddr {text!r}: {entry!r} is neither a PCI address (0000:01:00.0) nor a "
                "sim:// URI; a list of devices is a,b (or --pciaddr given once per device)"
            )
    return devices


def drive_folder_name(drive: int, pciaddr: str) -> str:
    """The name of drive `drive`'s subfolder in the run folder of a run on several drives."""
    return f"drive{drive}_{device_tag(pciaddr)}"


def _xdist_workers(config: pytest.Config) -> int:
    """How many pytest-xdist workers this session starts (0 without xdist)."""
    if getattr(config.option, "dist", "no") == "no":
        return 0
    return len(getattr(config.option, "tx", None) or [])


def _worker_drive(config: pytest.Config) -> int | None:
    """The index of this xdist worker's device: given by the controller, else from the
    worker's name (gw3 is 3); None outside a worker."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return None
    if "nvme_drive" in workerinput:
        return int(workerinput["nvme_drive"])
    match = re.fullmatch(r"gw(\d+)", str(workerinput.get("workerid", "")))
    return int(match.group(1)) if match else 0


# --------------------------------------------------------------------------------------------
# configuration, markers, reports


def default_device(pciaddr: str, root: Path | None = None) -> str:
    """The device under test when `--pciaddr` is empty: the one NVMe function bound for testing.

    With exactly one function bound to vfio-pci or uio_pci_generic (`pynvme setup`), it is the
    default; otherwise (none, or several) the simulated SSD stays the default. `sim://` always
    names the simulated SSD. The `pynvme` quick-look commands choose the same way.
    """
    return cli.default_device(pciaddr, root or cli.SYSFS_PCI_DEVICES)


#: The devices of a run on several drives (`--pciaddr a,b`), in the controller and the workers.
DEVICES_KEY = pytest.StashKey[list[str]]()


def _choose_device(config: pytest.Config) -> None:
    """Fill in the default device and, for a uio device, make DMA memory come from hugepages.

    With several devices, the xdist controller checks there is one worker per device and keeps
    the list; each worker takes its own. Without xdist a list is a usage error.
    """
    if not hasattr(config.option, "pciaddr"):
        return
    devices = split_devices(config.option.pciaddr or "")
    if len(devices) > 1:
        config.stash[DEVICES_KEY] = devices
        drive = _worker_drive(config)
        if drive is None:
            workers = _xdist_workers(config)
            if workers != len(devices):
                how = f"{workers} xdist workers" if workers else "no xdist workers"
                raise pytest.UsageError(
                    f"--pciaddr names {len(devices)} devices ({', '.join(devices)}) but the "
                    f"session has {how}: several devices need pytest-xdist with one worker per "
                    f"device (-n {len(devices)})"
                )
            # The controller opens no device; its workers take theirs from the list.
            config.option.pciaddr = ",".join(devices)
            return
        if drive >= len(devices):
            raise pytest.UsageError(
                f"--pciaddr names {len(devices)} devices, none for xdist worker {drive}"
            )
        config.option.pciaddr = devices[drive]
    else:
        config.option.pciaddr = default_device(devices[0])
    # Without an IOMMU, buffers made before the device is opened must be hugepages too.
    cli.use_hugepages_for_uio(config.option.pciaddr)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register the markers and, unless disabled, the results folder of this run.

    Runs before pytest's junitxml plugin reads `--junitxml`, so that, when the user gave none,
    pytest writes its JUnit XML into the results folder.
    """
    lab = _register_lab(config)
    given = config.getoption("pciaddr", default="")
    if lab is None or any(given if isinstance(given, list) else [given]):
        _choose_device(config)
    elif hasattr(config.option, "pciaddr"):
        config.option.pciaddr = ""  # the place's NVMe function, at session start
    config.addinivalue_line(
        "markers", "device: runs on any device, no simulator-only feature is needed"
    )
    config.addinivalue_line(
        "markers",
        "sim_only: needs a feature of the simulated SSD (fault injection, ...); "
        "skipped when --pciaddr names a real device",
    )
    _register_monitor(config)
    devices = config.stash.get(DEVICES_KEY, None)
    folder = config.getoption("results", default="results")
    if folder and not config.getoption("collectonly", default=False):
        pciaddr = config.getoption("pciaddr", default="")
        workerinput = getattr(config, "workerinput", {})
        worker = workerinput.get("workerid")
        if devices and worker is None:
            # The run folder of a run on several drives: the combined summary.
            results = ResultsLog(Path(folder), f"{len(devices)}drives", None, _describe(config))
            results.devices = devices
        elif devices and workerinput.get("nvme_run_folder"):
            # One drive's subfolder in the controller's run folder.
            drive = _worker_drive(config) or 0
            results = ResultsLog(
                Path(workerinput["nvme_run_folder"]),
                drive_folder_name(drive, pciaddr),
                None,
                _describe(config),
                stamp=False,
            )
            results.drive = drive
        else:
            tag = f"lab_{lab.place}" if lab is not None and not pciaddr else device_tag(pciaddr)
            results = ResultsLog(Path(folder), tag, worker, _describe(config))
        results.pciaddr = pciaddr
        results.nsid = config.getoption("nsid", default=1)
        if worker is None and getattr(config.option, "xmlpath", "unset") is None:
            config.option.xmlpath = str(results.run_folder / JUNIT_NAME)
            results.junit = True
        results.config = config
        config.pluginmanager.register(results, _RESULTS_PLUGIN_NAME)
    if devices and getattr(config, "workerinput", None) is None:
        results = config.pluginmanager.get_plugin(_RESULTS_PLUGIN_NAME)
        config.pluginmanager.register(_DriveAssigner(devices, results), "nvme-drives")


def _register_lab(config: pytest.Config) -> Any:
    """With labgrid's `--lg-env` (or `LG_ENV`) naming an environment with a place, hold the
    place for the session (`nvme.lab.LabSession`); returns it, or None without one."""
    env_file = config.getoption("lg_env", default=None) or os.environ.get("LG_ENV")
    if not env_file or not config.pluginmanager.hasplugin("labgrid"):
        return None
    from nvme import lab  # noqa: PLC0415 - needs labgrid, imported only for a lab session

    session = lab.LabSession(config, env_file)
    if session.place is None:
        return None
    config.pluginmanager.register(session, lab.PLUGIN_NAME)
    return session


def _lab(config: pytest.Config) -> Any:
    """The session's `nvme.lab.LabSession`, None outside a labgrid lab."""
    return config.pluginmanager.get_plugin("nvme-lab")


def _register_monitor(config: pytest.Config) -> None:
    """With `--monitor`, serve the live monitor for the session (`nvme.monitor`)."""
    port = config.getoption("monitor", default=None)
    if port is None or config.getoption("collectonly", default=False):
        return
    host = config.getoption("monitor_host", default=monitor.DEFAULT_HOST)
    config.pluginmanager.register(monitor.PytestMonitor(host, port), "nvme-monitor")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the results log, whatever happened to the session."""
    results = config.pluginmanager.get_plugin(_RESULTS_PLUGIN_NAME)
    if results is not None:
        results.close()
        config.pluginmanager.unregister(results, _RESULTS_PLUGIN_NAME)


class _DriveAssigner:
    """In the xdist controller of a run on several drives: gives each worker its device (and
    the run folder, when results are written), and tells the combined summary when a worker
    ends."""

    def __init__(self, devices: list[str], results: ResultsLog | None) -> None:
        """Assign `devices` to the workers as they start; `results`: the run's results log."""
        self.devices = devices
        self.results = results
        self.busy: dict[str, int] = {}
        self.done: set[int] = set()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """A worker starts: it takes the first device that no running worker has and no
        worker finished (a worker that replaces a crashed one takes its device)."""
        taken = set(self.busy.values()) | self.done
        free = [i for i in range(len(self.devices)) if i not in taken]
        drive = free[0] if free else len(self.busy)
        self.busy[node.gateway.id] = drive
        node.workerinput["nvme_drive"] = drive
        if self.results is not None:
            node.workerinput["nvme_run_folder"] = str(self.results.run_folder.absolute())

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """A worker ended (or crashed: `error`, and its device is free for its replacement)."""
        drive = self.busy.pop(node.gateway.id, None)
        if drive is not None and not error:
            self.done.add(drive)
        if drive is None or self.results is None:
            return
        output = getattr(node, "workeroutput", None) or {}
        # A worker that crashed told nothing: its folder is the one it was to make.
        folder = output.get("nvme_results_folder") or str(
            self.results.run_folder.absolute() / drive_folder_name(drive, self.devices[drive])
        )
        self.results.drive_finished(drive, node.gateway.id, folder, error)


def _describe(config: pytest.Config) -> str:
    """One line naming the device under test, the namespace and the native driver's version."""
    pciaddr = config.getoption("pciaddr", default="")
    devices = config.stash.get(DEVICES_KEY, None)
    device = pciaddr if pciaddr else "sim:// (simulated SSD)"
    if devices and getattr(config, "workerinput", None) is None:
        device = f"{len(devices)} devices, one per xdist worker ({', '.join(devices)})"
    lab = _lab(config)
    if lab is not None and not pciaddr:
        device = f"the NVMe function of labgrid place {lab.place}"
    version = getattr(nvme._native, "__version__", "unknown") if nvme._native else "not built"
    return f"device {device}, nsid {config.getoption('nsid', default=1)}, driver {version}"


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Show the device under test and the native driver's version in the session header."""
    return ["nvme: " + _describe(config)]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a `sim_only` test when the device under test is real."""
    if item.get_closest_marker("sim_only") is not None:
        pciaddr = item.config.getoption("pciaddr", default="")
        if not is_simulator(pciaddr):
            pytest.skip(f"sim_only: needs the simulated SSD, not {pciaddr}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item as `rep_setup`, `rep_call`, `rep_teardown`."""
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report


# --------------------------------------------------------------------------------------------
# results log


class ResultsLog:
    """The results folder of one run: its log file, junit.xml, and the run report.

    The folder, `<date>_<time>_<device>[_<xdist worker>]` under `--results`, is named when the
    plugin is configured and created when the session starts, so `--help` and `--collect-only`
    leave nothing. `run.log` gets every log record, warning and test outcome in time order; the
    root logger is lowered to DEBUG for the whole run so that DEBUG records reach it, the
    console keeps its own level (`log_cli_level`). The `nvme.report.RunReport` of the run
    collects tests, warnings, ioworkers and series and writes results.json, the plots and
    index.html when the session finishes.
    """

    def __init__(
        self,
        folder: Path,
        tag: str,
        worker: str | None = None,
        header: str = "",
        stamp: bool = True,
    ) -> None:
        """Name the run folder after the current date and time (unless not `stamp`: a drive's
        subfolder), the device and the xdist worker, skipping names that exist already."""
        prefix = datetime.now().strftime("%Y-%m-%d_%H-%M-%S_") if stamp else ""
        suffix = f"_{worker}" if worker else ""
        self.folder = folder
        self.stem = f"{prefix}{tag}{suffix}"
        self.run_folder = self._free_name()
        self.header = header
        #: The devices of a run on several drives, in the xdist controller (None otherwise).
        self.devices: list[str] | None = None
        #: This worker's device index in a run on several drives (None otherwise).
        self.drive: int | None = None
        self.combined: report.CombinedReport | None = None
        self.pciaddr = ""
        self.nsid = 1
        self.junit = False
        self.config: pytest.Config | None = None
        self.path: Path | None = None
        self.report: report.RunReport | None = None
        self.handler: logging.Handler | None = None
        self.counts: Counter[str] = Counter()
        # Call reports waiting for their teardown, by (xdist worker, test): the controller of
        # a run on several drives gets the reports of its workers interleaved.
        self._pending: dict[tuple[str, str], pytest.TestReport] = {}
        self.started = time.time()
        self._saved_root_level: int | None = None
        # Lowered already here: pytest's logging plugin captures the root level per phase.
        root = logging.getLogger()
        self._saved_root_level = root.level
        root.setLevel(logging.DEBUG)

    def _free_name(self) -> Path:
        """The first run folder name that does not exist yet."""
        for n in range(1000):
            path = self.folder / (self.stem + (f"_{n}" if n else ""))
            if not path.exists():
                return path
        raise FileExistsError(f"no free results folder name for {self.stem} in {self.folder}")

    def _create(self) -> Path:
        """Create the run folder, never sharing one with another run of the same second."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(1000):
            try:
                self.run_folder.mkdir()
            except FileExistsError:
                self.run_folder = self._free_name()
                continue
            return self.run_folder
        raise FileExistsError(f"no free results folder name for {self.stem} in {self.folder}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Create the folder, attach the log file to the root logger, start the run report."""
        planned = self.run_folder
        folder = self._create()
        if self.junit and folder != planned and self.config is not None:
            # Another run took the planned name meanwhile: move pytest's junit.xml along.
            from _pytest import junitxml  # noqa: PLC0415

            xml = self.config.stash.get(junitxml.xml_key, None)
            if xml is not None:
                xml.logfile = str((folder / JUNIT_NAME).absolute())
        self.path = folder / LOG_NAME
        handler = logging.FileHandler(self.path, mode="a", encoding="utf-8")
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT))
        logging.getLogger().addHandler(handler)
        self.handler = handler
        files = {"log": LOG_NAME}
        if self.junit:
            files["junit"] = JUNIT_NAME
        version = getattr(nvme._native, "__version__", "") if nvme._native else ""
        if self.devices:
            # The controller runs no test itself: each drive's worker reports into its own
            # subfolder, and the run folder gets the combined summary.
            self.combined = report.CombinedReport(folder, self.devices, files)
        else:
            self.report = report.RunReport(folder, self.pciaddr, self.nsid, version, files)
            if self.config is not None:
                self.report.max_plotted_ioworkers = max(0, self.config.getoption("plots", 100))
            self.report.activate()
        self._emit(logging.INFO, "session", f"pytest session in {Path.cwd()}; {self.header}")

    def drive_finished(
        self, drive: int, worker: str, folder: str | None, error: Any = None
    ) -> None:
        """A drive's worker ended (`_DriveAssigner`): say so in the log and the summary."""
        if error:
            self._emit(logging.ERROR, "session", f"drive {drive} ({worker}) crashed: {error}")
        if self.combined is not None:
            self.combined.drive_finished(drive, worker, folder, str(error) if error else None)

    def _emit(self, level: int, func: str, message: str, lineno: int = 0) -> None:
        """Write one line in the file's format, without going through other handlers."""
        if self.handler is None:
            return
        record = logging.LogRecord(__name__, level, __file__, lineno, message, None, None, func)
        self.handler.handle(record)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        """A test starts: ioworkers and series recorded from now on belong to it."""
        if self.report is not None:
            self.report.begin_test(nodeid)

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        """A test is over, teardown included."""
        if self.report is not None:
            self.report.end_test()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Write the outcome of each test after its teardown, with the failure's text if any.

        A test's outcome is written once its fixtures are torn down, so it follows the
        records of the teardown (such as "test duration"); an error in setup or teardown gets
        a line of its own.
        """
        if self.report is not None:
            self.report.add_phase(
                report.nodeid,
                report.when or "",
                report.outcome,
                report.duration,
                report.longreprtext if report.failed else None,
                hasattr(report, "wasxfail"),
            )
        node = getattr(report, "node", None)
        key = (str(getattr(getattr(node, "gateway", None), "id", "")), report.nodeid)
        if report.when == "call":
            self._pending[key] = report
            return
        pending = self._pending.pop(key, None) if report.when == "teardown" else None
        if pending is not None:
            self._write_outcome(pending)
        self._write_outcome(report)

    def _write_outcome(self, report: pytest.TestReport) -> None:
        """Write one report's outcome line, if it has one worth a line."""
        outcome = _outcome(report)
        if outcome is None:
            return
        self.counts[outcome] += 1
        func = (report.head_line or report.nodeid or "test").split(".")[-1].split("[")[0]
        lineno = (report.location[1] or 0) + 1 if report.location else 0
        phase = f" at {report.when}" if report.when != "call" and outcome == "ERROR" else ""
        message = f"{outcome}{phase} {report.nodeid} ({report.duration:.3f} s)"
        node = getattr(report, "node", None)
        if node is not None and self.devices:
            drive = getattr(node, "workerinput", {}).get("nvme_drive")
            message = f"[drive {drive}, {node.gateway.id}] {message}"
        level = logging.INFO
        if report.failed:
            level = logging.ERROR
            message += "\n" + report.longreprtext
        elif report.skipped and isinstance(report.longrepr, tuple):
            message += f": {report.longrepr[2]}"
        self._emit(level, func, message, lineno)

    def pytest_warning_recorded(
        self, warning_message: Any, when: str, nodeid: str, location: Any
    ) -> None:
        """Write each warning (device error statuses, AERs, ...) with the test that raised it."""
        category = getattr(warning_message.category, "__name__", "Warning")
        where = nodeid or when
        self._emit(
            logging.WARNING,
            "warning",
            f"{where}: {category}: {warning_message.message}",
            warning_message.lineno or 0,
        )
        if self.report is not None:
            self.report.add_warning(
                str(warning_message.message),
                category,
                nodeid,
                when,
                str(warning_message.filename or ""),
                int(warning_message.lineno or 0),
            )

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Write the totals, as pytest's summary line has them, and the run report."""
        parts = [f"{n} {outcome.lower()}" for outcome, n in sorted(self.counts.items())]
        summary = ", ".join(parts) if parts else "no tests ran"
        elapsed = time.time() - self.started
        self._emit(
            logging.INFO, "session", f"{summary} in {elapsed:.2f}s (exit status {int(exitstatus)})"
        )
        if self.report is not None:
            try:
                self.report.finish(int(exitstatus))
            except Exception as e:
                logger.error("run report not written: %s: %s", type(e).__name__, e)
            workeroutput = getattr(session.config, "workeroutput", None)
            if workeroutput is not None:
                # Tells the controller of a run on several drives where this drive's report is.
                workeroutput["nvme_results_folder"] = str(self.report.folder.absolute())
        if self.combined is not None:
            try:
                self.combined.finish(int(exitstatus))
            except Exception as e:
                logger.error("combined summary not written: %s: %s", type(e).__name__, e)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Tell where the results are."""
        if self.path is not None:
            terminalreporter.write_line(f"results log: {self.path}")
            terminalreporter.write_line(f"results: {self.path.parent / 'index.html'}")

    def close(self) -> None:
        """Stop the run report, detach and close the file, give the root logger its level
        back."""
        if self.report is not None:
            self.report.deactivate()
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            self.handler.close()
            self.handler = None
        if self._saved_root_level is not None:
            logging.getLogger().setLevel(self._saved_root_level)
            self._saved_root_level = None


def _outcome(report: pytest.TestReport) -> str | None:
    """Name a report's outcome as pytest's summary does, or None for an uneventful phase."""
    if hasattr(report, "wasxfail"):
        return "XPASSED" if report.passed else "XFAILED"
    if report.when == "call":
        return report.outcome.upper()
    if report.failed:
        return "ERROR"
    if report.skipped:
        return "SKIPPED"
    return None


# --------------------------------------------------------------------------------------------
# fixtures


def _is_empty_test(function: Callable[..., Any] | None) -> bool:
    """Tell whether a test's body is only `pass` (after an optional docstring)."""
    if function is None:
        return False
    try:
        source = textwrap.dedent(inspect.getsource(function))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return False
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    body = node.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]
    return bool(body) and all(isinstance(statement, ast.Pass) for statement in body)


@pytest.fixture(autouse=True)
def script(request: pytest.FixtureRequest) -> Iterator[None]:
    """Frame every test: skip empty ones, seed the random generators, log the duration.

    A test whose body is only `pass` is a stub and is skipped ("empty test function"). The seed,
    the current time in microseconds masked to 32 bits, goes to `srand()` (the driver's
    generators, for ioworker LBAs and sizes) and to Python's `random`.
    """
    if _is_empty_test(getattr(request, "function", None)):
        pytest.skip("empty test function")
    start = time.time()
    seed = int(start * 1_000_000) & 0xFFFFFFFF
    if nvme.native_available():
        nvme.srand(seed)
    random.seed(seed)
    logger.debug("random seed: 0x%x", seed)
    yield
    logger.info("test duration: %.3f sec", time.time() - start)


@pytest.fixture(scope="session")
def pciaddr(request: pytest.FixtureRequest) -> str:
    """The device under test, from `--pciaddr` ('' is the simulated SSD)."""
    return str(request.config.getoption("pciaddr", default=""))


@pytest.fixture(scope="session")
def nsid(request: pytest.FixtureRequest) -> int:
    """Namespace ID of the `nvme0n1` fixture, from `--nsid`."""
    return int(request.config.getoption("nsid", default=1))


@pytest.fixture
def pcie(pciaddr: str, request: pytest.FixtureRequest) -> Iterator[nvme.Pcie]:
    """The PCIe function of the device under test, closed after the test.

    In a labgrid lab whose power port is the session's relay (`nvme.lab.SimPowerRelay`), the
    relay switches this simulated SSD's power while the test runs.
    """
    ret = nvme.Pcie(pciaddr)
    lab = _lab(request.config)
    relay = getattr(lab, "relay", None)
    sim = ret.sim if relay is not None else None
    if sim is not None:
        relay.attach(sim)
    yield ret
    if sim is not None:
        relay.detach(sim)
    ret.close()


@pytest.fixture
def nvme0(pcie: nvme.Pcie) -> nvme.Controller:
    """The NVMe controller, enabled and initialised the default way.

    The first one of a recorded run is asked for Identify Controller, so that results.json
    names the device (model number, serial number, firmware revision).
    """
    ret = nvme.Controller(pcie)
    report.record_controller(ret)
    return ret


@pytest.fixture
def subsystem(nvme0: nvme.Controller, request: pytest.FixtureRequest) -> nvme.Subsystem:
    """The NVM subsystem of `nvme0`: power cycles, subsystem reset, shutdown notification.

    In a labgrid lab (`--lg-env`, `nvme.lab`) whose target has a power driver, power off and on
    go through that driver (`PowerProtocol.off()` / `on()`) inside the driver's lifecycle.
    """
    lab = _lab(request.config)
    power = lab.power() if lab is not None else None
    if power is None:
        return nvme.Subsystem(nvme0)
    return nvme.Subsystem(nvme0, poweron_cb=power.on, poweroff_cb=power.off)


@pytest.fixture
def nvme0n1(nvme0: nvme.Controller, nsid: int) -> Iterator[nvme.Namespace]:
    """Namespace `--nsid` (default 1) of `nvme0`, closed after the test."""
    ret = nvme.Namespace(nvme0, nsid)
    yield ret
    ret.close()


@pytest.fixture
def qpair(nvme0: nvme.Controller) -> Iterator[nvme.Qpair]:
    """An IO queue pair as deep as the controller allows (CAP.MQES + 1), at most 1024, deleted
    after the test."""
    depth = min(1024, (nvme0.cap & 0xFFFF) + 1)
    ret = nvme.Qpair(nvme0, depth)
    yield ret
    ret.delete()


@pytest.fixture
def buf() -> nvme.Buffer:
    """A 4 KiB DMA buffer named "pynvme buffer"."""
    return nvme.Buffer(4096, "pynvme buffer")


@pytest.fixture
def verify(nvme0n1: nvme.Namespace) -> bool:
    """Turn on data verification of `nvme0n1`; True if the namespace could enable it."""
    return bool(nvme0n1.verify_enable(True))


@pytest.fixture
def id_ctrl(nvme0: nvme.Controller) -> Any:
    """Identify Controller data of `nvme0`, fields named as in the spec (`id_ctrl.mdts`)."""
    return nvme0.id_ctrl()


@pytest.fixture
def id_ns(nvme0n1: nvme.Namespace) -> Any:
    """Identify Namespace data of `nvme0n1`, fields named as in the spec (`id_ns.nsze`)."""
    return nvme0n1.id_ns()


@pytest.fixture
def aer() -> None:
    """Gone since pynvme 2.0: send the Asynchronous Event Request with `nvme0.aer()`."""
    pytest.fail("aer fixture is replaced by admin command nvme0.aer()", pytrace=False)
