//! The controller as the device thread runs it: CC transitions, queues, arbitration, command
//! fetch and completion, interrupts, timers. Commands themselves are in `admin.rs` and `io.rs`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nvme_spec::regs::{cc, csts};
use nvme_spec::status::{sc, sct};
use nvme_spec::{Cqe, Sqe, Status};
use zerocopy::IntoBytes;

use crate::config::{LatencySpec, SimConfig};
use crate::dma::Mapper;
use crate::faults::{CmdInfo, FaultSet, Faults};
use crate::shared::{Bus, Shared, EV_BAD_DB, EV_CC, EV_FAULT, EV_MSIX, EV_NSSR};
use crate::state::DriveState;

/// The most SQEs fetched from one queue in one DMA read.
const FETCH_BATCH: usize = 64;

pub(crate) struct Sq {
    pub base: u64,
    pub size: u32,
    pub head: u32,
    pub cqid: u16,
    /// Priority class for weighted round robin: 0 urgent, 1 high, 2 medium, 3 low.
    pub prio: u8,
    last_db: u32,
}

pub(crate) struct Cq {
    pub base: u64,
    pub size: u32,
    pub head: u32,
    pub tail: u32,
    pub phase: bool,
    pub iv: u16,
    pub ien: bool,
    /// SQs that post to this CQ.
    pub nsq: u16,
    backlog: VecDeque<Cqe>,
    irq_count: u32,
    irq_first: Option<Instant>,
    last_db: u32,
}

impl Cq {
    fn full(&self) -> bool {
        (self.tail + 1) % self.size == self.head
    }
}

struct Pending {
    due: Instant,
    seq: u64,
    sqid: u16,
    cqid: u16,
    cqe: Cqe,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

/// The result of a command as its handler returns it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Done {
    pub status: Status,
    pub dw0: u32,
    pub dw1: u32,
    /// Complete this much later (modelled latency).
    pub after: Duration,
}

impl Done {
    pub fn ok() -> Done {
        Done {
            status: Status::SUCCESS,
            dw0: 0,
            dw1: 0,
            after: Duration::ZERO,
        }
    }
    pub fn dw0(dw0: u32) -> Done {
        Done { dw0, ..Done::ok() }
    }
    pub fn err(status: Status) -> Done {
        Done {
            status,
            ..Done::ok()
        }
    }
    pub fn generic(code: u8) -> Done {
        Done::err(Status::new(sct::GENERIC, code).dnr())
    }
    pub fn specific(code: u8) -> Done {
        Done::err(Status::new(sct::COMMAND_SPECIFIC, code).dnr())
    }
    pub fn media(code: u8) -> Done {
        Done::err(Status::new(sct::MEDIA_ERROR, code))
    }
    pub fn after(mut self, d: Duration) -> Done {
        self.after = d;
        self
    }
}

/// What a handler asks the queue machinery to do.
pub(crate) enum Outcome {
    /// Post this completion.
    Done(Done),
    /// The command stays outstanding (an Asynchronous Event Request); it completes later.
    Hold,
}

impl From<Done> for Outcome {
    fn from(d: Done) -> Outcome {
        Outcome::Done(d)
    }
}

pub(crate) struct Controller {
    pub sh: Arc<Shared>,
    pub bus: Bus,
    pub cfg: SimConfig,
    pub faults: Arc<Faults>,
    pub enabled: bool,
    pub cc: u32,
    pub mps: u64,
    wrr: bool,
    pub sqs: Vec<Option<Sq>>,
    pub cqs: Vec<Option<Cq>>,
    /// Existing I/O SQ ids, ascending.
    pub io_sqs: Vec<u16>,
    rr_next: usize,
    pending: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    dirty_cqs: Vec<u16>,
    sqe_buf: Vec<Sqe>,
    pub map: Mapper,
    pub buf: Vec<u8>,
    pub mbuf: Vec<u8>,
    pub rng: fastrand::Rng,
    /// Commands the host asked to abort before they were fetched: (sqid, cid).
    pub abort_list: Vec<(u16, u16)>,
    /// Features, logs, namespaces, firmware, background operations.
    pub st: DriveState,
    /// Deliver queued asynchronous events after the current command completes.
    pub events_after: bool,
    in_command: bool,
    /// The fault set of the command being executed.
    pub fx: FaultSet,
    /// The benchmark profile's timeline and write cache (`profile=bench`).
    pub perf: Option<crate::perf::PerfModel>,
    /// Benchmark profile: when CSTS.RDY comes after the latest enable (None: not waiting).
    ready_at: Option<Instant>,
    /// Benchmark profile: the next enable is the first after power on; whether the power
    /// loss before it was without shutdown notification.
    boot: Option<bool>,
}

