//! A submission/completion queue pair as the host drives it, admin or IO.
//!
//! Trackers are preallocated, one per command slot, and the command identifier is the tracker's
//! index, so submission and completion allocate nothing. Each tracker owns one page for its PRP
//! list or SGL, preallocated with the queue. Posting a command and ringing the doorbell are
//! separate steps (lazy doorbells batch many posts into one ring). Completions are read phase
//! first: the dword holding the phase tag is loaded with acquire ordering, then the rest.
//!
//! The device under test is buggy by definition: a completion whose CID is not outstanding, a
//! duplicate, a wrong SQ identifier or an SQ head out of range is recorded as an anomaly and
//! skipped, never trusted; a command that does not complete in time is completed by the host
//! with status 07/ff and its slot stays reserved until the device answers or the queue goes.

use crate::cmdlog::{ns_at, CmdLog};
use crate::error::{DriverError, Result};
use nvme_pci::{DmaMemory, PciFunction};
use nvme_spec::sgl::SglDescriptor;
use nvme_spec::{Cqe, Sqe};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zerocopy::FromBytes;

/// The data a command transfers: `len` bytes at `offset` of `mem`.
#[derive(Clone, Debug)]
pub struct DataRef {
    /// The memory (kept alive while the command is outstanding).
    pub mem: DmaMemory,
    /// Offset of the first byte.
    pub offset: usize,
    /// Number of bytes.
    pub len: usize,
    /// Describe it with an SGL data block instead of PRPs.
    pub sgl: bool,
}

/// Status field (phase included) the host gives a command it timed out: all ones, 07/ff.
pub const TIMEOUT_STATUS: u16 = 0xffff;

/// Per-opcode command timeouts of one controller, in milliseconds (0 in a table: use the default).
pub struct Timeouts {
    default_ms: AtomicU32,
    admin: [AtomicU32; 256],
    io: [AtomicU32; 256],
}

/// The default command timeout: 10 seconds, as pynvme and PyNVMe3.
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            default_ms: AtomicU32::new(DEFAULT_TIMEOUT_MS),
            admin: std::array::from_fn(|_| AtomicU32::new(0)),
            io: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }
}

impl Timeouts {
    /// The timeout applying to `opcode` on an admin (`io == false`) or IO queue.
    pub fn get(&self, io: bool, opcode: u8) -> u32 {
        let table = if io { &self.io } else { &self.admin };
        let t = table[opcode as usize].load(Ordering::Relaxed);
        if t != 0 {
            t
        } else {
            self.default_ms.load(Ordering::Relaxed)
        }
    }

    /// The default timeout in ms.
    pub fn default_ms(&self) -> u32 {
        self.default_ms.load(Ordering::Relaxed)
    }

    /// Sets the default timeout in ms.
    pub fn set_default_ms(&self, ms: u32) {
        self.default_ms.store(ms.max(1), Ordering::Relaxed)
    }

    /// Sets the timeout of one opcode in ms (0 returns it to the default).
    pub fn set(&self, io: bool, opcode: u8, ms: u32) {
        let table = if io { &self.io } else { &self.admin };
        table[opcode as usize].store(ms, Ordering::Relaxed)
    }

    /// Back to 10 s for everything, as after a controller reset.
    pub fn restore(&self) {
        self.default_ms.store(DEFAULT_TIMEOUT_MS, Ordering::Relaxed);
        for t in self.admin.iter().chain(self.io.iter()) {
            t.store(0, Ordering::Relaxed);
        }
    }
}

