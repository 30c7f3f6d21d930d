//! The IO generator (pynvme's and PyNVMe3's `ioworker`): one native thread and one IO queue pair
//! per worker, sending a workload described by a [`WorkerConfig`] and measuring it.
//!
//! **Path.** A worker submits through [`Qpair::submit`], the same path as `Namespace.read/write`:
//! LBA locks, stamps, verification and the command log are shared with the script and with every
//! other worker, so overlapping workers never see a false miscompare. A command whose LBAs are
//! held waits inside its queue and enters it when they are free; the worker keeps generating IO
//! for its other slots meanwhile. Each command carries its slot number as its context, so the
//! worker allocates nothing per IO: slots, buffers (a read and a write buffer per slot, filled
//! once), histograms and per-second series are allocated before the first IO.
//!
//! **LBAs.** Random LBAs are drawn uniformly over the whole region with a 64-bit generator, at any
//! capacity (pynvme's 31-bit `random()` never reached past LBA 2^31); the generator is seeded
//! from [`WorkerConfig::seed`], so a run is repeatable.
//!
//! **Time.** One monotonic nanosecond clock, read once per submission round and once per batch
//! of completions. Latency goes into a high-dynamic-range histogram (1 ns to 1 hour, 3
//! significant digits) from which percentiles are read; per-second counts are indexed by the
//! completion's second since the start, so a second without completions records 0 and does not
//! shift later seconds. Under `iops` throttling or `io_sequence` replay, latency is also measured
//! from the time each IO was *meant* to be sent (corrected for coordinated omission).
//!
//! **Lifecycle.** A controller reset, a power cycle or any event that tears the worker's queue
//! down completes its outstanding commands with 00/08 (aborted, SQ deletion); the worker counts
//! them in [`WorkerResult::io_count_aborted`], not as errors, waits while its queue is not usable
//! and continues once the controller re-created it, until its time runs out.

use crate::controller::Controller;
use crate::error::{DriverError, Result};
use crate::namespace::Namespace;
use crate::qpair::{Qpair, QpairConfig};
use crate::queue::{Completion, DataRef};
use crate::verify::{NsVerify, UNCORRECTABLE};
use hdrhistogram::Histogram;
use nvme_pci::DmaMemory;
use nvme_spec::cmd::nvm;
use nvme_spec::status::{sc, sct};
use nvme_spec::{Cqe, Sqe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Latency histograms cover 1 ns .. 1 hour.
const HIST_MAX_NS: u64 = 3_600_000_000_000;
/// Buckets of the µs latency distribution (pynvme's `latency_distribution`): 1 µs each, the
/// last one holds everything from 999,999 µs up.
pub const DISTRIBUTION_BUCKETS: usize = 1_000_000;
/// Longest run a worker accepts, seconds (pynvme's limit: 1000 hours).
pub const MAX_SECONDS: u64 = 1000 * 3600;

/// One IO size of the mix: `nlb` blocks, starting LBAs aligned to `align`, chosen with `weight`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoSize {
    /// Blocks per IO (1..=65536).
    pub nlb: u32,
    /// Alignment of the starting LBA in blocks (>= 1).
    pub align: u32,
    /// Relative weight of this size in the mix.
    pub weight: u32,
}

/// One IO of a replayed sequence: sent `time_us` after the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequenceEntry {
    /// Starting LBA.
    pub slba: u64,
    /// Number of blocks.
    pub nlb: u32,
    /// Opcode.
    pub opcode: u8,
    /// When to send it, µs after the worker's start.
    pub time_us: u64,
}

/// The workload of one worker. Field names follow the Python parameters of `ioworker()`.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// IO sizes with their alignment and weight.
    pub io_sizes: Vec<IoSize>,
    /// Percentage of IOs at random LBAs (the rest are sequential).
    pub lba_random: u32,
    /// First LBA of the sequential stream.
    pub lba_start: u64,
    /// Distance between consecutive sequential IOs (None: the IO's size); may be negative.
    pub lba_step: Option<i64>,
    /// Opcodes and their percentages (summing to 100).
    pub ops: Vec<(u8, u32)>,
    /// Percentage of data transfers described by an SGL instead of PRPs.
    pub sgl_percentage: u32,
    /// Commands kept outstanding (the queue has one entry more).
    pub qdepth: u16,
    /// SQ priority class (weighted round robin).
    pub qprio: u8,
    /// First LBA of the region.
    pub region_start: u64,
    /// End of the region (exclusive), at most NSZE.
    pub region_end: u64,
    /// IOs per second (0: as fast as possible).
    pub iops: u64,
    /// Stop after sending this many IOs (0: no limit).
    pub io_count: u64,
    /// Stop after sending this many blocks (0: no limit).
    pub lba_count: u64,
    /// Stop sending after this long (None: no limit).
    pub time: Option<Duration>,
    /// Upper 16 bits of cdw12 of every IO (FUA 0x4000, limited retry 0x8000).
    pub io_flags: u16,
    /// Share of random IOs in each 1 % slice of the region: 100 weights summing to 10,000.
    pub distribution: Option<Vec<u32>>,
    /// Pattern type of the write buffers (see [`crate::buffer::fill_pattern`]).
    pub ptype: u32,
    /// Pattern value of the write buffers.
    pub pvalue: u64,
    /// IOs to replay instead of a generated workload.
    pub io_sequence: Option<Vec<SequenceEntry>>,
    /// An IO slower than this (µs) is counted and reported as slow.
    pub slow_latency_us: u64,
    /// Stop at the first IO that fails.
    pub exit_on_error: bool,
    /// Pin the worker's thread to this CPU.
    pub cpu_id: Option<usize>,
    /// Seed of the LBA, size and opcode generator, and of random write data.
    pub seed: u64,
    /// Collect IOs completed in each second.
    pub per_second: bool,
    /// Collect the 1 µs latency distribution (pynvme's `latency_distribution`).
    pub latency_distribution: bool,
    /// Percentiles and the distribution only count this opcode (None: all).
    pub latency_opcode: Option<u8>,
    /// Keep the latest this many IOs (or failed IOs, see `cmdlog_error_only`).
    pub cmdlog: usize,
    /// Keep only failed IOs in the command list.
    pub cmdlog_error_only: bool,
    /// Sequential IO ends after one pass over the region.
    pub one_pass: bool,
    /// When the run ends with an error, leave the worker's queue pair on the device (not
    /// deleted, its memory kept until the next controller reset), for the firmware's debugger
    /// to find as it was (pynvme's `fw_debug`).
    pub fw_debug: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            io_sizes: vec![IoSize {
                nlb: 8,
                align: 1,
                weight: 1,
            }],
            lba_random: 100,
            lba_start: 0,
            lba_step: None,
            ops: vec![(nvm::READ, 100)],
            sgl_percentage: 0,
            qdepth: 63,
            qprio: 0,
            region_start: 0,
            region_end: u64::MAX,
            iops: 0,
            io_count: 0,
            lba_count: 0,
            time: None,
            io_flags: 0,
            distribution: None,
            ptype: crate::buffer::ptype::RANDOM,
            pvalue: 100,
            io_sequence: None,
            slow_latency_us: 1_000_000,
            exit_on_error: true,
            cpu_id: None,
            seed: 0,
            per_second: false,
            latency_distribution: false,
            latency_opcode: None,
            cmdlog: 0,
            cmdlog_error_only: false,
            one_pass: false,
            fw_debug: false,
        }
    }
}

