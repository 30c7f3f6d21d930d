//! The process's DMA domain: where DMA memory comes from and which devices can reach it.
//!
//! pynvme scripts create `Buffer`s before, after and between opening devices, and hand any of
//! them to any device. So memory is not allocated per device: [`alloc`] takes it from the
//! domain, which maps every region into every open VFIO container (existing regions when a
//! container is added, new regions when they are allocated) at the same bus address (IOVA), and
//! unmaps it from all of them when the host drops its last handle.
//!
//! Where the memory comes from, decided at each allocation:
//!
//! 1. `PYNVME_DMA_MEMORY=hugepage` or `=heap` in the environment, if set;
//! 2. otherwise hugepages once a device bound to uio_pci_generic has been opened in this process
//!    (without an IOMMU the device sees physical addresses, so memory must be physically
//!    contiguous and pinned: see [`crate::hugepage`]);
//! 3. otherwise ordinary heap memory with an IOVA from the simulator's bus allocator: the
//!    simulated SSD sees it through [`crate::sim::SimBus`], a VFIO device through its IOMMU.
//!
//! Memory allocated before a uio device was opened is heap memory, which that device cannot
//! reach: with uio, create buffers after opening the device, or set `PYNVME_DMA_MEMORY=hugepage`
//! (the pytest plugin does so when `--pciaddr` names a uio-bound device). Hugepage memory, in
//! turn, is not visible to the simulated SSD.

use crate::dma::DmaUnmap;
use crate::hugepage::HugepagePool;
use crate::sim::SimBus;
use crate::{DmaMemory, PciError};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

/// Environment variable that forces the memory source: `hugepage` or `heap`.
pub const MEMORY_ENV: &str = "PYNVME_DMA_MEMORY";

/// Where DMA memory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySource {
    /// Heap memory, IOVAs from the bus allocator (simulator, vfio).
    Heap,
    /// 2 MiB hugepages, IOVA = physical address (uio; also fine for vfio).
    Hugepage,
}

/// An IOMMU that the domain's regions are mapped into (a VFIO container).
pub(crate) trait IommuMapper: Send + Sync {
    /// Lets the device reach `len` bytes at host address `vaddr` through bus address `iova`.
    fn map(&self, vaddr: usize, iova: u64, len: usize) -> Result<(), PciError>;
    /// Removes what `map` added.
    fn unmap(&self, iova: u64, len: usize);
}

#[derive(Default)]
struct State {
    /// Live regions by IOVA: (host address, length).
    regions: BTreeMap<u64, (usize, usize)>,
    mappers: Vec<Weak<dyn IommuMapper>>,
}

static STATE: Mutex<State> = Mutex::new(State {
    regions: BTreeMap::new(),
    mappers: Vec::new(),
});
static UIO_OPENED: AtomicBool = AtomicBool::new(false);

/// The source that rule 1..3 of the module documentation picks now.
pub fn memory_source() -> MemorySource {
    source_from(
        std::env::var(MEMORY_ENV).ok().as_deref(),
        UIO_OPENED.load(Ordering::Relaxed),
    )
}

fn source_from(env: Option<&str>, uio_opened: bool) -> MemorySource {
    match env.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        Some("hugepage" | "hugepages" | "huge") => MemorySource::Hugepage,
        Some("heap") => MemorySource::Heap,
        _ if uio_opened => MemorySource::Hugepage,
        _ => MemorySource::Heap,
    }
}

/// Records that a uio device was opened: later allocations come from hugepages.
pub(crate) fn uio_opened() {
    UIO_OPENED.store(true, Ordering::Relaxed);
}

/// Unmaps a region from the domain's IOMMUs (after the backend's own unmapper, if any).
struct DomainUnmap {
    inner: Option<Arc<dyn DmaUnmap>>,
}

impl DmaUnmap for DomainUnmap {
    fn unmap(&self, iova: u64, len: usize) {
        if let Some(u) = &self.inner {
            u.unmap(iova, len);
        }
        let mappers: Vec<Arc<dyn IommuMapper>> = {
            let mut s = STATE.lock();
            s.regions.remove(&iova);
            s.mappers.iter().filter_map(Weak::upgrade).collect()
        };
        for m in mappers {
            m.unmap(iova, len);
        }
    }
}

/// Zeroed DMA memory of at least `len` bytes from the domain, mapped for every open device.
pub(crate) fn alloc(len: usize) -> Result<DmaMemory, PciError> {
    let mem = match memory_source() {
        MemorySource::Heap => {
            let bus = SimBus::global();
            let mut mem = bus.alloc(len)?;
            let iova = mem.iova();
            let inner: Arc<dyn DmaUnmap> = bus.clone();
            mem.set_mapping(iova, Arc::new(DomainUnmap { inner: Some(inner) }));
            mem
        }
        MemorySource::Hugepage => {
            HugepagePool::global().alloc(len, Some(Arc::new(DomainUnmap { inner: None })))?
        }
    };
    register(&mem)?;
    Ok(mem)
}

