"""The example scripts of the PyNVMe3 Script Development Guide, made to run.

Each test is the guide's script with the lines the guide's text describes, plus assertions on what
the guide says should happen, so the examples stay true on this platform and on any drive. A
command of an example that completes with an error status fails the test: the examples only send
commands the guide expects to succeed, and where one may fail the test says so itself.
"""

import logging
import time
import warnings

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")


@pytest.mark.device
def test_dut_firmware_and_model_name(nvme0: Controller, nvme0n1: Namespace):
    # print Model Number
    logging.info("model name: %s", nvme0.id_data(63, 24, str))
    logging.info("current firmware version: %s", nvme0.id_data(71, 64, str))
    logging.info("PyNVMe3 conformance test: " + __version__)
    b = Buffer(4096)
    nvme0.identify(b).waitdone()
    assert nvme0.id_data(63, 24, str) == b.data(63, 24, str)
    assert nvme0.id_data(71, 64, str) == b.data(71, 64, str)
    assert nvme0.id_data(63, 24, str), "empty model number"


@pytest.mark.device
def test_write_read(nvme0n1, qpair):
    read_buf = Buffer(4096)
    write_buf = Buffer(4096, ptype=32, pvalue=0x12345678)
    n = 4096 // nvme0n1.sector_size
    nvme0n1.write(qpair, write_buf, 0, n).waitdone()
    nvme0n1.read(qpair, read_buf, 0, n).waitdone()
    assert read_buf == write_buf


@pytest.mark.device
def test_io_callback(nvme0, nvme0n1, qpair):
    read_buf = Buffer(4096)
    write_buf = Buffer(4096, ptype=32, pvalue=0xCAFEBABE)

    def write_cb(cqe):
        nvme0n1.read(qpair, read_buf, 0)

    nvme0n1.write(qpair, write_buf, 0, cb=write_cb)
    qpair.waitdone(2)
    ss = nvme0n1.sector_size
    assert read_buf[0:ss] == write_buf[0:ss]


@pytest.mark.device
def test_io_callback_cdw0(nvme0n1, qpair):
    write_buf = Buffer(4096)

    # issue write and read command
    cdw0 = None

    def write_cb(cqe):  # command callback function
        nonlocal cdw0
        cdw0 = cqe[0]

    nvme0n1.write(qpair, write_buf, 0, 1, cb=write_cb).waitdone()
    assert cdw0 is not None, "the callback was not called"


@pytest.mark.device
def test_write_read_verify(nvme0n1, qpair, buf, verify):
    nvme0n1.write(qpair, buf, 0).waitdone()
    nvme0n1.read(qpair, buf, 0).waitdone()


@pytest.mark.device
@pytest.mark.parametrize("lba_start", [0, 1, 8, 32])
@pytest.mark.parametrize("lba_count", [1, 8, 9, 32])
def test_write_lba(nvme0, nvme0n1, qpair, lba_start, lba_count):
    buf = Buffer(nvme0n1.sector_size * lba_count)
    nvme0n1.write(qpair, buf, lba_start, lba_count).waitdone()


@pytest.mark.device
def test_read(nvme0n1, qpair):
    read_buf = Buffer(nvme0n1.sector_size)
    nvme0n1.read(qpair, read_buf, 0, 1).waitdone()


@pytest.mark.device
def test_trim(nvme0n1, qpair):
    buf_dsm = Buffer(4096)
    buf_dsm.set_dsm_range(0, 0, 1)
    buf_dsm.set_dsm_range(1, 2, 1)
    buf_dsm.set_dsm_range(2, 3, 1)
    # Range 1 at bytes 31:16: attributes, LBA count, starting LBA.
    assert (buf_dsm.data(19, 16), buf_dsm.data(23, 20), buf_dsm.data(31, 24)) == (0, 1, 2)
    nvme0n1.dsm(qpair, buf_dsm, 3).waitdone()