/// One IO as the command list keeps it (PyNVMe3's `output_cmdlog_list` entries).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoRecord {
    /// Starting LBA.
    pub slba: u64,
    /// Number of blocks.
    pub nlb: u32,
    /// Opcode.
    pub opcode: u8,
    /// When it was sent, µs since the worker's start.
    pub sent_us: u64,
    /// When its completion was seen, µs since the worker's start.
    pub completed_us: u64,
    /// Status field of its completion (SCT << 8 | SC).
    pub status: u16,
}

/// Counters of a running worker, readable from any thread while it runs (for a progress line
/// or a monitor): cumulative since the start, updated once per batch of completions.
#[derive(Debug, Default)]
pub struct LiveStats {
    /// Reads completed.
    pub reads: AtomicU64,
    /// Writes completed.
    pub writes: AtomicU64,
    /// Other IOs completed.
    pub others: AtomicU64,
    /// Bytes transferred by completed reads and writes.
    pub bytes: AtomicU64,
    /// Sum of latencies, ns.
    pub latency_sum_ns: AtomicU64,
    /// Largest latency, ns.
    pub latency_max_ns: AtomicU64,
    /// IOs ended by a reset or power loss.
    pub aborted: AtomicU64,
    /// Commands outstanding now.
    pub outstanding: AtomicU64,
}

/// A snapshot of [`LiveStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveSnapshot {
    /// Reads completed.
    pub reads: u64,
    /// Writes completed.
    pub writes: u64,
    /// Other IOs completed.
    pub others: u64,
    /// Bytes transferred by reads and writes.
    pub bytes: u64,
    /// Sum of latencies, ns.
    pub latency_sum_ns: u64,
    /// Largest latency, ns.
    pub latency_max_ns: u64,
    /// IOs ended by a reset or power loss.
    pub aborted: u64,
    /// Commands outstanding.
    pub outstanding: u64,
    /// Time since the worker started.
    pub elapsed: Duration,
}

/// Host-side reasons a worker ended early (pynvme's host error codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostError {
    /// -4: the run did not end within its time plus the grace period.
    Timeout,
    /// -7: the controller went away (reset, power loss) and did not come back in time.
    Terminated,
}

impl HostError {
    /// pynvme's code.
    pub fn code(self) -> i32 {
        match self {
            HostError::Timeout => -4,
            HostError::Terminated => -7,
        }
    }

    /// pynvme's text.
    pub fn text(self) -> &'static str {
        match self {
            HostError::Timeout => "ioworker timeout",
            HostError::Terminated => "sudden terminated",
        }
    }
}

/// What a worker did, at its end.
#[derive(Clone, Debug)]
pub struct WorkerResult {
    /// Reads completed (successfully or not).
    pub io_count_read: u64,
    /// Writes completed.
    pub io_count_write: u64,
    /// IOs other than reads completed.
    pub io_count_nonread: u64,
    /// Blocks read.
    pub lba_count_read: u64,
    /// Blocks written.
    pub lba_count_write: u64,
    /// Blocks of IOs other than reads.
    pub lba_count_nonread: u64,
    /// IOs ended by a reset or power loss (00/08 from the host): not errors.
    pub io_count_aborted: u64,
    /// IOs completed per opcode.
    pub op_counts: Vec<(u8, u64)>,
    /// Run time, ms, from the start to the last completion.
    pub mseconds: u64,
    /// Largest latency, µs.
    pub latency_max_us: u64,
    /// Average latency, µs.
    pub latency_average_us: u64,
    /// Latency of every completed IO (or of `latency_opcode` IOs), ns.
    pub histogram: Histogram<u64>,
    /// The exact largest value recorded in `histogram`, ns (the histogram keeps 3 digits).
    pub histogram_max_ns: u64,
    /// Latency from each IO's intended send time, ns (throttled and replayed runs only).
    pub intended_histogram: Option<Histogram<u64>>,
    /// Latency of every completed read, ns (whatever `latency_opcode` says).
    pub read_histogram: Histogram<u64>,
    /// Latency of every completed write, ns (whatever `latency_opcode` says).
    pub write_histogram: Histogram<u64>,
    /// 1 µs latency buckets (when asked for).
    pub latency_distribution: Option<Vec<u32>>,
    /// IOs completed in each second (when asked for).
    pub io_per_second: Vec<u64>,
    /// Bytes transferred in each second (when per-second data is asked for).
    pub bytes_per_second: Vec<u64>,
    /// Status of the first failing IO, SCT << 8 | SC (0: none).
    pub error: u16,
    /// That IO's command.
    pub error_cmd: Option<Sqe>,
    /// That IO's completion.
    pub error_cpl: Option<Cqe>,
    /// IOs that failed.
    pub error_count: u64,
    /// Why the host ended the run early, if it did.
    pub host_error: Option<HostError>,
    /// IOs slower than `slow_latency_us`.
    pub slow_count: u64,
    /// The first slow IOs (at most 10).
    pub slow_ios: Vec<IoRecord>,
    /// The worker thread's CPU time divided by the run time.
    pub cpu_usage: f64,
    /// Wall-clock time of the start.
    pub test_start: SystemTime,
    /// The latest IOs (or failed IOs), oldest first.
    pub cmdlog: Vec<IoRecord>,
    /// Data miscompares found by verification, as reports.
    pub miscompares: Vec<String>,
    /// Device misbehaviours the queue noticed.
    pub anomalies: Vec<String>,
    /// What the host could not do at the end (delete the queue pair of a device that is gone).
    pub notes: Vec<String>,
    /// The queue id the worker used.
    pub qid: u16,
}

