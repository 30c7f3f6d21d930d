"""Get Log Page (02h): sizes, offsets, counters and optional pages.

Partial and oversized reads of the SMART log, Log Page Offset beyond the page and not dword
aligned (00/02), the error log after a failing command, SMART host command and data unit
counters counted exactly, power cycles and unsafe shutdowns, the per-namespace SMART log, the
firmware slot log with NSID, the self-test log, sanitize status and changed namespace logs.
"""

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")


def smart(nvme0, nsid=0xFFFFFFFF):
    b = Buffer(512, "smart")
    nvme0.getlogpage(2, b, 512, nsid=nsid).waitdone()
    return b


def error_count(nvme0):
    b = Buffer(64, "error log entry")
    nvme0.getlogpage(1, b, 64).waitdone()
    return b.data(7, 0)


@pytest.mark.device
def test_smart_log_partial_read(nvme0):
    """A Get Log Page of fewer dwords than the page returns the start of the page.

    Spec: NVMe 2.0 base spec 5.16 Get Log Page (NUMDL/NUMDU), 5.16.1.3 SMART / Health.

    Steps:
    1. Read the whole SMART log (512 bytes).
    2. Read only its first 4 bytes (NUMD = 0).
    3. Check the critical warning and temperature bytes agree.
    """
    whole = smart(nvme0)
    part = Buffer(4)
    nvme0.getlogpage(2, part, 4).waitdone()
    assert part[0:3] == whole[0:3]


@pytest.mark.device
def test_log_page_read_beyond_size(nvme0):
    """Reading more than the log page holds succeeds; the page comes first.

    Spec: NVMe 2.0 base spec 5.16 Get Log Page (transfer longer than the log page).

    Steps:
    1. Read the firmware slot log (512 bytes) with a 4096-byte transfer.
    2. Check the first 512 bytes equal a 512-byte read of the same page.
    """
    whole = Buffer(512)
    nvme0.getlogpage(3, whole, 512).waitdone()
    big = Buffer(4096)
    nvme0.getlogpage(3, big, 4096).waitdone()
    assert big[0:512] == whole[0:512]


@pytest.mark.device
def test_log_page_offset_beyond_size(nvme0, lpa):
    """A Log Page Offset beyond the end of the page fails with Invalid Field in Command.

    Spec: NVMe 2.0 base spec 5.16 Get Log Page (LPOL/LPOU: "greater than the size of the log
    page ... abort with Invalid Field in Command").

    Steps:
    1. Skip unless offsets are supported (LPA bit 2).
    2. Read the SMART log at offset 4096 (the page has 512 bytes).
    3. Check status 00/02.
    """
    if not lpa & 0x4:
        pytest.skip("Log Page Offset not supported (LPA bit 2)")
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.getlogpage(2, Buffer(512), 512, offset=4096).waitdone()


@pytest.mark.device
def test_log_page_offset_not_dword_aligned(nvme0, lpa):
    """A Log Page Offset that is not a multiple of 4 fails with Invalid Field in Command.

    Spec: NVMe 2.0 base spec 5.16 Get Log Page (LPOL bits 1:0 for offsets in bytes).

    Steps:
    1. Skip unless offsets are supported (LPA bit 2).
    2. Read the firmware slot log at offset 2.
    3. Check status 00/02.
    """
    if not lpa & 0x4:
        pytest.skip("Log Page Offset not supported (LPA bit 2)")
    # Raw command: LID 03h, NUMD 63 (256 bytes), LPOL 2.
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.send_cmd(0x02, Buffer(512), nsid=0xFFFFFFFF, cdw10=63 << 16 | 3, cdw12=2).waitdone()


def failing_read(nvme0n1, qpair, buf, nsze):
    """Reads one LBA beyond the namespace (00/80); returns the completion's More bit."""
    more = []
    with pytest.warns(UserWarning, match="ERROR status: 00/80"):
        nvme0n1.read(qpair, buf, nsze, cb=lambda cqe: more.append(cqe.m)).waitdone()
    return more[0]


