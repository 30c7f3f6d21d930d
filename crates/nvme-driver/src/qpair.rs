//! IO queue pairs: one IO CQ and one IO SQ with the same identifier, created and deleted through
//! the admin queue.

use crate::cmdlog::CmdLogEntry;
use crate::commands;
use crate::controller::{backoff, Controller};
use crate::error::{DriverError, Result};
use crate::queue::{Completion, DataRef, QueuePair, QueueParams};
use nvme_spec::status::{sc, sct};
use nvme_spec::{Sqe, Status};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

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

/// An IO queue pair.
pub struct Qpair<C: Clone + Send + 'static> {
    ctrl: Arc<Controller<C>>,
    cfg: QpairConfig,
    qid: u16,
    iv: u16,
    queue: Mutex<QueuePair<C>>,
    in_wait: AtomicBool,
    deleted: AtomicBool,
    /// Completions reaped but not delivered because a callback failed; delivered first next time.
    leftover: Mutex<VecDeque<Completion<C>>>,
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

impl<C: Clone + Send + 'static> Qpair<C> {
    /// Creates an IO CQ and SQ on the device.
    pub fn new(ctrl: &Arc<Controller<C>>, cfg: QpairConfig) -> Result<Arc<Qpair<C>>> {
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
        let qid = ctrl.alloc_qid(cfg.sqid)?;
        match Self::create(ctrl, cfg, qid) {
            Ok((queue, iv)) => {
                let qp = Arc::new(Qpair {
                    ctrl: ctrl.clone(),
                    cfg,
                    qid,
                    iv,
                    queue: Mutex::new(queue),
                    in_wait: AtomicBool::new(false),
                    deleted: AtomicBool::new(false),
                    leftover: Mutex::new(VecDeque::new()),
                });
                ctrl.register_qpair(&qp);
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
    ) -> Result<(QueuePair<C>, u16)> {
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
        let cq = commands::create_io_cq(qid, cfg.depth, true, cfg.ien, iv);
        let mut cq_sqe = cq;
        cq_sqe.prp1 = queue.cq_addr();
        check_status("create I/O CQ", ctrl.admin_sync(cq_sqe, None)?.status())?;
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

    /// Submits an IO command; see [`QueuePair::submit`].
    pub fn submit(&self, sqe: Sqe, data: Option<DataRef>, raw_dptr: bool, ctx: C) -> Result<u16> {
        if self.is_deleted() {
            return Err(DriverError::Submit(format!(
                "error in submitting io commands: qpair {} was deleted",
                self.qid
            )));
        }
        self.queue
            .lock()
            .submit(sqe, data, raw_dptr, ctx, true)
            .map_err(|e| match e {
                DriverError::Submit(m) => {
                    DriverError::Submit(format!("error in submitting io commands: {m}"))
                }
                e => e,
            })
    }

    /// Runs `f` on the queue with its lock held (the hot path of a caller that submits and polls
    /// from one thread, like an IO generator).
    pub fn with_queue<R>(&self, f: impl FnOnce(&mut QueuePair<C>) -> R) -> R {
        f(&mut self.queue.lock())
    }

    /// Reaps `expected` completions, calling `deliver` for each outside the queue lock (so a
    /// callback may submit). Returns dword 0 of the latest. Ends with [`DriverError::Reap`] when
    /// fewer than `expected` can complete because nothing is outstanding.
    pub fn waitdone(
        &self,
        expected: usize,
        deliver: &mut dyn FnMut(Completion<C>) -> Result<()>,
    ) -> Result<u32> {
        if self.in_wait.swap(true, Ordering::Acquire) {
            return Err(DriverError::Reentry(self.qid));
        }
        let r = self.waitdone_inner(expected, deliver);
        self.in_wait.store(false, Ordering::Release);
        r
    }

    fn waitdone_inner(
        &self,
        expected: usize,
        deliver: &mut dyn FnMut(Completion<C>) -> Result<()>,
    ) -> Result<u32> {
        let mut reaped = 0;
        let mut dw0 = 0;
        let mut spins = 0;
        let mut got = std::mem::take(&mut *self.leftover.lock());
        while reaped < expected {
            let outstanding = {
                let mut q = self.queue.lock();
                q.poll(expected - reaped, &mut |c| got.push_back(c));
                if got.is_empty() {
                    q.expire(Instant::now(), &mut |c| got.push_back(c));
                }
                q.outstanding()
            };
            if got.is_empty() {
                if outstanding == 0 && self.leftover.lock().is_empty() {
                    return Err(DriverError::Reap(format!(
                        "waitdone({expected}): {reaped} commands reaped on qpair {} and none is outstanding",
                        self.qid
                    )));
                }
                backoff(&mut spins);
                continue;
            }
            spins = 0;
            while let Some(c) = got.pop_front() {
                reaped += 1;
                dw0 = c.cqe.dw0;
                if let Err(e) = deliver(c) {
                    *self.leftover.lock() = got;
                    return Err(e);
                }
            }
        }
        Ok(dw0)
    }

    /// Commands outstanding.
    pub fn outstanding(&self) -> usize {
        self.queue.lock().outstanding()
    }

    /// CID of the latest submitted command.
    pub fn latest_cid(&self) -> u16 {
        self.queue.lock().latest_cid()
    }

    /// Latency of the latest completed command, µs.
    pub fn latest_latency_us(&self) -> u64 {
        self.queue.lock().latest_latency_us()
    }

    /// This queue's command log, newest first.
    pub fn cmdlog(&self, count: usize, offset: usize) -> Vec<CmdLogEntry> {
        self.queue.lock().cmdlog().latest(count, offset)
    }

    /// Device misbehaviours noticed since the last call.
    pub fn take_anomalies(&self) -> Vec<String> {
        self.queue.lock().take_anomalies()
    }

    pub(crate) fn abandon(&self, on: &mut dyn FnMut(u16, Completion<C>)) {
        let mut done = Vec::new();
        self.queue.lock().abandon(
            Status::new(sct::GENERIC, sc::ABORTED_SQ_DELETION),
            &mut |c| done.push(c),
        );
        for c in done {
            on(self.qid, c);
        }
    }

    pub(crate) fn recreate(&self) -> Result<()> {
        if self.is_deleted() {
            return Ok(());
        }
        self.ctrl.alloc_qid(Some(self.qid))?;
        let (queue, _) = Self::create(&self.ctrl, self.cfg, self.qid)?;
        *self.queue.lock() = queue;
        Ok(())
    }

    /// Deletes the SQ and the CQ on the device; outstanding commands are abandoned (the device
    /// completes them with "aborted, SQ deletion", which the host no longer reads).
    pub fn delete(&self) -> Result<()> {
        if self.deleted.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.abandon(&mut |_, _| {});
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