/// A running worker.
pub struct IoWorker {
    thread: Option<JoinHandle<Result<WorkerResult>>>,
    stop: Arc<AtomicBool>,
    monitor: WorkerMonitor,
    qid: u16,
}

/// Holds workers started with [`IoWorker::start_gated`] until [`StartGate::open`]: workers
/// whose queue pairs and buffers are made one after the other send their first IO together.
#[derive(Clone, Default)]
pub struct StartGate(Arc<(parking_lot::Mutex<bool>, parking_lot::Condvar)>);

impl StartGate {
    /// A closed gate.
    pub fn new() -> StartGate {
        StartGate::default()
    }

    /// Lets every worker waiting at the gate go.
    pub fn open(&self) {
        *self.0 .0.lock() = true;
        self.0 .1.notify_all();
    }

    /// Waits until the gate opens or `stop` is set.
    fn wait(&self, stop: &AtomicBool) {
        let mut open = self.0 .0.lock();
        while !*open && !stop.load(Ordering::Relaxed) {
            self.0 .1.wait_for(&mut open, Duration::from_millis(10));
        }
    }
}

/// A view of a worker's progress that any thread can keep and read, also while another thread
/// waits in [`IoWorker::join`].
#[derive(Clone)]
pub struct WorkerMonitor {
    live: Arc<LiveStats>,
    started: Instant,
    done: Arc<AtomicBool>,
}

impl WorkerMonitor {
    /// Whether the worker still runs.
    pub fn running(&self) -> bool {
        !self.done.load(Ordering::Acquire)
    }

    /// The worker's counters now.
    pub fn snapshot(&self) -> LiveSnapshot {
        let l = &self.live;
        LiveSnapshot {
            reads: l.reads.load(Ordering::Relaxed),
            writes: l.writes.load(Ordering::Relaxed),
            others: l.others.load(Ordering::Relaxed),
            bytes: l.bytes.load(Ordering::Relaxed),
            latency_sum_ns: l.latency_sum_ns.load(Ordering::Relaxed),
            latency_max_ns: l.latency_max_ns.load(Ordering::Relaxed),
            aborted: l.aborted.load(Ordering::Relaxed),
            outstanding: l.outstanding.load(Ordering::Relaxed),
            elapsed: self.started.elapsed(),
        }
    }
}

/// The pieces of a namespace a worker needs.
struct Target {
    nsid: u32,
    block: usize,
    verify: Arc<NsVerify>,
}

impl IoWorker {
    /// Checks `cfg` against the namespace and controller, creates the worker's queue pair and
    /// starts its thread. Errors (bad configuration, no free queue) are returned here, before
    /// any IO.
    pub fn start<C: Clone + Send + 'static>(
        ns: &Namespace<C>,
        cfg: WorkerConfig,
    ) -> Result<IoWorker> {
        Self::start_gated(ns, cfg, None)
    }

    /// As [`IoWorker::start`], but the worker sends its first IO only when `gate` opens (or it
    /// is stopped): workers made ready one by one then start together, their clocks and
    /// per-second series aligned.
    pub fn start_gated<C: Clone + Send + 'static>(
        ns: &Namespace<C>,
        mut cfg: WorkerConfig,
        gate: Option<StartGate>,
    ) -> Result<IoWorker> {
        let ctrl = ns.controller().clone();
        let nsze = ns.nsze();
        cfg.region_end = cfg.region_end.min(nsze);
        validate(&mut cfg, &ctrl, ns.block_size())?;
        let target = Target {
            nsid: ns.nsid(),
            block: ns.block_size(),
            verify: ns.verifier().clone(),
        };
        let qp = Qpair::<C, u32>::new(
            &ctrl,
            QpairConfig {
                depth: cfg.qdepth + 1,
                prio: cfg.qprio,
                ien: false,
                iv: 0xffff,
                sqid: None,
                lazy_doorbell: true,
            },
        )?;
        let qid = qp.qid();
        let max_bytes = cfg.io_sizes.iter().map(|s| s.nlb).max().unwrap_or(1) as usize
            * target.block
            + if cfg.ops.iter().any(|&(o, _)| o == nvm::DSM) {
                16
            } else {
                0
            };
        let max_bytes = max_bytes.max(16);
        let pool = Pool::new(&ctrl, cfg.qdepth as usize, max_bytes, &cfg).inspect_err(|_| {
            let _ = qp.delete();
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let monitor = WorkerMonitor {
            live: Arc::new(LiveStats::default()),
            started: Instant::now(),
            done: Arc::new(AtomicBool::new(false)),
        };
        let (s, l, done) = (stop.clone(), monitor.live.clone(), monitor.done.clone());
        let thread = std::thread::Builder::new()
            .name(format!("ioworker-q{qid}"))
            .spawn(move || {
                if let Some(cpu) = cfg.cpu_id {
                    pin(cpu);
                }
                if let Some(g) = gate {
                    g.wait(&s);
                }
                let fw_debug = cfg.fw_debug;
                let mut run = Run::new(cfg, target, qp.clone(), pool, s, l);
                let r = run.main();
                let keep = fw_debug && r.as_ref().is_ok_and(|r| r.error != 0);
                let deleted = if keep { Ok(()) } else { qp.delete() };
                done.store(true, Ordering::Release);
                let mut r = r?;
                if keep {
                    r.notes.push(format!(
                        "fw_debug: the worker's qpair {} is left on the device, not deleted",
                        qp.qid()
                    ));
                }
                if let Err(e) = deleted {
                    r.notes.push(format!("deleting the worker's qpair: {e}"));
                }
                Ok(r)
            })
            .map_err(|source| DriverError::Spawn {
                what: "an ioworker thread",
                source,
            })?;
        Ok(IoWorker {
            thread: Some(thread),
            stop,
            monitor,
            qid,
        })
    }

    /// The queue id of the worker's queue pair.
    pub fn qid(&self) -> u16 {
        self.qid
    }

    /// Whether the worker is still running.
    pub fn running(&self) -> bool {
        self.monitor.running()
    }

    /// Asks the worker to stop sending; it ends once its outstanding IOs completed.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The worker's counters now.
    pub fn snapshot(&self) -> LiveSnapshot {
        self.monitor.snapshot()
    }

    /// A handle on the worker's counters that outlives a `join`.
    pub fn monitor(&self) -> WorkerMonitor {
        self.monitor.clone()
    }

    /// Waits for the worker to end and returns its result.
    pub fn join(mut self) -> Result<WorkerResult> {
        let t = self.thread.take().expect("joined once");
        t.join().unwrap_or_else(|payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            Err(DriverError::WorkerPanicked { message })
        })
    }
}

