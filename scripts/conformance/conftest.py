"""Fixtures of the conformance suite.

The suite runs on any NVMe drive (`make test pciaddr=0000:01:00.0`) and on the simulated SSD.
Identify data is read here with the Identify command itself, into a Buffer, so every test sees
exactly what the drive returned; fields are read with `Buffer.data(byte_end, byte_begin)` at the
byte offsets of the NVMe base specification.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nvme import *


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A device error status the test did not expect fails it: every test of the suite turns
    the warnings "ERROR status: SCT/SC" (a data miscompare included, 07/81) and "ioworker
    device respond an ERROR status" into errors. A test that expects one catches it with
    `pytest.warns(UserWarning, match="ERROR status: 01/09")`, or reads the status in a callback
    inside `warnings.catch_warnings()`."""
    here = str(Path(__file__).parent)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.filterwarnings("error:.*ERROR status:UserWarning"))


@pytest.fixture
def id_ctrl_buf(nvme0: Controller) -> Buffer:
    """Identify Controller data (CNS 01h) of nvme0."""
    b = Buffer(4096, "identify controller")
    nvme0.identify(b, nsid=0, cns=1).waitdone()
    return b


@pytest.fixture
def id_ns_buf(nvme0: Controller, nvme0n1: Namespace) -> Buffer:
    """Identify Namespace data (CNS 00h) of nvme0n1."""
    b = Buffer(4096, "identify namespace")
    nvme0.identify(b, nsid=nvme0n1.nsid, cns=0).waitdone()
    return b


@pytest.fixture
def oncs(id_ctrl_buf: Buffer) -> int:
    """Optional NVM Command Support (Identify Controller bytes 521:520)."""
    return id_ctrl_buf.data(521, 520)


@pytest.fixture
def require_changeable(nvme0: Controller, oncs: int) -> Callable[[int], None]:
    """`require_changeable(fid)` skips the test unless feature `fid` is changeable. A controller
    may make a feature not changeable (Set Features then fails with 01/0E) and says which in Get
    Features SEL=11b, bit 2; without Select support (ONCS bit 4) it cannot say, and the test
    goes on."""

    def require(fid: int) -> None:
        if oncs & (1 << 4) and not nvme0.getfeatures(fid, sel=3).waitdone() & 0x4:
            pytest.skip(f"feature {fid:#04x} is not changeable on this controller (SEL=11b)")

    return require


@pytest.fixture
def nsze(id_ns_buf: Buffer) -> int:
    """Namespace size in logical blocks."""
    return id_ns_buf.data(7, 0)


def _status(cqe: CQE) -> tuple[int, int]:
    return cqe.sct, cqe.sc


class RawQueues:
    """IO queues created with raw Create I/O CQ/SQ commands (not known to the driver's Qpair).

    Queue ids are taken from the top of the allocated range, so they do not collide with the
    Qpair objects of the test; everything created is deleted at teardown.
    """

    def __init__(self, nvme0: Controller) -> None:
        self.nvme0 = nvme0
        cdw0 = nvme0.getfeatures(7).waitdone()
        self.nsqa = (cdw0 & 0xFFFF) + 1
        self.ncqa = (cdw0 >> 16) + 1
        self.mqes = nvme0.cap & 0xFFFF
        self.dstrd = (nvme0.cap >> 32) & 0xF
        self.sqs: list[int] = []
        self.cqs: list[int] = []
        self.keep: list[Buffer] = []

    def top_qid(self) -> int:
        """The highest IO queue id both queue kinds may use."""
        return min(self.nsqa, self.ncqa)

    def create_cq(self, qid: int, qsize: int, iv: int = 0, ien: bool = False) -> tuple[int, int]:
        """Create I/O Completion Queue (05h), physically contiguous; returns (SCT, SC)."""
        mem = Buffer(max(4096, qsize * 16), "raw cq")
        self.keep.append(mem)
        got: list[CQE] = []
        self.nvme0.send_cmd(
            0x05,
            mem,
            cdw10=((qsize - 1) & 0xFFFF) << 16 | qid,
            cdw11=iv << 16 | int(ien) << 1 | 1,
            cb=got.append,
        ).waitdone()
        if _status(got[0]) == (0, 0):
            self.cqs.append(qid)
        return _status(got[0])

    def create_sq(self, qid: int, qsize: int, cqid: int) -> tuple[int, int]:
        """Create I/O Submission Queue (01h), physically contiguous; returns (SCT, SC)."""
        mem = Buffer(max(4096, qsize * 64), "raw sq")
        self.keep.append(mem)
        got: list[CQE] = []
        self.nvme0.send_cmd(
            0x01,
            mem,
            cdw10=((qsize - 1) & 0xFFFF) << 16 | qid,
            cdw11=cqid << 16 | 1,
            cb=got.append,
        ).waitdone()
        if _status(got[0]) == (0, 0):
            self.sqs.append(qid)
        return _status(got[0])

    def delete_sq(self, qid: int) -> tuple[int, int]:
        got: list[CQE] = []
        self.nvme0.send_cmd(0x00, cdw10=qid, cb=got.append).waitdone()
        if _status(got[0]) == (0, 0) and qid in self.sqs:
            self.sqs.remove(qid)
        return _status(got[0])

    def delete_cq(self, qid: int) -> tuple[int, int]:
        got: list[CQE] = []
        self.nvme0.send_cmd(0x04, cdw10=qid, cb=got.append).waitdone()
        if _status(got[0]) == (0, 0) and qid in self.cqs:
            self.cqs.remove(qid)
        return _status(got[0])

    def sq_tail_doorbell(self, qid: int) -> int:
        """BAR0 offset of SQ `qid`'s tail doorbell."""
        return 0x1000 + (2 * qid) * (4 << self.dstrd)

    def cleanup(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for qid in list(self.sqs):
                self.delete_sq(qid)
            for qid in list(self.cqs):
                self.delete_cq(qid)


@pytest.fixture
def raw_queues(nvme0: Controller) -> Iterator[RawQueues]:
    """Creates IO queues with raw admin commands and deletes them after the test."""
    q = RawQueues(nvme0)
    yield q
    q.cleanup()


@pytest.fixture
def oacs(id_ctrl_buf: Buffer) -> int:
    """Optional Admin Command Support (Identify Controller bytes 257:256)."""
    return id_ctrl_buf.data(257, 256)


@pytest.fixture
def lpa(id_ctrl_buf: Buffer) -> int:
    """Log Page Attributes (Identify Controller byte 261)."""
    return id_ctrl_buf.data(261)


def _error_statuses(action: Callable[[], object]) -> list[str]:
    """Runs `action`; returns the "SCT/SC" of every error status it warned about, in order.

    Any other warning is passed on, so an unexpected AER or timeout still reaches the test.
    """
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        action()
    found = []
    for w in record:
        text = str(w.message)
        if text.startswith("ERROR status: "):
            found.append(text[len("ERROR status: ") :].split(maxsplit=1)[0])
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return found


@pytest.fixture
def error_statuses() -> Callable[[Callable[[], object]], list[str]]:
    """`error_statuses(lambda: cmd.waitdone())` -> ["00/0b", ...]: the error statuses warned.

    For commands where the specification allows more than one status: the test asserts which.
    """
    return _error_statuses
