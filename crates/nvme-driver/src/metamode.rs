//! Metamode: IO queues that the script builds and drives itself, next to the driver's own queues.
//!
//! The driver's [`crate::qpair::Qpair`] owns its queues: it picks command identifiers, builds PRPs,
//! rings doorbells and checks every completion, so it cannot send a command with a duplicate CID,
//! a PRP list with odd offsets or a doorbell value beyond the queue. In metamode the script does
//! all of that: it places queues in memory it chose ([`QueueMemory`]), writes 64-byte SQEs into
//! slots ([`IoSq::set_entry`]), writes doorbells with any value ([`IoSq::set_tail`],
//! [`IoCq::set_head`]) and reads completion entries phase first ([`IoCq::entry`],
//! [`IoCq::wait_pbit`]). Only the creation and deletion of the queues go through the driver's
//! admin queue, and their ids are reserved with the controller so that no `Qpair` takes them.
//!
//! What the device may still touch stays alive: a queue keeps its memory, an SQ keeps the data
//! memory of the commands in its slots, and a queue dropped without deletion hands its memory to
//! the controller until the next reset.
//!
//! A doorbell value the host itself knows to be out of range (at least the queue size) is followed
//! by a short watch of the admin queue, so that the asynchronous event a device raises for it
//! ("invalid doorbell write value", 0x010100) is delivered at the write.
//!
//! Each SQ keeps a command log like a `Qpair`'s ([`IoSq::cmdlog`]): a tail doorbell logs the
//! SQEs it hands the device, and its CQ object logs their completions as it reaps them.

use crate::cmdlog::{now_ns, CmdLog, CmdLogEntry};
use crate::controller::{backoff, Controller};
use crate::error::{DriverError, Result};
use crate::queue::Completion;
use nvme_pci::DmaMemory;
use nvme_spec::cmd::{admin, nvm};
use nvme_spec::sgl::{desc_type, SglDescriptor};
use nvme_spec::{Cqe, Sqe};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a doorbell write with an out-of-range value watches the admin queue for the
/// asynchronous event the device should raise.
pub const INVALID_DOORBELL_EVENT_WAIT: Duration = Duration::from_millis(500);

/// Size of a submission queue entry.
pub const SQE_SIZE: usize = 64;
/// Size of a completion queue entry.
pub const CQE_SIZE: usize = 16;

/// A piece of memory: `len` bytes at `offset` of `mem`.
#[derive(Clone, Debug)]
pub struct Chunk {
    /// The memory.
    pub mem: DmaMemory,
    /// Offset of the first byte.
    pub offset: usize,
    /// Number of bytes.
    pub len: usize,
}

impl Chunk {
    /// Bus address of the first byte.
    pub fn addr(&self) -> u64 {
        self.mem.iova() + self.offset as u64
    }
}

/// The memory of a metamode queue: one physically contiguous piece, or the pages a PRP list
/// names (a non-contiguous queue).
#[derive(Clone, Debug)]
pub struct QueueMemory {
    /// The address given to the device in PRP1 of the create command.
    prp1: u64,
    /// The queue's bytes, in order.
    pieces: Vec<Chunk>,
    /// Further memory the device reads (the PRP list itself).
    extra: Vec<DmaMemory>,
}

impl QueueMemory {
    /// A physically contiguous queue in `piece`.
    pub fn contiguous(piece: Chunk) -> QueueMemory {
        QueueMemory {
            prp1: piece.addr(),
            pieces: vec![piece],
            extra: Vec::new(),
        }
    }

    /// A non-contiguous queue: `list` holds the PRP entries, `pages` the queue's bytes in order.
    pub fn prp_list(list: Chunk, pages: Vec<Chunk>) -> QueueMemory {
        QueueMemory {
            prp1: list.addr(),
            pieces: pages,
            extra: vec![list.mem],
        }
    }

    /// The address in PRP1 of the create command.
    pub fn prp1(&self) -> u64 {
        self.prp1
    }

