//! State shared by the MMIO side (the host's threads) and the device thread: registers as atomics,
//! the doorbell array, the MSI-X table, and the bus through which every DMA goes.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;

use parking_lot::Mutex;

use crate::pcicfg::{Bar0Layout, ConfigSpace};
use crate::{DmaFault, HostMemory};

/// CC was written.
pub const EV_CC: u32 = 1;
/// NSSR was written with the magic value.
pub const EV_NSSR: u32 = 2;
/// An MSI-X vector or the function was unmasked: deliver pending messages.
pub const EV_MSIX: u32 = 4;
/// A doorbell of a queue that does not exist was written.
pub const EV_BAD_DB: u32 = 8;
/// A fault that acts on the controller as a whole was requested.
pub const EV_FAULT: u32 = 16;

pub(crate) struct Shared {
    pub layout: Bar0Layout,
    pub cap: u64,
    pub cc: AtomicU32,
    pub csts: AtomicU32,
    pub aqa: AtomicU32,
    pub asq: AtomicU64,
    pub acq: AtomicU64,
    pub intms: AtomicU32,
    pub cmbmsc: AtomicU64,
    /// Index `2 * qid` is the SQ tail doorbell, `2 * qid + 1` the CQ head doorbell.
    pub doorbells: Box<[AtomicU32]>,
    /// Whether the queue behind each doorbell exists (same indexing).
    pub db_valid: Box<[AtomicBool]>,
    /// Four dwords per vector: address low, address high, data, vector control.
    pub msix_table: Box<[AtomicU32]>,
    pub msix_pba: Box<[AtomicU64]>,
    pub msix_enabled: AtomicBool,
    pub msix_fmask: AtomicBool,
    pub mse: AtomicBool,
    pub bme: AtomicBool,
    pub d3hot: AtomicBool,
    pub removed: AtomicBool,
    pub powered: AtomicBool,
    pub events: AtomicU32,
    /// Writes to doorbells of queues that do not exist, not yet reported.
    pub bad_db: AtomicU32,
    pub sleeping: AtomicBool,
    pub stop: AtomicBool,
    /// Panics of the device thread caught so far (each became Controller Fatal Status).
    pub panics: std::sync::atomic::AtomicU64,
    pub thread: OnceLock<Thread>,
    /// Bus address of BAR2 (the CMB), 0 when it is not programmed.
    pub bar2: AtomicU64,
    pub cmb: Option<Mutex<Box<[u8]>>>,
    pub cmb_size: u64,
    pub pcicfg: Mutex<ConfigSpace>,
}

impl Shared {
    /// Wakes the device thread if it is parked; free when it is busy.
    #[inline]
    pub fn kick(&self) {
        if self.sleeping.load(SeqCst) && self.sleeping.swap(false, SeqCst) {
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
        }
    }

    /// Hands the device thread an event and wakes it whether or not it was parked.
    pub fn post_event(&self, ev: u32) {
        self.events.fetch_or(ev, SeqCst);
        self.sleeping.store(false, SeqCst);
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }

    /// Whether the function can act as a bus master now.
    #[inline]
    pub fn dma_allowed(&self) -> bool {
        self.bme.load(Relaxed) && !self.removed.load(Relaxed) && self.powered.load(Relaxed)
    }

    /// Syncs the atomics mirrored from config space.
    pub fn sync_from_config(&self, cfg: &ConfigSpace) {
        let cmd = cfg.command();
        self.mse.store(cmd & 2 != 0, SeqCst);
        self.bme.store(cmd & 4 != 0, SeqCst);
        let mc = cfg.msix_control();
        let was_masked = self.msix_fmask.load(SeqCst) || !self.msix_enabled.load(SeqCst);
        self.msix_enabled.store(mc & 0x8000 != 0, SeqCst);
        self.msix_fmask.store(mc & 0x4000 != 0, SeqCst);
        let now_masked = mc & 0x4000 != 0 || mc & 0x8000 == 0;
        self.bar2.store(
            if self.cmb.is_some() {
                cfg.bar2_address()
            } else {
                0
            },
            SeqCst,
        );
        if was_masked && !now_masked {
            self.post_event(EV_MSIX);
        }
    }
}

/// The device's view of the bus: DMA to host memory, or to its own CMB when the address falls in
/// BAR2. Nothing moves without bus master enable, after surprise removal, or without power.
#[derive(Clone)]
pub(crate) struct Bus {
    pub host: Arc<dyn HostMemory>,
    pub sh: Arc<Shared>,
}

impl Bus {
    #[inline]
    fn cmb_range(&self, addr: u64, len: usize) -> Option<usize> {
        self.sh.cmb.as_ref()?;
        let base = self.sh.bar2.load(Relaxed);
        if base == 0 {
            return None;
        }
        let end = addr.checked_add(len as u64)?;
        if addr >= base && end <= base + self.sh.cmb_size {
            Some((addr - base) as usize)
        } else {
            None
        }
    }

    #[inline]
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        if !self.sh.dma_allowed() {
            return Err(DmaFault {
                addr,
                len: buf.len(),
            });
        }
        if let Some(off) = self.cmb_range(addr, buf.len()) {
            let m = self.sh.cmb.as_ref().expect("cmb checked").lock();
            buf.copy_from_slice(&m[off..off + buf.len()]);
            return Ok(());
        }
        self.host.read(addr, buf)
    }

    #[inline]
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<(), DmaFault> {
        if !self.sh.dma_allowed() {
            return Err(DmaFault {
                addr,
                len: data.len(),
            });
        }
        if let Some(off) = self.cmb_range(addr, data.len()) {
            let mut m = self.sh.cmb.as_ref().expect("cmb checked").lock();
            m[off..off + data.len()].copy_from_slice(data);
            return Ok(());
        }
        self.host.write(addr, data)
    }

    #[inline]
    pub fn write_dword_release(&self, addr: u64, value: u32) -> Result<(), DmaFault> {
        if !self.sh.dma_allowed() {
            return Err(DmaFault { addr, len: 4 });
        }
        if let Some(off) = self.cmb_range(addr, 4) {
            let mut m = self.sh.cmb.as_ref().expect("cmb checked").lock();
            m[off..off + 4].copy_from_slice(&value.to_le_bytes());
            return Ok(());
        }
        self.host.write_dword_release(addr, value)
    }
}