@pytest.mark.device
def test_prp_page_offset(nvme0n1, qpair):
    ss = nvme0n1.sector_size
    read_buf = Buffer(ss + 3)
    read_buf.offset = 3
    read_buf.size = ss
    got = []
    with warnings.catch_warnings():
        # A PRP offset that is not dword aligned may be rejected: 00/13 PRP Offset Invalid.
        warnings.filterwarnings("ignore", "ERROR status: 00/13")
        nvme0n1.read(qpair, read_buf, 0, 1, cb=got.append).waitdone()
    assert (got[0].sct, got[0].sc) in ((0, 0), (0, 0x13))


@pytest.mark.device
def test_sgl_buffer(nvme0n1, qpair, buf, id_ctrl_buf):
    if id_ctrl_buf.data(539, 536) & 0x3 == 0:
        pytest.skip("SGLs not supported (SGLS bits 1:0)")
    buf.sgl = True
    nvme0n1.read(qpair, buf, 0).waitdone()


@pytest.mark.device
def test_bar0_access(pcie, nvme0):
    assert pcie.mem_qword_read(0) == nvme0.cap


@pytest.mark.device
def test_pcie_flr_reset(pcie, nvme0):
    pcie.flr()
    nvme0.reset()
    nvme0.timeout = 2000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nvme0.getfeatures(7).waitdone()


def nvme_init_user_defined(nvme0):
    # 1. disable cc.en
    nvme0[0x14] = 0

    # 2. and wait csts.rdy to 0
    nvme0.wait_csts(rdy=False)

    # 3. set admin queue registers
    if nvme0.init_adminq() < 0:
        raise NvmeEnumerateError("fail to init admin queue")

    # 4. set register cc
    nvme0[0x14] = 0x00460000

    # 5. enable cc.en
    nvme0[0x14] = 0x00460001

    # 6. wait csts.rdy to 1
    nvme0.wait_csts(rdy=True)

    # 7. identify controller and all namespaces
    identify_buf = Buffer(4096)
    nvme0.identify(identify_buf).waitdone()
    if nvme0.init_ns() < 0:
        raise NvmeEnumerateError("retry init namespaces failed")

    # 8. set/get num of queues
    nvme0.setfeatures(0x7, cdw11=0xFFFEFFFE, nsid=0).waitdone()
    cdw0 = nvme0.getfeatures(0x7, nsid=0).waitdone()
    nvme0.init_queues(cdw0)

    # 9. send out all AER commands
    aerl = nvme0.id_data(259) + 1
    for _ in range(aerl):
        nvme0.aer()


@pytest.mark.device
def test_user_defined_nvme_init(pcie):
    nvme0 = Controller(pcie, nvme_init_func=nvme_init_user_defined)
    nvme0n1 = Namespace(nvme0, 1)
    qpair = Qpair(nvme0, 16)
    w = Buffer(nvme0n1.sector_size, ptype=32, pvalue=0x1234ABCD)
    r = Buffer(nvme0n1.sector_size)
    nvme0n1.write(qpair, w, 0).waitdone()
    nvme0n1.read(qpair, r, 0).waitdone()
    assert r == w
    # The init function runs again at reset.
    qpair.delete()
    nvme0.reset()
    assert nvme0[0x14] == 0x00460001
    nvme0n1.close()


@pytest.mark.device
def test_admin_cmd(nvme0, buf):
    nvme0.getlogpage(2, buf, 512).waitdone()
    nvme0.send_cmd(0xA, nsid=1, cdw10=7).waitdone()


@pytest.mark.device
def test_callback_function(nvme0):
    cdw0 = 0
    called = False

    def _getfeatures_cb(cqe):
        nonlocal cdw0, called
        cdw0 = cqe[0]
        called = True
        logging.info("getfeatures command completed")

    nvme0.getfeatures(7, cb=_getfeatures_cb).waitdone()
    num_of_queue = (cdw0 & 0xFFFF) + 1
    assert called and num_of_queue >= 1


@pytest.mark.device
def test_get_num_of_queue(nvme0):
    cdw0 = nvme0.getfeatures(7).waitdone()
    num_of_queue = (cdw0 & 0xFFFF) + 1
    assert 1 <= num_of_queue <= 65535


