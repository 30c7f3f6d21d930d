//! `Subsystem`: NVM subsystem reset and power control.

use crate::controller::PyController;
use crate::errors::IntoPy;
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
    fn reset(&self, py: Python<'_>) -> bool {
        let ok = self.nvme.borrow(py).ctrl.subsystem_reset();
        if !ok {
            let _ = py.import("logging").and_then(|l| {
                l.call_method1(
                    "warning",
                    ("NVM subsystem reset is not supported (CAP.NSSRS is 0)",),
                )
            });
        }
        ok
    }

    /// Removes the device's power (through `poweroff_cb` if given).
    fn poweroff(&self, py: Python<'_>) -> PyResult<bool> {
        match &self.poweroff_cb {
            Some(cb) => {
                cb.call0(py)?;
            }
            None => {
                let pci = self.nvme.borrow(py).ctrl.pci().clone();
                py.allow_threads(|| pci.power_off()).py()?;
            }
        }
        Ok(true)
    }

    /// Restores the device's power (through `poweron_cb` if given).
    fn poweron(&self, py: Python<'_>) -> PyResult<bool> {
        match &self.poweron_cb {
            Some(cb) => {
                cb.call0(py)?;
            }
            None => {
                let pci = self.nvme.borrow(py).ctrl.pci().clone();
                py.allow_threads(|| pci.power_on()).py()?;
            }
        }
        Ok(true)
    }

    /// Power off, wait `sec` seconds with the power off, power on. On the simulated SSD, which
    /// keeps no charge, the wait is capped at 1 s.
    #[pyo3(signature = (sec=15))]
    fn power_cycle(&self, py: Python<'_>, sec: u64) -> PyResult<bool> {
        self.poweroff(py)?;
        let wait = self
            .nvme
            .borrow(py)
            .ctrl
            .pci()
            .power_off_hold(Duration::from_secs(sec));
        py.allow_threads(|| std::thread::sleep(wait));
        self.poweron(py)
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