    /// Number of bytes of the queue the host can reach.
    pub fn len(&self) -> usize {
        self.pieces.iter().map(|p| p.len).sum()
    }

    /// Whether the host can reach no byte of the queue.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where `len` bytes at queue byte `at` are: one piece must hold them all.
    fn locate(&self, at: usize, len: usize) -> Option<(&DmaMemory, usize)> {
        let mut start = 0;
        for p in &self.pieces {
            if at < start + p.len {
                let off = at - start;
                return (off + len <= p.len).then_some((&p.mem, p.offset + off));
            }
            start += p.len;
        }
        None
    }

    fn all_memory(&self) -> impl Iterator<Item = DmaMemory> + '_ {
        self.pieces
            .iter()
            .map(|p| p.mem.clone())
            .chain(self.extra.iter().cloned())
    }
}

/// The data pointer of a metamode command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataPointer {
    /// PRP entries (PSDT 0).
    Prp {
        /// PRP entry 1.
        prp1: u64,
        /// PRP entry 2 or the address of a PRP list.
        prp2: u64,
    },
    /// The first SGL descriptor (PSDT 1: SGL for data, MPTR is an address).
    Sgl(SglDescriptor),
}

impl DataPointer {
    /// Writes the data pointer (and PSDT) into `sqe`.
    pub fn apply(&self, sqe: &mut Sqe) {
        match self {
            DataPointer::Prp { prp1, prp2 } => {
                sqe.set_psdt(0);
                sqe.prp1 = *prp1;
                sqe.prp2 = *prp2;
            }
            DataPointer::Sgl(d) => {
                (sqe.prp1, sqe.prp2) = d.to_dptr();
                sqe.set_psdt(1);
            }
        }
    }
}

/// A metamode IO command: `opc` with the script's own `cid`, data pointer and metadata pointer.
pub fn io_command(opc: u8, cid: u16, nsid: u32, dptr: DataPointer, mptr: u64) -> Sqe {
    let mut s = Sqe::new(opc, nsid);
    s.set_cid(cid);
    dptr.apply(&mut s);
    s.mptr = mptr;
    s
}

/// A metamode read (`write == false`) or write of `lba_count` (1-based) blocks at `lba`.
pub fn rw_command(
    write: bool,
    cid: u16,
    nsid: u32,
    lba: u64,
    lba_count: u32,
    dptr: DataPointer,
    mptr: u64,
) -> Result<Sqe> {
    if !(1..=65536).contains(&lba_count) {
        return Err(DriverError::invalid(
            "lba_count",
            format!("{lba_count} is not 1..=65536"),
        ));
    }
    let mut s = io_command(
        if write { nvm::WRITE } else { nvm::READ },
        cid,
        nsid,
        dptr,
        mptr,
    );
    s.set_slba(lba);
    s.cdw12 = lba_count - 1;
    Ok(s)
}

/// Writes PRP entry `index` (bytes `index * 8`) of a PRP list held in `list` (`len` bytes from
/// its start): at most `len / 8` entries.
pub fn set_prp_entry(list: &DmaMemory, len: usize, index: usize, addr: u64) -> Result<()> {
    let n = len / 8;
    if index >= n {
        return Err(DriverError::invalid(
            "index",
            format!("{index}: a PRP list of {len} bytes holds {n} PRP entries (0..{n})"),
        ));
    }
    list.write(index * 8, &addr.to_le_bytes());
    Ok(())
}

/// The kinds of SGL descriptor objects scripts build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SglKind {
    /// A data block: the memory itself.
    DataBlock,
    /// A bit bucket: data of a read that is discarded.
    BitBucket,
    /// A segment: a list of descriptors, the last of which may point to the next segment.
    Segment,
    /// The last segment: a list of descriptors without a further segment.
    LastSegment,
}

impl SglKind {
    /// The SGL descriptor type.
    pub fn desc_type(self) -> u8 {
        match self {
            SglKind::DataBlock => desc_type::DATA_BLOCK,
            SglKind::BitBucket => desc_type::BIT_BUCKET,
            SglKind::Segment => desc_type::SEGMENT,
            SglKind::LastSegment => desc_type::LAST_SEGMENT,
        }
    }

