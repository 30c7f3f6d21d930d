//! Fault injection: make the simulated SSD misbehave on purpose, per command or by probability.
//!
//! A [`FaultRule`] matches commands ([`FaultMatch`]: admin or I/O, opcode, queue, namespace, LBA
//! range) and applies a [`FaultAction`] to them, for a number of times or forever, each time with
//! a probability. Controller-wide faults (fatal status, surprise removal) are methods of
//! [`Faults`]. Rules are checked only while at least one is installed, so an idle fault table
//! costs one atomic load per command.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

use nvme_spec::Status;
use parking_lot::Mutex;

use crate::shared::{Shared, EV_FAULT};

/// Which commands a rule applies to. Empty fields match everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultMatch {
    /// Match admin commands (on SQ 0) instead of I/O commands.
    pub admin: bool,
    /// Match only this opcode.
    pub opcode: Option<u8>,
    /// Match only commands from this submission queue.
    pub queue: Option<u16>,
    /// Match only commands to this namespace.
    pub nsid: Option<u32>,
    /// Match only I/O commands whose LBAs overlap `start..end`.
    pub lba: Option<(u64, u64)>,
}

impl FaultMatch {
    /// I/O commands with this opcode.
    pub fn io(opcode: u8) -> FaultMatch {
        FaultMatch {
            opcode: Some(opcode),
            ..Default::default()
        }
    }

    /// Admin commands with this opcode.
    pub fn admin(opcode: u8) -> FaultMatch {
        FaultMatch {
            admin: true,
            opcode: Some(opcode),
            ..Default::default()
        }
    }

    /// Restricts the match to LBAs `start..end`.
    pub fn lbas(mut self, start: u64, end: u64) -> FaultMatch {
        self.lba = Some((start, end));
        self
    }

    /// Restricts the match to one submission queue.
    pub fn on_queue(mut self, sqid: u16) -> FaultMatch {
        self.queue = Some(sqid);
        self
    }

    /// Restricts the match to one namespace.
    pub fn on_nsid(mut self, nsid: u32) -> FaultMatch {
        self.nsid = Some(nsid);
        self
    }
}

/// What happens to a matching command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Complete the command this much later than it would have.
    Delay(Duration),
    /// Never post a completion (the host times out). The command's effect still happens.
    DropCompletion,
    /// Complete with this status instead of executing the command.
    Status(Status),
    /// Flip this many distinct random bits in the data a read returns.
    FlipBits(u32),
    /// A write completes successfully but stores nothing.
    LostWrite,
    /// A write stores its data this many LBAs away from where it was addressed (wrapping within
    /// the namespace).
    MisdirectedWrite(i64),
    /// A read returns the version of the data before the latest write (for LBAs written while
    /// the rule was installed).
    StaleData,
    /// A write completes and stores its data, but the next power loss takes back its second
    /// half: its last `nlb / 2` blocks, or for a one-block write the second half of the block's
    /// bytes, read as before the write (a write torn when power went away, though it had
    /// completed). A later write to those bytes before the power loss cancels the tear.
    TornWrite,
    /// A read completes successfully without transferring any data: the host buffer keeps what
    /// it held (a success status the device had no right to give).
    ReadWithoutData,
    /// Post the completion twice.
    DuplicateCqe,
    /// Post the completion with the command identifier XOR this value.
    WrongCid(u16),
    /// Post the completion with this SQ identifier.
    WrongSqid(u16),
}

/// One fault: which commands, what to do, how often.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRule {
    /// Which commands.
    pub on: FaultMatch,
    /// What to do to them.
    pub action: FaultAction,
    /// How many commands to affect (None: every match, until removed).
    pub count: Option<u64>,
    /// Probability that a matching command is affected, 0.0 ..= 1.0.
    pub probability: f64,
}

impl FaultRule {
    /// A rule that affects every matching command.
    pub fn new(on: FaultMatch, action: FaultAction) -> FaultRule {
        FaultRule {
            on,
            action,
            count: None,
            probability: 1.0,
        }
    }

    /// Affects only the next `n` matching commands.
    pub fn times(mut self, n: u64) -> FaultRule {
        self.count = Some(n);
        self
    }

    /// Affects each matching command with probability `p`.
    pub fn with_probability(mut self, p: f64) -> FaultRule {
        self.probability = p.clamp(0.0, 1.0);
        self
    }
}

/// Identifies an installed rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultId(u64);

struct Installed {
    id: FaultId,
    rule: FaultRule,
    hits: u64,
}

/// The fault injection handle of a device ([`crate::SimDevice::faults`]).
pub struct Faults {
    sh: Arc<Shared>,
    rules: Mutex<Vec<Installed>>,
    armed: AtomicBool,
    next: AtomicU64,
    pub(crate) fatal_request: AtomicBool,
    pub(crate) crash_request: AtomicBool,
}

/// The combined effect of the rules that matched one command.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FaultSet {
    pub delay: Option<Duration>,
    pub drop: bool,
    pub status: Option<Status>,
    pub flip: u32,
    pub lost_write: bool,
    pub misdirect: Option<i64>,
    pub stale: bool,
    pub torn: bool,
    pub no_data: bool,
    pub duplicate: bool,
    pub wrong_cid: Option<u16>,
    pub wrong_sqid: Option<u16>,
}

impl FaultSet {
    pub fn any(&self) -> bool {
        self.delay.is_some()
            || self.drop
            || self.status.is_some()
            || self.flip != 0
            || self.lost_write
            || self.misdirect.is_some()
            || self.stale
            || self.torn
            || self.no_data
            || self.duplicate
            || self.wrong_cid.is_some()
            || self.wrong_sqid.is_some()
    }
}

