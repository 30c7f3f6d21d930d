//! The benchmark profile: a time-based model of a drive's speed (`sim://?profile=bench`).
//!
//! The drive is one timeline that serves commands one after the other: each command occupies it
//! for a service time (its bytes at the current bandwidth, or one slot of the IOPS limit,
//! whichever is longer) and then completes a media latency later. Commands that arrive while the
//! timeline is busy wait, so latency grows with the queue depth once the drive is saturated,
//! and IOPS grow with the queue depth until then.
//!
//! Writes land in a write cache (the SLC cache of a real drive) at `cache_write_bw` while it has
//! room; once it is full they go at `sustained_write_bw`. While the timeline is idle the cache
//! is flushed in the background at `flush_bw`, so the fast phase comes back after a rest, in
//! proportion to its length. Nothing sleeps: the model only computes when each command
//! completes, and the controller's completion queue of timed commands does the waiting.
//!
//! The profile also gives the controller a start-up time: CSTS.RDY follows CC.EN after
//! `ready_clean`, `ready_dirty` (after a power loss without shutdown notification) or
//! `ready_reset` (the controller applies them; see `Controller::enable`).

use std::time::{Duration, Instant};

use crate::config::parse_size;
use crate::SimError;

/// Speeds of the benchmark profile. [`PerfProfile::for_capacity`] gives the defaults: a drive
/// scaled down so that the simulator keeps up with it on a small machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfProfile {
    /// Write cache (SLC) size in bytes (default: an eighth of the capacity).
    pub cache_size: u64,
    /// Write bandwidth while the cache has room, bytes per second (default 1 GB/s).
    pub cache_write_bw: u64,
    /// Write bandwidth once the cache is full, bytes per second (default 200 MB/s).
    pub sustained_write_bw: u64,
    /// Background flush of the cache while the drive is idle, bytes per second (default 250 MB/s).
    pub flush_bw: u64,
    /// Idle time before the background flush starts (default 50 ms): the gaps of a busy host
    /// between commands do not count.
    pub flush_delay: Duration,
    /// Read bandwidth, bytes per second (default 2 GB/s).
    pub read_bw: u64,
    /// Most reads per second (default 200,000).
    pub read_iops: u64,
    /// Most writes per second (default 150,000).
    pub write_iops: u64,
    /// Media latency of a read after its service time (default 80 µs).
    pub read_latency: Duration,
    /// Latency of a write after its service time (default 20 µs).
    pub write_latency: Duration,
    /// Dataset Management: fixed cost per command (default 100 µs) ...
    pub trim_latency: Duration,
    /// ... plus the deallocated bytes at this rate, bytes per second (default 100 GB/s).
    pub trim_bw: u64,
    /// CC.EN to CSTS.RDY at the first enable after power on that followed a clean shutdown
    /// (default 30 ms) ...
    pub ready_clean: Duration,
    /// ... after a power loss without shutdown notification: the mapping table is rebuilt
    /// (default 300 ms) ...
    pub ready_dirty: Duration,
    /// ... and at any other enable, after a controller reset (default 5 ms).
    pub ready_reset: Duration,
}

impl PerfProfile {
    /// The default profile of a drive of `capacity` bytes.
    pub fn for_capacity(capacity: u64) -> PerfProfile {
        PerfProfile {
            cache_size: (capacity / 8).max(1 << 20),
            cache_write_bw: 1_000_000_000,
            sustained_write_bw: 200_000_000,
            flush_bw: 250_000_000,
            flush_delay: Duration::from_millis(50),
            read_bw: 2_000_000_000,
            read_iops: 200_000,
            write_iops: 150_000,
            read_latency: Duration::from_micros(80),
            write_latency: Duration::from_micros(20),
            trim_latency: Duration::from_micros(100),
            trim_bw: 100_000_000_000,
            ready_clean: Duration::from_millis(30),
            ready_dirty: Duration::from_millis(300),
            ready_reset: Duration::from_millis(5),
        }
    }