    /// The descriptor of an object of this kind over `len` bytes at bus address `addr`.
    pub fn descriptor(self, addr: u64, len: usize) -> Result<SglDescriptor> {
        let length = u32::try_from(len).map_err(|_| {
            DriverError::invalid(
                "size",
                format!("{len} bytes: an SGL descriptor holds 32 bits"),
            )
        })?;
        Ok(match self {
            SglKind::DataBlock => SglDescriptor::data_block(addr, length),
            SglKind::BitBucket => SglDescriptor::bit_bucket(length),
            SglKind::Segment => SglDescriptor::segment(addr, length),
            SglKind::LastSegment => SglDescriptor::last_segment(addr, length),
        })
    }
}

/// Writes descriptor `index` (bytes `index * 16`) of an SGL segment held in `seg` (`len` bytes).
pub fn set_sgl_entry(seg: &DmaMemory, len: usize, index: usize, d: &SglDescriptor) -> Result<()> {
    let n = len / 16;
    if index >= n {
        return Err(DriverError::invalid(
            "index",
            format!("{index}: a segment of {len} bytes holds {n} SGL descriptors (0..{n})"),
        ));
    }
    seg.write(index * 16, zerocopy::IntoBytes::as_bytes(d));
    Ok(())
}

fn check_qsize(qsize: u32) -> Result<()> {
    if !(1..=65536).contains(&qsize) {
        return Err(DriverError::invalid(
            "qsize",
            format!("{qsize} is not 1..=65536 entries"),
        ));
    }
    Ok(())
}

fn check_index(what: &'static str, index: u32, qsize: u32) -> Result<()> {
    DriverError::check_range(what, index.into(), u64::from(index) + 1, qsize.into())
}

/// Entry `index` of `size` bytes is beyond the `len` bytes of the queue's memory.
fn out_of_memory(what: &'static str, index: u32, size: usize, len: usize) -> DriverError {
    let start = u64::from(index) * size as u64;
    DriverError::OutOfRange {
        what,
        start,
        end: start + size as u64,
        len: len as u64,
    }
}

/// What the CQ knows about a command a metamode helper filled: its SQE and the submitter's
/// context, found again by (SQ id, CID) when it completes.
struct Pending<C> {
    sqe: Sqe,
    ctx: C,
}

/// Where a command is logged: its SQ's log and the entry's sequence number.
type LogEntryRef = (Arc<Mutex<CmdLog>>, u64);

struct CqState<C> {
    head: u32,
    rpointer: u32,
    phase: bool,
    created: bool,
    pending: HashMap<(u16, u16), Pending<C>>,
    /// Commands a tail doorbell handed the device, by (SQ id, CID): their SQ's log and entry.
    logged: HashMap<(u16, u16), LogEntryRef>,
}

/// An IO completion queue the script reads itself.
pub struct IoCq<C: Clone + Send + 'static> {
    ctrl: Arc<Controller<C>>,
    qid: u16,
    qsize: u32,
    mem: QueueMemory,
    db: u64,
    reserved: Mutex<bool>,
    st: Mutex<CqState<C>>,
}

/// The outcome of [`IoCq::waitdone`].
pub struct Reaped<C> {
    /// The completions, in CQ order, with the SQE and context of those a helper filled.
    pub completions: Vec<Completion<Option<C>>>,
    /// Whether the wait ended before `expected` completions arrived.
    pub timed_out: bool,
}