/// What the device knows of a command when it checks the rules.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CmdInfo {
    pub sqid: u16,
    pub opcode: u8,
    pub nsid: u32,
    /// LBAs `start..end` the command touches (I/O only).
    pub lbas: Option<(u64, u64)>,
}

fn matches(m: &FaultMatch, c: &CmdInfo) -> bool {
    if m.admin != (c.sqid == 0) {
        return false;
    }
    if m.opcode.is_some_and(|o| o != c.opcode) || m.queue.is_some_and(|q| q != c.sqid) {
        return false;
    }
    if m.nsid.is_some_and(|n| n != c.nsid) {
        return false;
    }
    if let Some((s, e)) = m.lba {
        match c.lbas {
            Some((cs, ce)) if cs < e && s < ce => {}
            _ => return false,
        }
    }
    true
}

impl Faults {
    pub(crate) fn new(sh: Arc<Shared>) -> Faults {
        Faults {
            sh,
            rules: Mutex::new(Vec::new()),
            armed: AtomicBool::new(false),
            next: AtomicU64::new(1),
            fatal_request: AtomicBool::new(false),
            crash_request: AtomicBool::new(false),
        }
    }

    /// Installs a rule; it applies to commands fetched from now on.
    pub fn add(&self, rule: FaultRule) -> FaultId {
        let id = FaultId(self.next.fetch_add(1, Relaxed));
        let mut r = self.rules.lock();
        r.push(Installed { id, rule, hits: 0 });
        self.armed.store(true, SeqCst);
        id
    }

    /// Removes a rule; false if it was not installed.
    pub fn remove(&self, id: FaultId) -> bool {
        let mut r = self.rules.lock();
        let before = r.len();
        r.retain(|i| i.id != id);
        self.armed.store(!r.is_empty(), SeqCst);
        r.len() != before
    }

    /// Removes every rule.
    pub fn clear(&self) {
        let mut r = self.rules.lock();
        r.clear();
        self.armed.store(false, SeqCst);
    }

    /// How many commands a rule has affected so far (0 for an unknown id).
    pub fn hits(&self, id: FaultId) -> u64 {
        self.rules
            .lock()
            .iter()
            .find(|i| i.id == id)
            .map_or(0, |i| i.hits)
    }

    /// Number of installed rules.
    pub fn len(&self) -> usize {
        self.rules.lock().len()
    }

    /// Whether no rule is installed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets CSTS.CFS: the controller stops processing commands until it is reset.
    pub fn controller_fatal(&self) {
        self.fatal_request.store(true, SeqCst);
        self.sh.post_event(EV_FAULT);
    }

    /// A firmware crash: the device's own code fails in the middle of its work (the device
    /// thread panics). The controller then reports Controller Fatal Status, as a real one whose
    /// firmware asserts does, and works again after a controller reset.
    pub fn firmware_crash(&self) {
        self.crash_request.store(true, SeqCst);
        self.sh.post_event(EV_FAULT);
    }

    /// The device disappears from the bus: every register and config read returns all ones,
    /// writes are dropped, no more DMA. [`Faults::reinsert`] brings it back (powered off).
    pub fn surprise_removal(&self) {
        self.sh.removed.store(true, SeqCst);
        self.sh.post_event(EV_FAULT);
    }

    /// Plugs a surprise-removed device back in; it comes back as after a power cycle.
    pub fn reinsert(&self) {
        self.sh.removed.store(false, SeqCst);
        self.sh.post_event(EV_FAULT);
    }

    /// Whether the device is currently removed.
    pub fn is_removed(&self) -> bool {
        self.sh.removed.load(SeqCst)
    }

    #[inline]
    pub(crate) fn armed(&self) -> bool {
        self.armed.load(Relaxed)
    }

    /// Applies the rules to one command.
    pub(crate) fn check(&self, c: &CmdInfo, rng: &mut fastrand::Rng) -> FaultSet {
        let mut set = FaultSet::default();
        let mut r = self.rules.lock();
        for i in r.iter_mut() {
            if i.rule.count == Some(0) || !matches(&i.rule.on, c) {
                continue;
            }
            if i.rule.probability < 1.0 && rng.f64() >= i.rule.probability {
                continue;
            }
            if let Some(n) = i.rule.count.as_mut() {
                *n -= 1;
            }
            i.hits += 1;
            match i.rule.action {
                FaultAction::Delay(d) => set.delay = Some(set.delay.unwrap_or_default() + d),
                FaultAction::DropCompletion => set.drop = true,
                FaultAction::Status(s) => set.status = Some(s),
                FaultAction::FlipBits(n) => set.flip += n,
                FaultAction::LostWrite => set.lost_write = true,
                FaultAction::MisdirectedWrite(o) => set.misdirect = Some(o),
                FaultAction::StaleData => set.stale = true,
                FaultAction::TornWrite => set.torn = true,
                FaultAction::ReadWithoutData => set.no_data = true,
                FaultAction::DuplicateCqe => set.duplicate = true,
                FaultAction::WrongCid(x) => set.wrong_cid = Some(x),
                FaultAction::WrongSqid(q) => set.wrong_sqid = Some(q),
            }
        }
        set
    }

    /// Whether a stale-data rule covers this LBA range, so old versions must be kept on writes.
    pub(crate) fn keeps_history(&self, nsid: u32, start: u64, end: u64) -> bool {
        let r = self.rules.lock();
        r.iter().any(|i| {
            i.rule.action == FaultAction::StaleData
                && i.rule.count != Some(0)
                && i.rule.on.nsid.is_none_or(|n| n == nsid)
                && i.rule.on.lba.is_none_or(|(s, e)| start < e && s < end)
        })
    }
}
