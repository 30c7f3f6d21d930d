//! The simulator backend: the simulated SSD of `nvme-sim` as a PCIe function of this process.
//!
//! DMA goes through [`SimBus`], which plays the IOMMU: the host maps each [`DmaMemory`] region at a
//! bus address (IOVA) of its own, deliberately unlike its virtual address, with an unmapped guard
//! page between regions and never reused, so a driver that hands the device a virtual address, a
//! freed buffer or an overrun is caught as a DMA fault instead of corrupting memory.

use crate::dma::{DmaUnmap, Region};
use crate::msix::SoftMsix;
use crate::{DmaMemory, Interrupts, PciError, PciFunction};
use arc_swap::ArcSwap;
use nvme_sim::{DmaFault, HostMemory, SimConfig, SimDevice};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// First bus address handed out: far from typical user-space virtual addresses.
const IOVA_BASE: u64 = 0x0000_00c0_0000_0000;

/// One mapped region. The table holds the region strongly: a device access under a loaded
/// snapshot of the table keeps the memory alive without any per-access reference counting.
#[derive(Clone)]
struct Mapping {
    iova: u64,
    len: usize,
    region: Arc<Region>,
}

/// The simulator's view of host memory: the regions the host mapped, by bus address.
pub struct SimBus {
    maps: ArcSwap<Vec<Mapping>>,
    next_iova: AtomicU64,
    faults: AtomicU64,
}

impl SimBus {
    /// The process's DMA domain for simulated devices: every buffer is mapped here, and every
    /// simulated function sees host memory through it (like one VFIO container per process).
    pub fn global() -> &'static Arc<SimBus> {
        static BUS: OnceLock<Arc<SimBus>> = OnceLock::new();
        BUS.get_or_init(|| {
            Arc::new(SimBus {
                maps: ArcSwap::from_pointee(Vec::new()),
                next_iova: AtomicU64::new(IOVA_BASE),
                faults: AtomicU64::new(0),
            })
        })
    }

    /// Allocates zeroed memory of at least `len` bytes and maps it for the devices.
    pub fn alloc(self: &Arc<Self>, len: usize) -> Result<DmaMemory, PciError> {
        let mem = DmaMemory::alloc_heap(len, 4096).ok_or_else(|| PciError::DmaAlloc {
            len,
            reason: "out of memory".into(),
        })?;
        Ok(self.map(mem))
    }

    fn map(self: &Arc<Self>, mut mem: DmaMemory) -> DmaMemory {
        let len = mem.len() as u64;
        // One unmapped guard page after every region.
        let iova = self.next_iova.fetch_add(len + 4096, Ordering::Relaxed);
        let unmap: Arc<dyn DmaUnmap> = self.clone();
        mem.set_mapping(iova, unmap);
        let region = mem.region();
        self.maps.rcu(|maps| {
            let mut v: Vec<Mapping> = maps.iter().cloned().collect();
            let at = v.partition_point(|m| m.iova < iova);
            v.insert(
                at,
                Mapping {
                    iova,
                    len: len as usize,
                    region: region.clone(),
                },
            );
            v
        });
        mem
    }

    /// Number of device accesses refused since the bus was created.
    pub fn fault_count(&self) -> u64 {
        self.faults.load(Ordering::Relaxed)
    }

    /// Calls `f(region, offset, chunk_len)` for each mapped piece of `[addr, addr + len)`.
    #[inline]
    fn walk(
        &self,
        addr: u64,
        len: usize,
        mut f: impl FnMut(&crate::dma::RawMem, usize, usize, usize),
    ) -> Result<(), DmaFault> {
        let maps = self.maps.load();
        let mut done = 0usize;
        while done < len {
            let a = addr
                .checked_add(done as u64)
                .ok_or(DmaFault { addr, len })?;
            let i = maps.partition_point(|m| m.iova <= a);
            let m = i
                .checked_sub(1)
                .map(|i| &maps[i])
                .filter(|m| a < m.iova + m.len as u64);
            let Some(m) = m else {
                self.faults.fetch_add(1, Ordering::Relaxed);
                return Err(DmaFault { addr, len });
            };
            let off = (a - m.iova) as usize;
            let n = (m.len - off).min(len - done);
            f(&m.region.mem, off, done, n);
            done += n;
        }
        Ok(())
    }
}

impl DmaUnmap for SimBus {
    fn unmap(&self, iova: u64, _len: usize) {
        self.maps.rcu(|maps| {
            maps.iter()
                .filter(|m| m.iova != iova)
                .cloned()
                .collect::<Vec<_>>()
        });
    }
}

