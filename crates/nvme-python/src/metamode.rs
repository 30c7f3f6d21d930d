//! Metamode (PyNVMe3): `IOCQ`, `IOSQ`, `SQE`, `PRP`, `PRPList` and the SGL descriptor classes.
//!
//! The behaviour is in `nvme_driver::metamode`; here are the Python objects, the conversion of
//! their arguments (a Buffer or an int for an address, an SGL object for a descriptor) and the
//! references that keep the memory of queues, PRPs and SGLs alive while the device may use it.

use crate::buffer::PyBuffer;
use crate::controller::PyController;
use crate::cqe::{deliver, finish, warn, Ctx, PyCqe};
use crate::errors::{bad_arg, IntoPy};
use nvme_driver::metamode::{self, Chunk, DataPointer, IoCq, IoSq, QueueMemory, SglKind, SqConfig};
use nvme_driver::pci::DmaMemory;
use nvme_driver::{completion_warnings, Buffer};
use nvme_spec::sgl::SglDescriptor;
use nvme_spec::{Cqe, Sqe};
use pyo3::exceptions::{PyIndexError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyList;
use pyo3::PyClassInitializer;
use std::sync::Arc;
use std::time::Duration;

type Ctrl = nvme_driver::Controller<Ctx>;

/// A new Buffer (the base of PRP and the SGL classes).
fn new_buffer(length: usize, name: &str, pvalue: u64, ptype: u32) -> PyResult<PyBuffer> {
    if length == 0 {
        return Err(bad_arg("length", "0 is not valid size"));
    }
    if length > 1 << 30 {
        return Err(bad_arg(
            "length",
            format!("{length} bytes: a buffer is at most 1 GiB"),
        ));
    }
    let mem = nvme_driver::pci::dma_alloc(length).py()?;
    Ok(PyBuffer {
        inner: Buffer::new(mem, length, name, pvalue, ptype).py()?,
    })
}

/// The bus address an argument names: an int as is, a Buffer (PRP, PRPList, SGL ...) by its
/// `phys_addr`, whose memory then goes into `keep`.
fn address(arg: &'static str, v: &Bound<'_, PyAny>, keep: &mut Vec<DmaMemory>) -> PyResult<u64> {
    if let Ok(b) = v.downcast::<PyBuffer>() {
        collect_memory(v, keep);
        return Ok(b.borrow().inner.phys_addr());
    }
    v.extract::<u64>()
        .map_err(|_| bad_arg(arg, "an address is an int or a Buffer (PRP, PRPList)"))
}

/// Memory of a Buffer object and, for a PRP list or an SGL segment, of everything it points to.
fn collect_memory(v: &Bound<'_, PyAny>, keep: &mut Vec<DmaMemory>) {
    let Ok(b) = v.downcast::<PyBuffer>() else {
        return;
    };
    let mem = b.borrow().inner.memory().clone();
    if keep.iter().any(|m| m.same_region(&mem)) {
        return;
    }
    keep.push(mem);
    let children: Vec<PyObject> = if let Ok(l) = v.downcast::<PyPrpList>() {
        l.borrow()
            .entries
            .iter()
            .flatten()
            .map(|o| o.clone_ref(v.py()))
            .collect()
    } else if let Ok(s) = v.downcast::<PySgl>() {
        s.borrow()
            .items
            .iter()
            .flatten()
            .map(|o| o.clone_ref(v.py()))
            .collect()
    } else {
        Vec::new()
    };
    for c in children {
        collect_memory(c.bind(v.py()), keep);
    }
}

/// The SGL descriptor of an SGL object.
fn descriptor(v: &Bound<'_, PyAny>) -> PyResult<SglDescriptor> {
    let s = v
        .downcast::<PySgl>()
        .map_err(|_| bad_arg("sgl", "an SGL object (DataBlockSGL, SegmentSGL ...)"))?;
    let kind = s.borrow().kind;
    let b = v.downcast::<PyBuffer>()?.borrow();
    kind.descriptor(b.inner.phys_addr(), b.inner.size()).py()
}

/// The memory of a queue: a Buffer (contiguous) or a PRPList (the pages in its entries).
fn queue_memory(v: &Bound<'_, PyAny>) -> PyResult<QueueMemory> {
    let piece = |o: &Bound<'_, PyAny>| -> PyResult<Chunk> {
        let b = o
            .downcast::<PyBuffer>()
            .map_err(|_| bad_arg("prp1", "the queue's memory is a Buffer (PRP) or a PRPList"))?
            .borrow();
        Ok(Chunk {
            mem: b.inner.memory().clone(),
            offset: b.inner.offset(),
            len: b.inner.size(),
        })
    };
    if let Ok(l) = v.downcast::<PyPrpList>() {
        let first = piece(v)?.offset / 8;
        let mut pages = Vec::new();
        for e in l.borrow().entries.iter().skip(first) {
            match e {
                Some(o) => pages.push(piece(o.bind(v.py()))?),
                None => break,
            }
        }
        return Ok(QueueMemory::prp_list(piece(v)?, pages));
    }
    Ok(QueueMemory::contiguous(piece(v)?))
}