@pytest.mark.device
def test_latest_cid_latency(nvme0, nvme0n1):
    nvme0.format(nsid=nvme0n1.nsid, lbaf=nvme0n1.get_lba_format(nvme0n1.sector_size, 0)).waitdone()
    logging.info("latest cid: %d", nvme0.latest_cid)
    logging.info("latest command latency: %d", nvme0.latest_latency)
    assert nvme0.latest_latency > 0
    cids = []
    nvme0.getfeatures(7, cb=lambda cqe: cids.append(cqe.cid)).waitdone()
    assert nvme0.latest_cid == cids[0]


@pytest.mark.device
def test_get_lba_format(nvme0, nvme0n1):
    fid = nvme0.get_lba_format(data_size=nvme0n1.sector_size, meta_size=0, nsid=1)
    assert fid is not None
    assert fid == nvme0n1.get_lba_format(nvme0n1.sector_size, 0)


@pytest.mark.device
def test_controller_support_format(nvme0, id_ctrl_buf):
    if not id_ctrl_buf.data(261) & 0x2:
        pytest.skip("Commands Supported and Effects log not supported (LPA bit 1)")
    if nvme0.supports(0x80):
        nvme0.format().waitdone()
    assert nvme0.supports(0x80) == bool(id_ctrl_buf.data(256) & 0x2)
    assert nvme0.supports(0x06), "Identify is mandatory"


@pytest.mark.device
def test_timestamp(nvme0, oncs):
    if not oncs & (1 << 6):
        pytest.skip("Timestamp feature not supported (ONCS bit 6)")
    logging.info("currect timestamp: %s", nvme0.timestamp())
    first = nvme0.timestamp()
    time.sleep(0.01)
    assert nvme0.timestamp() > first


@pytest.mark.device
def test_identify(id_ctrl, id_ns, id_ctrl_buf, id_ns_buf):
    logging.info(id_ctrl.mn)
    logging.info(id_ns.nsze)
    assert id_ctrl.vid == id_ctrl_buf.data(1, 0)
    assert id_ctrl.mn == id_ctrl_buf.data(63, 24, str)
    assert id_ctrl.sqes == id_ctrl_buf.data(512)
    assert id_ctrl.nn == id_ctrl_buf.data(519, 516)
    assert id_ns.nsze == id_ns_buf.data(7, 0)
    assert id_ns.flbas == id_ns_buf.data(26)


@pytest.mark.device
def test_timeout_format(nvme0):
    nvme0.timeout = 10_000  # 10s
    nvme0.set_timeout_ms(opcode=0x80, msec=30_000)
    assert nvme0.timeout == 10_000
    assert nvme0.get_timeout_ms(0x80) == 30_000
    nvme0.format().waitdone()
    # After each reset, all timeouts are back to the default.
    nvme0.reset()
    assert nvme0.get_timeout_ms(0x80) == 10_000


@pytest.mark.device
def test_namespace_format(nvme0n1):
    nvme0n1.format(nvme0n1.sector_size)


@pytest.mark.device
def test_command_log(nvme0, nvme0n1, qpair, buf):
    nvme0n1.read(qpair, buf, 0).waitdone()
    nvme0.getfeatures(7).waitdone()
    for c in nvme0.cmdlog_merged(100):  # cmdlog of all queues
        logging.info(c)
    for c in nvme0.cmdlog(10):  # cmdlog of the admin queues
        logging.info(c)
    assert "Get Features" in nvme0.cmdlog(1)[0]
    assert "Read" in qpair.cmdlog(1)[0]


@pytest.mark.device
def test_read_invalid_number_blocks(nvme0, nvme0n1, qpair):
    if nvme0.mdts >= 2 << 20:
        pytest.skip("MDTS at the driver's limit")
    mdts = nvme0.mdts // nvme0n1.sector_size
    buf = Buffer((mdts + 1) * nvme0n1.sector_size)
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0n1.read(qpair, buf, 0, mdts + 1).waitdone()


