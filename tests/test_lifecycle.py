"""The controller's life under load, from Python: threads doing verified IO on their own qpairs
while the main thread resets, FLRs, hot resets, subsystem resets and power cycles the simulated
SSD at random moments.

No exception but the typed QueueGoneError (which a thread answers by waiting for the controller),
no hang, no command completed twice or lost, no warning but the host's own "ERROR status: 00/08"
for the commands an event aborted (warnings are errors here), no false miscompare, and every
thread goes on once the controller is ready again. `PYNVME_SOAK=<events>` runs more events.
"""

import os
import random
import threading
import time
import warnings

import pytest

from nvme import *

# A volatile write cache would lose completed writes at a power loss: a true miscompare.
URI = "sim://?vwc=off&capacity=1G"
EVENTS = int(os.environ.get("PYNVME_SOAK", "8"))
# `make soak` gives each round another seed.
SEED = int(os.environ.get("PYNVME_SOAK_SEED", "0")) * 1000

pytestmark = [
    pytest.mark.sim_only,
    pytest.mark.filterwarnings("error"),
    pytest.mark.filterwarnings("ignore:ERROR status. 00/08:UserWarning"),
]


@pytest.fixture
def dut():
    pcie = Pcie(URI)
    nvme0 = Controller(pcie)
    ns = Namespace(nvme0, 1)
    ns.verify_enable(True)
    yield pcie, nvme0, ns, Subsystem(nvme0)
    ns.close()
    pcie.close()


def event(pcie, nvme0, subsystem, name):
    """One lifecycle event, then the controller reset that brings the controller back."""
    if name == "flr":
        pcie.flr()
    elif name == "hot_reset":
        pcie.reset()
    elif name == "subsystem_reset":
        assert subsystem.reset()
    elif name == "clean_power_cycle":
        subsystem.power_cycle(0, clean=True)
    elif name == "dirty_power_cycle":
        subsystem.power_cycle(0)
    elif name == "poweroff_poweron":
        subsystem.poweroff()
        assert nvme0.state == "powered_off"
        subsystem.poweron()
    if name != "reset":
        assert nvme0.state == "needs_init", name
    nvme0.reset()
    assert nvme0.state == "ready"


EVENT_NAMES = [
    "reset",
    "flr",
    "hot_reset",
    "subsystem_reset",
    "clean_power_cycle",
    "dirty_power_cycle",
    "poweroff_poweron",
]


class Worker(threading.Thread):
    """Writes and reads back 8-LBA chunks of its own 256 LBAs on its own qpair."""

    def __init__(self, t, nvme0, ns, stop):
        super().__init__(daemon=True)
        self.t, self.nvme0, self.ns, self.stop = t, nvme0, ns, stop
        self.submitted = 0
        self.seen = set()
        self.duplicates = []
        self.statuses = {}
        self.gone = 0
        self.ok_after_stop = 0
        self.error = None

    def done(self, ident):
        def cb(cqe):
            if ident in self.seen:
                self.duplicates.append(ident)
            self.seen.add(ident)
            key = (cqe.sct, cqe.sc)
            self.statuses[key] = self.statuses.get(key, 0) + 1
            if key == (0, 0) and self.stop.is_set():
                self.ok_after_stop += 1

        return cb

    def run(self):
        try:
            self.loop()
        except BaseException as e:  # reported by the main thread
            self.error = e

    def loop(self):
        rng = random.Random(SEED + self.t)
        while True:
            try:
                q = Qpair(self.nvme0, 8)
                break
            except ControllerNotReadyError:  # the main thread is resetting it: wait
                self.nvme0.wait_ready(60)
        base = self.t * 256
        deadline = time.monotonic() + 120
        while not (self.stop.is_set() and self.ok_after_stop >= 8):
            assert time.monotonic() < deadline, f"thread {self.t} makes no progress"
            lba = base + rng.randrange(32) * 8
            try:
                ident = (self.t, self.submitted)
                self.ns.write(
                    q, Buffer(4096, ptype=0xBEEF, pvalue=100), lba, 8, cb=self.done(ident)
                )
                self.submitted += 1
                q.waitdone()
                ident = (self.t, self.submitted)
                self.ns.read(q, Buffer(4096), lba, 8, cb=self.done(ident))
                self.submitted += 1
                q.waitdone()
            except QueueGoneError as e:
                assert e.qid == q.sqid
                assert e.epoch <= self.nvme0.epoch
                self.gone += 1
                self.nvme0.wait_ready(60)
        q.delete()