fn warn_status(py: Python<'_>, cqe: &Cqe) -> PyResult<()> {
    for t in completion_warnings(1, &Sqe::default(), cqe, false).after {
        warn(py, &t)?;
    }
    Ok(())
}

fn secs(arg: &'static str, t: f64) -> PyResult<Duration> {
    if !(t.is_finite() && t >= 0.0) {
        return Err(bad_arg(arg, format!("{t} is not a number of seconds >= 0")));
    }
    Ok(Duration::from_secs_f64(t))
}

fn qid_arg(arg: &'static str, v: u32) -> PyResult<u16> {
    u16::try_from(v).map_err(|_| bad_arg(arg, format!("{v} is not a queue id 0..=65535")))
}

// ---- PRP, PRPList ------------------------------------------------------------------------------

/// A Buffer for a data pointer or a queue: `PRP(length=4096, name="PRP", pvalue=0, ptype=0)`.
///
/// An SQE's `prp1`/`prp2` take it (its `phys_addr`: memory start + offset), and so do the
/// metamode commands of `IOSQ` and the `prp1` of `IOCQ`/`IOSQ`.
#[pyclass(module = "nvme._native", name = "PRP", extends = PyBuffer, subclass)]
pub struct PyPrp;

#[pymethods]
impl PyPrp {
    #[new]
    #[pyo3(signature = (length=4096, name="PRP", pvalue=0, ptype=0))]
    fn new(
        length: usize,
        name: &str,
        pvalue: u64,
        ptype: u32,
    ) -> PyResult<PyClassInitializer<Self>> {
        Ok(PyClassInitializer::from(new_buffer(length, name, pvalue, ptype)?).add_subclass(PyPrp))
    }
}

/// A PRP list page: `PRPList(length=4096, name="PRPList")`, 512 entries of 8 bytes.
///
/// `lst[i] = prp` writes the `phys_addr` of `prp` (a Buffer) into entry i (bytes i*8, from the
/// start of the memory, whatever the `offset`) and keeps it; `lst[i]` gives it back. The
/// command's PRP2 (or a queue's PRP1) points at `phys_addr`, so an `offset` starts the list at
/// entry offset/8. The last entry may hold another PRPList to chain lists.
#[pyclass(module = "nvme._native", name = "PRPList", extends = PyPrp)]
pub struct PyPrpList {
    entries: Vec<Option<PyObject>>,
}

#[pymethods]
impl PyPrpList {
    #[new]
    #[pyo3(signature = (length=4096, name="PRPList"))]
    fn new(length: usize, name: &str) -> PyResult<PyClassInitializer<Self>> {
        let base = new_buffer(length, name, 0, 0)?;
        let n = length / 8;
        Ok(PyClassInitializer::from(base)
            .add_subclass(PyPrp)
            .add_subclass(PyPrpList {
                entries: (0..n).map(|_| None).collect(),
            }))
    }

    fn __setitem__(slf: &Bound<'_, Self>, index: usize, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let addr = value
            .downcast::<PyBuffer>()
            .map_err(|_| bad_arg("value", "a PRP list entry is a Buffer (PRP or PRPList)"))?
            .borrow()
            .inner
            .phys_addr();
        {
            let b = slf.downcast::<PyBuffer>()?.borrow();
            metamode::set_prp_entry(b.inner.memory(), b.inner.length(), index, addr).py()?;
        }
        slf.borrow_mut().entries[index] = Some(value.clone().unbind());
        Ok(())
    }

    fn __getitem__(&self, py: Python<'_>, index: usize) -> PyResult<Option<PyObject>> {
        self.entries
            .get(index)
            .map(|e| e.as_ref().map(|o| o.clone_ref(py)))
            .ok_or_else(|| {
                PyIndexError::new_err(format!(
                    "PRP list index {index} out of range 0..{}",
                    self.entries.len()
                ))
            })
    }

    /// Number of entries the list holds (its length / 8).
    #[getter]
    fn entry_count(&self) -> usize {
        self.entries.len()
    }
}

// ---- SGL ---------------------------------------------------------------------------------------

/// An SGL descriptor object, a Buffer: `SGL(length=4096, name="SGL", pvalue=0, ptype=0)` is a
/// data block of its memory. Its kinds are the subclasses `DataBlockSGL`, `BitBucketSGL`,
/// `SegmentSGL` and `LastSegmentSGL`. `desc` is its 16-byte descriptor as an int.
#[pyclass(module = "nvme._native", name = "SGL", extends = PyBuffer, subclass)]
pub struct PySgl {
    kind: SglKind,
    items: Vec<Option<PyObject>>,
}

impl PySgl {
    fn init(
        kind: SglKind,
        length: usize,
        name: &str,
        pvalue: u64,
        ptype: u32,
    ) -> PyResult<PyClassInitializer<Self>> {
        let n = match kind {
            SglKind::Segment | SglKind::LastSegment => length / 16,
            _ => 0,
        };
        Ok(
            PyClassInitializer::from(new_buffer(length, name, pvalue, ptype)?).add_subclass(
                PySgl {
                    kind,
                    items: (0..n).map(|_| None).collect(),
                },
            ),
        )
    }

