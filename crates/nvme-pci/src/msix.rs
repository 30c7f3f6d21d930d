//! MSI-X as the host sees it, and pynvme's software interrupt controller.
//!
//! [`SoftMsix`] programs every vector of the device's MSI-X table with a message address that
//! points at its own dword in a page of host DMA memory and message data 1. A device that raises
//! vector `v` writes 1 there; the host checks (`is_set`), clears, masks and unmasks vectors without
//! any operating-system interrupt, so a script can test interrupt behaviour while the driver polls.

use crate::{DmaMemory, PciError, PciFunction};
use std::sync::Arc;

/// The host's view of a function's MSI-X vectors.
pub trait Interrupts: Send + Sync {
    /// Number of vectors enabled.
    fn count(&self) -> u16;
    /// Whether vector `v` fired since it was last cleared.
    fn is_set(&self, v: u16) -> bool;
    /// Forgets that vector `v` fired.
    fn clear(&self, v: u16);
    /// Masks vector `v` in the MSI-X table: the device holds its messages as pending.
    fn mask(&self, v: u16);
    /// Unmasks vector `v`: a pending message is delivered.
    fn unmask(&self, v: u16);
}

/// Walks the function's legacy capability list for `id` (robust to a broken list).
pub(crate) fn find_capability(dev: &dyn PciFunction, id: u8) -> Result<Option<u16>, PciError> {
    let mut head = [0u8; 256];
    dev.config_read(0, &mut head)?;
    Ok(nvme_spec::pci::find_capability(&head, id))
}

/// Software MSI-X: message addresses point into host memory (sim and uio backends).
pub struct SoftMsix {
    dev: Arc<dyn PciFunction>,
    page: DmaMemory,
    nvec: u16,
    table_bar: u8,
    table_offset: u64,
}

impl SoftMsix {
    /// Programs the MSI-X table of `dev` for `min(nvec, table size)` vectors and enables MSI-X.
    pub fn enable(dev: Arc<dyn PciFunction>, nvec: u16) -> Result<SoftMsix, PciError> {
        let cap = find_capability(dev.as_ref(), nvme_spec::pci::cap_id::MSIX)?
            .ok_or(PciError::NoCapability("MSI-X"))?;
        let control = dev.config_read16(cap + 2)?;
        let table = dev.config_read32(cap + 4)?;
        let table_size = (control & 0x7ff) + 1;
        let nvec = nvec.clamp(1, table_size);
        let table_bar = (table & 7) as u8;
        let table_offset = (table & !7) as u64;
        let page = dev.dma_alloc(table_size as usize * 4)?;
        // Function mask while the table is written, then enable with the mask cleared.
        dev.config_write16(cap + 2, control | (1 << 14))?;
        for v in 0..table_size {
            let entry = table_offset + v as u64 * 16;
            let addr = page.iova() + v as u64 * 4;
            dev.bar_write32(table_bar, entry, addr as u32);
            dev.bar_write32(table_bar, entry + 4, (addr >> 32) as u32);
            dev.bar_write32(table_bar, entry + 8, 1);
            dev.bar_write32(table_bar, entry + 12, u32::from(v >= nvec));
        }
        dev.config_write16(cap + 2, (control | (1 << 15)) & !(1 << 14))?;
        Ok(SoftMsix {
            dev,
            page,
            nvec,
            table_bar,
            table_offset,
        })
    }

    fn vector_control(&self, v: u16) -> u64 {
        self.table_offset + v as u64 * 16 + 12
    }
}

impl Interrupts for SoftMsix {
    fn count(&self) -> u16 {
        self.nvec
    }

    fn is_set(&self, v: u16) -> bool {
        v < self.nvec && self.page.load_u32(v as usize * 4) != 0
    }

    fn clear(&self, v: u16) {
        if v < self.nvec {
            self.page.store_u32(v as usize * 4, 0);
        }
    }

    fn mask(&self, v: u16) {
        if v < self.nvec {
            let off = self.vector_control(v);
            let c = self.dev.bar_read32(self.table_bar, off);
            self.dev.bar_write32(self.table_bar, off, c | 1);
        }
    }

    fn unmask(&self, v: u16) {
        if v < self.nvec {
            let off = self.vector_control(v);
            let c = self.dev.bar_read32(self.table_bar, off);
            self.dev.bar_write32(self.table_bar, off, c & !1);
        }
    }
}
