"""Command arbitration: round robin by default, weighted round robin when the host selects it.

CC.AMS after the default initialisation, the QPRIO field ignored under round robin, and with
weighted round robin with urgent priority class (CAP.AMS bit 17) selected at initialisation:
queues of all four priority classes carrying verified IO, and ioworkers on the three weighted
classes all moving data.
"""

import pytest

from nvme import *

pytestmark = pytest.mark.filterwarnings("error:ERROR status")


def init_wrr(nvme0):
    """Initialisation with CC.AMS = 001b (weighted round robin with urgent priority class)."""
    nvme0[0x14] = 0
    nvme0.wait_csts(rdy=False)
    if nvme0.init_adminq() < 0:
        raise NvmeEnumerateError("fail to init admin queue")
    cc = 0x00460000 | 1 << 11
    nvme0[0x14] = cc
    nvme0[0x14] = cc | 1
    nvme0.wait_csts(rdy=True)
    nvme0.identify(Buffer(4096)).waitdone()
    if nvme0.init_ns() < 0:
        raise NvmeEnumerateError("retry init namespaces failed")
    nvme0.setfeatures(0x7, cdw11=0xFFFEFFFE, nsid=0).waitdone()
    nvme0.init_queues(nvme0.getfeatures(0x7, nsid=0).waitdone())
    nvme0.aer()


@pytest.fixture
def wrr(pcie, nvme0):
    """A controller initialised with weighted round robin (skips without CAP.AMS bit 17)."""
    if not (nvme0.cap >> 17) & 1:
        pytest.skip("weighted round robin not supported (CAP.AMS bit 17)")
    ctrl = Controller(pcie, nvme_init_func=init_wrr)
    yield ctrl
    ctrl.nvme_init_func = None
    ctrl.reset()


@pytest.mark.device
def test_default_arbitration_round_robin(nvme0):
    """After the default initialisation CC.AMS selects round robin (000b).

    Spec: NVMe 2.0 base spec 3.1.3.5 CC.AMS, 3.1.3.1 CAP.AMS, 4.13 Command Arbitration.

    Steps:
    1. Read CC and CAP.
    2. Check CC.AMS (bits 13:11) is 000b and CAP bits 23:19, reserved after CAP.AMS, are 0.
    """
    assert (nvme0[0x14] >> 11) & 0x7 == 0
    assert (nvme0.cap >> 19) & 0x1F == 0, f"CAP bits 23:19 (reserved after AMS) set: {nvme0.cap:#x}"


@pytest.mark.device
def test_round_robin_ignores_qprio(nvme0, nvme0n1, raw_queues):
    """Under round robin, an SQ created with a QPRIO other than 0 is accepted (QPRIO ignored).

    Spec: NVMe 2.0 base spec 5.5 Create I/O Submission Queue (QPRIO: "ignored if weighted round
    robin with urgent priority class is not selected").

    Steps:
    1. Create an IO CQ; create an IO SQ with QPRIO = 11b (low) on it.
    2. Check the creation succeeds; delete both.
    """
    qid = raw_queues.top_qid()
    assert raw_queues.create_cq(qid, 16) == (0, 0)
    mem = Buffer(4096)
    got = []
    nvme0.send_cmd(0x01, mem, cdw10=15 << 16 | qid, cdw11=qid << 16 | 3 << 1 | 1, cb=got.append)
    nvme0.waitdone()
    assert (got[0].sct, got[0].sc) == (0, 0)
    raw_queues.sqs.append(qid)


@pytest.mark.device
def test_wrr_all_priority_classes(wrr, nsid):
    """With weighted round robin selected, queues of each priority class carry verified IO.

    Spec: NVMe 2.0 base spec 4.13.2 Weighted Round Robin with Urgent Priority Class, 5.5
    (QPRIO), 3.1.3.5 CC.AMS.

    Steps:
    1. Initialise with CC.AMS = 001b; check CC.AMS reads 001b.
    2. Create one qpair of each class: urgent, high, medium, low.
    3. Write and read 8 blocks on each with verification.
    """
    assert (wrr[0x14] >> 11) & 0x7 == 1
    ns = Namespace(wrr, nsid)
    ns.verify_enable(True)
    qs = [Qpair(wrr, 16, prio=p) for p in range(4)]
    try:
        for p, q in enumerate(qs):
            assert q.prio == p
            w = Buffer(8 * ns.sector_size, ptype=32, pvalue=0x7770 + p)
            r = Buffer(len(w))
            ns.write(q, w, 600 + 8 * p, 8).waitdone()
            ns.read(q, r, 600 + 8 * p, 8).waitdone()
            assert r == w
    finally:
        for q in qs:
            q.delete()
        ns.close()


@pytest.mark.device
def test_wrr_weighted_workers(wrr, nsid):
    """Under weighted round robin, ioworkers on the high, medium and low classes all progress.

    Spec: NVMe 2.0 base spec 4.13.2 Weighted Round Robin (every class with a non-zero weight is
    served), 5.27.1.1 Arbitration (HPW, MPW, LPW).

    Steps:
    1. Initialise with weighted round robin; set weights high 8, medium 4, low 2 (0's based
       7, 3, 1) and arbitration burst 8.
    2. Run three 1 s read ioworkers, QD 32, one per class (qprio 1, 2, 3).
    3. Check none saw an error and each completed reads; read the weights back.
    """
    arb = 7 << 24 | 3 << 16 | 1 << 8 | 3
    wrr.setfeatures(1, cdw11=arb).waitdone()
    assert wrr.getfeatures(1).waitdone() & 0xFFFFFF07 == arb
    ns = Namespace(wrr, nsid)
    try:
        ws = [
            ns.ioworker(
                io_size=8, lba_random=True, read_percentage=100, qdepth=32, time=1, qprio=p
            ).start()
            for p in (1, 2, 3)
        ]
        results = [w.close() for w in ws]
    finally:
        ns.close()
    assert all(r.error == 0 for r in results)
    assert all(r.io_count_read > 0 for r in results), [r.io_count_read for r in results]
