"""Controller: registers, admin commands, callbacks, waitdone, AER, timeouts, cmdlog, reset.

Every behaviour the PyNVMe3 guide's admin examples rely on, checked on the simulated SSD: the
value waitdone() returns, both callback forms, callbacks that submit commands, the re-entry
guard, AER warnings and re-arming, per-opcode timeouts, the cmdlog format, init functions and
resets with commands outstanding.
"""

import re
import time
import warnings

import pytest

from nvme import *


def identify(nvme0, nsid=0, cns=1):
    b = Buffer(4096)
    nvme0.identify(b, nsid=nsid, cns=cns).waitdone()
    return b


# ---- registers ---------------------------------------------------------------------------


def test_registers_by_index(nvme0):
    assert nvme0[0x14] == 0x00460001, "CC after the default init"
    assert nvme0[0x1C] & 1 == 1, "CSTS.RDY"
    assert nvme0.cap == nvme0[0x00] | nvme0[0x04] << 32
    assert nvme0[0x08] == 0x00020000, "the simulated SSD reports NVMe 2.0"


def test_register_write_disables_controller(nvme0):
    nvme0[0x14] = 0
    assert nvme0.wait_csts(rdy=False)
    assert nvme0[0x1C] & 1 == 0
    nvme0.reset()
    assert nvme0[0x1C] & 1 == 1


@pytest.mark.parametrize(("uri", "mdts"), [("sim://?mdts=3", 32768), ("sim://?mdts=5", 131072)])
def test_mdts_in_bytes(uri, mdts):
    pcie = Pcie(uri)
    try:
        assert Controller(pcie).mdts == mdts
    finally:
        pcie.close()


def test_mdts_unlimited_is_capped_at_2m():
    pcie = Pcie("sim://?mdts=0")
    try:
        assert Controller(pcie).mdts == 2 << 20
    finally:
        pcie.close()


def test_repr(nvme0):
    assert repr(nvme0) == "<controller: sim://>"


# ---- identify --------------------------------------------------------------------------------


def test_identify_into_buffer(nvme0):
    b = identify(nvme0)
    assert b.data(63, 24, str) == "pynvme-rs simulated SSD"
    assert b.data(23, 4, str) == "SIM0000000000000001"
    assert b.data(512) == 0x66 and b.data(513) == 0x44


def test_identify_model_and_serial_from_uri():
    pcie = Pcie("sim://?serial=ABC123&model=Test+Drive&fw=2.5")
    try:
        b = identify(Controller(pcie))
        assert b.data(23, 4, str) == "ABC123"
        assert b.data(63, 24, str) == "Test Drive"
        assert b.data(71, 64, str) == "2.5"
    finally:
        pcie.close()


def test_id_data_matches_identify(nvme0):
    b = identify(nvme0)
    assert nvme0.id_data(63, 24, str) == b.data(63, 24, str) == "pynvme-rs simulated SSD"
    assert nvme0.id_data(77) == b.data(77) == 5, "MDTS of the simulated SSD"
    assert nvme0.id_data(519, 516) == b.data(519, 516) == 32, "NN: max_namespaces"


def test_id_ctrl_fields_by_spec_name(nvme0, id_ctrl):
    b = identify(nvme0)
    assert id_ctrl.mn == b.data(63, 24, str)
    assert id_ctrl.sn == b.data(23, 4, str)
    assert id_ctrl.mdts == b.data(77)
    assert id_ctrl.sqes == 0x66 and id_ctrl.cqes == 0x44
    assert id_ctrl.nn == b.data(519, 516)
    assert id_ctrl.oncs == b.data(521, 520)
    assert id_ctrl.raw == b[0:4096]


def test_id_ctrl_unknown_field(id_ctrl):
    with pytest.raises(AttributeError, match="nosuchfield"):
        _ = id_ctrl.nosuchfield


def test_supports(nvme0):
    assert nvme0.supports(0x06)
    assert nvme0.supports(0x80)
    assert nvme0.supports(256 + 0x02)
    assert not nvme0.supports(0x7F)


def test_timestamp_is_recent(nvme0):
    # The simulated SSD's timestamp counts from the power on, or the host's set value.
    nvme0.setfeatures(0x0E, buf=_timestamp_buffer(int(time.time() * 1000))).waitdone()
    assert abs(nvme0.timestamp() - time.time() * 1000) < 10_000


