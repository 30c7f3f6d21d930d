"""Device Self-test (14h) and Sanitize (84h).

Self-test: a second test while one runs (01/1D), a reserved STC (00/02), an invalid NSID
(00/0B), the controller-only test (NSID 0), newest result first, a short test aborted by a
controller reset, an extended test surviving it, an extended test aborted by Format NVM, and IO
with verified data while a test runs. Sanitize: reserved and unsupported actions (00/02), exit
failure mode, IO during a sanitize (00/1D), the status log and its AER on completion, erased
data, and a sanitize that goes on across a power cycle.
"""

import time
import warnings

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")


def need_dst(oacs):
    if not oacs & 0x10:
        pytest.skip("Device Self-test not supported (OACS bit 4)")


def dst_log(nvme0):
    b = Buffer(564, "self-test log")
    nvme0.getlogpage(6, b, 564).waitdone()
    return b


def wait_dst_done(nvme0, seconds):
    deadline = time.time() + seconds
    b = dst_log(nvme0)
    while b.data(0) & 0xF and time.time() < deadline:
        time.sleep(0.05)
        b = dst_log(nvme0)
    assert b.data(0) & 0xF == 0, f"self-test still running after {seconds} s"
    return b


def short_minutes(id_ctrl_buf):
    # No limit in Identify for the short test: the spec says 2 minutes or less.
    return 120


def sanicap(id_ctrl_buf):
    return id_ctrl_buf.data(331, 328)


def need_sanitize(id_ctrl_buf, action=None):
    cap = sanicap(id_ctrl_buf)
    if not cap & 0x7:
        pytest.skip("Sanitize not supported (SANICAP)")
    # SANACT 2 block erase: bit 1; 3 overwrite: bit 2; 4 crypto erase: bit 0.
    bit = {2: 1, 3: 2, 4: 0}.get(action)
    if bit is not None and not cap & (1 << bit):
        pytest.skip(f"sanitize action {action} not supported (SANICAP bit {bit})")


def sanitize_log(nvme0):
    b = Buffer(512, "sanitize log")
    nvme0.getlogpage(0x81, b, 512).waitdone()
    return b


def wait_sanitize_done(nvme0, seconds=600):
    deadline = time.time() + seconds
    b = sanitize_log(nvme0)
    while b.data(3, 2) & 0x7 == 2 and time.time() < deadline:
        time.sleep(0.1)
        b = sanitize_log(nvme0)
    assert b.data(3, 2) & 0x7 != 2, "sanitize still in progress"
    return b


def block_action(id_ctrl_buf):
    """A sanitize action the controller supports, block erase first."""
    cap = sanicap(id_ctrl_buf)
    for action, bit in ((2, 1), (4, 0), (3, 2)):
        if cap & (1 << bit):
            return action
    pytest.skip("Sanitize not supported (SANICAP)")


@pytest.mark.device
def test_dst_in_progress(nvme0, oacs):
    """A self-test started while one is running fails with 01/1D.

    Spec: NVMe 2.0 base spec 5.8 Device Self-test (Device Self-test in Progress).

    Steps:
    1. Start an extended self-test.
    2. Start a short self-test at once: status 01/1D.
    3. Abort the running test (STC Fh) and check the log shows no test running.
    """
    need_dst(oacs)
    nvme0.dst(2, nsid=0).waitdone()
    try:
        with pytest.warns(UserWarning, match="ERROR status: 01/1d"):
            nvme0.dst(1, nsid=0).waitdone()
    finally:
        nvme0.dst(0xF, nsid=0).waitdone()
    assert dst_log(nvme0).data(0) & 0xF == 0


@pytest.mark.device
@pytest.mark.parametrize("stc", [0x3, 0x7, 0xD])
def test_dst_reserved_code(nvme0, oacs, stc):
    """A reserved Self-test Code fails with Invalid Field in Command.

    Spec: NVMe 2.0 base spec 5.8 Device Self-test (STC values).

    Steps:
    1. Send Device Self-test with the reserved STC.
    2. Check status 00/02.
    """
    need_dst(oacs)
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.dst(stc, nsid=0).waitdone()