@pytest.mark.parametrize("threads", [1, 4, 16])
def test_threads_survive_every_lifecycle_event(dut, threads):
    pcie, nvme0, ns, subsystem = dut
    stop = threading.Event()
    workers = [Worker(t, nvme0, ns, stop) for t in range(threads)]
    for w in workers:
        w.start()
    rng = random.Random(SEED + threads)
    epoch = nvme0.epoch
    for _ in range(EVENTS):
        time.sleep(rng.uniform(0, 0.02))
        event(pcie, nvme0, subsystem, rng.choice(EVENT_NAMES))
    assert nvme0.epoch >= epoch + EVENTS
    stop.set()
    for w in workers:
        w.join(180)
        assert not w.is_alive(), f"thread {w.t} hangs"
        assert w.error is None, f"thread {w.t}: {w.error!r}"
        assert not w.duplicates, f"thread {w.t}: completed twice: {w.duplicates}"
        assert len(w.seen) == w.submitted, f"thread {w.t}: commands lost"
        assert set(w.statuses) <= {(0, 0), (0, 8)}, f"thread {w.t}: {w.statuses}"
        assert w.ok_after_stop >= 8


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_outstanding_io_completes_once_aborted_and_the_qpair_works_again(dut, name):
    pcie, nvme0, ns, subsystem = dut
    q = Qpair(nvme0, 16)
    pcie.sim.inject("drop", opcode=2, count=4)
    got = []
    for i in range(4):
        ns.read(q, Buffer(4096), i * 8, 8, cb=got.append)
    epoch = nvme0.epoch
    if name == "reset":
        nvme0.reset()
    else:
        event(pcie, nvme0, subsystem, name)
    assert nvme0.epoch > epoch
    with pytest.warns(UserWarning, match="ERROR status: 00/08"):
        q.waitdone(4)
    assert [(c.sct, c.sc) for c in got] == [(0, 8)] * 4
    with pytest.raises(AssertionError, match="none is outstanding"):
        q.waitdone()
    pcie.sim.clear()
    ns.read(q, Buffer(4096), 0, 8).waitdone()
    q.delete()


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_outstanding_admin_command_completes_once_aborted_and_aers_end_silently(dut, name):
    pcie, nvme0, _ns, subsystem = dut
    # The device takes this Get Features (Number of Queues) and never answers it.
    pcie.sim.inject("drop", admin=True, opcode=0x0A, count=1)
    got = []
    nvme0.getfeatures(7, cb=lambda cdw0, status1: got.append(status1 >> 1))
    nvme0.ring_doorbell()
    time.sleep(0.05)
    # The controller reset that brings the controller back completes it, exactly once, with
    # 00/08, after its init function (whose own admin commands it does not disturb); the AER
    # the event also ended gives no callback and no warning.
    with pytest.warns(UserWarning) as caught:
        if name == "reset":
            nvme0.reset()
        else:
            event(pcie, nvme0, subsystem, name)
    assert [str(w.message) for w in caught] == ["ERROR status: 00/08"]
    assert got == [0x08]
    with pytest.raises(AssertionError, match="none is outstanding"):
        nvme0.waitdone()
    # The controller is usable: a new admin command completes normally, the old one stays done.
    assert nvme0.getfeatures(7).waitdone() != 0
    assert got == [0x08]


def test_a_torn_down_queue_refuses_io_with_its_epoch(dut):
    pcie, nvme0, ns, _subsystem = dut
    q = Qpair(nvme0, 8)
    epoch = nvme0.epoch
    assert q.alive and q.epoch == epoch
    pcie.flr()
    assert nvme0.state == "needs_init"
    assert not q.alive
    with pytest.raises(QueueGoneError, match="error in submitting io commands") as e:
        ns.read(q, Buffer(4096), 0, 8)
    assert (e.value.qid, e.value.epoch) == (q.sqid, epoch)
    assert isinstance(e.value, AssertionError)
    with pytest.raises(ControllerNotReadyError) as e:
        nvme0.wait_ready(0.05)
    assert e.value.state == "needs_init"
    with pytest.raises(ControllerNotReadyError):
        Qpair(nvme0, 8)
    nvme0.reset()
    assert nvme0.wait_ready(0) == nvme0.epoch
    assert q.alive and q.epoch == nvme0.epoch > epoch
    ns.read(q, Buffer(4096), 0, 8).waitdone()
    q.delete()
    assert not q.alive


def test_power_cycle_keeps_the_power_off_as_long_as_asked(dut):
    _pcie, nvme0, _ns, subsystem = dut
    t0 = time.monotonic()
    subsystem.power_cycle(0.5)
    assert time.monotonic() - t0 >= 0.5
    assert nvme0.state == "needs_init"
    nvme0.reset()


def test_no_warning_for_completions_of_a_torn_down_queue(dut):
    pcie, nvme0, ns, subsystem = dut
    q = Qpair(nvme0, 8)
    # The device answers 100 ms late, after the power is gone and back.
    pcie.sim.inject("delay", 100, opcode=2, count=1)
    ns.read(q, Buffer(4096), 0, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", "ERROR status: 00/08")
        subsystem.power_cycle(0.2)
        nvme0.reset()
        q.waitdone()
        ns.read(q, Buffer(4096), 0, 8).waitdone()
    q.delete()
