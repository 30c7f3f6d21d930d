"""Run reports (`nvme.report`): the results folder, results.json, CSV files, plots, index.html,
and the progress line.

Inner pytest sessions load the plugin with `-p nvme.pytest_plugin` and entry-point autoloading
off; ioworkers are recorded with synthetic results through `report.record_ioworker`, the call
the ioworker makes when it closes.
"""

from __future__ import annotations

import array
import csv
import json
import math
import os
import re
import select
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest

import nvme
from nvme import report

needs_native = pytest.mark.skipif(
    not nvme.native_available(),
    reason=f"native module nvme._native cannot be imported: {nvme._native_error}",
)

PYTHON_SOURCE = str(Path(__file__).resolve().parent.parent / "python")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module", autouse=True)
def _pyplot_loaded() -> None:
    """Import matplotlib before any `pytester`: pytester unloads the modules imported during a
    test when it ends, and numpy's extension cannot be loaded twice in one process."""
    report._pyplot()


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Run an inner pytest session in-process with only this plugin loaded."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

    def run_inner(*args: str) -> pytest.RunResult:
        return pytester.runpytest("-p", "nvme.pytest_plugin", *args)

    return run_inner


def _run_folder(pytester: pytest.Pytester) -> Path:
    (folder,) = sorted((pytester.path / "results").iterdir())
    return folder


def _load(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def _test(doc: dict, name: str) -> dict:
    (test,) = [t for t in doc["tests"] if t["nodeid"].endswith("::" + name)]
    return test


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file, from its IHDR chunk; asserts it is a PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# A synthetic result as the ioworker gives it: 5 seconds, 50 % reads, a latency distribution
# of 1,000,000 one-µs buckets with IOs at 20, 50, 100 and 5000 µs.
SYNTHETIC = """
from nvme import report

def distribution():
    d = [0] * 1_000_000
    d[20], d[50], d[100], d[5000] = 500, 400, 99, 1
    return d

def result(**more):
    r = {
        "io_count_read": 500, "io_count_nonread": 500, "io_count_write": 500,
        "lba_count_read": 4000, "lba_count_nonread": 4000, "lba_count_write": 4000,
        "mseconds": 5001, "latency_max_us": 5000, "latency_average_us": 42.5, "error": 0,
        "cpu_usage": 0.25,
        "io_count_per_second": [200, 210, 190, 200, 200],
        "read_per_second": [100, 105, 95, 100, 100],
        "write_per_second": [100, 105, 95, 100, 100],
        "bytes_per_second": [819200, 860160, 778240, 819200, 819200],
        "latency_distribution": distribution(),
    }
    r.update(more)
    return r

ARGS = {"io_size": 8, "lba_random": True, "read_percentage": 50, "time": 5, "qdepth": 16,
        "op_percentage": {2: 50, 1: 50}, "region_end": range(0, 100)}
"""


# ---------------------------------------------------------------------------------------------
# the results folder and results.json


@needs_native
# The inner session's tests raise device warnings on purpose: they are its data, not ours.
@pytest.mark.filterwarnings("default:ERROR status", "default:AER notification")
def test_results_folder_holds_log_junit_json_and_html(pytester, run):
    pytester.makepyfile(
        test_run="""
        import warnings
        import pytest

        def test_device(nvme0):
            warnings.warn(UserWarning("ERROR status: 02/81"))

        def test_fail():
            assert 1 == 2, "wrong value"

        def test_skip():
            pytest.skip("not today")

        @pytest.mark.xfail(reason="known")
        def test_xfail():
            assert 0

        def test_error(aer):
            x = 1
        """
    )
    started = datetime.now().astimezone()
    result = run("--pciaddr=sim://?model=ACME-X1&serial=SN42&fw=FW9")
    result.assert_outcomes(passed=1, failed=1, skipped=1, xfailed=1, errors=1)
    folder = _run_folder(pytester)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_sim_model=ACME-X1_serial=SN42_fw=FW9", folder.name
    )
    names = {p.name for p in folder.iterdir()}
    assert {"run.log", "junit.xml", "results.json", "index.html"} <= names
    assert "PASSED test_run.py::test_device" in (folder / "run.log").read_text()

    suite = ET.parse(folder / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "1", "1")

    doc = _load(folder)
    assert doc["complete"] is True
    assert doc["format"] == report.RESULTS_FORMAT
    start, end = datetime.fromisoformat(doc["start"]), datetime.fromisoformat(doc["end"])
    assert started.timestamp() - 1 <= start.timestamp() <= end.timestamp()
    assert doc["exitstatus"] == 1
    device = doc["device"]
    assert device["pciaddr"] == "sim://?model=ACME-X1&serial=SN42&fw=FW9"
    assert device["simulated"] is True and device["nsid"] == 1
    assert device["identity"] == {
        "model_number": "ACME-X1",
        "serial_number": "SN42",
        "firmware_revision": "FW9",
        "vid": device["identity"]["vid"],
        "ssvid": device["identity"]["ssvid"],
    }
    assert doc["files"] == {"log": "run.log", "junit": "junit.xml"}
    assert doc["summary"] == {"error": 1, "failed": 1, "passed": 1, "skipped": 1, "xfailed": 1}
    outcomes = {t["nodeid"]: t["outcome"] for t in doc["tests"]}
    assert outcomes == {
        "test_run.py::test_device": "passed",
        "test_run.py::test_fail": "failed",
        "test_run.py::test_skip": "skipped",
        "test_run.py::test_xfail": "xfailed",
        "test_run.py::test_error": "error",
    }
    for test in doc["tests"]:
        assert test["duration"] >= 0
        assert test["duration"] == pytest.approx(
            sum(p["duration"] for p in test["phases"].values()), abs=1e-5
        )
        assert test["ioworkers"] == [] and test["series"] == []
    device_test = _test(doc, "test_device")
    assert set(device_test["phases"]) == {"setup", "call", "teardown"}
    (warning,) = device_test["warnings"]
    assert warning["message"] == "ERROR status: 02/81"
    assert warning["category"] == "UserWarning"
    assert warning["filename"].endswith("test_run.py") and warning["lineno"] == 5
    assert "wrong value" in _test(doc, "test_fail")["longrepr"]
    assert _test(doc, "test_error")["phases"]["setup"]["outcome"] == "failed"
    assert "aer fixture is replaced" in _test(doc, "test_error")["longrepr"]