impl<C: Clone + Send + 'static> IoCq<C> {
    /// Sends Create I/O Completion Queue for `qsize` entries in `mem` and returns the queue with
    /// the command's completion. A failing status is not an error (the script tests the device):
    /// the queue then exists only on the host and is not deleted.
    pub fn create(
        ctrl: &Arc<Controller<C>>,
        qid: u16,
        qsize: u32,
        mem: QueueMemory,
        pc: bool,
        iv: u16,
        ien: bool,
    ) -> Result<(Arc<IoCq<C>>, Cqe)> {
        check_qsize(qsize)?;
        let reserved = ctrl.reserve_meta_qid(qid)?;
        let mut sqe = Sqe::new(admin::CREATE_IO_CQ, 0);
        sqe.cdw10 = (qsize - 1) << 16 | qid as u32;
        sqe.cdw11 = (iv as u32) << 16 | (ien as u32) << 1 | pc as u32;
        sqe.prp1 = mem.prp1();
        let cqe = match ctrl.admin_sync(sqe, None) {
            Ok(c) => c,
            Err(e) => {
                if reserved {
                    ctrl.release_meta_qid(qid);
                }
                return Err(e);
            }
        };
        let created = cqe.status().is_success();
        if !created && reserved {
            ctrl.release_meta_qid(qid);
        }
        let cq = IoCq {
            ctrl: ctrl.clone(),
            qid,
            qsize,
            db: nvme_spec::regs::cq_head_doorbell(qid, ctrl.cap().dstrd()) as u64,
            mem,
            reserved: Mutex::new(reserved && created),
            st: Mutex::new(CqState {
                head: 0,
                rpointer: 0,
                phase: true,
                created,
                pending: HashMap::new(),
                logged: HashMap::new(),
            }),
        };
        Ok((Arc::new(cq), cqe))
    }

    /// Queue identifier.
    pub fn qid(&self) -> u16 {
        self.qid
    }

    /// Number of entries.
    pub fn qsize(&self) -> u32 {
        self.qsize
    }

    /// Whether the queue exists on the device (created, not deleted).
    pub fn created(&self) -> bool {
        self.st.lock().created
    }

    /// The controller.
    pub fn controller(&self) -> &Arc<Controller<C>> {
        &self.ctrl
    }

    fn dw3_offset(&self, index: u32) -> Result<(&DmaMemory, usize)> {
        self.mem
            .locate(index as usize * CQE_SIZE, CQE_SIZE)
            .ok_or_else(|| out_of_memory("CQ entry bytes", index, CQE_SIZE, self.mem.len()))
    }

    /// Entry `index` as it is in memory, read phase first (dword 3 with acquire ordering).
    pub fn entry(&self, index: u32) -> Result<Cqe> {
        check_index("CQ", index, self.qsize)?;
        let (m, off) = self.dw3_offset(index)?;
        let dw3 = m.load_u32(off + 12);
        let d = [
            m.load_u32(off),
            m.load_u32(off + 4),
            m.load_u32(off + 8),
            dw3,
        ];
        Ok(Cqe::from_dwords(d))
    }

    /// The phase tag of entry `index`.
    pub fn phase(&self, index: u32) -> Result<bool> {
        check_index("CQ", index, self.qsize)?;
        let (m, off) = self.dw3_offset(index)?;
        Ok(m.load_u32(off + 12) >> 16 & 1 != 0)
    }

    /// Waits until the phase tag of entry `index` is `expected`; false if `timeout` passed first.
    pub fn wait_pbit(&self, index: u32, expected: bool, timeout: Duration) -> Result<bool> {
        let limit = Instant::now() + timeout;
        let mut spins = 0;
        loop {
            if self.phase(index)? == expected {
                return Ok(true);
            }
            if Instant::now() >= limit {
                return Ok(false);
            }
            backoff(&mut spins)?;
        }
    }

    /// The head doorbell value last written.
    pub fn head(&self) -> u32 {
        self.st.lock().head
    }

    /// Writes the CQ head doorbell, whatever the value; a value beyond the queue is followed by
    /// a watch for the asynchronous event it should raise (see the module documentation), which
    /// `deliver` receives. Returns the number of events delivered.
    pub fn set_head(
        &self,
        value: u32,
        deliver: &mut dyn FnMut(Completion<C>) -> Result<()>,
    ) -> Result<usize> {
        self.st.lock().head = value;
        ring(&self.ctrl, self.db, value, self.qsize, deliver)
    }

    /// The next entry [`IoCq::waitdone`] reads.
    pub fn rpointer(&self) -> u32 {
        self.st.lock().rpointer
    }

    /// Waits for `expected` new completions from the read pointer on, advancing it (the head
    /// doorbell is the script's to write). Completions of commands a helper of an SQ of this CQ
    /// filled come with their SQE and context.
    pub fn waitdone(&self, expected: usize, timeout: Duration) -> Result<Reaped<C>> {
        let limit = Instant::now() + timeout;
        let mut spins = 0;
        let mut out = Vec::new();
        while out.len() < expected {
            let (rp, phase) = {
                let s = self.st.lock();
                (s.rpointer, s.phase)
            };
            if self.phase(rp)? != phase {
                if Instant::now() >= limit {
                    return Ok(Reaped {
                        completions: out,
                        timed_out: true,
                    });
                }
                backoff(&mut spins)?;
                continue;
            }
            let cqe = self.entry(rp)?;
            let mut s = self.st.lock();
            s.rpointer = rp + 1;
            if s.rpointer == self.qsize {
                s.rpointer = 0;
                s.phase = !s.phase;
            }
            if let Some((log, seq)) = s.logged.remove(&(cqe.sqid, cqe.cid)) {
                log.lock().complete(seq, &cqe, now_ns(), false);
            }
            let p = s.pending.remove(&(cqe.sqid, cqe.cid));
            let (sqe, ctx) = p.map_or((Sqe::default(), None), |p| (p.sqe, Some(p.ctx)));
            out.push(Completion {
                cqe,
                sqe,
                ctx,
                data: None,
                latency_us: 0,
                timed_out: false,
            });
        }
        Ok(Reaped {
            completions: out,
            timed_out: false,
        })
    }

    /// Remembers where command (`sqid`, `cid`) is logged, for its completion.
    fn log_at(&self, sqid: u16, cid: u16, log: Arc<Mutex<CmdLog>>, seq: u64) {
        self.st.lock().logged.insert((sqid, cid), (log, seq));
    }

    fn expect(&self, sqid: u16, cid: u16, sqe: Sqe, ctx: C) {
        self.st
            .lock()
            .pending
            .insert((sqid, cid), Pending { sqe, ctx });
    }

    /// Sends Delete I/O Completion Queue for this queue, or for `qid` if given (to test the
    /// device with another id); returns the completion.
    pub fn delete(&self, qid: Option<u16>) -> Result<Cqe> {
        let target = qid.unwrap_or(self.qid);
        let mut sqe = Sqe::new(admin::DELETE_IO_CQ, 0);
        sqe.cdw10 = target as u32;
        let cqe = self.ctrl.admin_sync(sqe, None)?;
        if target == self.qid && cqe.status().is_success() {
            self.st.lock().created = false;
            if std::mem::take(&mut *self.reserved.lock()) {
                self.ctrl.release_meta_qid(self.qid);
            }
        }
        Ok(cqe)
    }
}

