//! The simulated SSD: a PCIe NVMe 2.0 function in software, the default device under test.
//!
//! A [`SimDevice`] is the device side of one PCIe function: 4 KiB of configuration space (PM,
//! MSI-X, PCI Express, AER and Device Serial Number capabilities), BAR0 with the NVMe controller
//! registers, doorbells, the MSI-X table and PBA, and optionally a controller memory buffer in
//! BAR2. The controller runs on its own thread: it fetches submission queue entries from host
//! memory by DMA, moves data through PRPs or SGLs, writes completion queue entries and MSI-X
//! messages into host memory. It never calls into the host driver; all host memory access goes
//! through [`HostMemory`], which the PCI layer implements over what the host mapped.
//!
//! The media is sparse in memory (or in a backing file) behind a volatile write cache that a
//! power loss empties. [`Faults`] makes the device misbehave on purpose.
//!
//! # BAR0 layout
//!
//! | offset | contents |
//! | --- | --- |
//! | `0x0000` | controller registers (CAP, VS, INTMS, INTMC, CC, CSTS, NSSR, AQA, ASQ, ACQ, CMBLOC, CMBSZ, CMBMSC) |
//! | `0x1000` | doorbells, `4 << CAP.DSTRD` bytes apart, for the admin queue and `queues` I/O queue pairs |
//! | [`Bar0Layout::msix_table`] | MSI-X table (first 4 KiB boundary after the doorbells), 16 bytes per vector |
//! | [`Bar0Layout::msix_pba`] | MSI-X pending bit array (next 4 KiB boundary) |
//!
//! BAR0's size is a power of two, at least 16 KiB. With the default configuration (64 I/O queue
//! pairs, 65 vectors, DSTRD 0) the table is at 0x2000, the PBA at 0x3000, and BAR0 is 16 KiB.
#![forbid(unsafe_code)]

mod admin;
pub mod config;
mod ctrl;
mod dma;
pub mod faults;
mod io;
mod media;
pub mod pcicfg;
pub mod perf;
mod shared;
mod state;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use nvme_spec::regs;
use parking_lot::Mutex;

pub use config::{Latency, LatencySpec, LbaFormat, SimConfig};
pub use faults::{FaultAction, FaultId, FaultMatch, FaultRule, Faults};
pub use pcicfg::{Bar0Layout, DEVICE_ID, VENDOR_ID};
pub use perf::{PerfModel, PerfOp, PerfProfile};

use ctrl::Controller;
use pcicfg::ConfigSpace;
use shared::{Bus, Shared, EV_BAD_DB, EV_CC, EV_MSIX, EV_NSSR};

/// A device access to host memory that the host did not make available (no DMA mapping there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("DMA fault: {len} bytes at bus address {addr:#x} are not mapped for the device")]
pub struct DmaFault {
    /// Bus address of the access.
    pub addr: u64,
    /// Length of the access in bytes.
    pub len: usize,
}

