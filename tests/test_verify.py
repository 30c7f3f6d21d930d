"""Transparent data verification, seen from a script: every read checked against what was
written, LBA/token stamps, LBA locks, and detection of each kind of defective drive."""

import logging
import re
import time

import pytest

import nvme
from nvme import IOCQ, IOSQ, PRP, Buffer, Namespace, Qpair

pytestmark = pytest.mark.skipif(not nvme.native_available(), reason="nvme._native is not built")

MISCOMPARE = "ERROR status: 07/81"


def test_write_read_verified(nvme0n1, qpair, buf, sim, verify):
    assert verify is True
    nvme0n1.write(qpair, buf, 0).waitdone()
    written = buf[:]
    nvme0n1.read(qpair, buf, 0).waitdone()
    assert buf[:] == written
    # The same read is checked: a changed bit is reported, not returned silently.
    sim.inject("flip_bits", 1, opcode=2, count=1)
    with pytest.warns(UserWarning, match=MISCOMPARE):
        nvme0n1.read(qpair, buf, 0).waitdone()


def test_write_stamps_lba_and_token(nvme0n1, qpair):
    ss = nvme0n1.sector_size
    w = Buffer(ss * 4, ptype=0xBEEF, pvalue=100)
    nvme0n1.write(qpair, w, 16, 4).waitdone()
    for i in range(4):
        stamp = w.data(i * ss + 7, i * ss)
        assert stamp & 0xFFFF_FFFF_FFFF == 16 + i
        assert stamp >> 48 == nvme0n1.nsid
    t0 = w.data(ss - 1, ss - 8)
    assert [w.data((i + 1) * ss - 1, (i + 1) * ss - 8) for i in range(4)] == [
        t0 + i for i in range(4)
    ]
    nvme0n1.write(qpair, w, 16, 1).waitdone()
    assert w.data(ss - 1, ss - 8) == t0 + 4, "tokens grow with every LBA written"


def test_stamps_can_be_turned_off(nvme0n1, qpair, verify):
    ss = nvme0n1.sector_size
    w = Buffer(ss, ptype=32, pvalue=0x5A5A5A5A)
    nvme0n1.inject_write_buffer_disable()
    try:
        nvme0n1.write(qpair, w, 3).waitdone()
        assert w.data(7, 0) == 0x5A5A5A5A5A5A5A5A
        r = Buffer(ss)
        nvme0n1.read(qpair, r, 3).waitdone()
        assert r == w
    finally:
        nvme0n1.inject_write_buffer_enable()


@pytest.mark.parametrize(
    ("fault", "value", "opcode", "count"),
    [
        ("flip_bits", 3, 2, 1),  # the next read returns 3 flipped bits
        ("lost_write", None, 1, 1),  # the next write is not stored
        ("stale_data", None, None, None),  # reads return the data before the latest write
        ("read_without_data", None, 2, 1),  # the next read succeeds and transfers nothing
    ],
)
def test_a_defective_drive_is_caught_on_read(
    nvme0n1, qpair, sim, verify, caplog, fault, value, opcode, count
):
    ss = nvme0n1.sector_size
    w = Buffer(ss * 8, ptype=0xBEEF, pvalue=100)
    nvme0n1.write(qpair, w, 100, 8).waitdone()
    sim.inject(fault, value, opcode=opcode, lba=(100, 108), count=count)
    nvme0n1.write(qpair, w, 100, 8).waitdone()
    r = Buffer(ss * 8)
    with caplog.at_level(logging.ERROR, logger="nvme"):
        with pytest.warns(UserWarning, match=MISCOMPARE):
            nvme0n1.read(qpair, r, 100, 8).waitdone()
    named = [
        m for m in caplog.messages if re.search(r"data miscompare: nsid 1 lba 0x6[4-9a-b]:", m)
    ]
    assert named, caplog.messages


def test_a_misdirected_write_is_caught_and_named(nvme0n1, qpair, sim, verify, caplog):
    ss = nvme0n1.sector_size
    w = Buffer(ss, ptype=0xBEEF, pvalue=100)
    nvme0n1.write(qpair, w, 200).waitdone()
    nvme0n1.write(qpair, w, 210).waitdone()
    sim.inject("misdirected_write", 10, opcode=1, count=1)
    nvme0n1.write(qpair, w, 200).waitdone()  # lands on LBA 210
    r = Buffer(ss)
    with caplog.at_level(logging.ERROR, logger="nvme"):
        with pytest.warns(UserWarning, match=MISCOMPARE):
            nvme0n1.read(qpair, r, 210).waitdone()
    assert any(
        "lba 0xd2: misdirected write: the data belongs to nsid 1 lba 0xc8" in m
        for m in caplog.messages
    ), caplog.messages


