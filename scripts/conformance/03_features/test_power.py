"""Power: NVMe power states, APST, PCIe ASPM and D3hot, each followed by verified IO.

Every power state to every other (the full matrix, data written and read back after each
move), the deepest non-operational state serving IO, power state changes while an ioworker
runs with verification, APST with idle time and IO, the power state after a controller reset,
format in each power state, ASPM L1 with IO, and D3hot: no command is served until D0.
"""

import time
import warnings

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")


def power_states(id_ctrl_buf):
    """(all states, operational states) from NPSS and the NOPS bits."""
    npss = id_ctrl_buf.data(263)
    states = list(range(npss + 1))
    operational = [ps for ps in states if not id_ctrl_buf.data(2048 + 32 * ps + 3) & 0x2]
    return states, operational


def need_states(id_ctrl_buf, nvme0, oncs):
    states, _ = power_states(id_ctrl_buf)
    if len(states) < 2:
        pytest.skip("one power state only (NPSS = 0)")
    if oncs & (1 << 4) and not nvme0.getfeatures(2, sel=3).waitdone() & 0x4:
        pytest.skip("Power Management is not changeable")
    return states


def io_check(nvme0n1, qpair, lba, value):
    w = Buffer(4 * nvme0n1.sector_size, ptype=32, pvalue=value)
    r = Buffer(len(w))
    nvme0n1.write(qpair, w, lba, 4).waitdone()
    nvme0n1.read(qpair, r, lba, 4).waitdone()
    assert r == w, f"data differs at LBA {lba}"


@pytest.mark.device
def test_power_state_matrix(nvme0, nvme0n1, qpair, verify, id_ctrl_buf, oncs):
    """Every power state can be entered from every other; IO works after each transition.

    Spec: NVMe 2.0 base spec 5.27.1.2 Power Management, 8.15 Power Management.

    Steps:
    1. Skip with one power state, or when Power Management is not changeable.
    2. For each pair (from, to): set PS from, then PS to; Get Features returns to.
    3. After each pair write and read 4 blocks (verification on) and check the data.
    4. Return to PS0.
    """
    states = need_states(id_ctrl_buf, nvme0, oncs)
    try:
        for a in states:
            for b in states:
                nvme0.setfeatures(2, cdw11=a).waitdone()
                nvme0.setfeatures(2, cdw11=b).waitdone()
                assert nvme0.getfeatures(2).waitdone() & 0x1F == b, f"PS{a} -> PS{b}"
                io_check(nvme0n1, qpair, 64 * (a * 8 + b), a << 8 | b)
    finally:
        nvme0.setfeatures(2, cdw11=0).waitdone()


@pytest.mark.device
def test_non_operational_state_serves_io(nvme0, nvme0n1, qpair, verify, id_ctrl_buf, oncs):
    """IO sent in a non-operational power state is processed (the controller leaves it).

    Spec: NVMe 2.0 base spec 8.15.1 Non-Operational Power States ("... the controller shall
    autonomously transition to the most recent operational power state" to process IO).

    Steps:
    1. Skip unless a non-operational state exists and Power Management is changeable.
    2. Enter the deepest non-operational state.
    3. Write and read 4 blocks with verification: the data is right.
    4. Return to PS0.
    """
    need_states(id_ctrl_buf, nvme0, oncs)
    states, operational = power_states(id_ctrl_buf)
    nonop = [ps for ps in states if ps not in operational]
    if not nonop:
        pytest.skip("no non-operational power state")
    try:
        nvme0.setfeatures(2, cdw11=nonop[-1]).waitdone()
        io_check(nvme0n1, qpair, 7000, 0x0BE0)
    finally:
        nvme0.setfeatures(2, cdw11=0).waitdone()


