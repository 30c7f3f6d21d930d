"""Get/Set Features (0Ah/09h): select values, invalid values and per-feature behaviour.

Feature id 0 and reserved select values (00/02), the saved value (SEL=10b) and saving a feature
that is not saveable (01/0D), the Number of Queues limits (65535 is invalid), reserved threshold
selects, Interrupt Vector Configuration beyond the vectors, Write Atomicity Normal, Autonomous
Power State Transition, Timestamp, capability bits of every mandatory feature, and current
values reverting to defaults after a controller reset.
"""

import time

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")

MANDATORY = [0x01, 0x02, 0x04, 0x07, 0x08, 0x09, 0x0A, 0x0B]


@pytest.mark.device
def test_get_features_fid_zero(nvme0):
    """Get Features of feature id 00h (reserved) fails with Invalid Field in Command.

    Spec: NVMe 2.0 base spec 5.15 Get Features, 5.27.1 Feature Identifiers (00h reserved).

    Steps:
    1. Send Get Features FID 00h.
    2. Check status 00/02.
    """
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.getfeatures(0).waitdone()


@pytest.mark.device
def test_set_features_fid_zero(nvme0):
    """Set Features of feature id 00h (reserved) fails with Invalid Field in Command.

    Spec: NVMe 2.0 base spec 5.27 Set Features, 5.27.1 Feature Identifiers.

    Steps:
    1. Send Set Features FID 00h with a zero value.
    2. Check status 00/02.
    """
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.setfeatures(0, cdw11=0).waitdone()


@pytest.mark.device
@pytest.mark.parametrize("sel", [4, 5, 6, 7])
def test_get_features_reserved_select(nvme0, oncs, sel):
    """Get Features with a reserved Select value (100b-111b) fails with 00/02.

    Spec: NVMe 2.0 base spec 5.15 Get Features (SEL).

    Steps:
    1. Skip unless the Select field is supported (ONCS bit 4).
    2. Send Get Features Number of Queues with the reserved SEL.
    3. Check status 00/02.
    """
    if not oncs & (1 << 4):
        pytest.skip("Save/Select not supported (ONCS bit 4)")
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.getfeatures(7, sel=sel).waitdone()


@pytest.mark.device
@pytest.mark.parametrize("fid", MANDATORY)
def test_get_features_capabilities_defined_bits(nvme0, oncs, fid):
    """Supported Capabilities (SEL=11b) of each mandatory feature use only bits 2:0.

    Spec: NVMe 2.0 base spec 5.15 Get Features (saveable, namespace specific,
    changeable).

    Steps:
    1. Skip unless the Select field is supported (ONCS bit 4).
    2. Get Features with SEL=11b for the feature (vector 0 for FID 09h).
    3. Check bits 31:3 of dword 0 are zero.
    """
    if not oncs & (1 << 4):
        pytest.skip("Save/Select not supported (ONCS bit 4)")
    cdw0 = nvme0.getfeatures(fid, sel=3).waitdone()
    assert cdw0 & ~0x7 == 0, f"FID {fid:#04x} capabilities {cdw0:#x}: reserved bits set"


@pytest.mark.device
def test_get_features_saved_equals_default_when_not_saveable(nvme0, oncs):
    """For a feature that is not saveable, the saved value (SEL=10b) is the default (SEL=01b).

    Spec: NVMe 2.0 base spec 5.15 Get Features (SEL 10b: "if not saveable, the
    default value is returned").

    Steps:
    1. Skip unless Select is supported (ONCS bit 4).
    2. Read the capabilities of Temperature Threshold; skip if it is saveable.
    3. Check Get Features SEL=10b equals SEL=01b.
    """
    if not oncs & (1 << 4):
        pytest.skip("Save/Select not supported (ONCS bit 4)")
    if nvme0.getfeatures(4, sel=3).waitdone() & 0x1:
        pytest.skip("Temperature Threshold is saveable")
    assert nvme0.getfeatures(4, sel=2).waitdone() == nvme0.getfeatures(4, sel=1).waitdone()


