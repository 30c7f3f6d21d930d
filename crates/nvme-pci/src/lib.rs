//! One PCIe function as a host driver sees it: config space, BAR MMIO, DMA memory and MSI-X.
//!
//! The host driver talks to a device only through [`PciFunction`], so it never knows which backend
//! it runs on:
//!
//! | backend | device | how |
//! | --- | --- | --- |
//! | [`sim::SimFunction`] | the simulated SSD (`nvme-sim`) in this process | BAR access is a method call, DMA goes through an IOMMU-like table of mapped regions |
//! | [`vfio::VfioFunction`] | a real or QEMU-emulated function bound to `vfio-pci` | container/group/device fds, BARs mmapped, DMA memory mapped in the IOMMU, MSI-X as eventfds |
//! | [`uio::UioFunction`] | a function bound to `uio_pci_generic`, no IOMMU | sysfs `resourceN` mmap and `config`, hugepage memory at its physical address, software MSI-X |
//!
//! [`open`] picks the backend from the address: empty or `sim:` opens the simulator, a PCI
//! address the backend of the driver it is bound to (`pynvme setup` binds it). DMA memory comes
//! from one process-wide domain that every backend can reach ([`domain`]).
//!
//! All `unsafe` code of the project lives in this crate; every block carries a `SAFETY:` note.
//!
//! Interrupts follow pynvme's software interrupt controller where the backend allows it: every
//! MSI-X vector's message address points at a dword in host DMA memory, so the host polls
//! interrupts like it polls completions ([`msix::SoftMsix`]).

pub mod dma;
pub mod domain;
pub mod hugepage;
mod ioctl;
mod mmio;
pub mod msix;
pub mod power;
pub mod sim;
pub mod sysfs;
pub mod uio;
pub mod vfio;

use std::sync::Arc;

pub use dma::DmaMemory;
pub use msix::Interrupts;