@pytest.mark.device
def test_dst_invalid_namespace(nvme0, oacs, id_ctrl_buf):
    """A self-test for a namespace id above NN fails with Invalid Namespace or Format.

    Spec: NVMe 2.0 base spec 5.8 Device Self-test (NSID).

    Steps:
    1. Send a short self-test for NSID NN+1.
    2. Check status 00/0B.
    """
    need_dst(oacs)
    nn = id_ctrl_buf.data(519, 516)
    if nn >= 0xFFFFFFFE:
        pytest.skip("NN leaves no invalid namespace id")
    with pytest.warns(UserWarning, match="ERROR status: 00/0b"):
        nvme0.dst(1, nsid=nn + 1).waitdone()


@pytest.mark.device
@pytest.mark.parametrize("nsid", [0, 1, 0xFFFFFFFF])
def test_dst_short_completes(nvme0, oacs, id_ctrl_buf, nsid):
    """A short self-test on NSID 0, 1 and FFFFFFFFh completes without error.

    Spec: NVMe 2.0 base spec 5.8 Device Self-test, 5.16.1.7 Device Self-test log (result 0h).

    Steps:
    1. Start a short self-test with the NSID.
    2. Poll the self-test log until no test is running (at most 2 minutes).
    3. Check the newest result: code 1h, result 0h; for NSID 1 the NSV bit and NSID field.
    """
    need_dst(oacs)
    nvme0.dst(1, nsid=nsid).waitdone()
    b = wait_dst_done(nvme0, short_minutes(id_ctrl_buf))
    assert b.data(4) == 0x10, f"newest result {b.data(4):#x}"
    if nsid == 1 and b.data(5) & 0x1:
        assert b.data(15, 12) == 1, "NSV set but NSID is not 1"


@pytest.mark.device
def test_dst_newest_result_first(nvme0, oacs, id_ctrl_buf):
    """Self-test results are kept newest first: the previous result moves to entry 1.

    Spec: NVMe 2.0 base spec 5.16.1.7 Device Self-test log (result data structures "in order
    from newest to oldest").

    Steps:
    1. Start an extended test and abort it (result 1h), then run a short test to completion.
    2. Check entry 0 is short/0h and entry 1 is extended/aborted (1h).
    """
    need_dst(oacs)
    nvme0.dst(2, nsid=0).waitdone()
    nvme0.dst(0xF, nsid=0).waitdone()
    nvme0.dst(1, nsid=0).waitdone()
    b = wait_dst_done(nvme0, short_minutes(id_ctrl_buf))
    assert b.data(4) == 0x10
    assert b.data(4 + 28) == 0x21, f"entry 1 is {b.data(4 + 28):#x}"


@pytest.mark.device
def test_dst_short_aborted_by_controller_reset(nvme0, oacs):
    """A controller reset aborts a short self-test (result 2h).

    Spec: NVMe 2.0 base spec 5.8.1 Short device self-test ("aborted by a Controller Level
    Reset").

    Steps:
    1. Start a short self-test; skip if it finished before the reset could happen.
    2. Reset the controller.
    3. Check no test runs and the newest result is short / aborted by reset (12h).
    """
    need_dst(oacs)
    nvme0.dst(1, nsid=0).waitdone()
    if dst_log(nvme0).data(0) & 0xF != 1:
        pytest.skip("the short self-test finished at once")
    nvme0.reset()
    b = dst_log(nvme0)
    assert b.data(0) & 0xF == 0
    assert b.data(4) == 0x12, f"newest result {b.data(4):#x}"


