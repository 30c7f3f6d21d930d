//! `Qpair`: an IO submission/completion queue pair.

use crate::controller::PyController;
use crate::cqe::{deliver, finish, warn_anomalies, CtrlC, Ctx};
use crate::errors::IntoPy;
use nvme_driver::{Qpair, QpairConfig};
use pyo3::exceptions::PyAssertionError;
use pyo3::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An IO queue pair: `Qpair(nvme, depth, prio=0, ien=True, iv=0xffff, sqid=0, lazy_doorbell=False)`.
///
/// `depth` entries per queue (at most depth - 1 commands outstanding), 2..=CAP.MQES+1. `iv`
/// 0xffff lets the driver pick the vector; `sqid` 0 takes the lowest free queue id.
/// `lazy_doorbell=True` rings the SQ doorbell only in `waitdone`. Delete it when done (the
/// `qpair` fixture does).
#[pyclass(module = "nvme._native", name = "Qpair", subclass)]
pub struct PyQpair {
    pub(crate) qp: Arc<Qpair<Ctx>>,
    nvme: Py<PyController>,
}

#[pymethods]
impl PyQpair {
    #[new]
    #[pyo3(signature = (nvme, depth=64, prio=0, ien=true, iv=0xffff, sqid=0, lazy_doorbell=false))]
    fn new(
        py: Python<'_>,
        nvme: &Bound<'_, PyController>,
        depth: u32,
        prio: u8,
        ien: bool,
        iv: u16,
        sqid: u16,
        lazy_doorbell: bool,
    ) -> PyResult<Self> {
        let ctrl = nvme.borrow().ctrl.clone();
        let depth = u16::try_from(depth)
            .map_err(|_| crate::errors::bad_arg("depth", format!("{depth} is not 2..=65536")))?;
        let cfg = QpairConfig {
            depth,
            prio,
            ien,
            iv,
            sqid: (sqid != 0).then_some(sqid),
            lazy_doorbell,
        };
        let qp = py.allow_threads(|| Qpair::new(&ctrl, cfg)).py()?;
        Ok(PyQpair {
            qp,
            nvme: nvme.clone().unbind(),
        })
    }

    fn __repr__(&self) -> String {
        format!("<qpair: {}>", self.qp.qid())
    }

    /// The controller.
    #[getter]
    fn nvme(&self, py: Python<'_>) -> Py<PyController> {
        self.nvme.clone_ref(py)
    }

    /// Queue id of the SQ (and its CQ).
    #[getter]
    fn sqid(&self) -> u16 {
        self.qp.qid()
    }

    /// The controller epoch the qpair was (re-)created in (`Controller.epoch`).
    #[getter]
    fn epoch(&self) -> u64 {
        self.qp.epoch()
    }

    /// Whether the qpair exists on the device: False once deleted, and from a reset, FLR or
    /// power loss until the controller reset that re-creates it.
    #[getter]
    fn alive(&self) -> bool {
        self.qp.is_alive()
    }

    /// Entries per queue.
    #[getter]
    fn depth(&self) -> u16 {
        self.qp.config().depth
    }

    /// SQ priority class.
    #[getter]
    fn prio(&self) -> u8 {
        self.qp.config().prio
    }

    /// Whether the CQ raises interrupts.
    #[getter]
    fn ien(&self) -> bool {
        self.qp.config().ien
    }

    /// The CQ's interrupt vector.
    #[getter]
    fn iv(&self) -> u16 {
        self.qp.iv()
    }

    /// Whether doorbells are rung only in waitdone.
    #[getter]
    fn lazy_doorbell(&self) -> bool {
        self.qp.config().lazy_doorbell
    }

    /// CID of the latest command sent.
    #[getter]
    fn latest_cid(&self) -> u16 {
        self.qp.latest_cid()
    }

    /// Latency of the latest completed command, µs.
    #[getter]
    fn latest_latency(&self) -> u64 {
        self.qp.latest_latency_us()
    }

    /// Reaps `expected` completions (callbacks and warnings run here) and returns dword 0 of
    /// the latest.
    #[pyo3(signature = (expected=1))]
    fn waitdone(&self, py: Python<'_>, expected: usize) -> PyResult<u32> {
        let qp = self.qp.clone();
        let qid = qp.qid();
        let mut err = None;
        let ctrl_c = CtrlC::default();
        let r = py.allow_threads(|| {
            ctrl_c.run(|| qp.waitdone(expected, &mut |c| deliver(qid, c, &mut err)))
        });
        let findings = self.qp.take_findings();
        if !findings.is_empty() {
            let log = py.import("logging")?.call_method1("getLogger", ("nvme",))?;
            for m in findings {
                log.call_method1("error", (m.to_string(),))?;
            }
        }
        warn_anomalies(py, self.qp.take_anomalies())?;
        finish(r, err.or_else(|| ctrl_c.take()))
    }

    /// Deletes the SQ and CQ on the device.
    fn delete(&self, py: Python<'_>) -> PyResult<()> {
        let qp = self.qp.clone();
        py.allow_threads(|| qp.delete()).py()
    }

    /// Not how a qpair ends: raises, as pynvme does.
    fn close(&self) -> PyResult<()> {
        Err(PyAssertionError::new_err("use Qpair.delete()"))
    }

    /// This queue's command log, newest first.
    #[pyo3(signature = (count=1000, offset=0))]
    fn cmdlog(&self, py: Python<'_>, count: usize, offset: usize) -> PyResult<Vec<String>> {
        crate::controller::format_entries(py, self.qp.cmdlog(count, offset))
    }

    /// Forgets that the CQ's interrupt fired.
    fn msix_clear(&self) {
        if let Some(i) = self.qp.controller().interrupts() {
            i.clear(self.qp.iv());
        }
    }

    /// Whether the CQ's interrupt fired since the last clear.
    fn msix_isset(&self) -> bool {
        self.qp
            .controller()
            .interrupts()
            .is_some_and(|i| i.is_set(self.qp.iv()))
    }

    /// Masks the CQ's vector: the device holds its interrupts as pending.
    fn msix_mask(&self) {
        if let Some(i) = self.qp.controller().interrupts() {
            i.mask(self.qp.iv());
        }
    }

    /// Unmasks the CQ's vector: a pending interrupt is delivered.
    fn msix_unmask(&self) {
        if let Some(i) = self.qp.controller().interrupts() {
            i.unmask(self.qp.iv());
        }
    }

    /// Waits up to `timeout` seconds for the CQ's interrupt; True if it fired.
    #[pyo3(signature = (timeout=1.0))]
    fn wait_msix(&self, py: Python<'_>, timeout: f64) -> bool {
        let Some(i) = self.qp.controller().interrupts() else {
            return false;
        };
        let iv = self.qp.iv();
        let limit = Instant::now() + Duration::from_secs_f64(timeout.max(0.0));
        py.allow_threads(|| loop {
            if i.is_set(iv) {
                return true;
            }
            if Instant::now() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_micros(20));
        })
    }
}

impl Drop for PyQpair {
    fn drop(&mut self) {
        // A qpair nobody references any more is deleted on the device, as pynvme does.
        if Arc::strong_count(&self.qp) == 1 && !self.qp.is_deleted() {
            let _ = self.qp.delete();
        }
    }
}
