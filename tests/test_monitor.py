"""The live monitor (`nvme.monitor`) without a browser: the driver's counters and logs it reads,
its samples, its HTTP endpoints (page, JSON, server-sent events), `pytest --monitor` and
`pynvme monitor`. The page itself is tested in a real browser in tests/browser/.
"""

from __future__ import annotations

import gc
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nvme
from nvme import monitor

pytestmark = pytest.mark.skipif(
    not nvme.native_available(),
    reason=f"native module nvme._native cannot be imported: {nvme._native_error}",
)

PYTHON_SOURCE = Path(__file__).resolve().parent.parent / "python"


@pytest.fixture(autouse=True)
def own_monitor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts and stops a process-wide monitor of its own, leaving alone the one of a
    `pytest --monitor` running these tests."""
    monkeypatch.setattr(monitor, "_active", None)


def get(url: str, host: str | None = None) -> tuple[int, str, bytes]:
    """Status, content type and body of a GET (errors included)."""
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def state_of(m: monitor.Monitor) -> dict[str, Any]:
    """The monitor's latest sample as `/api/state` serves it."""
    status, ctype, body = get(m.url + "api/state")
    assert status == 200 and ctype == "application/json"
    return json.loads(body)


def wait_state(m: monitor.Monitor, check: Any, timeout: float = 10.0) -> dict[str, Any]:
    """The first served sample for which `check(state)` is true (fails after `timeout` s)."""
    end = time.monotonic() + timeout
    while True:
        st = state_of(m)
        if check(st):
            return st
        if time.monotonic() > end:
            pytest.fail(f"no sample met the condition in {timeout} s; last: {st}")
        time.sleep(0.05)


@pytest.fixture
def served(nvme0: nvme.Controller) -> Iterator[monitor.Monitor]:
    """A monitor of `nvme0` on a free port, sampling every 0.2 s."""
    m = monitor.Monitor(port=0, interval=0.2)
    m.watch(nvme0)
    m.start()
    yield m
    m.stop()


# ---------------------------------------------------------------------------------------------
# what the driver gives the monitor


def test_live_workers_from_start_to_close(nvme0n1: nvme.Namespace) -> None:
    from nvme.ioworker import live_workers  # noqa: PLC0415 (needs the native module)

    w = nvme0n1.ioworker(io_size=8, time=10, qdepth=4)
    assert w not in live_workers()
    w.start()
    assert w in live_workers()
    w.stop()
    w.close()
    assert w not in live_workers()


def test_worker_readable_while_close_waits(nvme0: nvme.Controller, nvme0n1: nvme.Namespace) -> None:
    """The usual `with nvme0n1.ioworker(time=...): pass` spends the run in close(): another
    thread (the monitor's) still reads the worker's qid and counters meanwhile."""
    from nvme.ioworker import live_workers  # noqa: PLC0415 (needs the native module)

    sampler = monitor.Sampler()
    sampler.watch(nvme0)
    w = nvme0n1.ioworker(io_size=8, time=2, qdepth=8).start()
    qid = w.qid
    closer = threading.Thread(target=w.close)
    closer.start()
    time.sleep(0.3)
    assert closer.is_alive() and w in live_workers()
    first = w.progress()
    assert w.qid == qid and w.running
    sampler.sample()
    time.sleep(0.3)
    st = sampler.sample()
    assert w.progress()["reads"] > first["reads"] > 0
    (sw,) = [x for x in st["workers"] if x["qid"] == qid]
    assert sw["iops"] > 0 and st["error"] is None
    closer.join(timeout=30)
    assert not closer.is_alive()
    assert w not in live_workers() and not w.running and w.qid == qid


