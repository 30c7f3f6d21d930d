"""A live monitor in the browser: the controller, its queues, command logs and running ioworkers.

A small HTTP server runs in a daemon thread of the test process and serves one self-contained
page (no external resource) that a browser on this machine, or on any machine of a lab with
`host="0.0.0.0"`, keeps up to date about once per second::

    from nvme import *
    from nvme import monitor

    nvme0 = Controller(Pcie(""))
    m = monitor.serve(nvme0, port=8790)    # http://127.0.0.1:8790/
    with Namespace(nvme0).ioworker(io_size=8, time=30):
        pass

Under pytest, `pytest --monitor` (or `--monitor=PORT`) serves it for the session and follows the
`nvme0` fixture of each test; `pynvme monitor` serves it for a script outside pytest. With no
controller watched, the controller of the first running ioworker is shown.

What the page shows is sampled by one thread, once per interval, from counters the driver keeps
anyway (`IOWorker.progress()`, the qpairs' completed IO counts, the command log rings): nothing
is done per IO, so watching does not slow the IO down. Nothing is sent to the device either: the
identity comes from the driver's copy of Identify Controller (`Controller.id_ctrl_cached()`).

Endpoints: `/` the page, `/api/state` the latest sample as JSON, `/events` the samples as
server-sent events (`event: state`, one JSON document per `data:` line).

The server has no authentication: bind it to another address than 127.0.0.1 only in a lab
network you trust. Bound to a loopback address it answers only requests whose Host header is a
loopback name, so a web page cannot read it through DNS rebinding.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import pytest

logger = logging.getLogger(__name__)

#: The port `pytest --monitor` and `pynvme monitor` use unless told otherwise.
DEFAULT_PORT = 8790
#: The address the server binds to unless told otherwise: this machine only.
DEFAULT_HOST = "127.0.0.1"
#: Commands of each queue's log in a sample.
CMDLOG_COUNT = 12
#: Samples of history kept per worker for the charts.
HISTORY = 120

#: IO opcodes whose SQE carries an SLBA in dwords 10-11 and an NLB in dword 12.
_LBA_OPCODES = frozenset({0x01, 0x02, 0x04, 0x05, 0x08, 0x0C})

_PAGE = Path(__file__).with_name("monitor.html")


# --------------------------------------------------------------------------------------------
# sampling


def _entry(e: dict[str, Any]) -> dict[str, Any]:
    """A command log entry of `Controller.cmdlog_entries()` as the page shows it."""
    sqe = e["sqe"]
    out: dict[str, Any] = {
        "seq": e["seq"],
        "name": e["name"],
        "opcode": e["opcode"],
        "cid": e["cid"],
        "nsid": e["nsid"],
        "t_us": e["submit_ns"] // 1000,
        "slba": None,
        "nlb": None,
        "status": e["status"],
        "sct": e["sct"],
        "sc": e["sc"],
        "latency_us": None,
        "cdw10": sqe[10],
        "cdw11": sqe[11],
        "cdw12": sqe[12],
    }
    if e["sqid"] != 0 and e["opcode"] in _LBA_OPCODES:
        out["slba"] = sqe[10] | (sqe[11] << 32)
        out["nlb"] = (sqe[12] & 0xFFFF) + 1
    if e["complete_ns"] is not None:
        out["latency_us"] = max(0, e["complete_ns"] - e["submit_ns"]) / 1000
    return out


def _identity(controller: Any) -> dict[str, Any]:
    """Model, serial, firmware and address of a controller, without sending a command."""
    ident: dict[str, Any] = {"model": None, "serial": None, "firmware": None, "address": None}
    try:
        ident["address"] = controller.pcie.addr or "sim://"
    except Exception:  # a closed Pcie: the address is only a label
        ident["address"] = None
    data = controller.id_ctrl_cached()
    if data is not None:
        ident.update(
            model=data.mn.strip(),
            serial=data.sn.strip(),
            firmware=data.fr.strip(),
            vid=data.vid,
            nn=data.nn,
            mdts=data.mdts,
        )
    return ident


class _Rate:
    """Rates of monotonic counters between two samples."""

    def __init__(self) -> None:
        """No counters yet."""
        self.last: dict[Any, tuple[float, dict[str, float]]] = {}

    def update(self, key: Any, now: float, counters: dict[str, float]) -> dict[str, float] | None:
        """Per-second deltas of `counters` since the previous call with `key` (None at first)."""
        previous = self.last.get(key)
        self.last[key] = (now, counters)
        if previous is None:
            return None
        t0, c0 = previous
        dt = now - t0
        # A counter going back is a new run under the same key (a closed worker reads 0).
        if dt <= 0 or any(v < c0.get(k, 0) for k, v in counters.items()):
            return None
        return {k: (v - c0.get(k, 0)) / dt for k, v in counters.items()}

    def forget_except(self, keys: set[Any]) -> None:
        """Drop the counters of keys no longer sampled."""
        for k in list(self.last):
            if k not in keys:
                del self.last[k]


class Sampler:
    """Builds the monitor's samples from a controller and the running ioworkers.

    Each `sample()` reads the counters once and turns them into rates against the previous
    sample, so call it at a steady pace (the monitor's thread does, once per interval).
    """

    def __init__(self, cmdlog_count: int = CMDLOG_COUNT, history: int = HISTORY) -> None:
        """Keep `cmdlog_count` commands per queue and `history` samples per worker."""
        self.cmdlog_count = cmdlog_count
        self.history_length = history
        self._controller: Callable[[], Any] | None = None
        self._rates = _Rate()
        self._history: dict[int, deque[dict[str, float]]] = {}
        self._seq = 0
        self._started = time.time()

    def watch(self, controller: Any) -> None:
        """Show `controller` (held weakly where it can be: the monitor never keeps it alive)."""
        if controller is None:
            self._controller = None
            return
        try:
            self._controller = weakref.ref(controller)
        except TypeError:
            self._controller = lambda: controller
        self._rates = _Rate()

    @property
    def controller(self) -> Any:
        """The controller shown, or None."""
        return self._controller() if self._controller is not None else None

    def sample(self) -> dict[str, Any]:
        """One sample: identity, queues with their command logs, workers, totals."""
        from nvme.ioworker import live_workers  # noqa: PLC0415 (needs the native module)

        now = time.monotonic()
        self._seq += 1
        state: dict[str, Any] = {
            "seq": self._seq,
            "time": time.time(),
            "uptime": time.time() - self._started,
            "controller": None,
            "admin": None,
            "qpairs": [],
            "workers": [],
            "totals": {"iops": 0.0, "bandwidth": 0.0, "ios": 0, "bytes": 0},
            "error": None,
        }
        workers = live_workers()
        controller = self.controller
        if controller is None and workers:
            # Nothing watched (a script that did not say): the first worker's controller.
            controller = getattr(getattr(workers[0], "_ns", None), "nvme", None)
        worker_qids: dict[int, Any] = {}
        try:
            if controller is not None:
                state["controller"] = _identity(controller)
                state["admin"] = {
                    "cmdlog": [_entry(e) for e in controller.cmdlog_entries(0, self.cmdlog_count)]
                }
            for w in workers:
                self._sample_worker(state, w, now)
                if self._same_controller(w, controller):
                    worker_qids[w.qid] = w
            if controller is not None:
                self._sample_qpairs(state, controller, worker_qids, now)
        except Exception as e:  # shown on the page; the next sample tries again
            state["error"] = f"{type(e).__name__}: {e}"
        keys = {("w", id(w)) for w in workers} | {("q", q["qid"]) for q in state["qpairs"]}
        self._rates.forget_except(keys)
        for k in list(self._history):
            if ("w", k) not in keys:
                del self._history[k]
        totals = state["totals"]
        for w in state["workers"]:
            if w["iops"] is not None and not w["on_watched_queue"]:
                totals["iops"] += w["iops"]
                totals["bandwidth"] += w["bandwidth"]
        return state

    @staticmethod
    def _same_controller(worker: Any, controller: Any) -> bool:
        """Whether `worker` runs on a namespace of `controller`."""
        namespace = getattr(worker, "_ns", None)
        return controller is not None and getattr(namespace, "nvme", None) is controller

    def _sample_worker(self, state: dict[str, Any], w: Any, now: float) -> None:
        """Add worker `w`'s counters, rates and history to `state`."""
        p = w.progress()
        ios = p["reads"] + p["writes"] + p["others"]
        rate = self._rates.update(
            ("w", id(w)),
            now,
            {"ios": ios, "bytes": p["bytes"], "lat": p["latency_sum_ns"]},
        )
        iops = bandwidth = latency = None
        if rate is not None:
            iops, bandwidth = rate["ios"], rate["bytes"]
            latency = rate["lat"] / rate["ios"] / 1000 if rate["ios"] > 0 else None
        history = self._history.setdefault(id(w), deque(maxlen=self.history_length))
        if rate is not None:
            history.append(
                {"t": state["time"], "iops": iops, "bandwidth": bandwidth, "latency_us": latency}
            )
        namespace = getattr(w, "_ns", None)
        state["workers"].append(
            {
                "id": id(w),
                "qid": w.qid,
                "nsid": getattr(namespace, "nsid", None),
                "running": w.running,
                "reads": p["reads"],
                "writes": p["writes"],
                "others": p["others"],
                "bytes": p["bytes"],
                "outstanding": p["outstanding"],
                "aborted": p["aborted"],
                "elapsed": p["elapsed"],
                "iops": iops,
                "bandwidth": bandwidth,
                "latency_us": latency,
                "latency_avg_us": p["latency_sum_ns"] / ios / 1000 if ios else None,
                "latency_max_us": p["latency_max_ns"] / 1000,
                "history": list(history),
                "on_watched_queue": False,
            }
        )

    def _sample_qpairs(
        self, state: dict[str, Any], controller: Any, workers: dict[int, Any], now: float
    ) -> None:
        """Add the controller's IO queues, with their rates and command logs, to `state`."""
        totals = state["totals"]
        ours = {id(w) for w in workers.values()}
        by_qid = {w["qid"]: w for w in state["workers"] if w["id"] in ours}
        for q in controller.qpairs_info():
            qid = q["qid"]
            rate = self._rates.update(("q", qid), now, {"ios": q["ios"], "bytes": q["bytes"]})
            try:
                cmdlog = [_entry(e) for e in controller.cmdlog_entries(qid, self.cmdlog_count)]
            except ValueError:  # deleted between the two calls
                continue
            worker = by_qid.get(qid)
            if worker is not None:
                worker["on_watched_queue"] = True
            entry = {
                **q,
                "iops": rate["ios"] if rate else None,
                "bandwidth": rate["bytes"] if rate else None,
                "worker": worker is not None,
                "cmdlog": cmdlog,
            }
            state["qpairs"].append(entry)
            totals["ios"] += q["ios"]
            totals["bytes"] += q["bytes"]
            if rate is not None:
                totals["iops"] += rate["ios"]
                totals["bandwidth"] += rate["bytes"]


# --------------------------------------------------------------------------------------------
# the server


_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


def _is_loopback(host: str) -> bool:
    """Whether `host` (an address or name, IPv6 in brackets or not) is this machine's loopback."""
    return host in _LOOPBACK_NAMES or host.startswith("127.")


class _Handler(BaseHTTPRequestHandler):
    """Serves the page, the latest sample and the event stream of one `Monitor`."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Send the request log to the `nvme.monitor` logger at DEBUG, not to stderr."""
        logger.debug("%s %s", self.address_string(), format % args)

    def _host_allowed(self) -> bool:
        """Whether the Host header may be answered (DNS rebinding guard on loopback)."""
        if not _is_loopback(self.server.monitor.host):
            return True
        host = self.headers.get("Host", "")
        name = urlsplit("//" + host).hostname or ""
        return _is_loopback(name) or name == "[::1]"

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        """Send a whole response."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        """Answer as GET without the body."""
        self.do_GET()

    def do_GET(self) -> None:
        """Route `/`, `/api/state` and `/events`; anything else is 404."""
        if not self._host_allowed():
            self._send(403, b"forbidden host\n", "text/plain; charset=utf-8")
            return
        path = urlsplit(self.path).path
        monitor = self.server.monitor
        if path in ("/", "/index.html"):
            self._send(200, monitor.page(), "text/html; charset=utf-8")
        elif path == "/api/state":
            body = json.dumps(monitor.latest()).encode()
            self._send(200, body, "application/json")
        elif path == "/events":
            self._events()
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _events(self) -> None:
        """Stream each new sample as a server-sent event until the monitor stops."""
        monitor = self.server.monitor
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if self.command == "HEAD":
            return
        seq = -1
        try:
            self.wfile.write(f"retry: {int(monitor.interval * 1000)}\n\n".encode())
            while not monitor.stopping:
                state = monitor.wait_newer(seq, timeout=max(monitor.interval * 5, 5.0))
                if state is None:
                    if monitor.stopping:
                        break
                    self.wfile.write(b": keep-alive\n\n")
                else:
                    seq = state["seq"]
                    data = json.dumps(state)
                    self.wfile.write(f"event: state\nid: {seq}\ndata: {data}\n\n".encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Server(ThreadingHTTPServer):
    """One thread per connection (daemon threads: an open event stream never holds the exit)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], monitor: Monitor) -> None:
        """Bind `address` (IPv4 or IPv6) for `monitor`."""
        self.monitor = monitor
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


