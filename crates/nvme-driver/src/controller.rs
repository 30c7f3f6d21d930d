//! The controller: registers, initialisation and the state every part shares. Each part has its
//! own file:
//!
//! - this file: the [`Controller`] and its locks, registers, the spec's initialisation steps,
//!   what the driver knows of the controller (identify data, queue counts, MDTS), the host-side
//!   teardown a lifecycle event starts with;
//! - `adminq.rs`: the admin queue, synchronous commands, `waitdone`, AERs;
//! - `queues.rs`: the registry of IO queue pairs, queue ids, IO statistics;
//! - `helpers.rs`: synchronous admin helpers (namespace management, firmware);
//! - `wait.rs`: re-entry guard, backoff and Ctrl-C check of every wait;
//! - [`crate::lifecycle`]: state, epoch and the operations (reset, FLR, power ...).
//!
//! **Lock order.** A thread holding one of these locks takes only locks further down, never one
//! above:
//!
//! 1. `Lifecycle::serial` (re-entrant: one whole lifecycle operation at a time), then
//!    `Lifecycle::ops` (serialises lifecycle steps with queue pair creation and deletion);
//! 2. `Controller::qpairs` (the registry; released before any queue is touched);
//! 3. a queue pair's `Qpair::inner`, then its `leftover`, then its `findings`;
//! 4. `Controller::admin` (the admin queue);
//! 5. leaves, held alone and briefly: `deferred`, `aborted`, `sync_done`, `aer_ctx`, `irq`, `id_ctrl`,
//!    `qid_used`, `meta_qids`, `parked`, `retired_io`, `iostat_last`, `events`, and the
//!    lifecycle's `state` and `init_thread`.
//!
//! No lock is held while a completion is delivered to its submitter (a callback may submit), nor
//! while the init function of a reset runs.
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

mod adminq;
mod helpers;
mod queues;
mod wait;

pub use queues::IoStat;
pub use wait::with_interrupt_check;
pub(crate) use wait::{backoff, WaitGuard};

use crate::commands;
use crate::error::{DriverError, Result};
use crate::lifecycle::{Event, Lifecycle, State};
use crate::queue::{Completion, QueuePair, QueueParams, Timeouts};
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

/// pynvme's warning for a failing status, "ERROR status: SCT/SC" (`None` for success): the one
/// place the text is made.
pub fn status_warning(st: Status) -> Option<String> {
    (!st.is_success()).then(|| format!("ERROR status: {st}"))
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
        w.after.extend(status_warning(st));
    }
    w
}