impl Controller {
    pub fn new(
        sh: Arc<Shared>,
        bus: Bus,
        cfg: SimConfig,
        faults: Arc<Faults>,
    ) -> Result<Controller, crate::SimError> {
        let nq = cfg.queues as usize + 1;
        let st = DriveState::new(&cfg)?;
        let max_xfer = if cfg.mdts == 0 {
            1 << 20
        } else {
            4096usize << cfg.mdts
        };
        Ok(Controller {
            sh,
            bus,
            faults,
            enabled: false,
            cc: 0,
            mps: 4096,
            wrr: false,
            sqs: (0..nq).map(|_| None).collect(),
            cqs: (0..nq).map(|_| None).collect(),
            io_sqs: Vec::with_capacity(nq),
            rr_next: 0,
            pending: BinaryHeap::with_capacity(4096),
            seq: 0,
            dirty_cqs: Vec::with_capacity(nq),
            sqe_buf: vec![Sqe::default(); FETCH_BATCH],
            map: Mapper::new(),
            buf: vec![0; max_xfer],
            mbuf: vec![0; 64 * 1024],
            rng: fastrand::Rng::with_seed(0x5eed),
            abort_list: Vec::new(),
            st,
            fx: FaultSet::default(),
            events_after: false,
            in_command: false,
            perf: cfg
                .perf
                .map(|p| crate::perf::PerfModel::new(p, Instant::now())),
            ready_at: None,
            // A drive that comes out of the box was shut down cleanly.
            boot: cfg.perf.map(|_| false),
            cfg,
        })
    }

    /// A latency drawn from a latency spec.
    pub fn latency(&mut self, l: LatencySpec) -> Duration {
        if l.min == l.max {
            return l.min;
        }
        let span = (l.max - l.min).as_nanos() as u64;
        l.min + Duration::from_nanos(self.rng.u64(0..=span))
    }

    fn set_csts(&self, set: u32, clear: u32) {
        let _ = self
            .sh
            .csts
            .fetch_update(SeqCst, SeqCst, |v| Some((v & !clear) | set));
    }

    /// One pass of the device: returns whether anything was done and when it next has to look.
    pub fn poll(&mut self) -> (bool, Option<Instant>) {
        let mut work = false;
        let ev = self.sh.events.swap(0, SeqCst);
        if ev != 0 {
            work = true;
            self.handle_events(ev);
        }
        if !self.sh.powered.load(Relaxed) || self.sh.removed.load(Relaxed) {
            return (work, None);
        }
        let now_needed = !self.pending.is_empty()
            || self.st.has_background()
            || self.any_coalescing()
            || self.ready_at.is_some();
        let now = if now_needed {
            Some(Instant::now())
        } else {
            None
        };
        if let Some(now) = now {
            work |= self.st_background(now);
            if self.ready_at.is_some_and(|t| t <= now) {
                self.ready_at = None;
                self.set_csts(csts::RDY, 0);
                work = true;
            }
        }
        if !self.enabled || self.sh.csts.load(Relaxed) & csts::CFS != 0 {
            return (work, self.next_deadline());
        }
        if let Some(now) = now {
            while let Some(Reverse(p)) = self.pending.peek() {
                if p.due > now {
                    break;
                }
                let Reverse(p) = self.pending.pop().expect("peeked");
                self.post(p.sqid, p.cqid, p.cqe);
                work = true;
            }
        }
        work |= self.refresh_cq_heads();
        work |= self.arbitrate();
        if !self.dirty_cqs.is_empty() || now.is_some() {
            self.interrupts(now);
        }
        (work, self.next_deadline())
    }

    fn any_coalescing(&self) -> bool {
        !self.dirty_cqs.is_empty()
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut d = self.pending.peek().map(|Reverse(p)| p.due);
        if let Some(r) = self.ready_at {
            d = Some(d.map_or(r, |x| x.min(r)));
        }
        if let Some(b) = self.st.next_background() {
            d = Some(d.map_or(b, |x| x.min(b)));
        }
        for &q in &self.dirty_cqs {
            if let Some(Some(cq)) = self.cqs.get(q as usize) {
                if let Some(f) = cq.irq_first {
                    let t = f + self.coalescing_time();
                    d = Some(d.map_or(t, |x| x.min(t)));
                }
            }
        }
        d
    }

