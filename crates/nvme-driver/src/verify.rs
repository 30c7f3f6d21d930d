//! Transparent data verification: a CRC per LBA, LBA/token stamps, and LBA locks, shared by every
//! queue and thread of the process.
//!
//! **The table.** One byte per LBA: 0 = nothing known (never written, deallocated, formatted),
//! 0xff = written uncorrectable (a read must fail), anything else = an 8-bit digest of the LBA's
//! data (CRC-32C folded into 1..=0xfe). Pages of the table exist only where LBAs were written, so a
//! namespace of any size costs memory only for what was written: one byte per written LBA plus a
//! small index (a 32 TiB namespace with 1 GiB written in 512-byte LBAs: about 2 MiB).
//!
//! **Stamps.** Every write through `Namespace.write` (and the IO generator) stamps the first 8 bytes
//! of each LBA with the namespace id (bits 63:48) and the LBA (bits 47:0), and the last 8 bytes
//! (before metadata) with a global token that grows with every LBA written, so every LBA of every
//! write in history has distinct data. On a miscompare the stamps found tell a misdirected or stale
//! write (the data claims another LBA, or an older token) apart from corruption.
//!
//! **Locks.** Before an IO is submitted all its LBAs must be free; they stay locked until it
//! completes. A conflicting IO waits for them (it is not failed). Locks and table are per
//! namespace, shared by all queues and threads, so overlapping IO never produces a false
//! miscompare.
//!
//! A read whose data does not match has its completion status changed to 07/81 (SCT 7, SC 0x81),
//! as pynvme does, and a report naming the namespace, the LBA, expected and found digests and the
//! stamps found.

use crate::error::{DriverError, Result};
use nvme_spec::cmd::{admin, nvm};
use nvme_spec::{Cqe, Sqe, Status};
use parking_lot::Mutex;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;

/// Table value: nothing is known about the LBA; reads are not checked.
pub const UNKNOWN: u8 = 0;
/// Table value: the LBA was written uncorrectable; a read that succeeds is a miscompare.
pub const UNCORRECTABLE: u8 = 0xff;
/// The status a failed verification gives the completion: SCT 7 (vendor specific), SC 0x81.
pub const MISCOMPARE: Status = Status::new(7, 0x81);
/// Largest number of LBAs a table covers (2^44: 8 PiB of 512-byte blocks).
pub const MAX_VERIFIED_LBAS: u64 = 1 << 44;

/// The 8-bit digest of one LBA's data, in 2..=0xfd (never a special value): bits 7:1 a hash of
/// the CRC-32C, bit 0 the parity of the data's bits.
///
/// The parity comes for free from the CRC: the CRC-32C polynomial has an even number of terms, so
/// x + 1 divides it and the CRC's bit parity equals the data's (its initial value and final XOR
/// are 32 ones each, which keeps parity). So every odd number of flipped bits is caught, always;
/// any other change escapes with probability about 1/252.
#[inline]
pub fn lba_digest(data: &[u8]) -> u8 {
    let c = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32;
    ((c % 126) as u8 + 1) << 1 | (c.count_ones() & 1) as u8
}

/// The stamp of the first 8 bytes of an LBA.
#[inline]
pub fn lba_stamp(nsid: u32, lba: u64) -> u64 {
    (nsid as u64) << 48 | (lba & 0xffff_ffff_ffff)
}

/// The global write token: every LBA written by the host gets the next value.
static TOKEN: AtomicU64 = AtomicU64::new(1);

/// Reserves `n` consecutive tokens; returns the first.
pub fn next_tokens(n: u64) -> u64 {
    TOKEN.fetch_add(n, Ordering::Relaxed)
}

const PAGE: usize = 4096;
const GROUP: usize = 4096;

/// A lazily allocated page of a sparse array.
type Page<A> = OnceLock<Box<[A]>>;
/// A lazily allocated group of pages.
type Group<A> = OnceLock<Box<[Page<A>]>>;

/// A sparse array of atomics: two levels of lazily allocated pages.
struct Sparse<A> {
    groups: Box<[Group<A>]>,
    len: u64,
}

impl<A: Default> Sparse<A> {
    fn new(len: u64) -> Self {
        let ngroups = len.div_ceil((PAGE * GROUP) as u64) as usize;
        Sparse {
            groups: (0..ngroups).map(|_| OnceLock::new()).collect(),
            len,
        }
    }