/// A completed command handed back to the submitter.
#[derive(Debug)]
pub struct Completion<C> {
    /// The completion entry (host-made for a timeout: all ones but CID and SQ id).
    pub cqe: Cqe,
    /// The command as submitted.
    pub sqe: Sqe,
    /// What the submitter attached to the command.
    pub ctx: C,
    /// The command's data, if any.
    pub data: Option<DataRef>,
    /// Latency from submission to completion, µs.
    pub latency_us: u64,
    /// The host completed it because it timed out.
    pub timed_out: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Slot {
    Free,
    Busy,
    /// Completed by the host after a timeout; reserved until the device answers.
    TimedOut,
}

struct Tracker<C> {
    slot: Slot,
    sqe: Sqe,
    ctx: Option<C>,
    data: Option<DataRef>,
    submitted: Instant,
    deadline: Option<Instant>,
    log_seq: u64,
}

/// Parameters of a queue pair the host has set up in memory.
pub struct QueueParams {
    /// Queue identifier (0 = admin).
    pub qid: u16,
    /// Number of entries of the SQ and CQ.
    pub entries: u16,
    /// Doorbell stride (CAP.DSTRD).
    pub dstrd: u8,
    /// Memory page size in bytes (CC.MPS).
    pub page_size: usize,
    /// Ring the SQ doorbell only in `flush`/`poll`, not at every submission.
    pub lazy_doorbell: bool,
}

/// One SQ/CQ pair driven by the host.
pub struct QueuePair<C> {
    pci: Arc<dyn PciFunction>,
    qid: u16,
    entries: u16,
    sq: DmaMemory,
    cq: DmaMemory,
    lists: DmaMemory,
    page_size: usize,
    sq_tail: u16,
    sq_head: u16,
    cq_head: u16,
    phase: bool,
    sq_db: u64,
    cq_db: u64,
    trackers: Vec<Tracker<C>>,
    /// Free CIDs, handed out oldest-freed first, so a late or duplicate completion of a CID
    /// finds it free (and is caught) rather than credited to the next command.
    free: VecDeque<u16>,
    outstanding: usize,
    lazy_doorbell: bool,
    doorbell_pending: bool,
    next_deadline: Option<Instant>,
    timeouts: Arc<Timeouts>,
    cmdlog: CmdLog,
    anomalies: Vec<String>,
    latest_cid: u16,
    latest_latency_us: u64,
    /// Whether the queue is usable (false after deletion or a controller reset).
    pub alive: bool,
    /// The controller epoch the queue was created in (see [`crate::lifecycle`]).
    epoch: u64,
}

impl<C> QueuePair<C> {
    /// Allocates the SQ, CQ and per-tracker list pages of a queue pair; nothing is sent to the
    /// device (the caller programs AQA/ASQ/ACQ or sends Create I/O CQ/SQ with [`Self::sq_addr`]
    /// and [`Self::cq_addr`]).
    pub fn new(pci: Arc<dyn PciFunction>, p: QueueParams, timeouts: Arc<Timeouts>) -> Result<Self> {
        if p.entries < 2 {
            return Err(DriverError::invalid(
                "depth",
                format!("{} entries: a queue has at least 2", p.entries),
            ));
        }
        let sq = pci.dma_alloc(p.entries as usize * 64)?;
        let cq = pci.dma_alloc(p.entries as usize * 16)?;
        let ntrackers = p.entries as usize - 1;
        let lists = pci.dma_alloc(ntrackers * p.page_size)?;
        let now = Instant::now();
        let trackers = (0..ntrackers)
            .map(|_| Tracker {
                slot: Slot::Free,
                sqe: Sqe::default(),
                ctx: None,
                data: None,
                submitted: now,
                deadline: None,
                log_seq: 0,
            })
            .collect();
        Ok(QueuePair {
            qid: p.qid,
            entries: p.entries,
            sq,
            cq,
            lists,
            page_size: p.page_size,
            sq_tail: 0,
            sq_head: 0,
            cq_head: 0,
            phase: true,
            sq_db: nvme_spec::regs::sq_tail_doorbell(p.qid, p.dstrd) as u64,
            cq_db: nvme_spec::regs::cq_head_doorbell(p.qid, p.dstrd) as u64,
            trackers,
            free: (0..ntrackers as u16).collect(),
            outstanding: 0,
            lazy_doorbell: p.lazy_doorbell,
            doorbell_pending: false,
            next_deadline: None,
            timeouts,
            cmdlog: CmdLog::default(),
            anomalies: Vec::new(),
            latest_cid: 0,
            latest_latency_us: 0,
            alive: true,
            epoch: 0,
            pci,
        })
    }

    /// Queue identifier.
    pub fn qid(&self) -> u16 {
        self.qid
    }

    /// The controller epoch the queue was created in.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Records the controller epoch the queue is created in (0 until set).
    pub fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// Number of entries.
    pub fn entries(&self) -> u16 {
        self.entries
    }

    /// Bus address of the SQ.
    pub fn sq_addr(&self) -> u64 {
        self.sq.iova()
    }

