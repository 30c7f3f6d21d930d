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
