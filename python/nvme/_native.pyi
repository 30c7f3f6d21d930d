"""Type stubs of the native module `nvme._native` (Rust, built from crates/nvme-python).

Scripts import these names from `nvme` (`from nvme import *`); `nvme.Controller` is a Python
subclass of `Controller` below. tests/test_stubs.py checks this file against the built module:
every class, method, property, parameter name and default must match it.

Conventions of the whole API:

- Commands are asynchronous: a command method submits and returns at once (the `Controller`
  for admin commands, the `Qpair` for IO commands), and `waitdone()` reaps the completions, so
  calls chain: `nvme0.getfeatures(7).waitdone()`, `nvme0n1.read(qpair, buf, 0, 8).waitdone()`.
- `cb` is called from `waitdone()` with the completion: `cb(cqe)` receives a `CQE`; a function
  of exactly two positional parameters is called pynvme's way, `cb(cdw0, status1)`, where
  `status1` is the upper 16 bits of CQE dword 3 (bit 0 the phase tag, bits 8:1 SC, 11:9 SCT,
  13:12 CRD, 14 M, 15 DNR). An `AssertionError` raised in the callback becomes the warning
  "ASSERT: <message>", a `TypeError` the warning "callback: <message>"; other exceptions
  propagate out of `waitdone()`. A callback may submit commands but must not call `waitdone()`.
- A completion with a non-zero status raises the `UserWarning` "ERROR status: SCT/SC" (two hex
  digits each, e.g. "ERROR status: 02/81") after the callback; a command that timed out first
  warns "drive timeout: qpair: Q, cid: C". Test it with
  `with pytest.warns(UserWarning, match="ERROR status: 00/0b"): ...`.
- A wrong argument raises `NvmeArgumentError` (a `ValueError` and an `AssertionError`); a command
  that cannot be submitted (queue full, controller not ready) raises `AssertionError`; a
  `waitdone()` that does not finish in time raises `TimeoutError`; a device that stops
  responding raises `SystemError`; a failing PCIe function or DMA allocation raises `OSError`.
- Dwords, LBAs, offsets and sizes are plain ints; byte sizes are in bytes, times in the unit the
  name or the docstring gives (ms for `timeout`, seconds for waits, µs for latencies).
"""

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, final, overload

from typing_extensions import Self, TypeAlias

__all__ = [
    "CQE",
    "IOCQ",
    "IOSQ",
    "PRP",
    "SGL",
    "SQE",
    "BitBucketSGL",
    "Buffer",
    "Controller",
    "ControllerNotReadyError",
    "DataBlockSGL",
    "IdentifyData",
    "LastSegmentSGL",
    "Namespace",
    "NamespaceCreationError",
    "NamespaceDeletionError",
    "NvmeArgumentError",
    "NvmeDeletionError",
    "NvmeEnumerateError",
    "NvmeShutdownStatusTimeoutError",
    "PRPList",
    "Pcie",
    "Qpair",
    "QpairCreationError",
    "QpairDeletionError",
    "QueueGoneError",
    "SegmentSGL",
    "Simulator",
    "Subsystem",
    "_IOWorker",
    "_StartGate",
    "__version__",
    "srand",
]

_Callback: TypeAlias = Callable[[CQE], object] | Callable[[int, int], object]
_InitFunc: TypeAlias = Callable[[Controller], object]

__version__: str
"""Version of the native module (the Rust crates' version), e.g. "0.1.0"."""

def srand(seed: int) -> None:
    """Seed the generator of random data patterns (pynvme's `srand`).

    Args:
        seed: any unsigned 64-bit int; the same seed gives the same random buffers
            (`Buffer(ptype=0xbeef)`, `fill_pattern(ptype=0xbeef)`).

    Example: `srand(0x1234)`.
    """

# ---- exceptions -------------------------------------------------------------------------------

class NvmeEnumerateError(Exception):
    """The controller could not be created or initialised.

    Raised by `Pcie()` ("fail to create the controller: ...") when the address cannot be opened,
    and by `Controller()` / `Controller.reset()` when the initialisation fails (CSTS.RDY timeout,
    admin queue, namespaces).
    """

class NvmeDeletionError(Exception):
    """The controller could not be closed (pynvme's; kept for scripts that catch it: closing a
    controller here always releases the host's side, whatever the device answers, and does not
    raise)."""

class QpairCreationError(Exception):
    """An IO queue pair could not be created: no free queue id, the device rejected Create I/O
    Completion/Submission Queue, or `prio` without weighted round robin."""

class QpairDeletionError(Exception):
    """An IO queue pair could not be deleted (`Qpair.delete()`)."""

class NamespaceCreationError(Exception):
    """A namespace could not be opened (`Namespace()`: no such active nsid, Identify failed) or
    refreshed after a format."""

class NamespaceDeletionError(Exception):
    """A namespace could not be closed (pynvme's; kept for scripts that catch it: closing a
    namespace here does not raise)."""

class NvmeShutdownStatusTimeoutError(Exception):
    """CSTS.SHST did not report shutdown complete in time (`Subsystem.shutdown_notify()`)."""

class QueueGoneError(AssertionError):
    """The queue no longer exists on the device: deleted, or torn down by a controller reset,
    FLR, hot reset, subsystem reset or power loss (its outstanding commands completed with
    00/08). Wait with `Controller.wait_ready()` and submit again: a controller reset re-creates
    queue pairs in place. An AssertionError, as pynvme's submission errors are; the message
    starts with "error in submitting io commands". Its attributes `qid` and `epoch` (the
    controller epoch the queue belonged to, see `Controller.epoch`) say which queue it was.
    """

class ControllerNotReadyError(AssertionError):
    """The controller is being reset, is powered off, gone, or waits for a controller reset
    (raised by `Controller.wait_ready()` on timeout and by `Qpair()` during a reset). Its
    attribute `state` is the controller's state (`Controller.state`)."""

class NvmeArgumentError(ValueError, AssertionError):
    """A wrong argument: the message names it and says what is allowed.

    Both a `ValueError` (what Python code expects) and an `AssertionError` (what pynvme scripts
    catch, as pynvme asserted its arguments). Example message: "depth: 1 is not 2..=1024
    (CAP.MQES + 1)".
    """

# ---- Buffer -----------------------------------------------------------------------------------

class Buffer:
    """DMA memory that commands read from and write to.

    `Buffer(length=4096, name="buffer", pvalue=0, ptype=0)`: `length` bytes, zeroed or filled
    with a pattern: ptype 0 (pvalue 0: all zero, else all one bits), 32 (pvalue repeated as a
    dword), 0xbeef (pvalue percent random bytes, the rest zero), 0x1234 / 0x4321 (16-bit words
    increasing / decreasing from pvalue). pynvme's keyword `size=` is accepted for the length.

    A command transfers `size` bytes from `offset` (both settable), so scripts can build unaligned
    or short PRPs; `sgl = True` makes commands describe it with an SGL instead.

    Indexing reads and writes the memory: `buf[0]` is an int (0..=255), `buf[0:8]` bytes;
    `buf[10] = 0x5a` writes a byte, `buf[8:] = b"abc"` writes the bytes from index 8 on (the
    slice's stop and step are ignored, as in pynvme). `len(buf)` is `length`. Two buffers are
    equal when their data are.

    Example: `buf = Buffer(4096, ptype=32, pvalue=0x5a5a5a5a)`.
    """

    __hash__: ClassVar[None]  # type: ignore[assignment]
    def __init__(
        self,
        length: int = 4096,
        name: str = "buffer",
        pvalue: int = 0,
        ptype: int = 0,
        offset: int = 0,
        size: int | None = None,
    ) -> None:
        """Allocate `length` bytes of DMA memory and fill them with a pattern.

        Args:
            length: bytes, 1 .. 1 GiB (1 << 30).
            name: shown by `repr()` and `dump()`.
            pvalue: the pattern's value (see `ptype`).
            ptype: 0: all 0x00 (pvalue 0) or all 0xff (pvalue non-zero); 32: pvalue as a
                little-endian dword repeated; 0xbeef: the first pvalue percent (0..=100) of the
                bytes random, the rest zero; 0x1234 / 0x4321: 16-bit words counting up / down
                from pvalue.
            offset: initial `offset`, the first byte a command transfers.
            size: pynvme's name for `length`; when given, it wins over `length`.

        Raises:
            NvmeArgumentError: length 0 ("0 is not valid size") or above 1 GiB, a bad pattern
                or offset.
            OSError: the DMA memory could not be allocated.
        """
    def __len__(self) -> int:
        """`length`, the bytes given at creation."""
    @overload
    def __getitem__(self, index: int, /) -> int:
        """Byte `index` (negative counts from the end): `buf[0]`. IndexError out of range."""
    @overload
    def __getitem__(self, index: slice, /) -> bytes:
        """The bytes of a slice: `buf[0:8]`, `buf[::2]`."""
    @overload
    def __setitem__(self, index: int, value: int, /) -> None:
        """Write byte `index` with `value` (0..=255): `buf[0] = 0x5a`."""
    @overload
    def __setitem__(self, index: slice, value: bytes | Iterable[int], /) -> None:
        """Write `value` from the slice's start on (stop and step are ignored, as in pynvme):
        `buf[8:] = b"abc"`."""
    def __eq__(self, other: object, /) -> bool:
        """True if `other` is a Buffer with the same data."""
    def __ne__(self, other: object, /) -> bool:
        """True unless `other` is a Buffer with the same data."""
    @property
    def length(self) -> int:
        """Length of the memory given at creation, bytes."""
    @property
    def size(self) -> int:
        """Bytes a command transfers (at most length - offset).

        Set it to send a shorter transfer than the buffer: `buf.size = 512`.
        """
    @size.setter
    def size(self, size: int) -> None: ...
    @property
    def offset(self) -> int:
        """Offset of the first byte a command transfers.

        Set it to build unaligned PRPs: `buf.offset = 4` (then `size` is at most length - 4).
        """
    @offset.setter
    def offset(self, offset: int) -> None: ...
    @property
    def phys_addr(self) -> int:
        """Bus address of the first byte a command transfers (memory start + offset)."""
    @property
    def name(self) -> str:
        """The buffer's name, shown by dump() and repr()."""
    @name.setter
    def name(self, name: str) -> None: ...
    @property
    def sgl(self) -> bool:
        """Whether commands describe this buffer with an SGL data block instead of PRPs.

        False by default; `buf.sgl = True` needs a controller that supports SGLs (Identify
        Controller SGLS).
        """
    @sgl.setter
    def sgl(self, sgl: bool) -> None: ...
    @overload
    def data(
        self, byte_end: int, byte_begin: int | None = None, type: type[int] | None = None
    ) -> int:
        """The field in bytes [byte_begin, byte_end] (inclusive; begin defaults to end): a
        little-endian int, or with `type=str` an ASCII string without trailing spaces, or with
        `type=bytes` the raw bytes.

        Example: `vid = buf.data(1, 0)`, `mn = buf.data(63, 24, str)`.
        """
    @overload
    def data(self, byte_end: int, byte_begin: int | None, type: type[str]) -> str:
        """The field in bytes [byte_begin, byte_end] (inclusive; begin defaults to end): a
        little-endian int, or with `type=str` an ASCII string without trailing spaces, or with
        `type=bytes` the raw bytes.

        Example: `vid = buf.data(1, 0)`, `mn = buf.data(63, 24, str)`.
        """
    @overload
    def data(self, byte_end: int, byte_begin: int | None = None, *, type: type[str]) -> str:
        """The field in bytes [byte_begin, byte_end] (inclusive; begin defaults to end): a
        little-endian int, or with `type=str` an ASCII string without trailing spaces, or with
        `type=bytes` the raw bytes.

        Example: `vid = buf.data(1, 0)`, `mn = buf.data(63, 24, str)`.
        """
    @overload
    def data(self, byte_end: int, byte_begin: int | None, type: type[bytes]) -> bytes:
        """The field in bytes [byte_begin, byte_end] (inclusive; begin defaults to end): a
        little-endian int, or with `type=str` an ASCII string without trailing spaces, or with
        `type=bytes` the raw bytes.

        Example: `vid = buf.data(1, 0)`, `mn = buf.data(63, 24, str)`.
        """
    @overload
    def data(self, byte_end: int, byte_begin: int | None = None, *, type: type[bytes]) -> bytes:
        """The field in bytes [byte_begin, byte_end] (inclusive; begin defaults to end): a
        little-endian int, or with `type=str` an ASCII string without trailing spaces, or with
        `type=bytes` the raw bytes.

        Example: `vid = buf.data(1, 0)`, `mn = buf.data(63, 24, str)`.
        """
    def dump(self, size: int | None = None) -> str:
        """A hexdump of the first `size` bytes (all by default), after a line with the name.

        Args:
            size: bytes to show; None (or more than the length): the whole buffer.

        Returns:
            The text, 16 bytes a line: "[0x00000000]  xx xx ... xx  ascii". Print it yourself:
            `print(buf.dump(64))`.
        """
    def set_dsm_range(self, index: int, lba: int, lba_count: int, attr: int = 0) -> None:
        """Write Dataset Management range `index`: attributes, LBA count, start LBA.

        The range is the 16 bytes at `index * 16`: context attributes (dword), length in
        logical blocks (dword), starting LBA (qword), all little-endian. Use it with
        `Namespace.dsm()`.

        Args:
            index: range number, 0 .. len(buf) // 16 - 1.
            lba: starting LBA.
            lba_count: number of logical blocks (32 bits).
            attr: context attributes (dword 0 of the range).

        Example: `buf.set_dsm_range(0, lba=0, lba_count=8); nvme0n1.dsm(qpair, buf, 1)`.
        """
    def fill_pattern(self, pvalue: int = 0, ptype: int = 0) -> None:
        """Refill the whole buffer with a pattern (`pvalue` and `ptype` as for `Buffer()`)."""

