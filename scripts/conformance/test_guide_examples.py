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
    """id_data() returns the model number and firmware revision Identify reports.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 5.17.2.1 (MN, FR).

    Steps:
    1. Log MN and FR through id_data().
    2. Compare with an Identify Controller read into a Buffer; MN is not empty.
    """
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
    """4 KiB written at LBA 0 reads back identical.

    Spec: PyNVMe3 Script Development Guide example; NVM command set spec 3.2.4/3.2.6.

    Steps:
    1. Write a 4 KiB pattern at LBA 0.
    2. Read it back and compare.
    """
    read_buf = Buffer(4096)
    write_buf = Buffer(4096, ptype=32, pvalue=0x12345678)
    n = 4096 // nvme0n1.sector_size
    nvme0n1.write(qpair, write_buf, 0, n).waitdone()
    nvme0n1.read(qpair, read_buf, 0, n).waitdone()
    assert read_buf == write_buf


@pytest.mark.device
def test_io_callback(nvme0, nvme0n1, qpair):
    """A write's callback can send a read on the same qpair; both complete.

    Spec: PyNVMe3 Script Development Guide example; NVM command set spec 3.2.4/3.2.6.

    Steps:
    1. Write with a callback that sends a read of LBA 0.
    2. Wait for two completions; compare the block.
    """
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
    """A one-argument callback receives the CQE (dword 0 readable).

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 4.6 Completion Queue
    Entry.

    Steps:
    1. Write one block with a callback that keeps cqe[0].
    2. Check the callback ran.
    """
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
    """With verification on, a write and a read of one block pass the check.

    Spec: PyNVMe3 Script Development Guide example; NVM command set spec 3.2.4/3.2.6.

    Steps:
    1. Enable verification (fixture).
    2. Write and read LBA 0 (a mismatch would fail with 07/81).
    """
    nvme0n1.write(qpair, buf, 0).waitdone()
    nvme0n1.read(qpair, buf, 0).waitdone()


@pytest.mark.device
@pytest.mark.parametrize("lba_start", [0, 1, 8, 32])
@pytest.mark.parametrize("lba_count", [1, 8, 9, 32])
def test_write_lba(nvme0, nvme0n1, qpair, lba_start, lba_count):
    """Writes of 1, 8, 9 and 32 blocks at LBAs 0, 1, 8 and 32 succeed.

    Spec: PyNVMe3 Script Development Guide example; NVM command set spec 3.2.6 Write.

    Steps:
    1. Write lba_count blocks at lba_start.
    2. Any error status fails the test.
    """
    buf = Buffer(nvme0n1.sector_size * lba_count)
    nvme0n1.write(qpair, buf, lba_start, lba_count).waitdone()


@pytest.mark.device
def test_read(nvme0n1, qpair):
    """A read of LBA 0 succeeds.

    Spec: PyNVMe3 Script Development Guide example; NVM command set spec 3.2.4 Read.

    Steps:
    1. Read one block at LBA 0; any error status fails the test.
    """
    read_buf = Buffer(nvme0n1.sector_size)
    nvme0n1.read(qpair, read_buf, 0, 1).waitdone()


@pytest.mark.device
def test_trim(nvme0n1, qpair):
    """Buffer.set_dsm_range fills DSM ranges as the spec lays them out; the DSM succeeds.

    Spec: PyNVMe3 Script Development Guide example; NVM command set spec 3.2.3 Dataset
    Management (range layout).

    Steps:
    1. Set three ranges.
    2. Check range 1's attributes, length and SLBA bytes.
    3. Send the DSM deallocate.
    """
    buf_dsm = Buffer(4096)
    buf_dsm.set_dsm_range(0, 0, 1)
    buf_dsm.set_dsm_range(1, 2, 1)
    buf_dsm.set_dsm_range(2, 3, 1)
    # Range 1 at bytes 31:16: attributes, LBA count, starting LBA.
    assert (buf_dsm.data(19, 16), buf_dsm.data(23, 20), buf_dsm.data(31, 24)) == (0, 1, 2)
    nvme0n1.dsm(qpair, buf_dsm, 3).waitdone()


@pytest.mark.device
def test_prp_page_offset(nvme0n1, qpair):
    """A read into a buffer at byte offset 3 succeeds or fails with PRP Offset Invalid.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 4.1.1 (PRP offset
    alignment), 4.2.3 (00/13).

    Steps:
    1. Read one block into a buffer at offset 3.
    2. Check the status is 00/00 or 00/13.
    """
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
    """A read into a Buffer described by an SGL succeeds.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 4.1.2 SGL.

    Steps:
    1. Skip unless SGLS bits 1:0.
    2. Read LBA 0 with buf.sgl = True.
    """
    if id_ctrl_buf.data(539, 536) & 0x3 == 0:
        pytest.skip("SGLs not supported (SGLS bits 1:0)")
    buf.sgl = True
    nvme0n1.read(qpair, buf, 0).waitdone()


