"""A labgrid place holding an NVMe function and its power port, round trip on one machine.

`tools/labgrid/run` starts a labgrid coordinator and an exporter on localhost; the exporter
exports an `NVMeFunction` (the simulated SSD, `sim://?serial=...`) and a `rest`
`NetworkPowerPort` whose URL is this session's relay (`nvme.lab.SimPowerRelay`), and a place
matches both. The session reserves and acquires the place, takes its device from it, and the
`subsystem` fixture switches the power through labgrid's `NetworkPowerDriver`, which reaches
the simulated SSD over HTTP: a clean power cycle keeps the data, a power loss loses what the
volatile write cache held (and verification knows it).
"""

from __future__ import annotations

import pytest

from nvme import *


@pytest.fixture
def lab_module(lab):
    """`nvme.lab`, imported once labgrid is known to be there."""
    import nvme.lab  # noqa: PLC0415

    return nvme.lab


def write(nvme0, nvme0n1, lba, value, flush=False):
    """Write a 512-byte block of `value` at `lba` (and flush)."""
    q = Qpair(nvme0, 8)
    try:
        nvme0n1.write(q, Buffer(512, ptype=32, pvalue=value), lba).waitdone()
        if flush:
            nvme0n1.flush(q).waitdone()
    finally:
        q.delete()


def read(nvme0, nvme0n1, lba):
    """The 32-bit value at byte 256 of `lba`."""
    q = Qpair(nvme0, 8)
    try:
        b = Buffer(512)
        nvme0n1.read(q, b, lba).waitdone()
        return b.data(259, 256)
    finally:
        q.delete()


def unsafe_shutdowns(nvme0):
    """SMART / Health log: Unsafe Shutdowns."""
    b = Buffer(512)
    nvme0.getlogpage(2, b, 512).waitdone()
    return b.data(159, 144)


def test_the_session_reserved_and_acquired_the_place(lab, lab_module):
    assert lab.acquired, "the place was free: the session must have acquired it"
    assert lab.holder() == lab_module.lab_user()
    reservations = lab.client("reservations")
    block = reservations.split(f"Reservation '{lab.token}':", 1)[1].split("Reservation '")[0]
    assert "state: acquired" in block
    assert f"name={lab.place}" in block


def test_the_device_is_the_places_nvme_function(lab, lab_module, pciaddr, nvme0):
    function = lab.target().get_resource(lab_module.NVMeFunction)
    assert pciaddr == function.pciaddr
    assert pciaddr.startswith("sim://?serial=")
    assert nvme0.id_ctrl().sn.strip() == pciaddr.partition("serial=")[2].partition("&")[0]


def test_power_goes_through_the_places_power_port(lab, pcie, nvme0, subsystem):
    power = lab.power()
    assert type(power).__name__ == "NetworkPowerDriver"
    assert power.port.model == "rest" and lab.relay is not None
    switches = len(lab.relay.switches)
    subsystem.poweroff()
    assert nvme0.state == "powered_off"
    assert pcie.sim.powered is False
    assert power.get() is False, "labgrid reads the port's state back"
    subsystem.poweron()
    assert pcie.sim.powered is True and power.get() is True
    assert lab.relay.switches[switches:] == ["off", "on"]
    assert nvme0.state == "needs_init"
    nvme0.reset()
    assert nvme0.getfeatures(7).waitdone() == 0x003F003F


def test_clean_power_cycle_keeps_cached_data(lab, nvme0, nvme0n1, subsystem, verify):
    before = unsafe_shutdowns(nvme0)
    write(nvme0, nvme0n1, 10, 0x1AB0C1EA)  # not flushed: in the volatile write cache
    subsystem.poweroff(clean=True)  # shutdown notification, then labgrid switches off
    subsystem.poweron()
    nvme0.reset()
    assert read(nvme0, nvme0n1, 10) == 0x1AB0C1EA
    assert unsafe_shutdowns(nvme0) == before


def test_power_loss_loses_the_write_cache(lab, nvme0, nvme0n1, subsystem, verify):
    before = unsafe_shutdowns(nvme0)
    write(nvme0, nvme0n1, 20, 0xF1A5F1A5, flush=True)
    write(nvme0, nvme0n1, 20, 0x0BADCAFE)  # only in the volatile write cache
    subsystem.poweroff()  # power loss
    subsystem.poweron()
    nvme0.reset()
    # The unflushed write went with the power; verification knows it and raises nothing.
    assert read(nvme0, nvme0n1, 20) == 0xF1A5F1A5
    assert unsafe_shutdowns(nvme0) == before + 1


def test_another_user_waits_for_the_place_then_gives_up(lab, lab_module, pytester, monkeypatch):
    # A second session of another user, while this one holds the place: it reserves the place,
    # waits --lab-wait seconds, then stops with a usage error and cancels its reservation.
    me = lab_module.lab_user()
    monkeypatch.setenv("LG_USERNAME", "someone-else")
    pytester.makepyfile("def test_x(pciaddr): assert pciaddr")
    result = pytester.runpytest_subprocess(
        "--lg-env", lab.env_file, "--lab-wait", "3", "-p", "no:cacheprovider", timeout=120
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*place {lab.place} not reserved within --lab-wait=3 s*"])
    assert "someone-else" not in lab.client("reservations")
    assert lab.holder() == me
