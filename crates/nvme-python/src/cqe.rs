//! The completion a callback receives, and how callbacks and warnings are delivered.

use crate::errors::to_py;
use nvme_driver::{completion_warnings, Completion, DriverError};
use nvme_spec::Cqe;
use pyo3::exceptions::{PyAssertionError, PyTypeError, PyUserWarning};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::ffi::CString;
use std::sync::Arc;

/// What a command carries through the driver: the script's callback, if any.
pub type Ctx = Option<Arc<Py<PyAny>>>;

/// A completion queue entry: the argument of a command's callback.
///
/// `cqe[0]` .. `cqe[3]` are its dwords; the fields have the spec's names.
#[pyclass(module = "nvme._native", name = "CQE", frozen)]
#[derive(Clone)]
pub struct PyCqe {
    pub(crate) cqe: Cqe,
}

#[pymethods]
impl PyCqe {
    /// A CQE from its four dwords.
    #[new]
    #[pyo3(signature = (dw0=0, dw1=0, dw2=0, dw3=0))]
    fn new(dw0: u32, dw1: u32, dw2: u32, dw3: u32) -> Self {
        PyCqe {
            cqe: Cqe::from_dwords([dw0, dw1, dw2, dw3]),
        }
    }

    fn __getitem__(&self, i: isize) -> PyResult<u32> {
        let d = self.cqe.dwords();
        let j = if i < 0 { i + 4 } else { i };
        d.get(usize::try_from(j).unwrap_or(4))
            .copied()
            .ok_or_else(|| {
                pyo3::exceptions::PyIndexError::new_err(format!("CQE index {i} out of range 0..4"))
            })
    }

    fn __len__(&self) -> usize {
        4
    }

    fn __repr__(&self) -> String {
        let d = self.cqe.dwords();
        format!(
            "CQE(0x{:08x}, 0x{:08x}, 0x{:08x}, 0x{:08x})",
            d[0], d[1], d[2], d[3]
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .downcast::<PyCqe>()
            .is_ok_and(|o| o.get().cqe == self.cqe)
    }

    /// Dword 0 (command specific).
    #[getter]
    fn cdw0(&self) -> u32 {
        self.cqe.dw0
    }

    /// Dword 1 (command specific).
    #[getter]
    fn cdw1(&self) -> u32 {
        self.cqe.dw1
    }

    /// SQ head pointer.
    #[getter]
    fn sqhd(&self) -> u16 {
        self.cqe.sqhd
    }

    /// SQ identifier.
    #[getter]
    fn sqid(&self) -> u16 {
        self.cqe.sqid
    }

    /// Command identifier.
    #[getter]
    fn cid(&self) -> u16 {
        self.cqe.cid
    }

    /// Phase tag.
    #[getter]
    fn p(&self) -> u8 {
        self.cqe.phase() as u8
    }

    /// Status field without the phase tag (15 bits: SC, SCT, CRD, M, DNR).
    #[getter]
    fn status(&self) -> u16 {
        self.cqe.status >> 1
    }

    /// Status code.
    #[getter]
    fn sc(&self) -> u8 {
        self.cqe.status().sc
    }

    /// Status code type.
    #[getter]
    fn sct(&self) -> u8 {
        self.cqe.status().sct
    }

    /// Command retry delay.
    #[getter]
    fn crd(&self) -> u8 {
        self.cqe.status().crd
    }

    /// More.
    #[getter]
    fn m(&self) -> u8 {
        self.cqe.status().more as u8
    }

    /// Do not retry.
    #[getter]
    fn dnr(&self) -> u8 {
        self.cqe.status().dnr as u8
    }
}

/// Raises a UserWarning with `text`.
pub fn warn(py: Python<'_>, text: &str) -> PyResult<()> {
    let msg = CString::new(text.replace('\0', " ")).expect("no NUL left");
    PyErr::warn(py, &py.get_type::<PyUserWarning>(), &msg, 1)
}

/// Number of positional parameters of a plain function or bound method, when it can be told.
fn arity(cb: &Bound<'_, PyAny>) -> Option<usize> {
    let (func, bound) = match cb.getattr("__func__") {
        Ok(f) => (f, 1),
        Err(_) => (cb.clone(), 0),
    };
    let n: usize = func
        .getattr("__code__")
        .ok()?
        .getattr("co_argcount")
        .ok()?
        .extract()
        .ok()?;
    Some(n.saturating_sub(bound))
}

/// Calls a script's callback: `cb(cqe)`, or `cb(cdw0, status1)` for pynvme's two-argument form.
/// An AssertionError raised by it becomes the warning "ASSERT: ...", a TypeError "callback: ...",
/// as pynvme does; other exceptions propagate to the script.
fn call_callback(py: Python<'_>, cb: &Py<PyAny>, cqe: &Cqe) -> PyResult<()> {
    let cb = cb.bind(py);
    let r = if arity(cb) == Some(2) {
        cb.call1(PyTuple::new(py, [cqe.dw0, (cqe.status as u32)])?)
    } else {
        cb.call1((PyCqe { cqe: *cqe },))
    };
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.is_instance_of::<PyAssertionError>(py) => {
            warn(py, &format!("ASSERT: {}", e.value(py)))
        }
        Err(e) if e.is_instance_of::<PyTypeError>(py) => {
            warn(py, &format!("callback: {}", e.value(py)))
        }
        Err(e) => Err(e),
    }
}