    fn handle_events(&mut self, ev: u32) {
        if ev & EV_FAULT != 0 {
            if self.faults.crash_request.swap(false, SeqCst) {
                panic!("firmware crash injected through Faults::firmware_crash");
            }
            if self.faults.fatal_request.swap(false, SeqCst) {
                self.set_csts(csts::CFS, 0);
            }
            if self.sh.removed.load(SeqCst) {
                self.drop_queues();
                self.enabled = false;
            }
        }
        if ev & EV_NSSR != 0 {
            self.controller_reset();
            self.sh.cc.store(0, SeqCst);
            self.cc = 0;
            self.set_csts(csts::NSSRO, csts::RDY | csts::CFS | (3 << 2));
        }
        if ev & EV_CC != 0 {
            self.handle_cc();
        }
        if ev & EV_MSIX != 0 {
            self.deliver_pending_msix();
        }
        if ev & EV_BAD_DB != 0 && self.enabled && self.sh.bad_db.swap(0, SeqCst) != 0 {
            self.doorbell_error(nvme_spec::log::aen::ERROR_INVALID_DOORBELL_REGISTER);
        }
    }

    fn handle_cc(&mut self) {
        let new = self.sh.cc.load(SeqCst);
        let old = self.cc;
        self.cc = new;
        if old & cc::EN != 0 && new & cc::EN == 0 {
            self.controller_reset();
            return;
        }
        if old & cc::EN == 0 && new & cc::EN != 0 {
            self.enable(new);
        }
        if self.enabled && cc::shn(new) != 0 && cc::shn(old) == 0 {
            self.set_csts(csts::SHST_OCCURRING, 3 << 2);
            self.st.flush_all();
            self.st.clean_shutdown = true;
            self.set_csts(csts::SHST_COMPLETE, 3 << 2);
        } else if cc::shn(new) == 0 && cc::shn(old) != 0 {
            self.set_csts(0, 3 << 2);
            self.st.clean_shutdown = false;
        }
    }

    fn enable(&mut self, ccv: u32) {
        let aqa = self.sh.aqa.load(SeqCst);
        let asq = self.sh.asq.load(SeqCst);
        let acq = self.sh.acq.load(SeqCst);
        let mps = cc::mps(ccv);
        let ams = cc::ams(ccv);
        let asqs = nvme_spec::regs::aqa::asqs(aqa) as u32 + 1;
        let acqs = nvme_spec::regs::aqa::acqs(aqa) as u32 + 1;
        let valid = mps <= 4
            && cc::css(ccv) == 0
            && (ams == 0 || ams == 1)
            && asqs >= 2
            && acqs >= 2
            && asq & 0xfff == 0
            && acq & 0xfff == 0
            && asq != 0
            && acq != 0
            && self.sh.csts.load(SeqCst) & csts::CFS == 0;
        if !valid {
            // As QEMU does: the controller does not become ready and the host times out.
            return;
        }
        self.mps = 4096 << mps;
        self.wrr = ams == 1;
        self.cqs[0] = Some(Cq {
            base: acq,
            size: acqs,
            head: 0,
            tail: 0,
            phase: true,
            iv: 0,
            ien: true,
            nsq: 1,
            backlog: VecDeque::with_capacity(64),
            irq_count: 0,
            irq_first: None,
            last_db: 0,
        });
        self.sqs[0] = Some(Sq {
            base: asq,
            size: asqs,
            head: 0,
            cqid: 0,
            prio: 0,
            last_db: 0,
        });
        self.sh.doorbells[0].store(0, SeqCst);
        self.sh.doorbells[1].store(0, SeqCst);
        self.sh.db_valid[0].store(true, SeqCst);
        self.sh.db_valid[1].store(true, SeqCst);
        self.enabled = true;
        self.sh.bad_db.store(0, SeqCst);
        self.st.on_enable();
        let boot = self.boot.take();
        match self.cfg.perf {
            Some(p) => {
                // The benchmark profile: CSTS.RDY comes after the drive's start-up time.
                self.set_csts(0, 3 << 2);
                let delay = match boot {
                    Some(true) => p.ready_dirty,
                    Some(false) => p.ready_clean,
                    None => p.ready_reset,
                };
                self.ready_at = Some(Instant::now() + delay);
            }
            None => self.set_csts(csts::RDY, 3 << 2),
        }
    }

    fn drop_queues(&mut self) {
        for q in self.sqs.iter_mut() {
            *q = None;
        }
        for q in self.cqs.iter_mut() {
            *q = None;
        }
        self.io_sqs.clear();
        for (d, v) in self.sh.doorbells.iter().zip(self.sh.db_valid.iter()) {
            v.store(false, SeqCst);
            d.store(0, SeqCst);
        }
        self.pending.clear();
        self.dirty_cqs.clear();
        self.abort_list.clear();
    }

