//! The simulated SSD: a PCIe NVMe function in software (interface; body being written).
#![forbid(unsafe_code)]

use std::sync::Arc;

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

/// Settings of a simulated SSD (placeholder; being written).
#[derive(Debug, Clone, Default)]
pub struct SimConfig {}

/// A running simulated SSD (placeholder; being written).
pub struct SimDevice {
    _host: Arc<dyn HostMemory>,
}
