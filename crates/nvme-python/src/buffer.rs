//! `Buffer`: DMA memory for commands.

use crate::errors::{bad_arg, IntoPy};
use nvme_driver::Buffer;
use pyo3::exceptions::{PyIndexError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PySlice, PyString, PyType};

/// DMA memory that commands read from and write to.
///
/// `Buffer(length=4096, name="buffer", pvalue=0, ptype=0)`: `length` bytes, zeroed or filled
/// with a pattern: ptype 0 (pvalue 0: all zero, else all one bits), 32 (pvalue repeated as a
/// dword), 0xbeef (pvalue percent random bytes, the rest zero), 0x1234 / 0x4321 (16-bit words
/// increasing / decreasing from pvalue). pynvme's keyword `size=` is accepted for the length.
///
/// A command transfers `size` bytes from `offset` (both settable), so scripts can build unaligned
/// or short PRPs; `sgl = True` makes commands describe it with an SGL instead.
#[pyclass(module = "nvme._native", name = "Buffer", subclass)]
pub struct PyBuffer {
    pub(crate) inner: Buffer,
}

/// The field in bytes [begin, end] of `buf` as `type` wants it: int (default), str or bytes.
pub fn field(
    py: Python<'_>,
    buf: &Buffer,
    byte_end: usize,
    byte_begin: Option<usize>,
    r#type: Option<&Bound<'_, PyType>>,
) -> PyResult<PyObject> {
    match r#type {
        Some(t) if t.is(py.get_type::<PyString>()) => Ok(buf
            .data_str(byte_end, byte_begin)
            .py()?
            .into_pyobject(py)?
            .into_any()
            .unbind()),
        Some(t) if t.is(py.get_type::<PyBytes>()) => {
            let b = byte_begin.unwrap_or(byte_end);
            let mut v = vec![0u8; byte_end.saturating_sub(b) + 1];
            buf.read(b, &mut v).py()?;
            Ok(PyBytes::new(py, &v).into_any().unbind())
        }
        Some(t) if !t.is(py.get_type::<pyo3::types::PyInt>()) => {
            Err(bad_arg("type", "int, str or bytes"))
        }
        _ => Ok(buf
            .data_int(byte_end, byte_begin)
            .py()?
            .into_pyobject(py)?
            .into_any()
            .unbind()),
    }
}

#[pymethods]
impl PyBuffer {
    #[new]
    #[pyo3(signature = (length=4096, name="buffer", pvalue=0, ptype=0, offset=0, size=None))]
    fn new(
        length: usize,
        name: &str,
        pvalue: u64,
        ptype: u32,
        offset: usize,
        size: Option<usize>,
    ) -> PyResult<Self> {
        let length = size.unwrap_or(length);
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
        let mut inner = Buffer::new(mem, length, name, pvalue, ptype).py()?;
        if offset != 0 {
            inner.set_offset(offset).py()?;
        }
        Ok(PyBuffer { inner })
    }

    fn __len__(&self) -> usize {
        self.inner.length()
    }

    fn __repr__(&self) -> String {
        format!("<buffer name: {}>", self.inner.name)
    }

