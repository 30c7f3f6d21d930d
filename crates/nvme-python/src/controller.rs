//! `Controller`: registers, admin commands, initialisation and reset.

use crate::buffer::PyBuffer;
use crate::cqe::{deliver, finish, warn_anomalies, CtrlC, Ctx};
use crate::errors::{bad_arg, IntoPy};
use crate::identify::PyIdentify;
use crate::pcie::PyPcie;
use nvme_driver::cmdlog::CmdLogEntry;
use nvme_driver::{commands, Buffer, Controller, DataRef};
use nvme_spec::identify::IdentifyController;
use nvme_spec::Sqe;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use std::sync::Arc;

/// The driver's controller type as the Python face uses it.
pub type Ctrl = Controller<Ctx>;

/// An NVMe controller. `Controller(pcie, nvme_init_func=None)` initialises it as the spec orders
/// (or by calling `nvme_init_func(controller)` instead, also at every `reset()`).
///
/// Admin commands are asynchronous and return the controller, so `nvme0.getfeatures(7).waitdone()`
/// chains; `cb=` gives a callback that receives the `CQE`. A failing status raises the warning
/// "ERROR status: SCT/SC".
#[pyclass(module = "nvme._native", name = "Controller", subclass)]
pub struct PyController {
    pub(crate) ctrl: Arc<Ctrl>,
    pcie: Py<PyPcie>,
    /// The init function used at creation and at every reset (None: the spec's sequence).
    #[pyo3(get, set)]
    nvme_init_func: Option<PyObject>,
}

/// The data reference of an optional buffer, transferring `size` bytes (default: the buffer's size).
pub fn data_ref(
    buf: Option<&Bound<'_, PyBuffer>>,
    size: Option<usize>,
) -> PyResult<Option<DataRef>> {
    let Some(b) = buf else { return Ok(None) };
    let b = b.borrow();
    let len = size.unwrap_or(b.inner.size());
    if len > b.inner.size() {
        return Err(bad_arg(
            "size",
            format!(
                "{len} bytes do not fit the buffer's size {}",
                b.inner.size()
            ),
        ));
    }
    Ok(Some(DataRef {
        mem: b.inner.memory().clone(),
        offset: b.inner.offset(),
        len,
        sgl: b.inner.sgl,
    }))
}

/// Command log entries as strings, with times in the local time zone.
pub fn format_entries(py: Python<'_>, entries: Vec<CmdLogEntry>) -> PyResult<Vec<String>> {
    let off: i64 = py
        .import("time")?
        .call_method0("localtime")?
        .getattr("tm_gmtoff")?
        .extract()
        .unwrap_or(0);
    Ok(entries.iter().map(|e| e.format(off)).collect())
}

/// One command log entry as a dict of plain values, for tools that display the log.
fn entry_dict<'py>(py: Python<'py>, e: &CmdLogEntry) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("seq", e.seq)?;
    d.set_item("sqid", e.sqid)?;
    d.set_item("opcode", e.sqe.opc())?;
    d.set_item("name", e.name())?;
    d.set_item("cid", e.sqe.cid())?;
    d.set_item("nsid", e.sqe.nsid)?;
    d.set_item("sqe", e.sqe.dwords().to_vec())?;
    d.set_item("submit_ns", e.submit_ns)?;
    d.set_item("timed_out", e.timed_out)?;
    match e.cqe {
        Some(c) => {
            let st = c.status();
            d.set_item("cqe", c.dwords().to_vec())?;
            d.set_item("complete_ns", e.complete_ns)?;
            d.set_item("sct", st.sct)?;
            d.set_item("sc", st.sc)?;
            let name = if e.timed_out { "TIMEOUT" } else { st.name() };
            d.set_item("status", name)?;
        }
        None => {
            d.set_item("cqe", py.None())?;
            d.set_item("complete_ns", py.None())?;
            d.set_item("sct", py.None())?;
            d.set_item("sc", py.None())?;
            d.set_item("status", py.None())?;
        }
    }
    Ok(d)
}

/// True for a successful completion; otherwise the pynvme warning and False.
fn status_ok(py: Python<'_>, cqe: nvme_spec::Cqe) -> PyResult<bool> {
    if cqe.status().is_success() {
        return Ok(true);
    }
    if let Some(w) = nvme_driver::status_warning(cqe.status()) {
        crate::cqe::warn(py, &w)?;
    }
    Ok(false)
}

