"""Abort (08h) and Asynchronous Event Request (0Ch).

Aborting outstanding AERs (each completes with 00/07 and frees its slot), the Abort Command
Limit (ACL+1 aborts outstanding at once are accepted), abort of an already completed Abort, and
event delivery and masking through Asynchronous Event Configuration (FID 0Bh) with the
temperature threshold as the trigger.
"""

import time
import warnings

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")


def send_aers(nvme0, count):
    """Send `count` AERs; return their command ids."""
    cids = []
    for _ in range(count):
        nvme0.aer()
        cids.append(nvme0.latest_cid)
    return cids


def composite_temperature(nvme0):
    b = Buffer(512, "smart")
    nvme0.getlogpage(2, b, 512).waitdone()
    return b.data(2, 1)


def abort_aers(nvme0, cids, error_statuses):
    """Abort each AER in `cids`; return (dword 0 bit 0 of each Abort, error statuses seen)."""
    bits = []

    def run():
        for cid in cids:
            bits.append(nvme0.abort(cid, sqid=0).waitdone() & 1)
        nvme0.getfeatures(7).waitdone()

    return bits, error_statuses(run)


BEST_EFFORT = "the controller aborted no AER (Abort is best effort: it may decline)"


@pytest.mark.device
def test_abort_outstanding_aer(nvme0, error_statuses):
    """An outstanding AER is aborted by Abort: the AER completes with Command Abort Requested.

    Spec: NVMe 2.0 base spec 5.1 Abort command (best effort; dword 0 bit 0 = 0 when the
    command was aborted), 5.2 Asynchronous Event Request command.

    Steps:
    1. Send one AER (the controller holds it: no event is pending).
    2. Abort it by its CID on the admin queue.
    3. If dword 0 bit 0 is 1 (not aborted): check the AER did not complete, and skip.
    4. Else check the AER completed with 00/07 exactly once.
    """
    (cid,) = send_aers(nvme0, 1)
    bits, got = abort_aers(nvme0, [cid], error_statuses)
    if bits == [1]:
        assert got == [], f"Abort reports the AER not aborted, yet it completed: {got}"
        pytest.skip(BEST_EFFORT)
    assert got == ["00/07"], f"aborted AER {cid} completed with {got}"


@pytest.mark.device
def test_abort_all_sent_aers(nvme0, id_ctrl_buf, error_statuses):
    """Every AER the controller reports aborted completes with 00/07 exactly once.

    Spec: NVMe 2.0 base spec 5.1 Abort command, 5.2 Asynchronous Event Request command (AERL).

    Steps:
    1. Fill the AER slots: AERL+1 in all, one of which the driver sent at initialisation.
    2. Abort each AER sent by the script and collect the AER completions.
    3. Check one 00/07 completion per Abort that reports the command aborted (bit 0 = 0);
       skip if the controller aborted none.
    """
    aerl = id_ctrl_buf.data(259) + 1
    cids = send_aers(nvme0, aerl - 1)
    if not cids:
        pytest.skip("AERL allows only the AER the driver keeps outstanding")
    bits, got = abort_aers(nvme0, cids, error_statuses)
    assert got == ["00/07"] * bits.count(0), f"Abort results {bits}, AER completions {got}"
    if all(bits):
        pytest.skip(BEST_EFFORT)


@pytest.mark.device
def test_aer_slot_free_after_abort(nvme0, id_ctrl_buf, error_statuses):
    """Aborting an AER frees its slot: one more AER is then accepted without 01/05.

    Spec: NVMe 2.0 base spec 5.2 Asynchronous Event Request command (AER Limit Exceeded).

    Steps:
    1. Fill all AERL+1 AER slots.
    2. Abort one of them (00/07 on the AER); skip if the controller declines.
    3. Send one more AER and a Get Features: no AER Limit Exceeded status.
    """
    aerl = id_ctrl_buf.data(259) + 1
    cids = send_aers(nvme0, aerl - 1)
    if not cids:
        pytest.skip("AERL allows only the AER the driver keeps outstanding")
    bits, got = abort_aers(nvme0, cids[-1:], error_statuses)
    if bits == [1]:
        pytest.skip(BEST_EFFORT)
    assert got == ["00/07"]
    send_aers(nvme0, 1)
    nvme0.getfeatures(7).waitdone()  # an unexpected 01/05 fails the test here