    /// Controller reset (CC.EN 1 -> 0, NSSR, FLR, conventional reset): queues deleted, outstanding
    /// commands dropped, features back to defaults, pending firmware activated.
    pub fn controller_reset(&mut self) {
        self.drop_queues();
        self.enabled = false;
        self.ready_at = None;
        self.st.on_controller_reset();
        self.set_csts(0, csts::RDY | csts::CFS | (3 << 2));
    }

    /// Conventional reset or FLR: also the registers go back to their reset values.
    pub fn function_reset(&mut self) {
        self.controller_reset();
        self.cc = 0;
        self.sh.cc.store(0, SeqCst);
        self.sh.aqa.store(0, SeqCst);
        self.sh.asq.store(0, SeqCst);
        self.sh.acq.store(0, SeqCst);
        self.sh.intms.store(0, SeqCst);
        self.sh.cmbmsc.store(0, SeqCst);
        for (i, e) in self.sh.msix_table.iter().enumerate() {
            e.store(if i % 4 == 3 { 1 } else { 0 }, SeqCst);
        }
        for p in self.sh.msix_pba.iter() {
            p.store(0, SeqCst);
        }
        self.sh.csts.store(0, SeqCst);
    }

    /// Power removed: the write cache is lost unless flushed; unsafe shutdown counted unless a
    /// shutdown notification completed.
    pub fn power_loss(&mut self) {
        let dirty = !self.st.clean_shutdown;
        self.st.power_loss();
        self.function_reset();
        self.boot = Some(dirty);
    }

    /// Power applied again.
    pub fn power_up(&mut self) {
        self.function_reset();
        self.st.power_up();
    }

    // ---------------------------------------------------------------- queues

    /// Creates an I/O CQ (the admin command has validated the fields).
    pub fn create_cq(&mut self, qid: u16, base: u64, size: u32, iv: u16, ien: bool) {
        self.cqs[qid as usize] = Some(Cq {
            base,
            size,
            head: 0,
            tail: 0,
            phase: true,
            iv,
            ien,
            nsq: 0,
            backlog: VecDeque::with_capacity(16),
            irq_count: 0,
            irq_first: None,
            last_db: 0,
        });
        self.sh.doorbells[2 * qid as usize + 1].store(0, SeqCst);
        self.sh.db_valid[2 * qid as usize + 1].store(true, SeqCst);
    }

    /// Creates an I/O SQ bound to an existing CQ.
    pub fn create_sq(&mut self, qid: u16, base: u64, size: u32, cqid: u16, prio: u8) {
        self.sqs[qid as usize] = Some(Sq {
            base,
            size,
            head: 0,
            cqid,
            prio,
            last_db: 0,
        });
        if let Some(cq) = self.cqs[cqid as usize].as_mut() {
            cq.nsq += 1;
        }
        let pos = self.io_sqs.partition_point(|&q| q < qid);
        self.io_sqs.insert(pos, qid);
        self.sh.doorbells[2 * qid as usize].store(0, SeqCst);
        self.sh.db_valid[2 * qid as usize].store(true, SeqCst);
    }

    /// Deletes an I/O SQ: its commands still waiting for completion are completed as aborted.
    pub fn delete_sq(&mut self, qid: u16) {
        self.sh.db_valid[2 * qid as usize].store(false, SeqCst);
        let Some(sq) = self.sqs[qid as usize].take() else {
            return;
        };
        self.io_sqs.retain(|&q| q != qid);
        // Complete what is still in flight for this SQ, as aborted.
        let mut keep = Vec::new();
        let mut abort = Vec::new();
        for Reverse(p) in self.pending.drain() {
            if p.sqid == qid {
                abort.push(p);
            } else {
                keep.push(Reverse(p));
            }
        }
        self.pending.extend(keep);
        for p in abort {
            let mut cqe = p.cqe;
            cqe.status = Status::new(sct::GENERIC, sc::ABORTED_SQ_DELETION).field() << 1;
            self.post_raw(p.cqid, cqe);
        }
        if let Some(cq) = self.cqs[sq.cqid as usize].as_mut() {
            cq.nsq = cq.nsq.saturating_sub(1);
        }
        self.abort_list.retain(|&(s, _)| s != qid);
    }

    /// Deletes an I/O CQ (the admin command has checked no SQ uses it).
    pub fn delete_cq(&mut self, qid: u16) {
        self.sh.db_valid[2 * qid as usize + 1].store(false, SeqCst);
        self.cqs[qid as usize] = None;
        self.dirty_cqs.retain(|&q| q != qid);
    }