    fn set_item(slf: &Bound<'_, Self>, index: usize, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let d = descriptor(value).map_err(|_| {
            bad_arg(
                "value",
                "a segment entry is an SGL object (DataBlockSGL, BitBucketSGL, SegmentSGL ...)",
            )
        })?;
        {
            let b = slf.downcast::<PyBuffer>()?.borrow();
            metamode::set_sgl_entry(b.inner.memory(), b.inner.length(), index, &d).py()?;
        }
        slf.borrow_mut().items[index] = Some(value.clone().unbind());
        Ok(())
    }

    fn get_item(&self, py: Python<'_>, index: usize) -> PyResult<Option<PyObject>> {
        self.items
            .get(index)
            .map(|e| e.as_ref().map(|o| o.clone_ref(py)))
            .ok_or_else(|| {
                PyIndexError::new_err(format!(
                    "SGL segment index {index} out of range 0..{}",
                    self.items.len()
                ))
            })
    }
}

#[pymethods]
impl PySgl {
    #[new]
    #[pyo3(signature = (length=4096, name="SGL", pvalue=0, ptype=0))]
    fn new(
        length: usize,
        name: &str,
        pvalue: u64,
        ptype: u32,
    ) -> PyResult<PyClassInitializer<Self>> {
        Self::init(SglKind::DataBlock, length, name, pvalue, ptype)
    }

    /// The descriptor (16 bytes, little-endian) as an int.
    #[getter]
    fn desc(slf: &Bound<'_, Self>) -> PyResult<u128> {
        let (lo, hi) = descriptor(slf.as_any())?.to_dptr();
        Ok(lo as u128 | (hi as u128) << 64)
    }
}

/// A data block: `DataBlockSGL(length, name="DataBlockSGL", pvalue=0, ptype=0)`, the memory the
/// data goes to or comes from (`size` bytes from `offset`).
#[pyclass(module = "nvme._native", name = "DataBlockSGL", extends = PySgl)]
pub struct PyDataBlockSgl;

#[pymethods]
impl PyDataBlockSgl {
    #[new]
    #[pyo3(signature = (length=4096, name="DataBlockSGL", pvalue=0, ptype=0))]
    fn new(
        length: usize,
        name: &str,
        pvalue: u64,
        ptype: u32,
    ) -> PyResult<PyClassInitializer<Self>> {
        Ok(PySgl::init(SglKind::DataBlock, length, name, pvalue, ptype)?.add_subclass(Self))
    }
}

/// A bit bucket: `BitBucketSGL(length, name="BitBucketSGL")`, `size` bytes of a read that are
/// discarded.
#[pyclass(module = "nvme._native", name = "BitBucketSGL", extends = PySgl)]
pub struct PyBitBucketSgl;

#[pymethods]
impl PyBitBucketSgl {
    #[new]
    #[pyo3(signature = (length=4096, name="BitBucketSGL"))]
    fn new(length: usize, name: &str) -> PyResult<PyClassInitializer<Self>> {
        Ok(PySgl::init(SglKind::BitBucket, length, name, 0, 0)?.add_subclass(Self))
    }
}

/// An SGL segment: `SegmentSGL(length, name="SegmentSGL")`, a list of length/16 descriptors.
/// `seg[i] = sgl` writes the descriptor of `sgl` (any SGL object; a SegmentSGL or
/// LastSegmentSGL as the last entry chains the next segment) and keeps it; `seg[i]` gives it back.
#[pyclass(module = "nvme._native", name = "SegmentSGL", extends = PySgl)]
pub struct PySegmentSgl;

#[pymethods]
impl PySegmentSgl {
    #[new]
    #[pyo3(signature = (length=4096, name="SegmentSGL"))]
    fn new(length: usize, name: &str) -> PyResult<PyClassInitializer<Self>> {
        Ok(PySgl::init(SglKind::Segment, length, name, 0, 0)?.add_subclass(Self))
    }

    fn __setitem__(slf: &Bound<'_, Self>, index: usize, value: &Bound<'_, PyAny>) -> PyResult<()> {
        PySgl::set_item(slf.as_super(), index, value)
    }

    fn __getitem__(slf: &Bound<'_, Self>, index: usize) -> PyResult<Option<PyObject>> {
        slf.as_super().borrow().get_item(slf.py(), index)
    }
}

/// The last SGL segment: `LastSegmentSGL(length, name="LastSegmentSGL")`, like `SegmentSGL`
/// but its descriptor says no segment follows.
#[pyclass(module = "nvme._native", name = "LastSegmentSGL", extends = PySgl)]
pub struct PyLastSegmentSgl;

#[pymethods]
impl PyLastSegmentSgl {
    #[new]
    #[pyo3(signature = (length=4096, name="LastSegmentSGL"))]
    fn new(length: usize, name: &str) -> PyResult<PyClassInitializer<Self>> {
        Ok(PySgl::init(SglKind::LastSegment, length, name, 0, 0)?.add_subclass(Self))
    }

    fn __setitem__(slf: &Bound<'_, Self>, index: usize, value: &Bound<'_, PyAny>) -> PyResult<()> {
        PySgl::set_item(slf.as_super(), index, value)
    }

    fn __getitem__(slf: &Bound<'_, Self>, index: usize) -> PyResult<Option<PyObject>> {
        slf.as_super().borrow().get_item(slf.py(), index)
    }
}