def _timestamp_buffer(ms):
    b = Buffer(8)
    b[0:6] = ms.to_bytes(6, "little")
    return b


def test_get_lba_format():
    pcie = Pcie("sim://?lba=4096")
    try:
        nvme0 = Controller(pcie)
        assert nvme0.get_lba_format(512, 0) == 0
        assert nvme0.get_lba_format(4096, 0) == 2
        assert nvme0.get_lba_format(4096, 8) == 3
        assert nvme0.get_lba_format(1024, 0) is None
    finally:
        pcie.close()


# ---- admin commands and waitdone -------------------------------------------------------------


def test_waitdone_returns_cdw0(nvme0):
    cdw0 = nvme0.getfeatures(7).waitdone()
    assert cdw0 == 0x003F003F, "64 IO queues of each kind"


def test_commands_chain(nvme0):
    assert nvme0.getfeatures(7) is nvme0


def test_waitdone_many(nvme0):
    for _ in range(5):
        nvme0.getfeatures(7)
    assert nvme0.waitdone(5) == 0x003F003F


def test_waitdone_with_nothing_outstanding_raises(nvme0):
    start = time.time()
    with pytest.raises(AssertionError, match="none is outstanding"):
        nvme0.waitdone()
    assert time.time() - start < 1


def test_waitdone_more_than_outstanding_raises(nvme0):
    nvme0.getfeatures(7)
    with pytest.raises(AssertionError):
        nvme0.waitdone(2)


def test_waitdone_zero_returns_at_once(nvme0):
    start = time.time()
    nvme0.waitdone(0)  # nothing outstanding: neither an error nor a wait
    nvme0.getfeatures(7)
    nvme0.waitdone(0)  # reaps nothing: the command is still there for the next waitdone
    assert nvme0.waitdone(1) == 0x003F003F, "Number of Queues: 64 SQs and CQs"
    assert time.time() - start < 1


def test_callback_receives_cqe(nvme0):
    got = []
    nvme0.getfeatures(7, cb=got.append).waitdone()
    cqe = got[0]
    assert isinstance(cqe, CQE)
    assert cqe[0] == cqe.cdw0 == 0x003F003F
    assert cqe.sqid == 0
    assert cqe.cid == nvme0.latest_cid
    assert (cqe.sct, cqe.sc, cqe.status, cqe.p) == (0, 0, 0, 1)
    assert len(cqe) == 4 and cqe[3] >> 16 == 1


def test_callback_pynvme_two_argument_form(nvme0):
    got = []

    def cb(cdw0, status1):
        got.append((cdw0, status1))

    nvme0.getfeatures(7, cb=cb).waitdone()
    with pytest.warns(UserWarning, match="ERROR status: 00/01"):
        nvme0.send_cmd(0x7F, cb=cb).waitdone()
    # status1: the upper half of CQE dword 3, phase tag in bit 0, SC in bits 8:1, DNR bit 15.
    assert got[0] == (0x003F003F, 0x0001)
    assert got[1][1] & 0x1FE == 0x01 << 1
    assert (got[1][1] >> 9) & 0x7 == 0


def test_callback_lambda(nvme0):
    got = []
    nvme0.getfeatures(7, cb=lambda cqe: got.append(cqe.cdw0)).waitdone()
    assert got == [0x003F003F]


def test_callback_submits_more_commands(nvme0):
    order = []

    def second(cqe):
        order.append("second")

    def first(cqe):
        order.append("first")
        nvme0.getfeatures(7, cb=second)

    nvme0.getfeatures(7, cb=first)
    nvme0.waitdone(2)
    assert order == ["first", "second"]


def test_waitdone_in_callback_is_refused(nvme0):
    errors = []

    def cb(cqe):
        try:
            nvme0.waitdone()
        except AssertionError as e:
            errors.append(str(e))

    nvme0.getfeatures(7, cb=cb).waitdone()
    assert len(errors) == 1
    assert errors[0].startswith("cannot re-entry waitdone()")


def test_waitdone_in_callback_uncaught_is_an_assert_warning(nvme0):
    with pytest.warns(UserWarning, match="ASSERT: cannot re-entry waitdone"):
        nvme0.getfeatures(7, cb=lambda cqe: nvme0.waitdone()).waitdone()