    #[inline]
    fn split(i: u64) -> (usize, usize, usize) {
        let page = i / PAGE as u64;
        (
            (page / GROUP as u64) as usize,
            (page % GROUP as u64) as usize,
            (i % PAGE as u64) as usize,
        )
    }

    /// The element if its page exists.
    #[inline]
    fn get(&self, i: u64) -> Option<&A> {
        if i >= self.len {
            return None;
        }
        let (g, p, o) = Self::split(i);
        self.groups[g].get()?[p].get().map(|page| &page[o])
    }

    /// The element, allocating its page.
    #[inline]
    fn get_or_alloc(&self, i: u64) -> Option<&A> {
        if i >= self.len {
            return None;
        }
        let (g, p, o) = Self::split(i);
        let group = self.groups[g].get_or_init(|| (0..GROUP).map(|_| OnceLock::new()).collect());
        Some(&group[p].get_or_init(|| (0..PAGE).map(|_| A::default()).collect())[o])
    }

    /// Existing pages: (first index, page).
    fn pages(&self) -> impl Iterator<Item = (u64, &[A])> {
        self.groups
            .iter()
            .enumerate()
            .filter_map(|(g, gr)| gr.get().map(|gr| (g, gr)))
            .flat_map(|(g, gr)| {
                gr.iter().enumerate().filter_map(move |(p, pg)| {
                    pg.get()
                        .map(|pg| (((g * GROUP + p) * PAGE) as u64, &pg[..]))
                })
            })
    }

    /// Bytes allocated for pages and index.
    fn memory(&self) -> usize {
        let mut total =
            self.groups.len() * std::mem::size_of::<OnceLock<Box<[OnceLock<Box<[A]>>]>>>();
        for gr in self.groups.iter().filter_map(|g| g.get()) {
            total += GROUP * std::mem::size_of::<Page<A>>();
            total +=
                gr.iter().filter(|p| p.get().is_some()).count() * PAGE * std::mem::size_of::<A>();
        }
        total
    }
}

/// Words of the LBA lock table: 2^14 words of 64 bits (128 KiB per namespace).
const LOCK_WORD_BITS: u32 = 14;
/// Largest number of lock words one command takes word by word; a command spanning more
/// granules (a trim of more than about 16 Ki LBAs) takes the whole table.
const MAX_PLAN_WORDS: usize = 256;

/// The LBA locks of a namespace: a fixed table of 64-bit words. LBAs are grouped in granules of
/// 64; each granule is hashed to a word, whose bit `lba % 64` is the LBA's lock. Granules that
/// share a word can only make two commands wait for each other without need (rare: a queue of
/// 63 commands of 8 LBAs sets at most 126 of a million bits), never let two commands on the same
/// LBA run together. So the memory is fixed and follows the IO in flight, not the capacity, and
/// random IO over a huge namespace touches one cache line per granule of a table that stays hot.
struct LockTable {
    words: Box<[AtomicU64]>,
}

/// Lock words a plan holds inline; larger commands (over 8 granules: 512 LBAs) spill to a Vec.
const PLAN_INLINE: usize = 8;

/// The words and bits a command locks, each word once (so a command never waits for itself).
#[derive(Default)]
struct LockPlan {
    n: usize,
    inline: [(u32, u64); PLAN_INLINE],
    spill: Vec<(u32, u64)>,
    all: bool,
}

impl LockPlan {
    fn all() -> LockPlan {
        LockPlan {
            all: true,
            ..Default::default()
        }
    }

    fn items(&self) -> &[(u32, u64)] {
        if self.spill.is_empty() {
            &self.inline[..self.n]
        } else {
            &self.spill
        }
    }

    /// Adds `mask` to word `slot`; false when the plan is full (take the whole table).
    fn add(&mut self, slot: u32, mask: u64) -> bool {
        let items: &mut [(u32, u64)] = if self.spill.is_empty() {
            &mut self.inline[..self.n]
        } else {
            &mut self.spill
        };
        if let Some(e) = items.iter_mut().find(|e| e.0 == slot) {
            e.1 |= mask;
            return true;
        }
        if self.n == MAX_PLAN_WORDS {
            return false;
        }
        if self.n < PLAN_INLINE {
            self.inline[self.n] = (slot, mask);
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline);
            }
            self.spill.push((slot, mask));
        }
        self.n += 1;
        true
    }

    fn words(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        let whole = (0..(1usize << LOCK_WORD_BITS)).map(|w| (w, u64::MAX));
        let some = self.items().iter().map(|&(w, m)| (w as usize, m));
        whole
            .take(if self.all { usize::MAX } else { 0 })
            .chain(some)
    }
}