// ---- SQE ---------------------------------------------------------------------------------------

/// A submission queue entry: `SQE(*dwords)`, 16 dwords (missing ones are 0), list-like.
///
/// `sqe[i]` reads and writes dword i; the fields have the spec's names. `prp1`, `prp2` and `mptr`
/// take an int or a Buffer (its `phys_addr`; the SQE then keeps the Buffer), `sgl` an SGL object
/// (its descriptor goes into the data pointer and PSDT becomes 1).
#[pyclass(module = "nvme._native", name = "SQE")]
pub struct PySqe {
    pub(crate) sqe: Sqe,
    keep: Vec<PyObject>,
    sgl: Option<PyObject>,
}

impl PySqe {
    fn set_dword(&mut self, i: usize, v: u32) {
        let mut d = self.sqe.dwords();
        d[i] = v;
        self.sqe = Sqe::from_dwords(&d);
    }

    fn index(i: isize) -> PyResult<usize> {
        let j = if i < 0 { i + 16 } else { i };
        usize::try_from(j)
            .ok()
            .filter(|&j| j < 16)
            .ok_or_else(|| PyIndexError::new_err(format!("SQE index {i} out of range 0..16")))
    }

    /// The memory of the Buffers this SQE names.
    fn memory(&self, py: Python<'_>) -> Vec<DmaMemory> {
        let mut keep = Vec::new();
        for o in self.keep.iter().chain(self.sgl.iter()) {
            collect_memory(o.bind(py), &mut keep);
        }
        keep
    }
}

impl PySqe {
    /// The bus address `v` (an int or a Buffer) gives field `name`; a Buffer is kept alive with
    /// the command, since the device will use its memory.
    fn pointer(&mut self, name: &'static str, v: &Bound<'_, PyAny>) -> PyResult<u64> {
        let mut keep = Vec::new();
        let addr = address(name, v, &mut keep)?;
        self.keep.push(v.clone().unbind());
        Ok(addr)
    }
}

#[pymethods]
impl PySqe {
    #[new]
    #[pyo3(signature = (*dwords))]
    fn new(dwords: Vec<u32>) -> PyResult<Self> {
        if dwords.len() > 16 {
            return Err(bad_arg(
                "dwords",
                format!("{} dwords: an SQE has 16", dwords.len()),
            ));
        }
        let mut d = [0u32; 16];
        d[..dwords.len()].copy_from_slice(&dwords);
        Ok(PySqe {
            sqe: Sqe::from_dwords(&d),
            keep: Vec::new(),
            sgl: None,
        })
    }

    fn __len__(&self) -> usize {
        16
    }

    fn __getitem__(&self, i: isize) -> PyResult<u32> {
        Ok(self.sqe.dwords()[Self::index(i)?])
    }

    fn __setitem__(&mut self, i: isize, v: u32) -> PyResult<()> {
        let i = Self::index(i)?;
        self.set_dword(i, v);
        Ok(())
    }

    fn __iter__(&self, py: Python<'_>) -> PyResult<PyObject> {
        Ok(PyList::new(py, self.sqe.dwords())?
            .as_any()
            .try_iter()?
            .into_any()
            .unbind())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        if let Ok(o) = other.downcast::<PySqe>() {
            return o.borrow().sqe == self.sqe;
        }
        other
            .extract::<Vec<u32>>()
            .is_ok_and(|v| v.as_slice() == self.sqe.dwords().as_slice())
    }

