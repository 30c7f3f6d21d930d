//! What the drive remembers besides its queues: features, asynchronous events, logs and SMART
//! counters, namespaces and their media, firmware slots, background operations.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nvme_spec::log::{DeviceSelfTestLog, ErrorInformationEntry, SanitizeStatusLog};
use nvme_spec::{Sqe, Status};

use crate::config::{LbaFormat, SimConfig};
use crate::media::Sparse;
use crate::SimError;

/// Asynchronous event type: error status.
pub const AE_ERROR: u8 = nvme_spec::log::aen::TYPE_ERROR;
/// Asynchronous event type: SMART / health status.
pub const AE_SMART: u8 = nvme_spec::log::aen::TYPE_SMART;
/// Asynchronous event type: notice.
pub const AE_NOTICE: u8 = nvme_spec::log::aen::TYPE_NOTICE;
/// Asynchronous event type: I/O command set specific status.
pub const AE_IO: u8 = nvme_spec::log::aen::TYPE_IO_COMMAND_SET;

/// Number of error log entries kept (ELPE + 1).
pub const ERROR_LOG_ENTRIES: usize = 64;
/// Number of firmware slots.
pub const FW_SLOTS: u8 = 3;
/// Over temperature threshold at power on, kelvin (also Identify WCTEMP).
pub const WCTEMP: u16 = 353;
/// Critical composite temperature threshold, kelvin.
pub const CCTEMP: u16 = 363;
/// Lowest thermal management temperature the host may set (HCTM), kelvin.
pub const MNTMT: u16 = 313;
/// Highest thermal management temperature the host may set (HCTM), kelvin.
pub const MXTMT: u16 = 358;

/// Current feature values.
#[derive(Clone)]
pub(crate) struct Features {
    pub arbitration: u32,
    pub power_mgmt: u32,
    pub temp_over: u16,
    pub temp_under: u16,
    pub error_recovery: u32,
    pub vwc: bool,
    /// Allocated queue counts, 0-based: completion (31:16), submission (15:0).
    pub nq: u32,
    /// Whether Set Features Number of Queues already allocated them since the last reset: the
    /// allocation does not change until the next reset.
    pub nq_allocated: bool,
    pub int_coalescing: u32,
    /// Per vector: coalescing disable.
    pub iv_cd: Vec<bool>,
    pub write_atomicity: u32,
    pub async_event: u32,
    pub apst_enabled: bool,
    pub apst: [u64; 32],
    /// Host memory buffer dwords 11..15 as set.
    pub hmb: [u32; 5],
    pub keep_alive: u32,
    /// Host Controlled Thermal Management: TMT1 (31:16) and TMT2 (15:0), kelvin; 0 disables.
    pub hctm: u32,
}

impl Features {
    pub fn defaults(c: &SimConfig) -> Features {
        let q = c.queues as u32 - 1;
        Features {
            arbitration: 6,
            power_mgmt: 0,
            temp_over: WCTEMP,
            temp_under: 0,
            error_recovery: 0,
            vwc: c.volatile_write_cache,
            nq: q << 16 | q,
            nq_allocated: false,
            int_coalescing: 0,
            iv_cd: vec![false; c.msix_vectors as usize],
            write_atomicity: 0,
            async_event: 0,
            apst_enabled: false,
            apst: [0; 32],
            hmb: [0; 5],
            keep_alive: 0,
            hctm: 0,
        }
    }
}

/// Outstanding asynchronous event requests and queued events.
#[derive(Default)]
pub(crate) struct Aer {
    pub outstanding: Vec<u16>,
    pub events: VecDeque<u32>,
    /// Event types (bit per type) masked until the host reads the associated log page.
    pub masked: u8,
}

/// One namespace: its format, media and per-LBA state.
pub(crate) struct Ns {
    pub nsze: u64,
    pub fmt: u8,
    pub lbaf: LbaFormat,
    pub data: Sparse,
    pub meta: Sparse,
    pub attached: bool,
    /// LBAs made unreadable by Write Uncorrectable.
    pub unc: BTreeSet<u64>,
    /// Previous contents of LBAs, kept while a stale-data fault covers them.
    pub history: HashMap<u64, Box<[u8]>>,
    /// Torn writes a power loss undoes: (byte offset, the bytes before the write).
    pub torn: Vec<(u64, Box<[u8]>)>,
}

impl Ns {
    pub fn bs(&self) -> u64 {
        self.lbaf.data_size as u64
    }
    pub fn ms(&self) -> u64 {
        self.lbaf.metadata_size as u64
    }
    pub fn bytes(&self) -> u64 {
        self.nsze * self.bs()
    }
    pub fn has_unc(&self, slba: u64, n: u64) -> bool {
        !self.unc.is_empty() && self.unc.range(slba..slba + n).next().is_some()
    }
    pub fn clear_unc(&mut self, slba: u64, n: u64) {
        if !self.unc.is_empty() {
            let gone: Vec<u64> = self.unc.range(slba..slba + n).copied().collect();
            for l in gone {
                self.unc.remove(&l);
            }
        }
    }
    pub fn erase(&mut self) {
        self.data.erase_all();
        self.meta.erase_all();
        self.unc.clear();
        self.history.clear();
        self.torn.clear();
    }
}

