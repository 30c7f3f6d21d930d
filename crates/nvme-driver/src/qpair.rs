//! IO queue pairs: one IO CQ and one IO SQ with the same identifier, created and deleted through
//! the admin queue, with data verification in the path of every command (see [`crate::verify`]).
//!
//! Submission: a write is stamped (when asked) and the digests of the blocks it sends are taken,
//! then its LBAs are locked; a command whose LBAs are held by another outstanding command waits
//! in order, outside the SQ, and enters it as soon as they are free (or is ended as timed out
//! after the command timeout). Completion: a read is checked (a miscompare turns its status into
//! 07/81), the table is updated, the locks released.

use crate::cmdlog::CmdLogEntry;
use crate::commands;
use crate::controller::{backoff, Controller, WaitGuard};
use crate::error::{DriverError, Result};
use crate::queue::{Completion, DataRef, QueuePair, QueueParams, TIMEOUT_STATUS};
use crate::verify::{self, Miscompare, NsVerify};
use nvme_spec::cmd::nvm;
use nvme_spec::status::{sc, sct};
use nvme_spec::{Cqe, Sqe, Status};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How an IO queue pair is created.
#[derive(Clone, Copy, Debug)]
pub struct QpairConfig {
    /// Entries of the SQ and the CQ; at most `depth - 1` commands are outstanding.
    pub depth: u16,
    /// SQ priority class for weighted round robin (0 urgent .. 3 low).
    pub prio: u8,
    /// Interrupts enabled on the CQ.
    pub ien: bool,
    /// Interrupt vector; 0xffff lets the driver choose (the queue id modulo the vectors).
    pub iv: u16,
    /// The queue id to use; `None` takes the lowest free one.
    pub sqid: Option<u16>,
    /// Ring the SQ doorbell only in `waitdone`.
    pub lazy_doorbell: bool,
}

impl Default for QpairConfig {
    fn default() -> Self {
        QpairConfig {
            depth: 64,
            prio: 0,
            ien: true,
            iv: 0xffff,
            sqid: None,
            lazy_doorbell: false,
        }
    }
}

/// The LBAs an IO command holds locked, the namespace they belong to, and for a write what it
/// sends (taken at submit).
pub struct Verifying {
    ns: Arc<NsVerify>,
    ranges: verify::Ranges,
    written: Option<verify::Written>,
    /// The wait for the LBAs, while the command waits (its claim on them, if it starved).
    wait: verify::LockWait,
}

impl Verifying {
    /// Tries to lock the command's LBAs (a waiting command keeps its place, see
    /// [`NsVerify::try_lock_waiting`]).
    fn try_lock(&mut self) -> bool {
        self.ns.try_lock_waiting(&self.ranges, &mut self.wait)
    }
}

impl Drop for Verifying {
    /// A command that ends without its LBAs (timed out, aborted by a reset) gives its claim up.
    fn drop(&mut self) {
        self.ns.give_up(&mut self.wait);
    }
}

/// What an IO command carries through its queue: the submitter's context and its verification.
pub struct IoCtx<T> {
    user: T,
    verify: Option<Verifying>,
}

/// A command waiting for its LBAs to be unlocked.
struct Deferred<T> {
    sqe: Sqe,
    data: Option<DataRef>,
    raw_dptr: bool,
    ctx: IoCtx<T>,
    since: Instant,
    deadline: Instant,
}

/// The queue and the commands waiting to enter it, under one lock.
struct Inner<T> {
    q: QueuePair<IoCtx<T>>,
    deferred: VecDeque<Deferred<T>>,
    /// Completions of one poll, before verification; kept to reuse its memory.
    scratch: Vec<Completion<IoCtx<T>>>,
}

/// An IO queue pair of a [`Controller<C>`]. `T` is what the submitter attaches to each command
/// and gets back with its completion: the Python face attaches its callback, a native IO
/// generator its own per-IO state. It defaults to the controller's admin context type.
///
/// Lock order: `inner` (the queue), then `leftover`, then `findings`.
pub struct Qpair<C: Clone + Send + 'static, T: Send + 'static = C> {
    ctrl: Arc<Controller<C>>,
    cfg: QpairConfig,
    qid: u16,
    iv: u16,
    inner: Mutex<Inner<T>>,
    in_wait: AtomicBool,
    deleted: AtomicBool,
    /// Completions waiting for the owner's next `waitdone`/`poll`: those a failed callback left,
    /// and those the host ended itself when the queue was abandoned (reset, power loss).
    leftover: Mutex<VecDeque<Completion<T>>>,
    findings: Mutex<Vec<Miscompare>>,
    /// Bytes and commands completed by reads and writes (for `Controller::iostat`).
    io_bytes: std::sync::atomic::AtomicU64,
    io_count: std::sync::atomic::AtomicU64,
}