@pytest.mark.device
def test_dst_extended_survives_controller_reset(nvme0, oacs):
    """A controller reset does not abort an extended self-test.

    Spec: NVMe 2.0 base spec 5.8.2 Extended device self-test ("not aborted by a Controller
    Level Reset").

    Steps:
    1. Start an extended self-test.
    2. Reset the controller.
    3. Check the log still shows an extended test running (or its successful result), then
       abort it.
    """
    need_dst(oacs)
    nvme0.dst(2, nsid=0).waitdone()
    nvme0.reset()
    b = dst_log(nvme0)
    try:
        if b.data(0) & 0xF == 0:
            assert b.data(4) == 0x20, f"extended test ended with {b.data(4):#x}"
        else:
            assert b.data(0) & 0xF == 2
    finally:
        nvme0.dst(0xF, nsid=0).waitdone()


@pytest.mark.device
def test_dst_extended_aborted_by_format(nvme0, nvme0n1, oacs):
    """Format NVM aborts a running extended self-test (result 4h).

    Spec: NVMe 2.0 base spec 5.8 Device Self-test (result 4h: aborted due to the
    processing of a Format NVM command).

    Steps:
    1. Skip unless Format NVM is supported too.
    2. Start an extended self-test; format the namespace with its current format.
    3. Check no test runs and the newest result is extended / aborted by format (24h).
    """
    need_dst(oacs)
    if not oacs & 0x2:
        pytest.skip("Format NVM not supported (OACS bit 1)")
    b = Buffer(4096)
    nvme0.identify(b, nsid=nvme0n1.nsid, cns=0).waitdone()
    flbas = b.data(26)
    nvme0.dst(2, nsid=0xFFFFFFFF).waitdone()
    nvme0.format((flbas & 0xF) | ((flbas >> 5) & 3) << 4, nsid=nvme0n1.nsid).waitdone()
    log = dst_log(nvme0)
    assert log.data(0) & 0xF == 0
    assert log.data(4) == 0x24, f"newest result {log.data(4):#x}"


@pytest.mark.device
def test_dst_with_io(nvme0, nvme0n1, oacs, verify):
    """IO with verified data runs while a short self-test runs.

    Spec: NVMe 2.0 base spec 5.8 Device Self-test (IO commands are processed during a test).

    Steps:
    1. Start a short self-test.
    2. Run a 1 s ioworker (50% reads, 4 KiB random, QD 8) over a 10 MB region.
    3. Check the ioworker saw no error and the self-test finished without error.
    """
    need_dst(oacs)
    nvme0.dst(1, nsid=0).waitdone()
    r = (
        nvme0n1.ioworker(
            io_size=8, lba_random=True, read_percentage=50, region_end=20000, qdepth=8, time=1
        )
        .start()
        .close()
    )
    assert r.error == 0
    assert r.io_count_read + r.io_count_nonread > 0
    b = wait_dst_done(nvme0, 120)
    assert b.data(4) == 0x10


@pytest.mark.device
@pytest.mark.parametrize("sanact", [0, 5, 6, 7])
def test_sanitize_reserved_action(nvme0, id_ctrl_buf, sanact):
    """Sanitize with a reserved action fails with Invalid Field in Command.

    Spec: NVMe 2.0 base spec 5.24 Sanitize (SANACT 000b and 101b-111b reserved).

    Steps:
    1. Skip unless Sanitize is supported.
    2. Send Sanitize with the reserved SANACT.
    3. Check status 00/02 and the sanitize log shows no sanitize in progress.
    """
    need_sanitize(id_ctrl_buf)
    # Raw command: the driver's sanitize() refuses reserved actions itself.
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.send_cmd(0x84, cdw10=sanact).waitdone()
    assert sanitize_log(nvme0).data(3, 2) & 0x7 != 2