impl HostMemory for SimBus {
    #[inline]
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        let len = buf.len();
        self.walk(addr, len, |mem, off, at, n| {
            mem.read(off, &mut buf[at..at + n])
        })
    }

    #[inline]
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), DmaFault> {
        self.walk(addr, data.len(), |mem, off, at, n| {
            mem.write(off, &data[at..at + n])
        })
    }

    #[inline]
    fn write_dword_release(&self, addr: u64, value: u32) -> Result<(), DmaFault> {
        if !addr.is_multiple_of(4) {
            self.faults.fetch_add(1, Ordering::Relaxed);
            return Err(DmaFault { addr, len: 4 });
        }
        self.walk(addr, 4, |mem, off, _, _| mem.store_u32(off, value))
    }
}

/// The simulated SSD as a PCIe function.
pub struct SimFunction {
    addr: String,
    dev: SimDevice,
}

impl SimFunction {
    /// Creates a simulated SSD from a URI (`sim://?capacity=1T&...`; empty for the default) and
    /// enables memory space and bus mastering, as a platform's firmware or vfio-pci would.
    pub fn open(uri: &str) -> Result<Arc<SimFunction>, PciError> {
        let config = SimConfig::from_uri(uri)?;
        Self::with_config(uri, config)
    }

    /// Creates a simulated SSD from a configuration.
    pub fn with_config(uri: &str, config: SimConfig) -> Result<Arc<SimFunction>, PciError> {
        let host: Arc<dyn HostMemory> = SimBus::global().clone();
        let dev = SimDevice::new(config, host)?;
        let f = SimFunction {
            addr: if uri.is_empty() {
                "sim://".to_string()
            } else {
                uri.to_string()
            },
            dev,
        };
        let cmd = f.config_read16(0x04)?;
        f.config_write16(0x04, cmd | 0x6)?;
        Ok(Arc::new(f))
    }
}

fn check_config_range(offset: u16, len: usize) -> Result<(), PciError> {
    if offset as usize + len > 4096 {
        return Err(PciError::ConfigRange {
            offset: offset as usize,
            len,
        });
    }
    Ok(())
}

impl PciFunction for SimFunction {
    fn address(&self) -> &str {
        &self.addr
    }

    fn backend(&self) -> &'static str {
        "sim"
    }

    fn config_read(&self, offset: u16, buf: &mut [u8]) -> Result<(), PciError> {
        check_config_range(offset, buf.len())?;
        self.dev.config_read(offset, buf);
        Ok(())
    }

    fn config_write(&self, offset: u16, data: &[u8]) -> Result<(), PciError> {
        check_config_range(offset, data.len())?;
        self.dev.config_write(offset, data);
        Ok(())
    }

    fn bar_size(&self, bar: u8) -> u64 {
        self.dev.bar_size(bar)
    }

    #[inline]
    fn bar_read32(&self, bar: u8, offset: u64) -> u32 {
        self.dev.bar_read32(bar, offset)
    }

    #[inline]
    fn bar_write32(&self, bar: u8, offset: u64, value: u32) {
        self.dev.bar_write32(bar, offset, value)
    }

    fn bar_read64(&self, bar: u8, offset: u64) -> u64 {
        self.dev.bar_read64(bar, offset)
    }

    fn bar_write64(&self, bar: u8, offset: u64, value: u64) {
        self.dev.bar_write64(bar, offset, value)
    }

    fn msix_enable(self: Arc<Self>, nvec: u16) -> Result<Arc<dyn Interrupts>, PciError> {
        let dev: Arc<dyn PciFunction> = self;
        Ok(Arc::new(SoftMsix::enable(dev, nvec)?))
    }

    fn flr(&self) -> Result<(), PciError> {
        let cap = crate::msix::find_capability(self, nvme_spec::pci::cap_id::PCIE)?
            .ok_or(PciError::NoCapability("PCI Express"))?;
        let devctl = self.config_read16(cap + 8)?;
        self.config_write16(cap + 8, devctl | (1 << 15))?;
        // The spec gives a function 100 ms to complete an FLR; the simulator is done at once, so
        // there is nothing to wait for beyond re-enabling what the reset cleared.
        let cmd = self.config_read16(0x04)?;
        self.config_write16(0x04, cmd | 0x6)
    }

    fn hot_reset(&self) -> Result<(), PciError> {
        self.dev.hot_reset();
        let cmd = self.config_read16(0x04)?;
        self.config_write16(0x04, cmd | 0x6)
    }

    fn power_off(&self) -> Result<(), PciError> {
        self.dev.power_off();
        Ok(())
    }

    fn power_on(&self) -> Result<(), PciError> {
        self.dev.power_on();
        let cmd = self.config_read16(0x04)?;
        self.config_write16(0x04, cmd | 0x6)
    }

    /// The simulated SSD keeps no charge: 100 ms off when the script gives no off time.
    fn default_power_off_time(&self) -> std::time::Duration {
        std::time::Duration::from_millis(100)
    }

    fn simulator(&self) -> Option<&SimDevice> {
        Some(&self.dev)
    }
}