@pytest.mark.device
def test_abort_command_limit(nvme0, id_ctrl_buf):
    """ACL+1 Abort commands outstanding at the same time are all accepted.

    Spec: NVMe 2.0 base spec 5.1 Abort command (Abort Command Limit, Identify Controller ACL).

    Steps:
    1. Read ACL (0's based) from Identify Controller byte 258.
    2. Submit ACL+1 Abort commands for command ids that are not outstanding, without waiting.
    3. Reap all of them: every one succeeds (no 01/03) and reports not aborted (bit 0 = 1).
    """
    acl = id_ctrl_buf.data(258) + 1
    got = []
    for i in range(acl):
        nvme0.abort(0xF000 + i, sqid=0, cb=got.append)
    nvme0.waitdone(acl)
    assert len(got) == acl
    assert [(c.sct, c.sc) for c in got] == [(0, 0)] * acl
    assert all(c[0] & 1 for c in got), "an Abort of a command that does not exist aborted it"


@pytest.mark.device
def test_abort_of_completed_abort(nvme0):
    """An Abort that names a completed Abort command finds nothing to abort.

    Spec: NVMe 2.0 base spec 5.1 Abort command (dword 0 bit 0).

    Steps:
    1. Send an Abort of a command id that is not outstanding and wait for it.
    2. Abort that Abort command by its CID.
    3. Check dword 0 bit 0 is 1: the command was not aborted.
    """
    nvme0.abort(0xFFF0, sqid=0).waitdone()
    cid = nvme0.latest_cid
    assert nvme0.abort(cid, sqid=0).waitdone() & 1 == 1


@pytest.mark.device
def test_aer_temperature_event(nvme0):
    """Crossing the over temperature threshold completes an AER with a SMART event.

    Spec: NVMe 2.0 base spec 5.2 Asynchronous Event Request, 5.27.1.3 Temperature Threshold.

    Steps:
    1. Enable the temperature critical warning event (FID 0Bh bit 1).
    2. Set the over temperature threshold below the composite temperature.
    3. Check an AER completes: type 1h (SMART/health), info 01h (temperature), log page 02h.
    4. Restore the threshold and read the SMART log to clear the event.
    """
    aec = nvme0.getfeatures(0x0B).waitdone()
    threshold = nvme0.getfeatures(4).waitdone() & 0xFFFF
    kelvin = composite_temperature(nvme0)
    if not kelvin:
        pytest.skip("no composite temperature reported")
    events = []
    try:
        nvme0.setfeatures(0x0B, cdw11=aec | 0x2).waitdone()
        with pytest.warns(UserWarning, match="AER notification is triggered") as record:
            nvme0.setfeatures(4, cdw11=kelvin - 10).waitdone()
            deadline = time.time() + 5
            while time.time() < deadline and not any("AER" in str(w.message) for w in record):
                time.sleep(0.05)
                nvme0.getfeatures(7).waitdone()
        events = [str(w.message) for w in record if "AER" in str(w.message)]
    finally:
        nvme0.setfeatures(4, cdw11=threshold).waitdone()
        nvme0.setfeatures(0x0B, cdw11=aec).waitdone()
        composite_temperature(nvme0)
    value = int(events[0].rsplit("0x", 1)[1], 16)
    assert value & 0x7 == 1, f"event type {value & 7}, expected SMART/health"
    assert (value >> 8) & 0xFF == 1, f"event info {(value >> 8) & 0xFF:#x}, expected temperature"
    assert (value >> 16) & 0xFF == 2, "event does not name the SMART log page"