@pytest.mark.device
def test_error_log_after_failing_command(nvme0, nvme0n1, qpair, buf, nsze):
    """A failing IO command with More set has an Error Information entry naming it.

    Spec: NVMe 2.0 base spec 4.2.3.1 Status Field (M: "there is more status information for
    this command as part of the Error Information log"), 5.16.1.2 Error Information (extended
    error information is provided when M is set). With M cleared the controller need not log.

    Steps:
    1. Read the error count of the newest entry.
    2. Read one LBA beyond the namespace: status 00/80.
    3. If the log has no new entry: check the completion's More bit was clear, and skip.
    4. Check the newest entry's count grew, its SQID and CID are the read's, and its status
       field (bits 15:1 of bytes 13:12) is 00/80.
    """
    before = error_count(nvme0)
    more = failing_read(nvme0n1, qpair, buf, nsze)
    cid = qpair.latest_cid
    b = Buffer(64)
    nvme0.getlogpage(1, b, 64).waitdone()
    if b.data(7, 0) == before:
        assert not more, "More set in the completion, but no new Error Information entry"
        pytest.skip("the controller logs no Error Information entry for it (More bit clear)")
    assert b.data(7, 0) > before
    assert b.data(9, 8) == qpair.sqid
    assert b.data(11, 10) == cid
    status = b.data(13, 12) >> 1
    assert (status >> 8 & 0x7, status & 0xFF) == (0, 0x80), f"status field {status:#x}"


@pytest.mark.device
def test_error_log_counts_each_error(nvme0, nvme0n1, qpair, buf, nsze):
    """Three failing commands that the controller logs raise the error count by exactly three.

    Spec: NVMe 2.0 base spec 5.16.1.2 Error Information (Error Count: incremented for each
    unique error log entry; entries are provided for completions with More set).

    Steps:
    1. Read the error count of the newest entry.
    2. Send three reads beyond the namespace, each failing with 00/80.
    3. Skip if none was logged and none had More set; else check the newest entry's error
       count grew by 3.
    """
    before = error_count(nvme0)
    more = [failing_read(nvme0n1, qpair, buf, nsze) for _ in range(3)]
    after = error_count(nvme0)
    if after == before and not any(more):
        pytest.skip("the controller logs no Error Information entry for them (More bit clear)")
    assert after == before + 3


@pytest.mark.device
def test_smart_host_command_counters_exact(nvme0, nvme0n1, qpair, buf):
    """Host Read and Host Write Commands grow by exactly the commands sent.

    Spec: NVMe 2.0 base spec 5.16.1.3 SMART / Health Information (bytes 79:64, 95:80).

    Steps:
    1. Read both counters.
    2. Send 17 reads and 9 writes of one LBA.
    3. Check the counters grew by 17 and 9.
    """
    before = smart(nvme0)
    for i in range(9):
        nvme0n1.write(qpair, buf, 1000 + i).waitdone()
    for i in range(17):
        nvme0n1.read(qpair, buf, 1000 + i % 9).waitdone()
    after = smart(nvme0)
    assert after.data(79, 64) - before.data(79, 64) == 17
    assert after.data(95, 80) - before.data(95, 80) == 9


@pytest.mark.device
def test_smart_data_units_read(nvme0, nvme0n1, qpair):
    """Reading 1000 units of 512 bytes raises Data Units Read by one (or two, rounding up).

    Spec: NVMe 2.0 base spec 5.16.1.3 SMART / Health Information, Data Units Read (bytes
    47:32: thousands of 512-byte units, rounded up).

    Steps:
    1. Read Data Units Read.
    2. Read 512,000 bytes: 125 reads of 4 KiB.
    3. Check the counter grew by 1 or 2.
    """
    if 4096 % nvme0n1.sector_size:
        pytest.skip("logical block larger than 4 KiB")
    n = 4096 // nvme0n1.sector_size
    b = Buffer(4096)
    before = smart(nvme0).data(47, 32)
    for i in range(125):
        nvme0n1.read(qpair, b, i * n, n).waitdone()
    delta = smart(nvme0).data(47, 32) - before
    assert delta in (1, 2), f"Data Units Read grew by {delta} for 1000 units"


@pytest.mark.device
def test_smart_data_units_written(nvme0, nvme0n1, qpair):
    """Writing 1000 units of 512 bytes raises Data Units Written by one (or two).

    Spec: NVMe 2.0 base spec 5.16.1.3 SMART / Health Information, Data Units Written (bytes
    63:48).

    Steps:
    1. Read Data Units Written.
    2. Write 512,000 bytes: 125 writes of 4 KiB.
    3. Check the counter grew by 1 or 2.
    """
    if 4096 % nvme0n1.sector_size:
        pytest.skip("logical block larger than 4 KiB")
    n = 4096 // nvme0n1.sector_size
    b = Buffer(4096, ptype=32, pvalue=0x5A5A0001)
    before = smart(nvme0).data(63, 48)
    for i in range(125):
        nvme0n1.write(qpair, b, 20000 + i * n, n).waitdone()
    delta = smart(nvme0).data(63, 48) - before
    assert delta in (1, 2), f"Data Units Written grew by {delta} for 1000 units"


