"""A lab of many hosts with labgrid: places that hold an NVMe function and its power port.

labgrid (https://labgrid.readthedocs.io) reserves a lab's devices through its coordinator and
switches their power through its drivers; this module is what pynvme-rs adds to it:

* `NVMeFunction`, a labgrid resource: the NVMe function under test (`pciaddr`: a PCI address,
  or a `sim://` URI for the simulated SSD) and the `host` it is in, where the tests must run.
  An exporter on that host exports it beside the slot's power port (a `NetworkPowerPort` or any
  other power resource), and a place matches both. A labgrid environment file loads this
  module with `imports: [nvme.lab]`.
* `LabSession`, registered by the pytest plugin when labgrid's `--lg-env` (or `LG_ENV`) names
  an environment: the session holds the environment's place (when nobody holds it, it reserves
  it by name, waits up to `--lab-wait` seconds for it, acquires it, and releases it and cancels
  the reservation at the end; a place this user already acquired on this host is used and left
  acquired), `--pciaddr` defaults to the place's `NVMeFunction`, and the `subsystem` fixture
  switches the power with the target's `PowerProtocol` driver (`Subsystem(nvme0,
  poweron_cb=power.on, poweroff_cb=power.off)`: the driver's lifecycle wraps the switching).
* `SimPowerRelay`: when the device is the simulated SSD, the session itself is the relay that a
  place's `rest` `NetworkPowerPort` on this machine's loopback (`http://127.0.0.1:PORT/...`)
  names: labgrid's `NetworkPowerDriver` PUTs `0` / `1` to that URL, and the relay removes /
  restores the simulated SSD's power (`Simulator.power_off` / `power_on`: the volatile write
  cache is lost), answering GET with the power state. CI proves the whole path this way.
"""

from __future__ import annotations

import getpass
import http.server
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import attr
import pytest
from labgrid.config import Config
from labgrid.factory import target_factory
from labgrid.resource.common import Resource

logger = logging.getLogger(__name__)

#: Name under which the pytest plugin registers the `LabSession`.
PLUGIN_NAME = "nvme-lab"

#: Host names of this machine's loopback: a power port URL naming one is served by the relay.
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@target_factory.reg_resource
@attr.s(eq=False)
class NVMeFunction(Resource):
    """An NVMe function in a labgrid place.

    Args:
        host (str): the machine the function is in: the tests run there.
        pciaddr (str): its PCI address (`0000:01:00.0`), or a `sim://` URI for the simulated SSD.
    """

    host = attr.ib(validator=attr.validators.instance_of(str))
    pciaddr = attr.ib(validator=attr.validators.instance_of(str))


def lab_user() -> str:
    """Who this session is to labgrid: `host/user` (`LG_HOSTNAME`, `LG_USERNAME` override them,
    as for labgrid-client)."""
    host = os.environ.get("LG_HOSTNAME") or socket.gethostname()
    return f"{host}/{os.environ.get('LG_USERNAME') or getpass.getuser()}"


def this_host(host: str) -> bool:
    """Tell whether `host` names this machine."""
    return host in LOOPBACK or host in (socket.gethostname(), socket.getfqdn())


def place_of(env_file: str | os.PathLike[str], role: str = "main") -> str | None:
    """The name of the `RemotePlace` of target `role` in a labgrid environment file, if any."""
    target = Config(str(env_file)).get_targets().get(role) or {}
    resources = target.get("resources") or {}
    entries = resources if isinstance(resources, list) else [resources]
    for entry in entries:
        for cls, params in (entry or {}).items():
            if cls == "RemotePlace" and isinstance(params, Mapping) and params.get("name"):
                return str(params["name"])
    return None


def labgrid_client() -> str:
    """The `labgrid-client` command beside this Python, else the one on PATH."""
    beside = Path(sys.executable).with_name("labgrid-client")
    if beside.exists():
        return str(beside)
    found = shutil.which("labgrid-client")
    if found is None:
        raise FileNotFoundError("labgrid-client is not installed (pip install labgrid)")
    return found