@pytest.mark.device
def test_aer_temperature_event_masked(nvme0):
    """With the temperature warning disabled in FID 0Bh, crossing the threshold raises no AER.

    Spec: NVMe 2.0 base spec 5.27.1.8 Asynchronous Event Configuration.

    Steps:
    1. Clear bit 1 (temperature) of Asynchronous Event Configuration.
    2. Set the over temperature threshold below the composite temperature.
    3. Poll the admin queue for one second: no AER notification.
    4. Check the SMART critical warning bit 1 is set all the same; restore the settings.
    """
    aec = nvme0.getfeatures(0x0B).waitdone()
    threshold = nvme0.getfeatures(4).waitdone() & 0xFFFF
    kelvin = composite_temperature(nvme0)
    if not kelvin:
        pytest.skip("no composite temperature reported")
    b = Buffer(512, "smart")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            nvme0.setfeatures(0x0B, cdw11=aec & ~0x2).waitdone()
            nvme0.setfeatures(4, cdw11=kelvin - 10).waitdone()
            deadline = time.time() + 1
            while time.time() < deadline:
                time.sleep(0.05)
                nvme0.getfeatures(7).waitdone()
            nvme0.getlogpage(2, b, 512).waitdone()
        finally:
            nvme0.setfeatures(4, cdw11=threshold).waitdone()
            nvme0.setfeatures(0x0B, cdw11=aec).waitdone()
    messages = [str(w.message) for w in record]
    assert not [m for m in messages if "AER" in m], f"masked event delivered: {messages}"
    assert not [m for m in messages if "ERROR status" in m], messages
    assert b.data(0) & 0x2, "critical warning bit 1 not set above the threshold"


@pytest.mark.device
def test_abort_io_in_flight_consistent(nvme0, nvme0n1, error_statuses):
    """Abort of an IO command in flight: its answer matches what happens to the command.

    Spec: NVMe 2.0 base spec 5.1 Abort (best effort: dword 0 bit 0 = 0 if the command was
    aborted, which then completes with Command Abort Requested 00/07).

    Steps:
    1. Fill a qpair with 63 reads of 8 blocks without waiting.
    2. Abort the last one by its CID and SQID.
    3. Wait for all reads: if Abort reports bit 0 = 0, exactly one read completed with 00/07;
       if bit 0 = 1, none did.
    """
    q = Qpair(nvme0, 64)
    try:
        b = Buffer(8 * nvme0n1.sector_size)
        for i in range(63):
            nvme0n1.read(q, b, 8 * i, 8)
        cid = q.latest_cid
        bit = []
        got = error_statuses(
            lambda: (bit.append(nvme0.abort(cid, sqid=q.sqid).waitdone() & 1), q.waitdone(63))
        )
    finally:
        q.delete()
    assert got == (["00/07"] if bit == [0] else []), f"Abort bit 0 = {bit}, reads: {got}"


@pytest.mark.sim_only
def test_abort_delayed_read(pcie, nvme0, nvme0n1, qpair):
    """A read the device holds for 2 s is aborted: it completes at once with 00/07.

    Spec: NVMe 2.0 base spec 5.1 Abort. Simulated SSD only: the delay is injected so the read
    is certainly outstanding when the Abort arrives.

    Steps:
    1. Inject a 2000 ms delay for the next read.
    2. Send the read; abort it by CID and SQID.
    3. Check Abort bit 0 = 0 and the read completes with 00/07 well before 2 s.
    """
    pcie.sim.inject("delay", 2000, opcode=0x02, count=1)
    b = Buffer(nvme0n1.sector_size)
    got = []
    start = time.time()
    nvme0n1.read(qpair, b, 0, cb=got.append)
    cid = qpair.latest_cid
    assert nvme0.abort(cid, sqid=qpair.sqid).waitdone() & 1 == 0
    with pytest.warns(UserWarning, match="ERROR status: 00/07"):
        qpair.waitdone()
    assert time.time() - start < 1.5
    assert (got[0].sct, got[0].sc) == (0, 0x07)
