"""Metamode contract: IOCQ, IOSQ, SQE, PRP, PRPList and the SGL classes on the simulated SSD."""

from __future__ import annotations

import time
import warnings

import pytest

nvme = pytest.importorskip("nvme")
if not nvme.native_available():
    pytest.skip("native module nvme._native not built", allow_module_level=True)

from nvme import (  # noqa: E402
    CQE,
    IOCQ,
    IOSQ,
    PRP,
    SGL,
    SQE,
    BitBucketSGL,
    Buffer,
    Controller,
    DataBlockSGL,
    LastSegmentSGL,
    Namespace,
    NvmeArgumentError,
    Pcie,
    PRPList,
    Qpair,
    QpairCreationError,
    SegmentSGL,
)


@pytest.fixture
def nvme0():
    pcie = Pcie("sim://")
    yield Controller(pcie)
    pcie.close()


@pytest.fixture
def queues(nvme0):
    cq = IOCQ(nvme0, 1, 8, PRP())
    sq = IOSQ(nvme0, 1, 8, PRP(), cq=cq)
    yield cq, sq
    sq.delete()
    cq.delete()


# ---- SQE, PRP, PRPList, SGL: host-side structures ---------------------------------------------


def test_sqe_is_a_list_of_16_dwords_with_named_fields():
    s = SQE(2, 1)
    assert len(s) == 16 and list(s) == [2, 1] + [0] * 14
    s.cid = 0x1234
    assert s[0] == 0x1234_0002 and (s.opc, s.opcode, s.cid, s.nsid) == (2, 2, 0x1234, 1)
    s.opc = 1
    assert s[0] == 0x1234_0001
    s.slba = 0x1_0000_0005
    assert (s[10], s[11], s.slba) == (5, 1, 0x1_0000_0005)
    s.nlb = 8
    assert (s[12], s.nlb) == (7, 8)
    s[-1] = 0xFFFF_FFFF
    assert s[15] == 0xFFFF_FFFF
    assert SQE(*s) == s and s == list(s)
    buf = PRP()
    buf.offset = 0x20
    s.prp1 = buf
    s.prp2 = 0x1000
    s.mptr = 0x2000
    assert (s.prp1, s.prp2, s.mptr) == (buf.phys_addr, 0x1000, 0x2000)
    assert (s[6], s[7]) == (buf.phys_addr & 0xFFFF_FFFF, buf.phys_addr >> 32)
    assert repr(SQE(1)).splitlines()[0] == "0x00000001, 0x00000000, 0x00000000, 0x00000000"
    with pytest.raises(IndexError):
        s[16]
    with pytest.raises(NvmeArgumentError, match="dwords"):
        SQE(*range(17))
    with pytest.raises(NvmeArgumentError, match="prp1"):
        s.prp1 = "x"
    with pytest.raises(NvmeArgumentError, match="nlb"):
        s.nlb = 0


def test_prp_and_prp_list_are_buffers():
    p = PRP()
    assert isinstance(p, Buffer) and len(p) == 4096 and p.name == "PRP"
    assert PRP(512, ptype=32, pvalue=0x5A5A5A5A)[0:4] == b"ZZZZ"
    lst = PRPList()
    assert isinstance(lst, PRP) and lst.entry_count == 512
    lst.offset = 0x40
    p.offset = 0x20
    lst[8] = p
    assert lst[8] is p and lst[9] is None
    assert lst.data(8 * 8 + 7, 8 * 8) == p.phys_addr
    assert lst.phys_addr & 0xFFF == 0x40
    with pytest.raises(AssertionError, match="index"):  # NvmeArgumentError is one
        lst[512] = PRP()
    with pytest.raises(NvmeArgumentError, match="value"):
        lst[0] = 5


def test_sgl_descriptors():
    ss = 512
    d = DataBlockSGL(ss * 6)
    assert isinstance(d, SGL) and isinstance(d, Buffer)
    assert d.desc == d.phys_addr | (ss * 6) << 64
    b = BitBucketSGL(ss * 4)
    assert b.desc == (ss * 4) << 64 | 0x1 << 124
    seg = SegmentSGL(32)
    last = LastSegmentSGL(16)
    seg[0] = d
    seg[1] = last
    assert seg[0] is d and seg[1] is last
    assert seg.data(15, 0) == d.desc
    assert seg.data(31, 16) == last.phys_addr | 16 << 64 | 0x3 << 124
    assert SegmentSGL(16).desc >> 124 == 0x2
    with pytest.raises(NvmeArgumentError, match="index"):
        seg[2] = d
    with pytest.raises(NvmeArgumentError, match="value"):
        seg[0] = Buffer(16)
    s = SQE(2, 1)
    s.sgl = seg
    assert s.sgl is seg and (s[0] >> 14) & 3 == 1
    assert s.prp1 == seg.phys_addr and s.prp2 == 32 | 0x2 << 60


# ---- queues --------------------------------------------------------------------------------------


