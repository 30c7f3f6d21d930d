//! Exceptions, and the one place where driver errors become Python exceptions.

use nvme_driver::DriverError;
use pyo3::exceptions::{
    PyAssertionError, PyException, PyIndexError, PyOSError, PySystemError, PyTimeoutError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyTuple, PyType};

pyo3::create_exception!(
    _native,
    NvmeEnumerateError,
    PyException,
    "The controller could not be created or initialised."
);
pyo3::create_exception!(
    _native,
    NvmeDeletionError,
    PyException,
    "The controller could not be closed (pynvme's; kept for scripts that catch it: closing a \
controller here always releases the host's side, whatever the device answers, and does not raise)."
);
pyo3::create_exception!(
    _native,
    QpairCreationError,
    PyException,
    "An IO queue pair could not be created."
);
pyo3::create_exception!(
    _native,
    QpairDeletionError,
    PyException,
    "An IO queue pair could not be deleted."
);
pyo3::create_exception!(
    _native,
    NamespaceCreationError,
    PyException,
    "A namespace could not be opened."
);
pyo3::create_exception!(
    _native,
    NamespaceDeletionError,
    PyException,
    "A namespace could not be closed (pynvme's; kept for scripts that catch it: closing a \
namespace here does not raise)."
);
pyo3::create_exception!(
    _native,
    NvmeShutdownStatusTimeoutError,
    PyException,
    "CSTS.SHST did not report shutdown complete in time."
);

pyo3::create_exception!(
    _native,
    QueueGoneError,
    PyAssertionError,
    "The queue no longer exists on the device: deleted, or torn down by a controller reset, FLR, \
hot reset, subsystem reset or power loss. `qid` and `epoch` (the controller epoch the queue \
belonged to) are its attributes. Wait with `Controller.wait_ready()` and submit again: a reset \
re-creates queue pairs in place. An AssertionError, as pynvme's submission errors are."
);
pyo3::create_exception!(
    _native,
    ControllerNotReadyError,
    PyAssertionError,
    "The controller is being reset, is powered off, gone, or waits for a controller reset; \
`state` is its attribute. An AssertionError, as pynvme's submission errors are."
);

static ARGUMENT_ERROR: GILOnceCell<Py<PyType>> = GILOnceCell::new();

/// `NvmeArgumentError(ValueError, AssertionError)`: a wrong argument. Both bases, because Python
/// code expects ValueError and pynvme scripts catch its AssertionError.
pub fn argument_error_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    ARGUMENT_ERROR
        .get_or_try_init(py, || -> PyResult<Py<PyType>> {
            let bases = PyTuple::new(
                py,
                [
                    py.get_type::<PyValueError>(),
                    py.get_type::<PyAssertionError>(),
                ],
            )?;
            let ns = PyDict::new(py);
            ns.set_item(
                "__doc__",
                "A wrong argument: the message names it and says what is allowed.",
            )?;
            ns.set_item("__module__", "nvme")?;
            let t = py
                .get_type::<PyType>()
                .call1(("NvmeArgumentError", bases, ns))?;
            Ok(t.downcast_into::<PyType>()?.unbind())
        })
        .map(|t| t.bind(py))
}

/// Converts a driver error into the Python exception scripts expect. The one place where
/// driver errors become exceptions: the exception type follows the root cause of a lifecycle
/// operation's failure, the message is the whole chain.
pub fn to_py(e: DriverError) -> PyErr {
    let msg = e.to_string();
    match e.root() {
        DriverError::InvalidArgument { .. } | DriverError::HostUnsafe { .. } => {
            Python::with_gil(|py| match argument_error_type(py) {
                Ok(t) => PyErr::from_type(t.clone(), msg),
                Err(e) => e,
            })
        }
        DriverError::OutOfRange { .. } => PyIndexError::new_err(msg),
        DriverError::Enumerate { .. } => NvmeEnumerateError::new_err(msg),
        DriverError::PriorityWithoutWrr { .. }
        | DriverError::QueueIdUnavailable { .. }
        | DriverError::QueueCreateRefused { .. } => QpairCreationError::new_err(msg),
        DriverError::QpairDeletion { .. } => QpairDeletionError::new_err(msg),
        DriverError::NamespaceCreation { .. } => NamespaceCreationError::new_err(msg),
        DriverError::ShutdownTimeout { .. } => NvmeShutdownStatusTimeoutError::new_err(msg),
        &DriverError::QueueGone { qid, epoch } => with_attrs(
            QueueGoneError::new_err(msg),
            &[("qid", u64::from(qid)), ("epoch", epoch)],
        ),
        DriverError::NotReady { state } => {
            let err = ControllerNotReadyError::new_err(msg);
            Python::with_gil(|py| {
                let _ = err.value(py).setattr("state", state.name());
            });
            err
        }
        DriverError::QueueFull { .. }
        | DriverError::NothingOutstanding { .. }
        | DriverError::Reentry(_)
        | DriverError::CommandFailed { .. }
        | DriverError::Callback => PyAssertionError::new_err(msg),
        DriverError::Timeout { .. } => PyTimeoutError::new_err(msg),
        DriverError::Interrupted => pyo3::exceptions::PyKeyboardInterrupt::new_err(msg),
        DriverError::DeviceGone { .. } | DriverError::WorkerPanicked { .. } => {
            PySystemError::new_err(msg)
        }
        DriverError::Pci(_) | DriverError::Alloc { .. } | DriverError::Spawn { .. } => {
            PyOSError::new_err(msg)
        }
        DriverError::Lifecycle { .. } => unreachable!("root() is never a Lifecycle error"),
    }
}

/// `err` with integer attributes set on its value.
fn with_attrs(err: PyErr, attrs: &[(&str, u64)]) -> PyErr {
    Python::with_gil(|py| {
        let v = err.value(py);
        for (k, x) in attrs {
            let _ = v.setattr(*k, *x);
        }
    });
    err
}

/// Maps a driver result.
pub trait IntoPy<T> {
    /// The result with the error converted.
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, DriverError> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

impl<T> IntoPy<T> for Result<T, nvme_driver::pci::PciError> {
    fn py(self) -> PyResult<T> {
        self.map_err(|e| to_py(DriverError::Pci(e)))
    }
}

/// An argument error from the glue's own conversions.
pub fn bad_arg(arg: &'static str, msg: impl Into<String>) -> PyErr {
    to_py(DriverError::invalid(arg, msg))
}

/// Registers the exception classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("NvmeEnumerateError", py.get_type::<NvmeEnumerateError>())?;
    m.add("NvmeDeletionError", py.get_type::<NvmeDeletionError>())?;
    m.add("QpairCreationError", py.get_type::<QpairCreationError>())?;
    m.add("QpairDeletionError", py.get_type::<QpairDeletionError>())?;
    m.add(
        "NamespaceCreationError",
        py.get_type::<NamespaceCreationError>(),
    )?;
    m.add(
        "NamespaceDeletionError",
        py.get_type::<NamespaceDeletionError>(),
    )?;
    m.add(
        "NvmeShutdownStatusTimeoutError",
        py.get_type::<NvmeShutdownStatusTimeoutError>(),
    )?;
    m.add("NvmeArgumentError", argument_error_type(py)?)?;
    m.add("QueueGoneError", py.get_type::<QueueGoneError>())?;
    m.add(
        "ControllerNotReadyError",
        py.get_type::<ControllerNotReadyError>(),
    )?;
    Ok(())
}
