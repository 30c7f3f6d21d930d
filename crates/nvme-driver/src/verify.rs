//! Transparent data verification: a CRC per LBA, LBA/token stamps, and LBA locks, shared by every
//! queue and thread of the process.
//!
//! **The table.** One value per LBA, 1 byte wide by default (2 or 4 with `crc_size`): 0 = nothing
//! known (never written, deallocated, formatted), all ones = written uncorrectable (a read must
//! fail), anything else = a digest of the LBA's data ([`digest`]: the CRC-32C folded into the
//! width, with the data's parity in bit 0). Chunks of the table (16,384 LBAs each) exist only
//! where LBAs were written, so a namespace of any size costs memory only for what was written: a
//! chunk is a sorted list of 8-byte entries (offset, stamp tag, digest) while few of its LBAs are
//! known, and an array of `crc_size` bytes per LBA (plus 2 per LBA for stamp tags, once any LBA
//! of the chunk was stamped) once that is smaller. [`NsVerify::memory`] counts what each
//! structure allocated.
//!
//! **The command, not the buffer.** The table follows the LBAs a command's SQE addresses (SLBA and
//! NLB from CDW10-12): a write records, and a read checks, exactly those LBAs, from the first
//! NLB blocks of its buffer; a larger buffer's other bytes are never looked at.
//!
//! **Digests at submit.** A write's digests are taken when it is submitted, from the data that
//! goes to the device (after stamping), and recorded when it completes successfully, so a buffer
//! changed while its write is in flight does not change what the table expects.
//!
//! **Stamps.** Every write through `Namespace.write` (and the IO generator) stamps the first 8 bytes
//! of each LBA with the namespace id (bits 63:48) and the LBA (bits 47:0), and the last 8 bytes
//! (before metadata) with a global token that grows with every LBA written, so every LBA of every
//! write in history has distinct data. Besides its digest the table keeps, for each LBA whose
//! latest write was stamped, a 16-bit tag of that write's token, and every read of such an LBA
//! checks the stamps: data naming another namespace or LBA is a misdirected write, data naming
//! this LBA with another token is a stale (older) version, whatever the digest says.
//!
//! **Locks.** Before an IO is submitted all its LBAs must be free; they stay locked until it
//! completes. A conflicting IO waits for them (it is not failed). Locks and table are per
//! namespace, shared by all queues and threads, so overlapping IO never produces a false
//! miscompare.
//!
//! A read whose data does not match has its completion status changed to 07/81 (SCT 7, SC 0x81),
//! as pynvme does, and a [`Miscompare`] names the namespace, the LBA, what was found
//! ([`MiscompareKind`]), the expected and found digests and the stamps found.

use crate::error::{DriverError, Result};
use crate::queue::DataRef;
use nvme_spec::cmd::{admin, nvm};
use nvme_spec::{Cqe, Sqe, Status};
use parking_lot::Mutex;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Table value: nothing is known about the LBA; reads are not checked.
pub const UNKNOWN: u32 = 0;
/// Table value: the LBA was written uncorrectable; a read that succeeds is a miscompare. (The
/// table stores it as all ones of its width: 0xff in a 1-byte table.)
pub const UNCORRECTABLE: u32 = u32::MAX;
/// The digest widths a table can have, bytes per LBA.
pub const CRC_SIZES: [usize; 3] = [1, 2, 4];
/// The status a failed verification gives the completion: SCT 7 (vendor specific), SC 0x81.
pub const MISCOMPARE: Status = Status::new(7, 0x81);
/// Miscompares a namespace keeps until [`NsVerify::take_findings`] takes them.
pub const MAX_FINDINGS: usize = 1024;
/// Largest number of LBAs a table covers (2^44: 8 PiB of 512-byte blocks).
pub const MAX_VERIFIED_LBAS: u64 = 1 << 44;

/// The 8-bit digest of one LBA's data, in 2..=0xfd (never a special value): bits 7:1 a hash of
/// the CRC-32C, bit 0 the parity of the data's bits.
///
/// The parity comes for free from the CRC: the CRC-32C polynomial has an even number of terms, so
/// x + 1 divides it and the CRC's bit parity equals the data's (its initial value and final XOR
/// are 32 ones each, which keeps parity). So every odd number of flipped bits is caught, always;
/// an even number escapes with probability about 1/126 (the hash part alone must tell), other
/// data (a stale or misplaced block) about 1/252.
#[inline]
pub fn lba_digest(data: &[u8]) -> u8 {
    digest(data, 1) as u8
}