fn check_status(qid: u16, what: &'static str, st: Status) -> Result<()> {
    if st.is_success() {
        Ok(())
    } else {
        Err(DriverError::QueueCreateRefused {
            qid,
            what,
            status: st,
        })
    }
}

fn aborted(qid: u16) -> Cqe {
    Cqe {
        sqid: qid,
        cid: 0xffff,
        status: Status::new(sct::GENERIC, sc::ABORTED_SQ_DELETION).status1(true),
        ..Default::default()
    }
}

impl<C: Clone + Send + 'static, T: Send + 'static> Qpair<C, T> {
    /// Creates an IO CQ and SQ on the device.
    pub fn new(ctrl: &Arc<Controller<C>>, cfg: QpairConfig) -> Result<Arc<Qpair<C, T>>> {
        let mqes = ctrl.cap().mqes() as u32 + 1;
        if cfg.depth < 2 || cfg.depth as u32 > mqes {
            return Err(DriverError::invalid(
                "depth",
                format!("{} is not 2..={mqes} (CAP.MQES + 1)", cfg.depth),
            ));
        }
        if cfg.prio > 3 {
            return Err(DriverError::invalid(
                "prio",
                format!("{} is not a priority class 0..=3", cfg.prio),
            ));
        }
        if cfg.prio != 0 {
            let cc = ctrl.pci().bar_read32(0, nvme_spec::regs::CC as u64);
            let ams = nvme_spec::regs::cc::ams(cc);
            if ams != 1 {
                return Err(DriverError::PriorityWithoutWrr {
                    prio: cfg.prio,
                    ams,
                });
            }
        }
        // Not while a lifecycle operation tears queues down or re-creates them.
        let _ops = ctrl.life().ops();
        let epoch = ctrl.check_can_create_queues()?;
        let qid = ctrl.alloc_qid(cfg.sqid)?;
        match Self::create(ctrl, cfg, qid, epoch) {
            Ok((queue, iv)) => {
                let qp = Arc::new(Qpair {
                    ctrl: ctrl.clone(),
                    cfg,
                    qid,
                    iv,
                    inner: Mutex::new(Inner {
                        scratch: Vec::new(),
                        q: queue,
                        deferred: VecDeque::new(),
                    }),
                    in_wait: AtomicBool::new(false),
                    deleted: AtomicBool::new(false),
                    leftover: Mutex::new(VecDeque::new()),
                    findings: Mutex::new(Vec::new()),
                    io_bytes: std::sync::atomic::AtomicU64::new(0),
                    io_count: std::sync::atomic::AtomicU64::new(0),
                });
                ctrl.register_qpair(qp.clone());
                Ok(qp)
            }
            Err(e) => {
                ctrl.free_qid(qid);
                Err(e)
            }
        }
    }

    fn create(
        ctrl: &Arc<Controller<C>>,
        cfg: QpairConfig,
        qid: u16,
        epoch: u64,
    ) -> Result<(QueuePair<IoCtx<T>>, u16)> {
        let params = QueueParams {
            qid,
            entries: cfg.depth,
            dstrd: ctrl.cap().dstrd(),
            page_size: 4096,
            lazy_doorbell: cfg.lazy_doorbell,
        };
        let mut queue = QueuePair::new(ctrl.pci().clone(), params, ctrl.timeouts().clone())?;
        queue.set_epoch(epoch);
        let nvec = ctrl.interrupts().map_or(1, |i| i.count().max(1));
        let iv = if !cfg.ien && cfg.iv == 0xffff {
            0
        } else if cfg.iv == 0xffff {
            qid % nvec
        } else {
            cfg.iv
        };
        let mut cq = commands::create_io_cq(qid, cfg.depth, true, cfg.ien, iv);
        cq.prp1 = queue.cq_addr();
        check_status(qid, "create I/O CQ", ctrl.admin_sync(cq, None)?.status())?;
        let mut sq = commands::create_io_sq(qid, cfg.depth, qid, true, cfg.prio, 0);
        sq.prp1 = queue.sq_addr();
        let st = ctrl.admin_sync(sq, None)?.status();
        if !st.is_success() {
            let _ = ctrl.admin_sync(commands::delete_io_queue(false, qid), None);
            check_status(qid, "create I/O SQ", st)?;
        }
        Ok((queue, iv))
    }

    /// Queue identifier.
    pub fn qid(&self) -> u16 {
        self.qid
    }

    /// The configuration it was created with.
    pub fn config(&self) -> &QpairConfig {
        &self.cfg
    }

    /// The interrupt vector of its CQ.
    pub fn iv(&self) -> u16 {
        self.iv
    }

    /// The controller.
    pub fn controller(&self) -> &Arc<Controller<C>> {
        &self.ctrl
    }

