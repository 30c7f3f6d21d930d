//! IO queue pairs: one IO CQ and one IO SQ with the same identifier, created and deleted through
//! the admin queue, with data verification in the path of every command (see [`crate::verify`]).
//!
//! Submission: a write is stamped (when asked), then its LBAs are locked; a command whose LBAs are
//! held by another outstanding command waits in order, outside the SQ, and enters it as soon as
//! they are free (or is ended as timed out after the command timeout). Completion: a read is
//! checked (a miscompare turns its status into 07/81), the table is updated, the locks released.

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

/// The LBAs an IO command holds locked, and the namespace they belong to.
pub struct Verifying {
    ns: Arc<NsVerify>,
    ranges: verify::Ranges,
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

fn check_status(what: &str, st: Status) -> Result<()> {
    if st.is_success() {
        Ok(())
    } else {
        Err(DriverError::QpairCreation(format!(
            "qpair create fail: {what} completed with status {st}"
        )))
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
            if nvme_spec::regs::cc::ams(cc) != 1 {
                return Err(DriverError::QpairCreation(format!(
                    "qpair create fail: prio {} needs weighted round robin arbitration (CC.AMS = 1)",
                    cfg.prio
                )));
            }
        }
        let qid = ctrl.alloc_qid(cfg.sqid)?;
        match Self::create(ctrl, cfg, qid) {
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
    ) -> Result<(QueuePair<IoCtx<T>>, u16)> {
        let params = QueueParams {
            qid,
            entries: cfg.depth,
            dstrd: ctrl.cap().dstrd(),
            page_size: 4096,
            lazy_doorbell: cfg.lazy_doorbell,
        };
        let queue = QueuePair::new(ctrl.pci().clone(), params, ctrl.timeouts().clone())?;
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
        check_status("create I/O CQ", ctrl.admin_sync(cq, None)?.status())?;
        let mut sq = commands::create_io_sq(qid, cfg.depth, qid, true, cfg.prio, 0);
        sq.prp1 = queue.sq_addr();
        let st = ctrl.admin_sync(sq, None)?.status();
        if !st.is_success() {
            let _ = ctrl.admin_sync(commands::delete_io_queue(false, qid), None);
            check_status("create I/O SQ", st)?;
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

    /// Submits an IO command; see [`QueuePair::submit`]. With `stamp`, a write's data is stamped
    /// with LBA and token first (when the namespace's verification stamps). If its LBAs are held
    /// by another outstanding command, it waits (returns `None`) and enters the queue as soon as
    /// they are free; otherwise returns its CID.
    pub fn submit(
        &self,
        sqe: Sqe,
        data: Option<DataRef>,
        raw_dptr: bool,
        ctx: T,
        stamp: bool,
    ) -> Result<Option<u16>> {
        if self.is_deleted() {
            return Err(DriverError::Submit(format!(
                "error in submitting io commands: qpair {} was deleted",
                self.qid
            )));
        }
        let ctx = self.prepare(&sqe, data.as_ref(), ctx, stamp);
        let mut inner = self.inner.lock();
        self.enqueue(&mut inner, sqe, data, raw_dptr, ctx)
    }

    /// Submits commands under one lock, as an IO generator does: taking the lock per command
    /// would make every command wait for the previous one's SQE to reach the device's core.
    /// Each item is (command, data, context); `stamp` as for [`Qpair::submit`]. Returns how many
    /// entered the queue or wait for their LBAs; stops at the first error.
    pub fn submit_batch(
        &self,
        cmds: impl IntoIterator<Item = (Sqe, Option<DataRef>, T)>,
        stamp: bool,
    ) -> Result<usize> {
        if self.is_deleted() {
            return Err(DriverError::Submit(format!(
                "error in submitting io commands: qpair {} was deleted",
                self.qid
            )));
        }
        let mut inner = self.inner.lock();
        let mut n = 0;
        for (sqe, data, ctx) in cmds {
            let ctx = self.prepare(&sqe, data.as_ref(), ctx, stamp);
            self.enqueue(&mut inner, sqe, data, false, ctx)?;
            n += 1;
        }
        Ok(n)
    }

    /// What verification needs of a command before it is queued: its LBA ranges, and its stamps.
    fn prepare(&self, sqe: &Sqe, data: Option<&DataRef>, ctx: T, stamp: bool) -> IoCtx<T> {
        let verify = self.ctrl.verifier(sqe.nsid).and_then(|ns| {
            let list = if matches!(sqe.opc(), nvm::DSM | nvm::COPY) {
                data.map(|d| d.mem.to_vec(d.offset, d.len))
            } else {
                None
            };
            let ranges = verify::command_ranges(sqe, list.as_deref());
            (!ranges.is_empty()).then_some(Verifying { ns, ranges })
        });
        if let (Some(v), Some(d), true) = (&verify, data, stamp && sqe.opc() == nvm::WRITE) {
            d.mem
                .with_bytes_mut(d.offset, d.len, |b| v.ns.stamp_write(b, sqe.slba()));
        }
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
        inner.q.check_submit().map_err(|e| match e {
            DriverError::Submit(m) => {
                DriverError::Submit(format!("error in submitting io commands: {m}"))
            }
            e => e,
        })?;
        let go = inner.deferred.is_empty()
            && ctx.verify.as_ref().is_none_or(|v| v.ns.try_lock(&v.ranges));
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
        match inner.q.submit(sqe, data, raw_dptr, ctx, true) {
            Ok(cid) => Ok(Some(cid)),
            Err(e) => Err(match e {
                DriverError::Submit(m) => {
                    DriverError::Submit(format!("error in submitting io commands: {m}"))
                }
                e => e,
            }),
        }
    }

    /// Enters waiting commands whose LBAs are free now, in order.
    fn pump(inner: &mut Inner<T>) {
        while let Some(d) = inner.deferred.front() {
            if !inner.q.has_free_slot()
                || !d
                    .ctx
                    .verify
                    .as_ref()
                    .is_none_or(|v| v.ns.try_lock(&v.ranges))
            {
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
        if let Some(v) = ctx.verify {
            let ok = cqe.status().is_success() && !timed_out;
            let mut run = |bytes: Option<&[u8]>| {
                verify::after_io(&v.ns, &sqe, &cqe, timed_out, bytes, &v.ranges);
                if ok && sqe.opc() == nvm::READ && v.ns.enabled() {
                    if let Some(m) = bytes.and_then(|b| v.ns.check(b, sqe.slba())) {
                        cqe.status = verify::MISCOMPARE.status1(cqe.phase());
                        self.findings.lock().push(m);
                    }
                }
            };
            match &data {
                Some(d) if matches!(sqe.opc(), nvm::READ | nvm::WRITE) => {
                    d.mem.with_bytes(d.offset, d.len, |b| run(Some(b)))
                }
                _ => run(None),
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
    /// callback may submit). Returns dword 0 of the latest. Ends with [`DriverError::Reap`] when
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
                    return Err(DriverError::Reap(format!(
                        "waitdone({expected}): {reaped} commands reaped on qpair {} and none is outstanding",
                        self.qid
                    )));
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
    /// whoever waits on it. The queue refuses new commands until it is re-created.
    pub(crate) fn abandon(&self) {
        let mut inner = self.inner.lock();
        let mut raw = Vec::new();
        inner.q.abandon(
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
    }

    /// Creates the queue pair again on the device with the same id and attributes (after a
    /// controller reset), unless it was deleted.
    pub(crate) fn recreate(&self) -> Result<()> {
        if self.is_deleted() {
            return Ok(());
        }
        self.ctrl.alloc_qid(Some(self.qid))?;
        let (queue, _) = Self::create(&self.ctrl, self.cfg, self.qid)?;
        self.inner.lock().q = queue;
        Ok(())
    }

    /// Deletes the SQ and the CQ on the device; outstanding commands are abandoned (the device
    /// completes them with "aborted, SQ deletion", which the host no longer reads).
    pub fn delete(&self) -> Result<()> {
        if self.deleted.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.abandon();
        self.leftover.lock().clear();
        let (bytes, ios) = self.io_counts();
        self.ctrl.retire_io(bytes, ios);
        self.io_bytes.store(0, Ordering::Relaxed);
        self.io_count.store(0, Ordering::Relaxed);
        let sq = self
            .ctrl
            .admin_sync(commands::delete_io_queue(true, self.qid), None);
        let cq = self
            .ctrl
            .admin_sync(commands::delete_io_queue(false, self.qid), None);
        self.ctrl.free_qid(self.qid);
        for (what, r) in [("SQ", sq), ("CQ", cq)] {
            let st = r
                .map_err(|e| {
                    DriverError::QpairDeletion(format!("delete I/O {what} {}: {e}", self.qid))
                })?
                .status();
            if !st.is_success() {
                return Err(DriverError::QpairDeletion(format!(
                    "delete I/O {what} {} completed with status {st}",
                    self.qid
                )));
            }
        }
        Ok(())
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
    /// Ends every outstanding command without the device (see [`Qpair::abandon`]).
    fn abandon(&self);
    /// Creates the queue pair again on the device (see [`Qpair::recreate`]).
    fn recreate(&self) -> Result<()>;
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
    fn abandon(&self) {
        Qpair::abandon(self)
    }
    fn recreate(&self) -> Result<()> {
        Qpair::recreate(self)
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