@pytest.mark.device
def test_smart_power_cycles_increment(nvme0, subsystem):
    """A power cycle raises Power Cycles by one.

    Spec: NVMe 2.0 base spec 5.16.1.3 SMART / Health Information, Power Cycles (bytes 127:112).

    Steps:
    1. Read Power Cycles.
    2. Shutdown notification, power cycle the subsystem, reinitialise the controller.
    3. Check Power Cycles grew by exactly one.
    """
    before = smart(nvme0).data(127, 112)
    subsystem.shutdown_notify()
    subsystem.power_cycle(3)
    nvme0.reset()
    assert smart(nvme0).data(127, 112) == before + 1


@pytest.mark.device
def test_smart_unsafe_shutdowns_increment(nvme0, subsystem):
    """Power lost without a shutdown notification raises Unsafe Shutdowns by one.

    Spec: NVMe 2.0 base spec 5.16.1.3 SMART / Health Information, Unsafe Shutdowns (bytes
    159:144).

    Steps:
    1. Read Unsafe Shutdowns.
    2. Power cycle the subsystem without a shutdown notification; reinitialise.
    3. Check Unsafe Shutdowns grew by exactly one.
    """
    before = smart(nvme0).data(159, 144)
    subsystem.power_cycle(3)
    nvme0.reset()
    assert smart(nvme0).data(159, 144) == before + 1


@pytest.mark.device
def test_smart_log_namespace(nvme0, nvme0n1, lpa, error_statuses):
    """SMART log for one namespace: per-namespace data when LPA bit 0, else 00/02 or the global.

    Spec: NVMe 2.0 base spec 5.16.1.3 SMART / Health Information (NSID, LPA bit 0).

    Steps:
    1. Read the SMART log with the namespace's NSID.
    2. With per-namespace SMART (LPA bit 0): check success.
    3. Without: check success (the global data) or Invalid Field in Command.
    """
    b = Buffer(512)
    got = error_statuses(lambda: nvme0.getlogpage(2, b, 512, nsid=nvme0n1.nsid).waitdone())
    if lpa & 0x1:
        assert got == []
    else:
        assert got in ([], ["00/02"]), got
    if not got:
        assert b.data(2, 1) == 0 or b.data(2, 1) > 200, "implausible composite temperature"


@pytest.mark.device
@pytest.mark.parametrize("nsid", [0, 0xFFFFFFFF])
def test_firmware_slot_log_nsid(nvme0, nsid):
    """The firmware slot log reads with NSID 0h or FFFFFFFFh; its AFI names a filled slot.

    Spec: NVMe 2.0 base spec 5.16.1.4 Firmware Slot Information (global log page).

    Steps:
    1. Read log 03h with the NSID.
    2. Check AFI bits 2:0 name a slot 1-7 whose revision (8 bytes at 8 * slot) is not empty.
    """
    b = Buffer(512)
    nvme0.getlogpage(3, b, 512, nsid=nsid).waitdone()
    slot = b.data(0) & 0x7
    assert 1 <= slot <= 7
    assert b[8 * slot : 8 * slot + 8].strip(b"\0 "), f"active slot {slot} has no revision"


@pytest.mark.device
def test_self_test_log_layout(nvme0, oacs):
    """The Device Self-test log is 564 bytes: status, then 20 result entries of 28 bytes.

    Spec: NVMe 2.0 base spec 5.16.1.7 Device Self-test.

    Steps:
    1. Skip unless Device Self-test is supported (OACS bit 4).
    2. Read log 06h.
    3. Check the current operation is 0h, 1h, 2h or Eh and completion is at most 100%.
    4. Check every used entry has a result 0h-9h and a code 1h, 2h or Eh (Fh: unused).
    """
    if not oacs & 0x10:
        pytest.skip("Device Self-test not supported (OACS bit 4)")
    b = Buffer(564)
    nvme0.getlogpage(6, b, 564).waitdone()
    assert b.data(0) & 0xF in (0, 1, 2, 0xE)
    assert b.data(1) & 0x7F <= 100
    for i in range(20):
        status = b.data(4 + 28 * i)
        if status & 0xF == 0xF:
            continue
        assert status & 0xF <= 9, f"entry {i}: result {status & 0xF}"
        assert status >> 4 in (1, 2, 0xE), f"entry {i}: self-test code {status >> 4}"