    /// Whether `delete` was called.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Relaxed)
    }

    /// The controller epoch the queue was (re-)created in. While it equals
    /// [`Controller::epoch`] and [`Qpair::is_alive`], the queue exists on the device.
    pub fn epoch(&self) -> u64 {
        self.inner.lock().q.epoch()
    }

    /// Whether the queue exists on the device and takes commands: false once deleted, and from
    /// the moment a lifecycle event (reset, FLR, power off ...) tears it down until a controller
    /// reset re-creates it.
    pub fn is_alive(&self) -> bool {
        !self.is_deleted() && self.inner.lock().q.alive
    }

    fn gone(&self) -> DriverError {
        DriverError::QueueGone {
            qid: self.qid,
            epoch: self.inner.lock().q.epoch(),
        }
    }

    /// Submits an IO command; see [`QueuePair::submit`]. With `stamp`, a write's data is stamped
    /// with LBA and token first (when the namespace's verification stamps). If its LBAs are held
    /// by another outstanding command, it waits (returns `None`) and enters the queue as soon as
    /// they are free; otherwise returns its CID.
    ///
    /// Refusals a submitter acts on: [`DriverError::QueueFull`] (reap, then submit again) and
    /// [`DriverError::QueueGone`] (deleted, or torn down by a lifecycle event: wait with
    /// [`Controller::wait_ready`], then submit again on this queue pair, which a controller reset
    /// re-creates, or on a new one). See [`crate::lifecycle`].
    pub fn submit(
        &self,
        sqe: Sqe,
        mut data: Option<DataRef>,
        raw_dptr: bool,
        ctx: T,
        stamp: bool,
    ) -> Result<Option<u16>> {
        if self.is_deleted() {
            return Err(self.gone());
        }
        let ctx = self.prepare(&sqe, &mut data, ctx, stamp);
        let mut inner = self.inner.lock();
        self.enqueue(&mut inner, sqe, data, raw_dptr, ctx)
    }

    /// Submits commands under one lock, as an IO generator does: taking the lock per command
    /// would make every command wait for the previous one's SQE to reach the device's core.
    /// Each item is (command, data, context); `stamp` as for [`Qpair::submit`]. Returns how many
    /// entered the queue or wait for their LBAs; stops at the first error (the errors of
    /// [`Qpair::submit`]). The queue cannot be torn down in the middle of a batch (it holds the
    /// queue's lock), so [`DriverError::QueueGone`] comes before any command entered; after a
    /// [`DriverError::QueueFull`] the commands before the refused one did enter (a caller that
    /// counts its commands keeps a batch within the free slots: depth − 1 − `outstanding()`).
    pub fn submit_batch(
        &self,
        cmds: impl IntoIterator<Item = (Sqe, Option<DataRef>, T)>,
        stamp: bool,
    ) -> Result<usize> {
        if self.is_deleted() {
            return Err(self.gone());
        }
        let mut inner = self.inner.lock();
        let mut n = 0;
        for (sqe, mut data, ctx) in cmds {
            let ctx = self.prepare(&sqe, &mut data, ctx, stamp);
            self.enqueue(&mut inner, sqe, data, false, ctx)?;
            n += 1;
        }
        Ok(n)
    }

    /// What verification needs of a command before it is queued: its LBA ranges (from the SQE),
    /// and for a write its stamps and the digests of the blocks it sends (which may replace
    /// `data` by a stamped copy, see [`NsVerify::submit_write`]).
    fn prepare(&self, sqe: &Sqe, data: &mut Option<DataRef>, ctx: T, stamp: bool) -> IoCtx<T> {
        let verify = self.ctrl.verifier(sqe.nsid).and_then(|ns| {
            // A one-range DSM (an IO generator's trim) is read into the stack: no allocation.
            let mut one = [0u8; 16];
            let list = match (sqe.opc(), data.as_ref()) {
                (nvm::DSM, Some(d)) if sqe.cdw10 & 0xff == 0 && d.len >= 16 => {
                    d.mem.read(d.offset, &mut one);
                    Some(std::borrow::Cow::Borrowed(&one[..]))
                }
                (nvm::DSM | nvm::COPY, Some(d)) => {
                    Some(std::borrow::Cow::Owned(d.mem.to_vec(d.offset, d.len)))
                }
                _ => None,
            };
            let ranges = verify::command_ranges(sqe, list.as_deref());
            let written = (sqe.opc() == nvm::WRITE).then(|| {
                let (slba, nlb) = (sqe.slba(), sqe.nlb() as u64);
                data.as_mut().map_or_else(
                    || verify::Written::unknown(slba, nlb),
                    |d| ns.submit_write(d, slba, nlb, stamp),
                )
            });
            (!ranges.is_empty()).then_some(Verifying {
                ns,
                ranges,
                written,
                wait: verify::LockWait::default(),
            })
        });
        IoCtx { user: ctx, verify }
    }

    /// Queues a prepared command, or lets it wait (in order) for its LBAs.
    fn enqueue(
        &self,
        inner: &mut Inner<T>,
        sqe: Sqe,
        data: Option<DataRef>,
        raw_dptr: bool,
        ctx: IoCtx<T>,
    ) -> Result<Option<u16>> {
        // Refused before any LBA is locked, so a refusal leaves no lock behind.
        if let Some(d) = data.as_ref().filter(|_| !raw_dptr) {
            inner.q.check_data(d)?;
        }
        inner.q.check_submit()?;
        let mut ctx = ctx;
        let go = inner.deferred.is_empty() && ctx.verify.as_mut().is_none_or(Verifying::try_lock);
        if !go {
            let now = Instant::now();
            let ms = self.ctrl.timeouts().get(true, sqe.opc()) as u64;
            inner.deferred.push_back(Deferred {
                sqe,
                data,
                raw_dptr,
                ctx,
                since: now,
                deadline: now + Duration::from_millis(ms),
            });
            return Ok(None);
        }
        inner.q.submit(sqe, data, raw_dptr, ctx, true).map(Some)
    }

    /// Enters waiting commands whose LBAs are free now, in order.
    fn pump(inner: &mut Inner<T>) {
        while let Some(d) = inner.deferred.front_mut() {
            if !inner.q.has_free_slot() || !d.ctx.verify.as_mut().is_none_or(Verifying::try_lock) {
                break;
            }
            let d = inner.deferred.pop_front().expect("front exists");
            // Cannot fail: the slot and the queue's life were checked under the same lock.
            let _ = inner.q.submit(d.sqe, d.data, d.raw_dptr, d.ctx, true);
        }
    }

    /// Ends waiting commands whose deadline passed, as timed out.
    fn expire_deferred(
        &self,
        inner: &mut Inner<T>,
        now: Instant,
        out: &mut VecDeque<Completion<T>>,
    ) {
        while inner.deferred.front().is_some_and(|d| d.deadline <= now) {
            let d = inner.deferred.pop_front().expect("front exists");
            let cqe = Cqe {
                dw0: u32::MAX,
                dw1: u32::MAX,
                sqhd: 0,
                sqid: self.qid,
                cid: 0xffff,
                status: TIMEOUT_STATUS,
            };
            let latency_us = now.duration_since(d.since).as_micros() as u64;
            let ctx = IoCtx {
                user: d.ctx.user,
                verify: None,
            };
            out.push_back(self.finish_io(Completion {
                cqe,
                sqe: d.sqe,
                ctx,
                data: d.data,
                latency_us,
                timed_out: true,
            }));
        }
    }

    /// Bytes and commands completed by reads and writes on this queue pair.
    pub fn io_counts(&self) -> (u64, u64) {
        (
            self.io_bytes.load(Ordering::Relaxed),
            self.io_count.load(Ordering::Relaxed),
        )
    }

    /// Verification at completion: checks a read, keeps the table true, releases the LBA locks.
    fn finish_io(&self, c: Completion<IoCtx<T>>) -> Completion<T> {
        let Completion {
            mut cqe,
            sqe,
            ctx,
            data,
            latency_us,
            timed_out,
        } = c;
        if matches!(sqe.opc(), nvm::READ | nvm::WRITE) && !timed_out && cqe.status().is_success() {
            self.io_count.fetch_add(1, Ordering::Relaxed);
            self.io_bytes
                .fetch_add(data.as_ref().map_or(0, |d| d.len as u64), Ordering::Relaxed);
        }
        if sqe.opc() == nvm::FLUSH && cqe.status().is_success() && !timed_out {
            // The flush covers what had completed when it was submitted.
            let submitted = Instant::now() - Duration::from_micros(latency_us + 1);
            self.ctrl.flushed_before(sqe.nsid, submitted);
        }
        if let Some(v) = ctx.verify {
            let ok = cqe.status().is_success() && !timed_out;
            verify::after_io(&v.ns, &sqe, &cqe, timed_out, v.written.as_ref(), &v.ranges);
            if let Some(d) = data.as_ref().filter(|_| ok && sqe.opc() == nvm::READ) {
                if v.ns.enabled() {
                    let mut found = Vec::new();
                    v.ns.check_read(d, sqe.slba(), sqe.nlb() as u64, &mut found);
                    if !found.is_empty() {
                        cqe.status = verify::MISCOMPARE.status1(cqe.phase());
                        self.findings.lock().extend(found);
                    }
                }
            }
            v.ns.unlock(&v.ranges);
        }
        Completion {
            cqe,
            sqe,
            ctx: ctx.user,
            data,
            latency_us,
            timed_out,
        }
    }

    /// Takes the data miscompares found on this queue since the last call.
    pub fn take_findings(&self) -> Vec<Miscompare> {
        std::mem::take(&mut self.findings.lock())
    }

    /// Reaps `expected` completions, calling `deliver` for each outside the queue lock (so a
    /// callback may submit). Returns dword 0 of the latest. Ends with [`DriverError::NothingOutstanding`] when
    /// fewer than `expected` can complete because nothing is outstanding.
    pub fn waitdone(
        &self,
        expected: usize,
        deliver: &mut dyn FnMut(Completion<T>) -> Result<()>,
    ) -> Result<u32> {
        let _guard = WaitGuard::enter(&self.in_wait, self.qid)?;
        self.waitdone_inner(expected, deliver)
    }

    /// One look at the queue without waiting: completions the device posted, commands that timed
    /// out, and completions the host ended itself, into `got`; waiting commands whose LBAs are
    /// free enter the queue. Returns the commands still outstanding.
    fn reap_once(&self, max: usize, got: &mut VecDeque<Completion<T>>) -> usize {
        let mut inner = self.inner.lock();
        let mut fresh = std::mem::take(&mut inner.scratch);
        inner.q.poll(max, &mut |c| fresh.push(c));
        if fresh.is_empty() {
            let now = Instant::now();
            inner.q.expire(now, &mut |c| fresh.push(c));
            self.expire_deferred(&mut inner, now, got);
        }
        for c in fresh.drain(..) {
            got.push_back(self.finish_io(c));
        }
        inner.scratch = fresh;
        Self::pump(&mut inner);
        {
            let mut left = self.leftover.lock();
            if !left.is_empty() {
                got.extend(left.drain(..));
            }
        }
        inner.q.outstanding() + inner.deferred.len()
    }

    /// Gives completions not delivered back to `leftover`, ahead of any added meanwhile, and
    /// keeps the empty queue's memory for the next call.
    fn put_back(&self, mut got: VecDeque<Completion<T>>) {
        let mut left = self.leftover.lock();
        if left.is_empty() {
            std::mem::swap(&mut *left, &mut got);
        } else {
            while let Some(c) = got.pop_back() {
                left.push_front(c);
            }
        }
    }

    fn waitdone_inner(
        &self,
        expected: usize,
        deliver: &mut dyn FnMut(Completion<T>) -> Result<()>,
    ) -> Result<u32> {
        let mut reaped = 0;
        let mut dw0 = 0;
        let mut spins = 0;
        // `leftover` holds completions to deliver first, and otherwise an empty queue whose
        // memory is reused, like `scratch`: waiting allocates nothing once warmed up.
        let mut got = std::mem::take(&mut *self.leftover.lock());
        while reaped < expected {
            let outstanding = if got.is_empty() {
                self.reap_once(expected - reaped, &mut got)
            } else {
                1
            };
            if got.is_empty() {
                if outstanding == 0 {
                    self.put_back(got);
                    return Err(DriverError::NothingOutstanding {
                        qid: self.qid,
                        expected,
                        reaped,
                    });
                }
                if let Err(e) = backoff(&mut spins) {
                    self.put_back(got);
                    return Err(e);
                }
                continue;
            }
            spins = 0;
            while let Some(c) = got.pop_front() {
                reaped += 1;
                dw0 = c.cqe.dw0;
                if let Err(e) = deliver(c) {
                    self.put_back(got);
                    return Err(e);
                }
            }
        }
        self.put_back(got);
        Ok(dw0)
    }

    /// Delivers what has completed now (at most `max`), without waiting; returns how many. For a
    /// thread that owns the queue and polls it in its own loop, as an IO generator does.
    /// Commands a lifecycle event ended are delivered here too, once each, with status 00/08.
    pub fn poll(
        &self,
        max: usize,
        deliver: &mut dyn FnMut(Completion<T>) -> Result<()>,
    ) -> Result<usize> {
        let _guard = WaitGuard::enter(&self.in_wait, self.qid)?;
        let mut got = std::mem::take(&mut *self.leftover.lock());
        if got.is_empty() {
            self.reap_once(max, &mut got);
        }
        let mut n = 0;
        while let Some(c) = got.pop_front() {
            n += 1;
            if let Err(e) = deliver(c) {
                self.put_back(got);
                return Err(e);
            }
        }
        self.put_back(got);
        Ok(n)
    }

    /// Commands outstanding (those waiting for their LBAs included).
    pub fn outstanding(&self) -> usize {
        let inner = self.inner.lock();
        inner.q.outstanding() + inner.deferred.len()
    }

    /// CID of the latest submitted command.
    pub fn latest_cid(&self) -> u16 {
        self.inner.lock().q.latest_cid()
    }

    /// Latency of the latest completed command, µs.
    pub fn latest_latency_us(&self) -> u64 {
        self.inner.lock().q.latest_latency_us()
    }

    /// This queue's command log, newest first.
    pub fn cmdlog(&self, count: usize, offset: usize) -> Vec<CmdLogEntry> {
        self.inner.lock().q.cmdlog().latest(count, offset)
    }

    /// Device misbehaviours noticed since the last call.
    pub fn take_anomalies(&self) -> Vec<String> {
        self.inner.lock().q.take_anomalies()
    }

    /// Ends every outstanding and waiting command with 00/08 (aborted, SQ deletion), releasing
    /// their locks: each completes exactly once, through this queue's next `waitdone` or `poll`,
    /// whoever waits on it. The queue refuses new commands until it is re-created. Returns the
    /// data memory the device may still reach until it is disabled or the queue deleted.
    pub(crate) fn abandon(&self) -> Vec<nvme_pci::DmaMemory> {
        let mut inner = self.inner.lock();
        let mut raw = Vec::new();
        let held = inner.q.abandon(
            Status::new(sct::GENERIC, sc::ABORTED_SQ_DELETION),
            &mut |c| raw.push(c),
        );
        for d in std::mem::take(&mut inner.deferred) {
            // A waiting command holds no lock yet.
            let ctx = IoCtx {
                user: d.ctx.user,
                verify: None,
            };
            raw.push(Completion {
                cqe: aborted(self.qid),
                sqe: d.sqe,
                ctx,
                data: d.data,
                latency_us: 0,
                timed_out: false,
            });
        }
        let done: Vec<_> = raw.into_iter().map(|c| self.finish_io(c)).collect();
        self.leftover.lock().extend(done);
        held
    }

    /// Creates the queue pair again on the device with the same id and attributes, on fresh
    /// memory, in controller epoch `epoch` (after a controller reset), unless it was deleted.
    /// The old ring is dropped unread.
    pub(crate) fn recreate(&self, epoch: u64) -> Result<()> {
        if self.is_deleted() {
            return Ok(());
        }
        self.ctrl.alloc_qid(Some(self.qid))?;
        match Self::create(&self.ctrl, self.cfg, self.qid, epoch) {
            Ok((queue, _)) => {
                self.inner.lock().q = queue;
                Ok(())
            }
            Err(e) => {
                self.ctrl.free_qid(self.qid);
                Err(e)
            }
        }
    }

    /// Deletes the SQ and the CQ on the device; outstanding commands are abandoned (the device
    /// completes them with "aborted, SQ deletion", which the host no longer reads). A queue a
    /// lifecycle event already tore down no longer exists on the device: it is only released.
    pub fn delete(&self) -> Result<()> {
        let _ops = self.ctrl.life().ops();
        if self.deleted.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let on_device = self.inner.lock().q.alive;
        // Kept until the device deleted the queue: it may move their data until then.
        let held = self.abandon();
        self.leftover.lock().clear();
        let (bytes, ios) = self.io_counts();
        self.ctrl.retire_io(bytes, ios);
        self.io_bytes.store(0, Ordering::Relaxed);
        self.io_count.store(0, Ordering::Relaxed);
        if !on_device {
            return Ok(());
        }
        let sq = self
            .ctrl
            .admin_sync(commands::delete_io_queue(true, self.qid), None);
        let cq = self
            .ctrl
            .admin_sync(commands::delete_io_queue(false, self.qid), None);
        self.ctrl.free_qid(self.qid);
        drop(held);
        for (what, r) in [("SQ", sq), ("CQ", cq)] {
            let failed = |source| DriverError::QpairDeletion {
                qid: self.qid,
                what,
                source: Box::new(source),
            };
            let status = r.map_err(failed)?.status();
            if !status.is_success() {
                return Err(failed(DriverError::CommandFailed {
                    what: "delete I/O queue",
                    status,
                }));
            }
        }
        Ok(())
    }
}