    /// Reads the CQ head doorbells: entries released by the host make room for the backlog.
    fn refresh_cq_heads(&mut self) -> bool {
        let mut work = false;
        for qid in 0..self.cqs.len() {
            if self.cqs[qid].is_none() {
                continue;
            }
            let v = self.sh.doorbells[2 * qid + 1].load(Acquire);
            let cq = self.cqs[qid].as_mut().expect("checked");
            if v == cq.head {
                continue;
            }
            let posted = (cq.tail + cq.size - cq.head) % cq.size;
            let release = (v.wrapping_add(cq.size).wrapping_sub(cq.head)) % cq.size;
            if v >= cq.size || release > posted {
                if v != cq.last_db {
                    cq.last_db = v;
                    self.invalid_doorbell();
                }
                continue;
            }
            cq.head = v;
            cq.last_db = v;
            work = true;
            while !cq.full() {
                let Some(e) = cq.backlog.pop_front() else {
                    break;
                };
                Self::write_cqe(&self.bus, cq, e);
                if !self.dirty_cqs.contains(&(qid as u16)) {
                    self.dirty_cqs.push(qid as u16);
                }
            }
        }
        work
    }

    fn sq_tail(&mut self, qid: u16) -> Option<u32> {
        let v = self.sh.doorbells[2 * qid as usize].load(Acquire);
        let sq = self.sqs[qid as usize].as_mut()?;
        if v >= sq.size {
            if v != sq.last_db {
                sq.last_db = v;
                self.invalid_doorbell();
            }
            return None;
        }
        sq.last_db = v;
        Some(v)
    }

    /// Fetches and executes up to `budget` commands of one SQ; returns how many.
    fn service_sq(&mut self, qid: u16, budget: u32) -> u32 {
        let Some(tail) = self.sq_tail(qid) else {
            return 0;
        };
        let (base, size, head, cqid) = {
            let sq = self.sqs[qid as usize].as_ref().expect("sq_tail checked");
            (sq.base, sq.size, sq.head, sq.cqid)
        };
        if tail == head {
            return 0;
        }
        // A CQ that could not take completions stops its SQs from being fetched.
        match self.cqs[cqid as usize].as_ref() {
            Some(cq) if cq.backlog.is_empty() => {}
            _ => return 0,
        }
        let avail = (tail + size - head) % size;
        let contiguous = if tail > head {
            tail - head
        } else {
            size - head
        };
        let n = avail.min(budget).min(contiguous).min(FETCH_BATCH as u32) as usize;
        let mut buf = std::mem::take(&mut self.sqe_buf);
        let fetched = self
            .bus
            .read(base + head as u64 * 64, buf[..n].as_mut_bytes())
            .is_ok();
        if !fetched {
            // The SQ is not reachable: the controller cannot go on sensibly.
            self.sqe_buf = buf;
            self.set_csts(csts::CFS, 0);
            return 0;
        }
        for sqe in buf.iter().take(n) {
            if let Some(sq) = self.sqs[qid as usize].as_mut() {
                sq.head = (sq.head + 1) % sq.size;
            } else {
                break; // deleted by the previous command
            }
            self.execute(qid, cqid, sqe);
        }
        self.sqe_buf = buf;
        n as u32
    }

    fn arbitrate(&mut self) -> bool {
        let mut work = false;
        // The admin queue first.
        while self.sqs[0].is_some() {
            let n = self.service_sq(0, FETCH_BATCH as u32);
            if n == 0 {
                break;
            }
            work = true;
        }
        if self.io_sqs.is_empty() {
            return work;
        }
        let arb = self.st.features.arbitration;
        let ab = arb & 7;
        let burst = if ab == 7 {
            FETCH_BATCH as u32
        } else {
            (1u32 << ab).min(FETCH_BATCH as u32)
        };
        let weights = [
            u32::MAX,
            ((arb >> 24) & 0xff) + 1,
            ((arb >> 16) & 0xff) + 1,
            ((arb >> 8) & 0xff) + 1,
        ];
        let mut budget: u32 = 4096;
        loop {
            let mut round = 0u32;
            let count = self.io_sqs.len();
            if count == 0 {
                break;
            }
            if self.wrr {
                // Urgent first, strictly; then high/medium/low by weight.
                for class in 0..4u8 {
                    for i in 0..count {
                        let Some(&qid) = self.io_sqs.get(i) else {
                            break;
                        };
                        let prio = self.sqs[qid as usize].as_ref().map_or(3, |s| s.prio);
                        if prio != class {
                            continue;
                        }
                        let w = if class == 0 {
                            burst
                        } else {
                            burst.saturating_mul(weights[class as usize])
                        };
                        let mut left = w.min(budget);
                        while left > 0 {
                            let n = self.service_sq(qid, left);
                            if n == 0 {
                                break;
                            }
                            left -= n;
                            round += n;
                            budget = budget.saturating_sub(n);
                        }
                    }
                }
            } else {
                for k in 0..count {
                    let i = (self.rr_next + k) % count;
                    let Some(&qid) = self.io_sqs.get(i) else {
                        break;
                    };
                    let n = self.service_sq(qid, burst.min(budget));
                    round += n;
                    budget = budget.saturating_sub(n);
                }
                self.rr_next = (self.rr_next + 1) % count.max(1);
            }
            if round == 0 {
                break;
            }
            work = true;
            if budget == 0 {
                break;
            }
            // Let completions out and admin commands in between rounds.
            if self.sqs[0].is_some() {
                let t = self.sh.doorbells[0].load(Relaxed);
                if self.sqs[0].as_ref().is_some_and(|s| s.head != t) {
                    break;
                }
            }
        }
        work
    }

