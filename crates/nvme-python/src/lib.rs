//! The native module `nvme._native` of the `nvme` Python package: PyO3 glue over `nvme-driver`.
//!
//! Argument conversion, GIL release around waits, and the mapping of driver errors to Python
//! exceptions ([`errors::to_py`]) live here; behaviour lives in the driver.

mod buffer;
mod controller;
mod cqe;
mod errors;
mod identify;
mod ioworker;
mod metamode;
mod namespace;
mod pcie;
mod qpair;
mod sim;
mod subsystem;

use pyo3::prelude::*;

/// Seeds the generator of random data patterns (pynvme's `srand`).
#[pyfunction]
fn srand(seed: u64) {
    nvme_driver::buffer::srand(seed);
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<buffer::PyBuffer>()?;
    m.add_class::<pcie::PyPcie>()?;
    m.add_class::<controller::PyController>()?;
    m.add_class::<namespace::PyNamespace>()?;
    m.add_class::<qpair::PyQpair>()?;
    m.add_class::<subsystem::PySubsystem>()?;
    m.add_class::<cqe::PyCqe>()?;
    m.add_class::<identify::PyIdentify>()?;
    m.add_class::<sim::PySimulator>()?;
    m.add_class::<ioworker::PyIoWorker>()?;
    m.add_class::<ioworker::PyStartGate>()?;
    m.add_function(wrap_pyfunction!(srand, m)?)?;
    metamode::register(m)?;
    errors::register(m)?;
    Ok(())
}