# ---- Pcie -------------------------------------------------------------------------------------

class Pcie:
    """A PCIe function: config space, BAR0, resets and link/power attributes.

    `Pcie(addr="")`: an empty address or `sim://?key=value&...` opens a simulated SSD (keys:
    capacity, lba, namespaces, mdts, queues, mqes, dstrd, cmb, latency, null, serial, model, fw,
    backing, profile=bench and its keys); a PCI address opens a device bound for testing.

    Indexing reads and writes config space bytes: `pcie[0x10]` is an int, `pcie[0:4]` a list of
    ints, `pcie[0x04] = 0x06` writes one byte (offsets 0..4095). Call `close()` when done (the
    `pcie` fixture does).
    """

    def __init__(self, addr: str = "", vf: int = 0, port: int = 0) -> None:
        """Open a PCIe function.

        Args:
            addr: "" or "sim://" for the simulated SSD, "sim://?capacity=1T&lba=4096&namespaces=2"
                to shape it; a PCI address like "0000:01:00.0" for a device bound to vfio-pci
                or uio_pci_generic (`make setup`).
            vf: SR-IOV virtual function; only 0 is supported.
            port: the NVMe over TCP port of pynvme; not supported: only 0 is accepted.

        Raises:
            NvmeEnumerateError: the function cannot be opened ("fail to create the controller").
            NvmeArgumentError: vf is not 0.
        """
    @overload
    def __getitem__(self, index: int, /) -> int:
        """Config space byte at offset `index` (0..4095): `pcie[0x10]`."""
    @overload
    def __getitem__(self, index: slice, /) -> list[int]:
        """Config space bytes of a slice, as a list of ints: `pcie[0:4]`."""
    def __setitem__(self, index: int, value: int, /) -> None:
        """Write config space byte `index` (0..4095) with `value` (0..=255)."""
    @property
    def addr(self) -> str:
        """The function's address ("0000:01:00.0", or the simulator's "sim://..." address)."""
    def register(self, offset: int, byte_count: int = 4) -> int:
        """Little-endian config space read of `byte_count` (1..=8) bytes at `offset`.

        Example: `vid = pcie.register(0, 2)`.
        """
    def cfg_byte_read(self, addr: int) -> int:
        """Config space byte read at offset `addr`."""
    def cfg_word_read(self, addr: int) -> int:
        """Config space word (16-bit) read at offset `addr`."""
    def cfg_dword_read(self, addr: int) -> int:
        """Config space dword (32-bit) read at offset `addr`."""
    def cfg_byte_write(self, addr: int, value: int) -> None:
        """Config space byte write of `value` at offset `addr`."""
    def cfg_word_write(self, addr: int, value: int) -> None:
        """Config space word (16-bit) write of `value` at offset `addr`."""
    def cfg_dword_write(self, addr: int, value: int) -> None:
        """Config space dword (32-bit) write of `value` at offset `addr`."""
    def cap_offset(self, cap_id: int, extend: bool = False) -> int | None:
        """Offset of capability `cap_id` in config space, or None if the function has none.

        Args:
            cap_id: capability id: legacy 0..=0xff (0x01 PM, 0x05 MSI, 0x10 PCIe, 0x11 MSI-X),
                or with `extend` an extended capability id (0x0001 AER, 0x0003 DSN ...).
            extend: search the extended capabilities (from 0x100) instead of the list at 0x34.

        Example: `pm = pcie.cap_offset(0x01)`.
        """
    def mem_byte_read(self, addr: int) -> int:
        """BAR0 byte read at offset `addr`."""
    def mem_word_read(self, addr: int) -> int:
        """BAR0 word read at offset `addr` (2-byte aligned, else NvmeArgumentError)."""
    def mem_dword_read(self, addr: int) -> int:
        """BAR0 dword read at offset `addr` (4-byte aligned, else NvmeArgumentError)."""
    def mem_qword_read(self, addr: int) -> int:
        """BAR0 qword read at offset `addr` (8-byte aligned, else NvmeArgumentError)."""
    def mem_dword_write(self, addr: int, value: int) -> None:
        """BAR0 dword write at offset `addr` (4-byte aligned, else NvmeArgumentError)."""
    def mem_qword_write(self, addr: int, value: int) -> None:
        """BAR0 qword write at offset `addr` (8-byte aligned, else NvmeArgumentError)."""
    def reset(self) -> bool:
        """Hot reset (secondary bus reset); returns True.

        The controller's queues are torn down (outstanding commands complete with 00/08, the
        next submission raises QueueGoneError). Call `Controller.reset()` afterwards to
        initialise the controller again.
        """
    def flr(self) -> bool:
        """Function level reset; returns True.

        The controller's queues are torn down (outstanding commands complete with 00/08, the
        next submission raises QueueGoneError). Call `Controller.reset()` afterwards to
        initialise the controller again.
        """
    @property
    def speed(self) -> int:
        """Current link speed (1 = 2.5 GT/s, 2 = 5, 3 = 8, 4 = 16, 5 = 32 GT/s).

        Setting it (1..=6) writes the target link speed (Link Control 2) and retrains the link:
        `pcie.speed = 1`.
        """
    @speed.setter
    def speed(self, speed: int) -> None: ...
    @property
    def aspm(self) -> int:
        """ASPM control of the link (0 off, 1 L0s, 2 L1, 3 both); settable: `pcie.aspm = 2`."""
    @aspm.setter
    def aspm(self, aspm: int) -> None: ...
    @property
    def power_state(self) -> int:
        """PCI power state (0 D0, 1 D1, 2 D2, 3 D3hot); settable: `pcie.power_state = 3`."""
    @power_state.setter
    def power_state(self, state: int) -> None: ...
    @property
    def sim(self) -> Simulator | None:
        """The simulated SSD behind this function, for fault injection; None for a real device.

        Example: `pcie.sim.inject("status", 0x0281, opcode=0x02)` makes reads fail with 02/81.
        """
    def close(self) -> None:
        """Release the function. Objects built on it stop working."""

# ---- Controller -------------------------------------------------------------------------------

