"""Get/Set Features (0Ah/09h): round trips of the mandatory and common features.

Each test reads the current value, sets a different one, reads it back, and restores the
original. Covered: Number of Queues (07h, including Command Sequence Error once IO queues exist
and the rule that the allocation does not change between resets), Arbitration (01h), Temperature
Threshold (04h), Volatile Write Cache (06h, when VWC is present), Interrupt Coalescing (08h),
Asynchronous Event Configuration (0Bh), Power Management (02h), the Supported Capabilities select
(SEL=3) and a reserved feature id (00/02).
"""

import pytest

from nvme import *

ON_SIMULATOR = "not config.getoption('pciaddr') or config.getoption('pciaddr').startswith('sim')"


def roundtrip(nvme0, fid, value, mask=0xFFFFFFFF, cdw11_get=0):
    """Set `value`, return what Get Features reads back (masked), then restore the original."""
    original = nvme0.getfeatures(fid, cdw11=cdw11_get).waitdone()
    try:
        nvme0.setfeatures(fid, cdw11=value).waitdone()
        return nvme0.getfeatures(fid, cdw11=cdw11_get).waitdone() & mask
    finally:
        nvme0.setfeatures(fid, cdw11=original | cdw11_get).waitdone()


@pytest.mark.device
def test_number_of_queues_allocated(nvme0):
    """Number of Queues reports 1..65535 queues of each kind; the highest id can be created.

    Spec: NVMe 2.0 base spec 5.27.1.5 Number of Queues (NSQA, NCQA).

    Steps:
    1. Get Features FID 07h.
    2. Check NSQA and NCQA are 1..65535.
    3. Create a qpair with the highest id both allow.
    """
    cdw0 = nvme0.getfeatures(7).waitdone()
    nsqa, ncqa = (cdw0 & 0xFFFF) + 1, (cdw0 >> 16) + 1
    assert 1 <= nsqa <= 65535 and 1 <= ncqa <= 65535
    # Every allocated queue can be created: the highest id is valid.
    q = Qpair(nvme0, 2, sqid=min(nsqa, ncqa))
    assert q.sqid == min(nsqa, ncqa)
    q.delete()


@pytest.mark.device
def test_number_of_queues_unchanged_between_resets(nvme0):
    """A second Number of Queues request before a reset returns the allocation made already.

    Spec: NVMe 2.0 base spec 5.27.1.5 Number of Queues ("shall not change between resets").

    Steps:
    1. Read the allocation.
    2. Set Features FID 07h asking for one queue of each kind.
    3. Check dword 0 and a new Get Features still report the first allocation.
    """
    before = nvme0.getfeatures(7).waitdone()
    # No IO queue exists yet: the command is allowed, but the allocation stays what it was.
    cdw0 = nvme0.setfeatures(7, cdw11=0x00010001).waitdone()
    assert cdw0 == before, f"allocation changed from {before:#x} to {cdw0:#x} without a reset"
    assert nvme0.getfeatures(7).waitdone() == before


@pytest.mark.device
def test_number_of_queues_after_io_queue_creation(nvme0, qpair):
    """Set Features Number of Queues after an IO queue exists fails with Command Sequence Error.

    Spec: NVMe 2.0 base spec 5.27.1.5 Number of Queues (00/0C).

    Steps:
    1. Create a qpair (fixture).
    2. Set Features FID 07h.
    3. Check status 00/0C.
    """
    with pytest.warns(UserWarning, match="ERROR status: 00/0c"):
        nvme0.setfeatures(7, cdw11=0x00010001).waitdone()


@pytest.mark.device
def test_arbitration_roundtrip(nvme0, require_changeable):
    """Arbitration (FID 01h) takes a new burst and weights and reads them back.

    Spec: NVMe 2.0 base spec 5.27.1.1 Arbitration.

    Steps:
    1. Skip if the feature is not changeable (SEL=11b).
    2. Set a new value, read it back, restore the original.
    """
    require_changeable(1)
    original = nvme0.getfeatures(1).waitdone()
    burst = 3 if original & 0x7 != 3 else 2
    value = (original & ~0x7) | burst
    assert roundtrip(nvme0, 1, value, mask=0x7) == burst