    fn __repr__(&self) -> String {
        let d = self.sqe.dwords();
        d.chunks(4)
            .map(|c| {
                format!(
                    "0x{:08x}, 0x{:08x}, 0x{:08x}, 0x{:08x}",
                    c[0], c[1], c[2], c[3]
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Opcode (bits 7:0 of dword 0).
    #[getter]
    fn get_opc(&self) -> u8 {
        self.sqe.opc()
    }

    #[setter]
    fn set_opc(&mut self, opc: u8) {
        self.sqe.cdw0 = (self.sqe.cdw0 & !0xff) | opc as u32;
    }

    /// Opcode, the same as `opc`.
    #[getter]
    fn get_opcode(&self) -> u8 {
        self.sqe.opc()
    }

    #[setter]
    fn set_opcode(&mut self, opc: u8) {
        self.set_opc(opc)
    }

    /// Command identifier (bits 31:16 of dword 0).
    #[getter]
    fn get_cid(&self) -> u16 {
        self.sqe.cid()
    }

    #[setter]
    fn set_cid(&mut self, cid: u16) {
        self.sqe.set_cid(cid)
    }

    /// Namespace identifier (dword 1).
    #[getter]
    fn get_nsid(&self) -> u32 {
        self.sqe.nsid
    }

    #[setter]
    fn set_nsid(&mut self, nsid: u32) {
        self.sqe.nsid = nsid
    }

    /// PRP entry 1 (dwords 7:6): set from an int or a Buffer.
    #[getter]
    fn get_prp1(&self) -> u64 {
        self.sqe.prp1
    }

    #[setter]
    fn set_prp1(&mut self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        self.sqe.prp1 = self.pointer("prp1", v)?;
        Ok(())
    }

    /// PRP entry 2 or a PRP list address (dwords 9:8): set from an int or a Buffer/PRPList.
    #[getter]
    fn get_prp2(&self) -> u64 {
        self.sqe.prp2
    }

    #[setter]
    fn set_prp2(&mut self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        self.sqe.prp2 = self.pointer("prp2", v)?;
        Ok(())
    }

    /// Metadata pointer (dwords 5:4): set from an int or a Buffer.
    #[getter]
    fn get_mptr(&self) -> u64 {
        self.sqe.mptr
    }

    #[setter]
    fn set_mptr(&mut self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        self.sqe.mptr = self.pointer("mptr", v)?;
        Ok(())
    }

    /// The SGL object in the data pointer (None if none was set); setting one writes its
    /// descriptor into dwords 9:6 and PSDT = 1.
    #[getter]
    fn get_sgl(&self, py: Python<'_>) -> Option<PyObject> {
        self.sgl.as_ref().map(|o| o.clone_ref(py))
    }

    #[setter]
    fn set_sgl(&mut self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        DataPointer::Sgl(descriptor(v)?).apply(&mut self.sqe);
        self.sgl = Some(v.clone().unbind());
        Ok(())
    }

    /// Starting LBA (dwords 11:10).
    #[getter]
    fn get_slba(&self) -> u64 {
        self.sqe.slba()
    }

    #[setter]
    fn set_slba(&mut self, lba: u64) {
        self.sqe.set_slba(lba)
    }

    /// Number of logical blocks, 1-based (bits 15:0 of dword 12 hold it 0-based).
    #[getter]
    fn get_nlb(&self) -> u32 {
        (self.sqe.cdw12 & 0xffff) + 1
    }

    #[setter]
    fn set_nlb(&mut self, nlb: u32) -> PyResult<()> {
        if !(1..=65536).contains(&nlb) {
            return Err(bad_arg("nlb", format!("{nlb} is not 1..=65536")));
        }
        self.sqe.cdw12 = (self.sqe.cdw12 & !0xffff) | (nlb - 1);
        Ok(())
    }
}

// ---- IOCQ --------------------------------------------------------------------------------------

/// An IO completion queue in memory the script gives:
/// `IOCQ(ctrlr, qid, qsize, prp1, iv=0, ien=False, pc=True)`.
///
/// Creating it sends Create I/O Completion Queue (a failing status is a warning, and the object
/// then only exists on the host). `cq[i]` reads entry i (a `CQE`), `head = n` writes the head
/// doorbell, `wait_pbit` and `waitdone` wait for completions.
#[pyclass(module = "nvme._native", name = "IOCQ")]
pub struct PyIocq {
    pub(crate) cq: Arc<IoCq<Ctx>>,
    prp1: PyObject,
}

#[pymethods]
impl PyIocq {
    #[new]
    #[pyo3(signature = (ctrlr, qid, qsize, prp1, iv=0, ien=false, pc=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        ctrlr: &Bound<'_, PyController>,
        qid: u32,
        qsize: u32,
        prp1: &Bound<'_, PyAny>,
        iv: u32,
        ien: bool,
        pc: bool,
    ) -> PyResult<Self> {
        let ctrl: Arc<Ctrl> = ctrlr.borrow().ctrl.clone();
        let qid = qid_arg("qid", qid)?;
        let iv = u16::try_from(iv)
            .map_err(|_| bad_arg("iv", format!("{iv} is not an interrupt vector 0..=65535")))?;
        let mem = queue_memory(prp1)?;
        let (cq, cqe) = py
            .allow_threads(|| IoCq::create(&ctrl, qid, qsize, mem, pc, iv, ien))
            .py()?;
        warn_status(py, &cqe)?;
        Ok(PyIocq {
            cq,
            prp1: prp1.clone().unbind(),
        })
    }

    fn __repr__(&self) -> String {
        format!("<iocq: {}>", self.cq.qid())
    }

    fn __len__(&self) -> usize {
        self.cq.qsize() as usize
    }

    fn __getitem__(&self, index: u32) -> PyResult<PyCqe> {
        Ok(PyCqe {
            cqe: self.cq.entry(index).py()?,
        })
    }

    /// Queue identifier.
    #[getter]
    fn id(&self) -> u16 {
        self.cq.qid()
    }

    /// Queue identifier, the same as `id`.
    #[getter]
    fn qid(&self) -> u16 {
        self.cq.qid()
    }

    /// Number of entries.
    #[getter]
    fn qsize(&self) -> u32 {
        self.cq.qsize()
    }

    /// The memory given as `prp1`.
    #[getter]
    fn prp1(&self, py: Python<'_>) -> PyObject {
        self.prp1.clone_ref(py)
    }

    /// The head doorbell value last written; writing it rings the CQ head doorbell with any
    /// value (one beyond the queue waits briefly for the asynchronous event it raises).
    #[getter]
    fn get_head(&self) -> u32 {
        self.cq.head()
    }

    #[setter]
    fn set_head(&self, py: Python<'_>, head: u32) -> PyResult<()> {
        let cq = self.cq.clone();
        let mut err = None;
        let r = py.allow_threads(|| cq.set_head(head, &mut |c| deliver(0, c, &mut err)));
        finish(r, err).map(|_| ())
    }

    /// The next entry `waitdone` reads (it wraps to 0 after the last entry).
    #[getter]
    fn rpointer(&self) -> u32 {
        self.cq.rpointer()
    }

    /// Waits until the phase tag of entry `index` is `expected`, up to `timeout` seconds;
    /// False if it did not change in time.
    #[pyo3(signature = (index, expected, timeout=10.0))]
    fn wait_pbit(&self, py: Python<'_>, index: u32, expected: u32, timeout: f64) -> PyResult<bool> {
        let t = secs("timeout", timeout)?;
        if expected > 1 {
            return Err(bad_arg(
                "expected",
                format!("{expected} is not a phase tag 0 or 1"),
            ));
        }
        let cq = self.cq.clone();
        py.allow_threads(|| cq.wait_pbit(index, expected == 1, t))
            .py()
    }

    /// Waits for `expected` completions from `rpointer` on (advancing it), up to `timeout`
    /// seconds; calls the `cb` given to the IOSQ command and warns on an error status. The
    /// head doorbell is the script's to write (`cq.head = cq.rpointer`). Raises TimeoutError.
    #[pyo3(signature = (expected=1, timeout=10.0))]
    fn waitdone(&self, py: Python<'_>, expected: usize, timeout: f64) -> PyResult<()> {
        let t = secs("timeout", timeout)?;
        let cq = self.cq.clone();
        let r = py.allow_threads(|| cq.waitdone(expected, t)).py()?;
        let mut err = None;
        let got = r.completions.len();
        for c in r.completions {
            let c = nvme_driver::Completion {
                cqe: c.cqe,
                sqe: c.sqe,
                ctx: c.ctx.flatten(),
                data: None,
                latency_us: 0,
                timed_out: false,
            };
            if deliver(self.cq.qid(), c, &mut err).is_err() {
                break;
            }
        }
        if let Some(e) = err {
            return Err(e);
        }
        if r.timed_out {
            return Err(crate::errors::to_py(nvme_driver::DriverError::Timeout {
                what: format!("IOCQ {}: {got} of {expected} completions", self.cq.qid()),
                waited: std::time::Duration::from_secs_f64(timeout.max(0.0)),
            }));
        }
        Ok(())
    }

    /// Sends Delete I/O Completion Queue for this queue (or for `qid`); a failing status is a
    /// warning.
    #[pyo3(signature = (qid=None))]
    fn delete(&self, py: Python<'_>, qid: Option<u32>) -> PyResult<()> {
        let qid = qid.map(|q| qid_arg("qid", q)).transpose()?;
        let cq = self.cq.clone();
        let cqe = py.allow_threads(|| cq.delete(qid)).py()?;
        warn_status(py, &cqe)
    }
}

// ---- IOSQ --------------------------------------------------------------------------------------

/// An IO submission queue in memory the script gives:
/// `IOSQ(ctrlr, qid, qsize, prp1, cqid=None, pc=True, qprio=0, nvmsetid=0, cq=None)`.
///
/// Creating it sends Create I/O Submission Queue for CQ `cq.id` (or `cqid`, or `qid`); a failing
/// status is a warning. `sq[i] = sqe` writes an SQE (or 16 ints) into slot i, `tail = n` writes
/// the tail doorbell. `read`, `write`, `flush` and `send_cmd` fill the slot at `wpointer` and
/// advance it; ringing the doorbell stays the script's (`sq.tail = sq.wpointer`).
#[pyclass(module = "nvme._native", name = "IOSQ")]
pub struct PyIosq {
    sq: Arc<IoSq<Ctx>>,
    prp1: PyObject,
    cq: Option<Py<PyIocq>>,
}

/// The data pointer and the memory it names, from the metamode command arguments.
fn dptr_args(
    prp1: Option<&Bound<'_, PyAny>>,
    prp2: Option<&Bound<'_, PyAny>>,
    sgl: Option<&Bound<'_, PyAny>>,
    keep: &mut Vec<DmaMemory>,
) -> PyResult<DataPointer> {
    if let Some(s) = sgl {
        if prp1.is_some() || prp2.is_some() {
            return Err(bad_arg("sgl", "give either sgl or prp1/prp2, not both"));
        }
        collect_memory(s, keep);
        return Ok(DataPointer::Sgl(descriptor(s)?));
    }
    let prp1 = prp1.map(|v| address("prp1", v, keep)).transpose()?;
    let prp2 = prp2.map(|v| address("prp2", v, keep)).transpose()?;
    Ok(DataPointer::Prp {
        prp1: prp1.unwrap_or(0),
        prp2: prp2.unwrap_or(0),
    })
}

impl PyIosq {
    fn fill(&self, sqe: Sqe, keep: Vec<DmaMemory>, cb: Option<PyObject>) -> PyResult<()> {
        self.sq.fill(&sqe, keep, cb.map(Arc::new)).py()?;
        Ok(())
    }
}

#[pymethods]
impl PyIosq {
    #[new]
    #[pyo3(signature = (ctrlr, qid, qsize, prp1, cqid=None, pc=true, qprio=0, nvmsetid=0, cq=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        ctrlr: &Bound<'_, PyController>,
        qid: u32,
        qsize: u32,
        prp1: &Bound<'_, PyAny>,
        cqid: Option<u32>,
        pc: bool,
        qprio: u8,
        nvmsetid: u16,
        cq: Option<&Bound<'_, PyIocq>>,
    ) -> PyResult<Self> {
        let ctrl: Arc<Ctrl> = ctrlr.borrow().ctrl.clone();
        let qid = qid_arg("qid", qid)?;
        let cq_obj = cq.map(|c| c.borrow().cq.clone());
        let cqid = match (cqid, &cq_obj) {
            (Some(c), _) => qid_arg("cqid", c)?,
            (None, Some(c)) => c.qid(),
            (None, None) => qid,
        };
        let mem = queue_memory(prp1)?;
        let cfg = SqConfig {
            qid,
            qsize,
            cqid,
            pc,
            qprio,
            nvmsetid,
        };
        let (sq, cqe) = py
            .allow_threads(|| IoSq::create(&ctrl, cfg, mem, cq_obj))
            .py()?;
        warn_status(py, &cqe)?;
        Ok(PyIosq {
            sq,
            prp1: prp1.clone().unbind(),
            cq: cq.map(|c| c.clone().unbind()),
        })
    }

    fn __repr__(&self) -> String {
        format!("<iosq: {}>", self.sq.qid())
    }

    fn __len__(&self) -> usize {
        self.sq.qsize() as usize
    }

    fn __getitem__(&self, index: u32) -> PyResult<PySqe> {
        Ok(PySqe {
            sqe: self.sq.entry(index).py()?,
            keep: Vec::new(),
            sgl: None,
        })
    }

    fn __setitem__(&self, py: Python<'_>, index: u32, sqe: &Bound<'_, PyAny>) -> PyResult<()> {
        let (s, keep) = if let Ok(o) = sqe.downcast::<PySqe>() {
            let o = o.borrow();
            (o.sqe, o.memory(py))
        } else {
            let d: Vec<u32> = sqe
                .extract()
                .map_err(|_| PyTypeError::new_err("an SQE, or a sequence of 16 dwords"))?;
            let d: [u32; 16] = d.try_into().map_err(|v: Vec<u32>| {
                bad_arg("sqe", format!("{} dwords: an SQE has 16", v.len()))
            })?;
            (Sqe::from_dwords(&d), Vec::new())
        };
        self.sq.set_entry(index, &s, keep).py()
    }

    /// Queue identifier.
    #[getter]
    fn id(&self) -> u16 {
        self.sq.qid()
    }

    /// Queue identifier, the same as `id`.
    #[getter]
    fn qid(&self) -> u16 {
        self.sq.qid()
    }

    /// Number of entries.
    #[getter]
    fn qsize(&self) -> u32 {
        self.sq.qsize()
    }

    /// The id of the CQ this SQ posts to.
    #[getter]
    fn cqid(&self) -> u16 {
        self.sq.cqid()
    }

    /// The IOCQ given at creation, or None.
    #[getter]
    fn cq(&self, py: Python<'_>) -> Option<Py<PyIocq>> {
        self.cq.as_ref().map(|c| c.clone_ref(py))
    }

    /// The memory given as `prp1`.
    #[getter]
    fn prp1(&self, py: Python<'_>) -> PyObject {
        self.prp1.clone_ref(py)
    }

    /// The tail doorbell value last written; writing it rings the SQ tail doorbell with any
    /// value (one beyond the queue waits briefly for the asynchronous event it raises, so the
    /// warning "AER notification is triggered: 0x10100" comes from the write).
    #[getter]
    fn get_tail(&self) -> u32 {
        self.sq.tail()
    }

    #[setter]
    fn set_tail(&self, py: Python<'_>, tail: u32) -> PyResult<()> {
        let sq = self.sq.clone();
        let mut err = None;
        let r = py.allow_threads(|| sq.set_tail(tail, &mut |c| deliver(0, c, &mut err)));
        finish(r, err).map(|_| ())
    }

    /// This SQ's command log, newest first: the commands its tail doorbells handed the device,
    /// each with its completion once `cq.waitdone()` reaped it (PyNVMe3's `IOSQ.cmdlog`).
    #[pyo3(signature = (count=1000, offset=0))]
    fn cmdlog(&self, py: Python<'_>, count: usize, offset: usize) -> PyResult<Vec<String>> {
        crate::controller::format_entries(py, self.sq.cmdlog(count, offset))
    }

    /// The slot the metamode commands fill next.
    #[getter]
    fn get_wpointer(&self) -> u32 {
        self.sq.wpointer()
    }

    #[setter]
    fn set_wpointer(&self, value: u32) -> PyResult<()> {
        self.sq.set_wpointer(value).py()
    }

    /// Metamode Read: fills the next slot with a read of `lba_count` blocks (1-based) at `lba`
    /// with the script's `cid`, data pointer (`prp1`/`prp2`: int or Buffer; or `sgl`) and
    /// `mptr`. `cb` is called by the IOCQ's `waitdone`.
    #[pyo3(signature = (cid, nsid, lba, lba_count=1, mptr=None, prp1=None, prp2=None, sgl=None, cb=None))]
    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        cid: u16,
        nsid: u32,
        lba: u64,
        lba_count: u32,
        mptr: Option<&Bound<'_, PyAny>>,
        prp1: Option<&Bound<'_, PyAny>>,
        prp2: Option<&Bound<'_, PyAny>>,
        sgl: Option<&Bound<'_, PyAny>>,
        cb: Option<PyObject>,
    ) -> PyResult<()> {
        let mut keep = Vec::new();
        let dptr = dptr_args(prp1, prp2, sgl, &mut keep)?;
        let mptr = mptr.map(|m| address("mptr", m, &mut keep)).transpose()?;
        let sqe =
            metamode::rw_command(false, cid, nsid, lba, lba_count, dptr, mptr.unwrap_or(0)).py()?;
        self.fill(sqe, keep, cb)
    }

    /// Metamode Write: as `read`.
    #[pyo3(signature = (cid, nsid, lba, lba_count=1, mptr=None, prp1=None, prp2=None, sgl=None, cb=None))]
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        cid: u16,
        nsid: u32,
        lba: u64,
        lba_count: u32,
        mptr: Option<&Bound<'_, PyAny>>,
        prp1: Option<&Bound<'_, PyAny>>,
        prp2: Option<&Bound<'_, PyAny>>,
        sgl: Option<&Bound<'_, PyAny>>,
        cb: Option<PyObject>,
    ) -> PyResult<()> {
        let mut keep = Vec::new();
        let dptr = dptr_args(prp1, prp2, sgl, &mut keep)?;
        let mptr = mptr.map(|m| address("mptr", m, &mut keep)).transpose()?;
        let sqe =
            metamode::rw_command(true, cid, nsid, lba, lba_count, dptr, mptr.unwrap_or(0)).py()?;
        self.fill(sqe, keep, cb)
    }

