//! `Namespace`: NVM commands of one namespace.

use crate::buffer::PyBuffer;
use crate::controller::{data_ref, PyController};
use crate::cqe::{warn, Ctx};
use crate::errors::{bad_arg, IntoPy};
use crate::identify::PyIdentify;
use crate::qpair::PyQpair;
use nvme_driver::{commands, DataRef, Namespace};
use nvme_spec::cmd::nvm;
use nvme_spec::identify::IdentifyNamespace;
use nvme_spec::Sqe;
use pyo3::prelude::*;
use pyo3::types::PyType;
use std::sync::Arc;
use zerocopy::IntoBytes;

/// A namespace: `Namespace(nvme, nsid=1, nlba_verify=0, crc_size=None)`.
///
/// IO methods are asynchronous and return the qpair, so `nvme0n1.read(qpair, buf, 0).waitdone()`
/// chains; `cb=` gives a callback that receives the `CQE`.
#[pyclass(module = "nvme._native", name = "Namespace", subclass)]
pub struct PyNamespace {
    pub(crate) ns: Arc<Namespace<Ctx>>,
    nvme: Py<PyController>,
    nlba_verify: u64,
}

fn submit(
    ns: &Namespace<Ctx>,
    qpair: &Bound<'_, PyQpair>,
    sqe: Sqe,
    data: Option<DataRef>,
    cb: Option<PyObject>,
    stamp: bool,
) -> PyResult<Py<PyQpair>> {
    ns.submit(&qpair.borrow().qp, sqe, data, cb.map(Arc::new), stamp)
        .py()?;
    Ok(qpair.clone().unbind())
}

#[pymethods]
impl PyNamespace {
    #[new]
    #[pyo3(signature = (nvme, nsid=1, nlba_verify=0, crc_size=None))]
    fn new(
        py: Python<'_>,
        nvme: &Bound<'_, PyController>,
        nsid: u32,
        nlba_verify: u64,
        crc_size: Option<usize>,
    ) -> PyResult<Self> {
        let ctrl = nvme.borrow().ctrl.clone();
        let ns = py
            .allow_threads(|| Namespace::with_crc_size(&ctrl, nsid, nlba_verify, crc_size))
            .py()?;
        Ok(PyNamespace {
            ns: Arc::new(ns),
            nvme: nvme.clone().unbind(),
            nlba_verify,
        })
    }

    fn __repr__(&self) -> String {
        format!("<namespace: {}>", self.ns.nsid())
    }

    /// The controller.
    #[getter]
    fn nvme(&self, py: Python<'_>) -> Py<PyController> {
        self.nvme.clone_ref(py)
    }

    /// Namespace id.
    #[getter]
    fn nsid(&self) -> u32 {
        self.ns.nsid()
    }

    /// NVM capacity in bytes (Identify Namespace NVMCAP; NSZE × sector size when the device
    /// reports 0).
    #[getter]
    fn capacity(&self) -> u128 {
        let id = self.ns.id();
        let c = id.nvmcap();
        if c != 0 {
            c
        } else {
            id.nsze as u128 * id.sector_size() as u128
        }
    }

    /// Bytes per logical block.
    #[getter]
    fn sector_size(&self) -> usize {
        self.ns.sector_size()
    }

    /// Metadata bytes per logical block.
    #[getter]
    fn meta_size(&self) -> usize {
        self.ns.meta_size()
    }

    /// Number of logical blocks verified by the host (0: the whole namespace).
    #[getter]
    fn nlba_verify(&self) -> u64 {
        self.nlba_verify
    }

    /// Bytes per logical block of the namespace's verification digests: 1, 2 or 4.
    #[getter]
    fn crc_size(&self) -> usize {
        self.ns.verifier().crc_size()
    }