impl LockTable {
    fn new() -> LockTable {
        LockTable {
            words: (0..1usize << LOCK_WORD_BITS)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    /// The word of a 64-LBA granule (Fibonacci hashing).
    fn slot(granule: u64) -> u32 {
        (granule.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - LOCK_WORD_BITS)) as u32
    }

    fn memory(&self) -> usize {
        self.words.len() * std::mem::size_of::<AtomicU64>()
    }

    fn try_lock(&self, plan: &LockPlan) -> bool {
        for (i, (w, mask)) in plan.words().enumerate() {
            let word = &self.words[w];
            let mut cur = word.load(Ordering::Relaxed);
            loop {
                if cur & mask != 0 {
                    // Give back the words taken so far.
                    for (tw, tm) in plan.words().take(i) {
                        self.words[tw].fetch_and(!tm, Ordering::Release);
                    }
                    return false;
                }
                match word.compare_exchange_weak(
                    cur,
                    cur | mask,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now) => cur = now,
                }
            }
        }
        true
    }

    fn unlock(&self, plan: &LockPlan) {
        for (w, mask) in plan.words() {
            self.words[w].fetch_and(!mask, Ordering::Release);
        }
    }
}

/// A contiguous LBA range `[slba, slba + nlb)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LbaRange {
    /// First LBA.
    pub slba: u64,
    /// Number of LBAs.
    pub nlb: u64,
}

/// One finding of a read check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Miscompare {
    /// Namespace.
    pub nsid: u32,
    /// The LBA whose data is wrong.
    pub lba: u64,
    /// The digest the table expected (0xff: the LBA was written uncorrectable).
    pub expected: u8,
    /// The digest of the data read.
    pub found: u8,
    /// The namespace id and LBA the data's first 8 bytes claim.
    pub claims: (u32, u64),
    /// The token in the data's last 8 bytes.
    pub token: u64,
}

impl std::fmt::Display for Miscompare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.expected == UNCORRECTABLE {
            return write!(f, "data miscompare: nsid {} lba {:#x} was written uncorrectable but the read returned data", self.nsid, self.lba);
        }
        let what = if self.claims == (self.nsid, self.lba) {
            "corrupted or stale data"
        } else {
            "data of another LBA (misdirected write)"
        };
        write!(
            f,
            "data miscompare: nsid {} lba {:#x}: expected crc {:#04x}, found {:#04x}; the data claims nsid {} lba {:#x} token {:#x}: {what}",
            self.nsid, self.lba, self.expected, self.found, self.claims.0, self.claims.1, self.token
        )
    }
}

/// Data verification state of one namespace.
pub struct NsVerify {
    nsid: u32,
    sector: AtomicU64,
    /// Metadata bytes that travel with each block's data (extended LBA formats), else 0.
    inline_meta: AtomicU64,
    nlba: u64,
    crc: Sparse<AtomicU8>,
    locks: LockTable,
    enabled: AtomicBool,
    stamp: AtomicBool,
    dealloc_zeroes: AtomicBool,
    findings: Mutex<Vec<Miscompare>>,
}

impl NsVerify {
    /// State for namespace `nsid` of `nlba` LBAs (verification covers `min(nlba, 2^44)`) of
    /// `sector` bytes. Verification of reads starts off; the table is kept up to date always.
    pub fn new(nsid: u32, nlba: u64, sector: usize) -> NsVerify {
        let nlba = nlba.min(MAX_VERIFIED_LBAS);
        NsVerify {
            nsid,
            sector: AtomicU64::new(sector as u64),
            inline_meta: AtomicU64::new(0),
            nlba,
            crc: Sparse::new(nlba),
            locks: LockTable::new(),
            enabled: AtomicBool::new(false),
            stamp: AtomicBool::new(true),
            dealloc_zeroes: AtomicBool::new(false),
            findings: Mutex::new(Vec::new()),
        }
    }

    /// The namespace id.
    pub fn nsid(&self) -> u32 {
        self.nsid
    }

    /// LBAs covered by the table.
    pub fn nlba(&self) -> u64 {
        self.nlba
    }

    /// Bytes per LBA (data only).
    pub fn sector_size(&self) -> usize {
        self.sector.load(Ordering::Relaxed) as usize
    }