impl<C: Clone + Send + 'static> Drop for IoCq<C> {
    fn drop(&mut self) {
        if self.st.get_mut().created {
            self.ctrl.park_until_reset(self.mem.all_memory());
        }
    }
}

struct SqState {
    tail: u32,
    wpointer: u32,
    created: bool,
    /// Data memory of the command in each slot, alive while the device may fetch it.
    keep: HashMap<u32, Vec<DmaMemory>>,
}

/// An IO submission queue the script fills and rings itself.
pub struct IoSq<C: Clone + Send + 'static> {
    ctrl: Arc<Controller<C>>,
    qid: u16,
    qsize: u32,
    cqid: u16,
    cq: Option<Arc<IoCq<C>>>,
    mem: QueueMemory,
    db: u64,
    reserved: Mutex<bool>,
    st: Mutex<SqState>,
    /// The commands its tail doorbells handed the device.
    log: Arc<Mutex<CmdLog>>,
}

/// How an IO SQ is created.
#[derive(Clone, Copy, Debug)]
pub struct SqConfig {
    /// Queue identifier.
    pub qid: u16,
    /// Number of entries, 1-based.
    pub qsize: u32,
    /// The CQ its completions go to.
    pub cqid: u16,
    /// Physically contiguous.
    pub pc: bool,
    /// Priority class for weighted round robin, 0..=3.
    pub qprio: u8,
    /// NVM set identifier.
    pub nvmsetid: u16,
}