@pytest.mark.device
def test_temperature_threshold_roundtrip(nvme0):
    """The over temperature threshold (FID 04h) reads back what was set.

    Spec: NVMe 2.0 base spec 5.27.1.3 Temperature Threshold.

    Steps:
    1. Set 350 K for the composite sensor.
    2. Read it back; restore the original.
    """
    # Over temperature threshold of the composite sensor (TMPSEL 0, THSEL 0), kelvin.
    assert roundtrip(nvme0, 4, 350, mask=0xFFFF) == 350


@pytest.mark.device
def test_temperature_threshold_under(nvme0):
    """The under temperature threshold (THSEL 01b) reads back what was set.

    Spec: NVMe 2.0 base spec 5.27.1.3 Temperature Threshold (THSEL).

    Steps:
    1. Set 250 K with THSEL 01b.
    2. Read it back with THSEL 01b; restore the original.
    """
    # THSEL 01b: under temperature threshold.
    sel = 1 << 20
    original = nvme0.getfeatures(4, cdw11=sel).waitdone()
    try:
        nvme0.setfeatures(4, cdw11=sel | 250).waitdone()
        assert nvme0.getfeatures(4, cdw11=sel).waitdone() & 0xFFFF == 250
    finally:
        nvme0.setfeatures(4, cdw11=sel | (original & 0xFFFF)).waitdone()


@pytest.mark.device
def test_volatile_write_cache_roundtrip(nvme0, id_ctrl_buf):
    """The volatile write cache can be disabled and enabled (FID 06h).

    Spec: NVMe 2.0 base spec 5.27.1.4 Volatile Write Cache.

    Steps:
    1. Skip unless VWC bit 0 reports a cache.
    2. Set WCE 0 then 1, reading each back.
    3. Restore the original.
    """
    if not id_ctrl_buf.data(525) & 1:
        pytest.skip("no volatile write cache (VWC bit 0 is 0)")
    original = nvme0.getfeatures(6).waitdone() & 1
    try:
        for wce in (0, 1):
            nvme0.setfeatures(6, cdw11=wce).waitdone()
            assert nvme0.getfeatures(6).waitdone() & 1 == wce
    finally:
        nvme0.setfeatures(6, cdw11=original).waitdone()


@pytest.mark.device
def test_interrupt_coalescing_roundtrip(nvme0, require_changeable):
    """Interrupt Coalescing (FID 08h) takes a time and threshold and reads them back.

    Spec: NVMe 2.0 base spec 5.27.1.6 Interrupt Coalescing.

    Steps:
    1. Skip if the feature is not changeable.
    2. Set TIME 2, THR 7; read back; restore.
    """
    require_changeable(8)
    # TIME 2 (200 us), THR 7 (8 entries)
    assert roundtrip(nvme0, 8, 0x0207, mask=0xFFFF) == 0x0207


@pytest.mark.device
def test_async_event_config_roundtrip(nvme0, id_ctrl_buf):
    """Asynchronous Event Configuration (FID 0Bh) takes the SMART bits and supported notices.

    Spec: NVMe 2.0 base spec 5.27.1.8 Asynchronous Event Configuration, 5.17.2.1 OAES.

    Steps:
    1. Build a value of SMART bits 4:0 and the notices OAES reports.
    2. Set it, read it back, restore.
    """
    oaes = id_ctrl_buf.data(95, 92)
    # SMART / health critical warnings bits 7:0 are always defined; add the notices the
    # controller says it supports (namespace attribute, firmware activation).
    value = 0x1F | (oaes & (0x3 << 8))
    assert roundtrip(nvme0, 0x0B, value, mask=0x1F | (0x3 << 8)) == value