/// A queue pair dropped without [`Qpair::delete`] may still exist on the device, which may still
/// write completions into its rings and data into its commands' buffers: that memory is kept
/// until the controller is next disabled (reset, FLR, power off ...), never freed under the
/// device. Its queue id stays taken until then too.
impl<C: Clone + Send + 'static, T: Send + 'static> Drop for Qpair<C, T> {
    fn drop(&mut self) {
        if !self.is_deleted() {
            let mem = self.inner.get_mut().q.memory_in_use();
            self.ctrl.park_until_reset(mem);
        }
    }
}

/// What the controller needs of each of its IO queue pairs, whatever their context type: it
/// keeps them as `Weak<dyn IoQueue>` to abandon and re-create them at a reset and to read their
/// logs and counters.
pub trait IoQueue: Send + Sync {
    /// Queue identifier.
    fn qid(&self) -> u16;
    /// Entries per queue.
    fn depth(&self) -> u16;
    /// Commands outstanding, those waiting for their LBAs included.
    fn outstanding(&self) -> usize;
    /// Ends every outstanding command without the device (`Qpair::abandon`); returns the
    /// memory the device may still reach.
    fn abandon(&self) -> Vec<nvme_pci::DmaMemory>;
    /// Whether the queue exists on the device (see [`Qpair::is_alive`]).
    fn is_alive(&self) -> bool;
    /// The controller epoch the queue was created in.
    fn epoch(&self) -> u64;
    /// Creates the queue pair again on the device in `epoch` (`Qpair::recreate`).
    fn recreate(&self, epoch: u64) -> Result<()>;
    /// The queue's command log, newest first.
    fn cmdlog(&self, count: usize, offset: usize) -> Vec<CmdLogEntry>;
    /// Bytes and commands completed by reads and writes.
    fn io_counts(&self) -> (u64, u64);
    /// Whether the queue pair was deleted: it takes no more commands.
    fn is_deleted(&self) -> bool;
}

