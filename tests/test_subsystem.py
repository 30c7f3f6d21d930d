"""Subsystem: shutdown notification, power off/on and power cycle, NVM subsystem reset.

After each event `Controller.reset()` brings the controller back and IO works; data flushed before
a power cycle survives it, a normal shutdown is a clean one (the SMART unsafe shutdown count does
not move) and power callbacks given to Subsystem are the ones called.
"""

import warnings

import pytest

from nvme import *


def admin_answers(nvme0):
    """Get Features (Number of Queues) with a 2 s timeout; the warnings it raised."""
    nvme0.timeout = 2000
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        nvme0.getfeatures(7).waitdone()
    return [str(w.message) for w in record]


def write_read(nvme0, nvme0n1, lba, value=None):
    q = Qpair(nvme0, 8)
    try:
        r = Buffer(512)
        if value is not None:
            w = Buffer(512, ptype=32, pvalue=value)
            nvme0n1.write(q, w, lba).waitdone()
            nvme0n1.flush(q).waitdone()
        nvme0n1.read(q, r, lba).waitdone()
        return r.data(259, 256)
    finally:
        q.delete()


def unsafe_shutdowns(nvme0):
    b = Buffer(512)
    nvme0.getlogpage(2, b, 512).waitdone()
    return b.data(159, 144)


def test_shutdown_notify_sets_shst(nvme0, nvme0n1, subsystem):
    subsystem.shutdown_notify()
    assert (nvme0[0x1C] >> 2) & 3 == 2
    assert (nvme0[0x14] >> 14) & 3 == 1, "CC.SHN normal"
    nvme0.reset()
    assert admin_answers(nvme0) == []
    assert write_read(nvme0, nvme0n1, 1, 0xAAAA5555) == 0xAAAA5555


def test_abrupt_shutdown_notify(nvme0, nvme0n1, subsystem):
    subsystem.shutdown_notify(abrupt=True)
    assert (nvme0[0x1C] >> 2) & 3 == 2
    assert (nvme0[0x14] >> 14) & 3 == 2, "CC.SHN abrupt"
    nvme0.reset()
    assert admin_answers(nvme0) == []
    assert write_read(nvme0, nvme0n1, 2, 0x1) == 0x1


def test_power_cycle_keeps_flushed_data(nvme0, nvme0n1, subsystem):
    write_read(nvme0, nvme0n1, 3, 0xC001D00D)
    subsystem.shutdown_notify()
    assert subsystem.power_cycle(1) is True
    nvme0.reset()
    assert admin_answers(nvme0) == []
    assert write_read(nvme0, nvme0n1, 3) == 0xC001D00D


def test_clean_shutdown_is_not_unsafe(nvme0, subsystem):
    before = unsafe_shutdowns(nvme0)
    subsystem.shutdown_notify()
    subsystem.power_cycle(1)
    nvme0.reset()
    assert admin_answers(nvme0) == []
    assert unsafe_shutdowns(nvme0) == before


def test_power_loss_is_an_unsafe_shutdown(nvme0, subsystem):
    before = unsafe_shutdowns(nvme0)
    subsystem.poweroff()
    subsystem.poweron()
    nvme0.reset()
    assert admin_answers(nvme0) == []
    assert unsafe_shutdowns(nvme0) == before + 1


def test_power_cycle_counts_in_smart(nvme0, subsystem):
    b = Buffer(512)
    nvme0.getlogpage(2, b, 512).waitdone()
    before = b.data(127, 112)
    subsystem.power_cycle(1)
    nvme0.reset()
    assert admin_answers(nvme0) == []
    nvme0.getlogpage(2, b, 512).waitdone()
    assert b.data(127, 112) == before + 1


def test_poweroff_poweron(nvme0, nvme0n1, subsystem):
    write_read(nvme0, nvme0n1, 4, 0x12121212)
    assert subsystem.poweroff() is True
    assert subsystem.poweron() is True
    nvme0.reset()
    assert admin_answers(nvme0) == []
    assert nvme0[0x1C] & 1
    assert write_read(nvme0, nvme0n1, 5, 0x34343434) == 0x34343434


def test_power_callbacks_are_called(nvme0):
    calls = []
    s = Subsystem(
        nvme0, poweron_cb=lambda: calls.append("on"), poweroff_cb=lambda: calls.append("off")
    )
    b = Buffer(512)
    nvme0.getlogpage(2, b, 512).waitdone()
    power_cycles = b.data(127, 112)
    assert s.poweroff() is True
    assert nvme0.state == "powered_off"
    assert s.poweron() is True
    assert calls == ["off", "on"]
    # The driver tore its queues down (it cannot know whether the switch worked) ...
    assert nvme0.state == "needs_init"
    nvme0.reset()
    assert nvme0.getfeatures(7).waitdone() == 0x003F003F
    # ... but the callbacks replaced the platform's own switch: the device never lost power.
    nvme0.getlogpage(2, b, 512).waitdone()
    assert b.data(127, 112) == power_cycles


def test_subsystem_reset(nvme0, nvme0n1, subsystem):
    assert (nvme0.cap >> 36) & 1, "the simulated SSD supports NSSR"
    assert subsystem.reset() is True
    nvme0.reset()
    assert admin_answers(nvme0) == []
    assert nvme0[0x1C] & 0x10, "CSTS.NSSRO"
    assert write_read(nvme0, nvme0n1, 6, 0x56565656) == 0x56565656


def test_io_qpair_usable_after_reset_following_power_cycle(nvme0, nvme0n1, subsystem, qpair, buf):
    subsystem.power_cycle(1)
    nvme0.reset()
    assert admin_answers(nvme0) == []
    nvme0n1.read(qpair, buf, 0).waitdone()


def test_shutdown_notify_when_disabled_times_out_or_completes(nvme0, subsystem):
    # A disabled controller has nothing to shut down: either it reports complete at once or the
    # helper raises its own exception, never hangs.
    nvme0[0x14] = 0
    nvme0.wait_csts(rdy=False)
    try:
        subsystem.shutdown_notify(timeout=0.5)
    except NvmeShutdownStatusTimeoutError as e:
        assert "csts.shst timeout" in str(e)
    nvme0.reset()
    assert admin_answers(nvme0) == []


@pytest.mark.parametrize("sec", [0, 1])
def test_power_cycle_seconds(subsystem, nvme0, sec):
    assert subsystem.power_cycle(sec)
    nvme0.reset()
    assert admin_answers(nvme0) == []


def test_a_power_switch_callback_may_switch_the_simulated_ssd(pcie, nvme0, nvme0n1):
    # What a lab's power port does (nvme.lab's relay for the simulated SSD): the callbacks flip
    # the simulated SSD's own power while the driver's power off / on runs.
    sim = pcie.sim
    s = Subsystem(nvme0, poweron_cb=sim.power_on, poweroff_cb=sim.power_off)
    write_read(nvme0, nvme0n1, 7, 0x77777777)  # flushed
    q = Qpair(nvme0, 8)
    nvme0n1.write(q, Buffer(512, ptype=32, pvalue=0x88888888), 7).waitdone()  # cached only
    q.delete()
    before = unsafe_shutdowns(nvme0)
    assert sim.powered is True
    s.poweroff()
    assert sim.powered is False
    assert nvme0.state == "powered_off"
    s.poweron()
    assert sim.powered is True
    nvme0.reset()
    assert write_read(nvme0, nvme0n1, 7) == 0x77777777, "the write cache went with the power"
    assert unsafe_shutdowns(nvme0) == before + 1