@pytest.mark.device
def test_set_features_save_not_saveable(nvme0, oncs):
    """Saving a feature that is not saveable fails with Feature Identifier Not Saveable (01/0D).

    Spec: NVMe 2.0 base spec 5.27 Set Features (SV bit) status values.

    Steps:
    1. Skip unless Select is supported (ONCS bit 4), so the capabilities can be read.
    2. Skip if Arbitration is saveable (SEL=11b bit 0).
    3. Set Arbitration to its current value with SV=1: status 01/0D.
    """
    if not oncs & (1 << 4):
        pytest.skip("Save/Select not supported (ONCS bit 4)")
    if nvme0.getfeatures(1, sel=3).waitdone() & 0x1:
        pytest.skip("Arbitration is saveable")
    current = nvme0.getfeatures(1).waitdone()
    with pytest.warns(UserWarning, match="ERROR status: 01/0d"):
        nvme0.setfeatures(1, sv=1, cdw11=current).waitdone()


@pytest.mark.device
@pytest.mark.parametrize("cdw11", [0xFFFF0000, 0x0000FFFF, 0xFFFFFFFF])
def test_number_of_queues_65535_invalid(nvme0, cdw11):
    """Requesting 65536 queues (NSQR or NCQR = FFFFh) fails with Invalid Field in Command.

    Spec: NVMe 2.0 base spec 5.27.1.5 Number of Queues ("the value 65535 is invalid").

    Steps:
    1. With no IO queue created, send Set Features FID 07h with the field FFFFh.
    2. Check status 00/02.
    """
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.setfeatures(7, cdw11=cdw11).waitdone()


@pytest.mark.device
def test_temperature_threshold_reserved_thsel(nvme0):
    """Temperature Threshold with THSEL=11b (reserved) fails with Invalid Field in Command.

    Spec: NVMe 2.0 base spec 5.27.1.3 Temperature Threshold (THSEL).

    Steps:
    1. Set Features FID 04h with THSEL 11b and a threshold of 300 K.
    2. Check status 00/02, and the over temperature threshold is unchanged.
    """
    before = nvme0.getfeatures(4).waitdone() & 0xFFFF
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.setfeatures(4, cdw11=(3 << 20) | 300).waitdone()
    assert nvme0.getfeatures(4).waitdone() & 0xFFFF == before


@pytest.mark.device
def test_interrupt_vector_config_invalid_vector(nvme0, pcie):
    """Interrupt Vector Configuration of a vector beyond the MSI-X table fails with 00/02.

    Spec: NVMe 2.0 base spec 5.27.1.7 Interrupt Vector Configuration (IV).

    Steps:
    1. Read the MSI-X table size from the MSI-X capability (Message Control bits 10:0).
    2. Get Features FID 09h for vector = table size.
    3. Check status 00/02.
    """
    cap = pcie.cap_offset(0x11)
    if not cap:
        pytest.skip("no MSI-X capability")
    vectors = (pcie.cfg_word_read(cap + 2) & 0x7FF) + 1
    if vectors > 0xFFFF:
        pytest.skip("every vector number is valid")
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.getfeatures(9, cdw11=vectors).waitdone()


@pytest.mark.device
def test_interrupt_vector_config_admin_vector(nvme0):
    """Interrupt Vector Configuration of vector 0 reports that vector number back.

    Spec: NVMe 2.0 base spec 5.27.1.7 Interrupt Vector Configuration (dword 0 bits 15:0 IV).

    Steps:
    1. Get Features FID 09h for vector 0.
    2. Check dword 0 bits 15:0 are 0 and bits 31:17 are zero.
    """
    cdw0 = nvme0.getfeatures(9, cdw11=0).waitdone()
    assert cdw0 & 0xFFFF == 0
    assert cdw0 >> 17 == 0, f"reserved bits set: {cdw0:#x}"


@pytest.mark.device
def test_write_atomicity_roundtrip(nvme0, oncs):
    """Write Atomicity Normal (FID 0Ah) toggles its Disable Normal bit and restores it.

    Spec: NVM command set spec, Write Atomicity Normal feature (FID 0Ah, DN bit 0).

    Steps:
    1. Read the current value; skip if the feature is not changeable (SEL=11b).
    2. Set DN to the other value, read it back.
    3. Restore the original value and read it back.
    """
    if oncs & (1 << 4) and not nvme0.getfeatures(0x0A, sel=3).waitdone() & 0x4:
        pytest.skip("Write Atomicity Normal is not changeable")
    original = nvme0.getfeatures(0x0A).waitdone() & 1
    try:
        nvme0.setfeatures(0x0A, cdw11=original ^ 1).waitdone()
        assert nvme0.getfeatures(0x0A).waitdone() & 1 == original ^ 1
    finally:
        nvme0.setfeatures(0x0A, cdw11=original).waitdone()
    assert nvme0.getfeatures(0x0A).waitdone() & 1 == original