def test_identity_is_unknown_without_a_controller(pytester, run):
    pytester.makepyfile("def test_x(): x = 1")
    run().assert_outcomes(passed=1)
    doc = _load(_run_folder(pytester))
    assert doc["device"]["identity"] is None
    assert doc["device"]["pciaddr"] == "sim://"


def test_junitxml_given_by_the_user_goes_where_asked(pytester, run):
    pytester.makepyfile("def test_x(): x = 1")
    run("--junitxml=elsewhere.xml").assert_outcomes(passed=1)
    folder = _run_folder(pytester)
    assert not (folder / "junit.xml").exists()
    assert (pytester.path / "elsewhere.xml").exists()
    assert _load(folder)["files"] == {"log": "run.log"}


def test_results_disabled_writes_nothing_and_records_nothing(pytester, run):
    pytester.makepyfile(
        SYNTHETIC
        + """
def test_x():
    report.record_ioworker(ARGS, result())
    report.log_series("t", [1, 2])
    assert report.active_run() is None
"""
    )
    run("--results=").assert_outcomes(passed=1)
    assert not (pytester.path / "results").exists()
    assert not list(pytester.path.glob("*.xml"))


def test_results_json_is_written_during_the_run(pytester, run):
    pytester.makepyfile(
        """
        import json
        from nvme import report

        def test_first():
            x = 1

        def test_second():
            doc = json.loads((report.active_run().folder / "results.json").read_text())
            assert doc["complete"] is False and doc["end"] is None
            assert doc["tests"][0]["nodeid"].endswith("test_first")
            assert doc["tests"][0]["outcome"] == "passed"
        """
    )
    run().assert_outcomes(passed=2)
    assert _load(_run_folder(pytester))["complete"] is True


def test_no_results_folder_for_collect_only(pytester, run):
    pytester.makepyfile("def test_x(): x = 1")
    run("--collect-only")
    assert not (pytester.path / "results").exists()
    assert not list(pytester.path.rglob("junit.xml"))


# ---------------------------------------------------------------------------------------------
# ioworkers: results.json, CSV files, plots