    // ---------------------------------------------------------------- commands

    fn execute(&mut self, sqid: u16, cqid: u16, sqe: &Sqe) {
        let cid = sqe.cid();
        if !self.abort_list.is_empty() {
            if let Some(i) = self
                .abort_list
                .iter()
                .position(|&(s, c)| s == sqid && c == cid)
            {
                self.abort_list.swap_remove(i);
                let st = Status::new(sct::GENERIC, sc::ABORTED_BY_REQUEST);
                self.complete(sqid, cqid, cid, Done::err(st), sqe);
                return;
            }
        }
        self.fx = FaultSet::default();
        if self.faults.armed() {
            let lbas = if sqid != 0 {
                crate::io::lba_range(sqe)
            } else {
                None
            };
            let info = CmdInfo {
                sqid,
                opcode: sqe.opc(),
                nsid: sqe.nsid,
                lbas,
            };
            self.fx = self.faults.check(&info, &mut self.rng);
        }
        self.in_command = true;
        let out = if let Some(s) = self.fx.status {
            Outcome::Done(Done::err(s))
        } else if sqid == 0 {
            self.admin(sqe)
        } else {
            self.io(sqid, sqe).into()
        };
        self.in_command = false;
        if let Outcome::Done(d) = out {
            self.complete(sqid, cqid, cid, d, sqe);
        }
        if self.events_after {
            self.events_after = false;
            self.deliver_events();
        }
    }

    /// Completes a command: logs errors, applies completion faults, posts now or later.
    pub fn complete(&mut self, sqid: u16, cqid: u16, cid: u16, mut d: Done, sqe: &Sqe) {
        if !d.status.is_success() {
            self.st.log_error(sqid, cid, d.status, sqe);
        }
        let mut cqe = Cqe {
            dw0: d.dw0,
            dw1: d.dw1,
            sqhd: 0,
            sqid,
            cid,
            status: d.status.field() << 1,
        };
        let fx = std::mem::take(&mut self.fx);
        if fx.any() {
            if fx.drop {
                return;
            }
            if let Some(x) = fx.wrong_cid {
                cqe.cid ^= if x == 0 { 0x8000 } else { x };
            }
            if let Some(q) = fx.wrong_sqid {
                cqe.sqid = q;
            }
            if let Some(extra) = fx.delay {
                d.after += extra;
            }
            if fx.duplicate {
                self.complete_cqe(sqid, cqid, cqe, d.after);
            }
        }
        self.complete_cqe(sqid, cqid, cqe, d.after);
    }

    fn complete_cqe(&mut self, sqid: u16, cqid: u16, cqe: Cqe, after: Duration) {
        if after.is_zero() {
            self.post(sqid, cqid, cqe);
        } else {
            self.seq += 1;
            self.pending.push(Reverse(Pending {
                due: Instant::now() + after,
                seq: self.seq,
                sqid,
                cqid,
                cqe,
            }));
        }
    }

    /// Completes a held command (AER) on the admin queue.
    pub fn complete_held(&mut self, cid: u16, dw0: u32) {
        self.complete_held_status(cid, dw0, Status::new(0, 0));
    }

    /// Completes a held command (AER) on the admin queue with `status`.
    pub fn complete_held_status(&mut self, cid: u16, dw0: u32, status: Status) {
        let cqe = Cqe {
            dw0,
            dw1: 0,
            sqhd: 0,
            sqid: 0,
            cid,
            status: status.field() << 1,
        };
        self.post(0, 0, cqe);
    }

