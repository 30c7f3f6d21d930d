//! The controller: registers, initialisation, the admin queue, AER, resets, IO queue pairs.
//!
//! Initialisation follows the spec's order (NVMe 2.0 base spec, 3.5.1) as pynvme does, in steps a
//! script may call itself from its own init function: disable and wait for CSTS.RDY = 0,
//! [`Controller::init_adminq`], CC = 0x00460000 then enable, wait for CSTS.RDY = 1,
//! [`Controller::init_ns`] (Identify), Set/Get Features Number of Queues, and AERs.
//!
//! Whatever completes on the admin queue is watched: an Identify Controller result refreshes the
//! driver's copy of the identify data, a Get Features Number of Queues result sets how many IO
//! queues exist. So a script's own init function, which sends these commands itself, leaves the
//! driver as informed as the default one.

use crate::cmdlog::CmdLogEntry;
use crate::commands;
use crate::error::{DriverError, Result};
use crate::lifecycle::{Event, Lifecycle, State};
use crate::queue::{Completion, DataRef, QueuePair, QueueParams, Timeouts};
use nvme_pci::{DmaMemory, Interrupts, PciFunction};
use nvme_spec::cmd::admin;
use nvme_spec::regs::{self, Cap};
use nvme_spec::status::{sc, sct};
use nvme_spec::{Cqe, Sqe, Status};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Largest transfer the driver builds for one command: 2 MiB (one PRP list page).
pub const DRIVER_MAX_TRANSFER: usize = 2 * 1024 * 1024;

/// Admin queue entries used by the default initialisation.
pub const ADMIN_QUEUE_ENTRIES: u16 = 128;

/// What the admin queue attaches to a command: the submitter's context, or, for the driver's own
/// synchronous commands, a ticket under which whoever reaps it files the completion for the thread
/// that waits for it.
pub enum AdminCtx<C> {
    /// A script's command.
    User(C),
    /// A synchronous command of the driver, by ticket.
    Sync(u64),
}

/// The host's warnings about a completion, in the order pynvme raises them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Warnings {
    /// Raised before the completion's callback runs (a host timeout).
    pub before: Vec<String>,
    /// Raised after the callback (AER notification, error status).
    pub after: Vec<String>,
}

/// pynvme's warning texts for a completion on queue `qid`.
pub fn completion_warnings(qid: u16, sqe: &Sqe, cqe: &Cqe, timed_out: bool) -> Warnings {
    let mut w = Warnings::default();
    if timed_out {
        w.before
            .push(format!("drive timeout: qpair: {qid}, cid: {}", cqe.cid));
    }
    let st = cqe.status();
    let is_aer = qid == 0 && sqe.opc() == admin::ASYNC_EVENT_REQUEST && !timed_out;
    if is_aer && st.is_success() {
        w.after
            .push(format!("AER notification is triggered: {:#x}", cqe.dw0));
    } else if !(st.is_success()
        || is_aer && st == Status::new(sct::GENERIC, sc::ABORTED_SQ_DELETION))
    {
        w.after
            .push(format!("ERROR status: {:02x}/{:02x}", st.sct, st.sc));
    }
    w
}

/// An NVMe controller behind a PCIe function.
pub struct Controller<C: Clone + Send + 'static> {
    pci: Arc<dyn PciFunction>,
    cap: Cap,
    timeouts: Arc<Timeouts>,
    admin: Mutex<Option<QueuePair<AdminCtx<C>>>>,
    deferred: Mutex<Vec<Completion<AdminCtx<C>>>>,
    sync_done: Mutex<std::collections::HashMap<u64, Cqe>>,
    next_ticket: std::sync::atomic::AtomicU64,
    in_wait: AtomicBool,
    irq: Mutex<Option<Arc<dyn Interrupts>>>,
    id_ctrl: Mutex<Option<Vec<u8>>>,
    nsqa: AtomicU16,
    ncqa: AtomicU16,
    aer_ctx: Mutex<Option<C>>,
    aer_outstanding: AtomicU32,
    qpairs: Mutex<Vec<Weak<dyn crate::qpair::IoQueue>>>,
    qid_used: Mutex<Vec<bool>>,
    /// IO queue ids held by metamode queues, with how many queues (an SQ and a CQ) share each.
    meta_qids: Mutex<std::collections::HashMap<u16, u32>>,
    /// Memory of metamode queues dropped while still existing on the device, kept until a reset.
    parked: Mutex<Vec<DmaMemory>>,
    latest_cid: AtomicU16,
    latest_latency_us: AtomicU32,
    latest_dw0: AtomicU32,
    verifiers: arc_swap::ArcSwap<Vec<Arc<crate::verify::NsVerify>>>,
    retired_io: Mutex<(u64, u64)>,
    iostat_last: Mutex<(Instant, u64, u64)>,
    /// State and epoch (see [`crate::lifecycle`]).
    life: Lifecycle,
    /// How many lifecycle events of each kind happened.
    events: Mutex<std::collections::HashMap<Event, u64>>,
}

