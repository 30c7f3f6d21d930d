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
`buf`, `verify`, `id_ctrl`, `id_ns` (from `nvme.pytest_plugin`) build and release these objects,
and each run gets a results folder (`nvme.report`: results.json, plots, `log_series()`).
"""

from __future__ import annotations

import importlib
from typing import Any

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

try:
    _native = importlib.import_module("._native", __name__)
except ImportError as exc:
    # Keep the pure Python parts (pytest plugin, CLI) usable while the native module is
    # missing or fails to load; any use of the driver itself raises with the cause.
    _native = None
    _native_error: ImportError | None = exc
else:
    _native_error = None
    from ._native import *  # noqa: F403

    if hasattr(_native, "__version__"):
        __version__: str = _native.__version__

    class Controller(_native.Controller):
        """An NVMe controller: `Controller(pcie, nvme_init_func=None)`.

        Creating it initialises the controller as the NVMe spec orders: disable, admin queue,
        enable, identify, number of queues, one AER. `nvme_init_func(controller)`, if given (or
        assigned to `nvme_init_func` later), runs instead, at creation and at every `reset()`;
        it may call `init_adminq()`, `init_ns()`, `wait_csts()` and send commands itself.
        """

        def __init__(self, pcie: Pcie, nvme_init_func: Any = None) -> None:
            self._initialize()

    from .ioworker import IOWorker, reseed

    class Namespace(_native.Namespace):
        """A namespace: `Namespace(nvme, nsid=1, nlba_verify=0)`.

        IO methods are asynchronous and return the qpair, so `nvme0n1.read(qpair, buf,
        0).waitdone()` chains; `ioworker(...)` makes an IO generator on this namespace.
        """

        def ioworker(
            self,
            *,
            io_size: Any = 8,
            lba_step: int | None = None,
            lba_align: Any = None,
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

            Workload: `io_size` blocks per IO (int, list/range of sizes chosen uniformly, or
            `{size: weight}`), `lba_align` (int, or one per size; default 1), `lba_random`
            (bool or percentage of random IOs), sequential IOs from `lba_start` moving by
            `lba_step` blocks (default: the IO size; may be negative or 0), `read_percentage`
            or `op_percentage` (`{opcode: percent}`, any opcode: 2 read, 1 write, 9 trim,
            8 write zeroes, 4 write uncorrectable, 0 flush, 5 compare, 0xc verify), in the LBA
            region [`region_start`, `region_end`), `distribution` (100 shares of 10,000 random
            IOs, one per 1 % of the region), `sgl_percentage`, `io_flags` (upper 16 bits of
            cdw12), write data `ptype`/`pvalue` (default random, incompressible), or a replayed
            `io_sequence` of `(slba, nlb, opcode, time_sent_us)`.

            Pace and end: `qdepth` IOs outstanding (the queue has qdepth + 1 entries, priority
            `qprio`), `iops` per second (0: unthrottled), until `time` seconds, `io_count` IOs
            or `lba_count` blocks (a purely sequential workload with none of them makes one
            pass over the region). `exit_on_error` stops at the first failing IO; IOs slower
            than `slow_latency` µs are counted and warned about; `cpu_id` pins the worker's
            thread; `seed` repeats a run (default: drawn from a generator `srand()` seeds).
            `fw_debug` is for a firmware debugger: when the run ends on a failing IO, `close()`
            leaves the worker's queue pair on the device and ends the test process at once
            (`os._exit`, status the error's low byte, or 1), the drive left as it is.

            Outputs, filled by `close()`: `output_io_per_second` (a list: IOs completed in each
            second), `output_percentile_latency` (a dict: its keys are percentiles, its values
            become µs; the result then has `latency_distribution`), measured only for opcode
            `output_percentile_latency_opcode` if given, `output_cmdlog_list` (a list of N: the
            last N IOs as `(slba, nlb, opcode, time_sent_us, time_cplt_us, status)`, or only
            failed ones with `cmdlog_error_only`).
            """
            return IOWorker(
                self,
                dict(
                    io_size=io_size,
                    lba_step=lba_step,
                    lba_align=lba_align,
                    lba_random=lba_random,
                    read_percentage=read_percentage,
                    op_percentage=op_percentage,
                    time=time,
                    qdepth=qdepth,
                    region_start=region_start,
                    region_end=region_end,
                    iops=iops,
                    io_count=io_count,
                    lba_count=lba_count,
                    lba_start=lba_start,
                    qprio=qprio,
                    distribution=distribution,
                    ptype=ptype,
                    pvalue=pvalue,
                    io_sequence=io_sequence,
                    output_io_per_second=output_io_per_second,
                    output_percentile_latency=output_percentile_latency,
                    output_percentile_latency_opcode=output_percentile_latency_opcode,
                    output_cmdlog_list=output_cmdlog_list,
                    cmdlog_error_only=cmdlog_error_only,
                    sgl_percentage=sgl_percentage,
                    io_flags=io_flags,
                    slow_latency=slow_latency,
                    exit_on_error=exit_on_error,
                    cpu_id=cpu_id,
                    seed=seed,
                    fw_debug=fw_debug,
                ),
            )

    def srand(seed: int) -> None:
        """Seed the generator of random data patterns and of ioworker seeds: runs repeat."""
        _native.srand(seed)
        reseed(seed)


def native_available() -> bool:
    """Tell whether the native driver module `nvme._native` was imported."""
    return _native is not None


def __getattr__(name: str) -> Any:
    """Explain a missing driver name: the native module was not built or failed to load."""
    if name in __all__:
        if _native is None:
            raise ImportError(
                f"nvme.{name} needs the native module nvme._native, which could not be imported "
                f"({_native_error}); build it with `make install`"
            ) from _native_error
        raise ImportError(f"nvme.{name} is not provided by this build of nvme._native")
    raise AttributeError(f"module 'nvme' has no attribute {name!r}")