@pytest.mark.device
def test_power_state_changes_during_io(nvme0, nvme0n1, id_ctrl_buf, oncs, verify):
    """Power state changes while an ioworker writes and reads with verification.

    Spec: NVMe 2.0 base spec 8.15 Power Management (transitions while commands run).

    Steps:
    1. Skip unless more than one power state exists and the feature is changeable.
    2. Start a 3 s ioworker (50% reads, 4 KiB random, QD 16) over a 10 MB region.
    3. While it runs, cycle through every power state every 0.1 s.
    4. Return to PS0; check the ioworker saw no error and moved data.
    """
    states = need_states(id_ctrl_buf, nvme0, oncs)
    w = nvme0n1.ioworker(
        io_size=8, lba_random=True, read_percentage=50, region_end=20000, qdepth=16, time=3
    ).start()
    try:
        i = 0
        while w.running:
            nvme0.setfeatures(2, cdw11=states[i % len(states)]).waitdone()
            i += 1
            time.sleep(0.1)
    finally:
        r = w.close()
        nvme0.setfeatures(2, cdw11=0).waitdone()
    assert r.error == 0
    assert r.io_count_read > 0 and r.io_count_nonread > 0


@pytest.mark.device
def test_power_state_after_controller_reset(nvme0, id_ctrl_buf, oncs):
    """The power state returns to its default after a controller reset.

    Spec: NVMe 2.0 base spec 5.27.1.2 Power Management (not persistent across Controller
    Level Reset unless saved), 3.7.2 Controller Reset.

    Steps:
    1. Skip with one power state, or when Power Management is saveable.
    2. Read the default (SEL=01b, or 0 without Select support); set another state.
    3. Reset the controller; Get Features returns the default.
    """
    states = need_states(id_ctrl_buf, nvme0, oncs)
    default = 0
    if oncs & (1 << 4):
        if nvme0.getfeatures(2, sel=3).waitdone() & 0x1:
            pytest.skip("Power Management is saveable")
        default = nvme0.getfeatures(2, sel=1).waitdone() & 0x1F
    other = next(ps for ps in states if ps != default)
    nvme0.setfeatures(2, cdw11=other).waitdone()
    nvme0.reset()
    assert nvme0.getfeatures(2).waitdone() & 0x1F == default


@pytest.mark.device
def test_apst_idle_then_io(nvme0, nvme0n1, qpair, verify, id_ctrl_buf):
    """With APST enabled and the controller idle, IO still completes with the right data.

    Spec: NVMe 2.0 base spec 5.27.1.9 Autonomous Power State Transition, 8.15.2.

    Steps:
    1. Skip unless APSTA is set and a non-operational state exists.
    2. Enable APST: from each operational state, after 50 ms idle go to the deepest state.
    3. Idle for 0.3 s; write and read 4 blocks with verification.
    4. Disable APST.
    """
    if not id_ctrl_buf.data(264) & 1:
        pytest.skip("APST not supported (APSTA)")
    states, operational = power_states(id_ctrl_buf)
    nonop = [ps for ps in states if ps not in operational]
    if not nonop:
        pytest.skip("no non-operational power state")
    table = Buffer(256, "apst")
    for ps in operational:
        table[8 * ps : 8 * ps + 8] = ((50 << 8) | (nonop[-1] << 3)).to_bytes(8, "little")
    try:
        nvme0.setfeatures(0x0C, cdw11=1, buf=table).waitdone()
        time.sleep(0.3)
        io_check(nvme0n1, qpair, 7100, 0xA757)
    finally:
        nvme0.setfeatures(0x0C, cdw11=0, buf=Buffer(256)).waitdone()


