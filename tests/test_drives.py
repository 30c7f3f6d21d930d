"""Several drives on one host: `--pciaddr a,b` with pytest-xdist, one drive per worker.

Each worker tests its own drive and writes that drive's report into a subfolder of the run
folder; the controller writes the combined summary (results.json and index.html) there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import nvme
from nvme.pytest_plugin import split_devices

PYTHON_SOURCE = Path(__file__).resolve().parents[1] / "python"

needs_native = pytest.mark.skipif(
    not nvme.native_available(),
    reason=f"native module nvme._native cannot be imported: {nvme._native_error}",
)


def test_a_comma_separates_devices():
    assert split_devices("") == [""]
    assert split_devices("0000:01:00.0") == ["0000:01:00.0"]
    assert split_devices("0000:01:00.0, 02:00.0") == ["0000:01:00.0", "02:00.0"]
    assert split_devices(["sim://?serial=A", "sim://"]) == ["sim://?serial=A", "sim://"]


def test_a_comma_inside_a_sim_uri_stays_in_it():
    value = "sim://?latency=read:50us,write:20us-80us&serial=A,0000:01:00.0,sim://"
    assert split_devices(value) == [
        "sim://?latency=read:50us,write:20us-80us&serial=A",
        "0000:01:00.0",
        "sim://",
    ]


@pytest.mark.parametrize("value", ["0000:01:00.0,nvme0", "0000:01:00.0,,sim://", ",sim://"])
def test_a_bad_entry_names_the_option(value):
    with pytest.raises(pytest.UsageError, match="--pciaddr") as e:
        split_devices(value)
    assert "neither a PCI address" in str(e.value)


@pytest.fixture
def run_subprocess(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Run an inner pytest session in a new process with the plugin and pytest-xdist."""
    pytest.importorskip("xdist")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(PYTHON_SOURCE), path) if p))

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess(
            "-p",
            "xdist.plugin",
            "-p",
            "nvme.pytest_plugin",
            "-p",
            "no:cacheprovider",
            *args,
            timeout=120,
        )

    return run


def test_a_list_without_xdist_is_a_usage_error(run_subprocess, pytester):
    pytester.makepyfile("def test_x(pciaddr): assert pciaddr")
    result = run_subprocess("--pciaddr", "sim://?serial=A", "--pciaddr", "sim://")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--pciaddr names 2 devices (sim://?serial=A, sim://)*no xdist workers*-n 2*"]
    )


def test_one_worker_per_device(run_subprocess, pytester):
    pytester.makepyfile("def test_x(pciaddr): assert pciaddr")
    result = run_subprocess("-n", "3", "--pciaddr", "sim://?serial=A,sim://?serial=B")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--pciaddr names 2 devices*3 xdist workers*-n 2*"])


@needs_native
def test_two_simulated_drives_in_two_workers(run_subprocess, pytester):
    pytester.makepyfile(
        """
        from nvme import *

        def test_own_drive(nvme0, nvme0n1, qpair, pciaddr):
            serial = nvme0.id_ctrl().sn.strip()
            assert pciaddr == "sim://?serial=" + serial
            value = 0xD0D0 + int(serial[-1])
            nvme0n1.write(qpair, Buffer(512, ptype=32, pvalue=value), 0).waitdone()
            read = Buffer(512)
            nvme0n1.read(qpair, read, 0).waitdone()
            assert read.data(259, 256) == value

        def test_fails_on_drive_1(pciaddr):
            assert not pciaddr.endswith("DRIVE1")
        """
    )
    result = run_subprocess(
        "-n", "2", "--dist", "each", "--pciaddr", "sim://?serial=DRIVE0,sim://?serial=DRIVE1"
    )
    result.assert_outcomes(passed=3, failed=1)
    (run_folder,) = (pytester.path / "results").iterdir()
    assert run_folder.name.endswith("_2drives")
    subfolders = sorted(p.name for p in run_folder.iterdir() if p.is_dir())
    assert subfolders == ["drive0_sim_serial=DRIVE0", "drive1_sim_serial=DRIVE1"]

    # Each drive has its own whole report.
    for index, name in enumerate(subfolders):
        doc = json.loads((run_folder / name / "results.json").read_text())
        assert doc["complete"] is True
        assert doc["device"]["pciaddr"] == f"sim://?serial=DRIVE{index}"
        assert doc["device"]["identity"]["serial_number"] == f"DRIVE{index}"
        outcomes = {t["name"]: t["outcome"] for t in doc["tests"]}
        assert outcomes == {
            "test_own_drive": "passed",
            "test_fails_on_drive_1": "failed" if index else "passed",
        }
        assert (run_folder / name / "index.html").is_file()
        assert "::test_own_drive (" in (run_folder / name / "run.log").read_text()

    # The controller's combined summary.
    combined = json.loads((run_folder / "results.json").read_text())
    assert combined["combined"] is True and combined["complete"] is True
    assert combined["exitstatus"] == 1
    assert combined["summary"] == {"failed": 1, "passed": 3}
    drives = combined["drives"]
    assert [d["pciaddr"] for d in drives] == ["sim://?serial=DRIVE0", "sim://?serial=DRIVE1"]
    assert [d["folder"] for d in drives] == subfolders
    assert [d["identity"]["serial_number"] for d in drives] == ["DRIVE0", "DRIVE1"]
    assert [d["summary"] for d in drives] == [{"passed": 2}, {"failed": 1, "passed": 1}]
    assert all(d["complete"] and d["error"] is None for d in drives)
    assert sorted(
        (t["drive"], t["nodeid"].split("::")[1], t["outcome"]) for t in combined["tests"]
    ) == [
        (0, "test_fails_on_drive_1", "passed"),
        (0, "test_own_drive", "passed"),
        (1, "test_fails_on_drive_1", "failed"),
        (1, "test_own_drive", "passed"),
    ]
    page = (run_folder / "index.html").read_text()
    for name in subfolders:
        assert f'href="{name}/index.html"' in page
    assert "<th>drive 0</th><th>drive 1</th>" in page
    log = (run_folder / "run.log").read_text()
    for drive in (0, 1):
        assert f"[drive {drive}, gw{drive}] PASSED" in log
    assert "[drive 1, gw1] FAILED" in log and "[drive 0, gw0] FAILED" not in log
    assert "junit.xml" in combined["files"].values()