/// Errors of the PCI layer.
#[derive(Debug, thiserror::Error)]
pub enum PciError {
    /// The address names no device this backend can open.
    #[error("cannot open PCI function {addr}: {reason}")]
    Open {
        /// The address as given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// DMA memory could not be allocated or mapped.
    #[error("cannot allocate {len} bytes of DMA memory: {reason}")]
    DmaAlloc {
        /// Requested length.
        len: usize,
        /// Why.
        reason: String,
    },
    /// A config space access outside the 4 KiB config space.
    #[error(
        "config space access of {len} bytes at {offset:#x} is outside the 4096-byte config space"
    )]
    ConfigRange {
        /// Offset of the access.
        offset: usize,
        /// Its length.
        len: usize,
    },
    /// The function has no usable capability for the request.
    #[error("the function has no {0} capability")]
    NoCapability(&'static str),
    /// The backend cannot do this.
    #[error("{op} is not supported by the {backend} backend")]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// The backend name.
        backend: &'static str,
    },
    /// An operating-system call failed.
    #[error("{op} failed: {source}")]
    Os {
        /// What was attempted.
        op: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The simulator refused its configuration.
    #[error(transparent)]
    Sim(#[from] nvme_sim::SimError),
}

/// One PCIe function: what a host driver may do with a device.
///
/// BAR accesses cannot fail from the host's view: a device that is gone reads all ones, as on a
/// real bus. Implementations are shared between threads (`Arc<dyn PciFunction>`).
pub trait PciFunction: Send + Sync {
    /// The function's address: a BDF like `0000:01:00.0`, or the simulator URI.
    fn address(&self) -> &str;

    /// The backend's name: "sim", "vfio" or "uio".
    fn backend(&self) -> &'static str;

    /// Reads config space bytes at `offset`.
    fn config_read(&self, offset: u16, buf: &mut [u8]) -> Result<(), PciError>;

    /// Writes config space bytes at `offset`.
    fn config_write(&self, offset: u16, data: &[u8]) -> Result<(), PciError>;

    /// Size of BAR `bar` in bytes, 0 if not implemented.
    fn bar_size(&self, bar: u8) -> u64;

    /// 32-bit read from BAR `bar`.
    fn bar_read32(&self, bar: u8, offset: u64) -> u32;

    /// 32-bit write to BAR `bar`.
    fn bar_write32(&self, bar: u8, offset: u64, value: u32);

    /// 64-bit read from BAR `bar`.
    fn bar_read64(&self, bar: u8, offset: u64) -> u64;

    /// 64-bit write to BAR `bar`.
    fn bar_write64(&self, bar: u8, offset: u64, value: u64);

    /// Zeroed DMA memory of at least `len` bytes, contiguous in bus address space, page aligned,
    /// that this function can reach (by default from the process's DMA domain, [`dma_alloc`]).
    fn dma_alloc(&self, len: usize) -> Result<DmaMemory, PciError> {
        dma_alloc(len)
    }

    /// Enables MSI-X with up to `nvec` vectors and returns the host's view of them.
    fn msix_enable(self: Arc<Self>, nvec: u16) -> Result<Arc<dyn Interrupts>, PciError>;

    /// Function level reset (PCIe device control "initiate FLR"), waiting as the spec requires.
    fn flr(&self) -> Result<(), PciError>;

    /// Conventional reset through the link (secondary bus reset of the upstream bridge).
    fn hot_reset(&self) -> Result<(), PciError>;

    /// Removes the device's power, as a power controller would.
    fn power_off(&self) -> Result<(), PciError>;

    /// Restores the device's power; the device comes up as after a conventional reset.
    fn power_on(&self) -> Result<(), PciError>;

    /// How long a power cycle keeps the power off when the script does not say: what a device
    /// needs to lose its charge (15 s, PyNVMe3's default). An off time the script gives is
    /// always honoured as given, on every backend.
    fn default_power_off_time(&self) -> std::time::Duration {
        std::time::Duration::from_secs(15)
    }

    /// The simulated device behind this function, for fault injection in tests; `None` for hardware.
    fn simulator(&self) -> Option<&nvme_sim::SimDevice> {
        None
    }

    /// Reads a config space byte.
    fn config_read8(&self, offset: u16) -> Result<u8, PciError> {
        let mut b = [0u8; 1];
        self.config_read(offset, &mut b)?;
        Ok(b[0])
    }

    /// Reads a little-endian config space word.
    fn config_read16(&self, offset: u16) -> Result<u16, PciError> {
        let mut b = [0u8; 2];
        self.config_read(offset, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Reads a little-endian config space dword.
    fn config_read32(&self, offset: u16) -> Result<u32, PciError> {
        let mut b = [0u8; 4];
        self.config_read(offset, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Writes a config space byte.
    fn config_write8(&self, offset: u16, value: u8) -> Result<(), PciError> {
        self.config_write(offset, &[value])
    }

    /// Writes a little-endian config space word.
    fn config_write16(&self, offset: u16, value: u16) -> Result<(), PciError> {
        self.config_write(offset, &value.to_le_bytes())
    }

    /// Writes a little-endian config space dword.
    fn config_write32(&self, offset: u16, value: u32) -> Result<(), PciError> {
        self.config_write(offset, &value.to_le_bytes())
    }

    /// The whole 4 KiB config space (a device that is gone reads all ones).
    fn config_space(&self) -> Result<Vec<u8>, PciError> {
        let mut v = vec![0u8; 4096];
        self.config_read(0, &mut v)?;
        Ok(v)
    }
}

/// Zeroed DMA memory of at least `len` bytes from the process's DMA domain: mapped for every
/// device the process opens, as pynvme's buffers come from one pool of hugepages. Usable before
/// any device is opened.
///
/// See [`domain`] for where the memory comes from (heap, or hugepages for uio).
pub fn dma_alloc(len: usize) -> Result<DmaMemory, PciError> {
    domain::alloc(len)
}

/// Opens the function at `addr`: a simulator URI (`sim://...`, or empty for the default simulated
/// SSD) or a PCI address (`0000:01:00.0`, `01:00.0`) bound to vfio-pci or uio_pci_generic.
pub fn open(addr: &str) -> Result<Arc<dyn PciFunction>, PciError> {
    open_in(&sysfs::Sysfs::system(), addr)
}

/// [`open`] with the PCI functions of the sysfs tree `sys`.
pub fn open_in(sys: &sysfs::Sysfs, addr: &str) -> Result<Arc<dyn PciFunction>, PciError> {
    if addr.is_empty() || addr.starts_with("sim:") {
        let f: Arc<dyn PciFunction> = sim::SimFunction::open(addr)?;
        return Ok(f);
    }
    let (bdf, binding) = sys.binding(addr)?;
    let f: Arc<dyn PciFunction> = match binding {
        sysfs::Binding::Vfio => vfio::VfioFunction::open(sys, &bdf)?,
        sysfs::Binding::Uio => uio::UioFunction::open(sys, &bdf)?,
    };
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_dispatches_on_the_address_and_the_driver() {
        assert_eq!(open("").unwrap().backend(), "sim");
        assert_eq!(open("sim://?namespaces=2").unwrap().backend(), "sim");
        let (_t, sys) = sysfs::tests::fake_sysfs(Some("nvme"));
        let e = open_in(&sys, "0000:01:00.0").err().unwrap().to_string();
        assert!(e.contains("pynvme setup"), "{e}");
        // Bound to uio in the fake tree: the uio backend is chosen and fails on the missing
        // resource0 file, not on the binding.
        let (_t, sys) = sysfs::tests::fake_sysfs(Some("uio_pci_generic"));
        let e = open_in(&sys, "01:00.0").err().unwrap().to_string();
        assert!(e.contains("resource0"), "{e}");
        let (_t, sys) = sysfs::tests::fake_sysfs(Some("vfio-pci"));
        let e = open_in(&sys, "01:00.0").err().unwrap().to_string();
        assert!(e.contains("vfio"), "{e}");
    }
}