    /// Whether a command is waiting in the latency model; if so completes it as aborted.
    pub fn abort_pending(&mut self, sqid: u16, cid: u16) -> bool {
        let mut found = None;
        let mut keep = Vec::new();
        for Reverse(p) in self.pending.drain() {
            if found.is_none() && p.sqid == sqid && p.cqe.cid == cid && p.cqe.sqid == sqid {
                found = Some(p);
            } else {
                keep.push(Reverse(p));
            }
        }
        self.pending.extend(keep);
        match found {
            Some(p) => {
                let mut cqe = p.cqe;
                cqe.status = Status::new(sct::GENERIC, sc::ABORTED_BY_REQUEST).field() << 1;
                self.post(p.sqid, p.cqid, cqe);
                true
            }
            None => false,
        }
    }

    fn post(&mut self, sqid: u16, cqid: u16, mut cqe: Cqe) {
        if let Some(Some(sq)) = self.sqs.get(sqid as usize) {
            cqe.sqhd = sq.head as u16;
        }
        self.post_raw(cqid, cqe);
    }

    fn post_raw(&mut self, cqid: u16, cqe: Cqe) {
        let Some(Some(cq)) = self.cqs.get_mut(cqid as usize) else {
            return;
        };
        if cq.full() || !cq.backlog.is_empty() {
            // The host has not released entries: refresh the head once, else hold the entry.
            let v = self.sh.doorbells[2 * cqid as usize + 1].load(Acquire);
            let posted = (cq.tail + cq.size - cq.head) % cq.size;
            let release = (v.wrapping_add(cq.size).wrapping_sub(cq.head)) % cq.size;
            if v < cq.size && release <= posted {
                cq.head = v;
            }
            if cq.full() || !cq.backlog.is_empty() {
                cq.backlog.push_back(cqe);
                return;
            }
        }
        Self::write_cqe(&self.bus, cq, cqe);
        if cq.irq_count == 1 && !self.dirty_cqs.contains(&cqid) {
            self.dirty_cqs.push(cqid);
        }
    }

    fn write_cqe(bus: &Bus, cq: &mut Cq, cqe: Cqe) {
        let addr = cq.base + cq.tail as u64 * 16;
        let d = cqe.dwords();
        let mut first = [0u8; 12];
        first[0..4].copy_from_slice(&d[0].to_le_bytes());
        first[4..8].copy_from_slice(&d[1].to_le_bytes());
        first[8..12].copy_from_slice(&d[2].to_le_bytes());
        let dw3 = (d[3] & !(1 << 16)) | ((cq.phase as u32) << 16);
        let _ = bus.write(addr, &first);
        let _ = bus.write_dword_release(addr + 12, dw3);
        cq.tail += 1;
        if cq.tail == cq.size {
            cq.tail = 0;
            cq.phase = !cq.phase;
        }
        cq.irq_count += 1;
    }

    // ---------------------------------------------------------------- interrupts

    fn coalescing_time(&self) -> Duration {
        Duration::from_micros(((self.st.features.int_coalescing >> 8) & 0xff) as u64 * 100)
    }

    fn interrupts(&mut self, now: Option<Instant>) {
        let thr = (self.st.features.int_coalescing & 0xff) + 1;
        let time = self.coalescing_time();
        let mut i = 0;
        while i < self.dirty_cqs.len() {
            let qid = self.dirty_cqs[i];
            let Some(Some(cq)) = self.cqs.get_mut(qid as usize) else {
                self.dirty_cqs.swap_remove(i);
                continue;
            };
            if cq.irq_count == 0 || !cq.ien {
                cq.irq_count = 0;
                cq.irq_first = None;
                self.dirty_cqs.swap_remove(i);
                continue;
            }
            let coalesce = qid != 0 && !time.is_zero() && !self.st.coalescing_disabled(cq.iv);
            if coalesce && cq.irq_count < thr {
                let now = now.unwrap_or_else(Instant::now);
                let first = *cq.irq_first.get_or_insert(now);
                if now < first + time {
                    i += 1;
                    continue;
                }
            }
            let iv = cq.iv;
            cq.irq_count = 0;
            cq.irq_first = None;
            self.dirty_cqs.swap_remove(i);
            self.signal(iv);
        }
    }

    /// Sends MSI-X message `v`, or sets its pending bit while it is masked.
    pub fn signal(&self, v: u16) {
        let sh = &self.sh;
        if !sh.msix_enabled.load(Relaxed) || v >= sh.layout.vectors {
            return;
        }
        let e = v as usize * 4;
        if sh.msix_fmask.load(Relaxed) || sh.msix_table[e + 3].load(Acquire) & 1 != 0 {
            sh.msix_pba[v as usize / 64].fetch_or(1 << (v % 64), SeqCst);
            return;
        }
        let addr = sh.msix_table[e].load(Acquire) as u64
            | (sh.msix_table[e + 1].load(Acquire) as u64) << 32;
        let data = sh.msix_table[e + 2].load(Acquire);
        let _ = self.bus.host_msix(addr, data);
    }