impl PyController {
    /// Security Send (`send`) or Receive of `size` bytes (default: the buffer's size).
    #[allow(clippy::too_many_arguments)]
    fn security(
        slf: &Bound<'_, Self>,
        send: bool,
        buf: &Bound<'_, PyBuffer>,
        spsp: u32,
        secp: u32,
        nssf: u32,
        size: Option<usize>,
        nsid: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<Self>> {
        let size = size.unwrap_or(buf.borrow().inner.size());
        let sqe = commands::security(send, secp, spsp, nssf, size, nsid).py()?;
        Self::submit(slf, sqe, data_ref(Some(buf), Some(size))?, cb)
    }

    fn attachment(
        &self,
        py: Python<'_>,
        nsid: u32,
        detach: bool,
        cntlids: Vec<u16>,
    ) -> PyResult<bool> {
        let ctrl = self.ctrl.clone();
        let ids = if cntlids.is_empty() {
            vec![ctrl.cntlid()]
        } else {
            cntlids
        };
        let cqe = py
            .allow_threads(|| ctrl.ns_attachment(nsid, detach, &ids))
            .py()?;
        status_ok(py, cqe)
    }

    fn submit(
        slf: &Bound<'_, Self>,
        sqe: Sqe,
        data: Option<DataRef>,
        cb: Option<PyObject>,
    ) -> PyResult<Py<Self>> {
        let ctrl = slf.borrow().ctrl.clone();
        ctrl.submit(sqe, data, false, cb.map(Arc::new)).py()?;
        Ok(slf.clone().unbind())
    }

    /// A synchronous admin command returning `len` bytes, as a Buffer for the helpers.
    fn sync_into_buffer(
        &self,
        py: Python<'_>,
        sqe: Sqe,
        len: usize,
    ) -> PyResult<(nvme_spec::Cqe, Buffer)> {
        let ctrl = self.ctrl.clone();
        let (cqe, mem) = py.allow_threads(move || ctrl.admin_read(sqe, len)).py()?;
        Ok((cqe, Buffer::wrap(mem, len, "helper")))
    }

    /// Runs the driver's lifecycle operation `op` without the GIL, giving it the init function
    /// (the script's, or the default) as a closure that takes the GIL back.
    fn with_init(
        slf: &Bound<'_, Self>,
        op: impl FnOnce(&mut dyn FnMut() -> nvme_driver::Result<()>) -> nvme_driver::Result<()> + Send,
    ) -> PyResult<()> {
        let py = slf.py();
        let me = slf.clone().unbind();
        let init_err: parking_lot::Mutex<Option<PyErr>> = parking_lot::Mutex::new(None);
        let r = py.allow_threads(|| {
            op(&mut || {
                Python::with_gil(|py| Self::run_init(me.bind(py))).map_err(|e| {
                    *init_err.lock() = Some(e);
                    nvme_driver::DriverError::Callback
                })
            })
        });
        match (r, init_err.into_inner()) {
            (Err(_), Some(e)) => Err(e),
            (r, _) => r.py(),
        }
    }

    fn run_init(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let func = slf
            .borrow()
            .nvme_init_func
            .as_ref()
            .map(|f| f.clone_ref(py));
        match func {
            Some(f) => {
                f.call1(py, (slf,))?;
            }
            None => {
                let ctrl = slf.borrow().ctrl.clone();
                py.allow_threads(|| ctrl.init_default(None)).py()?;
            }
        }
        Ok(())
    }
}

#[pymethods]
impl PyController {
    #[new]
    #[pyo3(signature = (pcie, nvme_init_func=None))]
    fn new(pcie: &Bound<'_, PyPcie>, nvme_init_func: Option<PyObject>) -> PyResult<Self> {
        let dev = pcie.borrow().get()?;
        let ctrl = Controller::new(dev).py()?;
        *pcie.borrow().ctrl.lock() = Some(Arc::downgrade(&ctrl));
        Ok(PyController {
            ctrl,
            pcie: pcie.clone().unbind(),
            nvme_init_func,
        })
    }