    /// Sets one profile key from its `sim://` URI form: `cache` (a size), `cache_bw`,
    /// `sustained_bw`, `flush_bw`, `read_bw` (bytes per second as sizes: `1G` = 1 GiB/s),
    /// `read_iops`, `write_iops`. Returns false for a key that is not the profile's.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<bool, SimError> {
        let bad = |why: &str| SimError::Config {
            key: key.to_string(),
            value: value.to_string(),
            reason: why.to_string(),
        };
        let rate = |v: &str| -> Result<u64, SimError> {
            let n = parse_size(key, v)?;
            if n == 0 {
                return Err(bad("must be above 0"));
            }
            Ok(n)
        };
        match key {
            "cache" => self.cache_size = parse_size(key, value)?,
            "cache_bw" => self.cache_write_bw = rate(value)?,
            "sustained_bw" => self.sustained_write_bw = rate(value)?,
            "flush_bw" => self.flush_bw = rate(value)?,
            "read_bw" => self.read_bw = rate(value)?,
            "read_iops" | "write_iops" => {
                let n: u64 = value
                    .trim()
                    .parse()
                    .map_err(|_| bad("not a number of commands per second"))?;
                if n == 0 {
                    return Err(bad("must be above 0"));
                }
                if key == "read_iops" {
                    self.read_iops = n;
                } else {
                    self.write_iops = n;
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// What a command does to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerfOp {
    /// Read, Compare, Verify: this many bytes.
    Read(u64),
    /// Write, Write Zeroes, Copy: this many bytes.
    Write(u64),
    /// Dataset Management deallocating this many bytes.
    Trim(u64),
}

/// The state of the benchmark profile: the timeline and the write cache.
#[derive(Debug, Clone)]
pub struct PerfModel {
    profile: PerfProfile,
    /// When the timeline is free again.
    busy_until: Instant,
    /// Up to when idle time has been turned into background flush.
    flushed_to: Instant,
    /// Bytes in the write cache not yet flushed.
    cache_used: u64,
}

fn span(bytes: u64, per_second: u64) -> Duration {
    Duration::from_nanos((bytes as u128 * 1_000_000_000 / per_second.max(1) as u128) as u64)
}

impl PerfModel {
    /// A model at rest (empty cache) at `now`.
    pub fn new(profile: PerfProfile, now: Instant) -> PerfModel {
        PerfModel {
            profile,
            busy_until: now,
            flushed_to: now,
            cache_used: 0,
        }
    }

    /// The profile.
    pub fn profile(&self) -> &PerfProfile {
        &self.profile
    }

    /// Bytes in the write cache not yet flushed (as of the last command).
    pub fn cache_used(&self) -> u64 {
        self.cache_used
    }

    /// Empties the cache (Format NVM, Sanitize: nothing is left to flush).
    pub fn clear_cache(&mut self) {
        self.cache_used = 0;
    }

    /// Turns the idle time up to `now` (after the first `flush_delay` of it) into background
    /// flush.
    fn idle_flush(&mut self, now: Instant) {
        let from = self
            .flushed_to
            .max(self.busy_until + self.profile.flush_delay);
        if now > from {
            let idle = now - from;
            let bytes = (idle.as_nanos() * self.profile.flush_bw as u128 / 1_000_000_000) as u64;
            self.cache_used = self.cache_used.saturating_sub(bytes);
            self.flushed_to = now;
        }
    }

    /// A command arriving at `now`: returns how long after `now` it completes. `tail` is a
    /// uniform random number in 0..1_000_000 that picks the command's latency spread (most
    /// within ±10 %, one in a hundred 2-4x, one in ten thousand 10-20x: a drive's tail).
    pub fn command(&mut self, now: Instant, op: PerfOp, tail: u32) -> Duration {
        self.idle_flush(now);
        let p = self.profile;
        let (service, latency) = match op {
            PerfOp::Read(bytes) => (
                span(bytes, p.read_bw).max(span(1, p.read_iops)),
                p.read_latency,
            ),
            PerfOp::Write(bytes) => {
                let slot = span(1, p.write_iops);
                if self.cache_used.saturating_add(bytes) <= p.cache_size {
                    self.cache_used += bytes;
                    (span(bytes, p.cache_write_bw).max(slot), p.write_latency)
                } else {
                    // Cache full: straight to the slower media; the cache stays full.
                    self.cache_used = p.cache_size;
                    (span(bytes, p.sustained_write_bw).max(slot), p.write_latency)
                }
            }
            PerfOp::Trim(bytes) => (span(bytes, p.trim_bw), p.trim_latency),
        };
        let start = now.max(self.busy_until);
        self.busy_until = start + service;
        let spread = match tail {
            0..100 => 10.0 + (tail as f64 / 100.0) * 10.0,
            100..10_100 => 2.0 + (tail - 100) as f64 / 10_000.0 * 2.0,
            _ => 0.9 + (tail % 1000) as f64 / 1000.0 * 0.2,
        };
        (self.busy_until - now) + latency.mul_f64(spread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPICAL: u32 = 500_500; // spread 1.0
    const MB: u64 = 1_000_000;

    fn small() -> PerfProfile {
        PerfProfile {
            cache_size: 100 * MB,
            cache_write_bw: 1000 * MB,
            sustained_write_bw: 100 * MB,
            flush_bw: 50 * MB,
            ..PerfProfile::for_capacity(8 << 30)
        }
    }

    /// Writes `n` commands of `bytes` back to back (each arrives when the previous one left the
    /// timeline, as with a deep queue) and returns the bandwidth, bytes per second.
    fn write_bw(m: &mut PerfModel, at: &mut Instant, n: u64, bytes: u64) -> f64 {
        let begin = *at;
        for _ in 0..n {
            m.command(*at, PerfOp::Write(bytes), TYPICAL);
            *at = m.busy_until;
        }
        (n * bytes) as f64 / (*at - begin).as_secs_f64()
    }

    #[test]
    fn writes_are_fast_until_the_cache_is_full_then_sustained() {
        let t0 = Instant::now();
        let mut m = PerfModel::new(small(), t0);
        let mut at = t0;
        let fast = write_bw(&mut m, &mut at, 100, MB);
        assert!((fast / 1e6 - 1000.0).abs() < 1.0, "cache phase {fast}");
        assert_eq!(m.cache_used(), 100 * MB);
        let slow = write_bw(&mut m, &mut at, 50, MB);
        assert!((slow / 1e6 - 100.0).abs() < 0.5, "sustained phase {slow}");
        assert_eq!(m.cache_used(), 100 * MB);
    }

    #[test]
    fn idle_time_flushes_the_cache_in_proportion() {
        let t0 = Instant::now();
        let mut m = PerfModel::new(small(), t0);
        let mut at = t0;
        write_bw(&mut m, &mut at, 120, MB);
        assert_eq!(m.cache_used(), 100 * MB);
        // A short gap (below flush_delay) flushes nothing.
        at += Duration::from_millis(40);
        m.command(at, PerfOp::Read(4096), TYPICAL);
        assert_eq!(m.cache_used(), 100 * MB);
        at = m.busy_until;
        // One second idle at 50 MB/s: 50 MB of room again, so 50 fast writes then slow ones.
        at += Duration::from_secs(1) + m.profile().flush_delay;
        m.command(at, PerfOp::Read(4096), TYPICAL);
        assert_eq!(m.cache_used(), 50 * MB);
        at = m.busy_until;
        let fast = write_bw(&mut m, &mut at, 50, MB);
        assert!(fast > 900e6, "{fast}");
        let slow = write_bw(&mut m, &mut at, 10, MB);
        assert!(slow < 110e6, "{slow}");
        // Longer than a full flush: the cache is empty, no further.
        at += Duration::from_secs(10);
        m.command(at, PerfOp::Read(4096), TYPICAL);
        assert_eq!(m.cache_used(), 0);
    }

    #[test]
    fn busy_time_does_not_flush() {
        let t0 = Instant::now();
        let mut m = PerfModel::new(small(), t0);
        let mut at = t0;
        write_bw(&mut m, &mut at, 100, MB);
        // A command arriving while the timeline is still busy finds no idle time.
        let d = m.command(t0, PerfOp::Read(4096), TYPICAL);
        assert_eq!(m.cache_used(), 100 * MB);
        assert!(d > Duration::from_millis(99), "{d:?}");
    }

    #[test]
    fn latency_grows_with_queue_depth_once_saturated() {
        let p = PerfProfile::for_capacity(8 << 30);
        // qd commands arrive together: the last waits behind qd - 1 service slots.
        let lat = |qd: u64| {
            let t0 = Instant::now();
            let mut m = PerfModel::new(p, t0);
            let mut last = Duration::ZERO;
            for _ in 0..qd {
                last = m.command(t0, PerfOp::Read(4096), TYPICAL);
            }
            last
        };
        let (l1, l64, l256) = (lat(1), lat(64), lat(256));
        assert!(l1 >= p.read_latency && l1 < p.read_latency * 2, "{l1:?}");
        assert!(l64 > l1 + Duration::from_micros(300), "{l1:?} {l64:?}");
        assert!(l256 > l64 * 3, "{l64:?} {l256:?}");
        // The IOPS limit: 256 reads take 256 slots of 5 µs.
        assert_eq!(l256 - p.read_latency, Duration::from_micros(5) * 256);
    }

    #[test]
    fn tail_spread() {
        let p = PerfProfile::for_capacity(1 << 30);
        let t0 = Instant::now();
        let mut m = PerfModel::new(p, t0);
        let base = span(1, p.read_iops) + p.read_latency;
        let mut at = t0;
        let mut one = |tail: u32| {
            at += Duration::from_secs(1);
            m.command(at, PerfOp::Read(4096), tail)
        };
        let typical = one(TYPICAL);
        assert!(typical > base.mul_f64(0.95) && typical < base.mul_f64(1.1));
        assert!(one(5_000) > p.read_latency * 2);
        assert!(one(50) > p.read_latency * 10);
    }

    #[test]
    fn trim_cost_grows_with_bytes() {
        let p = PerfProfile::for_capacity(8 << 30);
        let t0 = Instant::now();
        let mut m = PerfModel::new(p, t0);
        let small = m.command(t0, PerfOp::Trim(4096), TYPICAL);
        let later = t0 + Duration::from_secs(1);
        let whole = m.command(later, PerfOp::Trim(8 << 30), TYPICAL);
        assert!(small < Duration::from_micros(150), "{small:?}");
        assert!(whole > Duration::from_millis(80), "{whole:?}");
    }

    #[test]
    fn keys() {
        let mut p = PerfProfile::for_capacity(1 << 30);
        assert_eq!(p.cache_size, 128 << 20);
        assert!(p.set("cache", "64M").unwrap());
        assert!(p.set("cache_bw", "2G").unwrap());
        assert!(p.set("read_iops", "1000").unwrap());
        assert!(!p.set("colour", "red").unwrap());
        assert_eq!(
            (p.cache_size, p.cache_write_bw, p.read_iops),
            (64 << 20, 2 << 30, 1000)
        );
        assert!(p.set("flush_bw", "0").is_err());
        assert!(p.set("write_iops", "many").is_err());
    }
}