    /// Bus address of the CQ.
    pub fn cq_addr(&self) -> u64 {
        self.cq.iova()
    }

    /// Commands submitted and not completed (timed-out ones are completed).
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Whether a command can be submitted now.
    pub fn has_free_slot(&self) -> bool {
        !self.free.is_empty() && (self.sq_tail + 1) % self.entries != self.sq_head
    }

    /// CID of the latest submitted command.
    pub fn latest_cid(&self) -> u16 {
        self.latest_cid
    }

    /// Latency of the latest completed command, µs.
    pub fn latest_latency_us(&self) -> u64 {
        self.latest_latency_us
    }

    /// Whether doorbells are batched.
    pub fn lazy_doorbell(&self) -> bool {
        self.lazy_doorbell
    }

    /// The command log of this queue.
    pub fn cmdlog(&self) -> &CmdLog {
        &self.cmdlog
    }

    /// The memory the device may still reach through this queue: its rings, its PRP list pages
    /// and the data of the commands it has not answered (outstanding or timed out).
    pub fn memory_in_use(&self) -> Vec<DmaMemory> {
        let mut v = vec![self.sq.clone(), self.cq.clone(), self.lists.clone()];
        v.extend(
            self.trackers
                .iter()
                .filter(|t| t.slot != Slot::Free)
                .filter_map(|t| t.data.as_ref().map(|d| d.mem.clone())),
        );
        v
    }

    /// Takes the device misbehaviours noticed since the last call.
    pub fn take_anomalies(&mut self) -> Vec<String> {
        std::mem::take(&mut self.anomalies)
    }

    /// Fills in the data pointer of `sqe` for `data`, using tracker `cid`'s list page when needed.
    fn build_data_pointer(&self, cid: u16, sqe: &mut Sqe, data: &DataRef) -> Result<()> {
        let addr = data.mem.iova() + data.offset as u64;
        if data.sgl {
            let d = SglDescriptor::data_block(addr, data.len as u32);
            let (a, b) = d.to_dptr();
            sqe.prp1 = a;
            sqe.prp2 = b;
            sqe.set_psdt(1);
            return Ok(());
        }
        let ps = self.page_size as u64;
        sqe.set_psdt(0);
        sqe.prp1 = addr;
        let first = (ps - addr % ps) as usize;
        if data.len <= first {
            sqe.prp2 = 0;
            return Ok(());
        }
        let next_page = (addr & !(ps - 1)) + ps;
        let rest = data.len - first;
        if rest <= self.page_size {
            sqe.prp2 = next_page;
            return Ok(());
        }
        let n = rest.div_ceil(self.page_size);
        let per_list = self.page_size / 8;
        if n > per_list {
            return Err(self.check_data(data).expect_err("too many PRP entries"));
        }
        let list_off = cid as usize * self.page_size;
        self.lists.with_bytes_mut(list_off, n * 8, |l| {
            for (i, e) in l.chunks_exact_mut(8).enumerate() {
                e.copy_from_slice(&(next_page + i as u64 * ps).to_le_bytes());
            }
        });
        sqe.prp2 = self.lists.iova() + list_off as u64;
        Ok(())
    }

    /// Whether the driver can describe `data` for a command: PRPs fit one list page per command.
    pub fn check_data(&self, data: &DataRef) -> Result<()> {
        let ps = self.page_size;
        let addr = data.mem.iova() as usize + data.offset;
        let pages = (addr % ps + data.len).div_ceil(ps);
        let per_list = ps / 8;
        if !data.sgl && pages > per_list + 1 {
            return Err(DriverError::unsafe_for_host(
                "buf",
                format!(
                    "{} bytes need {pages} PRP entries; the driver describes at most {} (one PRP \
                     list page) and would have to let the device read past its list",
                    data.len,
                    per_list + 1
                ),
            ));
        }
        Ok(())
    }

    /// Whether a command can be posted now: the queue is alive and has a free slot.
    pub fn check_submit(&self) -> Result<()> {
        if !self.alive {
            return Err(DriverError::QueueGone {
                qid: self.qid,
                epoch: self.epoch,
            });
        }
        if (self.sq_tail + 1) % self.entries == self.sq_head || self.free.is_empty() {
            return Err(DriverError::QueueFull {
                qid: self.qid,
                outstanding: self.outstanding,
                entries: self.entries,
            });
        }
        Ok(())
    }