def test_read_by_hand(nvme0, queues):
    cq, sq = queues
    assert (cq.qid, cq.id, cq.qsize, len(cq), sq.qid, sq.cqid, sq.cq) == (1, 1, 8, 8, 1, 1, cq)
    cmd = SQE(2, 1)
    cmd.cid = 5
    cmd.prp1 = PRP()
    sq[0] = cmd
    assert sq[0] == cmd
    sq.tail = 1
    assert sq.tail == 1
    assert cq.wait_pbit(cq.head, 1)
    e = cq[0]
    assert isinstance(e, CQE)
    assert (e.cid, e.sqid, e.sqhd, e.p, e.status) == (5, 1, 1, 1, 0)
    cq.head = 1
    assert cq.head == 1


def test_the_sq_logs_what_its_doorbell_sent_and_the_cq_what_completed(nvme0, queues):
    cq, sq = queues
    assert sq.cmdlog() == []
    sq.write(cid=1, nsid=1, lba=3, prp1=PRP(512))
    sq.read(2, 1, 3, 1, prp1=PRP(512))
    assert sq.cmdlog() == [], "filled, not sent"
    sq.tail = 2
    log = sq.cmdlog()
    assert len(log) == 2
    assert "Read, sqid: 1]" in log[0] and "Write, sqid: 1]" in log[1], log
    assert all("not completed" in e for e in log), log
    cq.waitdone(2)
    cq.head = 2
    log = sq.cmdlog()
    assert all("[cpl: SUCCESS]" in e for e in log), log
    assert sq.cmdlog(1) == log[:1] and sq.cmdlog(1, offset=1) == log[1:]
    # A command written by hand is logged too; its failing completion with it.
    cmd = SQE(2, 1)
    cmd.cid = 9
    cmd.nsid = 0xFFFF
    cmd.prp1 = PRP()
    sq[2] = cmd
    sq.tail = 3
    with pytest.warns(UserWarning, match="ERROR status"):
        cq.waitdone(1)
    newest = sq.cmdlog(1)[0]
    assert "Read, sqid: 1]" in newest and "[cpl: SUCCESS]" not in newest, newest


def test_helpers_fill_the_write_pointer_and_waitdone_calls_back(nvme0, queues):
    cq, sq = queues
    data = PRP(512, ptype=32, pvalue=0x11223344)
    got = []
    sq.write(cid=1, nsid=1, lba=3, prp1=data, cb=got.append)
    back = PRP(512)

    def two_args(cdw0, status1):  # pynvme's callback form
        got.append(CQE(cdw0, 0, 0, status1 << 16 | 2))

    sq.read(2, 1, 3, 1, prp1=back, cb=two_args)
    sq.flush(3, 1)
    assert sq.wpointer == 3
    assert (sq[1].opc, sq[1].cid, sq[1].slba, sq[1].nlb) == (2, 2, 3, 1)
    sq.tail = sq.wpointer
    cq.waitdone(3)
    assert cq.rpointer == 3
    cq.head = cq.rpointer
    assert [c.cid for c in got] == [1, 2]
    assert back == data
    # send_cmd with cdws: Write Zeroes of the same block.
    sq.send_cmd(0x08, 7, 1, cdw10=3)
    sq.tail = sq.wpointer
    cq.waitdone()
    assert cq[3].cid == 7 and cq[3].status == 0
    cq.head = cq.rpointer


def test_error_status_of_a_helper_command_is_a_warning(nvme0, queues):
    cq, sq = queues
    sq.read(1, 0xFFFF, 0, prp1=PRP())  # namespace that does not exist
    sq.tail = 1
    with pytest.warns(UserWarning, match="ERROR status: 00/0b"):
        cq.waitdone()
    cq.head = 1


def test_waits_time_out(nvme0, queues):
    cq, _ = queues
    t0 = time.monotonic()
    assert cq.wait_pbit(0, 1, timeout=0.05) is False
    with pytest.raises(TimeoutError, match="0 of 1"):
        cq.waitdone(1, timeout=0.05)
    assert time.monotonic() - t0 < 2
    with pytest.raises(IndexError):
        cq[8]
    with pytest.raises(NvmeArgumentError, match="expected"):
        cq.wait_pbit(0, 2)
    with pytest.raises(NvmeArgumentError, match="timeout"):
        cq.wait_pbit(0, 1, timeout=-1)


def test_invalid_doorbells_raise_the_event_at_the_write(nvme0, queues):
    cq, sq = queues
    buf = Buffer(4096)
    with pytest.warns(UserWarning, match="AER notification is triggered: 0x10100"):
        sq.tail = 8
    nvme0.getlogpage(1, buf, 512).waitdone()
    with pytest.warns(UserWarning, match="AER notification is triggered: 0x10100"):
        cq.head = 9
    nvme0.getlogpage(1, buf, 512).waitdone()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sq.tail = 0  # back to where the device is: valid, nothing waits