@needs_native
def test_each_worker_takes_its_own_drive_without_results(run_subprocess, pytester):
    pytester.makepyfile(
        """
        def test_own_drive(nvme0, pciaddr):
            assert pciaddr == "sim://?serial=" + nvme0.id_ctrl().sn.strip()

        def test_drives_differ(pciaddr, worker_id):
            assert pciaddr.endswith(worker_id.replace("gw", "D"))
        """
    )
    result = run_subprocess(
        "-n", "2", "--dist", "each", "--results=", "--pciaddr", "sim://?serial=D0,sim://?serial=D1"
    )
    result.assert_outcomes(passed=4)
    assert not (pytester.path / "results").exists()


def test_a_crashed_worker_is_named_in_the_combined_summary(run_subprocess, pytester):
    pytester.makepyfile(
        """
        import os

        def test_first(pciaddr):
            assert pciaddr.startswith("sim://?serial=")

        def test_crash_on_b(pciaddr):
            if pciaddr.endswith("=B"):
                os._exit(3)
        """
    )
    result = run_subprocess(
        "-n", "2", "--dist", "each", "--max-worker-restart=0",
        "--pciaddr", "sim://?serial=A,sim://?serial=B",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    (run_folder,) = (pytester.path / "results").iterdir()
    combined = json.loads((run_folder / "results.json").read_text())
    a, b = combined["drives"]
    assert a["complete"] and a["error"] is None and a["summary"] == {"passed": 2}
    assert b["folder"] == "drive1_sim_serial=B", "the crashed drive's folder is still linked"
    assert b["complete"] is False and b["error"], b
    assert b["summary"] == {"passed": 1}, "what the worker checkpointed before it crashed"
    assert combined["exitstatus"] == 1
    assert "drive 1 (gw1) crashed" in (run_folder / "run.log").read_text()
    assert "drive1_sim_serial=B/index.html" in (run_folder / "index.html").read_text()


def test_a_replacement_worker_takes_the_crashed_workers_drive(run_subprocess, pytester):
    marker = pytester.path / "crashed"
    pytester.makepyfile(
        f"""
        import os
        import time

        def test_crash_once_on_b(pciaddr):
            if pciaddr.endswith("=B") and not os.path.exists({str(marker)!r}):
                open({str(marker)!r}, "w").close()
                time.sleep(1)  # drive 0's worker is done by then: its drive is not free
                os._exit(3)

        def test_after(pciaddr):
            assert pciaddr
        """
    )
    result = run_subprocess(
        "-n", "2", "--dist", "each", "--max-worker-restart=1",
        "--pciaddr", "sim://?serial=A,sim://?serial=B",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    (run_folder,) = (pytester.path / "results").iterdir()
    combined = json.loads((run_folder / "results.json").read_text())
    a, b = combined["drives"]
    assert a["summary"] == {"passed": 2} and a["error"] is None
    # The worker of drive 1 crashed; the one that replaced it tested drive 1 (not drive 0,
    # whose worker had finished) and wrote its report beside the crashed one's.
    crashed = b["error"].partition(": ")[0]
    assert crashed in ("gw0", "gw1") and b["worker"] not in (crashed, a["worker"])
    assert b["pciaddr"] == "sim://?serial=B" and b["complete"] is True
    assert b["folder"] == "drive1_sim_serial=B_1"
    assert b["summary"] == {"passed": 1}
    assert (run_folder / "drive1_sim_serial=B" / "run.log").is_file()