def test_latest_cid_and_latency(pcie, nvme0):
    cids = []
    nvme0.getfeatures(7, cb=lambda c: cids.append(c.cid)).waitdone()
    assert nvme0.latest_cid == cids[0]
    pcie.sim.inject("delay", 30, admin=True, opcode=0x0A, count=1)
    nvme0.getfeatures(7)
    assert nvme0.latest_cid != cids[0], "latest_cid is the latest submitted command"
    nvme0.waitdone()
    # The device held the completion 30 ms: the latency is of this command, in µs.
    assert 30_000 <= nvme0.latest_latency < 10_000_000


def test_send_cmd_raw(nvme0):
    b = Buffer(4096)
    nvme0.send_cmd(0x06, b, nsid=0, cdw10=1).waitdone()
    assert b.data(63, 24, str) == "pynvme-rs simulated SSD"
    assert nvme0.send_cmd(0x0A, nsid=1, cdw10=7).waitdone() == 0x003F003F


def test_setfeatures_getfeatures_roundtrip(nvme0):
    nvme0.setfeatures(4, cdw11=345).waitdone()
    assert nvme0.getfeatures(4).waitdone() == 345


def test_getlogpage_smart(nvme0):
    b = Buffer(512)
    nvme0.getlogpage(2, b, 512).waitdone()
    assert b.data(2, 1) == 310, "the simulated SSD's default temperature"


def test_getlogpage_smart_temperature_from_uri():
    pcie = Pcie("sim://?temperature=330")
    try:
        nvme0 = Controller(pcie)
        b = Buffer(512)
        nvme0.getlogpage(2, b, 512).waitdone()
        assert b.data(2, 1) == 330
    finally:
        pcie.close()


def test_format_erases_data(nvme0, nvme0n1, qpair):
    w = Buffer(512, ptype=32, pvalue=0xDEADBEEF)
    nvme0n1.write(qpair, w, 5).waitdone()
    nvme0.format().waitdone()
    r = Buffer(512, pvalue=1)
    nvme0n1.read(qpair, r, 5).waitdone()
    assert r[0:512] == bytes(512)


# ---- AER -------------------------------------------------------------------------------------


def _invalid_doorbell(nvme0, qid, cq, sq):
    nvme0.send_cmd(0x05, cq, cdw10=(15 << 16) | qid, cdw11=1).waitdone()
    nvme0.send_cmd(0x01, sq, cdw10=(15 << 16) | qid, cdw11=(qid << 16) | 1).waitdone()
    nvme0[0x1000 + 8 * qid] = 20
    time.sleep(0.05)


def _delete(nvme0, qid):
    nvme0.send_cmd(0x00, cdw10=qid).waitdone()
    nvme0.send_cmd(0x04, cdw10=qid).waitdone()


def test_aer_warning_and_rearm(nvme0):
    cq, sq, log = Buffer(4096), Buffer(4096), Buffer(512)
    for _ in range(2):
        with pytest.warns(UserWarning, match="AER notification is triggered: 0x10100"):
            _invalid_doorbell(nvme0, 10, cq, sq)
            nvme0.getfeatures(7).waitdone()
        nvme0.getlogpage(1, log, 64).waitdone()
        _delete(nvme0, 10)


def test_aer_callback_is_remembered(nvme0):
    got = []
    # Use up the AER of the default init first.
    cq, sq, log = Buffer(4096), Buffer(4096), Buffer(512)
    with pytest.warns(UserWarning, match="AER notification"):
        _invalid_doorbell(nvme0, 9, cq, sq)
        nvme0.getfeatures(7).waitdone()
    nvme0.getlogpage(1, log, 64).waitdone()
    _delete(nvme0, 9)
    nvme0.aer(cb=lambda cqe: got.append(cqe.cdw0))
    for _ in range(2):
        with pytest.warns(UserWarning, match="AER notification is triggered: 0x10100"):
            _invalid_doorbell(nvme0, 9, cq, sq)
            nvme0.getfeatures(7).waitdone()
        nvme0.getlogpage(1, log, 64).waitdone()
        _delete(nvme0, 9)
    assert 0x10100 in got