    /// Metamode Flush: fills the next slot.
    #[pyo3(signature = (cid, nsid, cb=None))]
    fn flush(&self, cid: u16, nsid: u32, cb: Option<PyObject>) -> PyResult<()> {
        let sqe = metamode::io_command(
            nvme_spec::cmd::nvm::FLUSH,
            cid,
            nsid,
            DataPointer::Prp { prp1: 0, prp2: 0 },
            0,
        );
        self.fill(sqe, Vec::new(), cb)
    }

    /// Metamode generic command: fills the next slot with `opcode` (bits 7:0; dword 0 gets the
    /// `cid` and `psdt`, which is 1 when `sgl` is given and `psdt` is 0) and the given dwords.
    #[pyo3(signature = (opcode, cid, nsid, mptr=None, prp1=None, prp2=None, sgl=None, psdt=0, cdw10=0, cdw11=0, cdw12=0, cdw13=0, cdw14=0, cdw15=0, cdw02=0, cdw03=0, cb=None))]
    #[allow(clippy::too_many_arguments)]
    fn send_cmd(
        &self,
        opcode: u8,
        cid: u16,
        nsid: u32,
        mptr: Option<&Bound<'_, PyAny>>,
        prp1: Option<&Bound<'_, PyAny>>,
        prp2: Option<&Bound<'_, PyAny>>,
        sgl: Option<&Bound<'_, PyAny>>,
        psdt: u8,
        cdw10: u32,
        cdw11: u32,
        cdw12: u32,
        cdw13: u32,
        cdw14: u32,
        cdw15: u32,
        cdw02: u32,
        cdw03: u32,
        cb: Option<PyObject>,
    ) -> PyResult<()> {
        if psdt > 3 {
            return Err(bad_arg("psdt", format!("{psdt} is not 0..=3")));
        }
        let mut keep = Vec::new();
        let dptr = dptr_args(prp1, prp2, sgl, &mut keep)?;
        let mptr = mptr.map(|m| address("mptr", m, &mut keep)).transpose()?;
        let mut sqe = metamode::io_command(opcode, cid, nsid, dptr, mptr.unwrap_or(0));
        if psdt != 0 {
            sqe.set_psdt(psdt);
        }
        (sqe.cdw2, sqe.cdw3) = (cdw02, cdw03);
        (sqe.cdw10, sqe.cdw11, sqe.cdw12) = (cdw10, cdw11, cdw12);
        (sqe.cdw13, sqe.cdw14, sqe.cdw15) = (cdw13, cdw14, cdw15);
        self.fill(sqe, keep, cb)
    }

    /// Sends Delete I/O Submission Queue for this queue (or for `qid`); a failing status is a
    /// warning.
    #[pyo3(signature = (qid=None))]
    fn delete(&self, py: Python<'_>, qid: Option<u32>) -> PyResult<()> {
        let qid = qid.map(|q| qid_arg("qid", q)).transpose()?;
        let sq = self.sq.clone();
        let cqe = py.allow_threads(|| sq.delete(qid)).py()?;
        warn_status(py, &cqe)
    }
}

/// Registers the metamode classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPrp>()?;
    m.add_class::<PyPrpList>()?;
    m.add_class::<PySgl>()?;
    m.add_class::<PyDataBlockSgl>()?;
    m.add_class::<PyBitBucketSgl>()?;
    m.add_class::<PySegmentSgl>()?;
    m.add_class::<PyLastSegmentSgl>()?;
    m.add_class::<PySqe>()?;
    m.add_class::<PyIocq>()?;
    m.add_class::<PyIosq>()?;
    Ok(())
}