def test_a_flushed_write_torn_by_a_power_loss_is_caught(
    nvme0, nvme0n1, qpair, subsystem, pcie, verify, caplog
):
    ss = nvme0n1.sector_size
    old = Buffer(ss * 8, ptype=0xBEEF, pvalue=1)
    new = Buffer(ss * 8, ptype=0xBEEF, pvalue=2)
    nvme0n1.write(qpair, old, 300, 8).waitdone()
    nvme0n1.flush(qpair).waitdone()
    # The drive completes the write and its flush, and loses the write's second half at the
    # next power loss all the same.
    fid = pcie.sim.inject("torn_write", opcode=1, count=1)
    nvme0n1.write(qpair, new, 300, 8).waitdone()
    nvme0n1.flush(qpair).waitdone()
    assert pcie.sim.hits(fid) == 1
    pcie.sim.clear()
    subsystem.poweroff()
    subsystem.poweron()
    nvme0.reset()
    r = Buffer(ss * 8)
    with caplog.at_level(logging.ERROR, logger="nvme"):
        with pytest.warns(UserWarning, match=MISCOMPARE):
            nvme0n1.read(qpair, r, 300, 8).waitdone()
    bad = sorted(
        int(m.group(1), 16)
        for m in (
            re.search(r"data miscompare: nsid 1 lba (0x[0-9a-f]+):", x) for x in caplog.messages
        )
        if m
    )
    assert bad == [304, 305, 306, 307], caplog.messages
    assert r[0 : 4 * ss] == new[0 : 4 * ss], "the first half is the new data"


def test_an_unflushed_write_lost_at_a_dirty_power_off_is_no_miscompare(
    nvme0, nvme0n1, qpair, subsystem, verify
):
    ss = nvme0n1.sector_size
    w = Buffer(ss, ptype=0xBEEF, pvalue=100)
    nvme0n1.write(qpair, w, 7).waitdone()
    nvme0n1.flush(qpair).waitdone()
    first = Buffer(ss)
    nvme0n1.read(qpair, first, 7).waitdone()
    nvme0n1.write(qpair, w, 7).waitdone()  # only in the volatile cache
    subsystem.poweroff()
    subsystem.poweron()
    nvme0.reset()
    # The drive may lose a write it never made durable: the old data comes back, no miscompare.
    r = Buffer(ss)
    nvme0n1.read(qpair, r, 7).waitdone()
    assert r == first, "the simulated SSD loses its volatile cache at a dirty power off"
    # Written again, the LBA is checked again.
    nvme0n1.write(qpair, w, 7).waitdone()
    nvme0n1.flush(qpair).waitdone()
    nvme0n1.read(qpair, r, 7).waitdone()
    assert r == w


def test_a_durable_write_that_reads_back_old_after_a_dirty_power_off_is_caught(
    nvme0, nvme0n1, qpair, subsystem, pcie, verify
):
    ss = nvme0n1.sector_size
    w = Buffer(ss, ptype=0xBEEF, pvalue=100)
    nvme0n1.write(qpair, w, 9).waitdone()
    nvme0n1.flush(qpair).waitdone()
    # The drive acknowledges the next write and its flush, and drops the write all the same.
    pcie.sim.inject("lost_write", opcode=1, count=1)
    nvme0n1.write(qpair, w, 9).waitdone()
    nvme0n1.flush(qpair).waitdone()
    pcie.sim.clear()
    subsystem.poweroff()
    subsystem.poweron()
    nvme0.reset()
    with pytest.warns(UserWarning, match=MISCOMPARE):
        nvme0n1.read(qpair, Buffer(ss), 9).waitdone()


def test_a_fua_write_is_durable_for_verification(nvme0, nvme0n1, qpair, subsystem, pcie, verify):
    ss = nvme0n1.sector_size
    w = Buffer(ss, ptype=0xBEEF, pvalue=100)
    nvme0n1.write(qpair, w, 11).waitdone()
    nvme0n1.flush(qpair).waitdone()
    pcie.sim.inject("lost_write", opcode=1, count=1)
    nvme0n1.write(qpair, w, 11, io_flags=0x4000).waitdone()  # FUA: durable at completion
    pcie.sim.clear()
    subsystem.poweroff()
    subsystem.poweron()
    nvme0.reset()
    with pytest.warns(UserWarning, match=MISCOMPARE):
        nvme0n1.read(qpair, Buffer(ss), 11).waitdone()