    /// Bytes per block in a transfer: the data, plus the metadata of an extended LBA format.
    pub fn block_size(&self) -> usize {
        self.sector_size() + self.inline_meta.load(Ordering::Relaxed) as usize
    }

    /// Sets the LBA format (data bytes per block, and metadata bytes transferred with each
    /// block's data for an extended LBA format, else 0); a change forgets everything.
    pub fn set_format(&self, sector: usize, inline_meta: usize) {
        if sector != self.sector_size()
            || inline_meta as u64 != self.inline_meta.load(Ordering::Relaxed)
        {
            self.sector.store(sector as u64, Ordering::Relaxed);
            self.inline_meta
                .store(inline_meta as u64, Ordering::Relaxed);
            self.clear();
        }
    }

    /// Takes DLFEAT from Identify Namespace: when deallocated blocks read as zeroes (bits 2:0 =
    /// 001b), deallocation records the digest of zeroes instead of forgetting.
    pub fn set_dlfeat(&self, dlfeat: u8) {
        self.dealloc_zeroes
            .store(dlfeat & 7 == 1, Ordering::Relaxed)
    }

    /// The digest of an LBA of zeroes.
    pub fn zero_digest(&self) -> u8 {
        lba_digest(&vec![0u8; self.block_size()])
    }

    /// What deallocated LBAs read as: zeroes if DLFEAT says so, else unknown.
    fn deallocated(&self) -> u8 {
        if self.dealloc_zeroes.load(Ordering::Relaxed) {
            self.zero_digest()
        } else {
            UNKNOWN
        }
    }