/// The digest of one LBA's data in a table of `crc_size` bytes per LBA (1, 2 or 4): bit 0 the
/// parity of the data's bits, the bits above a hash of the CRC-32C, never 0 or all ones. A
/// change of an even number of bits escapes with probability about 1/126, 1/32766 or 1/2^31
/// (the parity bit cannot tell), other data about 1/252, 1/65532 or 1/2^32.
#[inline]
pub fn digest(data: &[u8], crc_size: usize) -> u32 {
    let c = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32;
    let values = match crc_size {
        1 => 126,
        2 => 0x7ffe,
        _ => 0x7fff_fffe,
    };
    ((c % values) + 1) << 1 | (c.count_ones() & 1)
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

/// The latest token handed out (0: none yet).
pub fn last_token() -> u64 {
    TOKEN.load(Ordering::Relaxed) - 1
}

/// The tag the table keeps of a token: 1..=0xffff (0 means the LBA's data carries no stamp).
#[inline]
pub fn token_tag(token: u64) -> u16 {
    (token % 0xffff) as u16 + 1
}

/// The latest token not after `last` whose tag is `tag` (0 if there is none): the token of the
/// write a tag was taken from, unless 65535 more LBAs were stamped since.
fn token_of_tag(tag: u16, last: u64) -> u64 {
    let r = (tag as u64).saturating_sub(1);
    let t = last - last % 0xffff + r;
    if t <= last {
        t
    } else {
        t.saturating_sub(0xffff)
    }
}

/// Blocks whose digests a [`Written`] keeps inline (4 KiB of 512-byte LBAs, 32 KiB of 4 KiB
/// ones); more take a list from the thread's [`DIGEST_LISTS`]. Small, because a command's
/// context moves with it through its queue.
const INLINE_DIGESTS: usize = 8;

/// Digest lists a thread keeps for reuse, at most this many (an IO generator's queue depth).
const KEPT_DIGEST_LISTS: usize = 1024;

thread_local! {
    /// The digest lists of longer writes that completed on this thread, for the next ones: a
    /// thread that submits and reaps its own writes (an IO generator) allocates a list only
    /// until it has one per command in flight, never per IO after that.
    static DIGEST_LISTS: std::cell::RefCell<Vec<Vec<u32>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The digests of a write's blocks, inline for up to [`INLINE_DIGESTS`] blocks.
#[derive(Debug)]
enum Digests {
    Inline { len: u8, d: [u32; INLINE_DIGESTS] },
    Listed(Vec<u32>),
}

impl Digests {
    fn as_slice(&self) -> &[u32] {
        match self {
            Digests::Inline { len, d } => &d[..*len as usize],
            Digests::Listed(v) => v,
        }
    }

    /// A list of `digests`, reusing one of this thread's kept lists if it has one.
    fn listed(digests: impl Iterator<Item = u32>) -> Digests {
        let mut v = DIGEST_LISTS
            .try_with(|l| l.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        v.clear();
        v.extend(digests);
        Digests::Listed(v)
    }
}

impl Drop for Digests {
    fn drop(&mut self) {
        if let Digests::Listed(v) = self {
            let v = std::mem::take(v);
            // During thread exit the list is simply freed.
            let _ = DIGEST_LISTS.try_with(|l| {
                let mut l = l.borrow_mut();
                if l.len() < KEPT_DIGEST_LISTS {
                    l.push(v);
                }
            });
        }
    }
}

/// Shards of [`SENDING`], by buffer region.
const SENDING_SHARDS: usize = 16;

/// The host bytes (virtual address ranges) that stamped writes in flight send, by shard of
/// their region: the device may fetch a write's data at any time until it completes, so no
/// other write may stamp those bytes before.
static SENDING: [Mutex<Vec<(usize, usize)>>; SENDING_SHARDS] =
    [const { Mutex::new(Vec::new()) }; SENDING_SHARDS];

/// A stamped write's claim on the buffer bytes it sends, released when it is dropped (the write
/// completed, timed out or was abandoned).
#[derive(Debug)]
struct Sending {
    shard: usize,
    range: (usize, usize),
}

impl Sending {
    /// Claims `len` bytes at `offset` of `d`'s region; `None` if a write in flight claims any.
    fn claim(d: &DataRef, len: usize) -> Option<Sending> {
        let base = d.mem.host_addr();
        let shard = (base >> 12) % SENDING_SHARDS;
        let range = (base + d.offset, base + d.offset + len);
        let mut claims = SENDING[shard].lock();
        if claims.iter().any(|&(s, e)| s < range.1 && range.0 < e) {
            return None;
        }
        claims.push(range);
        Some(Sending { shard, range })
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        let mut claims = SENDING[self.shard].lock();
        if let Some(i) = claims.iter().position(|&r| r == self.range) {
            claims.swap_remove(i);
        }
    }
}

/// What a write sends to the device, taken when it is submitted: the digest of each block of
/// its buffer (up to the command's NLB) and the token of its first block's stamp (0: not
/// stamped). The table records it when the write completes successfully.
#[derive(Debug)]
pub struct Written {
    slba: u64,
    nlb: u64,
    token: u64,
    digests: Digests,
    /// The buffer bytes this write's stamps are in, claimed until it is dropped.
    _sending: Option<Sending>,
}

impl Written {
    /// A write of `nlb` LBAs at `slba` whose data the host does not know (no buffer): its LBAs
    /// become unknown when it completes.
    pub fn unknown(slba: u64, nlb: u64) -> Written {
        Written {
            slba,
            nlb,
            token: 0,
            digests: Digests::Inline {
                len: 0,
                d: [0; INLINE_DIGESTS],
            },
            _sending: None,
        }
    }

    /// The digests taken, one per block the buffer held (at most NLB).
    pub fn digests(&self) -> &[u32] {
        self.digests.as_slice()
    }

    /// The stamp token of the first block (0: not stamped).
    pub fn token(&self) -> u64 {
        self.token
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
///
/// Fairness: a command that fails to get its LBAs is retried at every poll of its queue, and
/// commands of other queues could keep taking those LBAs first for as long as they run. So a
/// command that has waited [`STARVING`] claims its words ([`LockWait`]): while the claim
/// stands, no other command may take a bit of them (one claim at a time; the next starving
/// command claims once it is gone). The claimer gets its LBAs as soon as the commands that
/// hold them now complete, and the claim ends when it has them or gives up. A claim lasts only
/// while its command keeps trying (its queue is polled): one not renewed for [`CLAIM_STALE`]
/// lapses, so a thread that waits on another queue is never held up by a command it is not
/// polling (the claimer claims again at its next try).
struct LockTable {
    words: Box<[AtomicU64]>,
    /// The starving command's words and its ticket.
    claim: Mutex<Option<Claim>>,
    /// Whether `claim` is `Some`: the only thing the common path reads.
    claimed: AtomicBool,
    /// Source of claim tickets (0 is none).
    tickets: AtomicU64,
    /// [`CLAIM_STALE`] (tests change it).
    claim_stale: std::time::Duration,
}

/// The starving command's claim.
struct Claim {
    ticket: u64,
    plan: LockPlan,
    /// Its command's latest try.
    renewed: std::time::Instant,
}

/// How long a claim lasts without its command trying again: longer than a busy machine keeps
/// a polling thread off its core, short beside a command's timeout.
pub const CLAIM_STALE: std::time::Duration = std::time::Duration::from_millis(100);

/// How long a command waits for its LBAs before it claims them.
pub const STARVING: std::time::Duration = std::time::Duration::from_millis(2);

/// A command's wait for its LBAs: when it started, and its claim if it made one (see
/// [`LockTable`]). A command that stops waiting without its LBAs (it timed out, its queue was
/// torn down) gives its claim back with [`NsVerify::give_up`].
#[derive(Debug, Default)]
pub struct LockWait {
    since: Option<std::time::Instant>,
    ticket: u64,
}

/// Lock words a plan holds inline; larger commands (over 8 granules: 512 LBAs) spill to a Vec.
const PLAN_INLINE: usize = 8;

/// The words and bits a command locks, each word once (so a command never waits for itself).
#[derive(Default, Clone)]
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

    /// Whether `self` and `other` share a bit.
    fn overlaps(&self, other: &LockPlan) -> bool {
        if self.all || other.all {
            let empty = |p: &LockPlan| !p.all && p.n == 0;
            return !empty(self) && !empty(other);
        }
        let (a, b) = (self.items(), other.items());
        a.iter()
            .any(|&(w, m)| b.iter().any(|&(v, n)| v == w && m & n != 0))
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
            claim: Mutex::new(None),
            claimed: AtomicBool::new(false),
            tickets: AtomicU64::new(1),
            claim_stale: CLAIM_STALE,
        }
    }

    /// Whether a claim other than `ticket`'s covers a bit of `plan`.
    fn claimed_by_other(&self, plan: &LockPlan, ticket: u64) -> bool {
        if !self.claimed.load(Ordering::Acquire) {
            return false;
        }
        let mut claim = self.claim.lock();
        match &mut *claim {
            Some(c) if c.ticket == ticket => {
                c.renewed = std::time::Instant::now();
                false
            }
            Some(c) if c.renewed.elapsed() > self.claim_stale => {
                // Its command is not being tried (its queue is not polled): the claim lapses.
                *claim = None;
                self.claimed.store(false, Ordering::Release);
                false
            }
            Some(c) => c.plan.overlaps(plan),
            None => false,
        }
    }

    /// Ends `ticket`'s claim, if it stands.
    fn release_claim(&self, ticket: u64) {
        let mut claim = self.claim.lock();
        if claim.as_ref().is_some_and(|c| c.ticket == ticket) {
            *claim = None;
            self.claimed.store(false, Ordering::Release);
        }
    }

    /// Tries to lock `plan` for a waiting command: claims its words once it has waited
    /// [`STARVING`] and no other claim stands; ends its claim when it has them.
    fn try_lock_waiting(&self, plan: &LockPlan, wait: &mut LockWait) -> bool {
        if wait.ticket != 0
            && self
                .claim
                .lock()
                .as_ref()
                .is_none_or(|c| c.ticket != wait.ticket)
        {
            // Its claim lapsed while the command was not tried.
            wait.ticket = 0;
        }
        if !self.claimed_by_other(plan, wait.ticket) && self.try_lock(plan) {
            if wait.ticket != 0 {
                self.release_claim(wait.ticket);
                wait.ticket = 0;
            }
            wait.since = None;
            return true;
        }
        let now = std::time::Instant::now();
        let since = *wait.since.get_or_insert(now);
        if wait.ticket == 0 && now.duration_since(since) >= STARVING {
            let mut claim = self.claim.lock();
            if claim.is_none() {
                let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
                *claim = Some(Claim {
                    ticket,
                    plan: plan.clone(),
                    renewed: now,
                });
                self.claimed.store(true, Ordering::Release);
                wait.ticket = ticket;
            }
        }
        false
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

/// LBAs per record of a saved table ([`NsVerify::save`]).
const PAGE: usize = 4096;

/// LBAs per chunk of the digest table (8 MiB of 512-byte LBAs).
const CHUNK_LBAS: usize = 1 << 14;
/// Shards of the chunk index: a command locks the shard of each chunk it touches, so commands on
/// different chunks rarely wait for each other.
const TABLE_SHARDS: usize = 64;

/// What the table knows of one LBA of a sparse chunk: its offset in the chunk, the tag of its
/// stamp token (0: unstamped) and its value (digest, or all ones of the width: uncorrectable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    off: u16,
    tag: u16,
    d: u32,
}

/// The table values of [`CHUNK_LBAS`] consecutive LBAs.
enum Chunk {
    /// Only the LBAs that hold something, sorted by offset: 8 bytes per LBA. A chunk is sparse
    /// while its entries take less room than its dense form would.
    Sparse(Vec<Entry>),
    /// Every LBA: `crc_size` bytes each (little endian, 0 = unknown), and a tag per LBA once any
    /// LBA of the chunk was written stamped.
    Dense {
        d: Box<[u8]>,
        tags: Option<Box<[u16]>>,
    },
}

impl Chunk {
    /// Heap bytes of the chunk.
    fn heap(&self) -> usize {
        match self {
            Chunk::Sparse(v) => v.capacity() * std::mem::size_of::<Entry>(),
            Chunk::Dense { d, tags } => d.len() + tags.as_ref().map_or(0, |t| t.len() * 2),
        }
    }

    /// Writes the (value, tag) of `off..off + out.len()` into `out`; unknown LBAs get (0, 0).
    fn get_run(&self, w: usize, off: usize, out: &mut [(u32, u16)]) {
        match self {
            Chunk::Sparse(v) => {
                out.fill((UNKNOWN, 0));
                let end = off + out.len();
                let lo = v.partition_point(|e| (e.off as usize) < off);
                for e in v[lo..].iter().take_while(|e| (e.off as usize) < end) {
                    out[e.off as usize - off] = (e.d, e.tag);
                }
            }
            Chunk::Dense { d, tags } => {
                for (i, o) in out.iter_mut().enumerate() {
                    let at = (off + i) * w;
                    let mut b = [0u8; 4];
                    b[..w].copy_from_slice(&d[at..at + w]);
                    *o = (
                        u32::from_le_bytes(b),
                        tags.as_ref().map_or(0, |t| t[off + i]),
                    );
                }
            }
        }
    }

    /// Sets the LBAs `off..off + n` to the (value, tag) pairs `vals` gives (value 0: unknown,
    /// which a sparse chunk does not keep). Turns a sparse chunk dense once that is smaller.
    fn set_run(
        &mut self,
        w: usize,
        off: usize,
        n: usize,
        vals: impl Iterator<Item = (u32, u16)> + Clone,
    ) {
        match self {
            Chunk::Sparse(v) => {
                let lo = v.partition_point(|e| (e.off as usize) < off);
                let hi = lo + v[lo..].partition_point(|e| (e.off as usize) < off + n);
                let new = vals
                    .take(n)
                    .enumerate()
                    .filter(|(_, (d, _))| *d != UNKNOWN)
                    .map(|(i, (d, tag))| Entry {
                        off: (off + i) as u16,
                        tag,
                        d,
                    });
                if lo == v.len() {
                    v.extend(new);
                } else {
                    v.splice(lo..hi, new);
                }
                if v.len() * std::mem::size_of::<Entry>() >= CHUNK_LBAS * w {
                    self.make_dense(w);
                }
            }
            Chunk::Dense { d, tags } => {
                for (i, (v, tag)) in vals.take(n).enumerate() {
                    let at = (off + i) * w;
                    d[at..at + w].copy_from_slice(&v.to_le_bytes()[..w]);
                    if tag != 0 && tags.is_none() {
                        *tags = Some(vec![0u16; CHUNK_LBAS].into_boxed_slice());
                    }
                    if let Some(t) = tags {
                        t[off + i] = tag;
                    }
                }
            }
        }
    }

    fn make_dense(&mut self, w: usize) {
        let Chunk::Sparse(v) = self else { return };
        let mut d = vec![0u8; CHUNK_LBAS * w].into_boxed_slice();
        let mut tags = v
            .iter()
            .any(|e| e.tag != 0)
            .then(|| vec![0u16; CHUNK_LBAS].into_boxed_slice());
        for e in v.iter() {
            let at = e.off as usize * w;
            d[at..at + w].copy_from_slice(&e.d.to_le_bytes()[..w]);
            if let Some(t) = tags.as_mut() {
                t[e.off as usize] = e.tag;
            }
        }
        *self = Chunk::Dense { d, tags };
    }

    /// Whether no LBA of the chunk holds anything.
    fn is_empty(&self) -> bool {
        match self {
            Chunk::Sparse(v) => v.is_empty(),
            Chunk::Dense { d, .. } => d.iter().all(|&b| b == 0),
        }
    }
}

/// One shard of the chunk index: an open-addressing hash table (linear probing) from chunk
/// number to a chunk of `chunks`. Chunks are never removed one by one: an emptied chunk stays,
/// sparse and without heap, until the table is cleared.
#[derive(Default)]
struct Shard {
    /// Chunk number + 1 per slot (0: free); a power of two long.
    keys: Vec<u32>,
    /// Index into `chunks` per slot.
    slots: Vec<u32>,
    chunks: Vec<Chunk>,
}

impl Shard {
    #[inline]
    fn home(chunk: u64, len: usize) -> usize {
        (chunk.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20) as usize & (len - 1)
    }

    /// Where `chunk` is in `chunks`.
    #[inline]
    fn find(&self, chunk: u64) -> Option<usize> {
        if self.keys.is_empty() {
            return None;
        }
        let key = chunk as u32 + 1;
        let mut i = Self::home(chunk, self.keys.len());
        loop {
            match self.keys[i] {
                0 => return None,
                k if k == key => return Some(self.slots[i] as usize),
                _ => i = (i + 1) & (self.keys.len() - 1),
            }
        }
    }

    fn get(&self, chunk: u64) -> Option<&Chunk> {
        self.find(chunk).map(|i| &self.chunks[i])
    }

    fn get_mut(&mut self, chunk: u64) -> Option<&mut Chunk> {
        self.find(chunk).map(|i| &mut self.chunks[i])
    }

    fn get_or_insert(&mut self, chunk: u64) -> &mut Chunk {
        if let Some(i) = self.find(chunk) {
            return &mut self.chunks[i];
        }
        if (self.chunks.len() + 1) * 4 > self.keys.len() * 3 {
            self.grow();
        }
        let mut i = Self::home(chunk, self.keys.len());
        while self.keys[i] != 0 {
            i = (i + 1) & (self.keys.len() - 1);
        }
        self.keys[i] = chunk as u32 + 1;
        self.slots[i] = self.chunks.len() as u32;
        self.chunks.push(Chunk::Sparse(Vec::new()));
        self.chunks.last_mut().expect("pushed")
    }

    fn grow(&mut self) {
        let len = (self.keys.len() * 2).max(8);
        let old = std::mem::replace(&mut self.keys, vec![0; len]);
        let old_slots = std::mem::replace(&mut self.slots, vec![0; len]);
        for (k, s) in old.into_iter().zip(old_slots).filter(|(k, _)| *k != 0) {
            let mut i = Self::home(k as u64 - 1, len);
            while self.keys[i] != 0 {
                i = (i + 1) & (len - 1);
            }
            self.keys[i] = k;
            self.slots[i] = s;
        }
    }

    /// (chunk number, chunk) of every chunk of the shard.
    fn iter(&self) -> impl Iterator<Item = (u64, &Chunk)> {
        self.keys
            .iter()
            .zip(&self.slots)
            .filter(|(k, _)| **k != 0)
            .map(|(k, s)| (*k as u64 - 1, &self.chunks[*s as usize]))
    }

    /// Heap bytes of the shard: its index, its chunk list and every chunk's own heap.
    fn heap(&self) -> usize {
        self.keys.capacity() * 4
            + self.slots.capacity() * 4
            + self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self.chunks.iter().map(Chunk::heap).sum::<usize>()
    }
}

/// The digest table: one value of `crc_size` bytes per LBA that holds something, in chunks of
/// [`CHUNK_LBAS`] LBAs that exist only where LBAs were written. A chunk is a sorted list of
/// (offset, tag, digest) while few of its LBAs hold something (8 bytes per LBA), and an array
/// of `crc_size` bytes per LBA (plus 2 per LBA for stamp tags, once any LBA of the chunk was
/// stamped) once that is smaller. Chunks are found through a sharded hash index, so the memory
/// follows the LBAs written, whatever the namespace's size.
struct Table {
    w: usize,
    shards: Box<[Mutex<Shard>]>,
}

impl Table {
    fn new(crc_size: usize) -> Table {
        Table {
            w: crc_size,
            shards: (0..TABLE_SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// All ones of the width: how [`UNCORRECTABLE`] is stored.
    fn ones(&self) -> u32 {
        match self.w {
            1 => 0xff,
            2 => 0xffff,
            _ => u32::MAX,
        }
    }

    #[inline]
    fn shard(&self, chunk: u64) -> &Mutex<Shard> {
        &self.shards[(chunk.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize % TABLE_SHARDS]
    }

    /// Calls `f(first LBA, chunk number, offset, n)` for each piece of `slba..slba + nlb`
    /// inside one chunk.
    fn pieces(slba: u64, nlb: u64, mut f: impl FnMut(u64, u64, usize, usize)) {
        let end = slba.saturating_add(nlb);
        let mut lba = slba;
        while lba < end {
            let chunk = lba / CHUNK_LBAS as u64;
            let off = (lba % CHUNK_LBAS as u64) as usize;
            let n = ((CHUNK_LBAS - off) as u64).min(end - lba) as usize;
            f(lba, chunk, off, n);
            lba += n as u64;
        }
    }

    /// The (value, tag) of the LBAs from `slba` on, one per element of `out`.
    fn get_run(&self, slba: u64, out: &mut [(u32, u16)]) {
        Self::pieces(slba, out.len() as u64, |lba, chunk, off, n| {
            let at = (lba - slba) as usize;
            let piece = &mut out[at..at + n];
            match self.shard(chunk).lock().get(chunk) {
                Some(c) => c.get_run(self.w, off, piece),
                None => piece.fill((UNKNOWN, 0)),
            }
        });
        let ones = self.ones();
        for o in out.iter_mut().filter(|o| o.0 == ones) {
            o.0 = UNCORRECTABLE;
        }
    }

    /// Sets `slba..slba + nlb` to the (value, tag) pairs `vals` gives, in order: values of the
    /// table's width, [`UNKNOWN`] or [`UNCORRECTABLE`]. Unknown values allocate nothing.
    fn set_run(&self, slba: u64, nlb: u64, vals: impl Iterator<Item = (u32, u16)> + Clone) {
        let ones = self.ones();
        let mut vals = vals.map(move |(d, t)| (d.min(ones), if d == UNKNOWN { 0 } else { t }));
        Self::pieces(slba, nlb, |_, chunk, off, n| {
            let mut shard = self.shard(chunk).lock();
            let all_unknown = vals.clone().take(n).all(|(d, _)| d == UNKNOWN);
            let c = if all_unknown {
                shard.get_mut(chunk)
            } else {
                Some(shard.get_or_insert(chunk))
            };
            if let Some(c) = c {
                if all_unknown && (n == CHUNK_LBAS || matches!(c, Chunk::Sparse(v) if v.len() <= n))
                {
                    // Nothing left in the chunk, or the whole chunk forgotten: give its memory
                    // back (a sparse chunk forgetting fewer LBAs than it holds keeps its list).
                    let emptied = match c {
                        Chunk::Sparse(v) => {
                            let lo = v.partition_point(|e| (e.off as usize) < off);
                            v[lo..]
                                .iter()
                                .take_while(|e| (e.off as usize) < off + n)
                                .count()
                                == v.len()
                        }
                        Chunk::Dense { .. } => n == CHUNK_LBAS,
                    };
                    if emptied {
                        *c = Chunk::Sparse(Vec::new());
                        vals.nth(n.wrapping_sub(1));
                        return;
                    }
                }
                c.set_run(self.w, off, n, vals.clone());
            }
            vals.nth(n.wrapping_sub(1));
        });
    }

    /// Sets `slba..slba + nlb` to one value with no tag.
    fn fill(&self, slba: u64, nlb: u64, v: u32) {
        if nlb == 0 {
            return;
        }
        let span = nlb / CHUNK_LBAS as u64;
        // (Counting the chunks locks every shard: only for ranges that may be worth it.)
        if v == UNKNOWN && span > TABLE_SHARDS as u64 && span > self.chunks() as u64 {
            // A huge range to forget: visit the chunks that exist, not the range.
            let end = slba.saturating_add(nlb);
            for s in self.shards.iter() {
                let mut s = s.lock();
                let chunks: Vec<u64> = s.iter().map(|(c, _)| c).collect();
                for chunk in chunks {
                    let first = chunk * CHUNK_LBAS as u64;
                    let (from, to) = (first.max(slba), (first + CHUNK_LBAS as u64).min(end));
                    if from < to {
                        let c = s.get_mut(chunk).expect("listed");
                        let off = (from - first) as usize;
                        c.set_run(self.w, off, (to - from) as usize, std::iter::repeat((0, 0)));
                    }
                }
            }
            return;
        }
        self.set_run(slba, nlb, std::iter::repeat((v, 0)));
    }

    /// Number of chunks.
    fn chunks(&self) -> usize {
        self.shards.iter().map(|s| s.lock().chunks.len()).sum()
    }

    /// The first LBAs of the chunks that hold something, in order.
    fn chunk_starts(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .shards
            .iter()
            .flat_map(|s| {
                s.lock()
                    .iter()
                    .filter(|(_, c)| !c.is_empty())
                    .map(|(n, _)| n * CHUNK_LBAS as u64)
                    .collect::<Vec<_>>()
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// Forgets everything and gives the memory back.
    fn clear(&self) {
        for s in self.shards.iter() {
            *s.lock() = Shard::default();
        }
    }

    /// Bytes the stamp tag arrays of dense chunks take.
    fn tag_memory(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .chunks
                    .iter()
                    .map(|c| match c {
                        Chunk::Dense { tags: Some(t), .. } => t.len() * 2,
                        _ => 0,
                    })
                    .sum::<usize>()
            })
            .sum()
    }

    /// Bytes the table takes: its shards and everything they allocated.
    fn memory(&self) -> usize {
        self.shards.len() * std::mem::size_of::<Mutex<Shard>>()
            + self.shards.iter().map(|s| s.lock().heap()).sum::<usize>()
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

/// What a read found where the table expected other data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MiscompareKind {
    /// The LBA was written uncorrectable but the read returned data.
    Uncorrectable,
    /// The data's stamp names another namespace or LBA: it is that LBA's data (a misdirected
    /// write, or a read served from the wrong place). Reported whenever the LBA's latest write
    /// was stamped, whatever the digest says.
    Misdirected,
    /// The data's stamp names this LBA with a token older than the latest write's: an earlier
    /// version (a lost or unflushed write, or stale data).
    Stale,
    /// Every byte is 0x00 (or 0xff), as never-written or deallocated blocks read: the write did
    /// not reach the media.
    NeverWritten,
    /// Any other change to what was written: changed bits.
    Corrupted,
}

/// One finding of a read check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Miscompare {
    /// Namespace.
    pub nsid: u32,
    /// The LBA whose data is wrong.
    pub lba: u64,
    /// What was found.
    pub kind: MiscompareKind,
    /// The digest the table expected ([`UNCORRECTABLE`]: the LBA was written uncorrectable).
    pub expected: u32,
    /// The digest of the data read.
    pub found: u32,
    /// The namespace id and LBA the data's first 8 bytes claim.
    pub claims: (u32, u64),
    /// The token in the data's last 8 bytes.
    pub token: u64,
    /// The stamp tag the table holds for the LBA's latest write (0: it was not stamped).
    pub tag: u16,
}

impl std::fmt::Display for Miscompare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "data miscompare: nsid {} lba {:#x}: ",
            self.nsid, self.lba
        )?;
        let (cn, cl, t) = (self.claims.0, self.claims.1, self.token);
        match self.kind {
            MiscompareKind::Uncorrectable => {
                return write!(f, "written uncorrectable, but the read returned data")
            }
            MiscompareKind::Misdirected => write!(
                f,
                "misdirected write: the data belongs to nsid {cn} lba {cl:#x} (its stamp, token {t:#x})"
            )?,
            MiscompareKind::Stale => write!(
                f,
                "stale data: an older version of this LBA (token {t:#x}, older than the latest write's)"
            )?,
            MiscompareKind::NeverWritten => write!(
                f,
                "never written: the data reads as never-written or deallocated blocks do (all bytes equal)"
            )?,
            MiscompareKind::Corrupted => write!(
                f,
                "corrupted content (its stamp: nsid {cn} lba {cl:#x} token {t:#x}; the latest write's token tag {:#06x})",
                self.tag
            )?,
        }
        write!(
            f,
            "; expected crc {:#04x}, found {:#04x}",
            self.expected, self.found
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
    crc_size: usize,
    crc: Table,
    locks: LockTable,
    enabled: AtomicBool,
    stamp: AtomicBool,
    dealloc_zeroes: AtomicBool,
    findings: Mutex<Vec<Miscompare>>,
    /// What a dirty power loss may undo: media changes completed since the last completed flush
    /// that were not FUA.
    volatile: Mutex<Volatile>,
}

/// Largest number of ranges [`NsVerify`] keeps for a dirty power loss; past it, a dirty power
/// loss forgets the whole table (it can no longer tell which LBAs are durable).
const MAX_VOLATILE_RANGES: usize = 1 << 20;

/// Media changes not yet durable (see [`NsVerify::note_volatile`]), in completion order.
#[derive(Default)]
struct Volatile {
    ranges: Vec<(std::time::Instant, LbaRange)>,
    /// When the latest change that did not fit the list completed.
    overflow: Option<std::time::Instant>,
}

impl NsVerify {
    /// State for namespace `nsid` of `nlba` LBAs (verification covers `min(nlba, 2^44)`) of
    /// `sector` bytes, with 1-byte digests. Verification of reads starts off; the table is kept
    /// up to date always.
    pub fn new(nsid: u32, nlba: u64, sector: usize) -> NsVerify {
        Self::with_crc_size(nsid, nlba, sector, 1).expect("1 is a digest width")
    }

    /// As [`NsVerify::new`], with digests of `crc_size` bytes per LBA: 1, 2 or 4.
    pub fn with_crc_size(nsid: u32, nlba: u64, sector: usize, crc_size: usize) -> Result<NsVerify> {
        if !CRC_SIZES.contains(&crc_size) {
            return Err(DriverError::invalid(
                "crc_size",
                format!("{crc_size} is not a digest width: 1, 2 or 4 bytes per LBA"),
            ));
        }
        let nlba = nlba.min(MAX_VERIFIED_LBAS);
        Ok(NsVerify {
            nsid,
            sector: AtomicU64::new(sector as u64),
            inline_meta: AtomicU64::new(0),
            nlba,
            crc_size,
            crc: Table::new(crc_size),
            locks: LockTable::new(),
            enabled: AtomicBool::new(false),
            stamp: AtomicBool::new(true),
            dealloc_zeroes: AtomicBool::new(false),
            findings: Mutex::new(Vec::new()),
            volatile: Mutex::new(Volatile::default()),
        })
    }

    /// Bytes per LBA of the digest table: 1, 2 or 4.
    pub fn crc_size(&self) -> usize {
        self.crc_size
    }

    /// The digest of one block of data, of this table's width.
    pub fn digest(&self, block: &[u8]) -> u32 {
        digest(block, self.crc_size)
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
    pub fn zero_digest(&self) -> u32 {
        self.digest(&vec![0u8; self.block_size()])
    }

    /// What deallocated LBAs read as: zeroes if DLFEAT says so, else unknown.
    fn deallocated(&self) -> u32 {
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
    pub fn get(&self, lba: u64) -> u32 {
        self.lookup(lba).0
    }

    /// The table value and stamp tag of `lba`.
    fn lookup(&self, lba: u64) -> (u32, u16) {
        let mut v = [(UNKNOWN, 0)];
        if lba < self.nlba {
            self.crc.get_run(lba, &mut v);
        }
        v[0]
    }

    /// The tag of the stamp token the latest write of `lba` carried (0: not stamped).
    pub fn tag(&self, lba: u64) -> u16 {
        self.lookup(lba).1
    }

    fn set(&self, lba: u64, v: u32) {
        self.set_tagged(lba, v, 0)
    }

    fn set_tagged(&self, lba: u64, v: u32, tag: u16) {
        if lba < self.nlba {
            self.crc.set_run(lba, 1, std::iter::once((v, tag)));
        }
    }

    /// Sets `range` to one value.
    pub fn fill(&self, r: LbaRange, v: u32) {
        let end = (r.slba.saturating_add(r.nlb)).min(self.nlba);
        let start = r.slba.min(end);
        self.crc.fill(start, end - start, v);
    }

    /// Forgets everything (format, sanitize).
    pub fn clear(&self) {
        self.crc.clear();
    }

    /// Notes a completed media change that is not durable yet (a write without FUA, while a
    /// volatile write cache may hold it): a dirty power loss may undo it.
    pub fn note_volatile(&self, r: LbaRange) {
        if r.nlb == 0 || r.slba >= self.nlba {
            return;
        }
        let now = std::time::Instant::now();
        let r = self.clip(r);
        let mut v = self.volatile.lock();
        if v.ranges.len() < MAX_VOLATILE_RANGES {
            v.ranges.push((now, r));
        } else {
            v.overflow = Some(now);
        }
    }

    /// A flush submitted at `since` completed (or a shutdown begun then): the media changes that
    /// had completed before `since` are durable; those completed later may not be.
    pub fn flushed_before(&self, since: std::time::Instant) {
        let mut v = self.volatile.lock();
        let n = v.ranges.partition_point(|(t, _)| *t < since);
        v.ranges.drain(..n);
        // Follow the writes still volatile: give back most of a list that emptied.
        let keep = v.ranges.len().max(1024);
        if v.ranges.capacity() > 4 * keep {
            v.ranges.shrink_to(keep);
        }
        if v.overflow.is_some_and(|t| t < since) {
            v.overflow = None;
        }
    }

    /// The device lost power without a shutdown: every media change that was not durable may
    /// read back as it was before, or as written. The table cannot hold both versions, so those
    /// LBAs are no longer checked until they are written again (no false miscompare); durable
    /// data stays checked, so a flushed or FUA write that reads back old is still caught.
    /// Returns the number of LBAs forgotten (all of the table's when too many were pending).
    pub fn power_lost(&self) -> u64 {
        let v = std::mem::take(&mut *self.volatile.lock());
        if v.overflow.is_some() {
            self.clear();
            return self.nlba;
        }
        v.ranges.iter().for_each(|(_, r)| self.fill(*r, UNKNOWN));
        v.ranges.iter().map(|(_, r)| r.nlb).sum()
    }

    /// Bytes of host memory the verification state of the namespace takes: the digest table
    /// (chunks, their index, stamp tags), the LBA locks, the list of writes a dirty power loss
    /// may undo and the findings kept. Counted from what each structure allocated (capacities,
    /// not lengths), so it is what the allocator handed out, not an estimate.
    pub fn memory(&self) -> usize {
        std::mem::size_of::<NsVerify>()
            + self.crc.memory()
            + self.locks.memory()
            + self.volatile_memory()
            + self.findings.lock().capacity() * std::mem::size_of::<Miscompare>()
    }

    /// Bytes of [`NsVerify::memory`] that the list of writes a dirty power loss may undo takes
    /// (a range per completed write not yet made durable by a flush or FUA; a flush empties
    /// the list but keeps its capacity).
    pub fn volatile_memory(&self) -> usize {
        self.volatile.lock().ranges.capacity()
            * std::mem::size_of::<(std::time::Instant, LbaRange)>()
    }

    /// Bytes of [`NsVerify::memory`] that stamp tags take (2 per LBA of the dense chunks
    /// holding stamped LBAs; sparse chunks keep the tag in their 8-byte entries).
    pub fn tag_memory(&self) -> usize {
        self.crc.tag_memory()
    }

    /// Takes the miscompares found since the last call (the first [`MAX_FINDINGS`] of them).
    pub fn take_findings(&self) -> Vec<Miscompare> {
        std::mem::take(&mut self.findings.lock())
    }

    /// Stamps `data` (whole blocks starting at `slba`): nsid/LBA in the first 8 bytes of each
    /// block's data, a fresh token in the last 8 (before any metadata). Returns the first block's
    /// token, or 0 when nothing was stamped (stamping off, or blocks under 16 bytes).
    pub fn stamp_write(&self, data: &mut [u8], slba: u64) -> u64 {
        let (ss, bs) = (self.sector_size(), self.block_size());
        let n = (data.len() / bs) as u64;
        if ss < 16 || !self.stamping() || n == 0 {
            return 0;
        }
        let token = next_tokens(n);
        for (i, lba) in data.chunks_exact_mut(bs).enumerate() {
            lba[..8].copy_from_slice(&lba_stamp(self.nsid, slba + i as u64).to_le_bytes());
            lba[ss - 8..ss].copy_from_slice(&(token + i as u64).to_le_bytes());
        }
        token
    }

    /// Bytes of a `len`-byte buffer that a command of `nlb` blocks transfers as whole blocks.
    fn command_bytes(&self, nlb: u64, len: usize) -> usize {
        let bs = self.block_size();
        (len / bs).min(usize::try_from(nlb).unwrap_or(usize::MAX)) * bs
    }

    /// What a write of `nlb` LBAs at `slba` sends, taken at submit: its data are the first
    /// blocks of `data`, stamped with `token` (0: not stamped).
    pub fn written(&self, data: &[u8], slba: u64, nlb: u64, token: u64) -> Written {
        let data = &data[..self.command_bytes(nlb, data.len())];
        let bs = self.block_size();
        let n = data.len() / bs;
        let digests = if n <= INLINE_DIGESTS {
            let mut d = [0u32; INLINE_DIGESTS];
            for (x, b) in d.iter_mut().zip(data.chunks_exact(bs)) {
                *x = self.digest(b);
            }
            Digests::Inline { len: n as u8, d }
        } else {
            Digests::listed(data.chunks_exact(bs).map(|b| self.digest(b)))
        };
        Written {
            slba,
            nlb,
            token,
            digests,
            _sending: None,
        }
    }

    /// Prepares a write being submitted with data `*d`: stamps its first `nlb` blocks (with
    /// `stamp`, when the namespace stamps) and takes their digests.
    ///
    /// Stamping changes the buffer, which the device may still be fetching for an earlier
    /// stamped write in flight (a script that writes one buffer to several LBAs without waiting):
    /// then the write is stamped and sent from a copy of the buffer, and `*d` becomes the copy,
    /// so the earlier write's data never changes under the device. The buffer keeps the stamps
    /// of the earlier write.
    pub fn submit_write(&self, d: &mut DataRef, slba: u64, nlb: u64, stamp: bool) -> Written {
        let len = self.command_bytes(nlb, d.len);
        if !(stamp && self.stamping() && len > 0) {
            return d
                .mem
                .with_bytes(d.offset, len, |b| self.written(b, slba, nlb, 0));
        }
        let sending = Sending::claim(d, len);
        if sending.is_none() {
            if let Ok(copy) = nvme_pci::dma_alloc(d.len) {
                copy.write(0, &d.mem.to_vec(d.offset, d.len));
                *d = DataRef {
                    mem: copy,
                    offset: 0,
                    len: d.len,
                    sgl: d.sgl,
                };
            }
        }
        let token = d
            .mem
            .with_bytes_mut(d.offset, len, |b| self.stamp_write(b, slba));
        let mut w = d
            .mem
            .with_bytes(d.offset, len, |b| self.written(b, slba, nlb, token));
        w._sending = sending;
        w
    }

    /// Records a write that completed successfully: the digests taken at submit, and the tags of
    /// its stamps; LBAs of the command its buffer did not hold become unknown.
    pub fn record_written(&self, w: &Written) {
        let digests = w.digests();
        let n = (digests.len() as u64).min(self.nlba.saturating_sub(w.slba));
        let token = w.token;
        self.crc.set_run(
            w.slba,
            n,
            digests.iter().enumerate().map(move |(i, &d)| {
                let tag = if token != 0 {
                    token_tag(token + i as u64)
                } else {
                    0
                };
                (d, tag)
            }),
        );
        let n = digests.len() as u64;
        self.fill(
            LbaRange {
                slba: w.slba.saturating_add(n),
                nlb: w.nlb.saturating_sub(n),
            },
            UNKNOWN,
        );
    }

    /// Records the digests of written data (whole blocks starting at `slba`), unstamped.
    pub fn record(&self, data: &[u8], slba: u64) {
        let digests: Vec<u32> = data
            .chunks_exact(self.block_size())
            .map(|b| self.digest(b))
            .collect();
        let n = (digests.len() as u64).min(self.nlba.saturating_sub(slba));
        self.crc.set_run(slba, n, digests.iter().map(|&d| (d, 0)));
    }

    /// Checks the data a read of `nlb` LBAs at `slba` brought into `d`: only its first `nlb`
    /// blocks (the LBAs the command read). Adds a miscompare per wrong LBA to `found`.
    pub fn check_read(&self, d: &DataRef, slba: u64, nlb: u64, found: &mut Vec<Miscompare>) {
        let len = self.command_bytes(nlb, d.len);
        d.mem
            .with_bytes(d.offset, len, |b| self.check_into(b, slba, found))
    }

    /// Checks read data (whole LBAs starting at `slba`); returns the first miscompare (all are
    /// recorded for [`NsVerify::take_findings`]).
    pub fn check(&self, data: &[u8], slba: u64) -> Option<Miscompare> {
        let mut found = Vec::new();
        self.check_into(data, slba, &mut found);
        found.into_iter().next()
    }

    /// Checks read data (whole LBAs starting at `slba`); adds a miscompare per wrong LBA to
    /// `out`, and records them for [`NsVerify::take_findings`].
    ///
    /// An LBA whose latest write was stamped has its stamps checked first: a stamp naming another
    /// namespace or LBA is a misdirected write, a token other than the latest write's a stale
    /// version, whatever the digest says. Then the digest.
    pub fn check_into(&self, data: &[u8], slba: u64, out: &mut Vec<Miscompare>) {
        let ss = self.sector_size();
        // The table's values, looked up a group of LBAs at a time (one shard lock per chunk).
        const GROUP: usize = 16;
        let mut known = [(UNKNOWN, 0u16); GROUP];
        for (i, block) in data.chunks_exact(self.block_size()).enumerate() {
            let lba = slba + i as u64;
            if i % GROUP == 0 {
                let n = (data.len() / self.block_size() - i)
                    .min(GROUP)
                    .min(self.nlba.saturating_sub(lba) as usize);
                known[n..].fill((UNKNOWN, 0));
                self.crc.get_run(lba, &mut known[..n]);
            }
            let (expected, tag) = known[i % GROUP];
            if expected == UNKNOWN {
                continue;
            }
            let stamp = u64::from_le_bytes(block[..8].try_into().expect("8 bytes"));
            let claims = ((stamp >> 48) as u32, stamp & 0xffff_ffff_ffff);
            let token = if ss >= 16 {
                u64::from_le_bytes(block[ss - 8..ss].try_into().expect("8 bytes"))
            } else {
                0
            };
            let stamps_ok = tag == 0 || (claims == (self.nsid, lba) && token_tag(token) == tag);
            let found = self.digest(block);
            if found == expected && stamps_ok {
                continue;
            }
            let uniform = block.iter().all(|&b| b == block[0]) && matches!(block[0], 0 | 0xff);
            let older = token != 0
                && token
                    < if tag == 0 {
                        last_token() + 1
                    } else {
                        token_of_tag(tag, last_token())
                    };
            let kind = if expected == UNCORRECTABLE {
                MiscompareKind::Uncorrectable
            } else if uniform {
                MiscompareKind::NeverWritten
            } else if claims != (self.nsid, lba)
                && (tag != 0 || (claims.0 != 0 && token != 0 && token <= last_token()))
            {
                // Deterministic where the latest write was stamped; elsewhere (a table loaded
                // from a file, an unstamped write) only data that looks stamped is named so.
                MiscompareKind::Misdirected
            } else if claims == (self.nsid, lba) && older && (tag == 0 || token_tag(token) != tag) {
                MiscompareKind::Stale
            } else {
                MiscompareKind::Corrupted
            };
            let m = Miscompare {
                nsid: self.nsid,
                lba,
                kind,
                expected,
                found,
                claims,
                token,
                tag,
            };
            let mut kept = self.findings.lock();
            if kept.len() < MAX_FINDINGS {
                kept.push(m.clone());
            }
            out.push(m);
        }
    }

    /// Tries to lock every LBA of `ranges` (overlaps inside the list are fine); all or nothing.
    /// Fails while a starving command claims one of them (see [`NsVerify::try_lock_waiting`]).
    pub fn try_lock(&self, ranges: &[LbaRange]) -> bool {
        let plan = self.plan(ranges);
        !self.locks.claimed_by_other(&plan, 0) && self.locks.try_lock(&plan)
    }

    /// As [`NsVerify::try_lock`] for a command that tries again until it has its LBAs, with
    /// its `wait` kept between the tries: once it has waited [`STARVING`], it claims them, and
    /// other commands cannot take them before it (one claim at a time).
    pub fn try_lock_waiting(&self, ranges: &[LbaRange], wait: &mut LockWait) -> bool {
        self.locks.try_lock_waiting(&self.plan(ranges), wait)
    }

    /// Ends the claim of a command that stops waiting without its LBAs.
    pub fn give_up(&self, wait: &mut LockWait) {
        if wait.ticket != 0 {
            self.locks.release_claim(wait.ticket);
            wait.ticket = 0;
        }
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

    /// Saves the table to `path` (only the written pages): digests and stamp token tags.
    ///
    /// Format: "NVMECRC2", then nsid, LBAs, sector size and digest width as u64 (little
    /// endian), then per page of 4096 LBAs holding anything: its first LBA (u64), its digests
    /// (`crc_size` bytes each, all ones for uncorrectable) and its tags (u16 each).
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let io =
            |e: std::io::Error| DriverError::invalid("path", format!("{}: {e}", path.display()));
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
        f.write_all(b"NVMECRC2").map_err(io)?;
        for v in [
            self.nsid as u64,
            self.nlba,
            self.sector_size() as u64,
            self.crc_size as u64,
        ] {
            f.write_all(&v.to_le_bytes()).map_err(io)?;
        }
        let ones = self.crc.ones();
        let mut page = vec![(UNKNOWN, 0u16); PAGE];
        for chunk in self.crc.chunk_starts() {
            for first in (chunk..chunk + CHUNK_LBAS as u64).step_by(PAGE) {
                if first >= self.nlba {
                    break;
                }
                page.fill((UNKNOWN, 0));
                let n = (self.nlba - first).min(PAGE as u64) as usize;
                self.crc.get_run(first, &mut page[..n]);
                if page.iter().all(|&(d, _)| d == UNKNOWN) {
                    continue;
                }
                f.write_all(&first.to_le_bytes()).map_err(io)?;
                let digests: Vec<u8> = page
                    .iter()
                    .flat_map(|&(d, _)| d.min(ones).to_le_bytes()[..self.crc_size].to_vec())
                    .collect();
                f.write_all(&digests).map_err(io)?;
                let tags: Vec<u8> = page.iter().flat_map(|&(_, t)| t.to_le_bytes()).collect();
                f.write_all(&tags).map_err(io)?;
            }
        }
        f.flush().map_err(io)
    }

    /// Replaces the table with one saved by [`NsVerify::save`] for the same namespace geometry
    /// and digest width (a table saved before stamp tags were kept, "NVMECRC1", loads with its
    /// 1-byte digests only).
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
        let word = |i: usize| u64::from_le_bytes(data[i..i + 8].try_into().expect("8 bytes"));
        let (header, size, tagged) = match data.get(..8) {
            Some(b"NVMECRC1") if data.len() >= 32 => (32, 1, false),
            Some(b"NVMECRC2") if data.len() >= 40 => (40, word(32) as usize, true),
            _ => return Err(bad("bad header")),
        };
        if word(8) != self.nsid as u64
            || word(16) != self.nlba
            || word(24) != self.sector_size() as u64
            || size != self.crc_size
        {
            return Err(bad(&format!(
                "it is for nsid {} with {} LBAs of {} bytes and {size}-byte digests",
                word(8),
                word(16),
                word(24)
            )));
        }
        let record = 8 + PAGE * size + if tagged { 2 * PAGE } else { 0 };
        let body = &data[header..];
        if body.len() % record != 0 {
            return Err(bad("truncated"));
        }
        self.clear();
        let ones = self.crc.ones();
        for rec in body.chunks_exact(record) {
            let first = u64::from_le_bytes(rec[..8].try_into().expect("8 bytes"));
            let tags = &rec[8 + PAGE * size..];
            for (i, d) in rec[8..8 + PAGE * size].chunks_exact(size).enumerate() {
                let mut v = [0u8; 4];
                v[..size].copy_from_slice(d);
                let v = match u32::from_le_bytes(v) {
                    x if x == ones => UNCORRECTABLE,
                    x => x,
                };
                if v != UNKNOWN {
                    let tag = tags
                        .get(2 * i..2 * i + 2)
                        .map_or(0, |t| u16::from_le_bytes([t[0], t[1]]));
                    self.set_tagged(first + i as u64, v, tag);
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
            if let (1, Some(l)) = (n, range_list.filter(|l| l.len() >= 16)) {
                return Ranges::One(LbaRange {
                    slba: u64::from_le_bytes(l[8..16].try_into().expect("8")),
                    nlb: u32::from_le_bytes(l[4..8].try_into().expect("4")) as u64,
                });
            }
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
            // Source range descriptor formats 0 (32 bytes) and 1 (40 bytes, with a 64-bit guard)
            // put SLBA and NLB at the same place; others are not followed.
            let size = match (sqe.cdw12 >> 8) & 0xf {
                0 => 32,
                1 => 40,
                _ => return Ranges::Many(Vec::new()),
            };
            let mut v: Vec<LbaRange> = range_list.map_or_else(Vec::new, |l| {
                l.chunks_exact(size)
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

/// Keeps the table true after a successful IO command: writes record the digests taken at submit
/// (`written`),
/// write uncorrectable marks, write zeroes records zeroes (or, with DEAC, what deallocated blocks
/// read as), deallocation records what DLFEAT says deallocated blocks read as, copy moves
/// digests. A failed or timed-out command that may have changed media makes its LBAs unknown.
pub fn after_io(
    v: &NsVerify,
    sqe: &Sqe,
    cqe: &Cqe,
    timed_out: bool,
    written: Option<&Written>,
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
    let fua = sqe.cdw12 & nvme_spec::cmd::io_flags::FUA != 0;
    if changes_media && !(fua && opc != nvm::DSM) {
        let dest: &[LbaRange] = if opc == nvm::COPY {
            &ranges[ranges.len().saturating_sub(1)..]
        } else {
            ranges
        };
        dest.iter().for_each(|r| v.note_volatile(*r));
    }
    match opc {
        nvm::WRITE => match written {
            Some(w) => v.record_written(w),
            None => v.fill(ranges[0], UNKNOWN),
        },
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

/// Keeps the table true for an IO command sent outside the driver's queue pairs (metamode),
/// which verification does not follow: the LBAs of a write, write uncorrectable or write zeroes
/// become unknown. (The range lists of a DSM or Copy are in the script's memory and are not
/// read.)
pub fn forget_unfollowed<C: Clone + Send + 'static>(
    ctrl: &crate::controller::Controller<C>,
    sqe: &Sqe,
) {
    if matches!(
        sqe.opc(),
        nvm::WRITE | nvm::WRITE_UNCORRECTABLE | nvm::WRITE_ZEROES
    ) {
        if let Some(v) = ctrl.verifier(sqe.nsid) {
            v.fill(
                LbaRange {
                    slba: sqe.slba(),
                    nlb: sqe.nlb() as u64,
                },
                UNKNOWN,
            );
        }
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
    fn digests_are_never_the_special_values_of_their_width() {
        for (size, ones) in [(1, 0xff), (2, 0xffff), (4, u32::MAX)] {
            let mut seen = std::collections::HashSet::new();
            for i in 0..2000u32 {
                let mut data = vec![0u8; 512];
                data[..4].copy_from_slice(&i.to_le_bytes());
                let d = digest(&data, size);
                assert!(d != UNKNOWN && d < ones, "{size}: {d:#x}");
                assert_eq!(d & 1, data.iter().map(|b| b.count_ones()).sum::<u32>() & 1);
                seen.insert(d);
            }
            // Wider digests tell more data apart: 1 byte has 252 values, 2 and 4 bytes more.
            assert!(
                seen.len() > if size == 1 { 200 } else { 1900 },
                "{size}: {}",
                seen.len()
            );
        }
        assert_eq!(lba_digest(b"abc") as u32, digest(b"abc", 1));
    }

    #[test]
    fn a_table_of_each_width_records_checks_saves_and_loads() {
        assert!(NsVerify::with_crc_size(1, 100, 512, 3).is_err());
        for size in CRC_SIZES {
            let v = NsVerify::with_crc_size(1, 10_000, 512, size).unwrap();
            assert_eq!(v.crc_size(), size);
            let mut d = vec![0x3cu8; 512 * 3];
            let t = v.stamp_write(&mut d, 7);
            v.record_written(&v.written(&d, 7, 3, t));
            assert_eq!(v.get(8), digest(&d[512..1024], size));
            assert_eq!(v.check(&d, 7), None);
            let mut bad = d.clone();
            bad[700] ^= 0x81; // two bits: the parity does not see it, the hash does
            assert_eq!(
                v.check(&bad, 7).map(|m| (m.lba, m.kind)),
                Some((8, MiscompareKind::Corrupted))
            );
            v.fill(LbaRange { slba: 100, nlb: 1 }, UNCORRECTABLE);
            assert_eq!(v.get(100), UNCORRECTABLE);
            let p = std::env::temp_dir().join(format!("crc{size}-{}.bin", std::process::id()));
            v.save(&p).unwrap();
            let w = NsVerify::with_crc_size(1, 10_000, 512, size).unwrap();
            w.load(&p).unwrap();
            assert_eq!(
                (w.get(7), w.get(9), w.tag(9)),
                (v.get(7), v.get(9), v.tag(9))
            );
            assert_eq!(w.get(100), UNCORRECTABLE);
            let other = NsVerify::with_crc_size(1, 10_000, 512, if size == 4 { 1 } else { 4 });
            assert!(other.unwrap().load(&p).is_err(), "another width is refused");
            std::fs::remove_file(p).ok();
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

    /// A DMA buffer of `blocks` blocks of 512 bytes, each filled with its own byte.
    fn dma(blocks: usize) -> DataRef {
        let len = blocks * 512;
        let mem = nvme_pci::dma_alloc(len).unwrap();
        for b in 0..blocks {
            mem.fill(b * 512, 512, 0x10 + b as u8);
        }
        DataRef {
            mem,
            offset: 0,
            len,
            sgl: false,
        }
    }

    #[test]
    fn a_write_records_exactly_the_lbas_of_its_command() {
        let v = NsVerify::new(1, 1000, 512);
        v.fill(LbaRange { slba: 0, nlb: 8 }, 0x42);
        // One block from an 8-block buffer: only LBA 0 changes, only block 0 is stamped.
        let mut d = dma(8);
        let w = v.submit_write(&mut d, 0, 1, true);
        assert_eq!(w.digests().len(), 1);
        assert_ne!(w.token(), 0);
        assert_eq!(
            d.mem.to_vec(512, 512),
            vec![0x11; 512],
            "block 1 is not stamped"
        );
        v.record_written(&w);
        assert_eq!(v.get(0), v.digest(&d.mem.to_vec(0, 512)));
        assert_eq!(v.tag(0), token_tag(w.token()));
        assert!((1..8).all(|l| v.get(l) == 0x42 && v.tag(l) == 0));
        // A buffer shorter than the command: the LBAs it does not hold become unknown.
        let w = v.submit_write(&mut dma(2), 10, 4, true);
        assert_eq!(w.digests().len(), 2);
        v.fill(LbaRange { slba: 10, nlb: 4 }, 0x42);
        v.record_written(&w);
        assert!(v.get(10) != 0x42 && v.get(11) != 0x42);
        assert_eq!((v.get(12), v.get(13)), (UNKNOWN, UNKNOWN));
        // A write without a buffer: its LBAs become unknown.
        v.record_written(&Written::unknown(0, 2));
        assert_eq!((v.get(0), v.get(1), v.get(2)), (UNKNOWN, UNKNOWN, 0x42));
        // More blocks than are kept inline.
        let mut big = dma(20);
        let w = v.submit_write(&mut big, 500, 20, true);
        v.record_written(&w);
        assert_eq!(w.digests().len(), 20);
        for b in 0..20 {
            assert_eq!(
                v.get(500 + b),
                v.digest(&big.mem.to_vec(b as usize * 512, 512))
            );
        }
        assert_eq!(v.check(&big.mem.to_vec(0, 20 * 512), 500), None);
    }

    #[test]
    fn a_read_checks_exactly_the_lbas_of_its_command() {
        let v = NsVerify::new(1, 1000, 512);
        let mut d = dma(8);
        let w = v.submit_write(&mut d, 0, 8, true);
        v.record_written(&w);
        // A one-block read into the 8-block buffer whose other blocks hold anything.
        let r = dma(8);
        r.mem.write(0, &d.mem.to_vec(0, 512));
        let mut found = Vec::new();
        v.check_read(&r, 0, 1, &mut found);
        assert_eq!(found, vec![]);
        v.check_read(&r, 0, 3, &mut found);
        assert_eq!(found.iter().map(|m| m.lba).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(v.take_findings().len(), 2);
    }

    #[test]
    fn the_digest_is_taken_at_submit_not_at_completion() {
        let v = NsVerify::new(1, 1000, 512);
        let mut d = dma(1);
        let w = v.submit_write(&mut d, 3, 1, true);
        let sent = d.mem.to_vec(0, 512);
        d.mem.fill(0, 512, 0xee); // the script reuses its buffer while the write is in flight
        v.record_written(&w);
        assert_eq!(v.check(&sent, 3), None);
        assert!(v.check(&d.mem.to_vec(0, 512), 3).is_some());
    }

    #[test]
    fn a_buffer_still_sent_by_a_write_in_flight_is_stamped_in_a_copy() {
        let v = NsVerify::new(1, 1000, 512);
        let mut a = dma(2);
        let first = v.submit_write(&mut a, 0, 2, true);
        let sent = a.mem.to_vec(0, 1024);
        // The same buffer for another write while the first is in flight: a copy is stamped.
        let mut b = a.clone();
        let second = v.submit_write(&mut b, 100, 2, true);
        assert!(!b.mem.same_region(&a.mem), "the second write sends a copy");
        assert_eq!(
            a.mem.to_vec(0, 1024),
            sent,
            "the first write's data did not change"
        );
        assert_eq!(
            u64::from_le_bytes(b.mem.to_vec(512, 8).try_into().unwrap()),
            lba_stamp(1, 101)
        );
        v.record_written(&first);
        v.record_written(&second);
        assert_eq!(v.check(&sent, 0), None);
        assert_eq!(v.check(&b.mem.to_vec(0, 1024), 100), None);
        // Unstamped writes change nothing and claim nothing; once the first write is done its
        // buffer is stamped in place again.
        let mut c = a.clone();
        let _plain = v.submit_write(&mut c, 200, 2, false);
        assert!(c.mem.same_region(&a.mem));
        drop(first);
        let mut d = a.clone();
        let _third = v.submit_write(&mut d, 300, 1, true);
        assert!(d.mem.same_region(&a.mem));
        assert_eq!(
            u64::from_le_bytes(a.mem.to_vec(0, 8).try_into().unwrap()),
            lba_stamp(1, 300)
        );
    }

    #[test]
    fn command_ranges_come_from_the_sqe() {
        let r = |slba, nlb| LbaRange { slba, nlb };
        let rw = crate::commands::raw(nvm::READ as u32, 1, 0, 0, 5, 0, 3, 0, 0, 0);
        assert_eq!(&*command_ranges(&rw, None), &[r(5, 4)]);
        // DSM: NR (CDW10 bits 7:0, 0-based) ranges of the list, whatever the buffer holds.
        let mut list = vec![0u8; 4096];
        for (i, (slba, nlb)) in [(10u64, 2u32), (20, 3), (30, 4)].iter().enumerate() {
            list[16 * i + 4..16 * i + 8].copy_from_slice(&nlb.to_le_bytes());
            list[16 * i + 8..16 * i + 16].copy_from_slice(&slba.to_le_bytes());
        }
        let dsm = crate::commands::raw(nvm::DSM as u32, 1, 0, 0, 1, 4, 0, 0, 0, 0);
        assert_eq!(&*command_ranges(&dsm, Some(&list)), &[r(10, 2), r(20, 3)]);
        // Copy: source ranges of descriptor format 0 (32 bytes) or 1 (40 bytes), then the
        // destination (SDLBA, the sum of the sources); other formats are not followed.
        for (format, size) in [(0u32, 32usize), (1, 40)] {
            let mut list = vec![0u8; 4096];
            for (i, (slba, nlb)) in [(100u64, 1u16), (200, 3)].iter().enumerate() {
                list[size * i + 8..size * i + 16].copy_from_slice(&slba.to_le_bytes());
                list[size * i + 16..size * i + 18].copy_from_slice(&nlb.to_le_bytes());
            }
            let copy =
                crate::commands::raw(nvm::COPY as u32, 1, 0, 0, 500, 0, format << 8 | 1, 0, 0, 0);
            assert_eq!(
                &*command_ranges(&copy, Some(&list)),
                &[r(100, 2), r(200, 4), r(500, 6)],
                "format {format}"
            );
        }
        let copy2 = crate::commands::raw(nvm::COPY as u32, 1, 0, 0, 500, 0, 2 << 8, 0, 0, 0);
        assert!(command_ranges(&copy2, Some(&list)).is_empty());
    }

    /// Data stamped as (`nsid`, `lba`, `token`).
    fn stamped(nsid: u32, lba: u64, token: u64, fill: u8) -> Vec<u8> {
        let mut b = vec![fill; 512];
        b[..8].copy_from_slice(&lba_stamp(nsid, lba).to_le_bytes());
        b[504..].copy_from_slice(&token.to_le_bytes());
        b
    }

    #[test]
    fn stamps_are_checked_whatever_the_digest_says() {
        let v = NsVerify::new(1, 1000, 512);
        let t = next_tokens(2);
        // The table expects data whose digest matches, but whose stamp names LBA 7: misdirected.
        let other = stamped(1, 7, t, 0x33);
        v.record_written(&v.written(&other, 5, 1, t));
        let m = v.check(&other, 5).expect("misdirected data is caught");
        assert_eq!(m.expected, m.found, "the digest alone would have passed");
        assert_eq!((m.kind, m.claims), (MiscompareKind::Misdirected, (1, 7)));
        assert!(
            m.to_string()
                .contains("misdirected write: the data belongs to nsid 1 lba 0x7"),
            "{m}"
        );
        // Another namespace's data.
        let theirs = stamped(2, 5, t, 0x33);
        v.record_written(&v.written(&theirs, 5, 1, t));
        assert_eq!(
            v.check(&theirs, 5).unwrap().kind,
            MiscompareKind::Misdirected
        );
        // Right LBA, older token than the write the table holds: stale, digest equal or not.
        let old = stamped(1, 5, t, 0x33);
        v.record_written(&v.written(&old, 5, 1, t + 1));
        let m = v.check(&old, 5).expect("stale data is caught");
        assert_eq!(
            (m.kind, m.expected == m.found),
            (MiscompareKind::Stale, true)
        );
        assert!(
            m.to_string().contains("stale data: an older version"),
            "{m}"
        );
        assert_eq!(v.take_findings().len(), 3);
    }

    #[test]
    fn a_miscompare_says_what_was_found() {
        let v = NsVerify::new(1, 1000, 512);
        let kind = |lba: u64, data: &[u8]| v.check(data, lba).map(|m| m.kind);
        let mut w = vec![0x5au8; 512 * 4];
        let t = v.stamp_write(&mut w, 0);
        v.record_written(&v.written(&w, 0, 4, t));
        // A later write of LBA 0 that the drive lost: the old data is read.
        let old = w[..512].to_vec();
        let t2 = v.stamp_write(&mut w[..512], 0);
        v.record_written(&v.written(&w[..512], 0, 1, t2));
        assert_eq!(kind(0, &old), Some(MiscompareKind::Stale));
        let mut flipped = w[512..1024].to_vec();
        flipped[100] ^= 4;
        assert_eq!(kind(1, &flipped), Some(MiscompareKind::Corrupted));
        assert_eq!(kind(2, &[0u8; 512]), Some(MiscompareKind::NeverWritten));
        assert_eq!(kind(2, &[0xffu8; 512]), Some(MiscompareKind::NeverWritten));
        assert_eq!(kind(3, &w[512..1024]), Some(MiscompareKind::Misdirected));
        v.fill(LbaRange { slba: 3, nlb: 1 }, UNCORRECTABLE);
        let m = v.check(&w[1536..], 3).unwrap();
        assert_eq!(m.kind, MiscompareKind::Uncorrectable);
        assert!(m.to_string().contains("written uncorrectable"), "{m}");
        // An unstamped write: only the digest counts (its first bytes are not a stamp).
        let plain = vec![0x77u8; 512];
        v.record_written(&v.written(&plain, 9, 1, 0));
        assert_eq!((v.tag(9), kind(9, &plain)), (0, None));
    }

    #[test]
    fn a_token_tag_finds_its_token_back() {
        for t in [1u64, 2, 0xfffe, 0xffff, 0x1_0000, 123_456_789] {
            for later in [0u64, 1, 1000, 0xfffe] {
                assert_eq!(token_of_tag(token_tag(t), t + later), t, "{t} {later}");
            }
        }
        assert_eq!(token_of_tag(token_tag(5000), 10), 0, "not issued yet");
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
    fn a_starving_command_gets_its_lbas_before_later_ones() {
        let mut v = NsVerify::new(1, 100_000, 512);
        // Claims do not lapse while a loaded machine keeps this thread off its core.
        v.locks.claim_stale = std::time::Duration::from_secs(3600);
        let x = [LbaRange { slba: 100, nlb: 8 }];
        let y = [LbaRange { slba: 104, nlb: 8 }];
        assert!(v.try_lock(&x), "a holder");
        let mut w = LockWait::default();
        assert!(!v.try_lock_waiting(&y, &mut w));
        assert_eq!(w.ticket, 0, "no claim before it starved");
        // Without a claim, another command takes the LBAs the moment they are free.
        v.unlock(&x);
        assert!(v.try_lock(&x), "the LBAs went to a newcomer");
        w.since = Some(std::time::Instant::now() - STARVING);
        assert!(!v.try_lock_waiting(&y, &mut w));
        assert_ne!(w.ticket, 0, "it claims them once it starved");
        let mut other = LockWait {
            since: Some(std::time::Instant::now() - STARVING * 10),
            ticket: 0,
        };
        let z = [LbaRange { slba: 110, nlb: 4 }];
        assert!(!v.try_lock_waiting(&z, &mut other));
        assert_eq!(other.ticket, 0, "one claim at a time");
        v.unlock(&x);
        assert!(!v.try_lock(&x), "claimed LBAs do not go to a newcomer");
        assert!(
            v.try_lock(&[LbaRange { slba: 96, nlb: 4 }]),
            "LBAs outside the claim do"
        );
        assert!(v.try_lock_waiting(&y, &mut w), "the claimer gets them");
        assert_eq!(w.ticket, 0, "and its claim ends");
        assert!(!v.locks.claimed.load(Ordering::Relaxed));
        v.unlock(&y);
        assert!(v.try_lock(&x), "free for anyone again");
        v.unlock(&x);
        // A claimer that gives up frees its claim.
        assert!(v.try_lock(&x));
        let mut quitter = LockWait {
            since: Some(std::time::Instant::now() - STARVING),
            ticket: 0,
        };
        assert!(!v.try_lock_waiting(&y, &mut quitter));
        assert_ne!(quitter.ticket, 0);
        v.unlock(&x);
        assert!(!v.try_lock(&y), "claimed");
        v.give_up(&mut quitter);
        assert_eq!(quitter.ticket, 0);
        assert!(v.try_lock(&y), "no claim left behind");
        v.unlock(&y);
        // A claim whose command is not tried again lapses, and is made again at its next try.
        v.locks.claim_stale = std::time::Duration::from_millis(10);
        assert!(v.try_lock(&x));
        let mut idle = LockWait {
            since: Some(std::time::Instant::now() - STARVING),
            ticket: 0,
        };
        assert!(!v.try_lock_waiting(&y, &mut idle));
        assert_ne!(idle.ticket, 0);
        v.unlock(&x);
        std::thread::sleep(std::time::Duration::from_millis(15));
        assert!(
            v.try_lock(&x),
            "the claim lapsed: its command was not tried"
        );
        assert!(!v.locks.claimed.load(Ordering::Relaxed));
        assert!(!v.try_lock_waiting(&y, &mut idle), "x holds 104..108");
        assert_ne!(idle.ticket, 0, "claimed again");
        v.unlock(&x);
        assert!(v.try_lock_waiting(&y, &mut idle));
        assert_eq!(idle.ticket, 0);
    }

    #[test]
    fn a_whole_table_claim_overlaps_everything() {
        let all = LockPlan::all();
        let mut one = LockPlan::default();
        assert!(!all.overlaps(&one), "an empty plan overlaps nothing");
        assert!(one.add(LockTable::slot(3), 1 << 5));
        assert!(all.overlaps(&one) && one.overlaps(&all));
        let mut two = LockPlan::default();
        assert!(two.add(LockTable::slot(3), 1 << 6));
        assert!(!one.overlaps(&two), "same word, other bit");
        assert!(two.add(LockTable::slot(3), 1 << 5));
        assert!(one.overlaps(&two));
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
    fn a_dirty_power_loss_forgets_only_what_no_flush_covered() {
        let v = NsVerify::new(1, 1 << 20, 512);
        let r = |slba| LbaRange { slba, nlb: 8 };
        v.fill(r(0), 0x11);
        v.note_volatile(r(0));
        let flush_submitted = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        v.fill(r(64), 0x22);
        v.note_volatile(r(64)); // completed after the flush was submitted
        v.flushed_before(flush_submitted);
        assert_eq!(v.power_lost(), 8);
        assert_eq!(v.get(0), 0x11, "durable: still checked");
        assert_eq!(v.get(64), UNKNOWN, "may read back either version");
        assert_eq!(v.power_lost(), 0, "nothing pending any more");
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
    fn the_table_holds_what_a_simple_map_holds_through_sparse_and_dense_chunks() {
        // Random runs, fills and huge forgets against a map of LBA -> (value, tag), over a few
        // chunks, dense enough that chunks go from sparse lists to arrays.
        for w in CRC_SIZES {
            let nlba = 5 * CHUNK_LBAS as u64 + 77;
            let v = NsVerify::with_crc_size(1, nlba, 512, w).unwrap();
            let ones = v.crc.ones();
            let mut model = std::collections::HashMap::<u64, (u32, u16)>::new();
            let mut rng = fastrand::Rng::with_seed(w as u64);
            for _ in 0..3000 {
                let slba = rng.u64(0..nlba);
                let max = if rng.u8(..) < 10 {
                    3 * CHUNK_LBAS as u64
                } else {
                    40
                };
                let nlb = rng.u64(1..=max);
                let end = (slba + nlb).min(nlba);
                match rng.u8(0..10) {
                    0 => {
                        let x = [UNKNOWN, UNCORRECTABLE, 2][rng.usize(0..3)];
                        v.fill(LbaRange { slba, nlb }, x);
                        for l in slba..end {
                            model.insert(l, (x, 0));
                        }
                    }
                    _ => {
                        let vals: Vec<(u32, u16)> = (slba..end)
                            .map(|_| (rng.u32(1..ones.min(0x7fff_ffff)), rng.u16(..)))
                            .collect();
                        v.crc.set_run(slba, end - slba, vals.iter().copied());
                        for (i, x) in vals.into_iter().enumerate() {
                            model.insert(slba + i as u64, x);
                        }
                    }
                }
            }
            let mut dense = 0;
            for s in v.crc.shards.iter() {
                dense += s
                    .lock()
                    .chunks
                    .iter()
                    .filter(|c| matches!(c, Chunk::Dense { .. }))
                    .count();
            }
            assert!(dense > 0, "width {w}: some chunks became arrays");
            let mut all = vec![(0u32, 0u16); nlba as usize];
            v.crc.get_run(0, &mut all);
            for (lba, got) in all.into_iter().enumerate() {
                let want = match model.get(&(lba as u64)) {
                    None | Some((UNKNOWN, _)) => (UNKNOWN, 0),
                    Some(&x) => x,
                };
                assert_eq!(got, want, "width {w} lba {lba}");
                assert_eq!((v.get(lba as u64), v.tag(lba as u64)), want);
            }
            v.clear();
            assert_eq!(v.crc.chunks(), 0);
            assert_eq!(v.get(5), UNKNOWN);
        }
        // A sparse chunk whose every LBA is forgotten gives its list back.
        let v = NsVerify::new(1, 1 << 30, 512);
        let base = v.memory();
        v.fill(LbaRange { slba: 100, nlb: 8 }, 0x42);
        let one = v.memory();
        v.fill(LbaRange { slba: 104, nlb: 2 }, UNKNOWN);
        assert_eq!(
            v.memory(),
            one,
            "a list keeps its capacity while it holds entries"
        );
        v.fill(LbaRange { slba: 90, nlb: 30 }, UNKNOWN);
        assert!(
            v.memory() < one && v.memory() > base,
            "{base} {one} {}",
            v.memory()
        );
        assert_eq!(v.get(100), UNKNOWN);
        // Forgetting a range of far more chunks than exist visits the chunks, not the range.
        let v = NsVerify::new(1, 1 << 44, 512);
        for lba in [5u64, 1 << 30, (1 << 44) - 1] {
            v.fill(LbaRange { slba: lba, nlb: 1 }, 0x42);
        }
        v.fill(
            LbaRange {
                slba: 6,
                nlb: (1 << 44) - 7,
            },
            UNKNOWN,
        );
        assert_eq!(
            (v.get(5), v.get(1 << 30), v.get((1 << 44) - 1)),
            (0x42, UNKNOWN, 0x42)
        );
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
        let mut d = vec![0x99u8; 1024];
        let t = v.stamp_write(&mut d, 20);
        v.record_written(&v.written(&d, 20, 2, t));
        let p = std::env::temp_dir().join(format!("crc-{}.bin", std::process::id()));
        v.save(&p).unwrap();
        let w = NsVerify::new(3, 10_000, 512);
        w.load(&p).unwrap();
        assert_eq!(
            (w.get(5), w.get(7), w.get(8), w.get(9000)),
            (0x42, 0x42, UNKNOWN, UNCORRECTABLE)
        );
        assert_eq!((w.get(21), w.tag(21)), (v.get(21), token_tag(t + 1)));
        assert_eq!(w.tag(5), 0);
        assert_eq!(w.check(&d, 20), None);
        let misplaced = w
            .check(&d[512..], 20)
            .expect("the stamps are checked after a load");
        assert_eq!(misplaced.kind, MiscompareKind::Misdirected);
        let other = NsVerify::new(4, 10_000, 512);
        assert!(other.load(&p).is_err());
        std::fs::remove_file(p).ok();
    }
}