def test_write_uncorrectable_then_read_fails_and_rewrite_heals(nvme0n1, qpair, buf, verify):
    nvme0n1.write(qpair, buf, 5).waitdone()
    nvme0n1.write_uncorrectable(qpair, 5).waitdone()
    with pytest.warns(UserWarning, match="ERROR status: 02/81"):
        nvme0n1.read(qpair, buf, 5).waitdone()
    nvme0n1.write(qpair, buf, 5).waitdone()
    nvme0n1.read(qpair, buf, 5).waitdone()


def test_trim_write_zeroes_and_format_keep_the_table_true(nvme0n1, qpair, sim, verify, id_ns):
    ss = nvme0n1.sector_size
    assert id_ns.dlfeat & 7 == 1, "the simulated SSD reads deallocated blocks as zeroes"
    w = Buffer(ss * 4, ptype=0xBEEF, pvalue=100)
    r = Buffer(ss * 4)
    nvme0n1.write(qpair, w, 0, 4).waitdone()
    written = w[:]
    nvme0n1.write_zeroes(qpair, 0, 2).waitdone()
    nvme0n1.read(qpair, r, 0, 4).waitdone()
    assert r[: ss * 2] == bytes(ss * 2)
    assert r[ss * 2 :] == written[ss * 2 :]
    # Trim LBA 2-3: they read as zeroes, and the table expects zeroes there now.
    d = Buffer(4096)
    d.set_dsm_range(0, 2, 2)
    nvme0n1.dsm(qpair, d, 1).waitdone()
    nvme0n1.read(qpair, r, 0, 4).waitdone()
    assert r[:] == bytes(ss * 4)
    # Rewritten: the new data reads back and is what the table expects.
    nvme0n1.write(qpair, w, 0, 4).waitdone()
    rewritten = w[:]
    assert rewritten != written, "every write is stamped with new tokens"
    nvme0n1.read(qpair, r, 0, 4).waitdone()
    assert r[:] == rewritten
    # A drive that loses a rewrite returns the data before it: caught.
    sim.inject("lost_write", opcode=1, count=1)
    nvme0n1.write(qpair, w, 0, 1).waitdone()
    with pytest.warns(UserWarning, match=MISCOMPARE):
        nvme0n1.read(qpair, r, 0, 4).waitdone()
    # Formatted: everything reads as zeroes, and nothing is expected any more.
    nvme0n1.format(ss)
    nvme0n1.read(qpair, r, 0, 4).waitdone()
    assert r[:] == bytes(ss * 4)


def test_overlapping_io_waits_for_the_lock_not_fails(nvme0n1, qpair, verify):
    ss = nvme0n1.sector_size
    w = Buffer(ss * 8, ptype=0xBEEF, pvalue=100)
    r = Buffer(ss * 8)
    for _ in range(50):
        nvme0n1.write(qpair, w, 0, 8)
        nvme0n1.read(qpair, r, 4, 8)
        qpair.waitdone(2)
    assert r[: ss * 4] == w[ss * 4 :]


def test_overlapping_io_on_two_qpairs(nvme0, nvme0n1, qpair, verify):
    ss = nvme0n1.sector_size
    q2 = Qpair(nvme0, 16)
    try:
        w = Buffer(ss * 8, ptype=0xBEEF, pvalue=100)
        r = Buffer(ss * 8)
        statuses = []
        for i in range(100):
            start = i % 4
            nvme0n1.write(qpair, w, start, 8, cb=lambda c: statuses.append((c.sct, c.sc)))
            nvme0n1.read(q2, r, 0, 8, cb=lambda c: statuses.append((c.sct, c.sc)))
            qpair.waitdone(1)
            q2.waitdone(1)
            # The read waited for the write's LBAs: it returns the write's data where they meet.
            assert r[start * ss :] == w[: (8 - start) * ss], i
        assert statuses == [(0, 0)] * 200
    finally:
        q2.delete()