    /// Whether reads are checked.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Turns read checking on or off.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed)
    }

    /// Whether writes are stamped with LBA and token.
    pub fn stamping(&self) -> bool {
        self.stamp.load(Ordering::Relaxed)
    }

    /// Turns stamping of written data on or off (verification works either way).
    pub fn set_stamping(&self, on: bool) {
        self.stamp.store(on, Ordering::Relaxed)
    }

    /// The table value of `lba` (0 beyond the table).
    pub fn get(&self, lba: u64) -> u8 {
        self.crc
            .get(lba)
            .map_or(UNKNOWN, |v| v.load(Ordering::Relaxed))
    }

    fn set(&self, lba: u64, v: u8) {
        if v == UNKNOWN {
            if let Some(e) = self.crc.get(lba) {
                e.store(UNKNOWN, Ordering::Relaxed);
            }
        } else if let Some(e) = self.crc.get_or_alloc(lba) {
            e.store(v, Ordering::Relaxed);
        }
    }

    /// Sets `range` to one value.
    pub fn fill(&self, r: LbaRange, v: u8) {
        let end = (r.slba.saturating_add(r.nlb)).min(self.nlba);
        for lba in r.slba.min(end)..end {
            self.set(lba, v);
        }
    }

    /// Forgets everything (format, sanitize).
    pub fn clear(&self) {
        for (_, page) in self.crc.pages() {
            for e in page {
                e.store(UNKNOWN, Ordering::Relaxed);
            }
        }
    }

    /// Memory used by the table and the locks, bytes.
    pub fn memory(&self) -> usize {
        self.crc.memory() + self.locks.memory()
    }

    /// Takes the miscompares found since the last call.
    pub fn take_findings(&self) -> Vec<Miscompare> {
        std::mem::take(&mut self.findings.lock())
    }

    /// Stamps `data` (whole blocks starting at `slba`): nsid/LBA in the first 8 bytes of each
    /// block's data, a fresh token in the last 8 (before any metadata).
    pub fn stamp_write(&self, data: &mut [u8], slba: u64) {
        let (ss, bs) = (self.sector_size(), self.block_size());
        if ss < 16 || !self.stamping() {
            return;
        }
        let n = (data.len() / bs) as u64;
        let token = next_tokens(n);
        for (i, lba) in data.chunks_exact_mut(bs).enumerate() {
            lba[..8].copy_from_slice(&lba_stamp(self.nsid, slba + i as u64).to_le_bytes());
            lba[ss - 8..ss].copy_from_slice(&(token + i as u64).to_le_bytes());
        }
    }

    /// Records the digests of written data (whole blocks starting at `slba`).
    pub fn record(&self, data: &[u8], slba: u64) {
        for (i, lba) in data.chunks_exact(self.block_size()).enumerate() {
            self.set(slba + i as u64, lba_digest(lba));
        }
    }

    /// Checks read data (whole LBAs starting at `slba`); records and returns the first miscompare.
    pub fn check(&self, data: &[u8], slba: u64) -> Option<Miscompare> {
        let ss = self.sector_size();
        let mut first = None;
        for (i, lba_data) in data.chunks_exact(self.block_size()).enumerate() {
            let lba = slba + i as u64;
            let expected = self.get(lba);
            if expected == UNKNOWN {
                continue;
            }
            let found = lba_digest(lba_data);
            if found == expected {
                continue;
            }
            let stamp = u64::from_le_bytes(lba_data[..8].try_into().expect("8 bytes"));
            let token = if ss >= 16 {
                u64::from_le_bytes(lba_data[ss - 8..ss].try_into().expect("8 bytes"))
            } else {
                0
            };
            let m = Miscompare {
                nsid: self.nsid,
                lba,
                expected,
                found,
                claims: ((stamp >> 48) as u32, stamp & 0xffff_ffff_ffff),
                token,
            };
            self.findings.lock().push(m.clone());
            first.get_or_insert(m);
        }
        first
    }

    /// Tries to lock every LBA of `ranges` (overlaps inside the list are fine); all or nothing.
    pub fn try_lock(&self, ranges: &[LbaRange]) -> bool {
        self.locks.try_lock(&self.plan(ranges))
    }

    /// Unlocks every LBA of `ranges` (as passed to a successful `try_lock`).
    pub fn unlock(&self, ranges: &[LbaRange]) {
        self.locks.unlock(&self.plan(ranges))
    }

    /// The lock words and bits of `ranges`, cut at the end of the table.
    fn plan(&self, ranges: &[LbaRange]) -> LockPlan {
        let mut plan = LockPlan::default();
        for r in ranges {
            if r.nlb == 0 || r.slba >= self.nlba {
                continue;
            }
            for (granule, mask) in Self::words(self.clip(*r)) {
                if !plan.add(LockTable::slot(granule), mask) {
                    return LockPlan::all();
                }
            }
        }
        plan
    }

    fn words(r: LbaRange) -> impl Iterator<Item = (u64, u64)> {
        let end = r.slba + r.nlb;
        let mut lba = r.slba;
        std::iter::from_fn(move || {
            if lba >= end {
                return None;
            }
            let word = lba / 64;
            let bit = lba % 64;
            let n = (64 - bit).min(end - lba);
            let mask = if n == 64 {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << bit
            };
            lba += n;
            Some((word, mask))
        })
    }

    /// `r` cut at the end of the table.
    fn clip(&self, r: LbaRange) -> LbaRange {
        LbaRange {
            slba: r.slba,
            nlb: r.nlb.min(self.nlba - r.slba),
        }
    }

    /// Saves the table to `path` (only the written pages).
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let io =
            |e: std::io::Error| DriverError::invalid("path", format!("{}: {e}", path.display()));
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
        f.write_all(b"NVMECRC1").map_err(io)?;
        for v in [self.nsid as u64, self.nlba, self.sector_size() as u64] {
            f.write_all(&v.to_le_bytes()).map_err(io)?;
        }
        for (first, page) in self.crc.pages() {
            let bytes: Vec<u8> = page.iter().map(|a| a.load(Ordering::Relaxed)).collect();
            if bytes.iter().all(|&b| b == UNKNOWN) {
                continue;
            }
            f.write_all(&first.to_le_bytes()).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
        }
        f.flush().map_err(io)
    }

    /// Replaces the table with one saved by [`NsVerify::save`] for the same namespace geometry.
    pub fn load(&self, path: &std::path::Path) -> Result<()> {
        let io =
            |e: std::io::Error| DriverError::invalid("path", format!("{}: {e}", path.display()));
        let mut data = Vec::new();
        std::fs::File::open(path)
            .map_err(io)?
            .read_to_end(&mut data)
            .map_err(io)?;
        let bad = |why: &str| {
            DriverError::invalid(
                "path",
                format!(
                    "{}: not a CRC table of this namespace: {why}",
                    path.display()
                ),
            )
        };
        if data.len() < 32 || &data[..8] != b"NVMECRC1" {
            return Err(bad("bad header"));
        }
        let word = |i: usize| u64::from_le_bytes(data[i..i + 8].try_into().expect("8 bytes"));
        if word(8) != self.nsid as u64
            || word(16) != self.nlba
            || word(24) != self.sector_size() as u64
        {
            return Err(bad(&format!(
                "it is for nsid {} with {} LBAs of {} bytes",
                word(8),
                word(16),
                word(24)
            )));
        }
        let body = &data[32..];
        if body.len() % (8 + PAGE) != 0 {
            return Err(bad("truncated"));
        }
        self.clear();
        for rec in body.chunks_exact(8 + PAGE) {
            let first = u64::from_le_bytes(rec[..8].try_into().expect("8 bytes"));
            for (i, &v) in rec[8..].iter().enumerate() {
                if v != UNKNOWN {
                    self.set(first + i as u64, v);
                }
            }
        }
        Ok(())
    }
}