@pytest.mark.device
def test_power_management_roundtrip(nvme0, id_ctrl_buf, require_changeable):
    """Power Management (FID 02h) enters PS0 and the last operational state and reads them back.

    Spec: NVMe 2.0 base spec 5.27.1.2 Power Management.

    Steps:
    1. Skip if the feature is not changeable.
    2. For PS0 and NPSS (when operational): set it and read it back.
    3. Restore the original state.
    """
    require_changeable(2)
    npss = id_ctrl_buf.data(263)
    original = nvme0.getfeatures(2).waitdone()
    try:
        for ps in sorted({0, npss}):
            # Only operational states can be entered by Set Features.
            if id_ctrl_buf.data(2048 + 32 * ps + 3) & 0x2:
                continue
            nvme0.setfeatures(2, cdw11=ps).waitdone()
            assert nvme0.getfeatures(2).waitdone() & 0x1F == ps
    finally:
        nvme0.setfeatures(2, cdw11=original).waitdone()


@pytest.mark.device
def test_power_management_invalid_state(nvme0, id_ctrl_buf, require_changeable):
    """A power state above NPSS fails with Invalid Field in Command.

    Spec: NVMe 2.0 base spec 5.27.1.2 Power Management.

    Steps:
    1. Skip if the feature is not changeable or 32 states exist.
    2. Set PS NPSS+1.
    3. Check status 00/02.
    """
    require_changeable(2)
    npss = id_ctrl_buf.data(263)
    if npss >= 31:
        pytest.skip("all 32 power states exist")
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.setfeatures(2, cdw11=npss + 1).waitdone()


@pytest.mark.device
def test_get_features_supported_capabilities(nvme0, oncs):
    """SEL=11b capabilities use bits 2:0 only; Number of Queues is not namespace specific.

    Spec: NVMe 2.0 base spec 5.15 Get Features.

    Steps:
    1. Skip unless Select is supported (ONCS bit 4).
    2. Read SEL=11b for FIDs 01h, 02h, 04h, 07h, 08h, 0Bh: bits 31:3 clear.
    3. Check FID 07h bit 1 (namespace specific) is 0.
    """
    if not oncs & (1 << 4):
        pytest.skip("Save field and Select field not supported (ONCS bit 4)")
    for fid in (1, 2, 4, 7, 8, 0x0B):
        cap = nvme0.getfeatures(fid, sel=3).waitdone()
        assert cap & ~0x7 == 0, f"feature {fid:#x}: capabilities {cap:#x} set reserved bits"
    # Number of Queues is neither saveable nor namespace specific in any controller.
    assert nvme0.getfeatures(7, sel=3).waitdone() & 0x2 == 0


@pytest.mark.device
def test_get_features_default_value(nvme0, oncs, require_changeable):
    """SEL=01b keeps returning the default while the current value changes.

    Spec: NVMe 2.0 base spec 5.15 Get Features (SEL 00b current, 01b default).

    Steps:
    1. Skip unless Select is supported and Interrupt Coalescing is changeable.
    2. Set a value other than the default.
    3. Check SEL=00b returns it and SEL=01b the default; restore.
    """
    if not oncs & (1 << 4):
        pytest.skip("Save field and Select field not supported (ONCS bit 4)")
    require_changeable(8)
    default = nvme0.getfeatures(8, sel=1).waitdone()
    original = nvme0.getfeatures(8).waitdone()
    try:
        nvme0.setfeatures(8, cdw11=default ^ 0x0101).waitdone()
        assert nvme0.getfeatures(8, sel=0).waitdone() & 0xFFFF == (default ^ 0x0101) & 0xFFFF
        assert nvme0.getfeatures(8, sel=1).waitdone() == default
    finally:
        nvme0.setfeatures(8, cdw11=original).waitdone()


@pytest.mark.device
def test_reserved_feature_id(nvme0):
    """Get and Set Features of feature id 00h fail with Invalid Field in Command.

    Spec: NVMe 2.0 base spec 5.27.1 Feature Identifiers (00h reserved).

    Steps:
    1. Get Features FID 00h: 00/02.
    2. Set Features FID 00h: 00/02.
    """
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.getfeatures(0x00).waitdone()
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0.setfeatures(0x00).waitdone()