    /// Posts a command: assigns its CID, builds its data pointer (unless `raw_dptr`), writes it
    /// into the SQ, and rings the doorbell unless doorbells are lazy. Returns the CID.
    pub fn submit(
        &mut self,
        mut sqe: Sqe,
        data: Option<DataRef>,
        raw_dptr: bool,
        ctx: C,
        timeout: bool,
    ) -> Result<u16> {
        self.check_submit()?;
        let cid = *self.free.front().expect("checked above");
        sqe.set_cid(cid);
        if let Some(d) = data.as_ref().filter(|_| !raw_dptr) {
            self.build_data_pointer(cid, &mut sqe, d)?;
        }
        self.free.pop_front();
        let now = Instant::now();
        let deadline = timeout.then(|| {
            now + Duration::from_millis(self.timeouts.get(self.qid != 0, sqe.opc()) as u64)
        });
        if let Some(d) = deadline {
            self.next_deadline = Some(self.next_deadline.map_or(d, |n| n.min(d)));
        }
        let log_seq = self.cmdlog.submit(self.qid, &sqe, ns_at(now));
        let t = &mut self.trackers[cid as usize];
        *t = Tracker {
            slot: Slot::Busy,
            sqe,
            ctx: Some(ctx),
            data,
            submitted: now,
            deadline,
            log_seq,
        };
        self.sq.write(
            self.sq_tail as usize * 64,
            zerocopy::IntoBytes::as_bytes(&sqe),
        );
        self.sq_tail = (self.sq_tail + 1) % self.entries;
        self.outstanding += 1;
        self.latest_cid = cid;
        if self.lazy_doorbell {
            self.doorbell_pending = true;
        } else {
            self.pci.bar_write32(0, self.sq_db, self.sq_tail as u32);
        }
        Ok(cid)
    }

    /// Rings the SQ doorbell if commands were posted since the last ring.
    pub fn ring(&mut self) {
        if self.doorbell_pending {
            self.doorbell_pending = false;
            self.pci.bar_write32(0, self.sq_db, self.sq_tail as u32);
        }
    }

    /// Whether the CQ entry at the head has the current phase (a completion is waiting).
    pub fn cq_pending(&self) -> bool {
        let dw3 = self.cq.load_u32(self.cq_head as usize * 16 + 12);
        ((dw3 >> 16) & 1 != 0) == self.phase
    }

    /// Reaps up to `max` completions, calling `on` for each; rings the CQ head doorbell once.
    /// Returns the number of completions delivered. A queue the host abandoned is never read:
    /// what a device writes into it late is ignored, not taken for a duplicate.
    pub fn poll(&mut self, max: usize, on: &mut dyn FnMut(Completion<C>)) -> usize {
        if !self.alive {
            return 0;
        }
        self.ring();
        let mut delivered = 0;
        let mut consumed = false;
        // One clock read per batch of completions: they were all seen at the same poll.
        let mut batch_time: Option<Instant> = None;
        while delivered < max && self.cq_pending() {
            let off = self.cq_head as usize * 16;
            let cqe = self
                .cq
                .with_bytes(off, 16, |b| Cqe::read_from_bytes(b).expect("16 bytes"));
            self.cq_head += 1;
            if self.cq_head == self.entries {
                self.cq_head = 0;
                self.phase = !self.phase;
            }
            consumed = true;
            let now = *batch_time.get_or_insert_with(Instant::now);
            if let Some(c) = self.accept(cqe, now) {
                on(c);
                delivered += 1;
            }
        }
        if consumed {
            self.pci.bar_write32(0, self.cq_db, self.cq_head as u32);
        }
        delivered
    }