/// The LBA ranges of one command: one range without allocating (read, write ...), or a list
/// (DSM, Copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ranges {
    /// A single range.
    One(LbaRange),
    /// Several ranges.
    Many(Vec<LbaRange>),
}

impl std::ops::Deref for Ranges {
    type Target = [LbaRange];
    fn deref(&self) -> &[LbaRange] {
        match self {
            Ranges::One(r) => std::slice::from_ref(r),
            Ranges::Many(v) => v,
        }
    }
}

/// The LBA ranges an IO command locks, from its SQE (and for DSM/Copy, its range list).
pub fn command_ranges(sqe: &Sqe, range_list: Option<&[u8]>) -> Ranges {
    Ranges::Many(match sqe.opc() {
        nvm::READ
        | nvm::WRITE
        | nvm::COMPARE
        | nvm::WRITE_UNCORRECTABLE
        | nvm::WRITE_ZEROES
        | nvm::VERIFY => {
            return Ranges::One(LbaRange {
                slba: sqe.slba(),
                nlb: sqe.nlb() as u64,
            })
        }
        nvm::DSM => {
            let n = (sqe.cdw10 & 0xff) as usize + 1;
            range_list.map_or_else(Vec::new, |l| {
                l.chunks_exact(16)
                    .take(n)
                    .map(|r| LbaRange {
                        slba: u64::from_le_bytes(r[8..16].try_into().expect("8")),
                        nlb: u32::from_le_bytes(r[4..8].try_into().expect("4")) as u64,
                    })
                    .collect()
            })
        }
        nvm::COPY => {
            let n = (sqe.cdw12 & 0xff) as usize + 1;
            let mut v: Vec<LbaRange> = range_list.map_or_else(Vec::new, |l| {
                l.chunks_exact(32)
                    .take(n)
                    .map(|r| LbaRange {
                        slba: u64::from_le_bytes(r[8..16].try_into().expect("8")),
                        nlb: u16::from_le_bytes([r[16], r[17]]) as u64 + 1,
                    })
                    .collect()
            });
            let total: u64 = v.iter().map(|r| r.nlb).sum();
            v.push(LbaRange {
                slba: sqe.slba(),
                nlb: total,
            });
            v
        }
        _ => Vec::new(),
    })
}

/// Keeps the table true after a successful IO command: writes record digests (from `data`),
/// write uncorrectable marks, write zeroes records zeroes (or, with DEAC, what deallocated blocks
/// read as), deallocation records what DLFEAT says deallocated blocks read as, copy moves
/// digests. A failed or timed-out command that may have changed media makes its LBAs unknown.
pub fn after_io(
    v: &NsVerify,
    sqe: &Sqe,
    cqe: &Cqe,
    timed_out: bool,
    data: Option<&[u8]>,
    ranges: &[LbaRange],
) {
    let ok = cqe.status().is_success() && !timed_out;
    let opc = sqe.opc();
    let changes_media = matches!(
        opc,
        nvm::WRITE | nvm::WRITE_UNCORRECTABLE | nvm::WRITE_ZEROES | nvm::DSM | nvm::COPY
    );
    if !ok {
        if changes_media {
            let dest: &[LbaRange] = if opc == nvm::COPY {
                &ranges[ranges.len().saturating_sub(1)..]
            } else {
                ranges
            };
            for r in dest {
                v.fill(*r, UNKNOWN);
            }
        }
        return;
    }
    match opc {
        nvm::WRITE => {
            if let Some(d) = data {
                v.record(d, sqe.slba());
            }
        }
        nvm::WRITE_UNCORRECTABLE => v.fill(ranges[0], UNCORRECTABLE),
        nvm::WRITE_ZEROES => {
            let deac = sqe.cdw12 & nvme_spec::cmd::io_flags::DEAC != 0;
            let d = if deac && v.deallocated() == UNKNOWN {
                UNKNOWN
            } else {
                v.zero_digest()
            };
            v.fill(ranges[0], d)
        }
        nvm::DSM if sqe.cdw11 & 4 != 0 => {
            let d = v.deallocated();
            ranges.iter().for_each(|r| v.fill(*r, d))
        }
        nvm::COPY => {
            let (src, dst) = ranges.split_at(ranges.len() - 1);
            let mut digests = Vec::new();
            for r in src {
                digests.extend((r.slba..r.slba + r.nlb).map(|l| v.get(l)));
            }
            for (i, d) in digests.into_iter().enumerate() {
                v.set(dst[0].slba + i as u64, d);
            }
        }
        _ => {}
    }
}

