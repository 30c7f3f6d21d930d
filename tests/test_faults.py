"""The driver against a misbehaving simulated SSD, seen from a script.

Each test makes the device misbehave through `pcie.sim` and checks that the script gets the
pynvme warnings, never a hang or a crash, and that the device can be used again after.
"""

import os
import signal
import threading
import time

import pytest

import nvme
from nvme import Buffer

pytestmark = pytest.mark.skipif(not nvme.native_available(), reason="nvme._native is not built")


def assert_io_works(nvme0n1, qpair, lba=0):
    """A write and a read of `lba` on `qpair` both succeed and the read returns the data written
    (checked by the driver's verification too)."""
    ss = nvme0n1.sector_size
    w = Buffer(ss, ptype=0xBEEF, pvalue=100)
    r = Buffer(ss)
    statuses = []
    nvme0n1.verify_enable(True)
    nvme0n1.write(qpair, w, lba, cb=lambda c: statuses.append((c.sct, c.sc))).waitdone()
    nvme0n1.read(qpair, r, lba, cb=lambda c: statuses.append((c.sct, c.sc))).waitdone()
    assert statuses == [(0, 0), (0, 0)]
    assert r[:] == w[:]


def test_a_dropped_completion_times_out_with_pynvme_warnings(nvme0, nvme0n1, qpair, buf, sim):
    nvme0.timeout = 300
    fid = sim.inject("drop", opcode=2, count=1)
    statuses = []
    t0 = time.time()
    with pytest.warns(UserWarning) as record:
        nvme0n1.read(qpair, buf, 0, cb=lambda cqe: statuses.append((cqe.sct, cqe.sc))).waitdone()
    elapsed = time.time() - t0
    texts = [str(w.message) for w in record]
    assert texts[0].startswith(f"drive timeout: qpair: {qpair.sqid}, cid: ")
    assert "ERROR status: 07/ff" in texts
    assert statuses == [(7, 0xFF)]
    assert 0.25 < elapsed < 5
    assert sim.hits(fid) == 1
    assert_io_works(nvme0n1, qpair)  # the queue goes on


def test_an_injected_status_is_a_warning_not_an_exception(nvme0n1, qpair, buf, sim):
    sim.inject("status", 0x0281, opcode=2, count=1)
    with pytest.warns(UserWarning, match="ERROR status: 02/81"):
        nvme0n1.read(qpair, buf, 0).waitdone()


def test_a_duplicate_completion_is_reported(nvme0n1, qpair, buf, sim):
    sim.inject("duplicate_cqe", opcode=2, count=1)
    nvme0n1.read(qpair, buf, 0).waitdone()
    with pytest.warns(UserWarning, match="not outstanding"):
        nvme0n1.read(qpair, buf, 1).waitdone()


def test_a_wrong_cid_is_reported_and_the_command_times_out(nvme0, nvme0n1, qpair, buf, sim):
    nvme0.timeout = 300
    sim.inject("wrong_cid", 0x40, opcode=2, count=1)
    with pytest.warns(UserWarning) as record:
        nvme0n1.read(qpair, buf, 0).waitdone()
    texts = [str(w.message) for w in record]
    assert any("ERROR status: 07/ff" in t for t in texts), texts
    assert any("never submitted" in t or "not outstanding" in t for t in texts), texts


def test_surprise_removal_raises_and_never_hangs(nvme0, nvme0n1, qpair, buf, sim, subsystem):
    nvme0.timeout = 300
    sim.surprise_removal()
    with pytest.raises(SystemError):
        nvme0[0x1C]
    t0 = time.time()
    with pytest.warns(UserWarning) as record:
        nvme0n1.read(qpair, buf, 0).waitdone()
    assert time.time() - t0 < 5
    texts = [str(w.message) for w in record]
    assert texts[0].startswith(f"drive timeout: qpair: {qpair.sqid}, cid: "), texts
    assert texts[1:] == ["ERROR status: 07/ff"], texts
    # Back in the slot, powered up and initialised again, it works.
    sim.reinsert()
    subsystem.power_cycle(0)
    nvme0.reset()
    assert_io_works(nvme0n1, qpair)


def test_controller_fatal_then_reset_recovers(nvme0, nvme0n1, qpair, buf, sim):
    nvme0.timeout = 300
    sim.controller_fatal()
    with pytest.warns(UserWarning) as record:
        nvme0n1.read(qpair, buf, 0).waitdone()
    texts = [str(w.message) for w in record]
    assert texts[0].startswith(f"drive timeout: qpair: {qpair.sqid}, cid: "), texts
    assert texts[1:] == ["ERROR status: 07/ff"], texts
    assert nvme0[0x1C] & 0x2, "CSTS.CFS"
    sim.clear()
    nvme0.reset()
    assert nvme0[0x1C] & 0x3 == 0x1, "CSTS: ready, no fatal status"
    assert nvme0.timeout == 10_000, "reset restores the default timeout"
    assert_io_works(nvme0n1, qpair)


def test_inject_rejects_unknown_actions_and_values(sim):
    with pytest.raises(ValueError, match="action"):
        sim.inject("explode")
    with pytest.raises(ValueError, match="value"):
        sim.inject("delay")
    with pytest.raises(ValueError, match="probability"):
        sim.inject("drop", probability=2)


class Interrupted(Exception):
    """Raised by the test's SIGINT handler."""


def test_a_signal_interrupts_a_long_wait(nvme0, nvme0n1, qpair, buf, sim):
    def handler(signum, frame):
        raise Interrupted("ctrl-c")

    old = signal.signal(signal.SIGINT, handler)
    try:
        sim.inject("drop", opcode=2, count=1)  # the device never answers: 10 s timeout
        nvme0n1.read(qpair, buf, 0)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.time()
        with pytest.raises(Interrupted):
            qpair.waitdone()
        assert time.time() - t0 < 2, "the wait ended soon after the signal, not at the timeout"
    finally:
        signal.signal(signal.SIGINT, old)