impl<C: Clone + Send + 'static> IoSq<C> {
    /// Sends Create I/O Submission Queue and returns the queue with the command's completion; a
    /// failing status is not an error (see [`IoCq::create`]). `cq`, if given, is the queue object
    /// of `cfg.cqid`: it then receives the contexts of commands the helpers fill, and is kept
    /// alive as long as this SQ.
    pub fn create(
        ctrl: &Arc<Controller<C>>,
        cfg: SqConfig,
        mem: QueueMemory,
        cq: Option<Arc<IoCq<C>>>,
    ) -> Result<(Arc<IoSq<C>>, Cqe)> {
        check_qsize(cfg.qsize)?;
        if cfg.qprio > 3 {
            return Err(DriverError::invalid(
                "qprio",
                format!("{} is not a priority class 0..=3", cfg.qprio),
            ));
        }
        if let Some(cq) = &cq {
            if cq.qid != cfg.cqid {
                return Err(DriverError::invalid(
                    "cqid",
                    format!("{} is not the id {} of the cq given", cfg.cqid, cq.qid),
                ));
            }
        }
        let reserved = ctrl.reserve_meta_qid(cfg.qid)?;
        let mut sqe = Sqe::new(admin::CREATE_IO_SQ, 0);
        sqe.cdw10 = (cfg.qsize - 1) << 16 | cfg.qid as u32;
        sqe.cdw11 = (cfg.cqid as u32) << 16 | (cfg.qprio as u32) << 1 | cfg.pc as u32;
        sqe.cdw12 = cfg.nvmsetid as u32;
        sqe.prp1 = mem.prp1();
        let cqe = match ctrl.admin_sync(sqe, None) {
            Ok(c) => c,
            Err(e) => {
                if reserved {
                    ctrl.release_meta_qid(cfg.qid);
                }
                return Err(e);
            }
        };
        let created = cqe.status().is_success();
        if !created && reserved {
            ctrl.release_meta_qid(cfg.qid);
        }
        let sq = IoSq {
            ctrl: ctrl.clone(),
            qid: cfg.qid,
            qsize: cfg.qsize,
            cqid: cfg.cqid,
            cq,
            db: nvme_spec::regs::sq_tail_doorbell(cfg.qid, ctrl.cap().dstrd()) as u64,
            mem,
            reserved: Mutex::new(reserved && created),
            st: Mutex::new(SqState {
                tail: 0,
                wpointer: 0,
                created,
                keep: HashMap::new(),
            }),
            log: Arc::new(Mutex::new(CmdLog::default())),
        };
        Ok((Arc::new(sq), cqe))
    }

    /// Queue identifier.
    pub fn qid(&self) -> u16 {
        self.qid
    }

    /// Number of entries.
    pub fn qsize(&self) -> u32 {
        self.qsize
    }

    /// The id of the CQ this SQ posts to.
    pub fn cqid(&self) -> u16 {
        self.cqid
    }

    /// The CQ object given at creation.
    pub fn cq(&self) -> Option<&Arc<IoCq<C>>> {
        self.cq.as_ref()
    }

    /// Whether the queue exists on the device (created, not deleted).
    pub fn created(&self) -> bool {
        self.st.lock().created
    }

    fn slot(&self, index: u32) -> Result<(&DmaMemory, usize)> {
        check_index("SQ", index, self.qsize)?;
        self.mem
            .locate(index as usize * SQE_SIZE, SQE_SIZE)
            .ok_or_else(|| out_of_memory("SQ entry bytes", index, SQE_SIZE, self.mem.len()))
    }

    /// Writes `sqe` into slot `index`; `keep` is the memory its data pointers name, kept alive
    /// until the slot is written again or the queue goes.
    pub fn set_entry(&self, index: u32, sqe: &Sqe, keep: Vec<DmaMemory>) -> Result<()> {
        let (m, off) = self.slot(index)?;
        m.write(off, zerocopy::IntoBytes::as_bytes(sqe));
        self.st.lock().keep.insert(index, keep);
        Ok(())
    }

    /// The SQE in slot `index` as it is in memory.
    pub fn entry(&self, index: u32) -> Result<Sqe> {
        let (m, off) = self.slot(index)?;
        let mut d = [0u32; 16];
        for (i, v) in d.iter_mut().enumerate() {
            *v = m.load_u32(off + i * 4);
        }
        Ok(Sqe::from_dwords(&d))
    }

    /// The slot the helpers fill next.
    pub fn wpointer(&self) -> u32 {
        self.st.lock().wpointer
    }

    /// Sets the slot the helpers fill next.
    pub fn set_wpointer(&self, value: u32) -> Result<()> {
        check_index("SQ", value, self.qsize)?;
        self.st.lock().wpointer = value;
        Ok(())
    }

    /// Writes `sqe` at the write pointer and advances it (the tail doorbell is the script's to
    /// write). The CQ object, if known, gets `ctx` for the completion. Returns the slot.
    pub fn fill(&self, sqe: &Sqe, keep: Vec<DmaMemory>, ctx: C) -> Result<u32> {
        let slot = self.wpointer();
        self.set_entry(slot, sqe, keep)?;
        self.st.lock().wpointer = (slot + 1) % self.qsize;
        if let Some(cq) = &self.cq {
            cq.expect(self.qid, sqe.cid(), *sqe, ctx);
        }
        Ok(slot)
    }

    /// Up to `count` commands its tail doorbells handed the device, newest first, skipping the
    /// `offset` newest; each with its completion once its CQ object reaped it
    /// ([`IoCq::waitdone`]).
    pub fn cmdlog(&self, count: usize, offset: usize) -> Vec<CmdLogEntry> {
        self.log.lock().latest(count, offset)
    }

    /// The tail doorbell value last written.
    pub fn tail(&self) -> u32 {
        self.st.lock().tail
    }

    /// Writes the SQ tail doorbell, whatever the value; see [`IoCq::set_head`].
    ///
    /// Metamode IO stays outside data verification, but the table must stay true: the LBAs of
    /// the writes, write uncorrectables and write zeroes this doorbell hands the device (slots
    /// from the previous tail up to `value`) become unknown.
    pub fn set_tail(
        &self,
        value: u32,
        deliver: &mut dyn FnMut(Completion<C>) -> Result<()>,
    ) -> Result<usize> {
        let old = std::mem::replace(&mut self.st.lock().tail, value);
        if value < self.qsize {
            let now = now_ns();
            let mut slot = old % self.qsize;
            while slot != value {
                if let Ok(sqe) = self.entry(slot) {
                    crate::verify::forget_unfollowed(&self.ctrl, &sqe);
                    let seq = self.log.lock().submit(self.qid, &sqe, now);
                    if let Some(cq) = &self.cq {
                        cq.log_at(self.qid, sqe.cid(), self.log.clone(), seq);
                    }
                }
                slot = (slot + 1) % self.qsize;
            }
        }
        ring(&self.ctrl, self.db, value, self.qsize, deliver)
    }

    /// Sends Delete I/O Submission Queue for this queue, or for `qid` if given; returns the
    /// completion.
    pub fn delete(&self, qid: Option<u16>) -> Result<Cqe> {
        let target = qid.unwrap_or(self.qid);
        let mut sqe = Sqe::new(admin::DELETE_IO_SQ, 0);
        sqe.cdw10 = target as u32;
        let cqe = self.ctrl.admin_sync(sqe, None)?;
        if target == self.qid && cqe.status().is_success() {
            let mut st = self.st.lock();
            st.created = false;
            st.keep.clear();
            drop(st);
            if std::mem::take(&mut *self.reserved.lock()) {
                self.ctrl.release_meta_qid(self.qid);
            }
        }
        Ok(cqe)
    }
}