/// Whether an admin command, completed successfully, invalidates verification state: Format NVM
/// (of `nsid` or all), Sanitize (all), Namespace Management delete (of `nsid`). Returns the nsid
/// affected, `Some(u32::MAX)` for all.
pub fn admin_invalidates(sqe: &Sqe) -> Option<u32> {
    match sqe.opc() {
        admin::FORMAT_NVM => Some(if sqe.nsid == 0 { u32::MAX } else { sqe.nsid }),
        admin::SANITIZE => Some(u32::MAX),
        admin::NS_MANAGEMENT if sqe.cdw10 & 0xf == 1 => Some(sqe.nsid),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_parity_is_the_data_parity_so_single_bit_flips_are_always_caught() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..300 {
            let mut d = vec![0u8; 512];
            crate::buffer::fill_rng(&mut rng, &mut d);
            let ones: u32 = d.iter().map(|b| b.count_ones()).sum();
            assert_eq!(lba_digest(&d) & 1, (ones & 1) as u8);
            let before = lba_digest(&d);
            let bit = rng.usize(0..512 * 8);
            d[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(lba_digest(&d), before);
        }
    }

    #[test]
    fn digests_are_never_the_special_values() {
        for i in 0..2000u32 {
            let d = lba_digest(&i.to_le_bytes().repeat(128));
            assert!(d != UNKNOWN && d != UNCORRECTABLE);
        }
    }

    #[test]
    fn stamps_record_and_check() {
        let v = NsVerify::new(1, 1000, 512);
        let mut data = vec![0xa5u8; 512 * 4];
        assert_eq!(v.block_size(), 512);
        v.stamp_write(&mut data, 10);
        assert_eq!(
            u64::from_le_bytes(data[512..520].try_into().unwrap()),
            lba_stamp(1, 11)
        );
        let t0 = u64::from_le_bytes(data[504..512].try_into().unwrap());
        let t1 = u64::from_le_bytes(data[1016..1024].try_into().unwrap());
        assert_eq!(t1, t0 + 1);
        v.record(&data, 10);
        assert!(v.check(&data, 10).is_none());
        let mut bad = data.clone();
        bad[600] ^= 1;
        let m = v.check(&bad, 10).expect("a flipped bit is caught");
        assert_eq!(m.lba, 11);
        assert_eq!(m.claims, (1, 11));
        // Data of LBA 10..14 read back as if it were at 20..24: misdirected.
        v.record(&data, 20);
        let mut other = vec![0u8; 512 * 4];
        v.stamp_write(&mut other, 20);
        let m = v
            .check(&data[..512], 21)
            .or_else(|| v.check(&other[..512], 10))
            .unwrap();
        assert!(m.to_string().contains("misdirected"), "{m}");
    }

    #[test]
    fn extended_lba_blocks_carry_metadata_after_the_stamped_data() {
        let v = NsVerify::new(1, 1000, 512);
        v.set_format(512, 8);
        assert_eq!(v.block_size(), 520);
        let mut data = vec![0x77u8; 520 * 2];
        v.stamp_write(&mut data, 4);
        assert_eq!(
            u64::from_le_bytes(data[520..528].try_into().unwrap()),
            lba_stamp(1, 5)
        );
        assert_eq!(&data[512..520], &[0x77; 8], "the metadata is not stamped");
        v.record(&data, 4);
        assert!(v.check(&data, 4).is_none());
        data[1030] ^= 1; // metadata of block 5
        assert_eq!(v.check(&data, 4).unwrap().lba, 5);
    }

    #[test]
    fn locks_are_all_or_nothing() {
        let v = NsVerify::new(1, 100_000, 512);
        assert!(v.try_lock(&[LbaRange { slba: 60, nlb: 10 }]));
        assert!(!v.try_lock(&[LbaRange { slba: 0, nlb: 61 }]));
        assert!(
            v.try_lock(&[LbaRange { slba: 0, nlb: 60 }]),
            "a failed try leaves nothing locked"
        );
        assert!(
            v.try_lock(&[
                LbaRange { slba: 70, nlb: 200 },
                LbaRange { slba: 100, nlb: 10 }
            ]),
            "overlaps inside one command"
        );
        v.unlock(&[LbaRange { slba: 60, nlb: 10 }]);
        assert!(v.try_lock(&[LbaRange { slba: 65, nlb: 1 }]));
    }

    #[test]
    fn granules_sharing_a_lock_word_never_make_a_command_wait_for_itself() {
        let v = NsVerify::new(1, 1 << 40, 512);
        let g0 = 5u64;
        let twin = (g0 + 1..)
            .find(|&g| LockTable::slot(g) == LockTable::slot(g0))
            .unwrap();
        // Same bits of two granules hashed to one word: one command, two ranges.
        let ranges = [
            LbaRange {
                slba: g0 * 64,
                nlb: 8,
            },
            LbaRange {
                slba: twin * 64,
                nlb: 8,
            },
        ];
        assert!(v.try_lock(&ranges));
        // Another command on either range waits; after the unlock it goes.
        assert!(!v.try_lock(&ranges[1..]));
        v.unlock(&ranges);
        assert!(v.try_lock(&ranges[1..]));
    }

    #[test]
    fn a_huge_range_takes_the_whole_table_and_gives_it_back() {
        let v = NsVerify::new(1, 1 << 40, 512);
        let huge = [LbaRange {
            slba: 1000,
            nlb: 1 << 30,
        }];
        assert!(v.try_lock(&[LbaRange {
            slba: 1 << 35,
            nlb: 1
        }]));
        assert!(!v.try_lock(&huge), "an IO anywhere holds part of the table");
        v.unlock(&[LbaRange {
            slba: 1 << 35,
            nlb: 1,
        }]);
        assert!(v.try_lock(&huge));
        assert!(!v.try_lock(&[LbaRange { slba: 7, nlb: 1 }]));
        v.unlock(&huge);
        assert!(v.try_lock(&[LbaRange { slba: 7, nlb: 1 }]));
        assert_eq!(v.locks.memory(), 128 << 10, "the lock table does not grow");
    }

    #[test]
    fn a_large_io_locks_each_of_its_lbas() {
        // 4096 LBAs: 64 granules, more than a plan holds inline.
        let v = NsVerify::new(1, 1 << 40, 512);
        let big = [LbaRange {
            slba: 100,
            nlb: 4096,
        }];
        assert!(v.try_lock(&big));
        for lba in [100, 163, 164, 2000, 4195] {
            assert!(!v.try_lock(&[LbaRange { slba: lba, nlb: 1 }]), "{lba}");
        }
        assert!(v.try_lock(&[LbaRange { slba: 99, nlb: 1 }]));
        v.unlock(&big);
        for lba in [100, 163, 164, 2000, 4195, 4196] {
            assert!(v.try_lock(&[LbaRange { slba: lba, nlb: 1 }]), "{lba}");
        }
    }

    #[test]
    fn a_huge_namespace_costs_memory_only_for_what_was_written() {
        // 32 TiB of 512-byte LBAs, 1 GiB written.
        let v = NsVerify::new(1, (32u64 << 40) / 512, 512);
        let before = v.memory();
        let lbas = (1u64 << 30) / 512;
        for lba in 0..lbas {
            v.set(lba * 7, 0x11);
        }
        let after = v.memory();
        assert!(before < 1 << 20, "{before}");
        assert!(after < 64 << 20, "{after}");
    }

    #[test]
    fn save_and_load_round_trip() {
        let v = NsVerify::new(3, 10_000, 512);
        v.fill(LbaRange { slba: 5, nlb: 3 }, 0x42);
        v.fill(LbaRange { slba: 9000, nlb: 1 }, UNCORRECTABLE);
        let p = std::env::temp_dir().join(format!("crc-{}.bin", std::process::id()));
        v.save(&p).unwrap();
        let w = NsVerify::new(3, 10_000, 512);
        w.load(&p).unwrap();
        assert_eq!(
            (w.get(5), w.get(7), w.get(8), w.get(9000)),
            (0x42, 0x42, UNKNOWN, UNCORRECTABLE)
        );
        let other = NsVerify::new(4, 10_000, 512);
        assert!(other.load(&p).is_err());
        std::fs::remove_file(p).ok();
    }
}