    /// Runs the init function (default or `nvme_init_func`); called by the constructor.
    fn _initialize(slf: &Bound<'_, Self>) -> PyResult<()> {
        let ctrl = slf.borrow().ctrl.clone();
        Self::with_init(slf, |init| ctrl.initialize(init))
    }

    /// The controller's state: "ready", "resetting", "initializing", "needs_init",
    /// "powered_off" or "gone".
    #[getter]
    fn state(&self) -> &'static str {
        self.ctrl.state().name()
    }

    /// The controller's epoch: grows by one at every controller reset, FLR, hot reset, NVM
    /// subsystem reset, power off and surprise removal.
    #[getter]
    fn epoch(&self) -> u64 {
        self.ctrl.epoch()
    }

    /// Waits up to `timeout` seconds for the controller to be ready (after a reset or power
    /// cycle that another thread performs); returns its epoch, or raises
    /// ControllerNotReadyError. A queue pair torn down by the event works again once ready.
    #[pyo3(signature = (timeout=10.0))]
    fn wait_ready(&self, py: Python<'_>, timeout: f64) -> PyResult<u64> {
        let ctrl = self.ctrl.clone();
        let t = std::time::Duration::from_secs_f64(timeout.max(0.0));
        py.allow_threads(|| ctrl.wait_ready(t)).py()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<controller: {}>",
            self.pcie
                .borrow(py)
                .get()
                .map(|d| d.address().to_string())
                .unwrap_or_default()
        )
    }

    /// The Pcie object of this controller.
    #[getter]
    fn pcie(&self, py: Python<'_>) -> Py<PyPcie> {
        self.pcie.clone_ref(py)
    }

    fn __getitem__(&self, offset: u32) -> PyResult<u32> {
        self.ctrl.reg_read32_present(offset).py()
    }

    fn __setitem__(&self, offset: u32, value: u32) -> PyResult<()> {
        self.ctrl.reg_write32(offset, value).py()
    }

    /// CAP, the 64-bit controller capabilities register.
    #[getter]
    fn cap(&self) -> u64 {
        self.ctrl.pci().bar_read64(0, 0)
    }

    /// Largest data transfer of one command, bytes (MDTS, at most 2 MiB).
    #[getter]
    fn mdts(&self) -> usize {
        self.ctrl.mdts()
    }

    /// Default command timeout in ms (10,000 unless set; restored by reset()).
    #[getter]
    fn get_timeout(&self) -> u32 {
        self.ctrl.timeouts().default_ms()
    }

    #[setter]
    fn set_timeout(&self, ms: u32) -> PyResult<()> {
        if ms == 0 {
            return Err(bad_arg("timeout", "0 ms: a timeout is at least 1 ms"));
        }
        self.ctrl.timeouts().set_default_ms(ms);
        Ok(())
    }

    /// Sets the timeout of one admin opcode, ms (0: back to the default).
    fn set_timeout_ms(&self, opcode: u8, msec: u32) {
        self.ctrl.timeouts().set(false, opcode, msec)
    }

    /// The timeout of one admin opcode, ms.
    fn get_timeout_ms(&self, opcode: u8) -> u32 {
        self.ctrl.timeouts().get(false, opcode)
    }

    /// CID of the latest admin command submitted.
    #[getter]
    fn latest_cid(&self) -> u16 {
        self.ctrl.latest_cid()
    }

    /// Latency of the latest admin command completed, µs.
    #[getter]
    fn latest_latency(&self) -> u32 {
        self.ctrl.latest_latency_us()
    }

    /// Waits for CSTS.RDY to become `rdy` (up to CAP.TO, or `timeout` seconds); True if it did.
    #[pyo3(signature = (rdy=true, timeout=None))]
    fn wait_csts(&self, py: Python<'_>, rdy: bool, timeout: Option<f64>) -> bool {
        let ctrl = self.ctrl.clone();
        py.allow_threads(|| {
            ctrl.wait_csts(
                rdy,
                timeout.map(|t| std::time::Duration::from_secs_f64(t.max(0.0))),
            )
        })
    }

    /// Programs a fresh admin queue (AQA/ASQ/ACQ) and MSI-X; 0 on success.
    #[pyo3(signature = (lazy_doorbell=false))]
    fn init_adminq(&self, py: Python<'_>, lazy_doorbell: bool) -> PyResult<i32> {
        let ctrl = self.ctrl.clone();
        py.allow_threads(|| ctrl.init_adminq(lazy_doorbell)).py()?;
        Ok(0)
    }

    /// Identifies the controller and its namespaces; 0 on success, -1 on failure.
    fn init_ns(&self, py: Python<'_>) -> i32 {
        let ctrl = self.ctrl.clone();
        if py.allow_threads(|| ctrl.init_ns()).is_ok() {
            0
        } else {
            -1
        }
    }

    /// Records the number of IO queues from a Number of Queues feature dword 0.
    fn init_queues(&self, cdw0: u32) {
        self.ctrl.init_queues(cdw0)
    }

    /// Rings the admin SQ doorbell (with lazy doorbells).
    fn ring_doorbell(&self) {
        self.ctrl.ring_doorbell()
    }

    /// Controller reset: outstanding IO commands complete once with 00/08 through their queue's
    /// next `waitdone()`, the init function runs again, then the script's admin commands this
    /// or an earlier event (FLR, power cycle ...) ended complete with 00/08 (their callbacks
    /// run; AERs end silently); IO queue pairs are re-created in place, timeouts return to their
    /// defaults, the epoch grows.
    fn reset(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let ctrl = slf.borrow().ctrl.clone();
        Self::with_init(slf, |init| ctrl.reset(init))?;
        let mut err = None;
        let r = py.allow_threads(|| ctrl.deliver_aborted(&mut |c| deliver(0, c, &mut err)));
        finish(r.map(|_| 0), err)?;
        Ok(())
    }

    /// Reaps `expected` admin completions (AERs excluded) and returns dword 0 of the latest.
    /// With `interrupt_enabled`, the admin CQ is read only after its MSI-X vector fired.
    #[pyo3(signature = (expected=1, interrupt_enabled=true))]
    fn waitdone(&self, py: Python<'_>, expected: usize, interrupt_enabled: bool) -> PyResult<u32> {
        let ctrl = self.ctrl.clone();
        let mut err = None;
        let ctrl_c = CtrlC::default();
        let r = py.allow_threads(|| {
            ctrl_c.run(|| {
                ctrl.waitdone(expected, interrupt_enabled, &mut |c| {
                    deliver(0, c, &mut err)
                })
            })
        });
        warn_anomalies(py, self.ctrl.take_anomalies())?;
        finish(r, err.or_else(|| ctrl_c.take()))
    }

    /// Identify (06h) into `buf` (at least 4096 bytes).
    #[pyo3(signature = (buf, nsid=0, cns=1, cntid=0, csi=0, nvmsetid=0, cns_specific_id=0, cdw14=0, cb=None))]
    #[allow(clippy::too_many_arguments)]
    fn identify(
        slf: &Bound<'_, Self>,
        buf: &Bound<'_, PyBuffer>,
        nsid: u32,
        cns: u32,
        cntid: u32,
        csi: u32,
        nvmsetid: u32,
        cns_specific_id: u32,
        cdw14: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<Self>> {
        if buf.borrow().inner.length() < 4096 {
            return Err(bad_arg(
                "buf",
                "identify data needs a buffer of at least 4096 bytes",
            ));
        }
        let sqe =
            commands::identify(nsid, cns, cntid, csi, nvmsetid, cns_specific_id, cdw14).py()?;
        Self::submit(slf, sqe, data_ref(Some(buf), Some(4096))?, cb)
    }

    /// Get Features (0Ah).
    #[pyo3(signature = (fid, sel=0, buf=None, nsid=0, cdw11=0, cdw12=0, cdw13=0, cdw14=0, cdw15=0, cb=None))]
    #[allow(clippy::too_many_arguments)]
    fn getfeatures(
        slf: &Bound<'_, Self>,
        fid: u32,
        sel: u32,
        buf: Option<&Bound<'_, PyBuffer>>,
        nsid: u32,
        cdw11: u32,
        cdw12: u32,
        cdw13: u32,
        cdw14: u32,
        cdw15: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<Self>> {
        let sqe = commands::get_features(fid, sel, nsid, cdw11, cdw12, cdw13, cdw14, cdw15).py()?;
        Self::submit(slf, sqe, data_ref(buf, None)?, cb)
    }

    /// Set Features (09h).
    #[pyo3(signature = (fid, sv=0, buf=None, nsid=0, cdw11=0, cdw12=0, cdw13=0, cdw14=0, cdw15=0, cb=None))]
    #[allow(clippy::too_many_arguments)]
    fn setfeatures(
        slf: &Bound<'_, Self>,
        fid: u32,
        sv: u32,
        buf: Option<&Bound<'_, PyBuffer>>,
        nsid: u32,
        cdw11: u32,
        cdw12: u32,
        cdw13: u32,
        cdw14: u32,
        cdw15: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<Self>> {
        let sqe = commands::set_features(fid, sv, nsid, cdw11, cdw12, cdw13, cdw14, cdw15).py()?;
        Self::submit(slf, sqe, data_ref(buf, None)?, cb)
    }

    /// Get Log Page (02h): `size` bytes (default: the buffer's size) at byte `offset`.
    #[pyo3(signature = (lid, buf, size=None, offset=0, nsid=0xffff_ffff, log_specific_id=0, cb=None))]
    #[allow(clippy::too_many_arguments)]
    fn getlogpage(
        slf: &Bound<'_, Self>,
        lid: u32,
        buf: &Bound<'_, PyBuffer>,
        size: Option<usize>,
        offset: u64,
        nsid: u32,
        log_specific_id: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<Self>> {
        let size = size.unwrap_or(buf.borrow().inner.size());
        let sqe = commands::get_log_page(lid, size, offset, nsid, log_specific_id).py()?;
        Self::submit(slf, sqe, data_ref(Some(buf), Some(size))?, cb)
    }

    /// Format NVM (80h). Namespace.format() is the helper that waits and refreshes.
    #[pyo3(signature = (lbaf=0, ses=0, nsid=1, pil=0, pi=0, mset=0, cb=None))]
    #[allow(clippy::too_many_arguments)]
    fn format(
        slf: &Bound<'_, Self>,
        lbaf: u32,
        ses: u32,
        nsid: u32,
        pil: u32,
        pi: u32,
        mset: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<Self>> {
        let sqe = commands::format(lbaf, ses, nsid, pil, pi, mset).py()?;
        Self::submit(slf, sqe, None, cb)
    }

    /// Sanitize (84h): option 2 block erase (default), 3 overwrite, 4 crypto erase.
    #[pyo3(signature = (option=2, pattern=0, cb=None))]
    fn sanitize(
        slf: &Bound<'_, Self>,
        option: u32,
        pattern: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<Self>> {
        Self::submit(slf, commands::sanitize(option, pattern).py()?, None, cb)
    }

    /// Device Self-test (14h): stc 1 short, 2 extended, 0xf abort.
    #[pyo3(signature = (stc=1, nsid=0xffff_ffff, cb=None))]
    fn dst(slf: &Bound<'_, Self>, stc: u32, nsid: u32, cb: Option<PyObject>) -> PyResult<Py<Self>> {
        Self::submit(slf, commands::dst(stc, nsid).py()?, None, cb)
    }

    /// Firmware Image Download (11h) of `size` bytes (default: the buffer's size) at `offset`.
    #[pyo3(signature = (buf, offset, size=None, cb=None))]
    fn fw_download(
        slf: &Bound<'_, Self>,
        buf: &Bound<'_, PyBuffer>,
        offset: u64,
        size: Option<usize>,
        cb: Option<PyObject>,
    ) -> PyResult<Py<Self>> {
        let have = buf.borrow().inner.size();
        let size = size.unwrap_or(have);
        let (sqe, len) = commands::fw_download(size, offset).py()?;
        if len > have {
            return Err(crate::errors::to_py(
                nvme_driver::DriverError::unsafe_for_host(
                    "size",
                    format!(
                    "{size} bytes encode a transfer of {len} bytes (NUMD counts dwords), beyond \
                     the buffer's {have}: the device would read outside it"
                ),
                ),
            ));
        }
        Self::submit(slf, sqe, data_ref(Some(buf), Some(len))?, cb)
    }

    /// Firmware Commit (10h).
    #[pyo3(signature = (slot, action, bpid=0, cb=None))]
    fn fw_commit(
        slf: &Bound<'_, Self>,
        slot: u32,
        action: u32,
        bpid: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<Self>> {
        Self::submit(slf, commands::fw_commit(slot, action, bpid).py()?, None, cb)
    }

    /// Asynchronous Event Request (0Ch). It does not time out; when it completes, `waitdone`
    /// warns "AER notification is triggered: 0x..." and sends another one with the same callback.
    #[pyo3(signature = (cb=None))]
    fn aer(slf: &Bound<'_, Self>, cb: Option<PyObject>) -> PyResult<Py<Self>> {
        let ctrl = slf.borrow().ctrl.clone();
        ctrl.aer(cb.map(Arc::new)).py()?;
        Ok(slf.clone().unbind())
    }

    /// Abort (08h) of command `cid` on queue `sqid`.
    #[pyo3(signature = (cid, sqid=0, cb=None))]
    fn abort(
        slf: &Bound<'_, Self>,
        cid: u32,
        sqid: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<Self>> {
        Self::submit(slf, commands::abort(cid, sqid).py()?, None, cb)
    }

    /// Security Send (81h).
    #[pyo3(signature = (buf, spsp=0, secp=1, nssf=0, size=None, nsid=0, cb=None))]
    #[allow(clippy::too_many_arguments)]
    fn security_send(
        slf: &Bound<'_, Self>,
        buf: &Bound<'_, PyBuffer>,
        spsp: u32,
        secp: u32,
        nssf: u32,
        size: Option<usize>,
        nsid: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<Self>> {
        Self::security(slf, true, buf, spsp, secp, nssf, size, nsid, cb)
    }

    /// Security Receive (82h).
    #[pyo3(signature = (buf, spsp=0, secp=1, nssf=0, size=None, nsid=0, cb=None))]
    #[allow(clippy::too_many_arguments)]
    fn security_receive(
        slf: &Bound<'_, Self>,
        buf: &Bound<'_, PyBuffer>,
        spsp: u32,
        secp: u32,
        nssf: u32,
        size: Option<usize>,
        nsid: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<Self>> {
        Self::security(slf, false, buf, spsp, secp, nssf, size, nsid, cb)
    }

    /// Any admin command: `opcode` is the whole dword 0 (FUSE and PSDT may be set; the CID is
    /// assigned by the driver).
    #[pyo3(signature = (opcode, buf=None, nsid=0, cdw10=0, cdw11=0, cdw12=0, cdw13=0, cdw14=0, cdw15=0, cdw2=0, cdw3=0, cb=None))]
    #[allow(clippy::too_many_arguments)]
    fn send_cmd(
        slf: &Bound<'_, Self>,
        opcode: u32,
        buf: Option<&Bound<'_, PyBuffer>>,
        nsid: u32,
        cdw10: u32,
        cdw11: u32,
        cdw12: u32,
        cdw13: u32,
        cdw14: u32,
        cdw15: u32,
        cdw2: u32,
        cdw3: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<Self>> {
        let sqe = commands::raw(
            opcode, nsid, cdw2, cdw3, cdw10, cdw11, cdw12, cdw13, cdw14, cdw15,
        );
        Self::submit(slf, sqe, data_ref(buf, None)?, cb)
    }

    /// The field in bytes [byte_begin, byte_end] of Identify data (controller by default), as
    /// an int or, with `type=str`, a string.
    #[pyo3(
        signature = (byte_end, byte_begin=None, r#type=None, nsid=0, cns=1, cntid=0, csi=0, nvmsetid=0),
        text_signature = "(self, byte_end, byte_begin=None, type=None, nsid=0, cns=1, cntid=0, csi=0, nvmsetid=0)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn id_data(
        &self,
        py: Python<'_>,
        byte_end: usize,
        byte_begin: Option<usize>,
        r#type: Option<&Bound<'_, PyType>>,
        nsid: u32,
        cns: u32,
        cntid: u32,
        csi: u32,
        nvmsetid: u32,
    ) -> PyResult<PyObject> {
        let sqe = commands::identify(nsid, cns, cntid, csi, nvmsetid, 0, 0).py()?;
        let (cqe, buf) = self.sync_into_buffer(py, sqe, 4096)?;
        if let Some(w) = nvme_driver::status_warning(cqe.status()) {
            crate::cqe::warn(py, &w)?;
        }
        crate::buffer::field(py, &buf, byte_end, byte_begin, r#type)
    }

    /// Identify Controller data with fields named by the spec's abbreviations (`.mdts`, `.sn` ...).
    fn id_ctrl(&self, py: Python<'_>) -> PyResult<PyIdentify> {
        let sqe = commands::identify(0, 1, 0, 0, 0, 0, 0).py()?;
        let (cqe, buf) = self.sync_into_buffer(py, sqe, 4096)?;
        if let Some(w) = nvme_driver::status_warning(cqe.status()) {
            crate::cqe::warn(py, &w)?;
        }
        Ok(PyIdentify::new(
            "controller",
            buf.to_vec(),
            IdentifyController::FIELDS,
        ))
    }

    /// Whether the controller supports admin opcode `opcode` (0..=255), or IO opcode `opcode - 256`,
    /// as the Commands Supported and Effects log page says.
    fn supports(&self, py: Python<'_>, opcode: u32) -> PyResult<bool> {
        let ctrl = self.ctrl.clone();
        let (cqe, yes) = py.allow_threads(|| ctrl.supports(opcode)).py()?;
        status_ok(py, cqe)?;
        Ok(yes)
    }

    /// The LBA format index of namespace `nsid` with this data and metadata size, or None.
    #[pyo3(signature = (data_size=512, meta_size=0, nsid=1))]
    fn get_lba_format(
        &self,
        py: Python<'_>,
        data_size: usize,
        meta_size: usize,
        nsid: u32,
    ) -> PyResult<Option<usize>> {
        let ctrl = self.ctrl.clone();
        let (cqe, index) = py
            .allow_threads(|| ctrl.lba_format_of(nsid, data_size, meta_size))
            .py()?;
        status_ok(py, cqe)?;
        Ok(index)
    }

    /// The controller's timestamp feature, ms since the epoch.
    fn timestamp(&self, py: Python<'_>) -> PyResult<u64> {
        let ctrl = self.ctrl.clone();
        let (cqe, ms) = py.allow_threads(|| ctrl.timestamp()).py()?;
        status_ok(py, cqe)?;
        Ok(ms)
    }

    /// Downloads a firmware file in 4 KiB pieces and commits it to `slot` with `action`.
    #[pyo3(signature = (filename, slot=0, action=1))]
    fn downfw(&self, py: Python<'_>, filename: &str, slot: u32, action: u32) -> PyResult<()> {
        let image =
            std::fs::read(filename).map_err(|e| bad_arg("filename", format!("{filename}: {e}")))?;
        let ctrl = self.ctrl.clone();
        let cqe = py
            .allow_threads(|| ctrl.download_firmware(&image, slot, action))
            .py()?;
        status_ok(py, cqe)?;
        Ok(())
    }

    /// Read/write throughput of all IO queue pairs since the previous call:
    /// `(bytes per second, IOs per second)`, as PyNVMe3's `speed, iops = nvme0.iostat()`.
    fn iostat(&self) -> (u64, u64) {
        let s = self.ctrl.iostat();
        (s.bytes_per_sec as u64, s.ios_per_sec as u64)
    }

    /// Creates a namespace of `nsze` blocks (`ncap` allocated, default `nsze`) in LBA format
    /// `flbas`; returns its nsid, or 0 after the warning "ERROR status: ..." if the controller
    /// refused. Attach it with `ns_attach` before use.
    #[pyo3(signature = (nsze, ncap=None, flbas=0, dps=0, nmic=0))]
    fn ns_create(
        &self,
        py: Python<'_>,
        nsze: u64,
        ncap: Option<u64>,
        flbas: u8,
        dps: u8,
        nmic: u8,
    ) -> PyResult<u32> {
        let ctrl = self.ctrl.clone();
        let cqe = py
            .allow_threads(|| ctrl.ns_create(nsze, ncap.unwrap_or(nsze), flbas, dps, nmic))
            .py()?;
        if let Some(w) = nvme_driver::status_warning(cqe.status()) {
            crate::cqe::warn(py, &w)?;
            return Ok(0);
        }
        Ok(cqe.dw0)
    }

    /// Deletes namespace `nsid` (0xffffffff: all); False after the warning "ERROR status: ..."
    /// if the controller refused.
    fn ns_delete(&self, py: Python<'_>, nsid: u32) -> PyResult<bool> {
        let ctrl = self.ctrl.clone();
        let cqe = py.allow_threads(|| ctrl.ns_delete(nsid)).py()?;
        status_ok(py, cqe)
    }

    /// Attaches namespace `nsid` to the controllers `cntlids` (default: this one, CNTLID from
    /// Identify); False after the warning "ERROR status: ..." if refused.
    #[pyo3(signature = (nsid, *cntlids))]
    fn ns_attach(&self, py: Python<'_>, nsid: u32, cntlids: Vec<u16>) -> PyResult<bool> {
        self.attachment(py, nsid, false, cntlids)
    }

    /// Detaches namespace `nsid` from the controllers `cntlids` (default: this one); False after
    /// the warning "ERROR status: ..." if refused.
    #[pyo3(signature = (nsid, *cntlids))]
    fn ns_detach(&self, py: Python<'_>, nsid: u32, cntlids: Vec<u16>) -> PyResult<bool> {
        self.attachment(py, nsid, true, cntlids)
    }

    /// The admin queue's command log, newest first: one string per command (SQE, CQE, times).
    #[pyo3(signature = (count=1000, offset=0))]
    fn cmdlog(&self, py: Python<'_>, count: usize, offset: usize) -> PyResult<Vec<String>> {
        format_entries(py, self.ctrl.cmdlog(count, offset))
    }

    /// The command logs of all queues merged, newest first.
    #[pyo3(signature = (count=1000))]
    fn cmdlog_merged(&self, py: Python<'_>, count: usize) -> PyResult<Vec<String>> {
        format_entries(py, self.ctrl.cmdlog_merged(count))
    }

    /// The latest `count` commands of queue `qid` (0: the admin queue), newest first, one dict
    /// each: seq, sqid, opcode, name, cid, nsid, sqe (16 dwords), submit_ns, and once completed
    /// cqe (4 dwords), complete_ns, sct, sc, status (its name); timed_out.
    #[pyo3(signature = (qid=0, count=16))]
    fn cmdlog_entries<'py>(
        &self,
        py: Python<'py>,
        qid: u16,
        count: usize,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let ctrl = self.ctrl.clone();
        // The GIL is released while queue locks are taken: their holders may wait for it.
        let entries = py.allow_threads(|| {
            if qid == 0 {
                return Some(ctrl.cmdlog(count, 0));
            }
            ctrl.live_qpairs()
                .into_iter()
                .find(|q| q.qid() == qid && !q.is_deleted())
                .map(|q| q.cmdlog(count, 0))
        });
        let entries = entries
            .ok_or_else(|| bad_arg("qid", format!("{qid}: no live IO queue pair has it")))?;
        entries.iter().map(|e| entry_dict(py, e)).collect()
    }

    /// The live IO queue pairs (ioworkers' included), by qid: one dict each with qid, depth,
    /// outstanding, ios and bytes (reads and writes completed). Reads counters, sends nothing.
    fn qpairs_info<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let ctrl = self.ctrl.clone();
        let mut info: Vec<(u16, u16, usize, u64, u64)> = py.allow_threads(|| {
            ctrl.live_qpairs()
                .iter()
                .filter(|q| !q.is_deleted())
                .map(|q| {
                    let (bytes, ios) = q.io_counts();
                    (q.qid(), q.depth(), q.outstanding(), ios, bytes)
                })
                .collect()
        });
        info.sort_by_key(|q| q.0);
        info.into_iter()
            .map(|(qid, depth, outstanding, ios, bytes)| {
                let d = PyDict::new(py);
                d.set_item("qid", qid)?;
                d.set_item("depth", depth)?;
                d.set_item("outstanding", outstanding)?;
                d.set_item("ios", ios)?;
                d.set_item("bytes", bytes)?;
                Ok(d)
            })
            .collect()
    }

    /// The driver's copy of the Identify Controller data, taken at initialisation, or None if
    /// the controller was not identified. Sends no command.
    fn id_ctrl_cached(&self) -> Option<PyIdentify> {
        self.ctrl
            .id_ctrl()
            .map(|d| PyIdentify::new("controller", d, IdentifyController::FIELDS))
    }
}