class Controller:
    """An NVMe controller. `Controller(pcie, nvme_init_func=None)` initialises it as the spec orders
    (or by calling `nvme_init_func(controller)` instead, also at every `reset()`).

    Admin commands are asynchronous and return the controller, so `nvme0.getfeatures(7).waitdone()`
    chains; `cb=` gives a callback that receives the `CQE`. A failing status raises the warning
    "ERROR status: SCT/SC".

    Indexing reads and writes 32-bit BAR0 registers: `nvme0[0x1c]` is CSTS,
    `nvme0[0x14] = 0x00460001` writes CC; a read of 0xffffffff raises `SystemError` (the device
    does not respond).
    """

    def __init__(self, pcie: Pcie, nvme_init_func: _InitFunc | None = None) -> None:
        """Attach to the NVMe controller of `pcie` and initialise it.

        Args:
            pcie: the PCIe function (`Pcie(...)`, or the `pcie` fixture).
            nvme_init_func: None for the spec's initialisation (disable, admin queue, enable,
                identify, namespaces, number of queues, one AER); or a function called as
                `nvme_init_func(controller)` instead, at creation and at every `reset()`. It may
                use `nvme0[offset]`, `init_adminq()`, `wait_csts()`, `init_ns()`,
                `init_queues()` and send admin commands.

        Raises:
            NvmeEnumerateError: the initialisation failed.
        """
    def _initialize(self) -> None:
        """Run the init function (default or `nvme_init_func`); called by the constructor."""
    def __getitem__(self, offset: int, /) -> int:
        """Read the 32-bit BAR0 register at byte `offset` (SystemError if it reads 0xffffffff)."""
    def __setitem__(self, offset: int, value: int, /) -> None:
        """Write the 32-bit BAR0 register at byte `offset`."""
    @property
    def nvme_init_func(self) -> _InitFunc | None:
        """The init function used at creation and at every reset (None: the spec's sequence)."""
    @nvme_init_func.setter
    def nvme_init_func(self, value: _InitFunc | None) -> None: ...
    @property
    def pcie(self) -> Pcie:
        """The Pcie object of this controller."""
    @property
    def cap(self) -> int:
        """CAP, the 64-bit controller capabilities register (BAR0 offset 0)."""
    @property
    def mdts(self) -> int:
        """Largest data transfer of one command, bytes (MDTS, at most 2 MiB)."""
    @property
    def timeout(self) -> int:
        """Default command timeout in ms (10,000 unless set; restored by reset()).

        A command that does not complete in time warns "drive timeout: qpair: Q, cid: C".
        Setting it to 0 raises NvmeArgumentError. Example: `nvme0.timeout = 30_000`.
        """
    @timeout.setter
    def timeout(self, ms: int) -> None: ...
    def set_timeout_ms(self, opcode: int, msec: int) -> None:
        """Set the timeout of one admin opcode, ms (0: back to the default `timeout`).

        Example: `nvme0.set_timeout_ms(0x80, 100_000)` for Format NVM.
        """
    def get_timeout_ms(self, opcode: int) -> int:
        """The timeout of admin opcode `opcode` (0..=255), ms."""
    @property
    def latest_cid(self) -> int:
        """CID of the latest admin command submitted."""
    @property
    def latest_latency(self) -> int:
        """Latency of the latest admin command completed, µs."""
    def wait_csts(self, rdy: bool = True, timeout: float | None = None) -> bool:
        """Wait for CSTS.RDY to become `rdy`; True if it did, False on timeout.

        Args:
            rdy: the CSTS.RDY value to wait for.
            timeout: seconds; None waits up to CAP.TO (in 500 ms units).
        """
    def init_adminq(self, lazy_doorbell: bool = False) -> int:
        """Program a fresh admin queue (AQA/ASQ/ACQ) and MSI-X; 0 on success.

        For an `nvme_init_func`, with CC.EN = 0. `lazy_doorbell=True` rings the admin SQ
        doorbell only in `waitdone()` or `ring_doorbell()`.
        """
    def init_ns(self) -> int:
        """Identify the controller and its namespaces; 0 on success, -1 on failure."""
    def init_queues(self, cdw0: int) -> None:
        """Record the number of IO queues from a Number of Queues feature dword 0.

        Example: `nvme0.init_queues(nvme0.getfeatures(7).waitdone())`.
        """
    def ring_doorbell(self) -> None:
        """Ring the admin SQ doorbell (with lazy doorbells)."""
    def reset(self) -> None:
        """Controller reset: outstanding IO commands complete once with 00/08 (through their own
        queue's next `waitdone()`), the init function runs again, then the script's admin
        commands an event ended complete with 00/08 (callbacks run, AERs end silently), IO
        queue pairs are re-created in place, timeouts return to their defaults, the epoch grows.

        Also the step after `Pcie.reset()`, `Pcie.flr()`, `Subsystem.reset()` and
        `Subsystem.poweron()`.
        """
    @property
    def state(self) -> str:
        """The controller's state: "ready", "resetting", "initializing", "needs_init" (after an
        FLR, hot reset, subsystem reset or power on: call `reset()`), "powered_off" or "gone"."""
    @property
    def epoch(self) -> int:
        """The controller's epoch: grows by one at every controller reset, FLR, hot reset, NVM
        subsystem reset, power off and surprise removal."""
    def wait_ready(self, timeout: float = 10.0) -> int:
        """Wait up to `timeout` seconds until the controller is ready and return its epoch;
        raises ControllerNotReadyError on timeout.

        For a thread whose submission raised QueueGoneError while another thread resets or
        power cycles the device: once ready, its queue pair works again.
        """
    def waitdone(self, expected: int = 1, interrupt_enabled: bool = True) -> int:
        """Reap `expected` admin completions (AERs excluded) and return dword 0 of the latest.

        With `interrupt_enabled`, the admin CQ is read only after its MSI-X vector fired.
        Callbacks and warnings ("ERROR status: ...", "AER notification is triggered: 0x...")
        run here. Raises AssertionError when fewer than `expected` commands are outstanding or
        when called from a callback, TimeoutError when the completions do not come.

        Example: `cdw0 = nvme0.getfeatures(7).waitdone()`.
        """
    def identify(
        self,
        buf: Buffer,
        nsid: int = 0,
        cns: int = 1,
        cntid: int = 0,
        csi: int = 0,
        nvmsetid: int = 0,
        cns_specific_id: int = 0,
        cdw14: int = 0,
        cb: _Callback | None = None,
    ) -> Self:
        """Identify (06h) into `buf` (at least 4096 bytes); returns the controller.

        Args:
            buf: receives the 4096-byte data structure.
            nsid: namespace id (CNS 0, 3, ...).
            cns: 0 namespace, 1 controller, 2 active namespace list, ...
            cntid: controller id (CDW10 bits 31:16).
            csi: command set identifier (CDW11 bits 31:24).
            nvmsetid: NVM set identifier (CDW11 bits 15:0).
            cns_specific_id: CDW11 bits 23:16.
            cdw14: dword 14 (UUID index).
            cb: completion callback.

        Example: `nvme0.identify(buf).waitdone(); mn = buf.data(63, 24, str)`.
        """
    def getfeatures(
        self,
        fid: int,
        sel: int = 0,
        buf: Buffer | None = None,
        nsid: int = 0,
        cdw11: int = 0,
        cdw12: int = 0,
        cdw13: int = 0,
        cdw14: int = 0,
        cdw15: int = 0,
        cb: _Callback | None = None,
    ) -> Self:
        """Get Features (0Ah); returns the controller. `waitdone()` returns the value (dword 0).

        Args:
            fid: feature identifier (7 Number of Queues, 0x0e Timestamp, ...).
            sel: 0 current, 1 default, 2 saved, 3 supported capabilities.
            buf: receives the data of features that have some (e.g. Timestamp).
            nsid: namespace id for namespace-specific features.
            cdw11 .. cdw15: command dwords.
            cb: completion callback.

        Example: `cdw0 = nvme0.getfeatures(7).waitdone()`.
        """
    def setfeatures(
        self,
        fid: int,
        sv: int = 0,
        buf: Buffer | None = None,
        nsid: int = 0,
        cdw11: int = 0,
        cdw12: int = 0,
        cdw13: int = 0,
        cdw14: int = 0,
        cdw15: int = 0,
        cb: _Callback | None = None,
    ) -> Self:
        """Set Features (09h); returns the controller.

        Args:
            fid: feature identifier.
            sv: 1 saves the value across power cycles (CDW10 bit 31).
            buf: data of features that take some.
            nsid: namespace id for namespace-specific features.
            cdw11 .. cdw15: command dwords; cdw11 is the value of most features.
            cb: completion callback.

        Example: `nvme0.setfeatures(7, cdw11=0xfffefffe).waitdone()`.
        """
    def getlogpage(
        self,
        lid: int,
        buf: Buffer,
        size: int | None = None,
        offset: int = 0,
        nsid: int = 0xFFFFFFFF,
        log_specific_id: int = 0,
        cb: _Callback | None = None,
    ) -> Self:
        """Get Log Page (02h): `size` bytes (default: the buffer's size) at byte `offset`.

        Args:
            lid: log page identifier (1 error, 2 SMART / health, 3 firmware slot, 5 commands
                supported and effects, 6 self-test, 0x81 sanitize status).
            buf: receives the data.
            size: bytes, a multiple of 4, at most `buf.size`.
            offset: byte offset in the log page, a multiple of 4.
            nsid: 0xffffffff for the controller, or a namespace id.
            log_specific_id: CDW10 bits 11:8 (log specific field).
            cb: completion callback.

        Example: `nvme0.getlogpage(2, buf, 512).waitdone()`.
        """
    def format(
        self,
        lbaf: int = 0,
        ses: int = 0,
        nsid: int = 1,
        pil: int = 0,
        pi: int = 0,
        mset: int = 0,
        cb: _Callback | None = None,
    ) -> Self:
        """Format NVM (80h); returns the controller. Namespace.format() is the helper that waits
        and refreshes.

        Args:
            lbaf: LBA format index (0..=63).
            ses: secure erase setting (0 none, 1 user data erase, 2 cryptographic erase).
            nsid: namespace id (0xffffffff: all namespaces).
            pil: protection information location.
            pi: protection information type (0..=3).
            mset: 1 for metadata transferred with the data (extended LBA).
            cb: completion callback.
        """
    def sanitize(self, option: int = 2, pattern: int = 0, cb: _Callback | None = None) -> Self:
        """Sanitize (84h): option 2 block erase (default), 3 overwrite, 4 crypto erase.

        `pattern` is the overwrite pattern (CDW11). Follow the progress with the sanitize status
        log page (0x81). Returns the controller.
        """
    def dst(self, stc: int = 1, nsid: int = 0xFFFFFFFF, cb: _Callback | None = None) -> Self:
        """Device Self-test (14h): stc 1 short, 2 extended, 0xf abort; returns the controller.

        Follow it with the self-test log page (6).
        """
    def fw_download(
        self, buf: Buffer, offset: int, size: int | None = None, cb: _Callback | None = None
    ) -> Self:
        """Firmware Image Download (11h) of `size` bytes (default: the buffer's size) at `offset`.

        `offset` and `size` are bytes, sent as pynvme encodes them (NUMD = size / 4 - 1, OFST =
        offset / 4): values the spec forbids reach the device, which judges them. Raises
        NvmeArgumentError only when the encoded transfer would not fit the buffer (a size below
        4 bytes). Returns the controller.
        """
    def fw_commit(self, slot: int, action: int, bpid: int = 0, cb: _Callback | None = None) -> Self:
        """Firmware Commit (10h); returns the controller.

        Args:
            slot: firmware slot 0..=7 (0: the controller chooses).
            action: commit action 0..=7 (0 replace, 1 replace and activate at reset,
                2 activate at reset, 3 activate now).
            bpid: boot partition id (CDW10 bit 31).
            cb: completion callback.
        """
    def aer(self, cb: _Callback | None = None) -> Self:
        """Asynchronous Event Request (0Ch). It does not time out; when it completes, `waitdone`
        warns "AER notification is triggered: 0x..." and sends another one with the same callback.

        Returns the controller. Expect it in a test with
        `with pytest.warns(UserWarning, match="AER notification"): nvme0.getfeatures(7).waitdone()`.
        """
    def abort(self, cid: int, sqid: int = 0, cb: _Callback | None = None) -> Self:
        """Abort (08h) of command `cid` on queue `sqid` (0: the admin queue); returns the
        controller. Dword 0 of the completion bit 0 is 0 when the command was aborted."""
    def security_send(
        self,
        buf: Buffer,
        spsp: int = 0,
        secp: int = 1,
        nssf: int = 0,
        size: int | None = None,
        nsid: int = 0,
        cb: _Callback | None = None,
    ) -> Self:
        """Security Send (81h) of `size` bytes of `buf` (default: the buffer's size).

        Args:
            buf: the data sent.
            spsp: SP specific (16 bits).
            secp: security protocol (8 bits).
            nssf: NVMe security specific field (8 bits).
            size: bytes transferred (CDW11).
            nsid: namespace id.
            cb: completion callback.

        Returns the controller.
        """
    def security_receive(
        self,
        buf: Buffer,
        spsp: int = 0,
        secp: int = 1,
        nssf: int = 0,
        size: int | None = None,
        nsid: int = 0,
        cb: _Callback | None = None,
    ) -> Self:
        """Security Receive (82h) of `size` bytes into `buf` (default: the buffer's size).

        Parameters as for `security_send()`. Returns the controller.
        """
    def send_cmd(
        self,
        opcode: int,
        buf: Buffer | None = None,
        nsid: int = 0,
        cdw10: int = 0,
        cdw11: int = 0,
        cdw12: int = 0,
        cdw13: int = 0,
        cdw14: int = 0,
        cdw15: int = 0,
        cdw2: int = 0,
        cdw3: int = 0,
        cb: _Callback | None = None,
    ) -> Self:
        """Any admin command: `opcode` is the whole dword 0 (FUSE and PSDT may be set; the CID is
        assigned by the driver).

        `buf`, if given, is the data pointer (PRP or SGL, `buf.size` bytes); the other arguments
        are the command's dwords. Returns the controller.

        Example: `nvme0.send_cmd(0x0a, cdw10=7).waitdone()` (Get Features, Number of Queues).
        """
    @overload
    def id_data(
        self,
        byte_end: int,
        byte_begin: int | None = None,
        type: type[int] | None = None,
        nsid: int = 0,
        cns: int = 1,
        cntid: int = 0,
        csi: int = 0,
        nvmsetid: int = 0,
    ) -> int:
        """The field in bytes [byte_begin, byte_end] of Identify data (controller by default), as
        an int or, with `type=str`, a string.

        Sent and waited for at once, into a new 4 KiB buffer; a failing status warns
        "ERROR status: SCT/SC". `nsid`, `cns`, `cntid`, `csi`, `nvmsetid` select the data as
        for `identify()`.

        Example: `mn = nvme0.id_data(63, 24, str)`, `nn = nvme0.id_data(519, 516)`.
        """
    @overload
    def id_data(
        self,
        byte_end: int,
        byte_begin: int | None,
        type: type[str],
        nsid: int = 0,
        cns: int = 1,
        cntid: int = 0,
        csi: int = 0,
        nvmsetid: int = 0,
    ) -> str:
        """The field in bytes [byte_begin, byte_end] of Identify data (controller by default), as
        an int or, with `type=str`, a string.

        Sent and waited for at once, into a new 4 KiB buffer; a failing status warns
        "ERROR status: SCT/SC". `nsid`, `cns`, `cntid`, `csi`, `nvmsetid` select the data as
        for `identify()`.

        Example: `mn = nvme0.id_data(63, 24, str)`, `nn = nvme0.id_data(519, 516)`.
        """
    @overload
    def id_data(
        self,
        byte_end: int,
        byte_begin: int | None = None,
        *,
        type: type[str],
        nsid: int = 0,
        cns: int = 1,
        cntid: int = 0,
        csi: int = 0,
        nvmsetid: int = 0,
    ) -> str:
        """The field in bytes [byte_begin, byte_end] of Identify data (controller by default), as
        an int or, with `type=str`, a string.

        Sent and waited for at once, into a new 4 KiB buffer; a failing status warns
        "ERROR status: SCT/SC". `nsid`, `cns`, `cntid`, `csi`, `nvmsetid` select the data as
        for `identify()`.

        Example: `mn = nvme0.id_data(63, 24, str)`, `nn = nvme0.id_data(519, 516)`.
        """
    def id_ctrl(self) -> IdentifyData:
        """Identify Controller data with fields named by the spec's abbreviations (`.mdts`,
        `.sn` ...).

        Sent and waited for at once. A failing status warns "ERROR status: SCT/SC".
        Example: `assert nvme0.id_ctrl().nn >= 1`.
        """
    def supports(self, opcode: int) -> bool:
        """Whether the controller supports admin opcode `opcode` (0..=255), or IO opcode
        `opcode - 256`, as the Commands Supported and Effects log page says.

        Returns False (with the warning "ERROR status: ...") when the log page cannot be read.
        Example: `if nvme0.supports(0x84): ...` (Sanitize).
        """
    def get_lba_format(self, data_size: int = 512, meta_size: int = 0, nsid: int = 1) -> int | None:
        """The LBA format index of namespace `nsid` with this data and metadata size, or None.

        Args:
            data_size: bytes of data per logical block (512, 4096, ...).
            meta_size: bytes of metadata per logical block.
            nsid: namespace whose Identify data lists the formats.
        """
    def timestamp(self) -> int:
        """The controller's Timestamp feature (0Eh), ms since the epoch (48 bits)."""
    def downfw(self, filename: str, slot: int = 0, action: int = 1) -> None:
        """Download a firmware file in 4 KiB pieces and commit it to `slot` with `action`.

        Synchronous. Stops at the first failing command with the warning "ERROR status: ...".
        Raises NvmeArgumentError when the file cannot be read. Call `reset()` afterwards to
        activate an image committed with action 1 or 2.
        """
    def cmdlog(self, count: int = 1000, offset: int = 0) -> list[str]:
        """The admin queue's command log, newest first: one string per command (SQE, CQE, times).

        Args:
            count: how many commands, at most.
            offset: how many of the newest to skip.

        Each entry is a few lines: submission time, sequence number, command name and queue,
        the 16 SQE dwords, then (once completed) completion time, status and the 4 CQE dwords.
        Example: `print("\\n".join(nvme0.cmdlog(10)))`.
        """
    def cmdlog_merged(self, count: int = 1000) -> list[str]:
        """The command logs of all queues (admin and IO) merged, newest first, up to `count`."""
    def cmdlog_entries(self, qid: int = 0, count: int = 16) -> list[dict[str, Any]]:
        """The latest `count` commands of queue `qid` (0: the admin queue), newest first, as
        dicts of plain values, for tools that display the log (the live monitor).

        Keys: `seq` (sequence number in its queue), `sqid`, `opcode`, `name`, `cid`, `nsid`,
        `sqe` (the 16 dwords), `submit_ns` (ns since the epoch), `timed_out`; once completed,
        `cqe` (the 4 dwords), `complete_ns`, `sct`, `sc` and `status` (the status's name,
        "TIMEOUT" for a host timeout), else None. Reads the log only, sends no command.

        Raises NvmeArgumentError when no live IO queue pair has `qid`.
        """
    def qpairs_info(self) -> list[dict[str, int]]:
        """The live IO queue pairs of this controller, ioworkers' included, sorted by qid:
        one dict each with `qid`, `depth` (entries), `outstanding` (commands), `ios` and
        `bytes` (reads and writes completed). Reads counters only, sends no command.
        """
    def id_ctrl_cached(self) -> IdentifyData | None:
        """The driver's copy of the Identify Controller data, taken at initialisation, or None
        if the controller was not identified (an `nvme_init_func` that skipped it).

        Sends no command, so it is safe to call from another thread while a test runs.
        """
    def iostat(self) -> tuple[int, int]:
        """Read/write throughput of all IO queue pairs since the previous call:
        `(bytes per second, IOs per second)`.

        Example: `speed, iops = nvme0.iostat()`.
        """
    def ns_create(
        self, nsze: int, ncap: int | None = None, flbas: int = 0, dps: int = 0, nmic: int = 0
    ) -> int:
        """Namespace Management create: a namespace of `nsze` blocks (`ncap` allocated, default
        `nsze`) in LBA format `flbas`, protection `dps`, sharing `nmic`.

        Returns the new nsid, or 0 after the warning "ERROR status: SCT/SC" if the controller
        refused (01/15: insufficient capacity). Attach it with `ns_attach` before use.
        """
    def ns_delete(self, nsid: int) -> bool:
        """Namespace Management delete of `nsid` (0xffffffff: all); False after the warning
        "ERROR status: SCT/SC" if the controller refused."""
    def ns_attach(self, nsid: int, *cntlids: int) -> bool:
        """Namespace Attachment: attaches `nsid` to the controllers `cntlids` (default: this one,
        its CNTLID from Identify); False after the warning "ERROR status: SCT/SC" if refused.

        Example: `nvme0.ns_attach(2)`.
        """
    def ns_detach(self, nsid: int, *cntlids: int) -> bool:
        """Namespace Attachment: detaches `nsid` from the controllers `cntlids` (default: this
        one); False after the warning "ERROR status: SCT/SC" if refused.

        Example: `nvme0.ns_detach(1, nvme0.id_data(79, 78))`.
        """

