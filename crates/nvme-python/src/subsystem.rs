//! `Subsystem`: NVM subsystem reset and power control. Each method calls one lifecycle operation
//! of the driver (`nvme_driver::lifecycle`).

use crate::controller::PyController;
use crate::errors::IntoPy;
use nvme_driver::{DriverError, PowerSwitch};
use pyo3::prelude::*;
use std::time::Duration;

/// The NVM subsystem of a controller: `Subsystem(nvme, poweron_cb=None, poweroff_cb=None)`.
///
/// `poweron_cb` / `poweroff_cb` switch the power with a lab power controller; without them the
/// platform's own means are used (the simulated SSD is switched directly). After `poweron()` or
/// `reset()`, call `Controller.reset()` to initialise the controller again.
#[pyclass(module = "nvme._native", name = "Subsystem", subclass)]
pub struct PySubsystem {
    nvme: Py<PyController>,
    poweron_cb: Option<PyObject>,
    poweroff_cb: Option<PyObject>,
}

/// Runs `op` without the GIL, with the script's power callback `cb` (if any) as the switch.
fn switched<T>(
    py: Python<'_>,
    cb: &Option<PyObject>,
    op: impl FnOnce(PowerSwitch<'_>) -> nvme_driver::Result<T> + Send,
) -> PyResult<T>
where
    T: Send,
{
    let mut cb_err: Option<PyErr> = None;
    let r = py.allow_threads(|| match cb {
        None => op(PowerSwitch::Backend),
        Some(cb) => {
            let mut call = || {
                Python::with_gil(|py| cb.call0(py).map(drop)).map_err(|e| {
                    cb_err = Some(e);
                    DriverError::Callback
                })
            };
            op(PowerSwitch::Custom(&mut call))
        }
    });
    match (r, cb_err) {
        (Err(_), Some(e)) => Err(e),
        (r, _) => r.py(),
    }
}

#[pymethods]
impl PySubsystem {
    #[new]
    #[pyo3(signature = (nvme, poweron_cb=None, poweroff_cb=None))]
    fn new(
        nvme: &Bound<'_, PyController>,
        poweron_cb: Option<PyObject>,
        poweroff_cb: Option<PyObject>,
    ) -> Self {
        PySubsystem {
            nvme: nvme.clone().unbind(),
            poweron_cb,
            poweroff_cb,
        }
    }

    /// NVM subsystem reset (NSSR); False if the controller does not support it (CAP.NSSRS).
    /// Queues are torn down: outstanding commands complete with 00/08.
    fn reset(&self, py: Python<'_>) -> PyResult<bool> {
        let ctrl = self.nvme.borrow(py).ctrl.clone();
        let ok = py.allow_threads(|| ctrl.subsystem_reset()).py()?;
        if !ok {
            let _ = py.import("logging").and_then(|l| {
                l.call_method1(
                    "warning",
                    ("NVM subsystem reset is not supported (CAP.NSSRS is 0)",),
                )
            });
        }
        Ok(ok)
    }

    /// Removes the device's power (through `poweroff_cb` if given). Queues are torn down:
    /// outstanding commands complete with 00/08. With `clean`, a normal shutdown notification
    /// is sent (and waited for) before the power goes; otherwise it is a power loss.
    #[pyo3(signature = (clean=false))]
    fn poweroff(&self, py: Python<'_>, clean: bool) -> PyResult<bool> {
        let ctrl = self.nvme.borrow(py).ctrl.clone();
        switched(py, &self.poweroff_cb, |sw| {
            ctrl.power_off(clean, Duration::from_secs(10), sw)
        })?;
        Ok(true)
    }

    /// Restores the device's power (through `poweron_cb` if given).
    fn poweron(&self, py: Python<'_>) -> PyResult<bool> {
        let ctrl = self.nvme.borrow(py).ctrl.clone();
        switched(py, &self.poweron_cb, |sw| ctrl.power_on(sw))?;
        Ok(true)
    }

    /// Power off, `sec` seconds with the power off (as given, on every backend), power on.
    /// Without `sec`: 15 s, or 100 ms on the simulated SSD (which keeps no charge). With
    /// `clean`, a normal shutdown notification comes first.
    #[pyo3(signature = (sec=None, clean=false))]
    fn power_cycle(&self, py: Python<'_>, sec: Option<f64>, clean: bool) -> PyResult<bool> {
        if let Some(s) = sec.filter(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(crate::errors::bad_arg(
                "sec",
                format!("{s}: an off time is a number of seconds >= 0"),
            ));
        }
        let ctrl = self.nvme.borrow(py).ctrl.clone();
        let off_time = sec.map(Duration::from_secs_f64);
        let cb_err: parking_lot::Mutex<Option<PyErr>> = parking_lot::Mutex::new(None);
        let call = |cb: &PyObject| {
            Python::with_gil(|py| cb.call0(py).map(drop)).map_err(|e| {
                cb_err.lock().get_or_insert(e);
                DriverError::Callback
            })
        };
        let r = py.allow_threads(|| {
            let mut off_cb = || call(self.poweroff_cb.as_ref().expect("checked"));
            let mut on_cb = || call(self.poweron_cb.as_ref().expect("checked"));
            let off = match self.poweroff_cb {
                Some(_) => PowerSwitch::Custom(&mut off_cb),
                None => PowerSwitch::Backend,
            };
            let on = match self.poweron_cb {
                Some(_) => PowerSwitch::Custom(&mut on_cb),
                None => PowerSwitch::Backend,
            };
            ctrl.power_cycle(clean, off_time, off, on)
        });
        match (r, cb_err.into_inner()) {
            (Err(_), Some(e)) => return Err(e),
            (r, _) => r.py()?,
        };
        Ok(true)
    }

    /// Shutdown notification (CC.SHN normal, or abrupt) and a wait of up to `timeout` seconds
    /// for CSTS.SHST = complete; raises NvmeShutdownStatusTimeoutError("csts.shst timeout").
    #[pyo3(signature = (abrupt=false, timeout=10.0))]
    fn shutdown_notify(&self, py: Python<'_>, abrupt: bool, timeout: f64) -> PyResult<()> {
        let ctrl = self.nvme.borrow(py).ctrl.clone();
        py.allow_threads(|| ctrl.shutdown_notify(abrupt, Duration::from_secs_f64(timeout.max(0.0))))
            .py()
    }
}