def test_qpairs_info_counts_and_cmdlog_entries(
    nvme0: nvme.Controller, nvme0n1: nvme.Namespace, buf: nvme.Buffer
) -> None:
    before = {q["qid"] for q in nvme0.qpairs_info()}
    q = nvme.Qpair(nvme0, 16)
    info = {i["qid"]: i for i in nvme0.qpairs_info()}
    assert set(info) == before | {q.sqid}
    assert info[q.sqid] == {"qid": q.sqid, "depth": 16, "outstanding": 0, "ios": 0, "bytes": 0}

    nvme0n1.write(q, buf, 0x1234, 8).waitdone()
    nvme0n1.read(q, buf, 0x1234, 8)
    assert {i["qid"]: i for i in nvme0.qpairs_info()}[q.sqid]["outstanding"] == 1
    q.waitdone()
    info = {i["qid"]: i for i in nvme0.qpairs_info()}[q.sqid]
    assert info["ios"] == 2 and info["bytes"] == 2 * 8 * nvme0n1.sector_size

    read, write = nvme0.cmdlog_entries(q.sqid, 2)
    assert (read["name"], read["opcode"], write["name"], write["opcode"]) == (
        "Read",
        2,
        "Write",
        1,
    )
    assert read["seq"] == write["seq"] + 1
    assert read["cid"] == q.latest_cid and read["sqid"] == q.sqid and read["nsid"] == 1
    assert read["sqe"][10] == 0x1234 and read["sqe"][12] & 0xFFFF == 7
    assert (read["status"], read["sct"], read["sc"]) == ("SUCCESS", 0, 0)
    assert read["complete_ns"] >= read["submit_ns"] > 0 and not read["timed_out"]
    assert read["cqe"][3] & 0xFFFF == read["cid"]

    nsze = nvme0n1.id_ns().nsze
    with pytest.warns(UserWarning, match="ERROR status: 00/80"):
        nvme0n1.read(q, buf, nsze, 1).waitdone()
    (failed,) = nvme0.cmdlog_entries(q.sqid, 1)
    assert (failed["sct"], failed["sc"]) == (0, 0x80) and failed["status"] != "SUCCESS"

    q.delete()
    assert q.sqid not in {i["qid"] for i in nvme0.qpairs_info()}
    with pytest.raises(nvme.NvmeArgumentError, match="qid"):
        nvme0.cmdlog_entries(q.sqid)


def test_admin_cmdlog_entries_and_cached_identity(nvme0: nvme.Controller) -> None:
    ident = nvme0.id_ctrl()
    newest = nvme0.cmdlog_entries(0, 1)[0]
    assert (newest["name"], newest["opcode"], newest["sqid"]) == ("Identify", 6, 0)
    assert newest["sqe"][10] & 0xFF == 1  # CNS 1: the controller
    cached = nvme0.id_ctrl_cached()
    assert cached is not None
    assert (cached.mn, cached.sn, cached.fr) == (ident.mn, ident.sn, ident.fr)
    # The cached copy sends nothing.
    assert nvme0.cmdlog_entries(0, 1)[0]["seq"] == newest["seq"]


# ---------------------------------------------------------------------------------------------
# samples


def test_sampler_rates_of_a_running_worker(nvme0: nvme.Controller, nvme0n1: nvme.Namespace):
    sampler = monitor.Sampler(cmdlog_count=5)
    sampler.watch(nvme0)
    with nvme0n1.ioworker(io_size=8, time=30, qdepth=8, read_percentage=50) as w:
        qid = w.qid  # 0 once closed
        first = sampler.sample()
        time.sleep(0.5)
        second = sampler.sample()
        w.stop()
    assert first["error"] is None and second["error"] is None
    assert second["seq"] == first["seq"] + 1

    ident = nvme0.id_ctrl()
    assert second["controller"]["model"] == ident.mn.strip()
    assert second["controller"]["serial"] == ident.sn.strip()
    assert second["controller"]["firmware"] == ident.fr.strip()

    (fw,) = [x for x in first["workers"] if x["qid"] == qid]
    assert fw["iops"] is None  # a rate needs two samples
    (sw,) = [x for x in second["workers"] if x["qid"] == qid]
    assert sw["running"] and sw["nsid"] == 1
    assert sw["iops"] > 0 and sw["bandwidth"] == pytest.approx(
        sw["iops"] * 8 * nvme0n1.sector_size, rel=1e-6
    )
    assert sw["latency_us"] > 0 and sw["latency_max_us"] >= sw["latency_avg_us"] > 0
    assert len(sw["history"]) == 1 and sw["history"][0]["iops"] == sw["iops"]
    assert sw["on_watched_queue"]

    (q,) = [x for x in second["qpairs"] if x["qid"] == qid]
    assert q["worker"] and q["depth"] == 9 and q["iops"] > 0
    assert len(q["cmdlog"]) == 5
    assert {e["name"] for e in q["cmdlog"]} <= {"Read", "Write"}
    assert all(e["nlb"] == 8 and e["slba"] % 1 == 0 for e in q["cmdlog"])
    # The worker's IOs are counted once, through its queue.
    assert second["totals"]["iops"] == pytest.approx(sum(x["iops"] for x in second["qpairs"]))