    /// Checks one CQE against what is outstanding; returns the completion it ends, if any.
    fn accept(&mut self, cqe: Cqe, now: Instant) -> Option<Completion<C>> {
        if cqe.sqid != self.qid {
            self.anomalies.push(format!(
                "completion on CQ {} names SQ {} (cid {}, status {}): ignored",
                self.qid,
                cqe.sqid,
                cqe.cid,
                cqe.status()
            ));
            return None;
        }
        if cqe.sqhd < self.entries {
            self.sq_head = cqe.sqhd;
        } else {
            self.anomalies.push(format!(
                "completion on CQ {} has SQ head {} beyond the queue size {}",
                self.qid, cqe.sqhd, self.entries
            ));
        }
        let Some(t) = self.trackers.get_mut(cqe.cid as usize) else {
            self.anomalies.push(format!(
                "completion on CQ {} has cid {} which was never submitted: ignored",
                self.qid, cqe.cid
            ));
            return None;
        };
        match t.slot {
            Slot::Free => {
                self.anomalies.push(format!(
                    "completion on CQ {} for cid {} which is not outstanding (duplicate or wrong cid, status {}): ignored",
                    self.qid,
                    cqe.cid,
                    cqe.status()
                ));
                None
            }
            Slot::TimedOut => {
                self.anomalies.push(format!(
                    "late completion on CQ {} for cid {} after its timeout, status {}",
                    self.qid,
                    cqe.cid,
                    cqe.status()
                ));
                t.slot = Slot::Free;
                t.data = None;
                self.free.push_back(cqe.cid);
                None
            }
            Slot::Busy => {
                let latency_us = now.duration_since(t.submitted).as_micros() as u64;
                t.slot = Slot::Free;
                let c = Completion {
                    cqe,
                    sqe: t.sqe,
                    ctx: t.ctx.take().expect("busy tracker has a context"),
                    data: t.data.take(),
                    latency_us,
                    timed_out: false,
                };
                self.cmdlog.complete(t.log_seq, &cqe, ns_at(now), false);
                self.free.push_back(cqe.cid);
                self.outstanding -= 1;
                self.latest_latency_us = latency_us;
                Some(c)
            }
        }
    }

    /// The earliest deadline of an outstanding command, if any has one.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.next_deadline
    }

    /// Completes every command whose deadline passed with the timeout status, calling `on`;
    /// returns how many. Their slots stay reserved until the device answers them.
    pub fn expire(&mut self, now: Instant, on: &mut dyn FnMut(Completion<C>)) -> usize {
        match self.next_deadline {
            Some(d) if d <= now => {}
            _ => return 0,
        }
        let mut n = 0;
        let mut next: Option<Instant> = None;
        for cid in 0..self.trackers.len() {
            let t = &mut self.trackers[cid];
            if t.slot != Slot::Busy {
                continue;
            }
            let Some(d) = t.deadline else { continue };
            if d > now {
                next = Some(next.map_or(d, |x| x.min(d)));
                continue;
            }
            t.slot = Slot::TimedOut;
            let cqe = Cqe {
                dw0: u32::MAX,
                dw1: u32::MAX,
                sqhd: self.sq_head,
                sqid: self.qid,
                cid: cid as u16,
                status: TIMEOUT_STATUS,
            };
            self.cmdlog.complete(t.log_seq, &cqe, ns_at(now), true);
            let latency_us = now.duration_since(t.submitted).as_micros() as u64;
            let c = Completion {
                cqe,
                sqe: t.sqe,
                ctx: t.ctx.take().expect("busy tracker has a context"),
                data: t.data.clone(),
                latency_us,
                timed_out: true,
            };
            self.outstanding -= 1;
            n += 1;
            on(c);
        }
        self.next_deadline = next;
        n
    }

