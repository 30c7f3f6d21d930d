//! `_IOWorker`: the native half of `Namespace.ioworker()`. The Python class `nvme.IOWorker`
//! turns pynvme's parameters into a [`WorkerConfig`]; this holds the running worker.

use crate::errors::{bad_arg, IntoPy};
use crate::namespace::PyNamespace;
use nvme_driver::ioworker::{
    IoSize, IoWorker, SequenceEntry, StartGate, WorkerConfig, WorkerMonitor, WorkerResult,
};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::time::{Duration, UNIX_EPOCH};

/// A worker: `_IOWorker(namespace, io_sizes=[(nlb, align, weight)], ops=[(opcode, percent)],
/// ...)`, created not started. Use `nvme.Namespace.ioworker()`, which checks pynvme's
/// parameters and fills in these.
#[pyclass(module = "nvme._native", name = "_IOWorker", frozen)]
pub struct PyIoWorker {
    ns: Py<PyNamespace>,
    cfg: WorkerConfig,
    /// The running worker until `join` takes it.
    worker: Mutex<Option<IoWorker>>,
    /// Its counters, readable during and after `join`.
    monitor: Mutex<Option<(WorkerMonitor, u16)>>,
}

#[pymethods]
impl PyIoWorker {
    #[new]
    #[pyo3(signature = (
        namespace, io_sizes, ops, lba_random=100, lba_start=0, lba_step=None, sgl_percentage=0,
        qdepth=63, qprio=0, region_start=0, region_end=u64::MAX, iops=0, io_count=0, lba_count=0,
        time=None, io_flags=0, distribution=None, ptype=0xbeef, pvalue=100, io_sequence=None,
        slow_latency_us=1_000_000, exit_on_error=true, cpu_id=None, seed=0, per_second=false,
        latency_distribution=false, latency_opcode=None, cmdlog=0, cmdlog_error_only=false,
        one_pass=false, fw_debug=false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        namespace: Py<PyNamespace>,
        io_sizes: Vec<(u32, u32, u32)>,
        ops: Vec<(u8, u32)>,
        lba_random: u32,
        lba_start: u64,
        lba_step: Option<i64>,
        sgl_percentage: u32,
        qdepth: u32,
        qprio: u8,
        region_start: u64,
        region_end: u64,
        iops: u64,
        io_count: u64,
        lba_count: u64,
        time: Option<f64>,
        io_flags: u32,
        distribution: Option<Vec<u32>>,
        ptype: u32,
        pvalue: u64,
        io_sequence: Option<Vec<(u64, u32, u8, u64)>>,
        slow_latency_us: u64,
        exit_on_error: bool,
        cpu_id: Option<usize>,
        seed: u64,
        per_second: bool,
        latency_distribution: bool,
        latency_opcode: Option<u8>,
        cmdlog: usize,
        cmdlog_error_only: bool,
        one_pass: bool,
        fw_debug: bool,
    ) -> PyResult<Self> {
        let qdepth = u16::try_from(qdepth)
            .map_err(|_| bad_arg("qdepth", format!("{qdepth} is not 1..=65535")))?;
        let io_flags = u16::try_from(io_flags).map_err(|_| {
            bad_arg(
                "io_flags",
                format!("{io_flags:#x} is not the 16 upper bits of cdw12 (0..=0xffff)"),
            )
        })?;
        let time = match time {
            Some(t) if !(t.is_finite() && t >= 0.0) => {
                return Err(bad_arg("time", format!("{t} is not a number of seconds")))
            }
            Some(t) if t > 0.0 => Some(Duration::from_secs_f64(t)),
            _ => None,
        };
        let cfg = WorkerConfig {
            io_sizes: io_sizes
                .into_iter()
                .map(|(nlb, align, weight)| IoSize { nlb, align, weight })
                .collect(),
            lba_random,
            lba_start,
            lba_step,
            ops,
            sgl_percentage,
            qdepth,
            qprio,
            region_start,
            region_end,
            iops,
            io_count,
            lba_count,
            time,
            io_flags,
            distribution,
            ptype,
            pvalue,
            io_sequence: io_sequence.map(|s| {
                s.into_iter()
                    .map(|(slba, nlb, opcode, time_us)| SequenceEntry {
                        slba,
                        nlb,
                        opcode,
                        time_us,
                    })
                    .collect()
            }),
            slow_latency_us,
            exit_on_error,
            cpu_id,
            seed,
            per_second,
            latency_distribution,
            latency_opcode,
            cmdlog,
            cmdlog_error_only,
            one_pass,
            fw_debug,
        };
        Ok(PyIoWorker {
            ns: namespace,
            cfg,
            worker: Mutex::new(None),
            monitor: Mutex::new(None),
        })
    }

    /// Creates the worker's queue pair and starts its thread; raises on a bad configuration or
    /// when the controller has no free IO queue. With `gate`, the first IO waits for
    /// `gate.open()`.
    #[pyo3(signature = (gate=None))]
    fn start(&self, py: Python<'_>, gate: Option<PyRef<'_, PyStartGate>>) -> PyResult<()> {
        if self.monitor.lock().is_some() {
            return Err(bad_arg("start", "the ioworker was already started"));
        }
        let ns = self.ns.borrow(py).ns.clone();
        let cfg = self.cfg.clone();
        let gate = gate.map(|g| g.gate.clone());
        let w = py
            .allow_threads(|| IoWorker::start_gated(&ns, cfg, gate))
            .py()?;
        *self.monitor.lock() = Some((w.monitor(), w.qid()));
        *self.worker.lock() = Some(w);
        Ok(())
    }

    /// Whether the worker thread is running.
    #[getter]
    fn running(&self) -> bool {
        self.monitor
            .lock()
            .as_ref()
            .is_some_and(|(m, _)| m.running())
    }

    /// The queue id of the worker's qpair (0 before start).
    #[getter]
    fn qid(&self) -> u16 {
        self.monitor.lock().as_ref().map_or(0, |(_, q)| *q)
    }

    /// Asks the worker to stop sending; `join()` then returns once its IO completed.
    fn stop(&self) {
        if let Some(w) = self.worker.lock().as_ref() {
            w.stop();
        }
    }

    /// The running worker's cumulative counters: reads, writes, others, bytes, latency_sum_ns,
    /// latency_max_ns, aborted, outstanding, elapsed (s).
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let s = self
            .monitor
            .lock()
            .as_ref()
            .map(|(m, _)| m.snapshot())
            .unwrap_or_default();
        d.set_item("reads", s.reads)?;
        d.set_item("writes", s.writes)?;
        d.set_item("others", s.others)?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("latency_sum_ns", s.latency_sum_ns)?;
        d.set_item("latency_max_ns", s.latency_max_ns)?;
        d.set_item("aborted", s.aborted)?;
        d.set_item("outstanding", s.outstanding)?;
        d.set_item("elapsed", s.elapsed.as_secs_f64())?;
        Ok(d)
    }

    /// Waits for the worker to end (the GIL released) and returns its result as a dict, with
    /// the latency at each of `percentiles` (µs).
    #[pyo3(signature = (percentiles=Vec::new()))]
    fn join<'py>(&self, py: Python<'py>, percentiles: Vec<f64>) -> PyResult<Bound<'py, PyDict>> {
        let Some(w) = self.worker.lock().take() else {
            return Err(bad_arg("close", "the ioworker was not started"));
        };
        let r = py.allow_threads(|| w.join()).py()?;
        result_dict(py, &r, &percentiles)
    }
}