/// SMART / health counters.
pub(crate) struct Smart {
    pub read_512: u64,
    pub written_512: u64,
    pub host_reads: u64,
    pub host_writes: u64,
    pub busy: Duration,
    pub power_cycles: u64,
    pub unsafe_shutdowns: u64,
    pub media_errors: u64,
    pub err_entries: u64,
    pub powered_since: Instant,
    pub power_on_before: Duration,
    pub critical_warning: u8,
}

/// Firmware slots and the image being downloaded.
pub(crate) struct Fw {
    pub slots: [Option<[u8; 8]>; 7],
    pub active: u8,
    pub next: Option<u8>,
    pub image: Vec<u8>,
}

/// A background device self-test.
pub(crate) struct SelfTest {
    pub code: u8,
    pub nsid: u32,
    pub start: Instant,
    pub end: Instant,
}

/// A background sanitize operation.
pub(crate) struct Sanitizing {
    pub start: Instant,
    pub end: Instant,
    pub cdw10: u32,
}

pub(crate) struct DriveState {
    pub cfg: SimConfig,
    pub features: Features,
    pub aer: Aer,
    pub ns: Vec<Option<Ns>>,
    pub smart: Smart,
    pub fw: Fw,
    pub selftest: Option<SelfTest>,
    pub selftest_log: DeviceSelfTestLog,
    pub sanitizing: Option<Sanitizing>,
    pub sanitize_log: SanitizeStatusLog,
    pub errors: VecDeque<ErrorInformationEntry>,
    pub error_count: u64,
    pub changed_ns: Vec<u32>,
    pub clean_shutdown: bool,
    /// A namespace being formatted (nsid, 0xffffffff for all) until the given time.
    pub formatting: Option<(u32, Instant)>,
    pub timestamp: Option<(u64, Instant)>,
}

impl DriveState {
    pub fn new(c: &SimConfig) -> Result<DriveState, SimError> {
        let mut st = DriveState {
            features: Features::defaults(c),
            aer: Aer::default(),
            ns: (0..c.max_namespaces).map(|_| None).collect(),
            smart: Smart {
                read_512: 0,
                written_512: 0,
                host_reads: 0,
                host_writes: 0,
                busy: Duration::ZERO,
                power_cycles: 1,
                unsafe_shutdowns: 0,
                media_errors: 0,
                err_entries: 0,
                powered_since: Instant::now(),
                power_on_before: Duration::ZERO,
                critical_warning: 0,
            },
            fw: Fw {
                slots: [None; 7],
                active: 1,
                next: None,
                image: Vec::new(),
            },
            selftest: None,
            selftest_log: DeviceSelfTestLog::default(),
            sanitizing: None,
            sanitize_log: SanitizeStatusLog::default(),
            errors: VecDeque::with_capacity(ERROR_LOG_ENTRIES),
            error_count: 0,
            changed_ns: Vec::new(),
            clean_shutdown: false,
            formatting: None,
            timestamp: None,
            cfg: c.clone(),
        };
        let mut rev = [b' '; 8];
        rev[..c.firmware.len()].copy_from_slice(c.firmware.as_bytes());
        st.fw.slots[0] = Some(rev);
        if c.namespaces > 0 {
            let f = c.lba_formats[c.lba_format as usize];
            let nsze = c.capacity / c.namespaces as u64 / f.data_size as u64;
            for i in 0..c.namespaces {
                st.create_ns(i + 1, nsze, c.lba_format)?;
                st.ns[i as usize].as_mut().expect("created").attached = true;
            }
        }
        Ok(st)
    }

    fn backing_path(&self, nsid: u32) -> Option<PathBuf> {
        let b = self.cfg.backing.as_ref()?;
        Some(if nsid == 1 {
            b.clone()
        } else {
            let mut s = b.clone().into_os_string();
            s.push(format!(".ns{nsid}"));
            PathBuf::from(s)
        })
    }

    /// Creates namespace `nsid` (not attached).
    pub fn create_ns(&mut self, nsid: u32, nsze: u64, fmt: u8) -> Result<(), SimError> {
        let lbaf = self.cfg.lba_formats[fmt as usize];
        let data = match self.backing_path(nsid) {
            Some(p) => Sparse::file(&p, nsze * lbaf.data_size as u64)?,
            None => Sparse::memory(),
        };
        self.ns[nsid as usize - 1] = Some(Ns {
            nsze,
            fmt,
            lbaf,
            data,
            meta: Sparse::memory(),
            attached: false,
            unc: BTreeSet::new(),
            history: HashMap::new(),
            torn: Vec::new(),
        });
        Ok(())
    }