# ---- Namespace --------------------------------------------------------------------------------

class Namespace:
    """A namespace: `Namespace(nvme, nsid=1, nlba_verify=0, crc_size=None)`.

    IO methods are asynchronous and return the qpair, so `nvme0n1.read(qpair, buf, 0).waitdone()`
    chains; `cb=` gives a callback that receives the `CQE`. Their `io_flags` is the upper half of
    CDW12 (bit 14 FUA, bit 15 limited retry, bits 13:10 PRINFO), or those bits in place as pynvme
    gives them (`1 << 30` FUA, `1 << 31` limited retry). The driver sends what the spec forbids
    (the device judges it) and refuses only what would be unsafe for the host; a failing status
    warns "ERROR status: SCT/SC" in `Qpair.waitdone()`. Call `close()` when done (the `nvme0n1`
    fixture does).
    """

    def __init__(
        self, nvme: Controller, nsid: int = 1, nlba_verify: int = 0, crc_size: int | None = None
    ) -> None:
        """Open namespace `nsid` of controller `nvme`.

        Args:
            nvme: the controller.
            nsid: an active namespace id (1 .. Identify Controller NN).
            nlba_verify: logical blocks covered by host data verification (0: the whole
                namespace).
            crc_size: bytes per logical block of the verification digests: 1, 2 or 4 (a change
                escapes the digest with probability about 1/252, 1/65532 or 1/2^32; stamped
                data is checked by its stamps too). Every Namespace object of a namespace shares
                one table: a width other than the table's starts a new, empty table of that
                width; None keeps the table's width (1 for a new table).

        Raises:
            NamespaceCreationError: the namespace is not active or cannot be identified.
            NvmeArgumentError: `crc_size` is not 1, 2 or 4.
        """
    @property
    def nvme(self) -> Controller:
        """The controller."""
    @property
    def nsid(self) -> int:
        """Namespace id."""
    @property
    def capacity(self) -> int:
        """NVM capacity in bytes (Identify Namespace NVMCAP; NSZE * sector size when the device
        reports 0)."""
    @property
    def sector_size(self) -> int:
        """Bytes per logical block (data only, without metadata)."""
    @property
    def meta_size(self) -> int:
        """Metadata bytes per logical block."""
    @property
    def nlba_verify(self) -> int:
        """Number of logical blocks verified by the host (0: the whole namespace)."""
    @property
    def crc_size(self) -> int:
        """Bytes per logical block of the namespace's verification digests: 1, 2 or 4."""
    def id_ns(self) -> IdentifyData:
        """Identify Namespace data with fields named by the spec's abbreviations.

        Read again from the device at each call. Example: `nsze = nvme0n1.id_ns().nsze`.
        """
    @overload
    def id_data(
        self, byte_end: int, byte_begin: int | None = None, type: type[int] | None = None
    ) -> int:
        """The field in bytes [byte_begin, byte_end] of this namespace's Identify data, as an
        int or, with `type=str`, a string.

        Example: `nsze = nvme0n1.id_data(7, 0)`.
        """
    @overload
    def id_data(self, byte_end: int, byte_begin: int | None, type: type[str]) -> str:
        """The field in bytes [byte_begin, byte_end] of this namespace's Identify data, as an
        int or, with `type=str`, a string.

        Example: `nsze = nvme0n1.id_data(7, 0)`.
        """
    @overload
    def id_data(self, byte_end: int, byte_begin: int | None = None, *, type: type[str]) -> str:
        """The field in bytes [byte_begin, byte_end] of this namespace's Identify data, as an
        int or, with `type=str`, a string.

        Example: `nsze = nvme0n1.id_data(7, 0)`.
        """
    def get_lba_format(self, data_size: int = 512, meta_size: int = 0) -> int | None:
        """The LBA format index with this data and metadata size (bytes per block), or None.

        Example: `lbaf = nvme0n1.get_lba_format(4096, 0)`.
        """
    def supports(self, opcode: int) -> bool:
        """Whether IO opcode `opcode` (0..=255) is supported (Commands Supported and Effects log).

        Example: `if nvme0n1.supports(0x19): ...` (Copy).
        """
    def set_timeout_ms(self, opcode: int, msec: int) -> None:
        """Set the timeout of one IO opcode, ms (0: back to the controller's `timeout`)."""
    def format(self, data_size: int = 512, meta_size: int = 0, ses: int = 0) -> int:
        """Format the namespace to the LBA format with this data/metadata size and wait for it
        (timeout raised to at least 100 s); return dword 0 of the completion.

        Args:
            data_size: bytes of data per logical block.
            meta_size: bytes of metadata per logical block.
            ses: secure erase setting (0 none, 1 user data erase, 2 cryptographic erase).

        Raises NvmeArgumentError when no LBA format has these sizes; a failing status warns
        "ERROR status: SCT/SC". Example: `nvme0n1.format(4096)`.
        """
    def verify_enable(self, enable: bool = True) -> bool:
        """Turn checking of every read against what was written on or off; return whether it
        is on.

        Every read checks exactly the LBAs its command addresses (SLBA and NLB, whatever the
        buffer's size). A read whose data does not match completes with status 07/81 (warning
        "ERROR status: 07/81") and one ERROR record per wrong LBA is logged (logger `nvme`)
        saying what was found: a misdirected write (naming the LBA the data belongs to), stale
        data (an older version of this LBA), never-written data, corrupted content, or data
        where the LBA was written uncorrectable. The `verify` fixture turns it on. Example:
        `nvme0n1.verify_enable(True)`.
        """
    def inject_write_buffer_disable(self) -> None:
        """Stop stamping written data with LBA and token (verification still works by CRC)."""
    def inject_write_buffer_enable(self) -> None:
        """Stamp written data again: first 8 bytes of each LBA nsid/LBA, last 8 bytes a token.

        On by default: `write()` changes those bytes of `buf` before it is sent, and every read
        of those LBAs checks the stamps. When `buf` is still being sent by an earlier write in
        flight, the write is stamped and sent from a copy instead, and `buf` keeps the earlier
        stamps.
        """
    def save_crc(self, path: str | os.PathLike[str]) -> None:
        """Save the verification table (`crc_size` bytes per written LBA, and the stamp token
        tags) to the file `path`.

        Use it to keep verifying across tests or power cycles: `nvme0n1.save_crc("ns1.crc")`.
        """
    def load_crc(self, path: str | os.PathLike[str]) -> None:
        """Load a verification table saved by `save_crc` for this namespace, with the same
        `crc_size`, from `path`."""
    def read(
        self,
        qpair: Qpair,
        buf: Buffer,
        lba: int,
        lba_count: int = 1,
        io_flags: int = 0,
        cdw13: int = 0,
        cdw14: int = 0,
        cdw15: int = 0,
        cb: _Callback | None = None,
    ) -> Qpair:
        """Read (02h) of `lba_count` blocks at `lba` into `buf`; returns the qpair.

        Args:
            qpair: the IO queue pair that carries the command.
            buf: receives lba_count * sector_size bytes (it must be that large).
            lba: starting LBA.
            lba_count: number of logical blocks, 1..=65536.
            io_flags: CDW12 bits 31:16, as a 16-bit value (1 << 14 FUA, 1 << 15 limited
                retry) or in place (1 << 30 FUA, 1 << 31 limited retry).
            cdw13: dataset management hints. cdw14, cdw15: reference tag, application tag/mask.
            cb: completion callback.

        Example: `nvme0n1.read(qpair, buf, 0, 8).waitdone()`.
        """
    def write(
        self,
        qpair: Qpair,
        buf: Buffer,
        lba: int,
        lba_count: int = 1,
        io_flags: int = 0,
        cdw13: int = 0,
        cdw14: int = 0,
        cdw15: int = 0,
        cb: _Callback | None = None,
    ) -> Qpair:
        """Write (01h) of `lba_count` blocks at `lba` from `buf`; returns the qpair.

        Arguments as for `read()`. Example: `nvme0n1.write(qpair, buf, 0, 8).waitdone()`.
        """
    def compare(
        self,
        qpair: Qpair,
        buf: Buffer,
        lba: int,
        lba_count: int = 1,
        io_flags: int = 0,
        cb: _Callback | None = None,
    ) -> Qpair:
        """Compare (05h) of `lba_count` blocks at `lba` with `buf`; returns the qpair.

        A mismatch completes with status 02/85 (warning "ERROR status: 02/85").
        """
    def verify(
        self,
        qpair: Qpair,
        lba: int,
        lba_count: int = 1,
        io_flags: int = 0,
        cb: _Callback | None = None,
    ) -> Qpair:
        """Verify (0Ch) of `lba_count` blocks at `lba` (no data moves); returns the qpair."""
    def flush(self, qpair: Qpair, cb: _Callback | None = None) -> Qpair:
        """Flush (00h) of the volatile write cache; returns the qpair."""
    def write_uncorrectable(
        self, qpair: Qpair, lba: int, lba_count: int = 1, cb: _Callback | None = None
    ) -> Qpair:
        """Write Uncorrectable (04h): later reads of these blocks fail until they are written.

        Returns the qpair.
        """
    def write_zeroes(
        self,
        qpair: Qpair,
        lba: int,
        lba_count: int = 1,
        io_flags: int = 0,
        cb: _Callback | None = None,
    ) -> Qpair:
        """Write Zeroes (08h) of `lba_count` blocks at `lba`; returns the qpair.

        `io_flags` bit 9 (CDW12 bit 25) is DEAC (deallocate).
        """
    def dsm(
        self,
        qpair: Qpair,
        buf: Buffer,
        range_count: int,
        attribute: int = 4,
        cb: _Callback | None = None,
    ) -> Qpair:
        """Dataset Management (09h) with `range_count` ranges from `buf` (see
        `Buffer.set_dsm_range`); attribute 0x4 = deallocate.

        `buf` holds at least range_count * 16 bytes (1..=256 ranges). Returns the qpair.
        Example: `buf.set_dsm_range(0, 0, 8); nvme0n1.dsm(qpair, buf, 1).waitdone()`.
        """
    def copy(
        self,
        qpair: Qpair,
        buf: Buffer,
        range_count: int,
        sdlba: int,
        io_flags: int = 0,
        format: int = 0,
        cb: _Callback | None = None,
    ) -> Qpair:
        """Copy (19h) of `range_count` source ranges (format 0 descriptors in `buf`) to `sdlba`.

        Args:
            qpair: the IO queue pair.
            buf: the source range descriptors, 32 bytes each.
            range_count: number of source ranges.
            sdlba: destination starting LBA.
            io_flags: CDW12 bits 31:16.
            format: descriptor format (0).
            cb: completion callback.

        Returns the qpair.
        """
    def send_cmd(
        self,
        opcode: int,
        qpair: Qpair,
        buf: Buffer | None = None,
        nsid: int | None = None,
        cdw10: int = 0,
        cdw11: int = 0,
        cdw12: int = 0,
        cdw13: int = 0,
        cdw14: int = 0,
        cdw15: int = 0,
        cdw2: int = 0,
        cdw3: int = 0,
        cb: _Callback | None = None,
    ) -> Qpair:
        """Any IO command: `opcode` is the whole dword 0; `nsid` defaults to this namespace.

        `buf`, if given, is the data pointer (`buf.size` bytes); the other arguments are the
        command's dwords. Returns the qpair.
        Example: `nvme0n1.send_cmd(0x02, qpair, buf, cdw10=lba, cdw12=7).waitdone()`.
        """
    def close(self) -> None:
        """Release the namespace."""

