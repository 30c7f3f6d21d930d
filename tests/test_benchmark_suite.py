"""scripts/benchmark runs with --quick on the simulated SSD's benchmark profile.

The whole suite runs once in a child pytest (about a minute): every test passes, each leaves
a verdict line, CSV files and plots, and the fill benchmark's CSV shows the write cache phase
and then the slower sustained phase. Two short runs check that a QoS target that cannot be met
fails with a FAIL verdict and that a wrong `--bench` key is refused by name.
"""

import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "scripts" / "benchmark"

#: A 512 MiB drive whose 128 MiB write cache fills at 400 MB/s, then 150 MB/s; flushed at
#: 200 MB/s when idle. The host keeps ahead of 400 MB/s, so the phases are the drive's.
URI = "sim://?profile=bench&capacity=512M&cache=128M&cache_bw=400M&sustained_bw=150M&flush_bw=200M"

pytestmark = pytest.mark.sim_only


def run_suite(tmp_path, *args):
    """Run pytest on scripts/benchmark with --quick on URI; (result, the run's folder)."""
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--quick",
            f"--pciaddr={URI}",
            f"--results={tmp_path}",
            "--plots=6",
            "-p",
            "no:cacheprovider",
            "-q",
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    folders = [p for p in tmp_path.iterdir() if p.is_dir()]
    return r, folders[0] if len(folders) == 1 else None


def test_quick_suite_passes_and_leaves_csv_plots_and_verdicts(tmp_path):
    r, folder = run_suite(tmp_path, str(SUITE))
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert folder is not None
    results = json.loads((folder / "results.json").read_text())
    tests = results["tests"]
    assert len({t["nodeid"].split("[")[0] for t in tests}) >= 12, "fewer than 12 functions"
    assert all(t["outcome"] == "passed" for t in tests), [
        (t["nodeid"], t["outcome"]) for t in tests if t["outcome"] != "passed"
    ]
    # One verdict line per test.
    log = (folder / "run.log").read_text()
    verdicts = [line for line in log.splitlines() if "verdict: " in line]
    assert len(verdicts) == len(tests), verdicts
    assert all(("verdict: PASS" in v or "verdict: INFO" in v) for v in verdicts), verdicts
    # Every test recorded series or ioworkers; their files exist and are not empty.
    for t in tests:
        files = [f for s in t["series"] for f in s["files"].values()]
        files += [f for w in t["ioworkers"] for f in w.get("files", {}).values()]
        assert files, f"{t['nodeid']} recorded nothing"
        for f in files:
            assert (folder / f).stat().st_size > 0, f
    assert len(list(folder.glob("*.png"))) >= 20
    assert len(list(folder.glob("*.csv"))) >= 40
    # The fill: a faster cache phase first, then the slower sustained phase.
    (fill,) = folder.glob("test_sequential_fill_cache_phases_series*_fill_write_bandwidth.csv")
    with fill.open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["x", "fill write bandwidth (MB/s)"]
    speeds = [float(row[1]) for row in rows[1:]]
    assert len(speeds) >= 8, speeds
    cache_phase = max(speeds[:3])
    sustained = statistics.median(speeds[len(speeds) // 2 :])
    assert sustained < 200, f"faster than the sustained rate (150 MiB/s): {speeds}"
    assert cache_phase > 1.5 * sustained, speeds
    assert "fill: cache phase" in log
    # Cache recovery: the longest idle gave back more cache than the shortest.
    (stages,) = folder.glob("test_cache_recovery_after_idle_series*_fast_stage_after_idle.csv")
    with stages.open() as f:
        fast = [float(row[1]) for row in list(csv.reader(f))[1:]]
    assert fast[-1] > fast[0], fast


def test_qos_target_missed_fails_with_a_fail_verdict(tmp_path):
    r, folder = run_suite(
        tmp_path, str(SUITE / "test_qos.py"), "--bench", "qos_targets=50:1,99:100000"
    )
    assert r.returncode == 1, r.stdout[-3000:]
    log = (folder / "run.log").read_text()
    assert "verdict: FAIL qos 4k random read" in log
    assert "latency targets missed: p50" in r.stdout


def test_unknown_parameter_is_refused_by_name(tmp_path):
    r, _ = run_suite(tmp_path, str(SUITE / "test_qos.py"), "--bench", "qos_seconds=x")
    assert r.returncode == 4, r.stdout + r.stderr
    assert "--bench qos_seconds=x: not a valid value" in r.stdout + r.stderr
    r, _ = run_suite(tmp_path, str(SUITE / "test_qos.py"), "--bench", "colour=red")
    assert r.returncode == 4
    assert "'colour=red'" in r.stdout + r.stderr and "fresh_seconds" in r.stdout + r.stderr