def test_aer_does_not_count_for_waitdone(nvme0):
    cq, sq = Buffer(4096), Buffer(4096)
    with pytest.warns(UserWarning, match="AER notification"):
        _invalid_doorbell(nvme0, 8, cq, sq)
        # One non-AER completion is expected: the AER completion does not satisfy it.
        assert nvme0.getfeatures(7).waitdone(1) == 0x003F003F
    nvme0.getlogpage(1, Buffer(512), 64).waitdone()
    _delete(nvme0, 8)


# ---- timeouts --------------------------------------------------------------------------------


def test_timeout_default_and_reset(nvme0):
    assert nvme0.timeout == 10_000
    nvme0.timeout = 2_000
    nvme0.set_timeout_ms(0x80, 30_000)
    assert (nvme0.timeout, nvme0.get_timeout_ms(0x80), nvme0.get_timeout_ms(0x06)) == (
        2_000,
        30_000,
        2_000,
    )
    nvme0.reset()
    assert nvme0.timeout == 10_000
    assert nvme0.get_timeout_ms(0x80) == 10_000


def test_admin_command_timeout(pcie, nvme0):
    pcie.sim.inject("delay", 500, admin=True, opcode=0x0A, count=1)
    nvme0.set_timeout_ms(0x0A, 50)
    start = time.time()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        cdw0 = nvme0.getfeatures(7).waitdone()
    assert time.time() - start < 0.4, "waitdone did not end at the command's timeout"
    texts = [str(w.message) for w in record]
    assert texts[0] == f"drive timeout: qpair: 0, cid: {nvme0.latest_cid}"
    assert texts[1] == "ERROR status: 07/ff"
    assert cdw0 == 0xFFFFFFFF
    assert "[cpl: TIMEOUT]" in nvme0.cmdlog(1)[0]
    # The device's completion arrives later and is reported, not delivered twice.
    time.sleep(0.6)
    with pytest.warns(UserWarning, match="late completion on CQ 0 for cid"):
        assert nvme0.getfeatures(7).waitdone() == 0x003F003F


# ---- cmdlog ----------------------------------------------------------------------------------

ENTRY = re.compile(
    r"(?P<t0>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}) \[cmd(?P<cid>\d{6}): (?P<name>[^,]+), "
    r"sqid: (?P<sqid>\d+)\]\n"
    r"((0x[0-9a-f]{8}, ){3}0x[0-9a-f]{8}\n){4}"
    r"(?P<t1>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}) \[cpl: (?P<status>[A-Z ]+)\]\n"
    r"(0x[0-9a-f]{8}, ){3}0x[0-9a-f]{8}"
)


def test_cmdlog_format(nvme0):
    nvme0.getfeatures(7).waitdone()
    entry = nvme0.cmdlog(1)[0]
    m = ENTRY.fullmatch(entry)
    assert m, entry
    assert m["name"] == "Get Features" and m["sqid"] == "0" and m["status"] == "SUCCESS"
    assert int(m["cid"]) == nvme0.latest_cid
    assert m["t1"] >= m["t0"]
    sqe = entry.splitlines()[1]
    assert sqe.startswith(f"0x{nvme0.latest_cid:04x}000a, ")


def test_cmdlog_newest_first_and_error_status(nvme0):
    nvme0.getfeatures(7).waitdone()
    with pytest.warns(UserWarning):
        nvme0.send_cmd(0x7F).waitdone()
    log = nvme0.cmdlog(2)
    assert len(log) == 2
    assert "[cpl: INVALID OPCODE]" in log[0]
    assert "Get Features" in log[1]


def test_cmdlog_merged_includes_io(nvme0, nvme0n1, qpair, buf):
    nvme0n1.read(qpair, buf, 0).waitdone()
    nvme0.getfeatures(7).waitdone()
    merged = nvme0.cmdlog_merged(2)
    assert "Get Features, sqid: 0" in merged[0]
    assert f"Read, sqid: {qpair.sqid}" in merged[1]
    assert all(ENTRY.fullmatch(e) for e in merged)


# ---- init and reset --------------------------------------------------------------------------