# ---- Qpair ------------------------------------------------------------------------------------

class Qpair:
    """An IO queue pair:
    `Qpair(nvme, depth=64, prio=0, ien=True, iv=0xffff, sqid=0, lazy_doorbell=False)`.

    `depth` entries per queue (at most depth - 1 commands outstanding), 2..=CAP.MQES+1. `iv`
    0xffff lets the driver pick the vector; `sqid` 0 takes the lowest free queue id.
    `lazy_doorbell=True` rings the SQ doorbell only in `waitdone`. Delete it when done (the
    `qpair` fixture does).
    """

    def __init__(
        self,
        nvme: Controller,
        depth: int = 64,
        prio: int = 0,
        ien: bool = True,
        iv: int = 0xFFFF,
        sqid: int = 0,
        lazy_doorbell: bool = False,
    ) -> None:
        """Create an IO completion queue and an IO submission queue with the same id.

        Args:
            nvme: the controller.
            depth: entries per queue, 2..=CAP.MQES + 1; at most depth - 1 commands outstanding.
            prio: SQ priority class for weighted round robin (0 urgent .. 3 low).
            ien: whether the CQ raises interrupts.
            iv: the CQ's MSI-X vector; 0xffff lets the driver choose.
            sqid: queue id; 0 takes the lowest free one.
            lazy_doorbell: ring the SQ doorbell only in `waitdone()`.

        Raises:
            QpairCreationError: the queues could not be created.
            NvmeArgumentError: depth out of range.
        """
    @property
    def nvme(self) -> Controller:
        """The controller."""
    @property
    def sqid(self) -> int:
        """Queue id of the SQ (and its CQ)."""
    @property
    def epoch(self) -> int:
        """The controller epoch the qpair was (re-)created in (`Controller.epoch`)."""
    @property
    def alive(self) -> bool:
        """Whether the qpair exists on the device: False once deleted, and from a reset, FLR or
        power loss until the controller reset that re-creates it (then its submissions raise
        QueueGoneError)."""
    @property
    def depth(self) -> int:
        """Entries per queue."""
    @property
    def prio(self) -> int:
        """SQ priority class."""
    @property
    def ien(self) -> bool:
        """Whether the CQ raises interrupts."""
    @property
    def iv(self) -> int:
        """The CQ's interrupt vector."""
    @property
    def lazy_doorbell(self) -> bool:
        """Whether doorbells are rung only in waitdone."""
    @property
    def latest_cid(self) -> int:
        """CID of the latest command sent."""
    @property
    def latest_latency(self) -> int:
        """Latency of the latest completed command, µs."""
    def waitdone(self, expected: int = 1) -> int:
        """Reap `expected` completions (callbacks and warnings run here) and return dword 0 of
        the latest.

        Raises AssertionError when fewer than `expected` commands are outstanding or when called
        from a callback, TimeoutError when the completions do not come.
        Example: `nvme0n1.write(qpair, buf, 0).waitdone()`, or send 8 commands then
        `qpair.waitdone(8)`.
        """
    def delete(self) -> None:
        """Delete the SQ and CQ on the device (QpairDeletionError if that fails)."""
    def close(self) -> None:
        """Not how a qpair ends: raises AssertionError("use Qpair.delete()"), as pynvme does."""
    def cmdlog(self, count: int = 1000, offset: int = 0) -> list[str]:
        """This queue's command log, newest first: one string per command (SQE, CQE, times).

        `count` entries at most, after skipping the `offset` newest.
        """
    def msix_clear(self) -> None:
        """Forget that the CQ's interrupt fired."""
    def msix_isset(self) -> bool:
        """Whether the CQ's interrupt fired since the last clear."""
    def msix_mask(self) -> None:
        """Mask the CQ's vector: the device holds its interrupts as pending."""
    def msix_unmask(self) -> None:
        """Unmask the CQ's vector: a pending interrupt is delivered."""
    def wait_msix(self, timeout: float = 1.0) -> bool:
        """Wait up to `timeout` seconds for the CQ's interrupt; True if it fired."""

