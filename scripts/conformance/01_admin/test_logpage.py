"""Get Log Page (02h): sizes and contents of the mandatory log pages.

Error Information (01h: entries of 64 bytes, ELPE+1 of them), SMART / Health Information (02h:
512 bytes, a plausible composite temperature, host read/write command and data unit counters
that increase after IO), Firmware Slot Information (03h: the active slot holds a revision),
Commands Supported and Effects (05h, when LPA says so), the Log Page Offset (when LPA bit 2 says
so) and an unsupported log page id (01/09).
"""

import pytest

from nvme import *


def smart(nvme0):
    b = Buffer(512, "smart")
    nvme0.getlogpage(2, b, 512).waitdone()
    return b


@pytest.mark.device
def test_error_log_entries(nvme0, id_ctrl_buf):
    """The Error Information log lists entries newest first.

    Spec: NVMe 2.0 base spec 5.16.1.2 Error Information.

    Steps:
    1. Read ELPE+1 entries.
    2. Check the non-zero error counts decrease.
    """
    entries = id_ctrl_buf.data(262) + 1
    b = Buffer(64 * entries, "error log")
    nvme0.getlogpage(1, b, 64 * entries).waitdone()
    counts = [b.data(64 * i + 7, 64 * i) for i in range(entries)]
    # Entries are reported newest first: error counts decrease (0 marks an unused entry).
    used = [c for c in counts if c]
    assert used == sorted(used, reverse=True), f"error counts not newest first: {used}"


@pytest.mark.device
def test_smart_log_temperature(nvme0):
    """The SMART log reports a plausible composite temperature and spare values.

    Spec: NVMe 2.0 base spec 5.16.1.3 SMART / Health Information.

    Steps:
    1. Read the SMART log.
    2. Check 273-373 K, Available Spare <= 100%.
    """
    b = smart(nvme0)
    kelvin = b.data(2, 1)
    assert 273 <= kelvin <= 373, f"composite temperature {kelvin} K is implausible"
    spare, threshold = b.data(3), b.data(4)
    assert spare <= 100, "available spare above 100%"
    assert threshold <= 100, "available spare threshold above 100%"
    if spare < threshold:
        assert b.data(0) & 1, "spare below its threshold, but Critical Warning bit 0 is clear"


@pytest.mark.device
def test_smart_log_counters_increase_after_io(nvme0, nvme0n1, qpair):
    """Data units and host command counters grow after 1 MiB written and read.

    Spec: NVMe 2.0 base spec 5.16.1.3 SMART / Health Information (bytes 32-95).

    Steps:
    1. Read the SMART log.
    2. Write then read 1 MiB in MDTS-sized commands.
    3. Check each counter grew by at least its expected amount.
    """
    before = smart(nvme0)
    # 1 MiB in each direction: more than the 512,000 bytes of one data unit.
    chunk = min(nvme0.mdts, 128 * 1024)
    n = chunk // nvme0n1.sector_size
    data = Buffer(chunk, ptype=32, pvalue=0x5A5A5A5A)
    count = (1 << 20) // chunk
    for i in range(count):
        nvme0n1.write(qpair, data, i * n, n).waitdone()
    for i in range(count):
        nvme0n1.read(qpair, data, i * n, n).waitdone()
    after = smart(nvme0)
    fields = {
        "Data Units Read": (47, 32, 1),
        "Data Units Written": (63, 48, 1),
        "Host Read Commands": (79, 64, count),
        "Host Write Commands": (95, 80, count),
    }
    for name, (end, begin, least) in fields.items():
        grown = after.data(end, begin) - before.data(end, begin)
        assert grown >= least, f"{name} grew by {grown} after {count} commands of {chunk} bytes"


@pytest.mark.device
def test_smart_log_power_on_counters(nvme0):
    """Power Cycles is at least 1 on a powered controller.

    Spec: NVMe 2.0 base spec 5.16.1.3 SMART / Health Information (Power Cycles).

    Steps:
    1. Read the SMART log.
    2. Check Power Cycles >= 1.
    """
    b = smart(nvme0)
    assert b.data(127, 112) >= 1, "Power Cycles is 0 on a powered controller"


@pytest.mark.device
def test_firmware_slot_log(nvme0, id_ctrl_buf):
    """The active firmware slot is within NOFS and holds the revision Identify reports.

    Spec: NVMe 2.0 base spec 5.16.1.4 Firmware Slot Information.

    Steps:
    1. Read log 03h.
    2. Check AFI names a slot 1..NOFS.
    3. Check its revision equals Identify Controller FR.
    """
    b = Buffer(512, "fw slot")
    nvme0.getlogpage(3, b, 512).waitdone()
    afi = b.data(0)
    active = afi & 0x7
    nofs = (id_ctrl_buf.data(260) >> 1) & 0x7
    assert 1 <= active <= nofs, f"AFI active slot {active}, NOFS {nofs}"
    frs = b[8 * active : 8 * active + 8]
    assert frs == id_ctrl_buf[64:72], f"active slot revision {frs!r} differs from Identify FR"


@pytest.mark.device
def test_commands_supported_and_effects(nvme0, id_ctrl_buf):
    """The effects log lists the mandatory admin and IO commands; Write changes content.

    Spec: NVMe 2.0 base spec 5.16.1.6 Commands Supported and Effects.

    Steps:
    1. Skip unless LPA bit 1.
    2. Check CSUPP of the mandatory admin and IO opcodes.
    3. Check LBCC of Write.
    """
    if not id_ctrl_buf.data(261) & 0x2:
        pytest.skip("Commands Supported and Effects log not supported (LPA bit 1)")
    b = Buffer(4096, "effects")
    nvme0.getlogpage(5, b, 4096).waitdone()

    def csupp(offset):
        return b.data(offset + 3, offset) & 1

    for opcode in (0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0A, 0x0C):
        assert csupp(4 * opcode), f"mandatory admin opcode {opcode:#04x} not listed"
    for opcode in (0x00, 0x01, 0x02):
        assert csupp(1024 + 4 * opcode), f"mandatory IO opcode {opcode:#04x} not listed"
    # Write changes the media content: LBCC (bit 1) set for IO Write.
    assert b.data(1024 + 4 * 0x01) & 0x2, "Write does not report Logical Block Content Change"


@pytest.mark.device
def test_log_page_offset(nvme0, id_ctrl_buf):
    """A Get Log Page at an offset returns the same bytes as a whole read.

    Spec: NVMe 2.0 base spec 5.16 Get Log Page (LPOL/LPOU).

    Steps:
    1. Skip unless offsets are supported (LPA bit 2).
    2. Read the firmware slot log whole and from offset 256.
    3. Compare.
    """
    if not id_ctrl_buf.data(261) & 0x4:
        pytest.skip("extended data / log page offset not supported (LPA bit 2)")
    whole = Buffer(512)
    nvme0.getlogpage(3, whole, 512).waitdone()
    part = Buffer(256)
    nvme0.getlogpage(3, part, 256, offset=256).waitdone()
    assert part[0:256] == whole[256:512]


@pytest.mark.device
def test_unsupported_log_page(nvme0, buf):
    """A reserved log page id fails with Invalid Log Page.

    Spec: NVMe 2.0 base spec 5.16 Get Log Page (01/09).

    Steps:
    1. Read LID 7Fh.
    2. Check status 01/09.
    """
    # 7Fh is reserved in every revision of the base specification.
    with pytest.warns(UserWarning, match="ERROR status: 01/09"):
        nvme0.getlogpage(0x7F, buf, 512).waitdone()