/// Delivers one completion to the script: the timeout warning, the callback, then the AER or
/// error-status warning, in pynvme's order. Needs the GIL only when there is something to do.
pub fn deliver(qid: u16, c: Completion<Ctx>, err: &mut Option<PyErr>) -> Result<(), DriverError> {
    let w = completion_warnings(qid, &c.sqe, &c.cqe, c.timed_out);
    if c.ctx.is_none() && w.before.is_empty() && w.after.is_empty() {
        return Ok(());
    }
    Python::with_gil(|py| -> PyResult<()> {
        for t in &w.before {
            warn(py, t)?;
        }
        if let Some(cb) = &c.ctx {
            call_callback(py, cb, &c.cqe)?;
        }
        for t in &w.after {
            warn(py, t)?;
        }
        Ok(())
    })
    .map_err(|e| {
        *err = Some(e);
        DriverError::Callback
    })
}

/// Turns the outcome of a wait into the script's result: the callback's own exception wins.
pub fn finish<T>(r: Result<T, DriverError>, err: Option<PyErr>) -> PyResult<T> {
    match (r, err) {
        (_, Some(e)) => Err(e),
        (r, None) => r.map_err(to_py),
    }
}

/// Raises each device misbehaviour the driver noticed as a warning.
pub fn warn_anomalies(py: Python<'_>, list: Vec<String>) -> PyResult<()> {
    for a in list {
        warn(py, &a)?;
    }
    Ok(())
}

/// Lets a long wait be interrupted by Ctrl-C: while the driver waits with the GIL released, it
/// asks about every 100 ms; this takes the GIL then, runs Python's signal handlers, and keeps the
/// exception they raise (KeyboardInterrupt) for the script.
#[derive(Default)]
pub struct CtrlC(std::sync::Arc<parking_lot::Mutex<Option<PyErr>>>);

impl CtrlC {
    /// Runs the wait `f` with the check installed.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        let slot = self.0.clone();
        nvme_driver::with_interrupt_check(
            move || {
                Python::with_gil(|py| match py.check_signals() {
                    Ok(()) => true,
                    Err(e) => {
                        *slot.lock() = Some(e);
                        false
                    }
                })
            },
            f,
        )
    }

    /// The exception a signal handler raised during the wait, if any.
    pub fn take(&self) -> Option<PyErr> {
        self.0.lock().take()
    }
}