    /// Ends every outstanding command without the device (controller reset, queue deletion):
    /// each is handed to `on` with status `status` (e.g. 00/08 aborted by SQ deletion), and all
    /// slots become free. The queue is unusable afterwards: it refuses commands
    /// ([`DriverError::QueueGone`]) and its ring is never read again; a re-created queue is a new
    /// `QueuePair` on fresh memory.
    ///
    /// Returns the data memory of the commands it ended: the device may still move their data
    /// until it is disabled (or the queue deleted), so the caller keeps it until then.
    #[must_use = "the device may still reach this memory: keep it until the device cannot"]
    pub fn abandon(
        &mut self,
        status: nvme_spec::Status,
        on: &mut dyn FnMut(Completion<C>),
    ) -> Vec<DmaMemory> {
        self.alive = false;
        let now = Instant::now();
        let mut held = Vec::new();
        for cid in 0..self.trackers.len() {
            let t = &mut self.trackers[cid];
            let was = t.slot;
            t.slot = Slot::Free;
            held.extend(t.data.take().map(|d| d.mem));
            if was == Slot::Busy {
                let cqe = Cqe {
                    dw0: 0,
                    dw1: 0,
                    sqhd: self.sq_head,
                    sqid: self.qid,
                    cid: cid as u16,
                    status: status.status1(self.phase),
                };
                self.cmdlog.complete(t.log_seq, &cqe, ns_at(now), false);
                let c = Completion {
                    cqe,
                    sqe: t.sqe,
                    ctx: t.ctx.take().expect("busy tracker has a context"),
                    data: None,
                    latency_us: now.duration_since(t.submitted).as_micros() as u64,
                    timed_out: false,
                };
                on(c);
            }
        }
        self.free = (0..self.trackers.len() as u16).collect();
        self.outstanding = 0;
        self.next_deadline = None;
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nvme_spec::Status;

    /// A queue pair in host memory on a simulated function; nothing is created on the device, so
    /// the tests write completion entries into its CQ themselves, as a device would.
    fn queue(entries: u16) -> QueuePair<u32> {
        let pci = nvme_pci::open("sim://").unwrap();
        let p = QueueParams {
            qid: 1,
            entries,
            dstrd: 0,
            page_size: 4096,
            lazy_doorbell: true,
        };
        let mut q = QueuePair::new(pci, p, Arc::new(Timeouts::default())).unwrap();
        q.set_epoch(7);
        q
    }

    /// Posts a completion for `cid` at CQ slot `slot` with the phase of the first pass.
    fn post(q: &QueuePair<u32>, slot: usize, cid: u16) {
        let cqe = Cqe {
            sqid: 1,
            cid,
            status: Status::new(0, 0).status1(true),
            ..Default::default()
        };
        q.cq.write(slot * 16, zerocopy::IntoBytes::as_bytes(&cqe));
    }

    #[test]
    fn a_completion_for_an_outstanding_cid_is_accepted_and_a_second_one_reported() {
        let mut q = queue(8);
        let cid = q.submit(Sqe::default(), None, false, 5, false).unwrap();
        post(&q, 0, cid);
        post(&q, 1, cid);
        let mut got = Vec::new();
        assert_eq!(q.poll(usize::MAX, &mut |c| got.push(c.ctx)), 1);
        assert_eq!(got, [5]);
        let a = q.take_anomalies();
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(a[0].contains("not outstanding"), "{a:?}");
    }

    #[test]
    fn an_abandoned_queue_is_never_read_again() {
        let mut q = queue(8);
        let cid = q.submit(Sqe::default(), None, false, 5, false).unwrap();
        let mut ended = Vec::new();
        let held = q.abandon(Status::new(0, 8), &mut |c| {
            ended.push((c.ctx, c.cqe.status()))
        });
        assert!(held.is_empty(), "the command had no data");
        assert_eq!(ended, [(5, Status::new(0, 8))]);
        // The device answers late, into the torn-down ring: nothing is read, nothing reported.
        post(&q, 0, cid);
        post(&q, 1, 3);
        assert_eq!(q.poll(usize::MAX, &mut |_| panic!("read a dead ring")), 0);
        assert!(q.take_anomalies().is_empty());
        assert_eq!(q.outstanding(), 0);
    }

    #[test]
    fn a_dead_queue_refuses_with_its_epoch_and_a_full_one_says_how_full() {
        let mut q = queue(4);
        for i in 0..3 {
            q.submit(Sqe::default(), None, false, i, false).unwrap();
        }
        match q.submit(Sqe::default(), None, false, 9, false) {
            Err(DriverError::QueueFull {
                qid: 1,
                outstanding: 3,
                entries: 4,
            }) => {}
            r => panic!("{r:?}"),
        }
        let _ = q.abandon(Status::new(0, 8), &mut |_| {});
        match q.submit(Sqe::default(), None, false, 9, false) {
            Err(DriverError::QueueGone { qid: 1, epoch: 7 }) => {}
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn a_completion_for_a_cid_never_issued_is_reported() {
        let mut q = queue(8);
        q.submit(Sqe::default(), None, false, 1, false).unwrap();
        post(&q, 0, 6);
        assert_eq!(q.poll(usize::MAX, &mut |_| {}), 0);
        let a = q.take_anomalies();
        assert!(a.iter().any(|m| m.contains("cid 6")), "{a:?}");
        assert_eq!(q.outstanding(), 1);
    }
}