    fn deliver_pending_msix(&mut self) {
        if !self.sh.msix_enabled.load(SeqCst) || self.sh.msix_fmask.load(SeqCst) {
            return;
        }
        for w in 0..self.sh.msix_pba.len() {
            let bits = self.sh.msix_pba[w].load(SeqCst);
            if bits == 0 {
                continue;
            }
            for b in 0..64 {
                if bits & (1 << b) == 0 {
                    continue;
                }
                let v = (w * 64 + b) as u16;
                if self.sh.msix_table[v as usize * 4 + 3].load(SeqCst) & 1 == 0 {
                    self.sh.msix_pba[w].fetch_and(!(1 << b), SeqCst);
                    self.signal(v);
                }
            }
        }
    }

    // ---------------------------------------------------------------- events

    /// An invalid doorbell write: an error asynchronous event (invalid doorbell write value).
    pub fn invalid_doorbell(&mut self) {
        self.doorbell_error(nvme_spec::log::aen::ERROR_INVALID_DOORBELL_VALUE);
    }

    /// A doorbell write the controller refuses (`info`: invalid register or invalid value): an
    /// Error Information log entry with no command attached and an error asynchronous event.
    fn doorbell_error(&mut self, info: u8) {
        self.st.log_error(
            0xffff,
            0xffff,
            Status::new(sct::GENERIC, sc::INVALID_FIELD),
            &Sqe::default(),
        );
        self.raise_event(crate::state::AE_ERROR, info, 0x01);
    }

    /// Queues an asynchronous event and completes an outstanding AER if one is waiting.
    pub fn raise_event(&mut self, ty: u8, info: u8, log: u8) {
        self.st
            .aer
            .events
            .push_back(ty as u32 | (info as u32) << 8 | (log as u32) << 16);
        if self.in_command {
            // The command that caused the event completes first.
            self.events_after = true;
        } else {
            self.deliver_events();
        }
    }

    /// Completes outstanding AERs with queued events whose type is not masked.
    pub fn deliver_events(&mut self) {
        while !self.st.aer.outstanding.is_empty() {
            let masked = self.st.aer.masked;
            let Some(i) = self
                .st
                .aer
                .events
                .iter()
                .position(|e| masked & (1 << (e & 7)) == 0)
            else {
                break;
            };
            let e = self.st.aer.events.remove(i).expect("position found");
            self.st.aer.masked |= 1 << (e & 7);
            let cid = self.st.aer.outstanding.remove(0);
            self.complete_held(cid, e);
        }
    }
}

impl Bus {
    /// An MSI-X message write: host memory only, with release ordering.
    pub fn host_msix(&self, addr: u64, data: u32) -> Result<(), crate::DmaFault> {
        self.write_dword_release(addr, data)
    }
}

/// One pass of the device. A panic in it (a defect of the simulator) is what a firmware crash is
/// on a real drive: the controller reports Controller Fatal Status and stops processing commands
/// until the host resets it, instead of the device thread dying silently.
fn pass(sh: &Shared, ctrl: &parking_lot::Mutex<Controller>) -> (bool, Option<Instant>) {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ctrl.lock().poll())) {
        Ok(r) => r,
        Err(_) => {
            sh.panics.fetch_add(1, SeqCst);
            sh.csts.fetch_or(csts::CFS, SeqCst);
            (false, None)
        }
    }
}

/// The device thread: spins while there is work, then parks until a doorbell or a timer.
pub(crate) fn run(sh: Arc<Shared>, ctrl: Arc<parking_lot::Mutex<Controller>>) {
    const SPIN: u32 = 2000;
    let mut idle = 0u32;
    loop {
        if sh.stop.load(Relaxed) {
            break;
        }
        let (work, deadline) = pass(&sh, &ctrl);
        if work {
            idle = 0;
            continue;
        }
        idle += 1;
        if idle < SPIN {
            std::hint::spin_loop();
            if idle.is_multiple_of(64) {
                std::thread::yield_now();
            }
            continue;
        }
        sh.sleeping.store(true, SeqCst);
        let (work, deadline2) = pass(&sh, &ctrl);
        if work || sh.stop.load(SeqCst) {
            sh.sleeping.store(false, SeqCst);
            idle = 0;
            continue;
        }
        let wait = deadline
            .or(deadline2)
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100));
        std::thread::park_timeout(wait);
        sh.sleeping.store(false, SeqCst);
        idle = SPIN / 2;
    }
}