def test_init_function_runs_at_creation_and_reset(pcie):
    calls = []

    def init(c):
        calls.append(c)
        c[0x14] = 0
        assert c.wait_csts(rdy=False)
        assert c.init_adminq() == 0
        c[0x14] = 0x00460001
        assert c.wait_csts(rdy=True)
        assert c.init_ns() == 0
        c.setfeatures(7, cdw11=0x00030003).waitdone()
        c.init_queues(c.getfeatures(7).waitdone())

    nvme0 = Controller(pcie, nvme_init_func=init)
    assert len(calls) == 1 and calls[0] is nvme0
    assert nvme0.getfeatures(7).waitdone() == 0x00030003
    nvme0.reset()
    assert len(calls) == 2
    # Only the 4 queues the init asked for are there.
    qpairs = [Qpair(nvme0, 2) for _ in range(4)]
    with pytest.raises(QpairCreationError):
        Qpair(nvme0, 2)
    for q in qpairs:
        q.delete()


def test_init_function_assigned_later(nvme0):
    calls = []

    def init(c):
        calls.append(1)
        c[0x14] = 0
        c.wait_csts(rdy=False)
        c.init_adminq()
        c[0x14] = 0x00460001
        c.wait_csts()
        c.init_ns()

    nvme0.nvme_init_func = init
    nvme0.reset()
    assert calls == [1]


def test_init_function_exception_propagates(pcie):
    def init(c):
        raise NvmeEnumerateError("fail to init admin queue")

    with pytest.raises(NvmeEnumerateError, match="fail to init admin queue"):
        Controller(pcie, nvme_init_func=init)


def _admin_vector_fires_before_waitdone(nvme0):
    # A qpair on vector 0 shares the admin CQ's interrupt: it shows when the device completed
    # an admin command, before the script reaps it.
    q = Qpair(nvme0, 2, iv=0)
    try:
        q.msix_clear()
        got = []
        nvme0.getfeatures(7, cb=got.append)
        fired = q.wait_msix(0.2)
        nvme0.waitdone()
        assert len(got) == 1
        return fired
    finally:
        q.delete()


def test_admin_doorbell_rung_at_submission(nvme0):
    assert _admin_vector_fires_before_waitdone(nvme0)


def test_lazy_admin_doorbell(nvme0):
    def init(c):
        c[0x14] = 0
        c.wait_csts(rdy=False)
        c.init_adminq(lazy_doorbell=True)
        c[0x14] = 0x00460001
        c.wait_csts()
        c.init_ns()
        c.setfeatures(7, cdw11=0xFFFEFFFE).waitdone()
        c.init_queues(c.getfeatures(7).waitdone())

    nvme0.nvme_init_func = init
    nvme0.reset()
    assert not _admin_vector_fires_before_waitdone(nvme0), "the doorbell was rung at submission"
    got = []
    for _ in range(3):
        nvme0.getfeatures(7, cb=got.append)
    nvme0.waitdone(3)
    assert len(got) == 3


def test_reset_with_commands_outstanding(nvme0, nvme0n1, qpair, buf):
    dropped = []
    w = Buffer(512, ptype=32, pvalue=0xAB)
    nvme0n1.write(qpair, w, 3).waitdone()
    for i in range(16):
        nvme0n1.read(qpair, buf, i, cb=dropped.append)
    admin = []
    nvme0.getfeatures(7, cb=lambda cdw0, status1: admin.append(status1 >> 1))
    # The script's admin command completes during the reset, as in pynvme, aborted (00/08).
    with pytest.warns(UserWarning, match="ERROR status: 00/08"):
        nvme0.reset()
    assert admin == [0x08]
    # The reads the reset abandoned complete once each, through their own queue, as aborted.
    with pytest.warns(UserWarning, match="ERROR status: 00/08"):
        qpair.waitdone(16)
    assert len(dropped) == 16
    assert {(c.sct, c.sc) for c in dropped} == {(0, 8)}
    # The qpair is re-created by the reset and works.
    r = Buffer(512)
    nvme0n1.read(qpair, r, 3).waitdone()
    assert r == w
    assert nvme0.getfeatures(7).waitdone() == 0x003F003F
    with pytest.raises(AssertionError):
        qpair.waitdone()


def test_reset_restores_registers(nvme0):
    nvme0[0x14] = 0
    nvme0.wait_csts(rdy=False)
    nvme0.reset()
    assert nvme0[0x14] == 0x00460001
