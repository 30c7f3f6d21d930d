"""Admin commands other than Identify, features, logs and queues.

An unknown admin opcode (00/01), Abort (08h) of a command that is not outstanding (dword 0
bit 0 = 1), the Asynchronous Event Request limit (01/05 beyond AERL+1), Format NVM (80h) to the
current format and to a format that does not exist (01/0a), Firmware Commit (10h) to a slot that
does not exist (01/06), Device Self-test (14h) with its log page, and an admin command for a
namespace id above NN (00/0b).
"""

import time

import pytest

from nvme import *


@pytest.mark.device
def test_invalid_admin_opcode(nvme0):
    """An admin opcode that is reserved in every revision (7Fh) fails with Invalid Command Opcode.

    Spec: NVMe 2.0 base spec 5 (admin opcodes), 4.2.3 (00/01).

    Steps:
    1. Send admin opcode 7Fh.
    2. Check status 00/01.
    """
    # C0h-FFh are vendor specific; 7Fh is reserved for admin commands in all revisions.
    with pytest.warns(UserWarning, match="ERROR status: 00/01"):
        nvme0.send_cmd(0x7F).waitdone()


@pytest.mark.device
def test_abort_command_not_outstanding(nvme0):
    """Abort of an admin command that already completed reports it was not aborted.

    Spec: NVMe 2.0 base spec 5.1 Abort (dword 0 bit 0).

    Steps:
    1. Send Get Features and wait for it.
    2. Abort its CID on the admin queue.
    3. Check dword 0 bit 0 is 1.
    """
    nvme0.getfeatures(7).waitdone()
    cid = nvme0.latest_cid
    cdw0 = nvme0.abort(cid, sqid=0).waitdone()
    assert cdw0 & 1 == 1, f"Abort of completed cid {cid} reports it aborted: {cdw0:#x}"


@pytest.mark.device
def test_abort_io_command_not_outstanding(nvme0, nvme0n1, qpair, buf):
    """Abort of an IO command that already completed reports it was not aborted.

    Spec: NVMe 2.0 base spec 5.1 Abort (SQID, CID, dword 0 bit 0).

    Steps:
    1. Read one block and wait for it.
    2. Abort its CID on its SQ.
    3. Check dword 0 bit 0 is 1.
    """
    nvme0n1.read(qpair, buf, 0).waitdone()
    cdw0 = nvme0.abort(qpair.latest_cid, sqid=qpair.sqid).waitdone()
    assert cdw0 & 1 == 1


@pytest.mark.device
def test_aer_limit_exceeded(nvme0, id_ctrl_buf):
    """One AER more than AERL+1 fails with Asynchronous Event Request Limit Exceeded.

    Spec: NVMe 2.0 base spec 5.2 Asynchronous Event Request (01/05), 5.17.2.1 AERL.

    Steps:
    1. Send AERs until AERL+1 are outstanding (the driver keeps one).
    2. Send one more.
    3. Check status 01/05.
    """
    aerl = id_ctrl_buf.data(259) + 1
    # The default initialisation has one AER outstanding already.
    for _ in range(aerl - 1):
        nvme0.aer()
    nvme0.getfeatures(7).waitdone()
    nvme0.aer()
    with pytest.warns(UserWarning, match="ERROR status: 01/05"):
        nvme0.getfeatures(7).waitdone()


@pytest.mark.device
def test_format_current_lba_format(nvme0, nvme0n1, id_ns_buf, id_ctrl_buf):
    """Format NVM to the current LBA format keeps the format and the namespace size.

    Spec: NVMe 2.0 base spec 5.14 Format NVM.

    Steps:
    1. Skip unless Format NVM is supported (OACS bit 1).
    2. Format with the LBA format FLBAS names.
    3. Check FLBAS and NSZE are unchanged.
    """
    if not id_ctrl_buf.data(256) & 0x2:
        pytest.skip("Format NVM not supported (OACS bit 1)")
    flbas = id_ns_buf.data(26)
    lbaf = (flbas & 0xF) | ((flbas >> 5) & 0x3) << 4
    nvme0.format(lbaf, nsid=nvme0n1.nsid).waitdone()
    after = Buffer(4096)
    nvme0.identify(after, nsid=nvme0n1.nsid, cns=0).waitdone()
    assert after.data(26) & 0xF == flbas & 0xF
    assert after.data(7, 0) == id_ns_buf.data(7, 0)


@pytest.mark.device
def test_format_invalid_lba_format(nvme0, nvme0n1, id_ns_buf, id_ctrl_buf):
    """Format NVM to an LBA format beyond NLBAF fails with Invalid Format.

    Spec: NVMe 2.0 base spec 5.14 Format NVM (01/0A).

    Steps:
    1. Skip unless Format NVM is supported and fewer than 16 formats exist.
    2. Format with LBAF NLBAF+1.
    3. Check status 01/0A.
    """
    if not id_ctrl_buf.data(256) & 0x2:
        pytest.skip("Format NVM not supported (OACS bit 1)")
    nlbaf = id_ns_buf.data(25)
    if nlbaf >= 15:
        pytest.skip("all 16 LBA formats exist")
    with pytest.warns(UserWarning, match="ERROR status: 01/0a"):
        nvme0.format(nlbaf + 1, nsid=nvme0n1.nsid).waitdone()