impl<C: Clone + Send + 'static> Drop for IoSq<C> {
    fn drop(&mut self) {
        let st = self.st.get_mut();
        if st.created {
            let kept: Vec<DmaMemory> = st.keep.drain().flat_map(|(_, v)| v).collect();
            self.ctrl
                .park_until_reset(self.mem.all_memory().chain(kept));
        }
    }
}

/// Writes a doorbell, whatever the value; a value at or beyond the queue size is followed by a
/// watch for the asynchronous event the device should raise, which `deliver` receives. Returns
/// the number of events delivered.
fn ring<C: Clone + Send + 'static>(
    ctrl: &Controller<C>,
    db: u64,
    value: u32,
    qsize: u32,
    deliver: &mut dyn FnMut(Completion<C>) -> Result<()>,
) -> Result<usize> {
    ctrl.pci().bar_write32(0, db, value);
    let wait = if value >= qsize {
        INVALID_DOORBELL_EVENT_WAIT
    } else {
        Duration::ZERO
    };
    ctrl.reap_async_events(wait, deliver)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(len: usize) -> Chunk {
        Chunk {
            mem: nvme_pci::dma_alloc(len).unwrap(),
            offset: 0,
            len,
        }
    }

    #[test]
    fn queue_memory_locates_entries_across_pages() {
        let a = chunk(4096);
        let mut b = chunk(4096);
        b.offset = 0x100;
        b.len = 4096 - 0x100;
        let list = chunk(4096);
        let q = QueueMemory::prp_list(list.clone(), vec![a.clone(), b.clone()]);
        assert_eq!(q.prp1(), list.addr());
        assert_eq!(q.len(), 8192 - 0x100);
        let (m, off) = q.locate(4096 + 64, 64).unwrap();
        assert!(m.same_region(&b.mem));
        assert_eq!(off, 0x100 + 64);
        assert!(
            q.locate(4096 - 32, 64).is_none(),
            "an entry never straddles pages"
        );
        assert!(q.locate(8192, 16).is_none());
    }

    #[test]
    fn commands_and_descriptors() {
        let s = rw_command(
            false,
            7,
            1,
            0x1_0000_0002,
            8,
            DataPointer::Prp {
                prp1: 0x1000,
                prp2: 0,
            },
            0,
        )
        .unwrap();
        assert_eq!(
            (s.opc(), s.cid(), s.cdw10, s.cdw11, s.cdw12),
            (2, 7, 2, 1, 7)
        );
        assert!(
            rw_command(true, 0, 1, 0, 0, DataPointer::Prp { prp1: 0, prp2: 0 }, 0)
                .unwrap_err()
                .to_string()
                .starts_with("lba_count:")
        );
        let d = SglKind::Segment.descriptor(0x2000, 48).unwrap();
        let s = io_command(nvm::READ, 1, 1, DataPointer::Sgl(d), 0x3000);
        assert_eq!(s.psdt(), 1);
        assert_eq!(SglDescriptor::from_sqe(&s), d);
        assert_eq!(s.mptr, 0x3000);
        let m = nvme_pci::dma_alloc(4096).unwrap();
        set_prp_entry(&m, 4096, 511, 0xabc000).unwrap();
        assert_eq!(m.load_u64(511 * 8), 0xabc000);
        assert!(set_prp_entry(&m, 4096, 512, 0).is_err());
        set_sgl_entry(&m, 32, 1, &d).unwrap();
        assert_eq!(m.to_vec(16, 16), zerocopy::IntoBytes::as_bytes(&d));
        assert!(set_sgl_entry(&m, 32, 2, &d)
            .unwrap_err()
            .to_string()
            .starts_with("index:"));
    }
}