def test_ioworker_results_csv_and_plots(pytester, run):
    pytester.makepyfile(
        test_io=SYNTHETIC
        + """
import pytest

@pytest.mark.parametrize("size", ["4k"])
def test_io(size):
    report.record_ioworker(ARGS, result(latency_percentiles={"99.9": 5000, 50: 50.0}))
    report.record_ioworker({"io_size": 1}, {"io_count_read": 10, "mseconds": 11})

def test_more():
    report.record_ioworker(ARGS, result(latency_percentiles=None))
"""
    )
    run().assert_outcomes(passed=2)
    folder = _run_folder(pytester)
    doc = _load(folder)

    first, bare = _test(doc, "test_io[4k]")["ioworkers"]
    assert first["index"] == 1 and bare["index"] == 2
    assert first["args"] == {
        "io_size": 8,
        "lba_random": True,
        "read_percentage": 50,
        "time": 5,
        "qdepth": 16,
        "op_percentage": {"2": 50, "1": 50},
        "region_end": "range(0, 100)",
    }
    res = first["result"]
    assert res["io_count_read"] == 500 and res["latency_average_us"] == 42.5
    assert res["io_count_per_second"] == [200, 210, 190, 200, 200]
    assert res["latency_percentiles"] == {"99.9": 5000, "50": 50.0}
    dist = res["latency_distribution"]
    assert dist["length"] == 1_000_000 and dist["total"] == 1000
    assert dist["buckets"] == [[20, 500], [50, 400], [100, 99], [5000, 1]]
    assert first["summary"]["iops"] == pytest.approx(1000 * 1000 / 5001)
    assert first["summary"]["mbps"] == pytest.approx(0.8192)

    stem = "test_io_4k_ioworker1"
    assert first["files"] == {
        "per_second_csv": f"{stem}_per_second.csv",
        "throughput_png": f"{stem}_throughput.png",
        "latency_csv": f"{stem}_latency.csv",
        "latency_png": f"{stem}_latency.png",
    }
    with open(folder / f"{stem}_per_second.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [
        "second",
        "iops",
        "read_iops",
        "write_iops",
        "bytes_per_second",
        "mb_per_second",
    ]
    assert rows[1] == ["1", "200", "100", "100", "819200", "0.8192"]
    assert len(rows) == 6
    with open(folder / f"{stem}_latency.csv", newline="") as f:
        assert list(csv.reader(f)) == [
            ["percentile", "latency_us"],
            ["50.0", "50.0"],
            ["99.9", "5000.0"],
        ]
    for key in ("throughput_png", "latency_png"):
        width, height = _png_size(folder / first["files"][key])
        assert width > 300 and height > 200

    # Only the mandatory counters: recorded, no CSV, no plot.
    assert bare["result"] == {"io_count_read": 10, "mseconds": 11}
    assert bare["files"] == {}
    assert not list(folder.glob("test_io_4k_ioworker2*"))

    # No percentiles given: derived from the distribution, pynvme's rule.
    (derived,) = _test(doc, "test_more")["ioworkers"]
    assert derived["result"]["latency_percentiles"]["50"] == 20
    assert derived["result"]["latency_percentiles"]["99.9"] == 100
    assert derived["result"]["latency_percentiles"]["99.99"] == 5000
    assert (folder / "test_more_ioworker1_latency.png").stat().st_size > 1000


def test_log_series_csv_plot_and_json(pytester, run):
    pytester.makepyfile(
        """
        from nvme.report import log_series

        def test_temperature():
            log_series("composite temperature", [310, 311, 315.5], x=[0, 10, 20], unit="K")
            log_series("queue depth", [1, 2, 4, 8])
        """
    )
    run().assert_outcomes(passed=1)
    folder = _run_folder(pytester)
    first, second = _test(_load(folder), "test_temperature")["series"]
    assert first["name"] == "composite temperature" and first["unit"] == "K"
    assert first["x"] == [0.0, 10.0, 20.0] and first["values"] == [310.0, 311.0, 315.5]
    assert second["x"] is None and second["values"] == [1.0, 2.0, 4.0, 8.0]
    stem = "test_temperature_series1_composite_temperature"
    assert first["files"] == {"csv": f"{stem}.csv", "png": f"{stem}.png"}
    with open(folder / f"{stem}.csv", newline="") as f:
        assert list(csv.reader(f)) == [
            ["x", "composite temperature (K)"],
            ["0.0", "310.0"],
            ["10.0", "311.0"],
            ["20.0", "315.5"],
        ]
    assert _png_size(folder / f"{stem}.png")[0] > 300
    assert _png_size(folder / second["files"]["png"])[0] > 300


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", [1]), "name must be a non-empty string"),
        (("t", ["a"]), "values holds 'a', not a number"),
        (("t", 5), "values must be a sequence"),
        (("t", [1, 2], [0]), "x has 1 entries, values 2"),
    ],
)
def test_log_series_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        report.log_series(*args)


