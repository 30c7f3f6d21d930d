"""tools/qemu/power_agent.py: the host side of the QEMU lane's power switch.

The agent is run against a fake QEMU: a QMP server and the guest's port, both unix sockets in a
temporary folder, as tools/qemu/guest sets them up.
"""

import json
import os
import socket
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools" / "qemu"))

import power_agent  # noqa: E402


def test_device_spec_becomes_device_add_arguments():
    assert power_agent.parse_device("nvme,id=nvme0,serial=S1,drive=nvm0,bus=rp0") == {
        "driver": "nvme",
        "id": "nvme0",
        "serial": "S1",
        "drive": "nvm0",
        "bus": "rp0",
    }
    with pytest.raises(ValueError, match="id="):
        power_agent.parse_device("nvme,serial=S1")
    with pytest.raises(ValueError, match="without a value"):
        power_agent.parse_device("nvme,id=nvme0,bogus")


class FakeQemu:
    """A QMP server holding one device, and the guest's end of the power port."""

    def __init__(self, sockdir: Path, device_present: bool) -> None:
        self.present = device_present
        self.refuse_add = 1
        self.commands: list[dict] = []
        self.qmp = socket.socket(socket.AF_UNIX)
        self.qmp.bind(str(sockdir / "qmp.sock"))
        self.qmp.listen(1)
        self.port = socket.socket(socket.AF_UNIX)
        self.port.bind(str(sockdir / "power.sock"))
        self.port.listen(1)
        threading.Thread(target=self._serve_qmp, daemon=True).start()

    def _serve_qmp(self) -> None:
        conn, _ = self.qmp.accept()
        f = conn.makefile("rwb")

        def send(obj: dict) -> None:
            f.write(json.dumps(obj).encode() + b"\n")
            f.flush()

        send({"QMP": {"version": {}, "capabilities": []}})
        for line in f:
            cmd = json.loads(line)
            self.commands.append(cmd)
            name, args = cmd["execute"], cmd.get("arguments", {})
            if name == "qom-list":
                send({"return": [{"name": "nvme0"}] if self.present else []})
            elif name == "device_del":
                send({"return": {}})
                self.present = False
                send({"event": "DEVICE_DELETED", "data": {"device": args["id"]}})
            elif name == "human-monitor-command":
                # HMP answers with its output: empty on success, the error's text otherwise.
                assert args["command-line"].startswith("device_add ")
                # The first attempt finds the old controller still holding the block node.
                if self.refuse_add:
                    self.refuse_add -= 1
                    send({"return": "Error: Permission conflict on node 'nvm0'\r\n"})
                    continue
                self.present = True
                send({"return": ""})
            else:
                send({"return": {}})
        conn.close()

    def guest(self) -> socket.socket:
        conn, _ = self.port.accept()
        conn.settimeout(10)
        return conn


def ask(conn: socket.socket, request: str) -> str:
    conn.sendall(request.encode() + b"\n")
    answer = b""
    while not answer.endswith(b"\n"):
        answer += conn.recv(100)
    return answer.decode().strip()


@pytest.mark.parametrize("present", [True, False], ids=["device_del", "slot_powered_off"])
def test_agent_deletes_and_adds_the_controller(tmp_path, present):
    short = Path(os.path.relpath(tmp_path))  # unix socket paths are limited to 108 bytes
    qemu = FakeQemu(short, device_present=present)
    spec = "nvme,id=nvme0,serial=S1,drive=nvm0,bus=rp0,cmb_size_mb=16"
    agent = threading.Thread(
        target=power_agent.serve, args=(str(short), power_agent.parse_device(spec)), daemon=True
    )
    agent.start()
    guest = qemu.guest()
    assert ask(guest, "off") == "ok"
    assert not qemu.present
    assert ask(guest, "on") == "ok"
    assert qemu.present
    assert ask(guest, "reboot").startswith("error unknown request")
    guest.close()
    agent.join(10)
    assert not agent.is_alive(), "the agent ends when the port closes"
    names = [c["execute"] for c in qemu.commands]
    assert names[0] == "qmp_capabilities"
    assert ("device_del" in names) == present, names
    adds = [c for c in qemu.commands if c["execute"] == "human-monitor-command"]
    assert len(adds) == 2, "a refused device_add is tried again"
    # The properties as -device reads them (QMP's device_add would want cmb_size_mb a number).
    assert adds[1]["arguments"] == {"command-line": f"device_add {spec}"}


class StuckNodeQmp:
    """QMP whose deleted controller never lets go of its block node."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, dict]] = []

    def command(self, name: str, **args: object) -> object:
        self.commands.append((name, args))
        if name == "human-monitor-command":
            if "drive=nvm0," in args["command-line"]:
                return "Error: Permission conflict on node 'nvm0'\r\n"
            return ""
        if name == "query-named-block-nodes":
            return [{"node-name": "nvm0", "image": {"filename": "/images/nvme0.img"}}]
        return {}


def test_a_block_node_never_released_gets_a_fresh_chain():
    qmp = StuckNodeQmp()
    device = power_agent.parse_device("nvme,id=nvme0,drive=nvm0,bus=rp0")
    power_agent.add(qmp, device, timeout=0.5)
    added = [a for n, a in qmp.commands if n == "blockdev-add"]
    assert len(added) == 1
    assert added[0]["file"] == {
        "driver": "file",
        "filename": "/images/nvme0.img",
        "locking": "off",
        "discard": "unmap",
    }
    name, last = qmp.commands[-1]
    assert name == "human-monitor-command"
    assert f"drive={added[0]['node-name']}," in last["command-line"]
    assert device["drive"] == added[0]["node-name"], "later power cycles use the new chain"