# ---- Subsystem --------------------------------------------------------------------------------

class Subsystem:
    """The NVM subsystem of a controller: `Subsystem(nvme, poweron_cb=None, poweroff_cb=None)`.

    `poweron_cb` / `poweroff_cb` switch the power with a lab power controller; without them the
    platform's own means are used (the simulated SSD is switched directly). After `poweron()` or
    `reset()`, call `Controller.reset()` to initialise the controller again.
    """

    def __init__(
        self,
        nvme: Controller,
        poweron_cb: Callable[[], object] | None = None,
        poweroff_cb: Callable[[], object] | None = None,
    ) -> None:
        """The subsystem of controller `nvme`.

        Args:
            nvme: the controller.
            poweron_cb: called without arguments by `poweron()` to restore the power.
            poweroff_cb: called without arguments by `poweroff()` to remove the power.
        """
    def reset(self) -> bool:
        """NVM subsystem reset (NSSR); False if the controller does not support it (CAP.NSSRS).

        The controller's queues are torn down (outstanding commands complete with 00/08). Then
        call `Controller.reset()`.
        """
    def poweroff(self, clean: bool = False) -> bool:
        """Remove the device's power (through `poweroff_cb` if given); returns True.

        The controller's queues are torn down (outstanding commands complete with 00/08). With
        `clean`, a normal shutdown notification is sent and waited for first; otherwise it is a
        power loss.
        """
    def poweron(self) -> bool:
        """Restore the device's power (through `poweron_cb` if given); returns True.

        Then call `Controller.reset()`.
        """
    def power_cycle(self, sec: float | None = None, clean: bool = False) -> bool:
        """Power off, keep the power off `sec` seconds, power on; returns True.

        The off time is honoured as given on every backend. Without `sec`: 15 s, or 100 ms on
        the simulated SSD (which keeps no charge). With `clean`, a normal shutdown notification
        comes first. Then call `Controller.reset()`.
        """
    def shutdown_notify(self, abrupt: bool = False, timeout: float = 10.0) -> None:
        """Shutdown notification (CC.SHN normal, or abrupt) and a wait of up to `timeout` seconds
        for CSTS.SHST = complete; raises NvmeShutdownStatusTimeoutError("csts.shst timeout").
        """

# ---- IO generator -----------------------------------------------------------------------------

@final
class _IOWorker:
    """The native half of `Namespace.ioworker()`: a worker thread and its qpair.

    Made by `nvme.IOWorker` from pynvme's parameters, already checked and normalised: IO sizes
    as (nlb, align, weight), opcodes as (opcode, percent).
    """

    def __init__(
        self,
        namespace: Namespace,
        io_sizes: list[tuple[int, int, int]],
        ops: list[tuple[int, int]],
        lba_random: int = 100,
        lba_start: int = 0,
        lba_step: int | None = None,
        sgl_percentage: int = 0,
        qdepth: int = 63,
        qprio: int = 0,
        region_start: int = 0,
        region_end: int = 18446744073709551615,
        iops: int = 0,
        io_count: int = 0,
        lba_count: int = 0,
        time: float | None = None,
        io_flags: int = 0,
        distribution: list[int] | None = None,
        ptype: int = 48879,
        pvalue: int = 100,
        io_sequence: list[tuple[int, int, int, int]] | None = None,
        slow_latency_us: int = 1000000,
        exit_on_error: bool = True,
        cpu_id: int | None = None,
        seed: int = 0,
        per_second: bool = False,
        latency_distribution: bool = False,
        latency_opcode: int | None = None,
        cmdlog: int = 0,
        cmdlog_error_only: bool = False,
        one_pass: bool = False,
        fw_debug: bool = False,
    ) -> None:
        """A worker on `namespace`, not started. With `fw_debug`, a run that ends on a failing
        IO leaves its queue pair on the device (not deleted).

        Raises:
            NvmeArgumentError: qdepth, io_flags or time out of range.
        """
    def start(self, gate: _StartGate | None = None) -> None:
        """Create the worker's qpair and start its thread; with `gate`, its first IO waits for
        `gate.open()`.

        Raises:
            NvmeArgumentError: a workload the namespace cannot run (the message names the
                parameter), or a second start.
            QpairCreationError: no free IO queue, or no memory for the buffers.
        """
    @property
    def running(self) -> bool:
        """Whether the worker thread runs."""
    @property
    def qid(self) -> int:
        """Queue id of the worker's qpair (0 before start)."""
    def stop(self) -> None:
        """Ask the worker to stop sending; `join()` returns once its IO completed."""
    def snapshot(self) -> dict[str, float]:
        """Cumulative counters: reads, writes, others, bytes, latency_sum_ns, latency_max_ns,
        aborted, outstanding, elapsed (seconds)."""
    def join(self, percentiles: list[float] = ...) -> dict[str, Any]:
        """Wait for the end (GIL released); the result with the latency at `percentiles` (µs).

        Raises:
            NvmeArgumentError: the worker was not started.
        """

@final
class _StartGate:
    """Holds workers started with it until `open()`, so they send their first IO together."""

    def __init__(self) -> None:
        """A closed gate."""
    def open(self) -> None:
        """Let the workers go."""

# ---- Simulator --------------------------------------------------------------------------------

@final
class Simulator:
    """The simulated SSD behind a `Pcie` (`pcie.sim`; None for a real device): makes it misbehave.

    `inject(action, value, ...)` installs a fault on matching commands and returns its id.
    Actions and their `value`: "delay" (ms), "drop" (never complete: the host times out),
    "status" (SCT << 8 | SC to complete with), "flip_bits" (bits flipped in read data),
    "lost_write", "misdirected_write" (LBA offset), "stale_data", "duplicate_cqe",
    "wrong_cid" (XOR applied to the CID), "wrong_sqid" (SQ id to post). Matching: `admin`
    (admin queue instead of IO queues), `opcode`, `queue`, `nsid`, `lba=(start, end)`; `count`
    limits how many commands are affected, `probability` makes it random.

    Not created directly: get it from `pcie.sim`.
    Example: `sim = pcie.sim; fid = sim.inject("drop", opcode=0x02, count=1); sim.hits(fid)`.
    """

    def inject(
        self,
        action: str,
        value: int | None = None,
        *,
        admin: bool = False,
        opcode: int | None = None,
        queue: int | None = None,
        nsid: int | None = None,
        lba: tuple[int, int] | None = None,
        count: int | None = None,
        probability: float = 1.0,
    ) -> int:
        """Install a fault; return its id (for `hits` and `remove`).

        Args:
            action: "delay", "drop", "status", "flip_bits", "lost_write", "misdirected_write",
                "stale_data", "torn_write" (the write completes, and the next power loss takes
                back its second half: its last nlb / 2 blocks, or half of a one-block write's
                bytes), "read_without_data" (a read completes successfully and transfers
                nothing), "duplicate_cqe", "wrong_cid" or "wrong_sqid".
            value: the action's value: ms for "delay", SCT << 8 | SC for "status", bits for
                "flip_bits", an LBA offset for "misdirected_write", the XOR for "wrong_cid",
                the SQ id for "wrong_sqid"; None for the others.
            admin: match admin commands instead of IO commands.
            opcode: match only this opcode.
            queue: match only this SQ id.
            nsid: match only this namespace.
            lba: match only IO commands whose LBAs overlap start..end (end excluded).
            count: affect at most this many commands (None: all).
            probability: chance, 0.0..=1.0, that a matching command is affected.

        Raises NvmeArgumentError for an unknown action, a missing value or a probability out of
        range. Example: `fid = sim.inject("delay", 50, opcode=0x01, count=10)`.
        """
    def hits(self, fault_id: int) -> int:
        """How many commands fault `fault_id` has affected."""
    def remove(self, fault_id: int) -> bool:
        """Remove fault `fault_id`; False if it was gone already."""
    def clear(self) -> None:
        """Remove every fault."""
    def controller_fatal(self) -> None:
        """Controller fatal status: CSTS.CFS is set and the controller stops processing commands
        until it is reset (`Controller.reset()`)."""
    def firmware_crash(self) -> None:
        """A firmware crash: the device's own code fails in the middle of its work; the
        controller reports Controller Fatal Status (CSTS.CFS), completes nothing more, and works
        again after `Controller.reset()`."""
    def surprise_removal(self) -> None:
        """Surprise removal: every register and config read returns all ones, no more DMA."""
    def reinsert(self) -> None:
        """Undo a surprise removal (the device comes back as after a conventional reset).

        Then call `Controller.reset()` to initialise the controller again.
        """

    def power_off(self) -> None:
        """Remove the simulated SSD's power, as a lab's power switch does.

        What the volatile write cache held is lost, and an unsafe shutdown is counted unless a
        shutdown notification completed. The driver is not told: this is the switch a
        `Subsystem` power callback (or a lab relay, `nvme.lab`) flips while
        `Subsystem.poweroff()` runs.
        """

    def power_on(self) -> None:
        """Restore the simulated SSD's power: it comes up as from a cold boot."""

    @property
    def powered(self) -> bool:
        """Whether the simulated SSD has power."""