/// Host memory as the device sees it over the bus: byte-addressed by bus address (IOVA).
///
/// The simulator moves every byte through this trait, as a device moves them by DMA; the PCI layer
/// implements it over the memory the host mapped for the device, and refuses anything else.
pub trait HostMemory: Send + Sync {
    /// Reads `buf.len()` bytes at bus address `addr`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaFault>;
    /// Writes `data` at bus address `addr`.
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), DmaFault>;
    /// Writes one dword with release ordering: every earlier write of this device is visible to a
    /// host that sees this one. Used for the CQE dword that holds the phase tag, and MSI-X messages.
    fn write_dword_release(&self, addr: u64, value: u32) -> Result<(), DmaFault>;
}

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A configuration value is not acceptable.
    #[error("sim config: {key}={value:?}: {reason}")]
    Config {
        /// The setting.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `sim://` URI names a key that does not exist.
    #[error("sim URI: unknown key {key:?}; the keys are: {allowed}")]
    UnknownKey {
        /// The unknown key.
        key: String,
        /// The keys that exist.
        allowed: &'static str,
    },
    /// A URI that is not a `sim://` URI.
    #[error("sim URI {uri:?}: {reason}")]
    Uri {
        /// The URI given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The backing file cannot be used.
    #[error("backing file {path}: {source}")]
    Backing {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The device thread could not be started.
    #[error("cannot start the device thread: {source}")]
    Thread {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A running simulated SSD. Dropping it stops its thread.
pub struct SimDevice {
    config: SimConfig,
    sh: Arc<Shared>,
    ctrl: Arc<Mutex<Controller>>,
    faults: Arc<Faults>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDevice")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

const ALL_ONES: u32 = 0xffff_ffff;

impl SimDevice {
    /// Powers on a simulated SSD that reaches host memory through `host`.
    pub fn new(config: SimConfig, host: Arc<dyn HostMemory>) -> Result<SimDevice, SimError> {
        config.validate()?;
        let layout = Bar0Layout::new(&config);
        let cfgspace = ConfigSpace::new(&config, &layout);
        let ndb = 2 * (config.queues as usize + 1);
        let nv = config.msix_vectors as usize;
        let cap = regs::Cap::build(
            config.mqes,
            true,
            1,
            20,
            config.dstrd,
            true,
            1,
            0,
            4,
            config.cmb_size != 0,
        );
        let sh = Arc::new(Shared {
            layout,
            cap: cap.0,
            cc: AtomicU32::new(0),
            csts: AtomicU32::new(0),
            aqa: AtomicU32::new(0),
            asq: AtomicU64::new(0),
            acq: AtomicU64::new(0),
            intms: AtomicU32::new(0),
            cmbmsc: AtomicU64::new(0),
            doorbells: (0..ndb).map(|_| AtomicU32::new(0)).collect(),
            db_valid: (0..ndb).map(|_| AtomicBool::new(false)).collect(),
            msix_table: (0..nv * 4)
                .map(|i| AtomicU32::new(if i % 4 == 3 { 1 } else { 0 }))
                .collect(),
            msix_pba: (0..nv.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            msix_enabled: AtomicBool::new(false),
            msix_fmask: AtomicBool::new(false),
            mse: AtomicBool::new(false),
            bme: AtomicBool::new(false),
            d3hot: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            powered: AtomicBool::new(true),
            events: AtomicU32::new(0),
            bad_db: AtomicU32::new(0),
            sleeping: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            panics: std::sync::atomic::AtomicU64::new(0),
            thread: OnceLock::new(),
            bar2: AtomicU64::new(0),
            cmb: (config.cmb_size != 0)
                .then(|| Mutex::new(vec![0u8; config.cmb_size as usize].into_boxed_slice())),
            cmb_size: config.cmb_size,
            pcicfg: Mutex::new(cfgspace),
        });
        let faults = Arc::new(Faults::new(sh.clone()));
        let bus = Bus {
            host,
            sh: sh.clone(),
        };
        let ctrl = Arc::new(Mutex::new(Controller::new(
            sh.clone(),
            bus,
            config.clone(),
            faults.clone(),
        )?));
        let (s2, c2) = (sh.clone(), ctrl.clone());
        let thread = std::thread::Builder::new()
            .name("nvme-sim".into())
            .spawn(move || ctrl::run(s2, c2))
            .map_err(|source| SimError::Thread { source })?;
        let _ = sh.thread.set(thread.thread().clone());
        Ok(SimDevice {
            config,
            sh,
            ctrl,
            faults,
            thread: Some(thread),
        })
    }

    /// The configuration the device was built from.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Where the registers, doorbells and MSI-X structures are in BAR0.
    pub fn bar0_layout(&self) -> Bar0Layout {
        self.sh.layout
    }

    /// Whether the device has power ([`SimDevice::power_off`] / [`SimDevice::power_on`]).
    pub fn powered(&self) -> bool {
        self.sh.powered.load(SeqCst)
    }

    fn present(&self) -> bool {
        self.sh.powered.load(Relaxed) && !self.sh.removed.load(Relaxed)
    }

    /// Reads PCI configuration space (4096 bytes); all ones when the device is not present.
    pub fn config_read(&self, offset: u16, buf: &mut [u8]) {
        if !self.present() {
            buf.fill(0xff);
            return;
        }
        self.sh.pcicfg.lock().read(offset, buf);
    }

    /// Writes PCI configuration space; writes to read-only bits are ignored as hardware does.
    pub fn config_write(&self, offset: u16, data: &[u8]) {
        if !self.present() {
            return;
        }
        let fx = {
            let mut c = self.sh.pcicfg.lock();
            let fx = c.write(offset, data);
            self.sh.sync_from_config(&c);
            fx
        };
        if let Some(ps) = fx.power_state {
            self.sh.d3hot.store(ps == 3, SeqCst);
        }
        if fx.flr {
            self.reset_function();
        }
    }

    fn reset_function(&self) {
        let mut c = self.ctrl.lock();
        {
            let mut p = self.sh.pcicfg.lock();
            p.reset();
            self.sh.sync_from_config(&p);
        }
        self.sh.d3hot.store(false, SeqCst);
        c.function_reset();
    }

    /// Size of a BAR in bytes; 0 if the BAR is not implemented.
    pub fn bar_size(&self, bar: u8) -> u64 {
        match bar {
            0 => self.sh.layout.size,
            2 => self.config.cmb_size,
            _ => 0,
        }
    }

    fn mmio_ok(&self) -> bool {
        self.present() && self.sh.mse.load(Relaxed) && !self.sh.d3hot.load(Relaxed)
    }

    /// Reads a 32-bit value from a BAR; all ones when memory space is off, in D3hot, removed.
    pub fn bar_read32(&self, bar: u8, offset: u64) -> u32 {
        if !self.mmio_ok() || offset & 3 != 0 {
            return ALL_ONES;
        }
        match bar {
            0 => self.reg_read(offset),
            2 => self.cmb_read(offset),
            _ => ALL_ONES,
        }
    }

    /// Writes a 32-bit value to a BAR; dropped when memory space is off, in D3hot, removed.
    pub fn bar_write32(&self, bar: u8, offset: u64, value: u32) {
        if !self.mmio_ok() || offset & 3 != 0 {
            return;
        }
        match bar {
            0 => self.reg_write(offset, value),
            2 => self.cmb_write(offset, value),
            _ => {}
        }
    }

    /// Reads a 64-bit value from a BAR (CAP, ASQ, ACQ, CMBMSC, or two dwords).
    pub fn bar_read64(&self, bar: u8, offset: u64) -> u64 {
        if !self.mmio_ok() || offset & 7 != 0 {
            return u64::MAX;
        }
        if bar == 0 {
            match offset as u32 {
                regs::CAP => return self.sh.cap,
                regs::ASQ => return self.sh.asq.load(SeqCst),
                regs::ACQ => return self.sh.acq.load(SeqCst),
                regs::CMBMSC => return self.sh.cmbmsc.load(SeqCst),
                _ => {}
            }
        }
        self.bar_read32(bar, offset) as u64 | (self.bar_read32(bar, offset + 4) as u64) << 32
    }

    /// Writes a 64-bit value to a BAR.
    pub fn bar_write64(&self, bar: u8, offset: u64, value: u64) {
        if !self.mmio_ok() || offset & 7 != 0 {
            return;
        }
        if bar == 0 {
            match offset as u32 {
                regs::ASQ => return self.sh.asq.store(value & !0xfff, SeqCst),
                regs::ACQ => return self.sh.acq.store(value & !0xfff, SeqCst),
                regs::CMBMSC => return self.sh.cmbmsc.store(value & !0xffc, SeqCst),
                _ => {}
            }
        }
        self.bar_write32(bar, offset, value as u32);
        self.bar_write32(bar, offset + 4, (value >> 32) as u32);
    }

    fn cmb_visible(&self) -> bool {
        self.config.cmb_size != 0 && self.sh.cmbmsc.load(Relaxed) & 1 != 0
    }

    fn cmbsz(&self) -> u32 {
        let size = self.config.cmb_size;
        let (szu, unit) = if size / 4096 < (1 << 20) {
            (0u32, 4096u64)
        } else {
            (2, 1 << 20)
        };
        ((size / unit) as u32) << 12 | szu << 8 | 0x1f
    }

    fn reg_read(&self, off: u64) -> u32 {
        let sh = &self.sh;
        let l = &sh.layout;
        if off >= 0x1000 && off < l.doorbell_end {
            return 0;
        }
        if off >= l.msix_table && off < l.msix_table + 16 * l.vectors as u64 {
            return sh.msix_table[((off - l.msix_table) / 4) as usize].load(SeqCst);
        }
        if off >= l.msix_pba && off < l.msix_pba + 8 * sh.msix_pba.len() as u64 {
            let w = sh.msix_pba[((off - l.msix_pba) / 8) as usize].load(SeqCst);
            return if (off - l.msix_pba).is_multiple_of(8) {
                w as u32
            } else {
                (w >> 32) as u32
            };
        }
        match off as u32 {
            regs::CAP => sh.cap as u32,
            0x04 => (sh.cap >> 32) as u32,
            regs::VS => regs::version(2, 0, 0),
            regs::INTMS | regs::INTMC => sh.intms.load(SeqCst),
            regs::CC => sh.cc.load(SeqCst),
            regs::CSTS => sh.csts.load(SeqCst),
            regs::AQA => sh.aqa.load(SeqCst),
            regs::ASQ => sh.asq.load(SeqCst) as u32,
            0x2c => (sh.asq.load(SeqCst) >> 32) as u32,
            regs::ACQ => sh.acq.load(SeqCst) as u32,
            0x34 => (sh.acq.load(SeqCst) >> 32) as u32,
            regs::CMBLOC if self.cmb_visible() => 2,
            regs::CMBSZ if self.cmb_visible() => self.cmbsz(),
            regs::CMBMSC => sh.cmbmsc.load(SeqCst) as u32,
            0x54 => (sh.cmbmsc.load(SeqCst) >> 32) as u32,
            _ => 0,
        }
    }

    fn reg_write(&self, off: u64, v: u32) {
        let sh = &self.sh;
        let l = &sh.layout;
        if off >= 0x1000 && off < l.doorbell_end {
            let stride = 4u64 << self.config.dstrd;
            if !(off - 0x1000).is_multiple_of(stride) {
                return;
            }
            let idx = ((off - 0x1000) / stride) as usize;
            if sh.db_valid[idx].load(Relaxed) {
                sh.doorbells[idx].store(v, SeqCst);
                sh.kick();
            } else {
                sh.bad_db.fetch_add(1, SeqCst);
                sh.post_event(EV_BAD_DB);
            }
            return;
        }
        if off >= l.msix_table && off < l.msix_table + 16 * l.vectors as u64 {
            let i = ((off - l.msix_table) / 4) as usize;
            let old = sh.msix_table[i].swap(v, SeqCst);
            if i % 4 == 3 && old & 1 != 0 && v & 1 == 0 {
                sh.post_event(EV_MSIX);
            }
            return;
        }
        match off as u32 {
            regs::INTMS => {
                sh.intms.fetch_or(v, SeqCst);
            }
            regs::INTMC => {
                sh.intms.fetch_and(!v, SeqCst);
            }
            regs::CC => {
                sh.cc.store(v, SeqCst);
                sh.post_event(EV_CC);
            }
            regs::CSTS if v & regs::csts::NSSRO != 0 => {
                sh.csts.fetch_and(!regs::csts::NSSRO, SeqCst);
            }
            regs::NSSR if v == regs::NSSR_MAGIC => sh.post_event(EV_NSSR),
            regs::AQA => sh.aqa.store(v & 0x0fff_0fff, SeqCst),
            regs::ASQ => set_lo(&sh.asq, v & !0xfff),
            0x2c => set_hi(&sh.asq, v),
            regs::ACQ => set_lo(&sh.acq, v & !0xfff),
            0x34 => set_hi(&sh.acq, v),
            regs::CMBMSC => set_lo(&sh.cmbmsc, v & !0xffc),
            0x54 => set_hi(&sh.cmbmsc, v),
            _ => {}
        }
    }

    fn cmb_read(&self, off: u64) -> u32 {
        match &self.sh.cmb {
            Some(m) if off + 4 <= self.config.cmb_size => {
                let m = m.lock();
                let o = off as usize;
                u32::from_le_bytes([m[o], m[o + 1], m[o + 2], m[o + 3]])
            }
            _ => ALL_ONES,
        }
    }

    fn cmb_write(&self, off: u64, v: u32) {
        if let Some(m) = &self.sh.cmb {
            if off + 4 <= self.config.cmb_size {
                let o = off as usize;
                m.lock()[o..o + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
    }

    /// Conventional reset from the link (secondary bus reset, PERST#): config space, registers
    /// and controller back to power-on state; media and write cache kept.
    pub fn hot_reset(&self) {
        if self.sh.removed.load(SeqCst) {
            return;
        }
        self.reset_function();
    }

    /// Power removed: a volatile write cache not flushed is lost; an unsafe shutdown is counted
    /// unless a shutdown notification (CC.SHN) completed.
    pub fn power_off(&self) {
        let mut c = self.ctrl.lock();
        if !self.sh.powered.load(SeqCst) {
            return;
        }
        c.power_loss();
        self.sh.powered.store(false, SeqCst);
        let mut p = self.sh.pcicfg.lock();
        p.reset();
        self.sh.sync_from_config(&p);
        self.sh.d3hot.store(false, SeqCst);
    }

    /// Power applied: the device comes up as from a cold boot (power cycles counted).
    pub fn power_on(&self) {
        let mut c = self.ctrl.lock();
        if self.sh.powered.load(SeqCst) {
            return;
        }
        self.sh.powered.store(true, SeqCst);
        {
            let mut p = self.sh.pcicfg.lock();
            p.reset();
            self.sh.sync_from_config(&p);
        }
        c.power_up();
        self.sh.post_event(0);
    }

    /// The fault injection handle.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// How many times the device's own code failed (a panic of the device thread, each reported
    /// to the host as Controller Fatal Status). Outside [`Faults::firmware_crash`] this is a
    /// defect of the simulator: tests assert it stays 0.
    pub fn crash_count(&self) -> u64 {
        self.sh.panics.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn set_lo(a: &AtomicU64, v: u32) {
    let _ = a.fetch_update(SeqCst, SeqCst, |o| Some((o & !0xffff_ffff) | v as u64));
}

fn set_hi(a: &AtomicU64, v: u32) {
    let _ = a.fetch_update(SeqCst, SeqCst, |o| {
        Some((o & 0xffff_ffff) | (v as u64) << 32)
    });
}

impl Drop for SimDevice {
    fn drop(&mut self) {
        self.sh.stop.store(true, SeqCst);
        self.sh.post_event(0);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<SimDevice>();
}

// Events that only the MMIO side raises are referenced here so the constants stay in one place.
const _: u32 = EV_CC | EV_NSSR | EV_MSIX | EV_BAD_DB;
