//! The command log: the latest commands of one queue with their completions and timestamps.

use nvme_spec::cmd::{admin, nvm};
use nvme_spec::{Cqe, Sqe};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Entries kept per queue, as pynvme keeps about 2000.
pub const CMDLOG_ENTRIES: usize = 2048;

/// Nanoseconds since the UNIX epoch at monotonic instant `at` (so entries of all queues sort
/// consistently even if the wall clock is adjusted during a run). It reads no clock itself, so a
/// caller that already has an `Instant` pays nothing more.
pub fn ns_at(at: Instant) -> u64 {
    static BASE: OnceLock<(Instant, u64)> = OnceLock::new();
    let (i0, t0) = BASE.get_or_init(|| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        (Instant::now(), t)
    });
    match at.checked_duration_since(*i0) {
        Some(d) => t0 + d.as_nanos() as u64,
        None => t0.saturating_sub(i0.duration_since(at).as_nanos() as u64),
    }
}

/// Nanoseconds since the UNIX epoch, now.
pub fn now_ns() -> u64 {
    ns_at(Instant::now())
}

/// One command in the log.
#[derive(Clone, Copy, Debug, Default)]
pub struct CmdLogEntry {
    /// Sequence number of the command in its queue (0 for the first).
    pub seq: u64,
    /// The queue it was submitted to.
    pub sqid: u16,
    /// The command as submitted.
    pub sqe: Sqe,
    /// The completion, if it came.
    pub cqe: Option<Cqe>,
    /// Submission time, ns since the epoch.
    pub submit_ns: u64,
    /// Completion time, ns since the epoch (0 until completed).
    pub complete_ns: u64,
    /// Whether the host completed it with a timeout status.
    pub timed_out: bool,
}

impl CmdLogEntry {
    /// The command's name: admin names on queue 0, NVM names elsewhere.
    pub fn name(&self) -> &'static str {
        if self.sqid == 0 {
            admin::name(self.sqe.opc())
        } else {
            nvm::name(self.sqe.opc())
        }
    }

    /// The entry as PyNVMe3 prints it: a header line with time, sequence, name and queue, the 16
    /// SQE dwords, then the completion time and status with the 4 CQE dwords (or "not completed").
    pub fn format(&self, local_offset_s: i64) -> String {
        let d = self.sqe.dwords();
        let mut s = format!(
            "{} [cmd{:06}: {}, sqid: {}]\n",
            format_time(self.submit_ns, local_offset_s),
            self.seq,
            self.name(),
            self.sqid
        );
        for row in d.chunks(4) {
            s.push_str(&format!(
                "0x{:08x}, 0x{:08x}, 0x{:08x}, 0x{:08x}\n",
                row[0], row[1], row[2], row[3]
            ));
        }
        match self.cqe {
            Some(c) => {
                let st = c.status();
                let what = if self.timed_out {
                    "TIMEOUT".to_string()
                } else {
                    st.name().to_string()
                };
                s.push_str(&format!(
                    "{} [cpl: {}]\n",
                    format_time(self.complete_ns, local_offset_s),
                    what
                ));
                let w = c.dwords();
                s.push_str(&format!(
                    "0x{:08x}, 0x{:08x}, 0x{:08x}, 0x{:08x}",
                    w[0], w[1], w[2], w[3]
                ));
            }
            None => s.push_str("[cpl: not completed]"),
        }
        s
    }
}

/// `YYYY-mm-dd HH:MM:SS.uuuuuu` of a time in ns since the epoch, shifted by a UTC offset.
pub fn format_time(ns: u64, local_offset_s: i64) -> String {
    let secs = (ns / 1_000_000_000) as i64 + local_offset_s;
    let us = (ns / 1000) % 1_000_000;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{us:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A ring of the latest [`CMDLOG_ENTRIES`] commands of one queue.
pub struct CmdLog {
    entries: Box<[CmdLogEntry]>,
    next: u64,
}

impl Default for CmdLog {
    fn default() -> Self {
        CmdLog {
            entries: vec![CmdLogEntry::default(); CMDLOG_ENTRIES].into_boxed_slice(),
            next: 0,
        }
    }
}

impl CmdLog {
    /// Records a submission; returns its sequence number.
    #[inline]
    pub fn submit(&mut self, sqid: u16, sqe: &Sqe, now: u64) -> u64 {
        let seq = self.next;
        self.next += 1;
        let e = &mut self.entries[(seq % CMDLOG_ENTRIES as u64) as usize];
        *e = CmdLogEntry {
            seq,
            sqid,
            sqe: *sqe,
            cqe: None,
            submit_ns: now,
            complete_ns: 0,
            timed_out: false,
        };
        seq
    }

    /// Records the completion of command `seq`, unless the ring has moved past it.
    #[inline]
    pub fn complete(&mut self, seq: u64, cqe: &Cqe, now: u64, timed_out: bool) {
        let e = &mut self.entries[(seq % CMDLOG_ENTRIES as u64) as usize];
        if e.seq == seq && e.complete_ns == 0 {
            e.cqe = Some(*cqe);
            e.complete_ns = now;
            e.timed_out = timed_out;
        }
    }

    /// Up to `count` entries, newest first, skipping the `offset` newest.
    pub fn latest(&self, count: usize, offset: usize) -> Vec<CmdLogEntry> {
        let have = self.next.min(CMDLOG_ENTRIES as u64) as usize;
        (offset..have.min(offset + count))
            .map(|i| self.entries[((self.next - 1 - i as u64) % CMDLOG_ENTRIES as u64) as usize])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        // 2022-10-08 17:47:28.954447 UTC
        let ns = 1_665_251_248_954_447_000;
        assert_eq!(format_time(ns, 0), "2022-10-08 17:47:28.954447");
        assert_eq!(format_time(0, 0), "1970-01-01 00:00:00.000000");
        assert_eq!(
            format_time(951_782_400_000_000_000, 0),
            "2000-02-29 00:00:00.000000"
        );
    }

    #[test]
    fn ring_keeps_newest_first() {
        let mut log = CmdLog::default();
        for i in 0..(CMDLOG_ENTRIES as u64 + 5) {
            let s = log.submit(1, &Sqe::new(2, 1), i);
            log.complete(s, &Cqe::default(), i + 1, false);
        }
        let l = log.latest(3, 0);
        assert_eq!(
            l.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [2052, 2051, 2050]
        );
        assert_eq!(log.latest(10_000, 0).len(), CMDLOG_ENTRIES);
        let text = l[0].format(0);
        assert!(text.contains("[cmd002052: Read, sqid: 1]"), "{text}");
        assert!(text.contains("[cpl: SUCCESS]"), "{text}");
    }
}
