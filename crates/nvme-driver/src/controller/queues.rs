//! The controller's IO queue pairs: the registry of live queue pairs (kept as
//! `Weak<dyn IoQueue>`), queue id allocation (metamode reservations included), memory parked
//! until a reset, and IO statistics.

use super::Controller;
use crate::cmdlog::CmdLogEntry;
use crate::error::{DriverError, Result};
use crate::qpair::IoQueue;
use nvme_pci::DmaMemory;
use std::sync::{Arc, Weak};
use std::time::Instant;

/// Throughput since the previous [`Controller::iostat`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IoStat {
    /// Bytes read and written per second.
    pub bytes_per_sec: f64,
    /// Read and write commands completed per second.
    pub ios_per_sec: f64,
}

impl<C: Clone + Send + 'static> Controller<C> {
    /// The command logs of the admin queue and every live IO queue, merged, newest first.
    pub fn cmdlog_merged(&self, count: usize) -> Vec<CmdLogEntry> {
        let mut all = self.cmdlog(count, 0);
        for qp in self.live_qpairs() {
            all.extend(qp.cmdlog(count, 0));
        }
        all.sort_by_key(|e| std::cmp::Reverse(e.submit_ns));
        all.truncate(count);
        all
    }

    pub(crate) fn register_qpair(&self, qp: Arc<dyn IoQueue>) {
        let mut v = self.qpairs.lock();
        v.retain(|w| w.strong_count() > 0);
        v.push(Arc::downgrade(&qp));
    }

    /// The IO queue pairs still referenced by someone.
    pub fn live_qpairs(&self) -> Vec<Arc<dyn IoQueue>> {
        self.qpairs
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Takes the lowest free IO queue id (or `want` if given and free), up to the allocated count.
    pub(crate) fn alloc_qid(&self, want: Option<u16>) -> Result<u16> {
        let max = self.num_io_queues();
        let mut used = self.qid_used.lock();
        used.resize(max as usize + 1, false);
        let pick = match want {
            Some(q) if q >= 1 && q <= max && !used[q as usize] => Some(q),
            Some(q) => return Err(DriverError::QueueIdUnavailable { want: Some(q), max }),
            None => (1..=max).find(|&q| !used[q as usize]),
        };
        let q = pick.ok_or(DriverError::QueueIdUnavailable { want: None, max })?;
        used[q as usize] = true;
        Ok(q)
    }

    pub(crate) fn free_qid(&self, qid: u16) {
        if let Some(u) = self.qid_used.lock().get_mut(qid as usize) {
            *u = false;
        }
    }

    /// Reserves IO queue id `qid` for a metamode queue, so that no [`crate::qpair::Qpair`] takes
    /// it; an SQ and a CQ of the same id share one reservation. Ids outside the allocated range
    /// reserve nothing (the device judges them): returns whether `qid` was reserved.
    pub(crate) fn reserve_meta_qid(&self, qid: u16) -> Result<bool> {
        if qid == 0 || qid > self.num_io_queues() {
            return Ok(false);
        }
        let mut meta = self.meta_qids.lock();
        if let Some(n) = meta.get_mut(&qid) {
            *n += 1;
            return Ok(true);
        }
        // A qid a Qpair of this controller uses: QueueIdUnavailable names it.
        self.alloc_qid(Some(qid))?;
        meta.insert(qid, 1);
        Ok(true)
    }

    /// Gives back one metamode reservation of `qid` (see [`Controller::reserve_meta_qid`]).
    pub(crate) fn release_meta_qid(&self, qid: u16) {
        let mut meta = self.meta_qids.lock();
        if let Some(n) = meta.get_mut(&qid) {
            *n -= 1;
            if *n == 0 {
                meta.remove(&qid);
                self.free_qid(qid);
            }
        }
    }

    /// Keeps memory the device may still use (a metamode queue dropped without deletion) until the
    /// next controller reset.
    pub(crate) fn park_until_reset(&self, mem: impl IntoIterator<Item = DmaMemory>) {
        self.parked.lock().extend(mem);
    }

    /// Bytes and commands completed by reads and writes on every IO queue pair of this controller,
    /// including deleted ones, since it was created.
    pub fn io_totals(&self) -> (u64, u64) {
        let (mut bytes, mut ios) = *self.retired_io.lock();
        for qp in self.live_qpairs() {
            let (b, n) = qp.io_counts();
            bytes += b;
            ios += n;
        }
        (bytes, ios)
    }

    pub(crate) fn retire_io(&self, bytes: u64, ios: u64) {
        let mut r = self.retired_io.lock();
        r.0 += bytes;
        r.1 += ios;
    }

    /// Read/write throughput since the previous call (since creation for the first).
    pub fn iostat(&self) -> IoStat {
        let now = Instant::now();
        let (bytes, ios) = self.io_totals();
        let mut last = self.iostat_last.lock();
        let (t0, b0, n0) = *last;
        *last = (now, bytes, ios);
        let secs = now.duration_since(t0).as_secs_f64().max(1e-9);
        IoStat {
            bytes_per_sec: (bytes - b0) as f64 / secs,
            ios_per_sec: (ios - n0) as f64 / secs,
        }
    }
}