def test_sampler_without_a_controller_shows_the_workers_one(
    nvme0: nvme.Controller, nvme0n1: nvme.Namespace
) -> None:
    sampler = monitor.Sampler()
    assert sampler.sample()["controller"] is None
    with nvme0n1.ioworker(io_size=8, time=30, qdepth=4) as w:
        qid = w.qid
        st = sampler.sample()
        w.stop()
    assert st["controller"]["serial"] == nvme0.id_ctrl().sn.strip()
    assert qid in {q["qid"] for q in st["qpairs"]}


def test_sampler_holds_the_controller_weakly() -> None:
    pcie = nvme.Pcie("")
    try:
        ctrl = nvme.Controller(pcie)
        sampler = monitor.Sampler()
        sampler.watch(ctrl)
        assert sampler.sample()["controller"] is not None
        del ctrl
        gc.collect()
        st = sampler.sample()
        assert st["controller"] is None and st["qpairs"] == [] and st["admin"] is None
    finally:
        pcie.close()


# ---------------------------------------------------------------------------------------------
# the server


def test_page_is_self_contained(served: monitor.Monitor) -> None:
    status, ctype, body = get(served.url)
    assert status == 200 and ctype == "text/html; charset=utf-8"
    page = body.decode()
    assert "<script>" in page and "<style>" in page and 'id="iops-total"' in page
    # No external resource: no src/href attribute, import or url() leaving the page.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", page)
    assert "EventSource(" in page


def test_state_endpoint(served: monitor.Monitor, nvme0: nvme.Controller) -> None:
    st = state_of(served)
    assert st["controller"]["serial"] == nvme0.id_ctrl().sn.strip()
    assert st["admin"]["cmdlog"] and st["error"] is None
    later = wait_state(served, lambda s: s["seq"] > st["seq"])
    assert later["time"] > st["time"]


def test_unknown_path_and_foreign_host(served: monitor.Monitor) -> None:
    assert get(served.url + "nothing")[0] == 404
    # Bound to a loopback address, a request naming another host (DNS rebinding) is refused.
    assert get(served.url + "api/state", host="evil.example:80")[0] == 403
    assert get(served.url + "api/state", host=f"localhost:{served.port}")[0] == 200


def test_lab_address_answers_any_host(nvme0: nvme.Controller) -> None:
    with monitor.Monitor(host="0.0.0.0", port=0) as m:
        assert m.url == f"http://{socket.gethostname()}:{m.port}/"
        local = f"http://127.0.0.1:{m.port}/api/state"
        assert get(local, host=f"lab-host.example:{m.port}")[0] == 200