@pytest.mark.device
def test_firmware_commit_invalid_slot(nvme0, id_ctrl_buf):
    """Firmware Commit to a slot beyond NOFS fails with Invalid Firmware Slot.

    Spec: NVMe 2.0 base spec 5.12 Firmware Commit (01/06), 5.17.2.1 FRMW.

    Steps:
    1. Skip unless firmware commands are supported (OACS bit 2) and fewer than 7 slots exist.
    2. Commit with CA 001b to slot NOFS+1.
    3. Check status 01/06.
    """
    if not id_ctrl_buf.data(256) & 0x4:
        pytest.skip("Firmware Commit/Download not supported (OACS bit 2)")
    nofs = (id_ctrl_buf.data(260) >> 1) & 0x7
    if nofs == 7:
        pytest.skip("all 7 firmware slots exist")
    # Action 1: the image in the slot is activated at the next reset.
    with pytest.warns(UserWarning, match="ERROR status: 01/06"):
        nvme0.fw_commit(nofs + 1, 1).waitdone()


@pytest.mark.device
def test_device_self_test_short(nvme0, id_ctrl_buf):
    """A short device self-test runs to completion and logs a successful result.

    Spec: NVMe 2.0 base spec 5.8 Device Self-test, 5.16.1.7 Device Self-test log.

    Steps:
    1. Skip unless Device Self-test is supported (OACS bit 4).
    2. Start a short self-test; the log shows it running or done.
    3. Poll the log until done (at most 2 minutes).
    4. Check the newest result: code 1h, result 0h.
    """
    if not id_ctrl_buf.data(256) & 0x10:
        pytest.skip("Device Self-test not supported (OACS bit 4)")
    log = Buffer(564, "self-test log")
    nvme0.dst(1).waitdone()
    nvme0.getlogpage(6, log, 564).waitdone()
    # Current operation: 1h = a short self-test in progress (or already finished: 0h).
    assert log.data(0) & 0xF in (0, 1)
    deadline = time.time() + 120
    while log.data(0) & 0xF and time.time() < deadline:
        time.sleep(0.1)
        nvme0.getlogpage(6, log, 564).waitdone()
    assert log.data(0) & 0xF == 0, "short self-test still running after 2 minutes"
    # Newest result: self-test code 1h (short) and result 0h (no error).
    assert log.data(4) >> 4 == 1
    assert log.data(4) & 0xF == 0, f"self-test result {log.data(4) & 0xF}"


@pytest.mark.device
def test_device_self_test_abort(nvme0, id_ctrl_buf):
    """An extended self-test aborted by STC Fh logs result 1h (aborted by command).

    Spec: NVMe 2.0 base spec 5.8 Device Self-test (STC Fh).

    Steps:
    1. Skip unless Device Self-test is supported.
    2. Start an extended self-test and abort it.
    3. Check no test runs and the newest result is 21h.
    """
    if not id_ctrl_buf.data(256) & 0x10:
        pytest.skip("Device Self-test not supported (OACS bit 4)")
    log = Buffer(564, "self-test log")
    nvme0.dst(2).waitdone()
    nvme0.dst(0xF).waitdone()
    nvme0.getlogpage(6, log, 564).waitdone()
    assert log.data(0) & 0xF == 0, "self-test still running after abort"
    # Result 1h: aborted by a Device Self-test command.
    assert log.data(4) == 0x21, f"newest result {log.data(4):#x}, expected extended/aborted"


@pytest.mark.device
def test_admin_command_invalid_namespace(nvme0, id_ctrl_buf, buf):
    """An admin command for a namespace id above NN fails with Invalid Namespace or Format.

    Spec: NVMe 2.0 base spec 5.16.1.3 SMART log (NSID), 4.2.3 (00/0B).

    Steps:
    1. Skip if NN leaves no invalid namespace id.
    2. Read the SMART log for NSID NN+1.
    3. Check 00/0B (or 00/02 without per-namespace SMART, LPA bit 0).
    """
    nn = id_ctrl_buf.data(519, 516)
    if nn >= 0xFFFFFFFE:
        pytest.skip("NN leaves no invalid namespace id")
    # SMART log for a namespace id that can not exist. Without per-namespace SMART data
    # (LPA bit 0) a controller may also reject any NSID but 0/FFFFFFFFh as an invalid field.
    expected = "00/0b" if id_ctrl_buf.data(261) & 1 else "00/(0b|02)"
    with pytest.warns(UserWarning, match=f"ERROR status: {expected}"):
        nvme0.getlogpage(2, buf, 512, nsid=nn + 1).waitdone()