# The inner session's tests raise device warnings on purpose: they are its data, not ours.
@pytest.mark.filterwarnings("default:ERROR status", "default:AER notification")
def test_index_html_lists_tests_and_embeds_the_plots(pytester, run):
    pytester.makepyfile(
        test_page=SYNTHETIC
        + """
import warnings

def test_io():
    warnings.warn(UserWarning("AER notification is triggered: 0x10100"))
    report.record_ioworker(ARGS, result())
    report.log_series("temperature <K>", [300, 301])

def test_broken():
    assert 0, "broken & <escaped>"
"""
    )
    run().assert_outcomes(passed=1, failed=1)
    folder = _run_folder(pytester)
    page = (folder / "index.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "test_page.py::test_io" in page and "test_page.py::test_broken" in page
    assert '<td class="passed">passed</td>' in page
    assert '<td class="failed">failed</td>' in page
    assert "AER notification is triggered: 0x10100" in page
    assert "broken &amp; &lt;escaped&gt;" in page
    assert "temperature &lt;K&gt;" in page
    images = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(images) == sorted(
        [
            "test_io_ioworker1_throughput.png",
            "test_io_ioworker1_latency.png",
            "test_io_series1_temperature_K.png",
        ]
    )
    for image in images:
        assert (folder / image).stat().st_size > 1000
    # Opens from disk: nothing fetched from elsewhere.
    assert not re.search(r"<script|<link|https?://|//cdn", page, re.I)


def test_a_run_without_plots_does_not_import_matplotlib(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("PYTHONPATH", PYTHON_SOURCE)
    pytester.makeconftest(
        """
        import sys

        def pytest_unconfigure(config):
            with open("modules.txt", "w") as f:
                f.write(" ".join(m for m in ("matplotlib", "rich") if m in sys.modules))
        """
    )
    pytester.makepyfile("def test_x(): x = 1")
    pytester.runpytest_subprocess("-p", "nvme.pytest_plugin").assert_outcomes(passed=1)
    assert (pytester.path / "modules.txt").read_text() == ""
    assert (_run_folder(pytester) / "index.html").exists()


# ---------------------------------------------------------------------------------------------
# helpers


def test_percentiles_from_distribution_follow_pynvme():
    dist = [0] * 100
    dist[10], dist[20], dist[99] = 90, 9, 1
    assert report.percentiles_from_distribution(dist, [50, 90, 90.1, 99, 99.9, 100]) == {
        "50": 10,
        "90": 10,
        "90.1": 20,
        "99": 20,
        "99.9": 99,
        "100": 99,
    }
    assert report.percentiles_from_distribution([0, 0]) == {}


def test_distribution_compacts_and_expands():
    dist = [0] * 1_000_000
    dist[3], dist[999_999] = 7, 2
    compact = report.compact_distribution(dist)
    assert compact == {
        "bucket_us": 1,
        "length": 1_000_000,
        "total": 9,
        "buckets": [[3, 7], [999_999, 2]],
    }
    assert len(json.dumps(compact)) < 100
    assert report.expand_distribution(compact) == dist


def test_record_ioworker_takes_any_sequence(tmp_path):
    np = pytest.importorskip("numpy")

    dist = np.zeros(1000, dtype=np.uint32)
    dist[7] = 3
    run = report.RunReport(tmp_path)
    entry = run.add_ioworker(
        {"qdepth": np.int64(8)},
        {
            "io_count_per_second": array.array("q", [5, 6]),
            "bytes_per_second": np.array([4096, 8192]),
            "latency_distribution": dist,
            "cpu_usage": np.float64(0.5),
        },
    )
    assert entry["args"] == {"qdepth": 8}
    assert entry["result"]["io_count_per_second"] == [5, 6]
    assert entry["result"]["latency_distribution"]["buckets"] == [[7, 3]]
    assert entry["result"]["latency_percentiles"]["50"] == 7
    assert entry["result"]["cpu_usage"] == 0.5
    with open(tmp_path / entry["files"]["per_second_csv"], newline="") as f:
        assert list(csv.reader(f))[1:] == [
            ["1", "5", "4096", "0.004096"],
            ["2", "6", "8192", "0.008192"],
        ]
    run.finish(0)
    assert _png_size(tmp_path / entry["files"]["latency_png"])[0] > 300
    json.loads((tmp_path / "results.json").read_text())


def test_a_report_that_cannot_be_written_does_not_fail_the_ioworker(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    run = report.RunReport(blocker / "run")  # a folder under a file: never writable
    run.activate()
    try:
        report.record_ioworker({}, {"io_count_per_second": [1]})
        report.log_series("t", [1])
    finally:
        run.deactivate()
    messages = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(messages) == 2
    assert messages[0].startswith(f"ioworker not recorded in {blocker / 'run'}: ")
    assert messages[1].startswith("series 't' not recorded in ")


def test_plots_of_the_first_ioworkers_only(tmp_path):
    run = report.RunReport(tmp_path)
    run.max_plotted_ioworkers = 1
    result = {"io_count_per_second": [1, 2], "latency_percentiles": {"50": 3}}
    first, second = run.add_ioworker({}, result), run.add_ioworker({}, result)
    run.finish(0)
    assert set(first["files"]) == {
        "per_second_csv",
        "throughput_png",
        "latency_csv",
        "latency_png",
    }
    assert set(second["files"]) == {"per_second_csv", "latency_csv"}
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "session_ioworker1_latency.png",
        "session_ioworker1_throughput.png",
    ]
    assert (tmp_path / "session_ioworker2_per_second.csv").exists()


def test_record_ioworker_keeps_json_valid(tmp_path):
    run = report.RunReport(tmp_path, "0000:01:00.0")
    run.activate()
    try:
        report.record_ioworker(
            {"io_sequence": [(0, 2, i, 1) for i in range(5000)], "cb": print, "raw": b"\x01\x02"},
            {"cpu_usage": math.nan, "latency_average_us": math.inf, "op": {2: 1}},
        )
    finally:
        run.deactivate()
    assert report.active_run() is None
    run.finish(0)
    doc = json.loads((tmp_path / "results.json").read_text())  # strict JSON: no NaN
    (worker,) = doc["session"]["ioworkers"]
    assert worker["args"]["io_sequence"]["length"] == 5000
    assert worker["args"]["io_sequence"]["head"][1] == [0, 2, 1, 1]
    assert worker["args"]["cb"].startswith("<built-in function print")
    assert worker["args"]["raw"] == "0102"
    assert worker["result"] == {"cpu_usage": None, "latency_average_us": None, "op": {"2": 1}}
    assert doc["device"]["simulated"] is False
    assert "outside any test" in (tmp_path / "index.html").read_text()


# ---------------------------------------------------------------------------------------------
# progress line

PROGRESS_SCRIPT = textwrap.dedent(
    """
    import time
    from nvme.report import Progress

    with Progress(3, interval=0.05) as p:
        for second in range(1, 4):
            p.update(read_iops=12345, write_iops=4100, mbps=66.5, lat_avg_us=45,
                     lat_max_us=1200, elapsed=second)
            time.sleep(0.1)
        print("enabled", p.enabled)
    print("done")
    """
)


def _python_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=PYTHON_SOURCE, TERM="xterm-256color", COLUMNS="120")
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)
    return env