@pytest.mark.device
def test_autonomous_power_state_transition_roundtrip(nvme0, id_ctrl_buf):
    """APST (FID 0Ch) enables with a table and reads the table back.

    Spec: NVMe 2.0 base spec 5.27.1.9 Autonomous Power State Transition.

    Steps:
    1. Skip unless APSTA (Identify Controller byte 264 bit 0) is set.
    2. Build a table: from each operational state, idle 100 ms then go to the deepest state.
    3. Set APST enabled with the table; Get Features returns APSTE=1 and the same table.
    4. Disable APST again and check APSTE=0.
    """
    if not id_ctrl_buf.data(264) & 1:
        pytest.skip("APST not supported (APSTA)")
    npss = id_ctrl_buf.data(263)
    table = Buffer(256, "apst")
    for ps in range(npss):
        table[8 * ps : 8 * ps + 8] = ((100 << 8) | (npss << 3)).to_bytes(8, "little")
    try:
        nvme0.setfeatures(0x0C, cdw11=1, buf=table).waitdone()
        back = Buffer(256)
        assert nvme0.getfeatures(0x0C, buf=back).waitdone() & 1 == 1
        assert back[0:256] == table[0:256]
    finally:
        nvme0.setfeatures(0x0C, cdw11=0, buf=Buffer(256)).waitdone()
    assert nvme0.getfeatures(0x0C, buf=Buffer(256)).waitdone() & 1 == 0


@pytest.mark.device
def test_timestamp_set_and_advance(nvme0, oncs):
    """A Timestamp set by Set Features advances with time and reports it was set by the host.

    Spec: NVMe 2.0 base spec 5.27.1.11 Timestamp.

    Steps:
    1. Skip unless Timestamp is supported (ONCS bit 6).
    2. Set the timestamp to a known number of milliseconds.
    3. Wait 200 ms and read it: at least 150 ms later, less than 10 s later.
    4. Check the Timestamp Origin field (byte 6 bits 3:1) is 001b.
    """
    if not oncs & (1 << 6):
        pytest.skip("Timestamp not supported (ONCS bit 6)")
    base = 1_700_000_000_000
    b = Buffer(4096, "timestamp")
    b[0:8] = base.to_bytes(8, "little")
    nvme0.setfeatures(0x0E, buf=b).waitdone()
    time.sleep(0.2)
    r = Buffer(4096)
    nvme0.getfeatures(0x0E, buf=r).waitdone()
    now = r.data(5, 0)
    assert base + 150 <= now < base + 10_000, f"timestamp {now - base} ms after it was set"
    assert (r.data(6) >> 1) & 0x7 == 1, "timestamp origin is not 'set by Set Features'"


@pytest.mark.device
def test_features_revert_after_controller_reset(nvme0, oncs):
    """A changed, unsaved feature value reverts to its default after a controller reset.

    Spec: NVMe 2.0 base spec 5.27 Set Features ("current values ... are not persistent across
    Controller Level Reset" unless saved), 3.7.2 Controller Reset.

    Steps:
    1. Read the default over temperature threshold (SEL=01b; skip without Select support).
    2. Set a different threshold (without SV) and read it back.
    3. Reset the controller.
    4. Check the current threshold is the default again.
    """
    if not oncs & (1 << 4):
        pytest.skip("Save/Select not supported (ONCS bit 4)")
    if nvme0.getfeatures(4, sel=3).waitdone() & 0x1:
        pytest.skip("Temperature Threshold is saveable: a saved value would survive the reset")
    default = nvme0.getfeatures(4, sel=1).waitdone() & 0xFFFF
    changed = default - 5
    nvme0.setfeatures(4, cdw11=changed).waitdone()
    try:
        assert nvme0.getfeatures(4).waitdone() & 0xFFFF == changed
        nvme0.reset()
        assert nvme0.getfeatures(4).waitdone() & 0xFFFF == default
    finally:
        # The tests after this one see the default threshold whatever the outcome.
        nvme0.setfeatures(4, cdw11=default).waitdone()


