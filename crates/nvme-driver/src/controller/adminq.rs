//! The admin queue: submission, the driver's own synchronous commands, `waitdone`, AERs
//! re-armed on completion, and what the driver learns from admin completions.
//!
//! Locks here (see the lock order in [`crate::controller`]): `admin` (the queue) is never held
//! while a completion is delivered; `deferred`, `sync_done` and `aer_ctx` are taken alone.

use super::{backoff, AdminCtx, Controller, WaitGuard, DRIVER_MAX_TRANSFER};
use crate::cmdlog::CmdLogEntry;
use crate::commands;
use crate::error::{DriverError, Result};
use crate::queue::{Completion, DataRef};
use nvme_pci::DmaMemory;
use nvme_spec::cmd::admin;
use nvme_spec::{Cqe, Sqe};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl<C: Clone + Send + 'static> Controller<C> {
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

    /// Delivers, with status 00/08, the script's admin commands that lifecycle events ended
    /// since the last call (never their AERs), each exactly once, without reading the device. A
    /// controller reset calls it after its init function, so, as in pynvme, the commands a
    /// reset (or the FLR, hot reset, NVM subsystem reset or power cycle before it) ended
    /// complete during the reset. Returns how many it delivered; a callback's error stops it
    /// (the rest wait for the next call).
    pub fn deliver_aborted(
        &self,
        deliver: &mut dyn FnMut(Completion<C>) -> Result<()>,
    ) -> Result<usize> {
        let mut n = 0;
        loop {
            let c = {
                let mut a = self.aborted.lock();
                if a.is_empty() {
                    return Ok(n);
                }
                a.remove(0)
            };
            let AdminCtx::User(ctx) = c.ctx else {
                continue;
            };
            n += 1;
            deliver(Completion {
                cqe: c.cqe,
                sqe: c.sqe,
                ctx,
                data: c.data,
                latency_us: c.latency_us,
                timed_out: c.timed_out,
            })?;
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
}