def _run_in_pty(argv: list[str], cwd: Path | None = None) -> str:
    """Run a command with a pseudo-terminal as stdout and stderr; return what it wrote."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=_python_env(), cwd=cwd
        )
    finally:
        os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        proc.wait(timeout=60)
    assert proc.returncode in (0, 1), b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_progress_shows_nothing_without_a_terminal():
    done = subprocess.run(
        [sys.executable, "-c", PROGRESS_SCRIPT],
        capture_output=True,
        text=True,
        env=_python_env(),
        timeout=60,
        check=True,
    )
    assert done.stdout == "enabled False\ndone\n"
    assert done.stderr == ""


def test_progress_line_on_a_terminal():
    out = _run_in_pty([sys.executable, "-c", PROGRESS_SCRIPT])
    assert "enabled True" in out
    assert "[r=12.3k w=4.1k IOPS][66.5MB/s][lat avg 45us max 1.2ms][00:03/00:03 100%]" in out
    assert "[00:01/00:03 33%]" in out
    assert "\x1b[" in out  # redrawn in place with terminal control sequences


def test_progress_line_text():
    p = report.Progress(0)
    p.update(read_iops=999, write_iops=2_500_000, mbps=0.05, lat_avg_us=3, lat_max_us=2.5e6)
    assert p.line() == "[r=999 w=2.5M IOPS][0.1MB/s][lat avg 3us max 2.50s][00:00]"
    assert not p.enabled
    p = report.Progress(7200)
    p.update(read_iops=None, elapsed=3725)
    assert p.line() == "[r=0 w=0 IOPS][0.0MB/s][lat avg 0us max 0us][1:02:05/2:00:00 52%]"


def test_progress_is_hidden_while_pytest_captures(pytester):
    pytester.makepyfile(
        test_progress="""
        from nvme.report import Progress

        def test_show():
            with Progress(2, interval=0) as p:
                p.update(read_iops=777000, elapsed=1)
        """
    )
    argv = [sys.executable, "-m", "pytest", "-p", "nvme.pytest_plugin", "--results=", "-q"]
    captured = _run_in_pty(argv, cwd=pytester.path)
    assert "1 passed" in captured
    assert "777.0k" not in captured
    shown = _run_in_pty([*argv, "-s"], cwd=pytester.path)
    assert "1 passed" in shown
    assert "[r=777.0k w=0 IOPS]" in shown
