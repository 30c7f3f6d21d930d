//! The uio backend: a function bound to `uio_pci_generic`, on a machine without an IOMMU (or
//! with it off).
//!
//! uio_pci_generic only keeps the kernel's nvme driver away and enables the function; everything
//! else is done through sysfs as root: BARs by `mmap` of `resourceN`, config space through the
//! `config` file. The device sees physical addresses, so DMA memory comes from hugepages
//! ([`crate::hugepage`], chosen by [`crate::domain`] once a uio device is opened). The MSI-X
//! table is an ordinary part of a BAR here, so interrupts use the software scheme
//! ([`crate::msix::SoftMsix`]): each vector writes a dword of host memory.

use crate::mmio::Mmio;
use crate::msix::SoftMsix;
use crate::sysfs::{ConfigFile, Sysfs};
use crate::{domain, Interrupts, PciError, PciFunction};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

/// A function bound to uio_pci_generic.
pub struct UioFunction {
    addr: String,
    sys: Sysfs,
    /// The `config` file. Its descriptor number never changes: a power cycle that lets the
    /// device go points it at /dev/null, then at the file of the function found again.
    config: ConfigFile,
    bars: [Option<Mmio>; 6],
    /// The power switch (and the header saved across it).
    power: crate::power::SwitchedPower,
}

impl UioFunction {
    /// Opens `bdf` (canonical form), which must be bound to uio_pci_generic.
    pub fn open(sys: &Sysfs, bdf: &str) -> Result<Arc<UioFunction>, PciError> {
        let config = sys.config(bdf)?;
        let resources = sys.resources(bdf)?;
        let mut bars: [Option<Mmio>; 6] = Default::default();
        for (i, r) in resources.iter().enumerate().take(6) {
            if r.size == 0 || !r.is_memory() {
                continue;
            }
            let path = sys.device_dir(bdf).join(format!("resource{i}"));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path);
            match file.and_then(|f| Mmio::map(f.as_fd(), r.size as usize, 0)) {
                Ok(m) => bars[i] = Some(m),
                Err(e) if i == 0 => {
                    return Err(PciError::Open {
                        addr: bdf.to_string(),
                        reason: format!("cannot map {}: {e} (as root?)", path.display()),
                    })
                }
                Err(_) => {}
            }
        }
        if bars[0].is_none() {
            return Err(PciError::Open {
                addr: bdf.to_string(),
                reason: "BAR0 is not a memory BAR".into(),
            });
        }
        domain::uio_opened();
        let f = UioFunction {
            addr: bdf.to_string(),
            sys: sys.clone(),
            config,
            bars,
            power: Default::default(),
        };
        let cmd = f.config_read16(0x04)?;
        // Memory space and bus master on, INTx off (interrupts are MSI-X only).
        f.config_write16(0x04, cmd | 0x6 | 1 << 10)?;
        Ok(Arc::new(f))
    }

    fn bar(&self, bar: u8) -> Option<&Mmio> {
        self.bars.get(bar as usize)?.as_ref()
    }

    /// Lets go of the function before its power is cut (the switch may remove it from the
    /// bus, which revokes its sysfs files): the BAR mappings become zeroed memory and the
    /// config descriptor points at /dev/null (reads give all ones).
    fn release(&self) -> Result<(), PciError> {
        let os = |op: &str| {
            let op = op.to_string();
            move |source| PciError::Os { op, source }
        };
        for m in self.bars.iter().flatten() {
            m.detach().map_err(os("unmap a BAR"))?;
        }
        let null = std::fs::File::open("/dev/null").map_err(os("/dev/null"))?;
        crate::ioctl::replace_fd(self.config.as_fd(), null.as_fd()).map_err(os("close config"))
    }

    /// Opens the function's files again after [`UioFunction::release`], its BARs mapped where
    /// they were.
    fn reacquire(&self) -> Result<(), PciError> {
        let os = |op: String| move |source| PciError::Os { op, source };
        let config = self.sys.config(&self.addr)?;
        crate::ioctl::replace_fd(self.config.as_fd(), config.as_fd())
            .map_err(os("replace config".into()))?;
        for (i, m) in self.bars.iter().enumerate() {
            let Some(m) = m else { continue };
            let path = self.sys.device_dir(&self.addr).join(format!("resource{i}"));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(os(format!("open {}", path.display())))?;
            m.reattach(file.as_fd(), 0)
                .map_err(os(format!("map {}", path.display())))?;
        }
        Ok(())
    }
}

impl PciFunction for UioFunction {
    fn address(&self) -> &str {
        &self.addr
    }

    fn backend(&self) -> &'static str {
        "uio"
    }

    fn config_read(&self, offset: u16, buf: &mut [u8]) -> Result<(), PciError> {
        self.config.read(offset, buf)
    }

    fn config_write(&self, offset: u16, data: &[u8]) -> Result<(), PciError> {
        self.config.write(offset, data)
    }

    fn bar_size(&self, bar: u8) -> u64 {
        self.bar(bar).map_or(0, |m| m.len() as u64)
    }

    fn bar_read32(&self, bar: u8, offset: u64) -> u32 {
        self.bar(bar).map_or(u32::MAX, |m| m.read32(offset))
    }

    fn bar_write32(&self, bar: u8, offset: u64, value: u32) {
        if let Some(m) = self.bar(bar) {
            m.write32(offset, value)
        }
    }

    fn bar_read64(&self, bar: u8, offset: u64) -> u64 {
        self.bar(bar).map_or(u64::MAX, |m| m.read64(offset))
    }

    fn bar_write64(&self, bar: u8, offset: u64, value: u64) {
        if let Some(m) = self.bar(bar) {
            m.write64(offset, value)
        }
    }

    fn msix_enable(self: Arc<Self>, nvec: u16) -> Result<Arc<dyn Interrupts>, PciError> {
        let dev: Arc<dyn PciFunction> = self;
        Ok(Arc::new(SoftMsix::enable(dev, nvec)?))
    }

    fn flr(&self) -> Result<(), PciError> {
        let cap = crate::msix::find_capability(self, nvme_spec::pci::cap_id::PCIE)?
            .ok_or(PciError::NoCapability("PCI Express"))?;
        if self.config_read32(cap + 4)? & (1 << 28) == 0 {
            return Err(PciError::NoCapability("function level reset"));
        }
        let saved = crate::sysfs::save_header(self)?;
        let devctl = self.config_read16(cap + 8)?;
        self.config_write16(cap + 8, devctl | (1 << 15))?;
        // A function has 100 ms to complete an FLR before it must answer config requests.
        std::thread::sleep(Duration::from_millis(100));
        crate::sysfs::restore_header(self, &saved)?;
        self.config_write16(cap + 8, devctl & !(1 << 15))
    }

    fn hot_reset(&self) -> Result<(), PciError> {
        crate::sysfs::secondary_bus_reset(&self.sys, &self.addr, self)
    }

    fn power_off(&self) -> Result<(), PciError> {
        self.power
            .off(self, &self.sys, &self.addr, || self.release())
    }

    fn power_on(&self) -> Result<(), PciError> {
        self.power
            .on(self, &self.sys, &self.addr, || self.reacquire())
    }
}