    fn __getitem__(&self, py: Python<'_>, index: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        if let Ok(s) = index.downcast::<PySlice>() {
            let ind = s.indices(self.inner.length() as isize)?;
            let all = self.inner.to_vec();
            let mut out = Vec::with_capacity(ind.slicelength);
            let mut i = ind.start;
            for _ in 0..ind.slicelength {
                out.push(all[i as usize]);
                i += ind.step;
            }
            return Ok(PyBytes::new(py, &out).into_any().unbind());
        }
        let i: isize = index
            .extract()
            .map_err(|_| PyTypeError::new_err("buffer indices must be integers or slices"))?;
        let i = if i < 0 {
            i + self.inner.length() as isize
        } else {
            i
        };
        let i =
            usize::try_from(i).map_err(|_| PyIndexError::new_err("buffer index out of range"))?;
        Ok(self
            .inner
            .get(i)
            .py()?
            .into_pyobject(py)?
            .into_any()
            .unbind())
    }

    fn __setitem__(&self, index: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        if let Ok(s) = index.downcast::<PySlice>() {
            let ind = s.indices(self.inner.length() as isize)?;
            let data: Vec<u8> = if let Ok(b) = value.extract::<Vec<u8>>() {
                b
            } else {
                value
                    .try_iter()?
                    .map(|v| v?.extract::<u8>())
                    .collect::<PyResult<_>>()?
            };
            // As pynvme: the data goes in from the slice's start.
            return self.inner.write(ind.start as usize, &data).py();
        }
        let i: isize = index
            .extract()
            .map_err(|_| PyTypeError::new_err("buffer indices must be integers or slices"))?;
        let i = if i < 0 {
            i + self.inner.length() as isize
        } else {
            i
        };
        let i =
            usize::try_from(i).map_err(|_| PyIndexError::new_err("buffer index out of range"))?;
        let v: u8 = value
            .extract()
            .map_err(|_| bad_arg("value", "a buffer byte is an int 0..=255"))?;
        self.inner.set(i, v).py()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .downcast::<PyBuffer>()
            .is_ok_and(|o| self.inner.same_data(&o.borrow().inner))
    }

    fn __ne__(&self, other: &Bound<'_, PyAny>) -> bool {
        !self.__eq__(other)
    }

    /// Length of the memory given at creation.
    #[getter]
    fn length(&self) -> usize {
        self.inner.length()
    }

    /// Bytes a command transfers (at most length - offset).
    #[getter]
    fn get_size(&self) -> usize {
        self.inner.size()
    }

    #[setter]
    fn set_size(&mut self, size: usize) -> PyResult<()> {
        self.inner.set_size(size).py()
    }

    /// Offset of the first byte a command transfers.
    #[getter]
    fn get_offset(&self) -> usize {
        self.inner.offset()
    }

    #[setter]
    fn set_offset(&mut self, offset: usize) -> PyResult<()> {
        self.inner.set_offset(offset).py()
    }

    /// Bus address of the first byte a command transfers (memory start + offset).
    #[getter]
    fn phys_addr(&self) -> u64 {
        self.inner.phys_addr()
    }

    /// The buffer's name, shown by dump().
    #[getter]
    fn get_name(&self) -> String {
        self.inner.name.clone()
    }

    #[setter]
    fn set_name(&mut self, name: String) {
        self.inner.name = name;
    }

    /// Whether commands describe this buffer with an SGL data block instead of PRPs.
    #[getter]
    fn get_sgl(&self) -> bool {
        self.inner.sgl
    }

    #[setter]
    fn set_sgl(&mut self, sgl: bool) {
        self.inner.sgl = sgl;
    }

    /// The field in bytes [byte_begin, byte_end] (inclusive; begin defaults to end): a
    /// little-endian int, or with `type=str` an ASCII string without trailing spaces, or with
    /// `type=bytes` the raw bytes.
    #[pyo3(signature = (byte_end, byte_begin=None, r#type=None), text_signature = "(self, byte_end, byte_begin=None, type=None)")]
    fn data(
        &self,
        py: Python<'_>,
        byte_end: usize,
        byte_begin: Option<usize>,
        r#type: Option<&Bound<'_, PyType>>,
    ) -> PyResult<PyObject> {
        field(py, &self.inner, byte_end, byte_begin, r#type)
    }

    /// A hexdump of the first `size` bytes (all by default), after a line with the name.
    #[pyo3(signature = (size=None))]
    fn dump(&self, size: Option<usize>) -> String {
        self.inner.dump(size)
    }

    /// Writes Dataset Management range `index`: attributes, LBA count, start LBA.
    #[pyo3(signature = (index, lba, lba_count, attr=0))]
    fn set_dsm_range(&self, index: usize, lba: u64, lba_count: u32, attr: u32) -> PyResult<()> {
        self.inner.set_dsm_range(index, lba, lba_count, attr).py()
    }

    /// Refills the buffer with a pattern (see the class help).
    #[pyo3(signature = (pvalue=0, ptype=0))]
    fn fill_pattern(&self, pvalue: u64, ptype: u32) -> PyResult<()> {
        self.inner.fill_pattern(pvalue, ptype).py()
    }
}