def test_crc_table_survives_across_namespace_objects_via_save_and_load(
    nvme0, nvme0n1, qpair, tmp_path, verify
):
    ss = nvme0n1.sector_size
    w = Buffer(ss, ptype=0xBEEF, pvalue=100)
    nvme0n1.write(qpair, w, 9).waitdone()
    path = tmp_path / "crc.bin"
    nvme0n1.save_crc(str(path))
    assert path.stat().st_size > 0
    nvme0n1.format(ss)  # forgets everything
    nvme0n1.load_crc(str(path))  # the table says LBA 9 holds w, the drive has zeroes
    with pytest.warns(UserWarning, match=MISCOMPARE):
        nvme0n1.read(qpair, Buffer(ss), 9).waitdone()


def test_load_crc_rejects_a_table_of_another_namespace(nvme0n1, tmp_path):
    p = tmp_path / "bad.bin"
    p.write_bytes(b"not a table")
    with pytest.raises(ValueError, match="path"):
        nvme0n1.load_crc(str(p))


def test_a_raw_one_block_read_into_a_larger_buffer_checks_only_that_lba(nvme0n1, qpair, verify):
    ss = nvme0n1.sector_size
    w = Buffer(4096, ptype=0xBEEF, pvalue=100)
    nvme0n1.write(qpair, w, 0, 4096 // ss).waitdone()
    r = Buffer(4096)  # the blocks after the first are not read: they keep their zeroes
    nvme0n1.send_cmd(0x02, qpair, r, nsid=1, cdw10=0, cdw11=0, cdw12=0).waitdone()
    assert r[:ss] == w[:ss]
    assert r[ss:] == bytes(4096 - ss)


def test_a_raw_one_block_write_records_only_that_lba(nvme0n1, qpair, sim, verify):
    ss = nvme0n1.sector_size
    first = Buffer(ss * 8, ptype=0xBEEF, pvalue=100)
    nvme0n1.write(qpair, first, 0, 8).waitdone()
    second = Buffer(ss * 8, ptype=32, pvalue=0x12345678)
    nvme0n1.send_cmd(0x01, qpair, second, nsid=1, cdw10=0, cdw11=0, cdw12=0).waitdone()
    r = Buffer(ss * 8)
    nvme0n1.read(qpair, r, 0, 8).waitdone()  # LBAs 1-7 still hold the first write
    assert r[:ss] == second[:ss]
    assert r[ss : ss * 8] == first[ss : ss * 8]
    # A raw read of eight blocks checks all eight: a bit flipped in any of them is caught.
    nvme0n1.send_cmd(0x02, qpair, r, nsid=1, cdw10=0, cdw11=0, cdw12=7).waitdone()
    sim.inject("flip_bits", 1, opcode=2, count=1)
    with pytest.warns(UserWarning, match=MISCOMPARE):
        nvme0n1.send_cmd(0x02, qpair, r, nsid=1, cdw10=0, cdw11=0, cdw12=7).waitdone()


def test_a_buffer_changed_while_its_write_is_in_flight_gives_no_false_miscompare(
    nvme0n1, qpair, sim, verify
):
    ss = nvme0n1.sector_size
    slow = sim.inject("delay", 300, opcode=1, count=1)
    w = Buffer(ss * 4, ptype=0xBEEF, pvalue=100)
    nvme0n1.write(qpair, w, 40, 4)
    sent = w[:]
    deadline = time.monotonic() + 5
    while sim.hits(slow) == 0:  # the device takes the data when it fetches the command
        assert time.monotonic() < deadline, "the write was not fetched"
        time.sleep(0.001)
    time.sleep(0.05)
    w[0 : ss * 4] = b"\xee" * (ss * 4)  # the script reuses its buffer before the write completes
    qpair.waitdone()
    r = Buffer(ss * 4)
    nvme0n1.read(qpair, r, 40, 4).waitdone()
    assert r[:] == sent


@pytest.mark.parametrize(
    ("fault", "what"),
    [
        ("lost_write", r"stale data: an older version of this LBA \(token 0x[0-9a-f]+"),
        ("misdirected_write", r"never written: the data reads as never-written"),
    ],
)
def test_a_miscompare_says_what_was_found(nvme0n1, qpair, sim, verify, caplog, fault, what):
    ss = nvme0n1.sector_size
    w = Buffer(ss, ptype=0xBEEF, pvalue=100)
    nvme0n1.write(qpair, w, 300).waitdone()
    # A lost write leaves the first version; a misdirected first write leaves nothing at 300.
    if fault == "lost_write":
        sim.inject("lost_write", opcode=1, count=1)
        nvme0n1.write(qpair, w, 300).waitdone()
    else:
        nvme0n1.format(ss)
        sim.inject("misdirected_write", 1, opcode=1, count=1)
        nvme0n1.write(qpair, w, 300).waitdone()
    with caplog.at_level(logging.ERROR, logger="nvme"):
        with pytest.warns(UserWarning, match=MISCOMPARE):
            nvme0n1.read(qpair, Buffer(ss), 300).waitdone()
    assert any(
        re.search(r"data miscompare: nsid 1 lba 0x12c: " + what, m) for m in caplog.messages
    ), caplog.messages


def test_one_buffer_written_to_several_lbas_without_waiting_gives_no_false_miscompare(
    nvme0, nvme0n1, verify
):
    ss = nvme0n1.sector_size
    # Lazy doorbell: the device fetches the writes' data only after all four were submitted.
    q = Qpair(nvme0, 16, lazy_doorbell=True)
    try:
        w = Buffer(ss, ptype=0xBEEF, pvalue=100)
        for lba in range(4):
            nvme0n1.write(q, w, lba)
        q.waitdone(4)
        r = Buffer(ss * 4)
        nvme0n1.read(q, r, 0, 4).waitdone()
        assert [r.data(i * ss + 7, i * ss) for i in range(4)] == [
            nvme0n1.nsid << 48 | lba for lba in range(4)
        ]
        # The buffer keeps the stamps of the write that was in flight when the others came.
        assert w.data(7, 0) == nvme0n1.nsid << 48
    finally:
        q.delete()


@pytest.mark.parametrize("crc_size", [1, 2, 4])
def test_crc_size_selects_the_digest_width(nvme0, qpair, sim, tmp_path, crc_size):
    ns = Namespace(nvme0, 1, crc_size=crc_size)
    assert ns.crc_size == crc_size
    ns.verify_enable(True)
    ns.inject_write_buffer_disable()  # digests only: no stamps to help
    ss = ns.sector_size
    w = Buffer(ss * 4, ptype=0xBEEF, pvalue=100)
    r = Buffer(ss * 4)
    ns.write(qpair, w, 0, 4).waitdone()
    ns.read(qpair, r, 0, 4).waitdone()
    assert r == w
    sim.inject("flip_bits", 1, opcode=2, count=1)
    with pytest.warns(UserWarning, match=MISCOMPARE):
        ns.read(qpair, r, 0, 4).waitdone()
    # The saved table has this width: a namespace of another width refuses it.
    path = tmp_path / "crc.bin"
    ns.save_crc(str(path))
    assert path.stat().st_size == 40 + 8 + 4096 * crc_size + 4096 * 2
    ns.load_crc(str(path))
    other = Namespace(nvme0, 1, crc_size=2 if crc_size == 1 else 1)
    with pytest.raises(ValueError, match="digests"):
        other.load_crc(str(path))


def test_namespace_objects_share_one_table_and_its_width(nvme0, nvme0n1, qpair, sim, verify):
    ss = nvme0n1.sector_size
    assert nvme0n1.crc_size == 1
    w = Buffer(ss, ptype=0xBEEF, pvalue=100)
    nvme0n1.write(qpair, w, 5).waitdone()
    wide = Namespace(nvme0, 1, crc_size=4)
    assert (nvme0n1.crc_size, wide.crc_size) == (4, 4), "one table per namespace"
    assert Namespace(nvme0, 1).crc_size == 4, "no crc_size: the table's width"
    # The new table knows nothing yet: LBA 5 is not checked, whatever the drive returns ...
    sim.inject("flip_bits", 1, opcode=2, count=1)
    nvme0n1.read(qpair, Buffer(ss), 5).waitdone()
    # ... and read checking stayed on: what is written now is checked, through either object.
    nvme0n1.write(qpair, w, 5).waitdone()
    sim.inject("flip_bits", 1, opcode=2, count=1)
    with pytest.warns(UserWarning, match=MISCOMPARE):
        wide.read(qpair, Buffer(ss), 5).waitdone()
    with pytest.raises(ValueError, match="crc_size: 3 is not a digest width"):
        Namespace(nvme0, 1, crc_size=3)


def test_raw_nvm_commands_keep_the_table_true(nvme0n1, qpair, sim, verify):
    ss = nvme0n1.sector_size
    w = Buffer(ss * 8, ptype=0xBEEF, pvalue=100)
    r = Buffer(ss * 8)
    nvme0n1.write(qpair, w, 400, 8).waitdone()
    written = w[:]
    # Write Zeroes of LBA 400-401 and Dataset Management (deallocate) of 402-403, both raw.
    nvme0n1.send_cmd(0x08, qpair, nsid=1, cdw10=400, cdw12=1).waitdone()
    d = Buffer(4096)
    d.set_dsm_range(0, 402, 2)
    nvme0n1.send_cmd(0x09, qpair, d, nsid=1, cdw10=0, cdw11=4).waitdone()
    # Copy (format 0) of LBA 404-405 to 406-407, raw: two blocks from one range.
    c = Buffer(4096)
    c[8:16] = (404).to_bytes(8, "little")
    c[16:18] = (1).to_bytes(2, "little")
    nvme0n1.send_cmd(0x19, qpair, c, nsid=1, cdw10=406, cdw12=0).waitdone()
    nvme0n1.read(qpair, r, 400, 8).waitdone()
    assert r[: ss * 4] == bytes(ss * 4)
    assert r[ss * 4 : ss * 6] == r[ss * 6 :] == written[ss * 4 : ss * 6]
    # The table holds what each command left: a changed bit anywhere is caught.
    for lba in (400, 402, 404, 406):
        sim.inject("flip_bits", 1, opcode=2, count=1)
        with pytest.warns(UserWarning, match=MISCOMPARE):
            nvme0n1.read(qpair, r, lba).waitdone()
    # Write Uncorrectable, raw: the read must fail, and the drive's failure is no miscompare.
    nvme0n1.send_cmd(0x04, qpair, nsid=1, cdw10=401, cdw12=0).waitdone()
    with pytest.warns(UserWarning, match="ERROR status: 02/81"):
        nvme0n1.read(qpair, r, 401).waitdone()


def test_metamode_writes_are_not_verified_and_leave_their_lbas_unknown(
    nvme0, nvme0n1, qpair, verify
):
    ss = nvme0n1.sector_size
    nvme0n1.write(qpair, Buffer(ss, ptype=0xBEEF, pvalue=100), 3).waitdone()
    cq = IOCQ(nvme0, 5, 8, PRP())
    sq = IOSQ(nvme0, 5, 8, PRP(), cq=cq)
    try:
        data = PRP(ss, ptype=32, pvalue=0x11223344)
        sq.write(cid=1, nsid=1, lba=3, prp1=data)
        sq.tail = sq.wpointer
        cq.waitdone(1)
        cq.head = cq.rpointer
    finally:
        sq.delete()
        cq.delete()
    # The table no longer expects the first write at LBA 3: the read is not a miscompare.
    r = Buffer(ss)
    nvme0n1.read(qpair, r, 3).waitdone()
    assert r[:] == data[:ss]


def test_a_miscompare_is_logged_once_per_wrong_lba(nvme0n1, qpair, sim, verify, caplog):
    ss = nvme0n1.sector_size
    w = Buffer(ss * 4, ptype=0xBEEF, pvalue=100)
    nvme0n1.write(qpair, w, 600, 4).waitdone()
    sim.inject("lost_write", opcode=1, count=1)
    nvme0n1.write(qpair, w, 601, 2).waitdone()  # LBA 601-602 keep the first write's data
    with caplog.at_level(logging.ERROR, logger="nvme"):
        with pytest.warns(UserWarning, match=MISCOMPARE):
            nvme0n1.read(qpair, Buffer(ss * 4), 600, 4).waitdone()
    lbas = [re.search(r"lba (0x[0-9a-f]+): stale data", m) for m in caplog.messages]
    assert [int(m.group(1), 16) for m in lbas if m] == [601, 602], caplog.messages


def test_a_clean_shutdown_keeps_every_write_checked(nvme0, nvme0n1, qpair, subsystem, pcie, verify):
    ss = nvme0n1.sector_size
    w = Buffer(ss, ptype=0xBEEF, pvalue=100)
    nvme0n1.write(qpair, w, 13).waitdone()  # not flushed: the shutdown makes it durable
    subsystem.shutdown_notify()
    subsystem.poweroff()
    subsystem.poweron()
    nvme0.reset()
    r = Buffer(ss)
    nvme0n1.read(qpair, r, 13).waitdone()
    assert r == w
    # Still checked: a corrupted read of it is caught.
    pcie.sim.inject("flip_bits", 1, opcode=2, count=1)
    with pytest.warns(UserWarning, match=MISCOMPARE):
        nvme0n1.read(qpair, r, 13).waitdone()