@pytest.mark.device
def test_sanitize_status_log(nvme0, id_ctrl_buf):
    """The Sanitize Status log reads and its SSTAT names a defined status.

    Spec: NVMe 2.0 base spec 5.16.1 Sanitize Status log (LID 81h).

    Steps:
    1. Skip unless a sanitize operation is supported (SANICAP bits 2:0).
    2. Read log 81h (512 bytes).
    3. Check SSTAT bits 2:0 are 0h-4h and SPROG is FFFFh unless a sanitize is in progress.
    """
    if not id_ctrl_buf.data(331, 328) & 0x7:
        pytest.skip("Sanitize not supported (SANICAP)")
    b = Buffer(512)
    nvme0.getlogpage(0x81, b, 512).waitdone()
    sstat = b.data(3, 2) & 0x7
    assert sstat <= 4, f"SSTAT {sstat}"
    if sstat != 2:
        assert b.data(1, 0) == 0xFFFF, f"SPROG {b.data(1, 0):#x} without a sanitize running"


@pytest.mark.device
def test_changed_namespace_list_log(nvme0, id_ctrl_buf):
    """The Changed Namespace List log reads as 1024 namespace ids within NN (or FFFFFFFFh).

    Spec: NVMe 2.0 base spec 5.16.1.5 Changed Namespace List.

    Steps:
    1. Skip unless Namespace Attribute Notices are supported (OAES bit 8).
    2. Read log 04h (4096 bytes).
    3. Check the ids are 0 (unused), FFFFFFFFh (too many changes) or within NN.
    """
    if not id_ctrl_buf.data(95, 92) & (1 << 8):
        pytest.skip("Namespace Attribute Notices not supported (OAES bit 8)")
    nn = id_ctrl_buf.data(519, 516)
    b = Buffer(4096)
    nvme0.getlogpage(4, b, 4096).waitdone()
    for i in range(1024):
        v = b.data(4 * i + 3, 4 * i)
        assert v in {0, 0xFFFFFFFF} or v <= nn, f"entry {i}: {v:#x}"


@pytest.mark.device
def test_supported_log_pages(nvme0, error_statuses):
    """Supported Log Pages (LID 00h) lists the mandatory pages, and each listed page reads.

    Spec: NVMe 2.0 base spec 5.16.1.1 Supported Log Pages (LSUPP bit 0 of each LID's dword).

    Steps:
    1. Read LID 00h (1024 bytes); skip if it is not supported (before NVMe 2.0).
    2. Check LIDs 00h, 01h, 02h and 03h are listed.
    3. Read 512 bytes of every listed page among 01h-0Fh and 80h-BFh: each succeeds.
    """
    b = Buffer(1024)
    if error_statuses(lambda: nvme0.getlogpage(0, b, 1024).waitdone()):
        pytest.skip("Supported Log Pages (LID 00h) not supported")
    listed = [lid for lid in range(256) if b.data(4 * lid + 3, 4 * lid) & 1]
    for lid in (0x00, 0x01, 0x02, 0x03):
        assert lid in listed, f"mandatory log page {lid:#04x} not listed"
    page = Buffer(512)
    for lid in listed:
        if 0x01 <= lid <= 0x0F or 0x80 <= lid <= 0xBF:
            nvme0.getlogpage(lid, page, 512).waitdone()


@pytest.mark.device
def test_telemetry_host_initiated_header(nvme0, lpa):
    """The host-initiated telemetry log (07h) has a valid header when LPA bit 3 says so.

    Spec: NVMe 2.0 base spec 5.16.1.8 Telemetry Host-Initiated (Create Telemetry Host-Initiated
    Data, LSP bit 0) header.

    Steps:
    1. Skip unless telemetry is supported (LPA bit 3).
    2. Read the first 512 bytes of log 07h with LSP bit 0 = 1 (create new data).
    3. Check byte 0 is 07h and data area last blocks 1 <= 2 <= 3 do not decrease.
    """
    if not lpa & 0x8:
        pytest.skip("telemetry not supported (LPA bit 3)")
    b = Buffer(512)
    nvme0.getlogpage(0x07, b, 512, log_specific_id=1).waitdone()
    assert b.data(0) == 0x07
    da1, da2, da3 = b.data(9, 8), b.data(11, 10), b.data(13, 12)
    assert da1 <= da2 <= da3, f"data area last blocks {da1}, {da2}, {da3}"