@pytest.mark.device
def test_volatile_write_cache_absent(nvme0, id_ctrl_buf):
    """Without a volatile write cache, enabling it via FID 06h fails with 00/02.

    Spec: NVMe 2.0 base spec 5.27.1.4 Volatile Write Cache ("if a volatile write cache is not
    present, ... abort with Invalid Field in Command").

    Steps:
    1. Skip if VWC (Identify Controller byte 525 bit 0) reports a cache.
    2. Set Features FID 06h with WCE=1.
    3. Check status 00/02.
    """
    if id_ctrl_buf.data(525) & 1:
        pytest.skip("a volatile write cache is present")
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.setfeatures(6, cdw11=1).waitdone()


@pytest.mark.device
def test_keep_alive_timer_roundtrip(nvme0, id_ctrl_buf):
    """Keep Alive Timer (FID 0Fh) takes a timeout in KAS granularity and reads it back.

    Spec: NVMe 2.0 base spec 5.27.1.12 Keep Alive Timer, 5.17.2.1 KAS (100 ms units).

    Steps:
    1. Skip unless KAS (Identify Controller bytes 321:320) is non-zero.
    2. Set KATO to 60 s (a multiple of any KAS up to 6 s) and read it back.
    3. Set it back to the original value (0 disables the timer) and read it back.
    """
    kas = id_ctrl_buf.data(321, 320)
    if not kas or 60000 % (kas * 100):
        pytest.skip("Keep Alive not supported (KAS = 0) or 60 s is not a multiple of KAS")
    original = nvme0.getfeatures(0x0F).waitdone()
    try:
        nvme0.setfeatures(0x0F, cdw11=60000).waitdone()
        assert nvme0.getfeatures(0x0F).waitdone() == 60000
    finally:
        nvme0.setfeatures(0x0F, cdw11=original).waitdone()
    assert nvme0.getfeatures(0x0F).waitdone() == original


@pytest.mark.device
def test_error_recovery_tler_roundtrip(nvme0, nvme0n1, oncs):
    """Error Recovery (FID 05h) takes a Time Limited Error Recovery value and reads it back.

    Spec: NVM command set spec, Error Recovery feature (FID 05h: TLER bits 15:0, in 100 ms).

    Steps:
    1. Skip if the feature is not changeable (SEL=11b, with Select support).
    2. Set TLER to 10 (1 s) for the namespace; read it back.
    3. Restore the original value.
    """
    if oncs & (1 << 4) and not nvme0.getfeatures(5, sel=3, nsid=nvme0n1.nsid).waitdone() & 0x4:
        pytest.skip("Error Recovery is not changeable")
    original = nvme0.getfeatures(5, nsid=nvme0n1.nsid).waitdone()
    try:
        nvme0.setfeatures(5, nsid=nvme0n1.nsid, cdw11=(original & ~0xFFFF) | 10).waitdone()
        assert nvme0.getfeatures(5, nsid=nvme0n1.nsid).waitdone() & 0xFFFF == 10
    finally:
        nvme0.setfeatures(5, nsid=nvme0n1.nsid, cdw11=original).waitdone()


@pytest.mark.device
def test_host_controlled_thermal_management(nvme0, id_ctrl_buf):
    """HCTM (FID 10h) accepts TMT1 < TMT2 within MNTMT..MXTMT and refuses TMT1 > TMT2.

    Spec: NVMe 2.0 base spec 5.27.1.13 Host Controlled Thermal Management, 8.15.5;
    5.17.2.1 HCTMA, MNTMT, MXTMT.

    Steps:
    1. Skip unless HCTMA bit 0 is set (Identify Controller bytes 323:322).
    2. Set TMT1 = MNTMT and TMT2 = MXTMT; Get Features returns them.
    3. Set TMT1 = MXTMT and TMT2 = MNTMT: status 00/02.
    4. Restore 0 (disabled).
    """
    if not id_ctrl_buf.data(323, 322) & 1:
        pytest.skip("Host Controlled Thermal Management not supported (HCTMA)")
    mntmt, mxtmt = id_ctrl_buf.data(325, 324), id_ctrl_buf.data(327, 326)
    if not mntmt or mntmt >= mxtmt:
        pytest.skip(f"MNTMT {mntmt} K and MXTMT {mxtmt} K leave no range")
    try:
        nvme0.setfeatures(0x10, cdw11=mntmt << 16 | mxtmt).waitdone()
        assert nvme0.getfeatures(0x10).waitdone() == mntmt << 16 | mxtmt
        with pytest.warns(UserWarning, match="ERROR status: 00/02"):
            nvme0.setfeatures(0x10, cdw11=mxtmt << 16 | mntmt).waitdone()
    finally:
        nvme0.setfeatures(0x10, cdw11=0).waitdone()