@pytest.mark.device
def test_format_in_each_power_state(nvme0, nvme0n1, qpair, verify, id_ctrl_buf, oncs, oacs):
    """Format NVM completes in every operational power state; IO works afterwards.

    Spec: NVMe 2.0 base spec 5.14 Format NVM, 8.15 Power Management.

    Steps:
    1. Skip unless Format NVM is supported and Power Management is changeable.
    2. For each operational state: enter it, format with the current format, write and read
       4 blocks with verification.
    3. Return to PS0.
    """
    need_states(id_ctrl_buf, nvme0, oncs)
    if not oacs & 0x2:
        pytest.skip("Format NVM not supported (OACS bit 1)")
    _, operational = power_states(id_ctrl_buf)
    b = Buffer(4096)
    nvme0.identify(b, nsid=nvme0n1.nsid, cns=0).waitdone()
    lbaf = (b.data(26) & 0xF) | ((b.data(26) >> 5) & 3) << 4
    try:
        for ps in operational:
            nvme0.setfeatures(2, cdw11=ps).waitdone()
            nvme0.format(lbaf, nsid=nvme0n1.nsid).waitdone()
            io_check(nvme0n1, qpair, 100 + ps * 8, 0xF0A7 + ps)
    finally:
        nvme0.setfeatures(2, cdw11=0).waitdone()


@pytest.mark.device
def test_aspm_l1_with_io(pcie, nvme0n1, verify):
    """With ASPM L1 enabled in Link Control, a verified ioworker runs without error.

    Spec: PCIe base spec 5.4.1 Active State Power Management, 7.5.3.7 Link Control (ASPM
    Control bits 1:0).

    Steps:
    1. Skip unless Link Capabilities report L1 ASPM support (bit 11).
    2. Enable ASPM L1; run a 1 s ioworker (50% reads, QD 8) with verification.
    3. Disable ASPM; check no error and data moved.
    """
    cap = pcie.cap_offset(0x10)
    if cap is None:
        pytest.skip("no PCI Express capability")
    if not (pcie.cfg_dword_read(cap + 0x0C) >> 10) & 0x2:
        pytest.skip("L1 ASPM not supported (Link Capabilities bit 11)")
    original = pcie.aspm
    try:
        pcie.aspm = 2
        assert pcie.cfg_word_read(cap + 0x10) & 0x3 == 2, "Link Control does not show L1"
        r = (
            nvme0n1.ioworker(
                io_size=8, lba_random=True, read_percentage=50, region_end=20000, qdepth=8, time=1
            )
            .start()
            .close()
        )
    finally:
        pcie.aspm = original
    assert r.error == 0
    assert r.io_count_read + r.io_count_nonread > 0


@pytest.mark.device
def test_d3hot_then_d0(pcie, nvme0, nvme0n1):
    """In D3hot the controller serves no command; back in D0 and reset it works with IO.

    Spec: PCI Power Management spec (PMCSR PowerState, D3hot: memory space not decoded);
    PCIe base spec 5.3.1.4; NVMe 2.0 base spec 3.7.2 (reset after a D3hot to D0 transition).

    Steps:
    1. Skip unless the PCI power management capability exists.
    2. Enter D3hot; check PMCSR bits 1:0 read 11b.
    3. Send Get Features with a 500 ms timeout: the host times it out (07/ff).
    4. Return to D0, reset the controller; write and read a block.
    """
    cap = pcie.cap_offset(0x01)
    if cap is None:
        pytest.skip("no PCI power management capability")
    pcie.power_state = 3
    try:
        assert pcie.cfg_word_read(cap + 4) & 0x3 == 3
        nvme0.timeout = 500
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            nvme0.getfeatures(7).waitdone()
        messages = [str(w.message) for w in record]
        assert any("drive timeout" in m for m in messages), f"served in D3hot: {messages}"
    finally:
        pcie.power_state = 0
    nvme0.timeout = 10000
    nvme0.reset()
    q = Qpair(nvme0, 8)
    try:
        w = Buffer(nvme0n1.sector_size, ptype=32, pvalue=0xD3D0)
        r = Buffer(nvme0n1.sector_size)
        nvme0n1.write(q, w, 7200).waitdone()
        nvme0n1.read(q, r, 7200).waitdone()
        assert r == w
    finally:
        q.delete()