@pytest.mark.device
@pytest.mark.parametrize("action,bit", [(2, 1), (3, 2), (4, 0)])
def test_sanitize_unsupported_action(nvme0, id_ctrl_buf, action, bit):
    """A sanitize action SANICAP does not list fails with Invalid Field in Command.

    Spec: NVMe 2.0 base spec 5.24 Sanitize ("not supported ... Invalid Field in Command").

    Steps:
    1. Skip if the action is supported (or Sanitize is not supported at all).
    2. Send Sanitize with that action.
    3. Check status 00/02.
    """
    cap = sanicap(id_ctrl_buf)
    if not cap & 0x7:
        pytest.skip("Sanitize not supported (SANICAP)")
    if cap & (1 << bit):
        pytest.skip(f"sanitize action {action} is supported")
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.sanitize(option=action).waitdone()


@pytest.mark.device
def test_sanitize_exit_failure_mode(nvme0, id_ctrl_buf):
    """Exit Failure Mode (SANACT 001b) succeeds when no sanitize has failed.

    Spec: NVMe 2.0 base spec 5.24 Sanitize (SANACT 001b).

    Steps:
    1. Skip unless Sanitize is supported.
    2. Send Sanitize with SANACT 001b.
    3. Check success and that no sanitize is in progress afterwards.
    """
    need_sanitize(id_ctrl_buf)
    nvme0.sanitize(option=1).waitdone()
    assert sanitize_log(nvme0).data(3, 2) & 0x7 != 2


@pytest.mark.device
def test_sanitize_erases_and_reports(nvme0, nvme0n1, qpair, id_ctrl_buf):
    """A sanitize completes: log SSTAT 'completed', global data erased, AER, data gone.

    Spec: NVMe 2.0 base spec 5.24 Sanitize, 5.16.1 Sanitize Status log (LID 81h) log, 8.21 Sanitize
    Operations (Sanitize Operation Completed event, type 6h info 01h).

    Steps:
    1. Write a pattern to 8 LBAs.
    2. Start a sanitize (block erase, else crypto erase, else overwrite).
    3. Poll log 81h until not in progress; the completion AER is expected on the way.
    4. Check SSTAT is 1h (completed) or 4h (completed without deallocation), the Global Data
       Erased bit (bit 8), and the pattern is gone.
    """
    action = block_action(id_ctrl_buf)
    w = Buffer(8 * nvme0n1.sector_size, ptype=32, pvalue=0x5A417A17)
    nvme0n1.write(qpair, w, 0, 8).waitdone()
    with pytest.warns(UserWarning, match="AER notification is triggered: 0x[0-9a-f]*8101[0-9a-f]6"):
        nvme0.sanitize(option=action).waitdone()
        log = wait_sanitize_done(nvme0)
        nvme0.getfeatures(7).waitdone()
    sstat = log.data(3, 2)
    assert sstat & 0x7 in (1, 4), f"SSTAT {sstat:#x}"
    assert sstat & (1 << 8), "Global Data Erased not set after a sanitize"
    r = Buffer(len(w))
    nvme0n1.read(qpair, r, 0, 8).waitdone()
    assert r != w


@pytest.mark.device
def test_io_during_sanitize(nvme0, nvme0n1, qpair, buf, id_ctrl_buf):
    """IO while a sanitize is in progress fails with Sanitize In Progress (00/1D).

    Spec: NVMe 2.0 base spec 8.21 Sanitize Operations ("... shall abort with Sanitize In
    Progress").

    Steps:
    1. Start a sanitize.
    2. If the log still shows it in progress, read one LBA: status 00/1D.
    3. Wait for the sanitize to complete (its AER is expected) and read again: success.
    """
    action = block_action(id_ctrl_buf)
    with pytest.warns(UserWarning, match="AER notification is triggered"):
        nvme0.sanitize(option=action).waitdone()
        if sanitize_log(nvme0).data(3, 2) & 0x7 == 2:
            with pytest.warns(UserWarning, match="ERROR status: 00/1d"):
                nvme0n1.read(qpair, buf, 0).waitdone()
        else:
            pytest.skip("the sanitize finished before IO could be sent")
        wait_sanitize_done(nvme0)
        nvme0.getfeatures(7).waitdone()
    nvme0n1.read(qpair, buf, 0).waitdone()