class SimPowerRelay:
    """The simulated SSD's power as a relay of labgrid's `rest` power model.

    Serves HTTP on `host`:`port`: GET answers `1` (power on) or `0`, PUT with a body of `0` or
    `1` removes or restores the power of the attached simulated SSD (`attach`), whatever the
    path (the URL's `{index}` is not used: one relay, one drive). `switches` records each switch
    as "off" / "on", in order.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on `host`:`port` (0: any free port, see `port`) in a thread of its own."""
        self.sim: Any = None
        self.switches: list[str] = []
        self._lock = threading.Lock()
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("power relay: " + format, *args)

            def _answer(self, code: int, text: str) -> None:
                body = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer(200, "1" if relay.powered() else "0")

            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                value = self.rfile.read(length).strip()
                if value not in (b"0", b"1"):
                    self._answer(400, f"the body is 0 or 1, not {value!r}")
                    return
                try:
                    relay.switch(value == b"1")
                except Exception as e:
                    self._answer(409, str(e))
                    return
                self._answer(200, value.decode())

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="nvme-sim-power-relay", daemon=True
        )
        self.thread.start()

    @property
    def port(self) -> int:
        """The TCP port the relay listens on."""
        return int(self.server.server_address[1])

    def attach(self, sim: Any) -> None:
        """Switch the power of `sim` (a `Simulator`, `pcie.sim`) from now on."""
        with self._lock:
            self.sim = sim

    def detach(self, sim: Any) -> None:
        """Stop switching `sim` (another attached one is left alone)."""
        with self._lock:
            if self.sim is sim:
                self.sim = None

    def powered(self) -> bool:
        """Whether the attached simulated SSD has power (True when none is attached)."""
        with self._lock:
            return True if self.sim is None else bool(self.sim.powered)

    def switch(self, on: bool) -> None:
        """Restore (`on`) or remove the attached simulated SSD's power."""
        with self._lock:
            if self.sim is None:
                raise RuntimeError("no simulated SSD is open in the test session")
            if on:
                self.sim.power_on()
            else:
                self.sim.power_off()
            self.switches.append("on" if on else "off")
        logger.info("simulated SSD power %s (labgrid power port)", "on" if on else "off")

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class LabSession:
    """The labgrid side of a pytest session: the held place, its NVMe function and power.

    Registered by the pytest plugin (as `PLUGIN_NAME`) when labgrid's environment is given.
    """

    def __init__(self, config: pytest.Config, env_file: str) -> None:
        """Hold the place of `env_file`'s main target for the session (not in an xdist worker,
        whose controller holds it, nor with `--collect-only`)."""
        self.config = config
        self.env_file = env_file
        self.place = place_of(env_file)
        self.coordinator = config.getoption("lg_coordinator", default=None) or str(
            Config(str(env_file)).get_option("coordinator_address", "") or ""
        )
        self.wait = float(config.getoption("lab_wait", default=300.0))
        #: The reservation token, when this session reserved and acquired the place.
        self.token: str | None = None
        self.acquired = False
        self.relay: SimPowerRelay | None = None
        self._target: Any = None
        worker = getattr(config, "workerinput", None) is not None
        if self.place and not worker and not config.getoption("collectonly", default=False):
            try:
                self.hold()
            except (RuntimeError, FileNotFoundError) as e:
                raise pytest.UsageError(f"--lg-env {env_file}: {e}") from e

    # -- the place ----------------------------------------------------------------------------

    def client(self, *args: str, timeout: float = 60.0) -> str:
        """Run `labgrid-client` with the session's coordinator; returns its output, raises
        `RuntimeError` with its error output if it fails or takes longer than `timeout` s."""
        command = [labgrid_client()]
        if self.coordinator:
            command += ["-x", self.coordinator]
        command += list(args)
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"{' '.join(command)}: no answer in {timeout:.0f} s") from e
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {(done.stderr or done.stdout).strip()}")
        return done.stdout

    def holder(self) -> str | None:
        """Who holds the place (`host/user`), None if nobody."""
        for line in self.client("-p", str(self.place), "show").splitlines():
            if line.strip().startswith("acquired:"):
                value = line.split(":", 1)[1].strip()
                return None if value == "None" else value
        return None

    def hold(self) -> None:
        """Reserve and acquire the place, unless this user already holds it on this host."""
        me = lab_user()
        holder = self.holder()
        if holder == me:
            logger.info("labgrid place %s: already acquired by %s, used as it is", self.place, me)
            return
        try:
            out = self.client(
                "reserve", "--wait", "--shell", f"name={self.place}", timeout=self.wait
            )
        except RuntimeError as e:
            # The reservation was made before the wait began: do not leave it waiting.
            partial = getattr(e.__cause__, "stdout", None) or ""
            if isinstance(partial, bytes):
                partial = partial.decode(errors="replace")
            self.token = _token(partial)
            self.cancel()
            raise pytest.UsageError(
                f"--lg-env {self.env_file}: labgrid place {self.place} not reserved within "
                f"--lab-wait={self.wait:.0f} s: {e}"
            ) from e
        self.token = _token(out)
        try:
            self.client("-p", str(self.place), "acquire")
        except Exception:
            self.cancel()
            raise
        self.acquired = True
        logger.info("labgrid place %s: reserved (token %s) and acquired", self.place, self.token)

    def cancel(self) -> None:
        """Cancel this session's reservation, if any."""
        if self.token:
            try:
                self.client("cancel-reservation", self.token)
            except RuntimeError as e:
                logger.warning("labgrid reservation %s not cancelled: %s", self.token, e)
            self.token = None

    def release(self) -> None:
        """Release the place and cancel the reservation, if this session took them."""
        if self.acquired:
            try:
                self.client("-p", str(self.place), "release")
            except RuntimeError as e:
                logger.warning("labgrid place %s not released: %s", self.place, e)
            self.acquired = False
        self.cancel()

    # -- the target ---------------------------------------------------------------------------

    def target(self) -> Any:
        """The environment's main target (the one labgrid's `target` fixture gives)."""
        if self._target is None:
            from labgrid.pytestplugin.hooks import LABGRID_ENV_KEY  # noqa: PLC0415

            env = self.config.stash.get(LABGRID_ENV_KEY, None)
            if env is None:
                raise pytest.UsageError(f"--lg-env {self.env_file}: labgrid's plugin is not loaded")
            self._target = env.get_target()
            if self._target is None:
                raise pytest.UsageError(f"--lg-env {self.env_file}: no target 'main'")
        return self._target

    def pciaddr(self) -> str:
        """The device of the place: its `NVMeFunction`, which must be in this machine. When it
        is the simulated SSD and the place's power port is a `rest` port on this machine's
        loopback, the session starts serving that port (`SimPowerRelay`)."""
        from labgrid.exceptions import NoResourceFoundError  # noqa: PLC0415

        target = self.target()
        try:
            function = target.get_resource(NVMeFunction, wait_avail=False)
        except NoResourceFoundError as e:
            raise pytest.UsageError(
                f"--lg-env {self.env_file}: the target has no NVMeFunction resource: give "
                "--pciaddr, or export one (see nvme.lab)"
            ) from e
        if not this_host(function.host):
            raise pytest.UsageError(
                f"--lg-env {self.env_file}: the place's NVMe function {function.pciaddr} is in "
                f"host {function.host}: run the tests there"
            )
        if function.pciaddr == "" or function.pciaddr.startswith("sim:"):
            self._serve_sim_power(target)
        return str(function.pciaddr)

    def _serve_sim_power(self, target: Any) -> None:
        """Start the relay if the place's power port is a `rest` port on the loopback."""
        if self.relay is not None:
            return
        from labgrid.resource.power import NetworkPowerPort  # noqa: PLC0415

        for resource in target.resources:
            if isinstance(resource, NetworkPowerPort) and resource.model == "rest":
                url = urlparse(resource.host)
                if url.hostname in LOOPBACK and url.port:
                    self.relay = SimPowerRelay(url.hostname, url.port)
                    logger.info("simulated SSD power relay on %s", resource.host)
                    return

    def power(self) -> Any:
        """The target's `PowerProtocol` driver (activated), None if it has none."""
        from labgrid.exceptions import NoDriverFoundError  # noqa: PLC0415

        try:
            return self.target().get_driver("PowerProtocol")
        except NoDriverFoundError:
            return None

    # -- pytest hooks -------------------------------------------------------------------------

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        """Name the place and who holds it."""
        how = "reserved and acquired by this session" if self.acquired else "acquired before"
        return [f"labgrid: place {self.place} ({how}), environment {self.env_file}"]

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Without `--pciaddr`, the device under test is the place's `NVMeFunction`."""
        if not self.place or self.config.getoption("collectonly", default=False):
            return
        if not self.config.getoption("pciaddr", default=""):
            self.config.option.pciaddr = self.pciaddr()
            results = self.config.pluginmanager.get_plugin("nvme-results-log")
            if results is not None and getattr(results, "report", None) is not None:
                results.pciaddr = results.report.pciaddr = self.config.option.pciaddr

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Stop the relay, deactivate the target's drivers, release the place."""
        if self.relay is not None:
            self.relay.close()
            self.relay = None
        if self._target is not None:
            self._target.cleanup()
            self._target = None
        self.release()


def _token(output: str) -> str | None:
    """The reservation token in `labgrid-client reserve --shell` output."""
    for line in output.splitlines():
        if "LG_TOKEN=" in line:
            return line.split("LG_TOKEN=", 1)[1].strip() or None
    return None