# ---- completions and Identify data ------------------------------------------------------------

@final
class CQE:
    """A completion queue entry: the argument of a command's callback.

    `cqe[0]` .. `cqe[3]` are its dwords; the fields have the spec's names.

    Example callback: `def cb(cqe): assert cqe.sct == 0 and cqe.sc == 0, cqe`.
    """

    __hash__: ClassVar[None]  # type: ignore[assignment]
    def __init__(self, dw0: int = 0, dw1: int = 0, dw2: int = 0, dw3: int = 0) -> None:
        """A CQE from its four dwords."""
    def __getitem__(self, index: int, /) -> int:
        """Dword `index` (0..3, or -4..-1)."""
    def __len__(self) -> int:
        """4: the number of dwords."""
    def __eq__(self, other: object, /) -> bool:
        """True if `other` is a CQE with the same dwords."""
    @property
    def cdw0(self) -> int:
        """Dword 0 (command specific)."""
    @property
    def cdw1(self) -> int:
        """Dword 1 (command specific)."""
    @property
    def sqhd(self) -> int:
        """SQ head pointer."""
    @property
    def sqid(self) -> int:
        """SQ identifier."""
    @property
    def cid(self) -> int:
        """Command identifier."""
    @property
    def p(self) -> int:
        """Phase tag (0 or 1)."""
    @property
    def status(self) -> int:
        """Status field without the phase tag (15 bits: SC, SCT, CRD, M, DNR)."""
    @property
    def sc(self) -> int:
        """Status code."""
    @property
    def sct(self) -> int:
        """Status code type (0 generic, 1 command specific, 2 media and data integrity, ...)."""
    @property
    def crd(self) -> int:
        """Command retry delay."""
    @property
    def m(self) -> int:
        """More (0 or 1)."""
    @property
    def dnr(self) -> int:
        """Do not retry (0 or 1)."""

@final
class IdentifyData:
    """Identify data (controller or namespace): every field is an attribute named by the spec's
    abbreviation (`id_ctrl.mdts`, `id_ctrl.sn`, `id_ns.nsze`, `id_ns.flbas` ...): integers,
    strings for ASCII fields, bytes for the rest. `raw` is the whole 4096-byte page.

    Returned by `Controller.id_ctrl()` and `Namespace.id_ns()`; not created directly.
    `dir(id_ctrl)` lists the field names; an unknown name raises AttributeError.
    """

    def __getattr__(self, name: str) -> int | str | bytes:
        """The field `name` (lower case, as the spec abbreviates it): an int, a str (ASCII
        fields such as sn, mn, fr, subnqn) or bytes."""
    def __dir__(self) -> list[str]:
        """The field names, and "raw"."""
    @property
    def raw(self) -> bytes:
        """The whole identify page (4096 bytes)."""

# ---- metamode: queues, commands, PRP lists and SGLs built by the script ------------------------

class PRP(Buffer):
    """A Buffer for a data pointer or a queue: `PRP(length=4096, name="PRP", pvalue=0, ptype=0)`.

    An `SQE`'s `prp1`/`prp2`, the metamode commands of `IOSQ` and the `prp1` of `IOCQ`/`IOSQ`
    take it by its `phys_addr` (memory start + `offset`) and keep it alive.

    Example: `buf = PRP(ptype=32, pvalue=0xffffffff); buf.offset = 0x10; buf.size -= 0x10`.
    """

    def __init__(
        self, length: int = 4096, name: str = "PRP", pvalue: int = 0, ptype: int = 0
    ) -> None:
        """Allocate `length` bytes filled with a pattern (see `Buffer`)."""

@final
class PRPList(PRP):
    """A PRP list page: `PRPList(length=4096, name="PRPList")`, length/8 entries (512).

    `lst[i] = prp` writes the `phys_addr` of `prp` (a Buffer) into entry i, at bytes i*8 from the
    start of the memory whatever the `offset`, and keeps it; `lst[i]` gives it back (None if
    unset). A command's PRP2 (or a non-contiguous queue's PRP1) points at `phys_addr`, so an
    `offset` makes the list start at entry offset/8. The last entry may hold another PRPList.

    Example: `lst = PRPList(); lst[0] = PRP(); sqe.prp2 = lst`.
    """

    def __init__(self, length: int = 4096, name: str = "PRPList") -> None:
        """Allocate an empty (zeroed) PRP list of `length` bytes."""
    def __getitem__(self, index: int, /) -> Buffer | None:  # type: ignore[override]
        """The Buffer in entry `index`, or None."""
    def __setitem__(self, index: int, value: Buffer, /) -> None:  # type: ignore[override]
        """Write the `phys_addr` of `value` into entry `index` (0..entry_count); a larger index
        raises NvmeArgumentError."""
    @property
    def entry_count(self) -> int:
        """Number of entries (length / 8)."""

class SGL(Buffer):
    """An SGL descriptor object, a Buffer: `SGL(length=4096, name="SGL", pvalue=0, ptype=0)` is a
    data block of its own memory (`size` bytes from `offset`). The kinds are the subclasses
    `DataBlockSGL`, `BitBucketSGL`, `SegmentSGL` and `LastSegmentSGL`; `SQE.sgl`, the `sgl` of
    the `IOSQ` commands and segment entries take any of them.
    """

    def __init__(
        self, length: int = 4096, name: str = "SGL", pvalue: int = 0, ptype: int = 0
    ) -> None:
        """Allocate `length` bytes filled with a pattern (see `Buffer`)."""
    @property
    def desc(self) -> int:
        """The 16-byte SGL descriptor of this object, as a little-endian int."""

@final
class DataBlockSGL(SGL):
    """An SGL Data Block: `DataBlockSGL(length=4096, name="DataBlockSGL", pvalue=0, ptype=0)`,
    the memory the data of a command goes to or comes from.
    """

    def __init__(
        self, length: int = 4096, name: str = "DataBlockSGL", pvalue: int = 0, ptype: int = 0
    ) -> None:
        """Allocate `length` bytes filled with a pattern (see `Buffer`)."""

@final
class BitBucketSGL(SGL):
    """An SGL Bit Bucket: `BitBucketSGL(length=4096, name="BitBucketSGL")`: `size` bytes of a
    read are discarded (the device must support bit buckets: Identify Controller SGLS bit 16).
    """

    def __init__(self, length: int = 4096, name: str = "BitBucketSGL") -> None:
        """A bit bucket of `length` bytes."""

@final
class SegmentSGL(SGL):
    """An SGL Segment: `SegmentSGL(length=4096, name="SegmentSGL")`, a list of length/16
    descriptors.

    `seg[i] = sgl` writes the descriptor of `sgl` into entry i and keeps it; a `SegmentSGL` or
    `LastSegmentSGL` as the last entry chains the next segment.

    Example: `seg = SegmentSGL(16 * 2); seg[0] = DataBlockSGL(512 * 6)`, then
    `seg[1] = LastSegmentSGL(16)`.
    """

    def __init__(self, length: int = 4096, name: str = "SegmentSGL") -> None:
        """An empty segment of `length` bytes (length/16 descriptors)."""
    def __getitem__(self, index: int, /) -> SGL | None:  # type: ignore[override]
        """The SGL object in entry `index`, or None."""
    def __setitem__(self, index: int, value: SGL, /) -> None:  # type: ignore[override]
        """Write the descriptor of `value` into entry `index` (0..length/16)."""

@final
class LastSegmentSGL(SGL):
    """The last SGL Segment: `LastSegmentSGL(length=4096, name="LastSegmentSGL")`, like
    `SegmentSGL`, but its descriptor tells the device that no segment follows.
    """

    def __init__(self, length: int = 4096, name: str = "LastSegmentSGL") -> None:
        """An empty last segment of `length` bytes (length/16 descriptors)."""
    def __getitem__(self, index: int, /) -> SGL | None:  # type: ignore[override]
        """The SGL object in entry `index`, or None."""
    def __setitem__(self, index: int, value: SGL, /) -> None:  # type: ignore[override]
        """Write the descriptor of `value` into entry `index` (0..length/16)."""

@final
class SQE:
    """A submission queue entry: `SQE(*dwords)`, 16 dwords (the missing ones 0), list-like.

    `sqe[i]` reads and writes dword i, `len(sqe)` is 16, `SQE(*sqe)` copies it. `prp1`, `prp2` and
    `mptr` take an int or a Buffer (its `phys_addr`; the SQE then keeps the Buffer alive), `sgl`
    an SGL object (its descriptor goes into dwords 9:6 and PSDT becomes 1).

    Example: `cmd = SQE(2, 1); cmd.cid = 0; cmd.prp1 = PRP(4096); cmd[12] = 0; sq[0] = cmd`.
    """

    __hash__: ClassVar[None]  # type: ignore[assignment]
    def __init__(self, *dwords: int) -> None:
        """An SQE from up to 16 dwords (dword 0: opcode, FUSE, PSDT, CID; dword 1: NSID ...)."""
    def __len__(self) -> int:
        """16: the number of dwords."""
    def __getitem__(self, index: int, /) -> int:
        """Dword `index` (0..15, or -16..-1)."""
    def __setitem__(self, index: int, value: int, /) -> None:
        """Set dword `index`."""
    def __iter__(self) -> Iterator[int]:
        """The 16 dwords."""
    def __eq__(self, other: object, /) -> bool:
        """True if `other` is an SQE (or a sequence of 16 ints) with the same dwords."""
    @property
    def opc(self) -> int:
        """Opcode (bits 7:0 of dword 0)."""
    @opc.setter
    def opc(self, value: int) -> None: ...
    @property
    def opcode(self) -> int:
        """Opcode, the same as `opc`."""
    @opcode.setter
    def opcode(self, value: int) -> None: ...
    @property
    def cid(self) -> int:
        """Command identifier (bits 31:16 of dword 0)."""
    @cid.setter
    def cid(self, value: int) -> None: ...
    @property
    def nsid(self) -> int:
        """Namespace identifier (dword 1)."""
    @nsid.setter
    def nsid(self, value: int) -> None: ...
    @property
    def prp1(self) -> int:
        """PRP entry 1 (dwords 7:6); set it from an int or a Buffer."""
    @prp1.setter
    def prp1(self, value: int | Buffer) -> None: ...
    @property
    def prp2(self) -> int:
        """PRP entry 2 or the address of a PRP list (dwords 9:8); set it from an int or a
        Buffer/PRPList."""
    @prp2.setter
    def prp2(self, value: int | Buffer) -> None: ...
    @property
    def mptr(self) -> int:
        """Metadata pointer (dwords 5:4); set it from an int or a Buffer."""
    @mptr.setter
    def mptr(self, value: int | Buffer) -> None: ...
    @property
    def sgl(self) -> SGL | None:
        """The SGL object set as the data pointer, or None."""
    @sgl.setter
    def sgl(self, value: SGL) -> None: ...
    @property
    def slba(self) -> int:
        """Starting LBA (dwords 11:10)."""
    @slba.setter
    def slba(self, value: int) -> None: ...
    @property
    def nlb(self) -> int:
        """Number of logical blocks, 1-based (dword 12 bits 15:0 hold it 0-based)."""
    @nlb.setter
    def nlb(self, value: int) -> None: ...