/// Holds workers started with it until `open()`, so they send their first IO together.
#[pyclass(module = "nvme._native", name = "_StartGate", frozen)]
pub struct PyStartGate {
    gate: StartGate,
}

#[pymethods]
impl PyStartGate {
    #[new]
    fn new() -> Self {
        PyStartGate {
            gate: StartGate::new(),
        }
    }

    /// Lets the workers go.
    fn open(&self) {
        self.gate.open()
    }
}

fn result_dict<'py>(
    py: Python<'py>,
    r: &WorkerResult,
    percentiles: &[f64],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("io_count_read", r.io_count_read)?;
    d.set_item("io_count_nonread", r.io_count_nonread)?;
    d.set_item("io_count_write", r.io_count_write)?;
    d.set_item("lba_count_read", r.lba_count_read)?;
    d.set_item("lba_count_nonread", r.lba_count_nonread)?;
    d.set_item("lba_count_write", r.lba_count_write)?;
    d.set_item("io_count_aborted", r.io_count_aborted)?;
    d.set_item("op_counts", r.op_counts.clone())?;
    d.set_item("mseconds", r.mseconds)?;
    d.set_item("latency_max_us", r.latency_max_us)?;
    d.set_item("latency_average_us", r.latency_average_us)?;
    d.set_item("error", r.error)?;
    d.set_item(
        "error_cmd",
        r.error_cmd
            .map_or_else(|| vec![0u32; 16], |s| s.dwords().to_vec()),
    )?;
    d.set_item(
        "error_cpl",
        r.error_cpl
            .map_or_else(|| vec![0u32; 4], |c| c.dwords().to_vec()),
    )?;
    d.set_item("error_count", r.error_count)?;
    d.set_item("host_error", r.host_error.map_or(0, |e| e.code()))?;
    d.set_item("host_error_text", r.host_error.map(|e| e.text()))?;
    d.set_item("slow_count", r.slow_count)?;
    d.set_item(
        "slow_ios",
        r.slow_ios.iter().map(record_tuple).collect::<Vec<_>>(),
    )?;
    d.set_item("cpu_usage", r.cpu_usage)?;
    let start = r.test_start.duration_since(UNIX_EPOCH).unwrap_or_default();
    d.set_item("test_start_sec", start.as_secs())?;
    d.set_item("test_start_nsec", start.subsec_nanos())?;
    d.set_item("latency_distribution", r.latency_distribution.clone())?;
    d.set_item("io_per_second", r.io_per_second.clone())?;
    d.set_item("bytes_per_second", r.bytes_per_second.clone())?;
    d.set_item(
        "cmdlog",
        r.cmdlog.iter().map(record_tuple).collect::<Vec<_>>(),
    )?;
    d.set_item("miscompares", r.miscompares.clone())?;
    d.set_item("anomalies", r.anomalies.clone())?;
    d.set_item("notes", r.notes.clone())?;
    d.set_item("qid", r.qid)?;
    d.set_item("latency_count", r.histogram.len())?;
    let table = |at: &dyn Fn(f64) -> Option<f64>| -> PyResult<Bound<'py, PyDict>> {
        let t = PyDict::new(py);
        for &p in percentiles {
            t.set_item(p, at(p))?;
        }
        Ok(t)
    };
    d.set_item("latency_percentiles", table(&|p| Some(r.percentile_us(p)))?)?;
    for (key, op, h) in [
        ("read", nvme_spec::cmd::nvm::READ, &r.read_histogram),
        ("write", nvme_spec::cmd::nvm::WRITE, &r.write_histogram),
    ] {
        if !h.is_empty() {
            d.set_item(
                format!("latency_percentiles_{key}"),
                table(&|p| r.direction_percentile_us(op, p))?,
            )?;
            d.set_item(format!("latency_max_{key}_us"), h.max() / 1000)?;
        }
    }
    if let Some(h) = &r.intended_histogram {
        d.set_item(
            "latency_percentiles_intended",
            table(&|p| r.intended_percentile_us(p))?,
        )?;
        d.set_item("latency_max_intended_us", h.max() / 1000)?;
    }
    Ok(d)
}

/// (slba, nlb, opcode, time_sent_us, time_cplt_us, status), PyNVMe3's command list entry.
fn record_tuple(e: &nvme_driver::ioworker::IoRecord) -> (u64, u32, u8, u64, u64, u16) {
    (e.slba, e.nlb, e.opcode, e.sent_us, e.completed_us, e.status)
}