def read_events(m: monitor.Monitor, count: int) -> list[tuple[str, int, dict[str, Any]]]:
    """The first `count` events of `/events`: (event, id, data)."""
    conn = http.client.HTTPConnection("127.0.0.1", m.port, timeout=10)
    conn.request("GET", "/events")
    r = conn.getresponse()
    assert r.status == 200 and r.headers["Content-Type"] == "text/event-stream"
    events: list[tuple[str, int, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    while len(events) < count:
        line = r.fp.readline().decode().rstrip("\n")
        if line == "":
            if "event" in fields:
                events.append((fields["event"], int(fields["id"]), json.loads(fields["data"])))
            fields = {}
        elif not line.startswith(":"):
            k, _, v = line.partition(": ")
            fields[k] = v
    conn.close()
    return events


def test_event_stream_follows_a_worker(served: monitor.Monitor, nvme0n1: nvme.Namespace):
    with nvme0n1.ioworker(io_size=8, time=30, qdepth=4) as w:
        qid = w.qid  # 0 once closed
        events = read_events(served, 3)
        w.stop()
    assert [e[0] for e in events] == ["state"] * 3
    ids = [e[1] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert all(e[2]["seq"] == e[1] for e in events)
    last = events[-1][2]
    assert qid in {q["qid"] for q in last["qpairs"]}
    assert qid in {x["qid"] for x in last["workers"]}
    assert any(x["iops"] for x in last["workers"] if x["qid"] == qid)


def test_stop_closes_the_port_and_ends_streams(nvme0: nvme.Controller) -> None:
    m = monitor.Monitor(port=0, interval=0.1).start()
    conn = http.client.HTTPConnection("127.0.0.1", m.port, timeout=10)
    conn.request("GET", "/events")
    r = conn.getresponse()
    assert r.fp.readline().startswith(b"retry:")
    m.stop()
    assert not m.running
    r.read()  # the stream ends instead of blocking
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{m.port}/api/state", timeout=2)


def test_serve_reuses_the_running_monitor(nvme0: nvme.Controller) -> None:
    m = monitor.serve(nvme0, port=0)
    try:
        assert monitor.current() is m and m.host == "127.0.0.1"
        assert monitor.serve(nvme0, port=0) is m
        assert m.sampler.controller is nvme0
        monitor.watch(None)
        assert m.sampler.controller is None
    finally:
        monitor.stop()
    assert monitor.current() is None
    monitor.watch(nvme0)  # no monitor: nothing happens


# ---------------------------------------------------------------------------------------------
# pytest --monitor, pynvme monitor


def test_monitor_option_port_default(pytester: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    config = pytester.parseconfig("-p", "nvme.pytest_plugin", "--monitor")
    assert config.getoption("monitor") == monitor.DEFAULT_PORT
    config = pytester.parseconfig("-p", "nvme.pytest_plugin")
    assert config.getoption("monitor") is None
    assert config.getoption("monitor_host") == "127.0.0.1"


def test_pytest_monitor_follows_the_nvme0_fixture(pytester: pytest.Pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(
        """
        import json, time, urllib.request
        from nvme import monitor

        def test_watched(nvme0, nvme0n1):
            m = monitor.current()
            assert m is not None and m.port != 0
            sn = nvme0.id_ctrl().sn.strip()
            with nvme0n1.ioworker(io_size=8, time=30, qdepth=4) as w:
                end = time.monotonic() + 10
                while True:
                    st = json.load(urllib.request.urlopen(m.url + "api/state"))
                    ctrl = st["controller"] or {}
                    qids = [q["qid"] for q in st["qpairs"] if q["worker"]]
                    if ctrl.get("serial") == sn and w.qid in qids:
                        break
                    assert time.monotonic() < end, st
                    time.sleep(0.1)
                w.stop()
        """
    )
    result = pytester.runpytest("-p", "nvme.pytest_plugin", "--monitor=0", "--results=")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["live monitor: http://127.0.0.1:*/"])
    assert monitor.current() is None  # stopped with the session


def test_pytest_monitor_follows_a_conftest_nvme0(pytester: pytest.Pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest(
        """
        import pytest
        import nvme

        @pytest.fixture
        def nvme0(pcie):
            return nvme.Controller(pcie)
        """
    )
    pytester.makepyfile(
        """
        from nvme import monitor

        def test_watched(nvme0):
            assert monitor.current().sampler.controller is nvme0
            assert monitor.current().latest()["controller"]["serial"]
        """
    )
    result = pytester.runpytest("-p", "nvme.pytest_plugin", "--monitor=0", "--results=")
    result.assert_outcomes(passed=1)


def test_pytest_monitor_leaves_a_monitor_it_did_not_start(pytester, monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile("def test_x(nvme0): assert nvme0")
    outer = monitor.start(port=0)
    try:
        result = pytester.runpytest("-p", "nvme.pytest_plugin", "--monitor=0", "--results=")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines([f"live monitor: {outer.url}"])
        assert monitor.current() is outer and outer.running
    finally:
        monitor.stop()


def test_pytest_monitor_port_in_use(pytester: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile("def test_x(): pass")
    with monitor.Monitor(port=0) as busy:
        result = pytester.runpytest(
            "-p", "nvme.pytest_plugin", f"--monitor={busy.port}", "--results="
        )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--monitor: cannot serve on 127.0.0.1:{busy.port}*"])


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PYTHON_SOURCE), env.get("PYTHONPATH", "")])
    return env


def test_cli_monitor_serves_until_time(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "nvme.cli", "monitor", "--port", "0", "--time", "2"],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, line
        status, _, body = get(url.group(0) + "api/state")
        assert status == 200
        assert json.loads(body)["controller"]["model"]
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


def test_cli_monitor_runs_a_script(tmp_path: Path) -> None:
    script = tmp_path / "work.py"
    script.write_text(
        """
import json, sys, time, urllib.request
from nvme import monitor
m = monitor.current()
with nvme0n1.ioworker(io_size=8, time=30, qdepth=4) as w:
    while True:
        st = json.load(urllib.request.urlopen(m.url + "api/state"))
        if any(x["qid"] == w.qid and x["iops"] for x in st["workers"]):
            break
        time.sleep(0.1)
    w.stop()
print("RESULT", sys.argv[1:], st["controller"]["serial"] == nvme0.id_ctrl().sn.strip())
"""
    )
    out = subprocess.run(
        [sys.executable, "-m", "nvme.cli", "monitor", "--port", "0", str(script), "-x", "y"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "RESULT ['-x', 'y'] True" in out.stdout