fn register(mem: &DmaMemory) -> Result<(), PciError> {
    let mappers: Vec<Arc<dyn IommuMapper>> = {
        let mut s = STATE.lock();
        s.regions.insert(mem.iova(), (mem.host_addr(), mem.len()));
        s.mappers.retain(|m| m.strong_count() > 0);
        s.mappers.iter().filter_map(Weak::upgrade).collect()
    };
    for m in mappers {
        // On failure the caller drops `mem`, whose unmapper removes it from every mapper again.
        m.map(mem.host_addr(), mem.iova(), mem.len())?;
    }
    Ok(())
}

/// Maps every live region of `s` into `m` (under the state's lock, so no region is missed).
fn map_all(s: &State, m: &Arc<dyn IommuMapper>) -> Result<(), PciError> {
    for (&iova, &(vaddr, len)) in &s.regions {
        m.map(vaddr, iova, len)?;
    }
    Ok(())
}

/// Adds an IOMMU to the domain and maps every live region into it.
pub(crate) fn add_mapper(m: &Arc<dyn IommuMapper>) -> Result<(), PciError> {
    let mut s = STATE.lock();
    map_all(&s, m)?;
    s.mappers.retain(|m| m.strong_count() > 0);
    s.mappers.push(Arc::downgrade(m));
    Ok(())
}

/// Maps every live region into `m` again: an IOMMU of the domain that lost its mappings (a
/// VFIO container whose last group went away with its function, set up again).
pub(crate) fn remap(m: &Arc<dyn IommuMapper>) -> Result<(), PciError> {
    map_all(&STATE.lock(), m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn source_rules() {
        assert_eq!(source_from(None, false), MemorySource::Heap);
        assert_eq!(source_from(None, true), MemorySource::Hugepage);
        assert_eq!(source_from(Some("hugepage"), false), MemorySource::Hugepage);
        assert_eq!(source_from(Some("heap"), true), MemorySource::Heap);
        assert_eq!(source_from(Some(""), false), MemorySource::Heap);
    }

    #[derive(Default)]
    struct Recorder {
        mapped: Mutex<BTreeMap<u64, usize>>,
        calls: AtomicUsize,
    }

    impl IommuMapper for Recorder {
        fn map(&self, _vaddr: usize, iova: u64, len: usize) -> Result<(), PciError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.mapped.lock().insert(iova, len);
            Ok(())
        }
        fn unmap(&self, iova: u64, _len: usize) {
            self.mapped.lock().remove(&iova);
        }
    }

    #[test]
    fn regions_follow_every_mapper() {
        let before = alloc(8192).unwrap();
        let rec = Arc::new(Recorder::default());
        let m: Arc<dyn IommuMapper> = rec.clone();
        add_mapper(&m).unwrap();
        // Existing regions are mapped when the IOMMU joins (other tests may own more).
        assert_eq!(rec.mapped.lock().get(&before.iova()), Some(&8192));
        let after = alloc(4096).unwrap();
        assert_eq!(rec.mapped.lock().get(&after.iova()), Some(&4096));
        // The simulator still sees the memory at the same IOVA.
        use nvme_sim::HostMemory;
        after.write(0, b"abcd");
        let mut got = [0u8; 4];
        SimBus::global().read(after.iova(), &mut got).unwrap();
        assert_eq!(&got, b"abcd");
        let (a, b) = (before.iova(), after.iova());
        let clone = after.clone();
        drop(after);
        assert!(rec.mapped.lock().contains_key(&b), "a clone still holds it");
        drop(clone);
        drop(before);
        assert!(!rec.mapped.lock().contains_key(&a));
        assert!(!rec.mapped.lock().contains_key(&b));
        assert!(SimBus::global().read(b, &mut got).is_err());
        drop(m);
        drop(rec);
        // A dead mapper is forgotten, not called.
        let _x = alloc(4096).unwrap();
    }

    #[test]
    fn remap_maps_the_live_regions_again() {
        let live = alloc(8192).unwrap();
        let rec = Arc::new(Recorder::default());
        let m: Arc<dyn IommuMapper> = rec.clone();
        add_mapper(&m).unwrap();
        // The IOMMU forgets everything (a VFIO container that lost its last group).
        rec.mapped.lock().clear();
        remap(&m).unwrap();
        assert_eq!(rec.mapped.lock().get(&live.iova()), Some(&8192));
    }
}
