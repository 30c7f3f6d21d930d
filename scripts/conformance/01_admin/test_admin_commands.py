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
    # C0h-FFh are vendor specific; 7Fh is reserved for admin commands in all revisions.
    with pytest.warns(UserWarning, match="ERROR status: 00/01"):
        nvme0.send_cmd(0x7F).waitdone()


@pytest.mark.device
def test_abort_command_not_outstanding(nvme0):
    nvme0.getfeatures(7).waitdone()
    cid = nvme0.latest_cid
    cdw0 = nvme0.abort(cid, sqid=0).waitdone()
    assert cdw0 & 1 == 1, f"Abort of completed cid {cid} reports it aborted: {cdw0:#x}"


@pytest.mark.device
def test_abort_io_command_not_outstanding(nvme0, nvme0n1, qpair, buf):
    nvme0n1.read(qpair, buf, 0).waitdone()
    cdw0 = nvme0.abort(qpair.latest_cid, sqid=qpair.sqid).waitdone()
    assert cdw0 & 1 == 1


@pytest.mark.device
def test_aer_limit_exceeded(nvme0, id_ctrl_buf):
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
    if not id_ctrl_buf.data(256) & 0x2:
        pytest.skip("Format NVM not supported (OACS bit 1)")
    nlbaf = id_ns_buf.data(25)
    if nlbaf >= 15:
        pytest.skip("all 16 LBA formats exist")
    with pytest.warns(UserWarning, match="ERROR status: 01/0a"):
        nvme0.format(nlbaf + 1, nsid=nvme0n1.nsid).waitdone()


@pytest.mark.device
def test_firmware_commit_invalid_slot(nvme0, id_ctrl_buf):
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
    nn = id_ctrl_buf.data(519, 516)
    if nn >= 0xFFFFFFFE:
        pytest.skip("NN leaves no invalid namespace id")
    # SMART log for a namespace id that can not exist. Without per-namespace SMART data
    # (LPA bit 0) a controller may also reject any NSID but 0/FFFFFFFFh as an invalid field.
    expected = "00/0b" if id_ctrl_buf.data(261) & 1 else "00/(0b|02)"
    with pytest.warns(UserWarning, match=f"ERROR status: {expected}"):
        nvme0.getlogpage(2, buf, 512, nsid=nn + 1).waitdone()