impl<C: Clone + Send + 'static> Controller<C> {
    /// A controller on `pci`, not initialised yet (see [`Controller::init_default`]).
    pub fn new(pci: Arc<dyn PciFunction>) -> Result<Arc<Self>> {
        let cap = Cap(pci.bar_read64(0, regs::CAP as u64));
        if cap.0 == u64::MAX {
            return Err(DriverError::Enumerate(
                "fail to create the controller: CAP reads all ones".into(),
            ));
        }
        Ok(Arc::new(Controller {
            pci,
            cap,
            timeouts: Arc::new(Timeouts::default()),
            admin: Mutex::new(None),
            deferred: Mutex::new(Vec::new()),
            sync_done: Mutex::new(std::collections::HashMap::new()),
            next_ticket: std::sync::atomic::AtomicU64::new(1),
            in_wait: AtomicBool::new(false),
            irq: Mutex::new(None),
            id_ctrl: Mutex::new(None),
            nsqa: AtomicU16::new(0),
            ncqa: AtomicU16::new(0),
            aer_ctx: Mutex::new(None),
            aer_outstanding: AtomicU32::new(0),
            qpairs: Mutex::new(Vec::new()),
            qid_used: Mutex::new(Vec::new()),
            meta_qids: Mutex::new(std::collections::HashMap::new()),
            parked: Mutex::new(Vec::new()),
            latest_cid: AtomicU16::new(0),
            latest_latency_us: AtomicU32::new(0),
            latest_dw0: AtomicU32::new(0),
            verifiers: arc_swap::ArcSwap::from_pointee(Vec::new()),
            retired_io: Mutex::new((0, 0)),
            iostat_last: Mutex::new((Instant::now(), 0, 0)),
            life: Lifecycle::new(),
            events: Mutex::new(std::collections::HashMap::new()),
        }))
    }

    /// The PCIe function.
    pub fn pci(&self) -> &Arc<dyn PciFunction> {
        &self.pci
    }

    /// CAP as read when the controller was opened.
    pub fn cap(&self) -> Cap {
        self.cap
    }

    /// The command timeouts.
    pub fn timeouts(&self) -> &Arc<Timeouts> {
        &self.timeouts
    }

    /// Reads the 32-bit register at `offset` (a multiple of 4) of BAR0.
    pub fn reg_read32(&self, offset: u32) -> Result<u32> {
        if !offset.is_multiple_of(4) {
            return Err(DriverError::invalid(
                "offset",
                format!("{offset:#x} is not a multiple of 4"),
            ));
        }
        Ok(self.pci.bar_read32(0, offset as u64))
    }

    /// Writes the 32-bit register at `offset` (a multiple of 4) of BAR0.
    pub fn reg_write32(&self, offset: u32, value: u32) -> Result<()> {
        if !offset.is_multiple_of(4) {
            return Err(DriverError::invalid(
                "offset",
                format!("{offset:#x} is not a multiple of 4"),
            ));
        }
        self.pci.bar_write32(0, offset as u64, value);
        Ok(())
    }

    /// CAP.TO in milliseconds (the longest a CSTS.RDY transition may take).
    pub fn ready_timeout(&self) -> Duration {
        Duration::from_millis(self.cap.to().max(1) as u64 * 500)
    }

    /// Waits until CSTS.RDY equals `rdy`, up to CAP.TO; false on timeout, or at once when the
    /// device is gone (CSTS reads all ones).
    pub fn wait_csts(&self, rdy: bool, timeout: Option<Duration>) -> bool {
        let limit = Instant::now() + timeout.unwrap_or(self.ready_timeout());
        loop {
            let csts = self.pci.bar_read32(0, regs::CSTS as u64);
            if csts == u32::MAX {
                return false;
            }
            if (csts & regs::csts::RDY != 0) == rdy {
                return true;
            }
            if Instant::now() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Programs the admin queue (AQA, ASQ, ACQ) with fresh queues of [`ADMIN_QUEUE_ENTRIES`]
    /// entries and enables MSI-X; the controller must be disabled. Commands left on an earlier admin
    /// queue complete with 00/08 through the next `waitdone` (AERs are dropped).
    pub fn init_adminq(&self, lazy_doorbell: bool) -> Result<()> {
        let params = QueueParams {
            qid: 0,
            entries: ADMIN_QUEUE_ENTRIES,
            dstrd: self.cap.dstrd(),
            page_size: 4096,
            lazy_doorbell,
        };
        let mut q = QueuePair::new(self.pci.clone(), params, self.timeouts.clone())?;
        q.set_epoch(self.epoch());
        self.pci.bar_write32(
            0,
            regs::AQA as u64,
            regs::aqa::build(ADMIN_QUEUE_ENTRIES - 1, ADMIN_QUEUE_ENTRIES - 1),
        );
        self.pci.bar_write64(0, regs::ASQ as u64, q.sq_addr());
        self.pci.bar_write64(0, regs::ACQ as u64, q.cq_addr());
        let old = self.admin.lock().replace(q);
        if let Some(mut old) = old {
            self.abandon_admin(&mut old);
        }
        self.deferred
            .lock()
            .retain(|c| c.sqe.opc() != admin::ASYNC_EVENT_REQUEST);
        self.aer_outstanding.store(0, Ordering::Relaxed);
        // Programmed every time: a function level, hot or subsystem reset or a power cycle
        // clears the device's MSI-X table and enable bit.
        let irq = self.pci.clone().msix_enable(2048)?;
        *self.irq.lock() = Some(irq);
        Ok(())
    }

    /// The MSI-X vectors, once the admin queue was initialised.
    pub fn interrupts(&self) -> Option<Arc<dyn Interrupts>> {
        self.irq.lock().clone()
    }

    /// Sends Identify Controller and the active namespace list; fails if the controller reports
    /// no namespace.
    pub fn init_ns(&self) -> Result<()> {
        let (cqe, _) = self.admin_read(commands::identify(0, 1, 0, 0, 0, 0, 0)?, 4096)?;
        if !cqe.status().is_success() {
            return Err(DriverError::Enumerate(format!(
                "identify controller failed: {}",
                cqe.status()
            )));
        }
        if self.nn() == 0 {
            return Err(DriverError::Enumerate(
                "the controller reports no namespace (NN is 0)".into(),
            ));
        }
        Ok(())
    }

    /// Records the number of IO queues from a Get/Set Features Number of Queues dword 0.
    pub fn init_queues(&self, cdw0: u32) {
        self.nsqa
            .store((cdw0 & 0xffff) as u16 + 1, Ordering::Relaxed);
        self.ncqa.store((cdw0 >> 16) as u16 + 1, Ordering::Relaxed);
    }

    /// Number of IO submission queues the controller allocated.
    pub fn num_io_queues(&self) -> u16 {
        self.nsqa
            .load(Ordering::Relaxed)
            .min(self.ncqa.load(Ordering::Relaxed))
    }

    /// The driver's copy of the Identify Controller data (4096 bytes), once identified.
    pub fn id_ctrl(&self) -> Option<Vec<u8>> {
        self.id_ctrl.lock().clone()
    }

    fn id_field(&self, offset: usize, len: usize) -> u64 {
        self.id_ctrl.lock().as_ref().map_or(0, |d| {
            let mut v = [0u8; 8];
            v[..len].copy_from_slice(&d[offset..offset + len]);
            u64::from_le_bytes(v)
        })
    }

    /// NN: number of namespaces (0 before identify).
    pub fn nn(&self) -> u32 {
        self.id_field(516, 4) as u32
    }

    /// AERL: number of concurrent AERs supported, 0-based.
    pub fn aerl(&self) -> u8 {
        self.id_field(259, 1) as u8
    }

    /// Maximum data transfer in bytes: 2^(12 + CAP.MPSMIN) × 2^MDTS, and at most what the driver
    /// builds (2 MiB); MDTS 0 (no limit) gives the driver's limit.
    pub fn mdts(&self) -> usize {
        let mdts = self.id_field(77, 1) as u32;
        if mdts == 0 {
            return DRIVER_MAX_TRANSFER;
        }
        let unit = 1usize << (12 + self.cap.mpsmin() as u32);
        unit.checked_shl(mdts)
            .unwrap_or(usize::MAX)
            .min(DRIVER_MAX_TRANSFER)
    }

    /// The spec's initialisation, as pynvme's default `nvme_init`.
    pub fn init_default(&self, ctx_for_aer: C) -> Result<()> {
        self.pci.bar_write32(0, regs::CC as u64, 0);
        if !self.wait_csts(false, None) {
            return Err(DriverError::Enumerate(
                "csts.rdy timeout after clearing cc.en".into(),
            ));
        }
        self.init_adminq(false)
            .map_err(|e| DriverError::Enumerate(format!("fail to init admin queue: {e}")))?;
        self.pci.bar_write32(0, regs::CC as u64, regs::cc::DEFAULT);
        self.pci
            .bar_write32(0, regs::CC as u64, regs::cc::DEFAULT | regs::cc::EN);
        if !self.wait_csts(true, None) {
            return Err(DriverError::Enumerate(
                "csts.rdy timeout after setting cc.en".into(),
            ));
        }
        if self.init_ns().is_err() {
            std::thread::sleep(Duration::from_secs(1));
            self.init_ns().map_err(|e| {
                DriverError::Enumerate(format!("retry init namespaces failed: {e}"))
            })?;
        }
        let set = commands::set_features(7, 0, 0, 0xfffe_fffe, 0, 0, 0, 0)?;
        self.admin_sync(set, None)?;
        let cqe = self.admin_sync(commands::get_features(7, 0, 0, 0, 0, 0, 0, 0)?, None)?;
        if !cqe.status().is_success() {
            return Err(DriverError::Enumerate(format!(
                "get features number of queues failed: {}",
                cqe.status()
            )));
        }
        self.aer(ctx_for_aer)?;
        if self.state() == State::NeedsInit {
            // Called directly, not as the init function of `initialize` or `reset`.
            self.life.set(State::Ready);
        }
        Ok(())
    }

    /// The data verification state of namespace `nsid`, if a namespace object opened it.
    #[inline]
    pub fn verifier(&self, nsid: u32) -> Option<Arc<crate::verify::NsVerify>> {
        self.verifiers
            .load()
            .iter()
            .find(|v| v.nsid() == nsid)
            .cloned()
    }

    /// The data verification state of namespace `nsid`, created by `make` if there is none:
    /// every namespace object, queue and thread of the process shares it.
    pub fn verifier_or_insert(
        &self,
        nsid: u32,
        make: impl FnOnce() -> crate::verify::NsVerify,
    ) -> Arc<crate::verify::NsVerify> {
        if let Some(v) = self.verifier(nsid) {
            return v;
        }
        let v = Arc::new(make());
        self.verifiers.rcu(|list| {
            let mut l: Vec<_> = list.iter().filter(|x| x.nsid() != nsid).cloned().collect();
            l.push(v.clone());
            l
        });
        self.verifier(nsid).expect("just inserted")
    }

    /// Notes what a completed admin command tells the driver (identify data, queue counts,
    /// media that a format, sanitize or namespace deletion changed).
    fn observe(&self, c: &Completion<AdminCtx<C>>) {
        if !c.cqe.status().is_success() || c.timed_out {
            return;
        }
        if let Some(nsid) = crate::verify::admin_invalidates(&c.sqe) {
            for v in self
                .verifiers
                .load()
                .iter()
                .filter(|v| nsid == u32::MAX || v.nsid() == nsid)
            {
                v.clear();
            }
        }
        match c.sqe.opc() {
            admin::IDENTIFY if c.sqe.cdw10 & 0xff == 1 => {
                if let Some(d) = c.data.as_ref().filter(|d| d.len >= 4096) {
                    *self.id_ctrl.lock() = Some(d.mem.to_vec(d.offset, 4096));
                }
            }
            admin::GET_FEATURES | admin::SET_FEATURES if c.sqe.cdw10 & 0xff == 7 => {
                self.init_queues(c.cqe.dw0)
            }
            _ => {}
        }
    }

    /// Submits an admin command. `data` is the memory it transfers (PRPs or an SGL are built
    /// unless `raw_dptr`, which keeps the SQE's own data pointer). Returns the CID.
    pub fn submit(&self, sqe: Sqe, data: Option<DataRef>, raw_dptr: bool, ctx: C) -> Result<u16> {
        if let Some(d) = &data {
            if d.len > DRIVER_MAX_TRANSFER {
                return Err(DriverError::invalid(
                    "buf",
                    format!(
                        "{} bytes: the driver transfers at most 2 MiB per command",
                        d.len
                    ),
                ));
            }
        }
        let is_aer = sqe.opc() == admin::ASYNC_EVENT_REQUEST;
        let mut g = self.admin.lock();
        let q = g.as_mut().ok_or_else(|| self.not_ready())?;
        let cid = q.submit(sqe, data, raw_dptr, AdminCtx::User(ctx), !is_aer)?;
        if is_aer {
            self.aer_outstanding.fetch_add(1, Ordering::Relaxed);
        }
        self.latest_cid.store(cid, Ordering::Relaxed);
        Ok(cid)
    }

    /// Sends an Asynchronous Event Request; `ctx` is remembered for the AERs the driver re-arms.
    pub fn aer(&self, ctx: C) -> Result<u16> {
        *self.aer_ctx.lock() = Some(ctx.clone());
        self.submit(commands::aer(), None, false, ctx)
    }

    /// Rings the admin SQ doorbell (for lazy doorbells).
    pub fn ring_doorbell(&self) {
        if let Some(q) = self.admin.lock().as_mut() {
            q.ring();
        }
    }

    /// Sends a command and waits for its completion, holding back (for the next `waitdone`) any
    /// other admin completion that arrives meanwhile. Used for the driver's own commands.
    pub fn admin_sync(&self, sqe: Sqe, data: Option<&DmaMemory>) -> Result<Cqe> {
        let data = data.map(|m| DataRef {
            mem: m.clone(),
            offset: 0,
            len: m.len(),
            sgl: false,
        });
        self.admin_sync_ref(sqe, data)
    }

    /// [`Controller::admin_sync`] with an explicit data reference.
    pub fn admin_sync_data(&self, sqe: Sqe, data: DataRef) -> Result<Cqe> {
        self.admin_sync_ref(sqe, Some(data))
    }

    fn admin_sync_ref(&self, sqe: Sqe, data: Option<DataRef>) -> Result<Cqe> {
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        {
            let mut g = self.admin.lock();
            let q = g.as_mut().ok_or_else(|| self.not_ready())?;
            q.submit(sqe, data, false, AdminCtx::Sync(ticket), true)?;
        }
        let mut mine: Option<Cqe> = None;
        let mut spins = 0u32;
        while mine.is_none() {
            if let Some(cqe) = self.sync_done.lock().remove(&ticket) {
                mine = Some(cqe);
                break;
            }
            let mut got = Vec::new();
            {
                let mut g = self.admin.lock();
                let q = g.as_mut().ok_or_else(|| self.not_ready())?;
                q.poll(usize::MAX, &mut |c| got.push(c));
                q.expire(Instant::now(), &mut |c| got.push(c));
            }
            for c in got {
                self.observe(&c);
                match c.ctx {
                    AdminCtx::Sync(t) if t == ticket => {
                        self.note_latest(c.latency_us);
                        mine = Some(c.cqe);
                    }
                    AdminCtx::Sync(t) => {
                        self.sync_done.lock().insert(t, c.cqe);
                    }
                    AdminCtx::User(_) => self.deferred.lock().push(c),
                }
            }
            if mine.is_none() {
                backoff(&mut spins)?;
            }
        }
        Ok(mine.expect("loop ends with the completion"))
    }

    fn note_latest(&self, latency_us: u64) {
        self.latest_latency_us
            .store(latency_us.min(u32::MAX as u64) as u32, Ordering::Relaxed);
    }

    /// CID of the latest admin command submitted.
    pub fn latest_cid(&self) -> u16 {
        self.latest_cid.load(Ordering::Relaxed)
    }

    /// Latency of the latest admin command completed, µs.
    pub fn latest_latency_us(&self) -> u32 {
        self.latest_latency_us.load(Ordering::Relaxed)
    }

    /// Reaps `expected` admin completions (AERs do not count), calling `deliver` for each,
    /// outside any lock (so a callback may submit commands). With `interrupt_enabled`, the admin
    /// CQ is only read after its MSI-X vector (0) fired, as a host driver would. A successful AER
    /// is re-armed after delivery. Returns dword 0 of the latest non-AER completion.
    ///
    /// Ends early with [`DriverError::NothingOutstanding`] when nothing that could complete is outstanding.
    /// A callback's error stops the wait and is returned.
    pub fn waitdone(
        &self,
        expected: usize,
        interrupt_enabled: bool,
        deliver: &mut dyn FnMut(Completion<C>) -> Result<()>,
    ) -> Result<u32> {
        let _guard = WaitGuard::enter(&self.in_wait, 0)?;
        self.waitdone_inner(expected, interrupt_enabled, deliver)
    }

    fn waitdone_inner(
        &self,
        expected: usize,
        interrupt_enabled: bool,
        deliver: &mut dyn FnMut(Completion<C>) -> Result<()>,
    ) -> Result<u32> {
        let mut reaped = 0usize;
        let mut spins = 0u32;
        let irq = if interrupt_enabled {
            self.interrupts()
        } else {
            None
        };
        loop {
            let mut got: Vec<Completion<AdminCtx<C>>> = std::mem::take(&mut *self.deferred.lock());
            let outstanding;
            {
                let mut g = self.admin.lock();
                let q = g.as_mut().ok_or_else(|| self.not_ready())?;
                q.ring();
                let gate_open = irq.as_ref().is_none_or(|i| i.is_set(0));
                if gate_open {
                    if let Some(i) = &irq {
                        i.clear(0);
                    }
                    q.poll(usize::MAX, &mut |c| got.push(c));
                }
                q.expire(Instant::now(), &mut |c| got.push(c));
                outstanding = q.outstanding();
            }
            let progressed = !got.is_empty();
            let mut got = std::collections::VecDeque::from(got);
            while let Some(c) = got.pop_front() {
                self.observe(&c);
                let latency_us = c.latency_us;
                if let AdminCtx::Sync(t) = c.ctx {
                    self.sync_done.lock().insert(t, c.cqe);
                    continue;
                }
                let is_aer = c.sqe.opc() == admin::ASYNC_EVENT_REQUEST;
                let rearm = is_aer && c.cqe.status().is_success() && !c.timed_out;
                if is_aer {
                    self.aer_outstanding.fetch_sub(1, Ordering::Relaxed);
                } else {
                    reaped += 1;
                    self.latest_dw0.store(c.cqe.dw0, Ordering::Relaxed);
                    self.latest_latency_us
                        .store(latency_us.min(u32::MAX as u64) as u32, Ordering::Relaxed);
                }
                self.hand_over(c, rearm, &mut got, deliver)?;
            }
            if reaped >= expected {
                return Ok(self.latest_dw0.load(Ordering::Relaxed));
            }
            let waiting_for =
                outstanding.saturating_sub(self.aer_outstanding.load(Ordering::Relaxed) as usize);
            if !progressed && waiting_for == 0 && self.deferred.lock().is_empty() {
                return Err(DriverError::NothingOutstanding {
                    qid: 0,
                    expected,
                    reaped,
                });
            }
            if !progressed {
                backoff(&mut spins)?;
            } else {
                spins = 0;
            }
        }
    }

    /// Admin commands outstanding (AERs included).
    pub fn outstanding(&self) -> usize {
        self.admin.lock().as_ref().map_or(0, |q| q.outstanding())
    }

    /// Device misbehaviours noticed on the admin queue since the last call.
    pub fn take_anomalies(&self) -> Vec<String> {
        self.admin
            .lock()
            .as_mut()
            .map_or(Vec::new(), |q| q.take_anomalies())
    }

    /// The admin queue's command log, newest first.
    pub fn cmdlog(&self, count: usize, offset: usize) -> Vec<CmdLogEntry> {
        self.admin
            .lock()
            .as_ref()
            .map_or(Vec::new(), |q| q.cmdlog().latest(count, offset))
    }

    /// The command logs of the admin queue and every live IO queue, merged, newest first.
    pub fn cmdlog_merged(&self, count: usize) -> Vec<CmdLogEntry> {
        let mut all = self.cmdlog(count, 0);
        for qp in self.live_qpairs() {
            all.extend(qp.cmdlog(count, 0));
        }
        all.sort_by_key(|e| std::cmp::Reverse(e.submit_ns));
        all.truncate(count);
        all
    }

    pub(crate) fn register_qpair(&self, qp: Arc<dyn crate::qpair::IoQueue>) {
        let mut v = self.qpairs.lock();
        v.retain(|w| w.strong_count() > 0);
        v.push(Arc::downgrade(&qp));
    }

    /// The IO queue pairs still referenced by someone.
    pub fn live_qpairs(&self) -> Vec<Arc<dyn crate::qpair::IoQueue>> {
        self.qpairs
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Takes the lowest free IO queue id (or `want` if given and free), up to the allocated count.
    pub(crate) fn alloc_qid(&self, want: Option<u16>) -> Result<u16> {
        let max = self.num_io_queues();
        let mut used = self.qid_used.lock();
        used.resize(max as usize + 1, false);
        let pick = match want {
            Some(q) if q >= 1 && q <= max && !used[q as usize] => Some(q),
            Some(q) => {
                return Err(DriverError::QpairCreation(format!(
                    "qpair create fail: sqid {q} is not free or not in 1..={max}"
                )))
            }
            None => (1..=max).find(|&q| !used[q as usize]),
        };
        let q = pick.ok_or_else(|| {
            DriverError::QpairCreation(format!("qpair create fail: all {max} IO queues are in use"))
        })?;
        used[q as usize] = true;
        Ok(q)
    }

    pub(crate) fn free_qid(&self, qid: u16) {
        if let Some(u) = self.qid_used.lock().get_mut(qid as usize) {
            *u = false;
        }
    }

    /// Reserves IO queue id `qid` for a metamode queue, so that no [`crate::qpair::Qpair`] takes
    /// it; an SQ and a CQ of the same id share one reservation. Ids outside the allocated range
    /// reserve nothing (the device judges them): returns whether `qid` was reserved.
    pub(crate) fn reserve_meta_qid(&self, qid: u16) -> Result<bool> {
        if qid == 0 || qid > self.num_io_queues() {
            return Ok(false);
        }
        let mut meta = self.meta_qids.lock();
        if let Some(n) = meta.get_mut(&qid) {
            *n += 1;
            return Ok(true);
        }
        self.alloc_qid(Some(qid)).map_err(|_| {
            DriverError::QpairCreation(format!(
                "qid {qid} is used by a Qpair of this controller; metamode queues need another id"
            ))
        })?;
        meta.insert(qid, 1);
        Ok(true)
    }

    /// Gives back one metamode reservation of `qid` (see [`Controller::reserve_meta_qid`]).
    pub(crate) fn release_meta_qid(&self, qid: u16) {
        let mut meta = self.meta_qids.lock();
        if let Some(n) = meta.get_mut(&qid) {
            *n -= 1;
            if *n == 0 {
                meta.remove(&qid);
                self.free_qid(qid);
            }
        }
    }

    /// Keeps memory the device may still use (a metamode queue dropped without deletion) until the
    /// next controller reset.
    pub(crate) fn park_until_reset(&self, mem: impl IntoIterator<Item = DmaMemory>) {
        self.parked.lock().extend(mem);
    }

    /// Gives a script's admin completion to `deliver`, then sends a new AER when `rearm` (a
    /// successful AER). If the callback fails, the rest of the batch waits for the next
    /// `waitdone`.
    fn hand_over(
        &self,
        c: Completion<AdminCtx<C>>,
        rearm: bool,
        rest: &mut std::collections::VecDeque<Completion<AdminCtx<C>>>,
        deliver: &mut dyn FnMut(Completion<C>) -> Result<()>,
    ) -> Result<()> {
        let AdminCtx::User(ctx) = c.ctx else {
            return Ok(());
        };
        let user = Completion {
            cqe: c.cqe,
            sqe: c.sqe,
            ctx,
            data: c.data,
            latency_us: c.latency_us,
            timed_out: c.timed_out,
        };
        if let Err(e) = deliver(user) {
            self.deferred.lock().extend(rest.drain(..));
            return Err(e);
        }
        if rearm {
            let ctx = self.aer_ctx.lock().clone();
            if let Some(ctx) = ctx {
                self.submit(commands::aer(), None, false, ctx)?;
            }
        }
        Ok(())
    }

    /// Delivers the AER completions waiting on the admin queue, or arriving within `wait` (it
    /// returns at the first), re-arming each successful one; other completions stay for the next
    /// `waitdone`. Does nothing from inside a `waitdone` callback or without an outstanding AER.
    /// Metamode doorbell writes use it, so that the event a device raises for an invalid doorbell
    /// value reaches the script at the write, as the PyNVMe3 guide shows.
    pub fn reap_async_events(
        &self,
        wait: Duration,
        deliver: &mut dyn FnMut(Completion<C>) -> Result<()>,
    ) -> Result<usize> {
        let Ok(_guard) = WaitGuard::enter(&self.in_wait, 0) else {
            return Ok(0);
        };
        let limit = Instant::now() + wait;
        let mut spins = 0u32;
        let mut delivered = 0;
        loop {
            let mut got: Vec<Completion<AdminCtx<C>>> = Vec::new();
            {
                let mut deferred = self.deferred.lock();
                let (aers, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut *deferred)
                    .into_iter()
                    .partition(|c| c.sqe.opc() == admin::ASYNC_EVENT_REQUEST);
                *deferred = rest;
                got.extend(aers);
            }
            if got.is_empty() && self.aer_outstanding.load(Ordering::Relaxed) == 0 {
                return Ok(delivered);
            }
            if let Some(q) = self.admin.lock().as_mut() {
                q.poll(usize::MAX, &mut |c| got.push(c));
            }
            let mut got = std::collections::VecDeque::from(got);
            while let Some(c) = got.pop_front() {
                self.observe(&c);
                if let AdminCtx::Sync(t) = c.ctx {
                    self.sync_done.lock().insert(t, c.cqe);
                    continue;
                }
                if c.sqe.opc() != admin::ASYNC_EVENT_REQUEST {
                    self.deferred.lock().push(c);
                    continue;
                }
                self.aer_outstanding.fetch_sub(1, Ordering::Relaxed);
                let rearm = c.cqe.status().is_success() && !c.timed_out;
                delivered += 1;
                self.hand_over(c, rearm, &mut got, deliver)?;
            }
            if delivered > 0 || Instant::now() >= limit {
                return Ok(delivered);
            }
            backoff(&mut spins)?;
        }
    }

    /// Tears every queue down on the host side, for a lifecycle event: each IO queue pair and
    /// the admin queue end their outstanding commands with 00/08 (an IO command through its own
    /// queue's next `waitdone`/`poll`, a script's admin command through the next admin
    /// `waitdone`, the driver's own through its waiter; outstanding AERs are dropped), queue ids
    /// are freed and timeouts return to their defaults. Nothing is sent to the device.
    pub(crate) fn teardown(&self) {
        for qp in self.live_qpairs() {
            qp.abandon();
        }
        let mut g = self.admin.lock();
        if let Some(q) = g.as_mut() {
            self.abandon_admin(q);
        }
        drop(g);
        self.deferred
            .lock()
            .retain(|c| c.sqe.opc() != admin::ASYNC_EVENT_REQUEST);
        self.aer_outstanding.store(0, Ordering::Relaxed);
        self.timeouts.restore();
        self.qid_used.lock().clear();
        self.meta_qids.lock().clear();
    }

    /// Ends the commands of admin queue `q` with 00/08: the driver's own go to their waiters,
    /// a script's to the next `waitdone`, AERs are dropped.
    fn abandon_admin(&self, q: &mut QueuePair<AdminCtx<C>>) {
        let mut user = Vec::new();
        q.abandon(
            Status::new(sct::GENERIC, sc::ABORTED_SQ_DELETION),
            &mut |c| match c.ctx {
                AdminCtx::Sync(t) => {
                    self.sync_done.lock().insert(t, c.cqe);
                }
                AdminCtx::User(_) if c.sqe.opc() == admin::ASYNC_EVENT_REQUEST => {}
                AdminCtx::User(_) => user.push(c),
            },
        );
        self.deferred.lock().extend(user);
    }

    /// Frees the memory of metamode queues kept until the controller was disabled.
    pub(crate) fn clear_parked(&self) {
        self.parked.lock().clear();
    }

    pub(crate) fn life(&self) -> &Lifecycle {
        &self.life
    }

    /// Counts one lifecycle event.
    pub(crate) fn event(&self, ev: Event) {
        *self.events.lock().entry(ev).or_insert(0) += 1;
    }

    /// How many lifecycle events of each kind happened to this controller.
    pub fn events(&self) -> std::collections::HashMap<Event, u64> {
        self.events.lock().clone()
    }

    /// The error for a request that needs the admin queue when there is none.
    fn not_ready(&self) -> DriverError {
        DriverError::NotReady {
            state: self.state(),
        }
    }

    /// Reads CSTS; all ones means the device is gone.
    pub fn csts(&self) -> u32 {
        self.pci.bar_read32(0, regs::CSTS as u64)
    }
}

thread_local! {
    /// Whether this thread is inside a `waitdone` (of any queue): its callbacks run there.
    static IN_WAITDONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks a `waitdone` in progress on one queue and on this thread; refuses re-entry from a
/// completion callback (of any queue, as pynvme does) and a second waiter on the same queue.
pub(crate) struct WaitGuard<'a> {
    queue: &'a AtomicBool,
}

impl<'a> WaitGuard<'a> {
    pub(crate) fn enter(queue: &'a AtomicBool, qid: u16) -> Result<WaitGuard<'a>> {
        if IN_WAITDONE.get() || queue.swap(true, Ordering::Acquire) {
            return Err(DriverError::Reentry(qid));
        }
        IN_WAITDONE.set(true);
        Ok(WaitGuard { queue })
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.queue.store(false, Ordering::Release);
        IN_WAITDONE.set(false);
    }
}

/// Waiting without burning a core forever: spin briefly, then yield, then sleep a little.
pub(crate) fn backoff(spins: &mut u32) -> Result<()> {
    *spins = spins.wrapping_add(1);
    if *spins < 2000 {
        std::hint::spin_loop();
    } else if *spins < 4000 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(50));
        // About every 100 ms of sleeping, ask whether the waiter should give up (Ctrl-C).
        if (*spins - 4000) % 2000 == 1999 && !interrupt_check() {
            return Err(DriverError::Interrupted);
        }
    }
    Ok(())
}

thread_local! {
    /// The check a long wait on this thread consults, installed by [`with_interrupt_check`].
    static INTERRUPT_CHECK: std::cell::RefCell<Option<Box<dyn FnMut() -> bool>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` with `check` consulted about every 100 ms while a wait of this thread sleeps: when it
/// returns false the wait ends with [`DriverError::Interrupted`]. The Python face checks for
/// Ctrl-C there, so a script can be stopped while it waits for a slow or silent device.
pub fn with_interrupt_check<R>(check: impl FnMut() -> bool + 'static, f: impl FnOnce() -> R) -> R {
    let old = INTERRUPT_CHECK.with(|c| c.borrow_mut().replace(Box::new(check)));
    let r = f();
    INTERRUPT_CHECK.with(|c| *c.borrow_mut() = old);
    r
}

fn interrupt_check() -> bool {
    INTERRUPT_CHECK.with(|c| c.borrow_mut().as_mut().is_none_or(|f| f()))
}

impl<C: Clone + Send + 'static> Controller<C> {
    /// Shutdown notification: sets CC.SHN (normal, or abrupt) and waits up to `timeout` for
    /// CSTS.SHST to report shutdown complete.
    pub fn shutdown_notify(&self, abrupt: bool, timeout: Duration) -> Result<()> {
        let cc = self.pci.bar_read32(0, regs::CC as u64);
        let shn: u32 = if abrupt { 2 } else { 1 };
        self.pci
            .bar_write32(0, regs::CC as u64, (cc & !(3 << 14)) | shn << 14);
        let limit = Instant::now() + timeout;
        loop {
            let csts = self.csts();
            if csts != u32::MAX && regs::csts::shst(csts) == 2 {
                return Ok(());
            }
            if Instant::now() > limit {
                return Err(DriverError::ShutdownTimeout("csts.shst timeout".into()));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Throughput since the previous [`Controller::iostat`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IoStat {
    /// Bytes read and written per second.
    pub bytes_per_sec: f64,
    /// Read and write commands completed per second.
    pub ios_per_sec: f64,
}

impl<C: Clone + Send + 'static> Controller<C> {
    /// Bytes and commands completed by reads and writes on every IO queue pair of this controller,
    /// including deleted ones, since it was created.
    pub fn io_totals(&self) -> (u64, u64) {
        let (mut bytes, mut ios) = *self.retired_io.lock();
        for qp in self.live_qpairs() {
            let (b, n) = qp.io_counts();
            bytes += b;
            ios += n;
        }
        (bytes, ios)
    }

    pub(crate) fn retire_io(&self, bytes: u64, ios: u64) {
        let mut r = self.retired_io.lock();
        r.0 += bytes;
        r.1 += ios;
    }

    /// Read/write throughput since the previous call (since creation for the first).
    pub fn iostat(&self) -> IoStat {
        let now = Instant::now();
        let (bytes, ios) = self.io_totals();
        let mut last = self.iostat_last.lock();
        let (t0, b0, n0) = *last;
        *last = (now, bytes, ios);
        let secs = now.duration_since(t0).as_secs_f64().max(1e-9);
        IoStat {
            bytes_per_sec: (bytes - b0) as f64 / secs,
            ios_per_sec: (ios - n0) as f64 / secs,
        }
    }

    /// Namespace Management create: a namespace of `nsze` blocks (`ncap` allocated, LBA format
    /// `flbas`, protection `dps`, sharing `nmic`). Returns the completion (dword 0: the new nsid).
    pub fn ns_create(&self, nsze: u64, ncap: u64, flbas: u8, dps: u8, nmic: u8) -> Result<Cqe> {
        let mem = self.pci.dma_alloc(4096)?;
        mem.write(0, &nsze.to_le_bytes());
        mem.write(8, &ncap.to_le_bytes());
        mem.write(26, &[flbas]);
        mem.write(29, &[dps, nmic]);
        self.admin_sync(commands::ns_management(0, 0, 0)?, Some(&mem))
    }

    /// Namespace Management delete of `nsid` (0xffffffff: all).
    pub fn ns_delete(&self, nsid: u32) -> Result<Cqe> {
        self.admin_sync(commands::ns_management(1, nsid, 0)?, None)
    }

    /// Namespace Attachment: attach (`detach` false) or detach `nsid` to/from the controllers
    /// `cntlids` (at most 2047).
    pub fn ns_attachment(&self, nsid: u32, detach: bool, cntlids: &[u16]) -> Result<Cqe> {
        if cntlids.len() > 2047 {
            return Err(DriverError::invalid(
                "cntlids",
                format!("{} controllers: a list holds at most 2047", cntlids.len()),
            ));
        }
        let mem = self.pci.dma_alloc(4096)?;
        mem.write(0, &(cntlids.len() as u16).to_le_bytes());
        for (i, c) in cntlids.iter().enumerate() {
            mem.write(2 + 2 * i, &c.to_le_bytes());
        }
        self.admin_sync(
            commands::ns_attachment(u32::from(detach), nsid)?,
            Some(&mem),
        )
    }
}

impl<C: Clone + Send + 'static> Controller<C> {
    /// A synchronous admin command that returns `len` bytes of data: the completion and the
    /// memory the data came into.
    pub fn admin_read(&self, sqe: Sqe, len: usize) -> Result<(Cqe, DmaMemory)> {
        let mem = self.pci.dma_alloc(len)?;
        let cqe = self.admin_sync_data(
            sqe,
            DataRef {
                mem: mem.clone(),
                offset: 0,
                len,
                sgl: false,
            },
        )?;
        Ok((cqe, mem))
    }

    /// Whether admin opcode `opcode` (0..=255), or IO opcode `opcode - 256`, is supported, from
    /// CSUPP in the Commands Supported and Effects log page; with the log page's completion.
    pub fn supports(&self, opcode: u32) -> Result<(Cqe, bool)> {
        if opcode >= 512 {
            return Err(DriverError::invalid(
                "opcode",
                format!("{opcode} is not 0..=511 (256 + n for IO opcode n)"),
            ));
        }
        let (cqe, log) = self.admin_read(commands::get_log_page(5, 4096, 0, 0, 0)?, 4096)?;
        let effects = log.load_u32(opcode as usize * 4);
        Ok((cqe, cqe.status().is_success() && effects & 1 != 0))
    }

    /// The index of namespace `nsid`'s LBA format with this data and metadata size, if any, from
    /// Identify Namespace; with the identify completion.
    pub fn lba_format_of(
        &self,
        nsid: u32,
        data_size: usize,
        meta_size: usize,
    ) -> Result<(Cqe, Option<usize>)> {
        use zerocopy::FromBytes;
        let (cqe, data) = self.admin_read(commands::identify(nsid, 0, 0, 0, 0, 0, 0)?, 4096)?;
        let id = data.with_bytes(0, 4096, |b| {
            nvme_spec::identify::IdentifyNamespace::read_from_bytes(b).expect("4096 bytes")
        });
        let found = (0..=id.nlbaf as usize).find(|&i| {
            let f = id.lbaf(i);
            f.lbads >= 9 && f.data_size() as usize == data_size && f.ms as usize == meta_size
        });
        Ok((cqe, found.filter(|_| cqe.status().is_success())))
    }

    /// The Timestamp feature: milliseconds since the epoch as the controller counts them; with
    /// the Get Features completion.
    pub fn timestamp(&self) -> Result<(Cqe, u64)> {
        let (cqe, data) = self.admin_read(commands::get_features(0x0e, 0, 0, 0, 0, 0, 0, 0)?, 8)?;
        Ok((cqe, data.load_u64(0) & 0xffff_ffff_ffff))
    }

    /// Firmware Image Download of `image` in 4 KiB pieces, then Firmware Commit to `slot` with
    /// `action`. Returns the first failing completion, or the commit's.
    pub fn download_firmware(&self, image: &[u8], slot: u32, action: u32) -> Result<Cqe> {
        for (i, chunk) in image.chunks(4096).enumerate() {
            let len = chunk.len().next_multiple_of(4);
            let mem = self.pci.dma_alloc(len)?;
            mem.write(0, chunk);
            let (sqe, _) = commands::fw_download(len, (i * 4096) as u64)?;
            let cqe = self.admin_sync_data(
                sqe,
                DataRef {
                    mem,
                    offset: 0,
                    len,
                    sgl: false,
                },
            )?;
            if !cqe.status().is_success() {
                return Ok(cqe);
            }
        }
        self.admin_sync(commands::fw_commit(slot, action, 0)?, None)
    }
}