class Monitor:
    """The live monitor: an HTTP server and a sampler, each in a daemon thread.

    `Monitor(host, port, interval).start()` binds (port 0: any free port; `port` then tells
    which) and serves until `stop()`; `watch(controller)` chooses the controller shown.
    Running ioworkers are found by themselves.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        interval: float = 1.0,
        cmdlog_count: int = CMDLOG_COUNT,
    ) -> None:
        """Configure, without binding yet: `start()` does."""
        if interval <= 0:
            raise ValueError(f"interval: {interval!r} is not a number of seconds > 0")
        self.host = host
        self.port = port
        self.interval = float(interval)
        self.sampler = Sampler(cmdlog_count)
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._cond = threading.Condition()
        # The sampler's thread and watch() both sample.
        self._sample_lock = threading.Lock()
        self._latest: dict[str, Any] | None = None
        self._page: bytes | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Monitor:
        """Bind the server, take a first sample and start both threads; returns the monitor.

        Raises OSError when the address cannot be bound (port in use, no such address).
        """
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._stop.clear()
        self._publish(self.sampler.sample())
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},  # how soon stop() returns
                name="nvme-monitor-http",
            ),
            threading.Thread(target=self._sample_loop, name="nvme-monitor-sampler"),
        ]
        for t in self._threads:
            t.daemon = True
            t.start()
        logger.info("live monitor: %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and sampling; open event streams end."""
        if self._server is None:
            return
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._server = None
        self._threads = []

    def __enter__(self) -> Monitor:
        """Start serving (as `start()`)."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop serving."""
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server runs."""
        return self._server is not None

    @property
    def stopping(self) -> bool:
        """Whether `stop()` was called (event streams end)."""
        return self._stop.is_set()

    @property
    def url(self) -> str:
        """The page's address: bound to every address (0.0.0.0, ::), by this machine's name,
        as a browser elsewhere in the lab reaches it."""
        host = self.host
        if host in ("", "0.0.0.0", "::", "[::]"):
            host = socket.gethostname()
        elif ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    # -- what is shown -----------------------------------------------------------------------

    def watch(self, controller: Any) -> None:
        """Show `controller` (None: none); a running monitor takes a new sample at once."""
        with self._sample_lock:
            self.sampler.watch(controller)
            if self.running:
                self._publish(self.sampler.sample())

    def latest(self) -> dict[str, Any]:
        """The latest sample (the one `/api/state` serves)."""
        with self._cond:
            if self._latest is None:
                raise RuntimeError("the monitor was never started: call start() first")
            return self._latest

    def wait_newer(self, seq: int, timeout: float) -> dict[str, Any] | None:
        """The first sample newer than `seq`, waiting up to `timeout` seconds; None if none."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._stop.is_set() or (self._latest or {}).get("seq", -1) > seq,
                timeout,
            )
            if self._latest is not None and self._latest["seq"] > seq:
                return self._latest
            return None

    def page(self) -> bytes:
        """The page: HTML, CSS and JavaScript in one document."""
        if self._page is None:
            self._page = _PAGE.read_bytes()
        return self._page

    def _publish(self, state: dict[str, Any]) -> None:
        """Make `state` the latest sample and wake the event streams."""
        with self._cond:
            self._latest = state
            self._cond.notify_all()

    def _sample_loop(self) -> None:
        """Sample once per interval until `stop()`."""
        deadline = time.monotonic()
        while not self._stop.is_set():
            deadline += self.interval
            delay = deadline - time.monotonic()
            if delay < 0:  # fell behind (a suspended machine): start again from now
                deadline = time.monotonic()
                delay = 0
            if self._stop.wait(delay):
                break
            try:
                with self._sample_lock:
                    self._publish(self.sampler.sample())
            except Exception:  # keep sampling: the next sample may work
                logger.exception("live monitor: sampling failed")