impl<C: Clone + Send + 'static, T: Send + 'static> IoQueue for Qpair<C, T> {
    fn qid(&self) -> u16 {
        Qpair::qid(self)
    }
    fn depth(&self) -> u16 {
        self.cfg.depth
    }
    fn outstanding(&self) -> usize {
        Qpair::outstanding(self)
    }
    fn abandon(&self) -> Vec<nvme_pci::DmaMemory> {
        Qpair::abandon(self)
    }
    fn is_alive(&self) -> bool {
        Qpair::is_alive(self)
    }
    fn epoch(&self) -> u64 {
        Qpair::epoch(self)
    }
    fn recreate(&self, epoch: u64) -> Result<()> {
        Qpair::recreate(self, epoch)
    }
    fn cmdlog(&self, count: usize, offset: usize) -> Vec<CmdLogEntry> {
        Qpair::cmdlog(self, count, offset)
    }
    fn io_counts(&self) -> (u64, u64) {
        Qpair::io_counts(self)
    }
    fn is_deleted(&self) -> bool {
        Qpair::is_deleted(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Buffer, Namespace};
    use nvme_sim::faults::{FaultAction, FaultMatch, FaultRule};

    type Ctrl = Controller<Option<u32>>;
    type Ns = Namespace<Option<u32>>;

    fn setup(depth: u16) -> (Arc<Ctrl>, Ns, Arc<Qpair<Option<u32>>>) {
        let ctrl = Controller::new(nvme_pci::open("sim://?capacity=1G").unwrap()).unwrap();
        ctrl.init_default(None).unwrap();
        let ns = Namespace::new(&ctrl, 1, 0).unwrap();
        ns.verifier().set_enabled(true);
        let qp = Qpair::new(
            &ctrl,
            QpairConfig {
                depth,
                ..Default::default()
            },
        )
        .unwrap();
        (ctrl, ns, qp)
    }

    fn buffer(len: usize) -> Buffer {
        Buffer::new(nvme_pci::dma_alloc(len).unwrap(), len, "b", 0, 0).unwrap()
    }

    /// Reaps `n` completions, returning (context, status) in completion order.
    fn reap(qp: &Qpair<Option<u32>>, n: usize) -> Vec<(Option<u32>, Status)> {
        let mut got = Vec::new();
        qp.waitdone(n, &mut |c| {
            got.push((c.ctx, c.cqe.status()));
            Ok(())
        })
        .unwrap();
        got
    }

    #[test]
    fn a_command_on_locked_lbas_waits_then_runs_after_the_holder() {
        let (ctrl, ns, qp) = setup(16);
        let faults = ctrl.pci().simulator().unwrap().faults();
        // The first write is held by the device for 50 ms; the read of an overlapping range
        // must not reach the device before it completes.
        faults.add(
            FaultRule::new(
                FaultMatch::io(1),
                FaultAction::Delay(Duration::from_millis(50)),
            )
            .times(1),
        );
        let b = buffer(4096);
        assert!(ns
            .write(&qp, &b, 0, 8, 0, 0, 0, 0, Some(1))
            .unwrap()
            .is_some());
        assert_eq!(ns.read(&qp, &b, 4, 1, 0, 0, 0, 0, Some(2)).unwrap(), None);
        assert_eq!(qp.outstanding(), 2);
        let ok = Status::new(0, 0);
        assert_eq!(reap(&qp, 2), vec![(Some(1), ok), (Some(2), ok)]);
        assert!(qp.take_findings().is_empty());
        qp.delete().unwrap();
    }

    #[test]
    fn a_claim_of_a_queue_nobody_polls_does_not_hold_up_another_queue() {
        let (ctrl, ns, holder) = setup(16);
        let new_q = || {
            Qpair::new(
                &ctrl,
                QpairConfig {
                    depth: 16,
                    ..Default::default()
                },
            )
            .unwrap()
        };
        let (q1, q2) = (new_q(), new_q());
        let faults = ctrl.pci().simulator().unwrap().faults();
        faults.add(
            FaultRule::new(
                FaultMatch::io(1),
                FaultAction::Delay(Duration::from_millis(40)),
            )
            .times(1),
        );
        let b = buffer(4096);
        ns.write(&holder, &b, 0, 8, 0, 0, 0, 0, Some(1)).unwrap();
        // A read on q1 waits for the write's LBAs, starves and claims them at a poll of q1.
        assert_eq!(ns.read(&q1, &b, 0, 1, 0, 0, 0, 0, Some(2)).unwrap(), None);
        std::thread::sleep(verify::STARVING * 2);
        assert_eq!(q1.poll(8, &mut |_| Ok(())).unwrap(), 0);
        let ok = Status::new(0, 0);
        assert_eq!(reap(&holder, 1), vec![(Some(1), ok)]);
        // The thread now waits on q2 only, for a read of the claimed LBA: q1's claim lapses
        // (nobody polls q1) and the read runs, with no timeout blamed on the device.
        assert_eq!(ns.read(&q2, &b, 0, 1, 0, 0, 0, 0, Some(3)).unwrap(), None);
        assert_eq!(reap(&q2, 1), vec![(Some(3), ok)]);
        assert_eq!(reap(&q1, 1), vec![(Some(2), ok)]);
        for q in [q1, q2, holder] {
            q.delete().unwrap();
        }
    }

    #[test]
    fn a_full_queue_refuses_with_its_numbers_and_accepts_after_a_reap() {
        let (ctrl, ns, qp) = setup(4);
        let faults = ctrl.pci().simulator().unwrap().faults();
        faults.add(FaultRule::new(
            FaultMatch::io(2),
            FaultAction::Delay(Duration::from_millis(20)),
        ));
        let b = buffer(4096);
        // A queue of 4 entries holds 3 commands.
        for i in 0..3 {
            ns.read(&qp, &b, i * 8, 8, 0, 0, 0, 0, Some(i as u32))
                .unwrap();
        }
        match ns.read(&qp, &b, 64, 8, 0, 0, 0, 0, Some(9)) {
            Err(DriverError::QueueFull {
                qid,
                outstanding: 3,
                entries: 4,
            }) => assert_eq!(qid, qp.qid()),
            r => panic!("a fourth command in a queue of 4: {r:?}"),
        }
        assert_eq!(reap(&qp, 1).len(), 1);
        ns.read(&qp, &b, 64, 8, 0, 0, 0, 0, Some(9)).unwrap();
        assert_eq!(reap(&qp, 3).len(), 3);
        faults.clear();
        qp.delete().unwrap();
    }

    #[test]
    fn abandon_ends_outstanding_and_waiting_commands_once_with_00_08() {
        let (ctrl, ns, qp) = setup(16);
        let faults = ctrl.pci().simulator().unwrap().faults();
        faults.add(FaultRule::new(FaultMatch::io(1), FaultAction::DropCompletion).times(1));
        let b = buffer(4096);
        ns.write(&qp, &b, 0, 8, 0, 0, 0, 0, Some(1)).unwrap();
        // Waits for LBA 0's lock, held by the write the device never completes.
        assert_eq!(ns.read(&qp, &b, 0, 1, 0, 0, 0, 0, Some(2)).unwrap(), None);
        std::thread::sleep(Duration::from_millis(20));
        // Tried again after waiting longer than STARVING: it claims LBA 0.
        assert_eq!(qp.poll(8, &mut |_| Ok(())).unwrap(), 0);
        let v = ns.verifier();
        let lba0 = [verify::LbaRange { slba: 0, nlb: 1 }];
        let held = qp.abandon();
        assert!(!held.is_empty(), "the dropped write's data stays reachable");
        assert!(!qp.is_alive());
        let aborted = Status::new(sct::GENERIC, sc::ABORTED_SQ_DELETION);
        let mut got = reap(&qp, 2);
        got.sort_by_key(|g| g.0);
        assert_eq!(got, vec![(Some(1), aborted), (Some(2), aborted)]);
        assert!(matches!(
            qp.waitdone(1, &mut |_| Ok(())),
            Err(DriverError::NothingOutstanding { reaped: 0, .. })
        ));
        // The queue refuses new commands until it is re-created.
        match ns.read(&qp, &b, 0, 8, 0, 0, 0, 0, Some(3)) {
            Err(DriverError::QueueGone { qid, .. }) => assert_eq!(qid, qp.qid()),
            r => panic!("submit on an abandoned queue: {r:?}"),
        }
        // Neither the dropped write's lock nor the read's claim is left behind.
        assert!(v.try_lock(&lba0), "LBA 0 is free for a newcomer");
        v.unlock(&lba0);
        faults.clear();
        qp.delete().unwrap();
        drop(held);
    }
}