impl Drop for IoWorker {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::Relaxed);
            let _ = t.join();
        }
    }
}

fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    // A CPU the machine does not have: the worker runs unpinned rather than failing.
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn bad(arg: &'static str, msg: impl Into<String>) -> DriverError {
    DriverError::invalid(arg, msg)
}

/// Checks a configuration: what would make the worker unable to run, or the host unsafe.
fn validate<C: Clone + Send + 'static>(
    cfg: &mut WorkerConfig,
    ctrl: &Arc<Controller<C>>,
    block: usize,
) -> Result<()> {
    let mqes = ctrl.cap().mqes() as u32 + 1;
    if cfg.qdepth < 1 || cfg.qdepth as u32 + 1 > mqes.min(65536) {
        return Err(bad(
            "qdepth",
            format!(
                "{} is not 1..={} (CAP.MQES: the queue has qdepth + 1 entries)",
                cfg.qdepth,
                mqes - 1
            ),
        ));
    }
    if cfg.region_start >= cfg.region_end {
        return Err(bad(
            "region_end",
            format!(
                "the region [{}, {}) is empty (region_end is not included, and at most NSZE)",
                cfg.region_start, cfg.region_end
            ),
        ));
    }
    if cfg.io_sequence.is_none() {
        if cfg.io_sizes.is_empty() || cfg.io_sizes.iter().all(|s| s.weight == 0) {
            return Err(bad("io_size", "no IO size with a weight above 0"));
        }
        for s in &cfg.io_sizes {
            if s.nlb == 0 || s.nlb > 65536 {
                return Err(bad("io_size", format!("{} is not 1..=65536 blocks", s.nlb)));
            }
            if s.align == 0 {
                return Err(bad("lba_align", "cannot be 0"));
            }
        }
        let region = cfg.region_end - cfg.region_start;
        let max = cfg.io_sizes.iter().map(|s| s.nlb).max().unwrap_or(1) as u64;
        if max > region {
            return Err(bad(
                "io_size",
                format!("{max} blocks do not fit the region of {region} blocks"),
            ));
        }
        let total: u32 = cfg.ops.iter().map(|o| o.1).sum();
        if total != 100 {
            return Err(bad(
                "op_percentage",
                format!("percentages sum to {total}, not 100"),
            ));
        }
        if cfg.lba_random > 100 {
            return Err(bad(
                "lba_random",
                format!("{} is not a percentage 0..=100", cfg.lba_random),
            ));
        }
        if let Some(d) = &cfg.distribution {
            if d.len() != 100 || d.iter().sum::<u32>() != 10000 {
                return Err(bad(
                    "distribution",
                    "100 shares (one per 1 % of the region) summing to 10000",
                ));
            }
        }
        let unbounded = cfg.time.is_none() && cfg.io_count == 0 && cfg.lba_count == 0;
        if unbounded && !cfg.one_pass {
            return Err(bad(
                "time",
                "when to stop the ioworker? give time, io_count or lba_count",
            ));
        }
    } else if cfg.io_sequence.as_ref().is_some_and(|s| s.is_empty()) {
        return Err(bad("io_sequence", "is empty"));
    }
    if cfg.sgl_percentage > 100 {
        return Err(bad(
            "sgl_percentage",
            format!("{} is not a percentage 0..=100", cfg.sgl_percentage),
        ));
    }
    let biggest = match &cfg.io_sequence {
        Some(s) => s.iter().map(|e| e.nlb).max().unwrap_or(1),
        None => cfg.io_sizes.iter().map(|s| s.nlb).max().unwrap_or(1),
    } as usize
        * block;
    let limit = crate::controller::DRIVER_MAX_TRANSFER;
    if biggest > limit {
        return Err(bad(
            "io_size",
            format!(
                "{biggest} bytes per IO: the driver describes at most {limit} bytes per command"
            ),
        ));
    }
    if let Some(t) = cfg.time {
        if t.as_secs() > MAX_SECONDS {
            return Err(bad("time", "worker needs a rest :) (at most 1000 hours)"));
        }
    }
    Ok(())
}

/// The worker's DMA memory: per slot a read buffer, a write buffer and a DSM range.
struct Pool {
    mem: DmaMemory,
    slot_bytes: usize,
    slots: usize,
}

impl Pool {
    fn new<C: Clone + Send + 'static>(
        ctrl: &Arc<Controller<C>>,
        slots: usize,
        max_bytes: usize,
        cfg: &WorkerConfig,
    ) -> Result<Pool> {
        // Each buffer starts on a page: PRPs then need at most one list page per command.
        let slot_bytes = max_bytes.next_multiple_of(4096);
        let total = slot_bytes * 2 * slots;
        let mem = ctrl
            .pci()
            .dma_alloc(total)
            .map_err(|source| DriverError::Alloc {
                what: "ioworker buffer pool",
                bytes: total,
                source,
            })?;
        // Write buffers: the pattern, written once (stamps change 16 bytes per block per IO).
        let mut data = vec![0u8; slot_bytes];
        let mut rng = fastrand::Rng::with_seed(cfg.seed ^ 0x5eed_da7a);
        for s in 0..slots {
            if cfg.ptype == crate::buffer::ptype::RANDOM {
                let n = slot_bytes * (cfg.pvalue.min(100) as usize) / 100;
                crate::buffer::fill_rng(&mut rng, &mut data[..n]);
                data[n..].fill(0);
            } else {
                crate::buffer::fill_pattern(&mut data, cfg.ptype, cfg.pvalue)?;
            }
            mem.write(Self::write_offset(slot_bytes, slots, s), &data);
        }
        Ok(Pool {
            mem,
            slot_bytes,
            slots,
        })
    }

    fn write_offset(slot_bytes: usize, slots: usize, slot: usize) -> usize {
        (slots + slot) * slot_bytes
    }

    fn read_ref(&self, slot: usize, len: usize, sgl: bool) -> DataRef {
        DataRef {
            mem: self.mem.clone(),
            offset: slot * self.slot_bytes,
            len,
            sgl,
        }
    }

    fn write_ref(&self, slot: usize, len: usize, sgl: bool) -> DataRef {
        DataRef {
            mem: self.mem.clone(),
            offset: Self::write_offset(self.slot_bytes, self.slots, slot),
            len,
            sgl,
        }
    }
}