# --------------------------------------------------------------------------------------------
# the process-wide monitor

_active: Monitor | None = None
_active_lock = threading.Lock()


def start(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, interval: float = 1.0) -> Monitor:
    """Start the process-wide monitor (or return the one running); see `serve()`."""
    global _active
    with _active_lock:
        if _active is None or not _active.running:
            _active = Monitor(host, port, interval).start()
        return _active


def serve(
    controller: Any, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST, interval: float = 1.0
) -> Monitor:
    """Serve the live monitor of `controller` from this process; returns the `Monitor`.

    For a script run outside pytest::

        m = nvme.monitor.serve(nvme0, port=8790)   # then open m.url in a browser

    The server runs in daemon threads until `stop()` or the end of the process. A monitor
    already running (`pytest --monitor`) is reused and now shows `controller`. `port=0`
    takes any free port; `host="0.0.0.0"` lets other machines connect (no authentication).
    """
    m = start(host, port, interval)
    m.watch(controller)
    return m


def current() -> Monitor | None:
    """The process-wide monitor, if one runs."""
    return _active if _active is not None and _active.running else None


def watch(controller: Any) -> None:
    """Show `controller` in the process-wide monitor; does nothing when none runs."""
    m = current()
    if m is not None:
        m.watch(controller)


def stop() -> None:
    """Stop the process-wide monitor, if one runs."""
    global _active
    with _active_lock:
        if _active is not None:
            _active.stop()
            _active = None


# --------------------------------------------------------------------------------------------
# pytest


class PytestMonitor:
    """The pytest side of `--monitor`: serves for the session, registered by the nvme plugin.

    Whatever fixture named `nvme0` a test uses (the plugin's, or a conftest.py's own), its
    controller becomes the one shown when the fixture is set up.
    """

    def __init__(self, host: str, port: int) -> None:
        """Remember where to serve; the server starts with the session."""
        self.host = host
        self.port = port
        self.monitor: Monitor | None = None
        self.owned = False

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Start the monitor (or take the one running) and tell where it is."""
        self.owned = current() is None
        try:
            self.monitor = start(self.host, self.port)
        except OSError as e:
            raise pytest.UsageError(
                f"--monitor: cannot serve on {self.host}:{self.port}: {e}"
            ) from e
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"live monitor: {self.monitor.url}")

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Iterator[Any]:
        """Show the controller of each `nvme0` fixture once it is set up."""
        result = yield
        if fixturedef.argname == "nvme0" and self.monitor is not None:
            self.monitor.watch(result)
        return result

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Stop the monitor at the end of the run, unless it was running before."""
        if self.monitor is not None and self.owned:
            stop()
        self.monitor = None