@pytest.mark.device
def test_bar0_access(pcie, nvme0):
    """A 64-bit BAR0 read at 0 returns CAP.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 3.1.3.1 CAP.

    Steps:
    1. Read BAR0 offset 0 as a qword; compare with nvme0.cap.
    """
    assert pcie.mem_qword_read(0) == nvme0.cap


@pytest.mark.device
def test_pcie_flr_reset(pcie, nvme0):
    """After FLR and reinitialisation the admin queue answers without warnings.

    Spec: PyNVMe3 Script Development Guide example; PCIe base spec 6.6.2 Function Level Reset.

    Steps:
    1. FLR, then reset the controller.
    2. Get Features with any warning turned into an error.
    """
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
    """A script-written init function brings the controller up, and runs again at reset.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 3.5.1 Controller
    initialization.

    Steps:
    1. Create the controller with the init function (CC 00460001h).
    2. Write and read a block.
    3. Reset: CC is what the init function wrote.
    """
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
    """Get Log Page and a raw Get Features via send_cmd succeed.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 5.15, 5.16.

    Steps:
    1. Read the SMART log.
    2. Send opcode 0Ah, FID 7 with send_cmd.
    """
    nvme0.getlogpage(2, buf, 512).waitdone()
    nvme0.send_cmd(0xA, nsid=1, cdw10=7).waitdone()


@pytest.mark.device
def test_callback_function(nvme0):
    """A Get Features callback runs and receives the number of queues in dword 0.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 5.27.1.5 Number of
    Queues.

    Steps:
    1. Get Features FID 07h with a callback.
    2. Check the callback ran and NSQA >= 1.
    """
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
    """Number of Queues reports 1..65535 submission queues.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 5.27.1.5.

    Steps:
    1. Get Features FID 07h.
    2. Check NSQA.
    """
    cdw0 = nvme0.getfeatures(7).waitdone()
    num_of_queue = (cdw0 & 0xFFFF) + 1
    assert 1 <= num_of_queue <= 65535


@pytest.mark.device
def test_latest_cid_latency(nvme0, nvme0n1):
    """latest_latency and latest_cid describe the newest admin command.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 5.14 Format NVM.

    Steps:
    1. Format with the current format; check latest_latency > 0.
    2. Get Features with a callback; latest_cid is its CID.
    """
    nvme0.format(nsid=nvme0n1.nsid, lbaf=nvme0n1.get_lba_format(nvme0n1.sector_size, 0)).waitdone()
    logging.info("latest cid: %d", nvme0.latest_cid)
    logging.info("latest command latency: %d", nvme0.latest_latency)
    assert nvme0.latest_latency > 0
    cids = []
    nvme0.getfeatures(7, cb=lambda cqe: cids.append(cqe.cid)).waitdone()
    assert nvme0.latest_cid == cids[0]


@pytest.mark.device
def test_get_lba_format(nvme0, nvme0n1):
    """Controller and Namespace find the same LBA format for the current block size.

    Spec: PyNVMe3 Script Development Guide example; NVM command set spec 4.1.5.1 LBA Format.

    Steps:
    1. Look up the format of sector_size, no metadata, both ways.
    2. Compare.
    """
    fid = nvme0.get_lba_format(data_size=nvme0n1.sector_size, meta_size=0, nsid=1)
    assert fid is not None
    assert fid == nvme0n1.get_lba_format(nvme0n1.sector_size, 0)


@pytest.mark.device
def test_controller_support_format(nvme0, id_ctrl_buf):
    """supports() follows the effects log: Format as OACS says, Identify always.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 5.16.1.6 Commands
    Supported and Effects.

    Steps:
    1. Skip unless LPA bit 1.
    2. Format if supported.
    3. Check supports(80h) against OACS bit 1 and supports(06h).
    """
    if not id_ctrl_buf.data(261) & 0x2:
        pytest.skip("Commands Supported and Effects log not supported (LPA bit 1)")
    if nvme0.supports(0x80):
        nvme0.format().waitdone()
    assert nvme0.supports(0x80) == bool(id_ctrl_buf.data(256) & 0x2)
    assert nvme0.supports(0x06), "Identify is mandatory"


@pytest.mark.device
def test_timestamp(nvme0, oncs):
    """The controller timestamp advances.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 5.27.1.11 Timestamp.

    Steps:
    1. Skip unless ONCS bit 6.
    2. Read the timestamp twice 10 ms apart: it grew.
    """
    if not oncs & (1 << 6):
        pytest.skip("Timestamp feature not supported (ONCS bit 6)")
    logging.info("currect timestamp: %s", nvme0.timestamp())
    first = nvme0.timestamp()
    time.sleep(0.01)
    assert nvme0.timestamp() > first