/// An NVMe controller behind a PCIe function.
///
/// Its mutexes are taken in the order written in the module documentation ([`crate::controller`]):
/// `qpairs` before any queue pair's lock, a queue pair's lock before `admin`, and every other
/// mutex alone; the lifecycle's `ops` lock comes before all of them.
pub struct Controller<C: Clone + Send + 'static> {
    pci: Arc<dyn PciFunction>,
    cap: Cap,
    timeouts: Arc<Timeouts>,
    admin: Mutex<Option<QueuePair<AdminCtx<C>>>>,
    deferred: Mutex<Vec<Completion<AdminCtx<C>>>>,
    /// A script's admin commands a lifecycle event ended with 00/08, delivered by
    /// [`Controller::deliver_aborted`] (a controller reset, after its init function).
    aborted: Mutex<Vec<Completion<AdminCtx<C>>>>,
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
            return Err(DriverError::enumerate(
                "fail to create the controller: CAP reads all ones",
                None,
            ));
        }
        Ok(Arc::new(Controller {
            pci,
            cap,
            timeouts: Arc::new(Timeouts::default()),
            admin: Mutex::new(None),
            deferred: Mutex::new(Vec::new()),
            aborted: Mutex::new(Vec::new()),
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

    /// Reads the 32-bit register at `offset` like [`Controller::reg_read32`], and fails with
    /// [`DriverError::DeviceGone`] when it reads all ones (the device does not respond).
    pub fn reg_read32_present(&self, offset: u32) -> Result<u32> {
        let v = self.reg_read32(offset)?;
        if v == u32::MAX {
            return Err(DriverError::DeviceGone {
                during: "register read",
                register: offset,
            });
        }
        Ok(v)
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
    /// entries and enables MSI-X; the controller must be disabled. Commands left on an earlier
    /// admin queue end with 00/08 as in a teardown.
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
        self.deferred
            .lock()
            .retain(|c| c.sqe.opc() != admin::ASYNC_EVENT_REQUEST);
        if let Some(mut old) = old {
            // Normally disabled by now; if not, the device may still use the old queue.
            let held = self.abandon_admin(&mut old);
            self.park_until_reset(held.into_iter().chain(old.memory_in_use()));
        }
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
            return Err(DriverError::enumerate(
                "init namespaces",
                Some(DriverError::CommandFailed {
                    what: "identify controller",
                    status: cqe.status(),
                }),
            ));
        }
        if self.nn() == 0 {
            return Err(DriverError::enumerate(
                "the controller reports no namespace (NN is 0)",
                None,
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

    /// CNTLID: this controller's identifier (0 before identify).
    pub fn cntlid(&self) -> u16 {
        self.id_field(78, 2) as u16
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

    /// The spec's initialisation, as pynvme's default `nvme_init`. Called directly (not as the
    /// init function of [`Controller::initialize`] or [`Controller::reset`]) on a controller that
    /// needs it, it also re-creates the queue pairs an event tore down and makes it ready.
    pub fn init_default(&self, ctx_for_aer: C) -> Result<()> {
        self.pci.bar_write32(0, regs::CC as u64, 0);
        if !self.wait_csts(false, None) {
            return Err(DriverError::enumerate(
                "csts.rdy timeout after clearing cc.en",
                None,
            ));
        }
        self.init_adminq(false)
            .map_err(|e| DriverError::enumerate("fail to init admin queue", Some(e)))?;
        self.pci.bar_write32(0, regs::CC as u64, regs::cc::DEFAULT);
        self.pci
            .bar_write32(0, regs::CC as u64, regs::cc::DEFAULT | regs::cc::EN);
        if !self.wait_csts(true, None) {
            return Err(DriverError::enumerate(
                "csts.rdy timeout after setting cc.en",
                None,
            ));
        }
        if self.init_ns().is_err() {
            std::thread::sleep(Duration::from_secs(1));
            self.init_ns()
                .map_err(|e| DriverError::enumerate("retry init namespaces failed", Some(e)))?;
        }
        let set = commands::set_features(7, 0, 0, 0xfffe_fffe, 0, 0, 0, 0)?;
        self.admin_sync(set, None)?;
        let cqe = self.admin_sync(commands::get_features(7, 0, 0, 0, 0, 0, 0, 0)?, None)?;
        if !cqe.status().is_success() {
            return Err(DriverError::enumerate(
                "init queues",
                Some(DriverError::CommandFailed {
                    what: "get features number of queues",
                    status: cqe.status(),
                }),
            ));
        }
        self.aer(ctx_for_aer)?;
        if self.state() == State::NeedsInit {
            // Called directly, not as the init function of `initialize` or `reset`: what a
            // reset does next, the queue pairs an event tore down are created again.
            self.reset_end()?;
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
        self.set_verifier(make())
    }

    /// A flush of namespace `nsid` (0xffffffff: all) submitted at `since` completed (or a
    /// normal shutdown begun then): the writes completed before it are durable.
    pub(crate) fn flushed_before(&self, nsid: u32, since: Instant) {
        for v in self.verifiers.load().iter() {
            if nsid == u32::MAX || v.nsid() == nsid {
                v.flushed_before(since);
            }
        }
    }

    /// The device lost power without a completed shutdown: what was not durable may be lost
    /// (see [`crate::verify::NsVerify::power_lost`]).
    pub(crate) fn power_lost(&self) {
        for v in self.verifiers.load().iter() {
            v.power_lost();
        }
    }

    /// Makes `v` the data verification state of its namespace, replacing any other: commands
    /// submitted from now on use it.
    pub fn set_verifier(&self, v: crate::verify::NsVerify) -> Arc<crate::verify::NsVerify> {
        let (nsid, v) = (v.nsid(), Arc::new(v));
        self.verifiers.rcu(|list| {
            let mut l: Vec<_> = list.iter().filter(|x| x.nsid() != nsid).cloned().collect();
            l.push(v.clone());
            l
        });
        v
    }

    /// Tears every queue down on the host side, for a lifecycle event: each IO queue pair ends
    /// its outstanding commands with 00/08 (each through its own queue's next `waitdone`/`poll`);
    /// on the admin queue, the driver's own commands end with 00/08 for their waiters, a
    /// script's commands end with 00/08, delivered by the controller reset that follows
    /// ([`Controller::deliver_aborted`]; never counted by a `waitdone`, so an init function's
    /// own waits are not fooled), and its AERs end silently (as an AER aborted by SQ deletion does in pynvme:
    /// no callback, no warning; the init function sends new ones). Queue ids are freed and
    /// timeouts return to their defaults. Nothing is sent to the device.
    ///
    /// The memory the device may still reach (the data of the commands it was processing) is
    /// kept until the controller is disabled: the caller disables it, then [`Self::clear_parked`].
    pub(crate) fn teardown(&self) {
        for qp in self.live_qpairs() {
            let held = qp.abandon();
            self.park_until_reset(held);
        }
        // AERs reaped but not delivered belong to the torn-down queue (a new one is sent by the
        // init function): delivering one would re-arm it on top of those.
        self.deferred
            .lock()
            .retain(|c| c.sqe.opc() != admin::ASYNC_EVENT_REQUEST);
        let mut g = self.admin.lock();
        if let Some(q) = g.as_mut() {
            let held = self.abandon_admin(q);
            self.park_until_reset(held);
        }
        drop(g);
        self.aer_outstanding.store(0, Ordering::Relaxed);
        self.timeouts.restore();
        self.qid_used.lock().clear();
        self.meta_qids.lock().clear();
    }

    /// Ends the commands of admin queue `q` with 00/08: the driver's own go to their waiters, a
    /// script's wait for [`Controller::deliver_aborted`], AERs end silently. Returns the memory the
    /// device may still reach.
    fn abandon_admin(&self, q: &mut QueuePair<AdminCtx<C>>) -> Vec<DmaMemory> {
        q.abandon(
            Status::new(sct::GENERIC, sc::ABORTED_SQ_DELETION),
            &mut |c| match c.ctx {
                AdminCtx::Sync(t) => {
                    self.sync_done.lock().insert(t, c.cqe);
                }
                AdminCtx::User(_) if c.sqe.opc() == admin::ASYNC_EVENT_REQUEST => {}
                AdminCtx::User(_) => self.aborted.lock().push(c),
            },
        )
    }

    /// Frees the memory kept until the controller was disabled: of torn-down commands, of queue
    /// pairs dropped undeleted, of metamode queues dropped while existing on the device.
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

impl<C: Clone + Send + 'static> Controller<C> {
    /// Shutdown notification: sets CC.SHN (normal, or abrupt) and waits up to `timeout` for
    /// CSTS.SHST to report shutdown complete.
    pub fn shutdown_notify(&self, abrupt: bool, timeout: Duration) -> Result<()> {
        let cc = self.pci.bar_read32(0, regs::CC as u64);
        let shn: u32 = if abrupt { 2 } else { 1 };
        let begun = Instant::now();
        self.pci
            .bar_write32(0, regs::CC as u64, (cc & !(3 << 14)) | shn << 14);
        let limit = Instant::now() + timeout;
        loop {
            let csts = self.csts();
            if csts != u32::MAX && regs::csts::shst(csts) == 2 {
                if !abrupt {
                    // A normal shutdown makes what the write cache held durable (NVMe 2.0 base
                    // 3.6.2); writes completed after it began may not be.
                    self.flushed_before(u32::MAX, begun);
                }
                return Ok(());
            }
            if Instant::now() > limit {
                return Err(DriverError::ShutdownTimeout { waited: timeout });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqe(opc: u8) -> Sqe {
        Sqe {
            cdw0: opc as u32,
            ..Default::default()
        }
    }

    fn cqe(sct: u8, sc: u8, dw0: u32) -> Cqe {
        Cqe {
            dw0,
            status: Status::new(sct, sc).status1(true),
            ..Default::default()
        }
    }

    #[test]
    fn warnings_follow_pynvme_texts_and_order() {
        let ok = completion_warnings(1, &sqe(2), &cqe(0, 0, 0), false);
        assert_eq!(ok, Warnings::default());
        let err = completion_warnings(1, &sqe(2), &cqe(0, 0x80, 0), false);
        assert_eq!(err.after, vec!["ERROR status: 00/80".to_string()]);
        // A timeout warns before the callback, its all-ones status after.
        let to = completion_warnings(3, &sqe(2), &cqe(7, 0xff, u32::MAX), true);
        assert_eq!(to.before.len(), 1);
        assert!(
            to.before[0].starts_with("drive timeout: qpair: 3, cid: "),
            "{to:?}"
        );
        assert_eq!(to.after, vec!["ERROR status: 07/ff".to_string()]);
        // An AER: a notification when it succeeds, nothing when the host aborted it.
        let aer = sqe(admin::ASYNC_EVENT_REQUEST);
        let note = completion_warnings(0, &aer, &cqe(0, 0, 0x10002), false);
        assert_eq!(
            note.after,
            vec!["AER notification is triggered: 0x10002".to_string()]
        );
        let aborted = completion_warnings(0, &aer, &cqe(0, 8, 0), false);
        assert_eq!(aborted, Warnings::default());
        // The same status on another admin command is an error.
        let other = completion_warnings(0, &sqe(0x0a), &cqe(0, 8, 0), false);
        assert_eq!(other.after, vec!["ERROR status: 00/08".to_string()]);
    }

    fn controller() -> Arc<Controller<Option<u32>>> {
        let ctrl = Controller::new(nvme_pci::open("sim://").unwrap()).unwrap();
        ctrl.init_default(None).unwrap();
        ctrl
    }

    #[test]
    fn queue_ids_are_taken_once_and_free_again() {
        let ctrl = controller();
        let max = ctrl.num_io_queues();
        assert!(max >= 2);
        assert_eq!(ctrl.alloc_qid(Some(2)).unwrap(), 2);
        assert!(matches!(
            ctrl.alloc_qid(Some(2)),
            Err(DriverError::QueueIdUnavailable { want: Some(2), .. })
        ));
        assert!(matches!(
            ctrl.alloc_qid(Some(max + 1)),
            Err(DriverError::QueueIdUnavailable { .. })
        ));
        // Without a wish, the lowest free id.
        assert_eq!(ctrl.alloc_qid(None).unwrap(), 1);
        ctrl.free_qid(2);
        assert_eq!(ctrl.alloc_qid(None).unwrap(), 2);
        for _ in 3..=max {
            ctrl.alloc_qid(None).unwrap();
        }
        assert!(matches!(
            ctrl.alloc_qid(None),
            Err(DriverError::QueueIdUnavailable { want: None, .. })
        ));
        // A teardown frees them all.
        ctrl.teardown();
        assert_eq!(ctrl.alloc_qid(None).unwrap(), 1);
    }

    #[test]
    fn a_teardown_keeps_a_scripts_admin_command_for_delivery_and_ends_aers_silently() {
        let ctrl = controller();
        // Never rung: the device does not see them, the host still owns them.
        ctrl.submit(sqe(0x0a), None, false, Some(1)).unwrap();
        ctrl.aer(Some(2)).unwrap();
        ctrl.teardown();
        let mut got = Vec::new();
        let mut take = |c: Completion<Option<u32>>| {
            got.push((c.ctx, c.cqe.status()));
            Ok(())
        };
        assert_eq!(ctrl.deliver_aborted(&mut take).unwrap(), 1);
        assert_eq!(ctrl.deliver_aborted(&mut take).unwrap(), 0);
        assert_eq!(got, vec![(Some(1), Status::new(0, 8))]);
        // Nothing of them is left for a waitdone.
        assert!(matches!(
            ctrl.waitdone(1, false, &mut |_| Ok(())),
            Err(DriverError::NothingOutstanding { reaped: 0, .. })
        ));
    }
}
