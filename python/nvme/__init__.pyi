"""Drive NVMe SSDs from Python: every admin and IO command, raw queues, resets, power cycles.

The API is pynvme's. A script talks to one controller through a handful of objects::

    from nvme import *

    pcie = Pcie("0000:01:00.0")        # or "" / "sim://" for the simulated SSD,
                                       # "sim://?capacity=1T&lba=4096&namespaces=2" to shape it
    nvme0 = Controller(pcie)           # enables the controller and runs the default init
    nvme0n1 = Namespace(nvme0, 1)      # nsid 1; nvme0n1.verify_enable(True) checks every read
    qpair = Qpair(nvme0, 64)           # one IO submission/completion queue pair, depth 64
    buf = Buffer(4096)                 # DMA memory, indexable like bytes: buf[0], buf[0:8]

    nvme0.identify(buf).waitdone()     # admin commands are methods of Controller
    nvme0n1.write(qpair, buf, 0, 8).waitdone()   # IO commands go through a Qpair
    print(nvme0.id_ctrl().mn, nvme0n1.id_ns().nsze)  # Identify fields by spec name

    nvme0n1.close(); qpair.delete(); pcie.close()

A non-zero completion status is a `UserWarning` ("ERROR status: 02/81"), a misuse of the API
is an exception. Under pytest, the fixtures `pcie`, `nvme0`, `nvme0n1`, `qpair`, `subsystem`,
`buf`, `verify`, `id_ctrl`, `id_ns` (from `nvme.pytest_plugin`) build and release these objects.
"""

# The package's types: the native module's names, and the Python subclass `Controller`.
# The module-level `__getattr__` of __init__.py (which only explains a missing native module)
# is left out, so that a misspelt name is reported by the type checker.

from collections.abc import Callable
from typing import Any

from . import _native
from ._native import (
    CQE,
    IOCQ,
    IOSQ,
    PRP,
    SGL,
    SQE,
    BitBucketSGL,
    Buffer,
    ControllerNotReadyError,
    DataBlockSGL,
    IdentifyData,
    LastSegmentSGL,
    NamespaceCreationError,
    NamespaceDeletionError,
    NvmeArgumentError,
    NvmeDeletionError,
    NvmeEnumerateError,
    NvmeShutdownStatusTimeoutError,
    Pcie,
    PRPList,
    Qpair,
    QpairCreationError,
    QpairDeletionError,
    QueueGoneError,
    SegmentSGL,
    Simulator,
    Subsystem,
    __version__,
)
from .ioworker import IOWorker

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
    "IOWorker",
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
    "__version__",
    "srand",
]

class Controller(_native.Controller):
    """An NVMe controller: `Controller(pcie, nvme_init_func=None)`.

    Creating it initialises the controller as the NVMe spec orders: disable, admin queue,
    enable, identify, number of queues, one AER. `nvme_init_func(controller)`, if given (or
    assigned to `nvme_init_func` later), runs instead, at creation and at every `reset()`;
    it may call `init_adminq()`, `init_ns()`, `wait_csts()` and send commands itself.

    Admin commands are asynchronous and return the controller, so
    `nvme0.getfeatures(7).waitdone()` chains; `cb=` gives a callback that receives the `CQE`.
    A failing status raises the warning "ERROR status: SCT/SC". `nvme0[offset]` reads and
    writes 32-bit BAR0 registers.
    """

    def __init__(
        self, pcie: Pcie, nvme_init_func: Callable[[Controller], object] | None = None
    ) -> None:
        """Attach to the NVMe controller of `pcie` and initialise it.

        Args:
            pcie: the PCIe function (`Pcie(...)`, or the `pcie` fixture).
            nvme_init_func: None for the spec's initialisation; or a function called as
                `nvme_init_func(controller)` instead, at creation and at every `reset()`.

        Raises:
            NvmeEnumerateError: the initialisation failed.

        Example: `nvme0 = Controller(Pcie("sim://"))`.
        """

class Namespace(_native.Namespace):
    """A namespace: `Namespace(nvme, nsid=1, nlba_verify=0)`.

    IO methods are asynchronous and return the qpair, so `nvme0n1.read(qpair, buf,
    0).waitdone()` chains; `ioworker(...)` makes an IO generator on this namespace.
    """

    def ioworker(
        self,
        *,
        io_size: int | list[int] | range | dict[int, int] = 8,
        lba_step: int | None = None,
        lba_align: int | list[int] | None = None,
        lba_random: bool | int = True,
        read_percentage: int = 100,
        op_percentage: dict[int, int] | None = None,
        time: float = 0,
        qdepth: int = 63,
        region_start: int = 0,
        region_end: int = 0xFFFFFFFFFFFFFFFF,
        iops: int = 0,
        io_count: int = 0,
        lba_count: int = 0,
        lba_start: int = 0,
        qprio: int = 0,
        distribution: list[int] | None = None,
        ptype: int = 0xBEEF,
        pvalue: int = 100,
        io_sequence: list[tuple[int, int, int, int]] | None = None,
        output_io_per_second: list[int] | None = None,
        output_percentile_latency: dict[float, Any] | None = None,
        output_percentile_latency_opcode: int | None = None,
        output_cmdlog_list: list[Any] | None = None,
        cmdlog_error_only: bool = False,
        sgl_percentage: int = 0,
        io_flags: int = 0,
        slow_latency: int = 1_000_000,
        exit_on_error: bool = True,
        cpu_id: int | None = None,
        seed: int | None = None,
        fw_debug: bool = False,
    ) -> IOWorker:
        """An IO generator on this namespace, not started: `start()` it, or use `with`.

        See `nvme.ioworker` and the README ("The IO generator") for every parameter; the
        output lists and dicts given are filled by `close()`.

        Raises:
            NvmeArgumentError: a parameter out of range (the message names it).
        """

def srand(seed: int) -> None:
    """Seed the generator of random data patterns and of ioworker seeds: runs repeat."""

def native_available() -> bool:
    """Tell whether the native driver module `nvme._native` was imported."""