@pytest.mark.device
def test_identify(id_ctrl, id_ns, id_ctrl_buf, id_ns_buf):
    """The id_ctrl/id_ns fixtures give the same fields as raw Identify data.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 5.17.2.1.

    Steps:
    1. Compare VID, MN, SQES, NN, NSZE and FLBAS both ways.
    """
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
    """A per-opcode timeout is kept until the next reset.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 5.14 Format NVM.

    Steps:
    1. Set 10 s default and 30 s for Format.
    2. Format; reset.
    3. Check the Format timeout is the default again.
    """
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
    """Namespace.format() to the current block size succeeds.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 5.14 Format NVM.

    Steps:
    1. Format the namespace with its own sector size.
    """
    nvme0n1.format(nvme0n1.sector_size)


@pytest.mark.device
def test_command_log(nvme0, nvme0n1, qpair, buf):
    """The command logs list the newest admin and IO commands.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 4.2 Submission Queue
    Entry.

    Steps:
    1. Read a block; Get Features.
    2. Check the newest admin entry is Get Features and the newest IO entry is Read.
    """
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
    """A read one block larger than MDTS fails with 00/02.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 5.17.2.1 MDTS.

    Steps:
    1. Skip if MDTS is at the driver's limit.
    2. Read MDTS + 1 blocks: 00/02.
    """
    if nvme0.mdts >= 2 << 20:
        pytest.skip("MDTS at the driver's limit")
    mdts = nvme0.mdts // nvme0n1.sector_size
    buf = Buffer((mdts + 1) * nvme0n1.sector_size)
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0n1.read(qpair, buf, 0, mdts + 1).waitdone()


@pytest.mark.device
def test_ring_admin_queue_doorbell(nvme0):
    """With a lazy admin doorbell, three commands go with one doorbell write.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 3.1.4 doorbells.

    Steps:
    1. Reinitialise with a lazy admin queue.
    2. Queue three Get Features; waitdone rings once.
    3. Check three successful completions with distinct CIDs.
    """

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
    """A qpair of 16 entries can be created and deleted.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 5.4/5.5, 5.6/5.7.

    Steps:
    1. Create a qpair of depth 16; delete it.
    """
    qpair = Qpair(nvme0, depth=16)
    qpair.delete()


@pytest.mark.device
def test_interrupt_qpair_msix_mask(nvme0, nvme0n1, buf, qpair):
    """MSI-X of a qpair: set on completion, held while masked, delivered at unmask.

    Spec: PyNVMe3 Script Development Guide example; PCIe base spec 7.7.2 MSI-X.

    Steps:
    1. Read: the vector is set.
    2. Mask; read: not set.
    3. Unmask: set.
    """
    # create a pair of CQ/SQ and clear MSIx interrupt
    qpair.msix_clear()
    assert not qpair.msix_isset()

    # send a read command
    nvme0n1.read(qpair, buf, 0, 4096 // nvme0n1.sector_size).waitdone()

    # check if the MSIx interrupt is set up (it may arrive just after the completion is seen)
    assert qpair.wait_msix(1.0)
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
    """Three reads on a lazy-doorbell qpair without interrupts complete with one doorbell.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 3.1.4 doorbells, 5.4
    (IEN = 0).

    Steps:
    1. Create a 1024-deep qpair, IEN = 0, lazy doorbell.
    2. Queue three reads; wait for three completions.
    """
    qpair = Qpair(nvme0, 1024, ien=False, lazy_doorbell=True)
    nvme0n1.read(qpair, buf, 0)
    nvme0n1.read(qpair, buf, 0)
    nvme0n1.read(qpair, buf, 0)
    qpair.waitdone(3)
    qpair.delete()


@pytest.mark.device
def test_reset_controller_with_outstanding_commands(nvme0, nvme0n1, qpair, buf):
    """Reads a controller reset abandons complete once each with 00/08; the qpair works after.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 3.7.2 Controller Reset
    (00/08 Command Aborted due to SQ Deletion).

    Steps:
    1. Queue 8 reads; reset.
    2. Wait for 8 completions: 00/08.
    3. Read again on the qpair.
    """
    for i in range(8):
        nvme0n1.read(qpair, buf, i)
    nvme0.reset()
    # The reads the reset aborted complete once each, with 00/08, through their own queue.
    with pytest.warns(UserWarning, match="ERROR status: 00/08"):
        qpair.waitdone(8)
    nvme0n1.read(qpair, buf, 0).waitdone()


@pytest.mark.device
def test_sq_doorbell_invalid(nvme0, raw_queues, buf):
    """An SQ tail equal to the queue size raises the Invalid Doorbell Write Value event.

    Spec: PyNVMe3 Script Development Guide example; NVMe 2.0 base spec 5.2 AER (0x010100).

    Steps:
    1. Create raw queues of 10 entries.
    2. Write 10 to the tail doorbell: AER notification.
    3. Read the error log.
    """
    qid = raw_queues.top_qid()
    raw_queues.create_cq(qid, 10)
    raw_queues.create_sq(qid, 10, cqid=qid)

    with pytest.warns(UserWarning, match="AER notification is triggered: 0x10100"):
        nvme0[raw_queues.sq_tail_doorbell(qid)] = 10
        nvme0.getfeatures(7).waitdone()
    nvme0.getlogpage(1, buf, 512).waitdone()