    /// Bytes of capacity allocated to namespaces.
    pub fn allocated(&self) -> u64 {
        self.ns.iter().flatten().map(|n| n.bytes()).sum()
    }

    /// The active (attached) namespace `nsid`, if any.
    #[inline]
    pub fn active_ns(&mut self, nsid: u32) -> Option<&mut Ns> {
        let n = self.ns.get_mut((nsid as usize).wrapping_sub(1))?.as_mut()?;
        if n.attached {
            Some(n)
        } else {
            None
        }
    }

    pub fn flush_all(&mut self) {
        for n in self.ns.iter_mut().flatten() {
            n.data.flush();
            n.meta.flush();
        }
    }

    pub fn on_enable(&mut self) {}

    pub fn on_controller_reset(&mut self) {
        self.features = Features::defaults(&self.cfg);
        self.aer = Aer::default();
        self.formatting = None;
        if let Some(next) = self.fw.next.take() {
            self.fw.active = next;
        }
        if let Some(t) = &self.selftest {
            if t.code == nvme_spec::log::self_test::SHORT {
                let code = t.code;
                let nsid = t.nsid;
                self.selftest = None;
                self.push_selftest(
                    code,
                    nvme_spec::log::self_test::RESULT_ABORTED_BY_RESET,
                    nsid,
                );
            }
        }
    }

    pub fn power_loss(&mut self) {
        if !self.clean_shutdown {
            self.smart.unsafe_shutdowns += 1;
        }
        for n in self.ns.iter_mut().flatten() {
            n.data.drop_cache();
            n.meta.drop_cache();
            for (pos, old) in std::mem::take(&mut n.torn) {
                n.data.write(pos, &old, true);
            }
        }
        self.smart.power_on_before += self.smart.powered_since.elapsed();
        self.selftest = None;
        if let Some(s) = self.sanitizing.take() {
            // Sanitize resumes after power loss in real drives; here it completes at power on.
            self.sanitizing = Some(s);
        }
        self.timestamp = None;
    }

    pub fn power_up(&mut self) {
        self.smart.power_cycles += 1;
        self.smart.powered_since = Instant::now();
        self.clean_shutdown = false;
    }

    pub fn power_on_hours(&self) -> u64 {
        (self.smart.power_on_before + self.smart.powered_since.elapsed()).as_secs() / 3600
    }

    /// Records a failed command in the error information log.
    pub fn log_error(&mut self, sqid: u16, cid: u16, status: Status, sqe: &Sqe) {
        self.error_count += 1;
        self.smart.err_entries += 1;
        let lba = if sqid != 0 && sqid != 0xffff {
            sqe.slba()
        } else {
            0
        };
        let e = ErrorInformationEntry {
            error_count: self.error_count,
            sqid,
            cid,
            status_field: status.field() << 1,
            parm_error_location: 0xffff,
            lba,
            nsid: sqe.nsid,
            vs: 0,
            trtype: 0,
            rsvd30: [0; 2],
            cs: 0,
            trtype_spec_info: 0,
            rsvd42: [0; 22],
        };
        if self.errors.len() == ERROR_LOG_ENTRIES {
            self.errors.pop_back();
        }
        self.errors.push_front(e);
    }

    pub fn push_selftest(&mut self, code: u8, result: u8, nsid: u32) {
        let mut r = nvme_spec::log::SelfTestResult::unused();
        r.status = code << 4 | result;
        r.valid = if nsid != 0 { 1 } else { 0 };
        r.nsid = nsid;
        r.poh = self.power_on_hours().into();
        self.selftest_log.push_result(r);
    }

    pub fn coalescing_disabled(&self, iv: u16) -> bool {
        self.features
            .iv_cd
            .get(iv as usize)
            .copied()
            .unwrap_or(false)
    }

    pub fn has_background(&self) -> bool {
        self.selftest.is_some() || self.sanitizing.is_some() || self.formatting.is_some()
    }

    pub fn next_background(&self) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut m = |t: Instant| d = Some(d.map_or(t, |x: Instant| x.min(t)));
        if let Some(t) = &self.selftest {
            m(t.end);
        }
        if let Some(s) = &self.sanitizing {
            m(s.end.min(Instant::now() + Duration::from_millis(10)));
        }
        if let Some((_, t)) = self.formatting {
            m(t);
        }
        d
    }

    /// The allocated queue counts, 1-based: (submission, completion).
    pub fn allocated_queues(&self) -> (u16, u16) {
        (
            (self.features.nq & 0xffff) as u16 + 1,
            (self.features.nq >> 16) as u16 + 1,
        )
    }
}