    /// Identify Namespace data with fields named by the spec's abbreviations.
    fn id_ns(&self, py: Python<'_>) -> PyResult<PyIdentify> {
        let ns = self.ns.clone();
        py.allow_threads(|| ns.refresh()).py()?;
        Ok(PyIdentify::new(
            "namespace",
            self.ns.id().as_bytes().to_vec(),
            IdentifyNamespace::FIELDS,
        ))
    }

    /// The field in bytes [byte_begin, byte_end] of this namespace's Identify data (int, or str
    /// or bytes with `type=`).
    #[pyo3(signature = (byte_end, byte_begin=None, r#type=None), text_signature = "(self, byte_end, byte_begin=None, type=None)")]
    fn id_data(
        &self,
        py: Python<'_>,
        byte_end: usize,
        byte_begin: Option<usize>,
        r#type: Option<&Bound<'_, PyType>>,
    ) -> PyResult<PyObject> {
        let ns = self.ns.clone();
        py.allow_threads(|| ns.refresh()).py()?;
        let mem = nvme_driver::pci::dma_alloc(4096).py()?;
        mem.write(0, self.ns.id().as_bytes());
        let b = nvme_driver::Buffer::wrap(mem, 4096, "identify");
        crate::buffer::field(py, &b, byte_end, byte_begin, r#type)
    }

    /// The LBA format index with this data and metadata size, or None.
    #[pyo3(signature = (data_size=512, meta_size=0))]
    fn get_lba_format(&self, data_size: usize, meta_size: usize) -> Option<usize> {
        self.ns.get_lba_format(data_size, meta_size)
    }

    /// Whether IO opcode `opcode` is supported (Commands Supported and Effects log).
    fn supports(&self, py: Python<'_>, opcode: u8) -> PyResult<bool> {
        let nvme = self.nvme.bind(py);
        nvme.call_method1("supports", (256 + opcode as u32,))?
            .extract()
    }

    /// Sets the timeout of one IO opcode, ms (0: back to the default).
    fn set_timeout_ms(&self, opcode: u8, msec: u32) {
        self.ns.controller().timeouts().set(true, opcode, msec)
    }

    /// Formats the namespace to the LBA format with this data/metadata size and waits for it
    /// (timeout raised to at least 100 s); returns dword 0 of the completion.
    #[pyo3(signature = (data_size=512, meta_size=0, ses=0))]
    fn format(
        &self,
        py: Python<'_>,
        data_size: usize,
        meta_size: usize,
        ses: u32,
    ) -> PyResult<u32> {
        let ns = self.ns.clone();
        let cqe = py
            .allow_threads(|| ns.format(data_size, meta_size, ses))
            .py()?;
        if let Some(w) = nvme_driver::status_warning(cqe.status()) {
            warn(py, &w)?;
        }
        Ok(cqe.dw0)
    }

    /// Turns checking of every read against what was written on or off; returns whether it is on.
    /// A read (of exactly the LBAs its command addresses) whose data does not match completes
    /// with status 07/81 (warning "ERROR status: 07/81") and what was found is logged per LBA
    /// (misdirected, stale, never written, corrupted, uncorrectable). The `verify` fixture turns
    /// it on.
    #[pyo3(signature = (enable=true))]
    fn verify_enable(&self, enable: bool) -> bool {
        self.ns.verifier().set_enabled(enable);
        enable
    }

    /// Stops stamping written data with LBA and token (verification still works by CRC).
    fn inject_write_buffer_disable(&self) {
        self.ns.verifier().set_stamping(false)
    }

    /// Stamps written data again: first 8 bytes of each LBA nsid/LBA, last 8 bytes a token.
    fn inject_write_buffer_enable(&self) {
        self.ns.verifier().set_stamping(true)
    }

    /// Saves the verification table (`crc_size` bytes per written LBA, and the stamp token tags)
    /// to `path`.
    fn save_crc(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        let v = self.ns.verifier().clone();
        py.allow_threads(|| v.save(&path)).py()
    }

    /// Loads a verification table saved by `save_crc` for this namespace, with the same
    /// `crc_size`.
    fn load_crc(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        let v = self.ns.verifier().clone();
        py.allow_threads(|| v.load(&path)).py()
    }

    /// Read (02h) of `lba_count` blocks at `lba` into `buf`.
    #[pyo3(signature = (qpair, buf, lba, lba_count=1, io_flags=0, cdw13=0, cdw14=0, cdw15=0, cb=None))]
    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        qpair: &Bound<'_, PyQpair>,
        buf: &Bound<'_, PyBuffer>,
        lba: u64,
        lba_count: u32,
        io_flags: u32,
        cdw13: u32,
        cdw14: u32,
        cdw15: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<PyQpair>> {
        let (sqe, data) = self
            .ns
            .rw_command(
                nvm::READ,
                &buf.borrow().inner,
                lba,
                lba_count,
                io_flags,
                cdw13,
                cdw14,
                cdw15,
            )
            .py()?;
        submit(&self.ns, qpair, sqe, Some(data), cb, false)
    }

    /// Write (01h) of `lba_count` blocks at `lba` from `buf`.
    #[pyo3(signature = (qpair, buf, lba, lba_count=1, io_flags=0, cdw13=0, cdw14=0, cdw15=0, cb=None))]
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        qpair: &Bound<'_, PyQpair>,
        buf: &Bound<'_, PyBuffer>,
        lba: u64,
        lba_count: u32,
        io_flags: u32,
        cdw13: u32,
        cdw14: u32,
        cdw15: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<PyQpair>> {
        let (sqe, data) = self
            .ns
            .rw_command(
                nvm::WRITE,
                &buf.borrow().inner,
                lba,
                lba_count,
                io_flags,
                cdw13,
                cdw14,
                cdw15,
            )
            .py()?;
        submit(&self.ns, qpair, sqe, Some(data), cb, true)
    }

    /// Compare (05h) of `lba_count` blocks at `lba` with `buf`.
    #[pyo3(signature = (qpair, buf, lba, lba_count=1, io_flags=0, cb=None))]
    #[allow(clippy::too_many_arguments)]
    fn compare(
        &self,
        qpair: &Bound<'_, PyQpair>,
        buf: &Bound<'_, PyBuffer>,
        lba: u64,
        lba_count: u32,
        io_flags: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<PyQpair>> {
        let (sqe, data) = self
            .ns
            .rw_command(
                nvm::COMPARE,
                &buf.borrow().inner,
                lba,
                lba_count,
                io_flags,
                0,
                0,
                0,
            )
            .py()?;
        submit(&self.ns, qpair, sqe, Some(data), cb, false)
    }

    /// Verify (0Ch) of `lba_count` blocks at `lba` (no data moves).
    #[pyo3(signature = (qpair, lba, lba_count=1, io_flags=0, cb=None))]
    fn verify(
        &self,
        qpair: &Bound<'_, PyQpair>,
        lba: u64,
        lba_count: u32,
        io_flags: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<PyQpair>> {
        let sqe = commands::rw(
            nvm::VERIFY,
            self.ns.nsid(),
            lba,
            lba_count,
            io_flags,
            0,
            0,
            0,
        )
        .py()?;
        submit(&self.ns, qpair, sqe, None, cb, false)
    }

    /// Flush (00h).
    #[pyo3(signature = (qpair, cb=None))]
    fn flush(&self, qpair: &Bound<'_, PyQpair>, cb: Option<PyObject>) -> PyResult<Py<PyQpair>> {
        submit(
            &self.ns,
            qpair,
            commands::flush(self.ns.nsid()),
            None,
            cb,
            false,
        )
    }

    /// Write Uncorrectable (04h): later reads of these blocks fail until they are written.
    #[pyo3(signature = (qpair, lba, lba_count=1, cb=None))]
    fn write_uncorrectable(
        &self,
        qpair: &Bound<'_, PyQpair>,
        lba: u64,
        lba_count: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<PyQpair>> {
        let sqe = commands::rw(
            nvm::WRITE_UNCORRECTABLE,
            self.ns.nsid(),
            lba,
            lba_count,
            0,
            0,
            0,
            0,
        )
        .py()?;
        submit(&self.ns, qpair, sqe, None, cb, false)
    }

    /// Write Zeroes (08h).
    #[pyo3(signature = (qpair, lba, lba_count=1, io_flags=0, cb=None))]
    fn write_zeroes(
        &self,
        qpair: &Bound<'_, PyQpair>,
        lba: u64,
        lba_count: u32,
        io_flags: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<PyQpair>> {
        let sqe = commands::rw(
            nvm::WRITE_ZEROES,
            self.ns.nsid(),
            lba,
            lba_count,
            io_flags,
            0,
            0,
            0,
        )
        .py()?;
        submit(&self.ns, qpair, sqe, None, cb, false)
    }

    /// Dataset Management (09h) with `range_count` ranges from `buf` (see `Buffer.set_dsm_range`);
    /// attribute 0x4 = deallocate.
    #[pyo3(signature = (qpair, buf, range_count, attribute=4, cb=None))]
    fn dsm(
        &self,
        qpair: &Bound<'_, PyQpair>,
        buf: &Bound<'_, PyBuffer>,
        range_count: u32,
        attribute: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<PyQpair>> {
        let sqe = commands::dsm(self.ns.nsid(), range_count, attribute).py()?;
        let len = range_count as usize * 16;
        if buf.borrow().inner.size() < len {
            return Err(bad_arg(
                "buf",
                format!(
                    "{range_count} ranges need {len} bytes, the buffer has {}",
                    buf.borrow().inner.size()
                ),
            ));
        }
        submit(
            &self.ns,
            qpair,
            sqe,
            data_ref(Some(buf), Some(len))?,
            cb,
            false,
        )
    }

    /// Copy (19h) of `range_count` source ranges (format 0 descriptors in `buf`) to `sdlba`.
    #[pyo3(signature = (qpair, buf, range_count, sdlba, io_flags=0, format=0, cb=None))]
    #[allow(clippy::too_many_arguments)]
    fn copy(
        &self,
        qpair: &Bound<'_, PyQpair>,
        buf: &Bound<'_, PyBuffer>,
        range_count: u32,
        sdlba: u64,
        io_flags: u32,
        format: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<PyQpair>> {
        let sqe = commands::copy(self.ns.nsid(), sdlba, range_count, format, io_flags).py()?;
        let len = range_count as usize * 32;
        submit(
            &self.ns,
            qpair,
            sqe,
            data_ref(Some(buf), Some(len.min(buf.borrow().inner.size())))?,
            cb,
            false,
        )
    }

    /// Any IO command: `opcode` is the whole dword 0; `nsid` defaults to this namespace.
    #[pyo3(signature = (opcode, qpair, buf=None, nsid=None, cdw10=0, cdw11=0, cdw12=0, cdw13=0, cdw14=0, cdw15=0, cdw2=0, cdw3=0, cb=None))]
    #[allow(clippy::too_many_arguments)]
    fn send_cmd(
        &self,
        opcode: u32,
        qpair: &Bound<'_, PyQpair>,
        buf: Option<&Bound<'_, PyBuffer>>,
        nsid: Option<u32>,
        cdw10: u32,
        cdw11: u32,
        cdw12: u32,
        cdw13: u32,
        cdw14: u32,
        cdw15: u32,
        cdw2: u32,
        cdw3: u32,
        cb: Option<PyObject>,
    ) -> PyResult<Py<PyQpair>> {
        let sqe = commands::raw(
            opcode,
            nsid.unwrap_or(self.ns.nsid()),
            cdw2,
            cdw3,
            cdw10,
            cdw11,
            cdw12,
            cdw13,
            cdw14,
            cdw15,
        );
        submit(&self.ns, qpair, sqe, data_ref(buf, None)?, cb, false)
    }

    /// Releases the namespace.
    fn close(&self) {}
}