/// What a slot's IO was, kept until its completion.
#[derive(Clone, Copy, Default)]
struct SlotIo {
    slba: u64,
    nlb: u32,
    opcode: u8,
    sent_ns: u64,
    intended_ns: u64,
}

/// The generator of LBAs, sizes and opcodes.
struct Generator {
    rng: fastrand::Rng,
    ops: [u8; 100],
    sizes: Vec<IoSize>,
    size_total: u32,
    size_cut: Vec<u32>,
    dist: Option<Vec<u8>>,
    seq_lba: u64,
    wrapped: bool,
}

impl Generator {
    fn new(cfg: &WorkerConfig) -> Generator {
        let mut ops = [nvm::READ; 100];
        let mut i = 0;
        for &(op, pct) in &cfg.ops {
            for _ in 0..pct {
                if i < 100 {
                    ops[i] = op;
                    i += 1;
                }
            }
        }
        let mut acc = 0;
        let size_cut = cfg
            .io_sizes
            .iter()
            .map(|s| {
                acc += s.weight;
                acc
            })
            .collect();
        let dist = cfg.distribution.as_ref().map(|d| {
            let mut t = Vec::with_capacity(10000);
            for (slice, &n) in d.iter().enumerate() {
                t.extend(std::iter::repeat_n(slice as u8, n as usize));
            }
            t
        });
        Generator {
            rng: fastrand::Rng::with_seed(cfg.seed),
            ops,
            sizes: cfg.io_sizes.clone(),
            size_total: acc,
            size_cut,
            dist,
            seq_lba: cfg.lba_start.max(cfg.region_start),
            wrapped: false,
        }
    }

    /// The next IO: (opcode, slba, nlb).
    fn next(&mut self, cfg: &WorkerConfig, verify: &NsVerify) -> (u8, u64, u32) {
        let (start, end) = (cfg.region_start, cfg.region_end);
        let op = self.ops[self.rng.usize(..100)];
        let size = if self.sizes.len() == 1 {
            self.sizes[0]
        } else {
            let pick = self.rng.u32(..self.size_total);
            let i = self.size_cut.partition_point(|&c| c <= pick);
            self.sizes[i.min(self.sizes.len() - 1)]
        };
        let align = size.align as u64;
        let random = cfg.lba_random >= 100 || self.rng.u32(..100) < cfg.lba_random;
        let lba = if random {
            let raw = match &self.dist {
                Some(t) => {
                    let slice = t[self.rng.usize(..t.len())] as u64;
                    let span = end - start;
                    let lo = start + span * slice / 100;
                    let hi = (start + span * (slice + 1) / 100).max(lo + 1);
                    self.rng.u64(lo..hi)
                }
                None => self.rng.u64(start..end),
            };
            let mut lba = raw.next_multiple_of(align);
            if lba >= end {
                lba = (end - 1) / align * align;
            }
            lba.max(start)
        } else {
            self.sequential(cfg, verify, size.nlb, align)
        };
        let nlb = (size.nlb as u64).min(end - lba) as u32;
        (op, lba, nlb)
    }

    fn sequential(&mut self, cfg: &WorkerConfig, verify: &NsVerify, nlb: u32, align: u64) -> u64 {
        let (start, end) = (cfg.region_start, cfg.region_end);
        let mut lba = self.seq_lba.next_multiple_of(align);
        if lba >= end {
            lba = start.next_multiple_of(align);
            self.wrapped = true;
        }
        // Skip blocks written uncorrectable, as pynvme does: a sequential pass reads through.
        if verify.enabled() {
            let mut guard = 0;
            while lba < end && verify.get(lba) == UNCORRECTABLE && guard < 1 << 20 {
                lba += 1;
                guard += 1;
            }
            if lba >= end {
                lba = start;
                self.wrapped = true;
            }
        }
        let next = match cfg.lba_step {
            Some(step) => lba as i64 + step,
            None => (lba + nlb as u64) as i64,
        };
        self.seq_lba = if next < start as i64 {
            self.wrapped = true;
            start
        } else {
            next as u64
        };
        if self.seq_lba >= end && cfg.one_pass {
            self.wrapped = true;
        }
        lba
    }
}

struct Run<C: Clone + Send + 'static> {
    cfg: WorkerConfig,
    target: Target,
    qp: Arc<Qpair<C, u32>>,
    pool: Pool,
    stop: Arc<AtomicBool>,
    live: Arc<LiveStats>,
    gen: Generator,
    slots: Vec<SlotIo>,
    free: Vec<u32>,
    start: Instant,
    // Counters.
    sent: u64,
    sent_lbas: u64,
    op_counts: [u64; 256],
    r: WorkerResult,
    lat_sum_ns: u64,
    lat_n: u64,
    lat_max_ns: u64,
    last_completion_ns: u64,
    cmdlog_next: usize,
    cmdlog_full: bool,
    seq_next: usize,
    sgl_rng: fastrand::Rng,
}

