#!/usr/bin/env python3
"""The host side of the QEMU lane's power switch (started by tools/qemu/guest beside QEMU).

A guest cannot cut its own slot's power, so it asks the host: QEMU removes the NVMe controller
(`device_del`) and adds a new one with the same properties (`device_add`), whose registers,
queues, features and log counters start from their power-on values, while the namespace's data
stays in the backing image (a `-blockdev` node, which a `device_del` leaves in place).

The guest writes one request per line on the virtio-serial port `pynvme.power`, which QEMU
connects to the unix socket SOCKDIR/power.sock; this agent reads it there, talks to QEMU's QMP
socket SOCKDIR/qmp.sock, and answers one line:

    off  ->  the controller is gone: the guest's slot power-off already made QEMU delete it
             (QEMU unplugs a device whose slot the guest powers off), or device_del ID and
             QEMU's DEVICE_DELETED event for it                           ->  ok
    on   ->  device_add DEVICE (the same driver and properties; through the human
             monitor, which reads them as -device does)                   ->  ok
    anything else, or a failure                                          ->  error REASON

usage: power_agent.py SOCKDIR DEVICE
    DEVICE is the controller's -device argument: the driver, then key=value properties, with an
    id= (e.g. nvme,id=nvme0,serial=PYNVMERS0001,drive=nvm0,bus=rp0). The agent ends when QEMU
    closes either socket.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

#: How long QEMU gets to finish a device_del (the guest has released the slot by then).
UNPLUG_TIMEOUT = 30.0
#: How long a new controller may wait for the deleted one to let go of the block node.
ADD_TIMEOUT = 30.0
#: How long QEMU gets to create its sockets.
START_TIMEOUT = 120.0


def parse_device(spec: str) -> dict[str, str]:
    """`driver,key=value,...` -> QMP device_add arguments; raises ValueError without id=."""
    parts = spec.split(",")
    args = {"driver": parts[0]}
    for p in parts[1:]:
        key, sep, value = p.partition("=")
        if not sep:
            raise ValueError(f"DEVICE property without a value: {p!r}")
        args[key] = value
    if "id" not in args:
        raise ValueError("DEVICE needs an id= for device_del")
    return args


def connect(path: str) -> socket.socket:
    """Connects to the unix socket `path`, waiting up to START_TIMEOUT for QEMU to create it."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Qmp:
    """A QMP connection: commands, and the events that arrive in between."""

    def __init__(self, path: str) -> None:
        self.sock = connect(path)
        self.file = self.sock.makefile("rwb")
        self.events: list[dict] = []
        self._read()  # the greeting
        self.command("qmp_capabilities")

    def _read(self) -> dict:
        line = self.file.readline()
        if not line:
            raise EOFError("QEMU closed the QMP socket")
        return json.loads(line)

    def command(self, name: str, **arguments: object) -> object:
        """Runs a command; returns its "return" value, raises RuntimeError with QEMU's error."""
        msg = {"execute": name, **({"arguments": arguments} if arguments else {})}
        self.file.write(json.dumps(msg).encode() + b"\n")
        self.file.flush()
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                raise RuntimeError(reply["error"].get("desc", str(reply["error"])))
            else:
                return reply.get("return")

    def wait_deleted(self, dev_id: str, timeout: float) -> None:
        """Waits for the DEVICE_DELETED event of `dev_id` (or finds it already received)."""

        def match(e: dict) -> bool:
            return e.get("event") == "DEVICE_DELETED" and e.get("data", {}).get("device") == dev_id

        if any(match(e) for e in self.events):
            self.events = [e for e in self.events if not match(e)]
            return
        self.sock.settimeout(timeout)
        try:
            while True:
                e = self._read()
                if match(e):
                    return
        except TimeoutError:
            raise RuntimeError(f"no DEVICE_DELETED for {dev_id} after {timeout:.0f} s") from None
        finally:
            self.sock.settimeout(None)