@pytest.mark.device
def test_sanitize_admin_commands_allowed(nvme0, id_ctrl_buf):
    """During a sanitize, Identify and the Sanitize Status log are still served.

    Spec: NVMe 2.0 base spec 8.21 Sanitize Operations (admin commands allowed during a
    sanitize: Identify, Get Log Page, Get Features, ...).

    Steps:
    1. Start a sanitize.
    2. Send Identify Controller and Get Features Number of Queues: both succeed.
    3. Wait for completion (its AER is expected).
    """
    action = block_action(id_ctrl_buf)
    b = Buffer(4096)
    with pytest.warns(UserWarning, match="AER notification is triggered"):
        nvme0.sanitize(option=action).waitdone()
        nvme0.identify(b).waitdone()
        nvme0.getfeatures(7).waitdone()
        wait_sanitize_done(nvme0)
        nvme0.getfeatures(7).waitdone()
    assert b.data(1, 0) == id_ctrl_buf.data(1, 0)


@pytest.mark.device
def test_sanitize_across_power_cycle(nvme0, nvme0n1, subsystem, id_ctrl_buf):
    """A sanitize interrupted by a power cycle completes afterwards; the data is erased.

    Spec: NVMe 2.0 base spec 8.21 Sanitize Operations ("a sanitize operation ... resumes
    after power on" / restricted media).

    Steps:
    1. Write a pattern to 8 LBAs; start a sanitize.
    2. Power cycle the subsystem at once and reinitialise the controller.
    3. Poll log 81h until not in progress; check SSTAT completed (1h or 4h).
    4. Read the LBAs: the pattern is gone.
    """
    action = block_action(id_ctrl_buf)
    q = Qpair(nvme0, 8)
    w = Buffer(8 * nvme0n1.sector_size, ptype=32, pvalue=0x9C9C9C9C)
    nvme0n1.write(q, w, 0, 8).waitdone()
    nvme0n1.flush(q).waitdone()
    q.delete()
    nvme0.sanitize(option=action).waitdone()
    subsystem.power_cycle(3)
    nvme0.reset()
    # The completion event is raised only if the sanitize ends after the controller is
    # enabled again, so it may or may not come.
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        log = wait_sanitize_done(nvme0)
        nvme0.getfeatures(7).waitdone()
    unexpected = [str(w.message) for w in record if "AER notification" not in str(w.message)]
    assert not unexpected, unexpected
    assert log.data(3, 2) & 0x7 in (1, 4)
    q = Qpair(nvme0, 8)
    r = Buffer(len(w))
    nvme0n1.read(q, r, 0, 8).waitdone()
    q.delete()
    assert r != w


@pytest.mark.device
def test_dst_extended_aborted_by_sanitize(nvme0, oacs, id_ctrl_buf):
    """A sanitize aborts a running extended self-test (result 9h).

    Spec: NVMe 2.0 base spec 5.8 Device Self-test (result 9h: aborted due to a
    sanitize operation), 8.21 Sanitize Operations.

    Steps:
    1. Skip unless Device Self-test and a sanitize action are supported.
    2. Start an extended self-test, then a sanitize; wait for the sanitize (its AER comes).
    3. Check no test runs and the newest result is extended / aborted by sanitize (29h).
    """
    need_dst(oacs)
    action = block_action(id_ctrl_buf)
    nvme0.dst(2, nsid=0xFFFFFFFF).waitdone()
    with pytest.warns(UserWarning, match="AER notification is triggered"):
        nvme0.sanitize(option=action).waitdone()
        wait_sanitize_done(nvme0)
        nvme0.getfeatures(7).waitdone()
    log = dst_log(nvme0)
    assert log.data(0) & 0xF == 0
    assert log.data(4) == 0x29, f"newest result {log.data(4):#x}"