@pytest.mark.device
def test_ring_admin_queue_doorbell(nvme0):
    def nvme_init_admin_lazy_doorbell(nvme0):
        # 1. disable cc.en
        nvme0[0x14] = 0

        # 2. and wait csts.rdy to 0
        nvme0.wait_csts(rdy=False)

        # 3. set admin queue registers
        if nvme0.init_adminq(lazy_doorbell=True) < 0:
            raise NvmeEnumerateError("fail to init admin queue")

        # 4. set register cc
        nvme0[0x14] = 0x00460000

        # 5. enable cc.en
        nvme0[0x14] = 0x00460001

        # 6. wait csts.rdy to 1
        nvme0.wait_csts(rdy=True)

        # 7. identify controller and all namespaces
        identify_buf = Buffer(4096)
        nvme0.identify(identify_buf).waitdone()
        if nvme0.init_ns() < 0:
            raise NvmeEnumerateError("retry init namespaces failed")

        # 8. set/get num of queues
        nvme0.setfeatures(0x7, cdw11=0xFFFEFFFE, nsid=0).waitdone()
        cdw0 = nvme0.getfeatures(0x7, nsid=0).waitdone()
        nvme0.init_queues(cdw0)

    # use the user defined nvme init function to reset the controller
    nvme0.nvme_init_func = nvme_init_admin_lazy_doorbell
    nvme0.reset()

    done = []
    nvme0.getfeatures(7, cb=done.append)
    nvme0.getfeatures(7, cb=done.append)
    nvme0.getfeatures(7, cb=done.append)
    # the doorbell is rung once, here, for the 3 commands
    nvme0.waitdone(3)
    assert len(done) == 3
    assert len({c.cid for c in done}) == 3
    assert all(c.status == 0 for c in done)


@pytest.mark.device
def test_qpair(nvme0):
    qpair = Qpair(nvme0, depth=16)
    qpair.delete()


@pytest.mark.device
def test_interrupt_qpair_msix_mask(nvme0, nvme0n1, buf, qpair):
    # create a pair of CQ/SQ and clear MSIx interrupt
    qpair.msix_clear()
    assert not qpair.msix_isset()

    # send a read command
    nvme0n1.read(qpair, buf, 0, 4096 // nvme0n1.sector_size).waitdone()

    # check if the MSIx interrupt is set up
    assert qpair.msix_isset()

    # clear MSIx interrupt and mask it
    qpair.msix_clear()
    qpair.msix_mask()
    assert not qpair.msix_isset()

    # send a read command
    nvme0n1.read(qpair, buf, 0, 4096 // nvme0n1.sector_size).waitdone()

    # check if the MSIx interrupt is NOT set up
    assert not qpair.msix_isset()

    # unmask the MSIx interrupt
    qpair.msix_unmask()

    # check if the MSIx interrupt is set up
    assert qpair.wait_msix(1.0)
    assert qpair.msix_isset()


@pytest.mark.device
def test_ioworker_with_qpair_lazy_doorbell(nvme0, nvme0n1, buf):
    qpair = Qpair(nvme0, 1024, ien=False, lazy_doorbell=True)
    nvme0n1.read(qpair, buf, 0)
    nvme0n1.read(qpair, buf, 0)
    nvme0n1.read(qpair, buf, 0)
    qpair.waitdone(3)
    qpair.delete()


@pytest.mark.device
def test_reset_controller_with_outstanding_commands(nvme0, nvme0n1, qpair, buf):
    for i in range(8):
        nvme0n1.read(qpair, buf, i)
    nvme0.reset()
    # The reads the reset aborted complete once each, with 00/08, through their own queue.
    with pytest.warns(UserWarning, match="ERROR status: 00/08"):
        qpair.waitdone(8)
    nvme0n1.read(qpair, buf, 0).waitdone()


@pytest.mark.device
def test_sq_doorbell_invalid(nvme0, raw_queues, buf):
    qid = raw_queues.top_qid()
    raw_queues.create_cq(qid, 10)
    raw_queues.create_sq(qid, 10, cqid=qid)

    with pytest.warns(UserWarning, match="AER notification is triggered: 0x10100"):
        nvme0[raw_queues.sq_tail_doorbell(qid)] = 10
        nvme0.getfeatures(7).waitdone()
    nvme0.getlogpage(1, buf, 512).waitdone()
