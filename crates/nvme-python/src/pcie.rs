//! `Pcie`: the device as a PCIe function.

use crate::errors::{bad_arg, IntoPy};
use nvme_driver::pci::PciFunction;
use parking_lot::Mutex;
use pyo3::exceptions::{PyIndexError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PySlice;
use std::sync::Arc;

/// A PCIe function: config space, BAR0, resets and link/power attributes.
///
/// `Pcie(addr="")`: an empty address or `sim://?key=value&...` opens a simulated SSD (keys:
/// capacity, lba, namespaces, mdts, queues, mqes, dstrd, cmb, latency, null, serial, model, fw,
/// backing, profile=bench and its keys); a PCI address opens a device bound for testing.
#[pyclass(module = "nvme._native", name = "Pcie", subclass)]
pub struct PyPcie {
    pub(crate) dev: Mutex<Option<Arc<dyn PciFunction>>>,
    /// The controller opened on this function, whose driver owns resets and power.
    pub(crate) ctrl: Mutex<Option<std::sync::Weak<crate::controller::Ctrl>>>,
    addr: String,
    sim: pyo3::sync::GILOnceCell<Option<Py<crate::sim::PySimulator>>>,
}

impl PyPcie {
    /// The function, or an error if `close()` was called.
    pub fn get(&self) -> PyResult<Arc<dyn PciFunction>> {
        self.dev
            .lock()
            .clone()
            .ok_or_else(|| bad_arg("pcie", "this Pcie object was closed"))
    }

    /// The controller opened on this function, if it still exists.
    fn controller(&self) -> Option<Arc<crate::controller::Ctrl>> {
        self.ctrl.lock().as_ref().and_then(std::sync::Weak::upgrade)
    }
}

fn cfg_index(i: isize) -> PyResult<u16> {
    if !(0..4096).contains(&i) {
        return Err(PyIndexError::new_err(format!(
            "config space index {i} out of range 0..4096"
        )));
    }
    Ok(i as u16)
}

#[pymethods]
impl PyPcie {
    #[new]
    #[pyo3(signature = (addr="", vf=0, port=0))]
    fn new(addr: &str, vf: u32, port: u32) -> PyResult<Self> {
        if port != 0 {
            return Err(bad_arg(
                "port",
                "NVMe over TCP ports are not supported: use 0 (PCIe)",
            ));
        }
        if vf != 0 {
            return Err(bad_arg(
                "vf",
                "SR-IOV virtual functions are not supported yet: use 0",
            ));
        }
        let dev = nvme_driver::pci::open(addr).map_err(|e| {
            crate::errors::to_py(nvme_driver::DriverError::enumerate(
                "fail to create the controller",
                Some(e.into()),
            ))
        })?;
        Ok(PyPcie {
            addr: dev.address().to_string(),
            dev: Mutex::new(Some(dev)),
            ctrl: Mutex::new(None),
            sim: pyo3::sync::GILOnceCell::new(),
        })
    }

    fn __repr__(&self) -> String {
        format!("<pcie: {}>", self.addr)
    }

    /// The function's address.
    #[getter]
    fn addr(&self) -> String {
        self.addr.clone()
    }

    fn __getitem__(&self, py: Python<'_>, index: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        let dev = self.get()?;
        if let Ok(s) = index.downcast::<PySlice>() {
            let ind = s.indices(4096)?;
            let space = dev.config_space().py()?;
            let mut out = Vec::new();
            let mut i = ind.start;
            for _ in 0..ind.slicelength {
                out.push(space[i as usize]);
                i += ind.step;
            }
            // A list of ints, as pynvme returns (bytes would not compare equal to a list).
            return Ok(pyo3::types::PyList::new(py, out)?.into_any().unbind());
        }
        let i: isize = index
            .extract()
            .map_err(|_| PyTypeError::new_err("config space indices must be integers or slices"))?;
        let off = cfg_index(i)?;
        Ok(dev
            .config_read8(off)
            .py()?
            .into_pyobject(py)?
            .into_any()
            .unbind())
    }

    fn __setitem__(&self, index: isize, value: u8) -> PyResult<()> {
        let dev = self.get()?;
        let off = cfg_index(index)?;
        dev.config_write8(off, value).py()
    }

    /// Little-endian config space read of `byte_count` (1..=8) bytes at `offset`.
    #[pyo3(signature = (offset, byte_count=4))]
    fn register(&self, offset: u16, byte_count: usize) -> PyResult<u64> {
        if !(1..=8).contains(&byte_count) {
            return Err(bad_arg("byte_count", format!("{byte_count} is not 1..=8")));
        }
        let mut b = [0u8; 8];
        self.get()?.config_read(offset, &mut b[..byte_count]).py()?;
        Ok(u64::from_le_bytes(b))
    }

    /// Config space byte read.
    fn cfg_byte_read(&self, addr: u16) -> PyResult<u8> {
        self.get()?.config_read8(addr).py()
    }

    /// Config space word read.
    fn cfg_word_read(&self, addr: u16) -> PyResult<u16> {
        self.get()?.config_read16(addr).py()
    }

    /// Config space dword read.
    fn cfg_dword_read(&self, addr: u16) -> PyResult<u32> {
        self.get()?.config_read32(addr).py()
    }

    /// Config space byte write.
    fn cfg_byte_write(&self, addr: u16, value: u8) -> PyResult<()> {
        self.get()?.config_write8(addr, value).py()
    }

    /// Config space word write.
    fn cfg_word_write(&self, addr: u16, value: u16) -> PyResult<()> {
        self.get()?.config_write16(addr, value).py()
    }

    /// Config space dword write.
    fn cfg_dword_write(&self, addr: u16, value: u32) -> PyResult<()> {
        self.get()?.config_write32(addr, value).py()
    }

    /// Offset of capability `cap_id` in config space, or None. `extend=True` searches the
    /// extended capabilities (from 0x100) instead.
    #[pyo3(signature = (cap_id, extend=false))]
    fn cap_offset(&self, cap_id: u16, extend: bool) -> PyResult<Option<u16>> {
        let space = self.get()?.config_space().py()?;
        Ok(if extend {
            nvme_spec::pci::find_ext_capability(&space, cap_id)
        } else {
            let id = u8::try_from(cap_id)
                .map_err(|_| bad_arg("cap_id", "a legacy capability id is 0..=0xff"))?;
            nvme_spec::pci::find_capability(&space, id)
        })
    }

    /// BAR0 byte read.
    fn mem_byte_read(&self, addr: u64) -> PyResult<u8> {
        let d = self.get()?.bar_read32(0, addr & !3);
        Ok((d >> ((addr & 3) * 8)) as u8)
    }

    /// BAR0 word read (2-byte aligned).
    fn mem_word_read(&self, addr: u64) -> PyResult<u16> {
        if !addr.is_multiple_of(2) {
            return Err(bad_arg("addr", format!("{addr:#x} is not 2-byte aligned")));
        }
        let d = self.get()?.bar_read32(0, addr & !3);
        Ok((d >> ((addr & 2) * 8)) as u16)
    }

    /// BAR0 dword read (4-byte aligned).
    fn mem_dword_read(&self, addr: u64) -> PyResult<u32> {
        if !addr.is_multiple_of(4) {
            return Err(bad_arg("addr", format!("{addr:#x} is not 4-byte aligned")));
        }
        Ok(self.get()?.bar_read32(0, addr))
    }

    /// BAR0 qword read (8-byte aligned).
    fn mem_qword_read(&self, addr: u64) -> PyResult<u64> {
        if !addr.is_multiple_of(8) {
            return Err(bad_arg("addr", format!("{addr:#x} is not 8-byte aligned")));
        }
        Ok(self.get()?.bar_read64(0, addr))
    }

    /// BAR0 dword write (4-byte aligned).
    fn mem_dword_write(&self, addr: u64, value: u32) -> PyResult<()> {
        if !addr.is_multiple_of(4) {
            return Err(bad_arg("addr", format!("{addr:#x} is not 4-byte aligned")));
        }
        self.get()?.bar_write32(0, addr, value);
        Ok(())
    }

    /// BAR0 qword write (8-byte aligned).
    fn mem_qword_write(&self, addr: u64, value: u64) -> PyResult<()> {
        if !addr.is_multiple_of(8) {
            return Err(bad_arg("addr", format!("{addr:#x} is not 8-byte aligned")));
        }
        self.get()?.bar_write64(0, addr, value);
        Ok(())
    }

    /// Hot reset (secondary bus reset). The controller's queues are torn down (outstanding
    /// commands complete with 00/08); call `Controller.reset()` afterwards.
    fn reset(&self, py: Python<'_>) -> PyResult<bool> {
        let dev = self.get()?;
        match self.controller() {
            Some(c) => py.allow_threads(|| c.hot_reset()).py()?,
            None => py.allow_threads(|| dev.hot_reset()).py()?,
        }
        Ok(true)
    }

    /// Function level reset. The controller's queues are torn down (outstanding commands
    /// complete with 00/08); call `Controller.reset()` afterwards.
    fn flr(&self, py: Python<'_>) -> PyResult<bool> {
        let dev = self.get()?;
        match self.controller() {
            Some(c) => py.allow_threads(|| c.flr()).py()?,
            None => py.allow_threads(|| dev.flr()).py()?,
        }
        Ok(true)
    }

    /// Current link speed (1 = 2.5 GT/s ... 5 = 32 GT/s); setting it writes the target link speed
    /// and retrains the link.
    #[getter]
    fn get_speed(&self) -> PyResult<u16> {
        nvme_driver::link::speed(self.get()?.as_ref()).py()
    }

    #[setter]
    fn set_speed(&self, speed: u16) -> PyResult<()> {
        nvme_driver::link::set_speed(self.get()?.as_ref(), speed).py()
    }

    /// ASPM control of the link (0 off, 1 L0s, 2 L1, 3 both).
    #[getter]
    fn get_aspm(&self) -> PyResult<u16> {
        nvme_driver::link::aspm(self.get()?.as_ref()).py()
    }

    #[setter]
    fn set_aspm(&self, aspm: u16) -> PyResult<()> {
        nvme_driver::link::set_aspm(self.get()?.as_ref(), aspm).py()
    }

    /// PCI power state (0 D0 .. 3 D3hot).
    #[getter]
    fn get_power_state(&self) -> PyResult<u16> {
        nvme_driver::link::power_state(self.get()?.as_ref()).py()
    }

    #[setter]
    fn set_power_state(&self, state: u16) -> PyResult<()> {
        nvme_driver::link::set_power_state(self.get()?.as_ref(), state).py()
    }

    /// The simulated SSD behind this function, for fault injection; None for a real device.
    #[getter]
    fn sim(&self, py: Python<'_>) -> PyResult<Option<Py<crate::sim::PySimulator>>> {
        let dev = self.get()?;
        let s = self.sim.get_or_try_init(py, || {
            crate::sim::PySimulator::of(dev)
                .map(|s| Py::new(py, s))
                .transpose()
        })?;
        Ok(s.as_ref().map(|s| s.clone_ref(py)))
    }

    /// Releases the function. Objects built on it stop working.
    fn close(&self) {
        self.dev.lock().take();
    }
}
