//! Identify data objects with attributes named by the spec's abbreviations.

use nvme_spec::identify::{Field, FieldKind};
use pyo3::exceptions::PyAttributeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Identify data (controller or namespace): every field is an attribute named by the spec's
/// abbreviation (`id_ctrl.mdts`, `id_ctrl.sn`, `id_ns.nsze`, `id_ns.flbas` ...): integers,
/// strings for ASCII fields, bytes for the rest. `raw` is the whole 4096-byte page.
#[pyclass(module = "nvme._native", name = "IdentifyData", frozen)]
pub struct PyIdentify {
    what: &'static str,
    data: Vec<u8>,
    table: &'static [Field],
}

impl PyIdentify {
    /// Identify data of `what` ("controller" or "namespace") with its field table.
    pub fn new(what: &'static str, data: Vec<u8>, table: &'static [Field]) -> Self {
        PyIdentify { what, data, table }
    }
}

#[pymethods]
impl PyIdentify {
    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<PyObject> {
        let f = Field::find(self.table, name).ok_or_else(|| {
            PyAttributeError::new_err(format!("identify {} data has no field '{name}'", self.what))
        })?;
        Ok(match f.kind {
            FieldKind::Int => f
                .int(&self.data)
                .unwrap_or(0)
                .into_pyobject(py)?
                .into_any()
                .unbind(),
            FieldKind::Str => f
                .text(&self.data)
                .unwrap_or_default()
                .into_pyobject(py)?
                .into_any()
                .unbind(),
            FieldKind::Bytes => PyBytes::new(py, f.bytes(&self.data).unwrap_or(&[]))
                .into_any()
                .unbind(),
        })
    }

    fn __dir__(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.table.iter().map(|f| f.name).collect();
        v.push("raw");
        v
    }

    /// The whole identify page.
    #[getter]
    fn raw<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }

    fn __repr__(&self) -> String {
        format!("<identify {} data: {} fields>", self.what, self.table.len())
    }
}