@final
class IOCQ:
    """An IO completion queue in memory the script gives (metamode):
    `IOCQ(ctrlr, qid, qsize, prp1, iv=0, ien=False, pc=True)`.

    Creating it sends Create I/O Completion Queue; a failing status is the warning "ERROR status:
    SCT/SC", and the object then exists only on the host. The queue id is reserved, so no `Qpair`
    takes it. `cq[i]` reads entry i as a `CQE` (phase tag first), `cq.head = n` writes the head
    doorbell with any value, `wait_pbit()` and `waitdone()` wait for completions.

    Example: `cq = IOCQ(nvme0, 1, 10, PRP(10*16)); ...; cq.wait_pbit(cq.head, 1); cq.head = 1`.
    """

    def __init__(
        self,
        ctrlr: Controller,
        qid: int,
        qsize: int,
        prp1: Buffer,
        iv: int = 0,
        ien: bool = False,
        pc: bool = True,
    ) -> None:
        """Create the queue on the device.

        Args:
            ctrlr: the controller.
            qid: queue id (any 16-bit value: the device judges it).
            qsize: number of entries, 1-based (1..=65536; the device judges it).
            prp1: the queue's memory: a Buffer (PRP), physically contiguous, or a PRPList of
                pages for a non-contiguous queue (with `pc=False`).
            iv: interrupt vector.
            ien: interrupts enabled.
            pc: physically contiguous.

        Raises:
            QpairCreationError: `qid` is used by a `Qpair` of this controller.
            NvmeArgumentError: `qsize` is 0 or above 65536, `prp1` is not a Buffer.
        """
    def __len__(self) -> int:
        """`qsize`."""
    def __getitem__(self, index: int, /) -> CQE:
        """Entry `index` (0..qsize) as it is in memory; IndexError beyond the queue."""
    @property
    def id(self) -> int:
        """Queue identifier."""
    @property
    def qid(self) -> int:
        """Queue identifier, the same as `id`."""
    @property
    def qsize(self) -> int:
        """Number of entries."""
    @property
    def prp1(self) -> Buffer:
        """The memory given as `prp1`."""
    @property
    def head(self) -> int:
        """The head doorbell value last written. Writing it rings the CQ head doorbell with any
        value; a value beyond the queue waits up to 0.5 s for the asynchronous event the device
        raises, so its warning "AER notification is triggered: 0x10100" comes from the write."""
    @head.setter
    def head(self, value: int) -> None: ...
    @property
    def rpointer(self) -> int:
        """The next entry `waitdone()` reads (back to 0 after the last entry)."""
    def wait_pbit(self, index: int, expected: int, timeout: float = 10.0) -> bool:
        """Wait until the phase tag of entry `index` is `expected` (0 or 1).

        Args:
            index: the entry (0..qsize).
            expected: the phase tag to wait for.
            timeout: seconds to wait at most.

        Returns:
            True when the phase tag is `expected`, False if `timeout` passed first.
        """
    def waitdone(self, expected: int = 1, timeout: float = 10.0) -> None:
        """Wait for `expected` new completions from `rpointer` on, advancing it.

        The `cb` given to the IOSQ command that completed is called with the `CQE`, and an error
        status warns "ERROR status: SCT/SC". The head doorbell stays the script's to write:
        `cq.head = cq.rpointer`.

        Raises:
            TimeoutError: fewer than `expected` completions arrived within `timeout` seconds.
        """
    def delete(self, qid: int | None = None) -> None:
        """Send Delete I/O Completion Queue for this queue, or for `qid` (to test the device);
        a failing status is a warning."""

@final
class IOSQ:
    """An IO submission queue in memory the script gives (metamode):
    `IOSQ(ctrlr, qid, qsize, prp1, cqid=None, pc=True, qprio=0, nvmsetid=0, cq=None)`.

    Creating it sends Create I/O Submission Queue bound to CQ `cq.id` (or `cqid`, or `qid`); a
    failing status is a warning. `sq[i] = sqe` writes an `SQE` (or 16 ints) into slot i and keeps
    its Buffers alive, `sq.tail = n` writes the tail doorbell with any value. `read()`, `write()`,
    `flush()` and `send_cmd()` fill the slot at `wpointer` and advance it; ringing stays the
    script's: `sq.tail = sq.wpointer`.

    Example: `sq = IOSQ(nvme0, 1, 10, PRP(10*64), cq=cq)`, then
    `sq.read(0, 1, 0, 1, prp1=PRP()); sq.tail = 1`.
    """

    def __init__(
        self,
        ctrlr: Controller,
        qid: int,
        qsize: int,
        prp1: Buffer,
        cqid: int | None = None,
        pc: bool = True,
        qprio: int = 0,
        nvmsetid: int = 0,
        cq: IOCQ | None = None,
    ) -> None:
        """Create the queue on the device.

        Args:
            ctrlr: the controller.
            qid: queue id (any 16-bit value: the device judges it).
            qsize: number of entries, 1-based (1..=65536).
            prp1: the queue's memory: a Buffer (PRP), or a PRPList of pages (with `pc=False`).
            cqid: the CQ id (pynvme's way; `cq` is preferred).
            pc: physically contiguous.
            qprio: priority class for weighted round robin, 0..=3.
            nvmsetid: NVM set identifier.
            cq: the IOCQ its completions go to; its `waitdone()` then calls the commands' `cb`.

        Raises:
            QpairCreationError: `qid` is used by a `Qpair` of this controller.
            NvmeArgumentError: a bad `qsize` or `qprio`, or `cqid` differs from `cq.id`.
        """
    def __len__(self) -> int:
        """`qsize`."""
    def __getitem__(self, index: int, /) -> SQE:
        """The SQE in slot `index` as it is in memory."""
    def __setitem__(self, index: int, value: SQE | Iterable[int], /) -> None:
        """Write an SQE (or 16 dwords) into slot `index`."""
    @property
    def id(self) -> int:
        """Queue identifier."""
    @property
    def qid(self) -> int:
        """Queue identifier, the same as `id`."""
    @property
    def qsize(self) -> int:
        """Number of entries."""
    @property
    def cqid(self) -> int:
        """The id of the CQ this SQ posts to."""
    @property
    def cq(self) -> IOCQ | None:
        """The IOCQ given at creation, or None."""
    @property
    def prp1(self) -> Buffer:
        """The memory given as `prp1`."""
    @property
    def tail(self) -> int:
        """The tail doorbell value last written. Writing it rings the SQ tail doorbell with any
        value; a value beyond the queue waits up to 0.5 s for the asynchronous event the device
        raises, so its warning "AER notification is triggered: 0x10100" comes from the write."""
    @tail.setter
    def tail(self, value: int) -> None: ...
    def cmdlog(self, count: int = 1000, offset: int = 0) -> list[str]:
        """This SQ's command log, newest first (`count` entries after the `offset` newest): the
        commands its tail doorbells handed the device, each with its completion once
        `cq.waitdone()` reaped it, else "not completed"; the format of `Qpair.cmdlog`."""
    @property
    def wpointer(self) -> int:
        """The slot `read()`, `write()`, `flush()` and `send_cmd()` fill next."""
    @wpointer.setter
    def wpointer(self, value: int) -> None: ...
    def read(
        self,
        cid: int,
        nsid: int,
        lba: int,
        lba_count: int = 1,
        mptr: int | Buffer | None = None,
        prp1: int | Buffer | None = None,
        prp2: int | Buffer | None = None,
        sgl: SGL | None = None,
        cb: _Callback | None = None,
    ) -> None:
        """Fill the next slot with a Read of `lba_count` blocks (1-based) at `lba`.

        Args:
            cid: the command identifier, any (duplicates on purpose are allowed).
            nsid: namespace id.
            lba: starting LBA.
            lba_count: number of blocks, 1..=65536.
            mptr: metadata pointer: an int or a Buffer.
            prp1: PRP entry 1: an int or a Buffer.
            prp2: PRP entry 2 or a PRP list: an int or a Buffer/PRPList.
            sgl: an SGL object instead of PRPs (PSDT 1).
            cb: called by the IOCQ's `waitdone()` with the completion.
        """
    def write(
        self,
        cid: int,
        nsid: int,
        lba: int,
        lba_count: int = 1,
        mptr: int | Buffer | None = None,
        prp1: int | Buffer | None = None,
        prp2: int | Buffer | None = None,
        sgl: SGL | None = None,
        cb: _Callback | None = None,
    ) -> None:
        """Fill the next slot with a Write; the arguments are those of `read()`."""
    def flush(self, cid: int, nsid: int, cb: _Callback | None = None) -> None:
        """Fill the next slot with a Flush."""
    def send_cmd(
        self,
        opcode: int,
        cid: int,
        nsid: int,
        mptr: int | Buffer | None = None,
        prp1: int | Buffer | None = None,
        prp2: int | Buffer | None = None,
        sgl: SGL | None = None,
        psdt: int = 0,
        cdw10: int = 0,
        cdw11: int = 0,
        cdw12: int = 0,
        cdw13: int = 0,
        cdw14: int = 0,
        cdw15: int = 0,
        cdw02: int = 0,
        cdw03: int = 0,
        cb: _Callback | None = None,
    ) -> None:
        """Fill the next slot with any IO command: `opcode` (bits 7:0 of dword 0), `cid`, the
        data pointer as in `read()`, `psdt` (1 by itself when `sgl` is given) and dwords."""
    def delete(self, qid: int | None = None) -> None:
        """Send Delete I/O Submission Queue for this queue, or for `qid`; a failing status is a
        warning."""