def test_device_errors_of_queue_commands_are_warnings(nvme0):
    buf = PRP()
    with pytest.warns(UserWarning, match="ERROR status: 01/02"):
        IOCQ(nvme0, 5, 1, buf)
    with pytest.warns(UserWarning, match="ERROR status: 01/01"):
        IOCQ(nvme0, 0, 5, buf)
    cq = IOCQ(nvme0, 5, 5, buf)
    with pytest.warns(UserWarning, match="ERROR status: 01/00"):
        IOSQ(nvme0, 5, 5, PRP(), cqid=6)
    sq = IOSQ(nvme0, 6, 5, PRP(), cqid=5)
    with pytest.warns(UserWarning, match="ERROR status: 01/0c"):
        cq.delete()
    with pytest.warns(UserWarning, match="ERROR status: 01/01"):
        sq.delete(4)
    sq.delete()
    cq.delete()


def test_bad_arguments(nvme0):
    with pytest.raises(NvmeArgumentError, match="qsize"):
        IOCQ(nvme0, 1, 0, PRP())
    with pytest.raises(NvmeArgumentError, match="qid"):
        IOCQ(nvme0, 0x10000, 4, PRP())
    with pytest.raises(NvmeArgumentError, match="prp1"):
        IOCQ(nvme0, 1, 4, 0x1000)
    cq = IOCQ(nvme0, 1, 4, PRP())
    with pytest.raises(NvmeArgumentError, match="qprio"):
        IOSQ(nvme0, 1, 4, PRP(), cq=cq, qprio=4)
    with pytest.raises(NvmeArgumentError, match="cqid"):
        IOSQ(nvme0, 1, 4, PRP(), cq=cq, cqid=2)
    sq = IOSQ(nvme0, 1, 4, PRP(), cq=cq)
    with pytest.raises(NvmeArgumentError, match="lba_count"):
        sq.read(0, 1, 0, 0, prp1=PRP())
    with pytest.raises(NvmeArgumentError, match="sgl"):
        sq.read(0, 1, 0, 1, prp1=PRP(), sgl=DataBlockSGL(512))
    with pytest.raises(NvmeArgumentError, match="sqe"):
        sq[0] = [1, 2, 3]
    with pytest.raises(IndexError):
        sq[4] = SQE()
    with pytest.raises(IndexError):
        sq.wpointer = 4
    sq.delete()
    cq.delete()


def test_queue_ids_do_not_collide_with_qpairs(nvme0):
    cq = IOCQ(nvme0, 1, 4, PRP())
    qpair = Qpair(nvme0, 8)
    assert qpair.sqid != 1
    with pytest.raises(QpairCreationError):
        IOCQ(nvme0, qpair.sqid, 4, PRP())
    with pytest.raises(QpairCreationError):
        Qpair(nvme0, 8, sqid=1)
    cq.delete()
    Qpair(nvme0, 8, sqid=1).delete()
    qpair.delete()


def test_sgl_read_with_a_bit_bucket(nvme0):
    ns = Namespace(nvme0, 1)
    ss = ns.sector_size
    qpair = Qpair(nvme0, 8)
    src = Buffer(26 * ss, ptype=0xBEEF, pvalue=100)
    ns.write(qpair, src, 100, 26).waitdone()
    qpair.delete()
    cq = IOCQ(nvme0, 2, 10, PRP(10 * 16))
    sq = IOSQ(nvme0, 2, 10, PRP(10 * 64), cq=cq)
    s0, s1, s2 = SegmentSGL(32), SegmentSGL(48), LastSegmentSGL(16)
    d0, d1, d2 = DataBlockSGL(6 * ss), DataBlockSGL(8 * ss), DataBlockSGL(8 * ss)
    s0[0] = d0
    s0[1] = s1
    s1[0] = d1
    s1[1] = BitBucketSGL(4 * ss)
    s1[2] = s2
    s2[0] = d2
    sq.read(cid=0, nsid=1, lba=100, lba_count=26, sgl=s0)
    del s1, s2  # the SQ keeps what the device reads alive
    sq.tail = sq.wpointer
    cq.waitdone()
    cq.head = cq.rpointer
    assert cq[0].status == 0
    assert d0[:] == src[0 : 6 * ss]
    assert d1[:] == src[6 * ss : 14 * ss]
    assert d2[:] == src[18 * ss : 26 * ss]
    sq.delete()
    cq.delete()
    ns.close()


def test_a_queue_in_pages_of_a_prp_list(nvme0):
    """The host reads a non-contiguous CQ through its PRP list; the simulated SSD requires
    contiguous queues (CAP.CQR), so it refuses to create it with Invalid Field."""
    lst = PRPList()
    pages = [PRP(), PRP()]
    lst[0], lst[1] = pages
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        cq = IOCQ(nvme0, 1, 512, lst, pc=False)
    pages[1][256 * 16 - 4096 + 12 : 256 * 16 - 4096 + 16] = b"\x05\x00\x01\x00"
    assert (cq[0].p, cq[256].cid, cq[256].p) == (0, 5, 1)