impl<C: Clone + Send + 'static> Run<C> {
    fn new(
        cfg: WorkerConfig,
        target: Target,
        qp: Arc<Qpair<C, u32>>,
        pool: Pool,
        stop: Arc<AtomicBool>,
        live: Arc<LiveStats>,
    ) -> Run<C> {
        let slots = cfg.qdepth as usize;
        let hist = || Histogram::<u64>::new_with_bounds(1, HIST_MAX_NS, 3).expect("valid bounds");
        let intended = (cfg.iops != 0 || cfg.io_sequence.is_some()).then(hist);
        let r = WorkerResult {
            io_count_read: 0,
            io_count_write: 0,
            io_count_nonread: 0,
            lba_count_read: 0,
            lba_count_write: 0,
            lba_count_nonread: 0,
            io_count_aborted: 0,
            op_counts: Vec::new(),
            mseconds: 0,
            latency_max_us: 0,
            latency_average_us: 0,
            histogram: hist(),
            histogram_max_ns: 0,
            intended_histogram: intended,
            read_histogram: hist(),
            write_histogram: hist(),
            latency_distribution: cfg
                .latency_distribution
                .then(|| vec![0u32; DISTRIBUTION_BUCKETS]),
            io_per_second: Vec::new(),
            bytes_per_second: Vec::new(),
            error: 0,
            error_cmd: None,
            error_cpl: None,
            error_count: 0,
            host_error: None,
            slow_count: 0,
            slow_ios: Vec::new(),
            cpu_usage: 0.0,
            test_start: SystemTime::now(),
            cmdlog: Vec::with_capacity(cfg.cmdlog),
            miscompares: Vec::new(),
            anomalies: Vec::new(),
            notes: Vec::new(),
            qid: qp.qid(),
        };
        let secs = cfg
            .time
            .map_or(64, |t| t.as_secs() as usize + 2)
            .min(1 << 16);
        let mut r = r;
        if cfg.per_second {
            r.io_per_second.reserve(secs);
            r.bytes_per_second.reserve(secs);
        }
        Run {
            gen: Generator::new(&cfg),
            sgl_rng: fastrand::Rng::with_seed(cfg.seed.wrapping_add(1)),
            slots: vec![SlotIo::default(); slots],
            free: (0..slots as u32).rev().collect(),
            cfg,
            target,
            qp,
            pool,
            stop,
            live,
            start: Instant::now(),
            sent: 0,
            sent_lbas: 0,
            op_counts: [0; 256],
            r,
            lat_sum_ns: 0,
            lat_n: 0,
            lat_max_ns: 0,
            last_completion_ns: 0,
            cmdlog_next: 0,
            cmdlog_full: false,
            seq_next: 0,
        }
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Whether the workload has more IO to send.
    fn more_to_send(&self, now: u64) -> bool {
        let c = &self.cfg;
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        if self.r.error != 0 && c.exit_on_error {
            return false;
        }
        if let Some(seq) = &c.io_sequence {
            return self.seq_next < seq.len();
        }
        if c.time.is_some_and(|t| now >= t.as_nanos() as u64) {
            return false;
        }
        if c.io_count != 0 && self.sent >= c.io_count {
            return false;
        }
        if c.lba_count != 0 && self.sent_lbas >= c.lba_count {
            return false;
        }
        if c.one_pass && self.gen.wrapped {
            return false;
        }
        true
    }

    /// When IO number `n` is due, ns since the start (0: now).
    fn due_ns(&self, n: u64) -> u64 {
        if let Some(seq) = &self.cfg.io_sequence {
            return seq.get(self.seq_next).map_or(0, |e| e.time_us * 1000);
        }
        if self.cfg.iops == 0 {
            return 0;
        }
        (n as u128 * 1_000_000_000 / self.cfg.iops as u128) as u64
    }

    fn main(&mut self) -> Result<WorkerResult> {
        self.start = Instant::now();
        self.r.test_start = SystemTime::now();
        let cpu0 = thread_cpu_ns();
        let grace = Duration::from_millis(self.qp.controller().timeouts().default_ms() as u64)
            + Duration::from_secs(5);
        let mut stalled_since: Option<Instant> = None;
        let mut drain_since: Option<Instant> = None;
        let mut idle_spins = 0u32;
        loop {
            let now = self.now_ns();
            let sending = self.more_to_send(now);
            if !sending && self.free.len() == self.slots.len() {
                break;
            }
            let mut progressed = false;
            if sending {
                match self.submit_round(now) {
                    Ok(n) => {
                        progressed |= n > 0;
                        stalled_since = None;
                    }
                    Err(e) if queue_unusable(&e) => {
                        // The controller is being reset or powered off: wait, keep reaping.
                        let since = *stalled_since.get_or_insert_with(Instant::now);
                        if since.elapsed() > grace
                            && self.cfg.time.is_none_or(|t| now > t.as_nanos() as u64)
                        {
                            self.r.host_error = Some(HostError::Terminated);
                            self.stop.store(true, Ordering::Relaxed);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            let got = self.reap()?;
            progressed |= got > 0;
            if !sending {
                let since = *drain_since.get_or_insert_with(Instant::now);
                if since.elapsed() > grace * 2 {
                    // Outstanding IO that neither completes nor times out: give up on it.
                    self.r.host_error = Some(HostError::Timeout);
                    break;
                }
            }
            if progressed {
                idle_spins = 0;
            } else {
                idle_spins += 1;
                self.idle(idle_spins, stalled_since.is_some());
            }
        }
        let end_ns = self.now_ns();
        let cpu = thread_cpu_ns().saturating_sub(cpu0);
        self.finish(end_ns, cpu);
        let blank = self.r.clone_counts();
        Ok(std::mem::replace(&mut self.r, blank))
    }

    /// Waits a little when nothing happened: spin first, then yield, then sleep (a throttled
    /// worker sleeps until its next IO is due).
    fn idle(&self, spins: u32, stalled: bool) {
        if stalled {
            std::thread::sleep(Duration::from_millis(1));
            return;
        }
        let wait_ns = if self.cfg.iops != 0 || self.cfg.io_sequence.is_some() {
            self.due_ns(self.sent).saturating_sub(self.now_ns())
        } else {
            0
        };
        if wait_ns > 200_000 && self.free.len() == self.slots.len() {
            std::thread::sleep(Duration::from_nanos(wait_ns - 100_000));
        } else if spins > 64 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }

    /// Sends every IO that is due while a slot is free; returns how many.
    fn submit_round(&mut self, now: u64) -> Result<usize> {
        let mut n = 0;
        while let Some(&slot) = self.free.last() {
            if !self.more_to_send(now) {
                break;
            }
            let due = self.due_ns(self.sent);
            if due > now {
                break;
            }
            let (opcode, slba, nlb) = match &self.cfg.io_sequence {
                Some(seq) => {
                    let e = seq[self.seq_next];
                    (e.opcode, e.slba, e.nlb)
                }
                None => self.gen.next(&self.cfg, &self.target.verify),
            };
            let (sqe, data) = self.command(slot as usize, opcode, slba, nlb);
            self.qp.submit(sqe, data, false, slot, true)?;
            self.free.pop();
            self.slots[slot as usize] = SlotIo {
                slba,
                nlb,
                opcode,
                sent_ns: now,
                intended_ns: if due == 0 { now } else { due },
            };
            self.sent += 1;
            self.sent_lbas += nlb as u64;
            if self.cfg.io_sequence.is_some() {
                self.seq_next += 1;
            }
            n += 1;
        }
        if n > 0 {
            self.live.outstanding.store(
                (self.slots.len() - self.free.len()) as u64,
                Ordering::Relaxed,
            );
        }
        Ok(n)
    }

    /// The command of one IO, with its data in the slot's buffers.
    fn command(&mut self, slot: usize, opcode: u8, slba: u64, nlb: u32) -> (Sqe, Option<DataRef>) {
        let mut sqe = Sqe::new(opcode, self.target.nsid);
        let len = nlb as usize * self.target.block;
        let sgl = self.cfg.sgl_percentage > 0
            && (self.cfg.sgl_percentage >= 100
                || self.sgl_rng.u32(..100) < self.cfg.sgl_percentage);
        match opcode {
            nvm::FLUSH => (sqe, None),
            nvm::DSM => {
                // One range, deallocate: the range list sits after the slot's read data.
                sqe.cdw10 = 0;
                sqe.cdw11 = 1 << 2;
                let mut range = [0u8; 16];
                range[4..8].copy_from_slice(&nlb.to_le_bytes());
                range[8..16].copy_from_slice(&slba.to_le_bytes());
                let off = slot * self.pool.slot_bytes + self.pool.slot_bytes - 16;
                self.pool.mem.write(off, &range);
                let data = DataRef {
                    mem: self.pool.mem.clone(),
                    offset: off,
                    len: 16,
                    sgl: false,
                };
                (sqe, Some(data))
            }
            _ => {
                sqe.set_slba(slba);
                sqe.cdw12 = (self.cfg.io_flags as u32) << 16 | (nlb - 1);
                let data = match opcode {
                    nvm::WRITE_ZEROES | nvm::WRITE_UNCORRECTABLE | nvm::VERIFY => None,
                    nvm::WRITE => Some(self.pool.write_ref(slot, len, sgl)),
                    _ => Some(self.pool.read_ref(slot, len, sgl)),
                };
                (sqe, data)
            }
        }
    }

    /// Reaps what completed; returns how many.
    fn reap(&mut self) -> Result<usize> {
        let qp = self.qp.clone();
        let mut batch_ns = None;
        let mut lat_batch_max = 0u64;
        let mut lat_batch_sum = 0u64;
        let (mut reads, mut writes, mut others, mut bytes, mut aborted) =
            (0u64, 0u64, 0u64, 0u64, 0u64);
        let n = qp.poll(usize::MAX, &mut |c: Completion<u32>| {
            let now = *batch_ns.get_or_insert_with(|| self.now_ns());
            let slot = c.ctx as usize;
            let io = self.slots[slot];
            self.free.push(c.ctx);
            let st = c.cqe.status();
            let host_aborted = st.sct == sct::GENERIC && st.sc == sc::ABORTED_SQ_DELETION;
            if host_aborted {
                aborted += 1;
                self.r.io_count_aborted += 1;
                return Ok(());
            }
            let lat = now.saturating_sub(io.sent_ns).max(1);
            lat_batch_sum += lat;
            lat_batch_max = lat_batch_max.max(lat);
            self.account(&io, &c, now, lat);
            match io.opcode {
                nvm::READ => {
                    reads += 1;
                    bytes += io.nlb as u64 * self.target.block as u64;
                }
                nvm::WRITE => {
                    writes += 1;
                    bytes += io.nlb as u64 * self.target.block as u64;
                }
                _ => others += 1,
            }
            Ok(())
        })?;
        if n > 0 {
            let l = &self.live;
            l.reads.fetch_add(reads, Ordering::Relaxed);
            l.writes.fetch_add(writes, Ordering::Relaxed);
            l.others.fetch_add(others, Ordering::Relaxed);
            l.bytes.fetch_add(bytes, Ordering::Relaxed);
            l.aborted.fetch_add(aborted, Ordering::Relaxed);
            l.latency_sum_ns.fetch_add(lat_batch_sum, Ordering::Relaxed);
            l.latency_max_ns.fetch_max(lat_batch_max, Ordering::Relaxed);
            l.outstanding.store(
                (self.slots.len() - self.free.len()) as u64,
                Ordering::Relaxed,
            );
        }
        Ok(n)
    }

    /// Statistics of one completed IO.
    fn account(&mut self, io: &SlotIo, c: &Completion<u32>, now: u64, lat: u64) {
        let st = c.cqe.status();
        let code = (st.sct as u16) << 8 | st.sc as u16;
        let bytes = io.nlb as u64 * self.target.block as u64;
        self.op_counts[io.opcode as usize] += 1;
        match io.opcode {
            nvm::READ => {
                self.r.io_count_read += 1;
                self.r.lba_count_read += io.nlb as u64;
                self.r.read_histogram.saturating_record(lat);
            }
            op => {
                self.r.io_count_nonread += 1;
                self.r.lba_count_nonread += io.nlb as u64;
                if op == nvm::WRITE {
                    self.r.io_count_write += 1;
                    self.r.lba_count_write += io.nlb as u64;
                    self.r.write_histogram.saturating_record(lat);
                }
            }
        }
        self.lat_sum_ns += lat;
        self.lat_n += 1;
        self.lat_max_ns = self.lat_max_ns.max(lat);
        self.last_completion_ns = self.last_completion_ns.max(now);
        if self.cfg.latency_opcode.is_none_or(|o| o == io.opcode) {
            self.r.histogram.saturating_record(lat);
            self.r.histogram_max_ns = self.r.histogram_max_ns.max(lat);
            if let Some(h) = self.r.intended_histogram.as_mut() {
                h.saturating_record(now.saturating_sub(io.intended_ns).max(1));
            }
            if let Some(d) = self.r.latency_distribution.as_mut() {
                d[((lat / 1000) as usize).min(DISTRIBUTION_BUCKETS - 1)] += 1;
            }
        }
        if self.cfg.per_second {
            let sec = (now / 1_000_000_000) as usize;
            if self.r.io_per_second.len() <= sec {
                self.r.io_per_second.resize(sec + 1, 0);
                self.r.bytes_per_second.resize(sec + 1, 0);
            }
            self.r.io_per_second[sec] += 1;
            if matches!(io.opcode, nvm::READ | nvm::WRITE) {
                self.r.bytes_per_second[sec] += bytes;
            }
        }
        let failed = code != 0;
        let record = IoRecord {
            slba: io.slba,
            nlb: io.nlb,
            opcode: io.opcode,
            sent_us: io.sent_ns / 1000,
            completed_us: now / 1000,
            status: code,
        };
        if failed {
            self.r.error_count += 1;
            if self.r.error == 0 {
                self.r.error = code;
                self.r.error_cmd = Some(c.sqe);
                self.r.error_cpl = Some(c.cqe);
            }
        }
        if lat > self.cfg.slow_latency_us.saturating_mul(1000) {
            self.r.slow_count += 1;
            if self.r.slow_ios.len() < 10 {
                self.r.slow_ios.push(record);
            }
        }
        if self.cfg.cmdlog > 0 && (failed || !self.cfg.cmdlog_error_only) {
            if self.r.cmdlog.len() < self.cfg.cmdlog {
                self.r.cmdlog.push(record);
            } else {
                self.r.cmdlog[self.cmdlog_next] = record;
                self.cmdlog_full = true;
            }
            self.cmdlog_next = (self.cmdlog_next + 1) % self.cfg.cmdlog;
        }
    }

    fn finish(&mut self, end_ns: u64, cpu_ns: u64) {
        let run_ns = self.last_completion_ns.max(1).min(end_ns.max(1));
        let wall_ns = end_ns.max(1);
        self.r.mseconds = (run_ns.div_ceil(1_000_000)).max(1);
        self.r.latency_max_us = self.lat_max_ns / 1000;
        self.r.latency_average_us = self.lat_sum_ns.checked_div(self.lat_n).unwrap_or(0) / 1000;
        self.r.cpu_usage = cpu_ns as f64 / wall_ns as f64;
        self.r.op_counts = self
            .op_counts
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(op, &n)| (op as u8, n))
            .collect();
        // A timed run's series covers its time: completions drained after it are counted in
        // the totals, not as a partial extra second.
        if let Some(t) = self.cfg.time {
            let n = (t.as_secs_f64().ceil() as usize).max(1);
            self.r.io_per_second.truncate(n);
            self.r.bytes_per_second.truncate(n);
        }
        if self.cmdlog_full {
            self.r.cmdlog.rotate_left(self.cmdlog_next);
        }
        self.r.miscompares = self
            .qp
            .take_findings()
            .iter()
            .map(|m| m.to_string())
            .collect();
        self.r.anomalies = self.qp.take_anomalies();
    }
}

impl WorkerResult {
    /// A copy of the scalar fields (the large ones empty).
    fn clone_counts(&self) -> WorkerResult {
        WorkerResult {
            histogram: Histogram::new(1).expect("valid"),
            intended_histogram: None,
            read_histogram: Histogram::new(1).expect("valid"),
            write_histogram: Histogram::new(1).expect("valid"),
            latency_distribution: None,
            io_per_second: Vec::new(),
            bytes_per_second: Vec::new(),
            cmdlog: Vec::new(),
            miscompares: Vec::new(),
            anomalies: Vec::new(),
            notes: Vec::new(),
            slow_ios: Vec::new(),
            op_counts: Vec::new(),
            ..*self
        }
    }

    /// Latency at percentile `p` (0 < p < 100), µs, from the histogram.
    pub fn percentile_us(&self, p: f64) -> f64 {
        self.histogram
            .value_at_quantile(p / 100.0)
            .min(self.histogram_max_ns) as f64
            / 1000.0
    }

    /// Latency of reads (`nvm::READ`) or writes (`nvm::WRITE`) at percentile `p` (0 < p < 100),
    /// µs; `None` for another opcode or when none completed.
    pub fn direction_percentile_us(&self, opcode: u8, p: f64) -> Option<f64> {
        let h = match opcode {
            nvm::READ => &self.read_histogram,
            nvm::WRITE => &self.write_histogram,
            _ => return None,
        };
        (!h.is_empty()).then(|| h.value_at_quantile(p / 100.0).min(h.max()) as f64 / 1000.0)
    }

    /// Latency from the intended send time at percentile `p` (0 < p < 100), µs: throttled and
    /// replayed runs only.
    pub fn intended_percentile_us(&self, p: f64) -> Option<f64> {
        let h = self.intended_histogram.as_ref()?;
        Some(h.value_at_quantile(p / 100.0).min(h.max()) as f64 / 1000.0)
    }

    /// The ratio of the per-second IO count at `slowest_percentage` (sorted from the highest
    /// second down) to the average per-second count: 1.0 is perfectly steady.
    pub fn iops_consistency(&self, slowest_percentage: f64) -> Option<f64> {
        if self.io_per_second.is_empty() {
            return None;
        }
        let mut v = self.io_per_second.clone();
        v.sort_unstable_by(|a, b| b.cmp(a));
        let i = ((v.len() as f64 * slowest_percentage / 100.0) as usize).min(v.len() - 1);
        let mean = v.iter().sum::<u64>() as f64 / v.len() as f64;
        (mean > 0.0).then(|| v[i] as f64 / mean)
    }
}

/// Whether an error means the queue cannot take commands now (a reset or power cycle tore it
/// down, or the controller is not ready), as opposed to a mistake of the workload.
fn queue_unusable(e: &DriverError) -> bool {
    matches!(
        e,
        DriverError::QueueGone { .. }
            | DriverError::NotReady { .. }
            | DriverError::QueueFull { .. }
    )
}