def exists(qmp: Qmp, dev_id: str) -> bool:
    """Whether QEMU still has the device with id `dev_id` (a -device with an id is a child of
    /machine/peripheral)."""
    children = qmp.command("qom-list", path="/machine/peripheral")
    return any(c.get("name") == dev_id for c in children or [])


def add(qmp: Qmp, device: dict[str, str], timeout: float) -> None:
    """device_add, retried until `timeout`: the deleted controller's hold on the block node
    goes only once its last requests are done ("Permission conflict on node" until then).

    A deleted controller was seen to keep its block node for good (QEMU 10.0, once in a lane
    run): then the new controller gets a new node chain over the same image file (without
    QEMU's image lock, which the old chain holds), and keeps it for the next power cycles.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            device_add(qmp, device)
            return
        except RuntimeError as e:
            if "conflict" not in str(e).lower() or time.monotonic() > deadline:
                raise
            if time.monotonic() > deadline - timeout / 2:
                device["drive"] = fresh_node(qmp, device["drive"])
            time.sleep(0.2)


def device_add(qmp: Qmp, device: dict[str, str]) -> None:
    """device_add through the human monitor, which parses the properties as -device does
    (QMP's device_add wants each one in its own type: `cmb_size_mb` as a number, ...)."""
    spec = ",".join([device["driver"]] + [f"{k}={v}" for k, v in device.items() if k != "driver"])
    out = qmp.command("human-monitor-command", **{"command-line": f"device_add {spec}"})
    if isinstance(out, str) and out.strip():
        raise RuntimeError(out.strip())


def fresh_node(qmp: Qmp, node: str) -> str:
    """A new raw node over a new file node of the image that `node` reads; returns its name."""
    nodes = qmp.command("query-named-block-nodes", flat=True) or []
    image = next(
        (n["image"]["filename"] for n in nodes if n.get("node-name") == node and "image" in n),
        None,
    )
    if image is None:
        raise RuntimeError(f"block node {node} not found")
    FRESH[0] += 1
    name = f"pynvme-power-{FRESH[0]}"
    qmp.command(
        "blockdev-add",
        driver="raw",
        **{"node-name": name},
        discard="unmap",
        file={"driver": "file", "filename": image, "locking": "off", "discard": "unmap"},
    )
    print(f"power agent: new block node {name} over {image}", file=sys.stderr, flush=True)
    return name


#: How many fresh node chains were made.
FRESH = [0]


def serve(sockdir: str, device: dict[str, str]) -> None:
    """Answers the guest's requests until QEMU goes away."""
    qmp = Qmp(os.path.join(sockdir, "qmp.sock"))
    port = connect(os.path.join(sockdir, "power.sock"))
    lines = port.makefile("rb")
    for raw in lines:
        req = raw.decode(errors="replace").strip()
        if not req:
            continue
        try:
            if req == "off":
                if exists(qmp, device["id"]):
                    qmp.events.clear()
                    qmp.command("device_del", id=device["id"])
                    qmp.wait_deleted(device["id"], UNPLUG_TIMEOUT)
            elif req == "on":
                add(qmp, device, ADD_TIMEOUT)
            else:
                raise RuntimeError(f"unknown request {req!r} (off, on)")
            answer = "ok"
        except (RuntimeError, OSError, ValueError) as e:
            answer = f"error {e}"
        print(f"power agent: {req}: {answer}", file=sys.stderr, flush=True)
        port.sendall(answer.encode() + b"\n")


def main(argv: list[str]) -> int:
    """Entry point: power_agent.py SOCKDIR DEVICE."""
    if len(argv) != 3:
        print(__doc__.split("usage:")[1], file=sys.stderr)
        return 2
    try:
        device = parse_device(argv[2])
    except ValueError as e:
        print(f"power_agent.py: {e}", file=sys.stderr)
        return 2
    try:
        serve(argv[1], device)
    except (EOFError, ConnectionError, OSError) as e:
        # QEMU ended (the guest's command is done): nothing left to switch.
        print(f"power agent: done ({e})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
