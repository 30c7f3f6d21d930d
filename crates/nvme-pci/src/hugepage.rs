//! DMA memory for devices without an IOMMU (uio): hugepages, whose bus address is the physical
//! address that `/proc/self/pagemap` tells (root only).
//!
//! A 2 MiB hugepage is physically contiguous and never moves or swaps, so any piece of it can be
//! handed to a device. Small regions are carved out of a pool of hugepages with a 4 KiB
//! granularity (as SPDK does). A region larger than one hugepage must be physically contiguous
//! too, and the kernel hands out hugepages in no particular physical order, so each hugepage is a
//! memory file of its own (`memfd_create(MFD_HUGETLB)`): the pool collects pages, sorted by
//! physical address, until it holds a run of consecutive ones, and maps that run at consecutive
//! virtual addresses (DPDK's "legacy memory" does the same with hugetlbfs files). Pages probed but
//! not used stay in the pool for the next request.

use crate::dma::{DmaFree, DmaMemory, DmaUnmap};
use crate::{ioctl, PciError};
use parking_lot::Mutex;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;
use std::sync::{Arc, OnceLock};

/// Size of the hugepages used (the x86-64 default).
pub const HUGEPAGE: usize = 2 << 20;
const PAGE: usize = 4096;
const PAGES_PER_HUGEPAGE: usize = HUGEPAGE / PAGE;

/// Decodes one 64-bit `/proc/self/pagemap` entry: the page frame number of a present page, or
/// `None` if the page is not present or the PFN is hidden (reads as 0 without CAP_SYS_ADMIN).
pub fn pagemap_pfn(entry: u64) -> Option<u64> {
    let present = entry >> 63 & 1 == 1;
    let pfn = entry & ((1 << 55) - 1);
    (present && pfn != 0).then_some(pfn)
}

/// The physical address of the byte at virtual address `va` of this process.
pub fn physical_address(va: usize) -> Result<u64, PciError> {
    let f = std::fs::File::open("/proc/self/pagemap").map_err(|source| PciError::Os {
        op: "open /proc/self/pagemap".into(),
        source,
    })?;
    let mut e = [0u8; 8];
    f.read_exact_at(&mut e, (va / PAGE * 8) as u64)
        .map_err(|source| PciError::Os {
            op: "read /proc/self/pagemap".into(),
            source,
        })?;
    let entry = u64::from_le_bytes(e);
    let pfn = pagemap_pfn(entry).ok_or_else(|| PciError::DmaAlloc {
        len: PAGE,
        reason: format!(
            "/proc/self/pagemap gives no physical address for {va:#x} (entry {entry:#x}): \
             the uio backend must run as root"
        ),
    })?;
    Ok(pfn * PAGE as u64 + (va % PAGE) as u64)
}

fn hugepage_error(len: usize, e: std::io::Error) -> PciError {
    PciError::DmaAlloc {
        len,
        reason: format!(
            "no free 2 MiB hugepages ({e}): reserve some with `pynvme setup` (memsize=) or \
             `echo N > /proc/sys/vm/nr_hugepages`"
        ),
    }
}

/// One hugepage of the pool and which of its 4 KiB pages are in use.
struct Chunk {
    va: NonNull<u8>,
    pa: u64,
    used: [bool; PAGES_PER_HUGEPAGE],
}

// SAFETY: the chunk only records where the hugepage is; the memory is accessed through
// `DmaMemory`, whose own rules make sharing sound.
unsafe impl Send for Chunk {}

/// The process's pool of hugepages.
pub(crate) struct HugepagePool {
    chunks: Mutex<Vec<Chunk>>,
    /// Hugepages probed and not mapped yet, sorted by physical address.
    spares: Mutex<Vec<Spare>>,
}

/// One hugepage held by its memory file.
struct Spare {
    fd: OwnedFd,
    pa: u64,
}

impl Spare {
    /// A new hugepage: faulted in once through a temporary mapping to learn its address.
    fn probe() -> Result<Spare, PciError> {
        let fd = ioctl::memfd_hugepage(HUGEPAGE).map_err(|e| hugepage_error(HUGEPAGE, e))?;
        let va =
            ioctl::mmap_shared(fd.as_fd(), HUGEPAGE, 0).map_err(|e| hugepage_error(HUGEPAGE, e))?;
        // SAFETY: the first byte of the page we just mapped; writing it makes the kernel allocate
        // the hugepage (a read could map the shared zero page instead).
        unsafe { va.as_ptr().write_volatile(0) };
        let pa = physical_address(va.as_ptr() as usize);
        // SAFETY: the temporary mapping made above, not used after; the page stays in the file.
        unsafe { ioctl::munmap(va, HUGEPAGE) };
        Ok(Spare { fd, pa: pa? })
    }
}

/// Maps the hugepages of `run` at consecutive virtual addresses; returns the first.
fn map_run(run: &[Spare]) -> Result<NonNull<u8>, PciError> {
    let len = run.len() * HUGEPAGE;
    // One spare hugepage of address space, to align the start.
    let reserve = ioctl::mmap_reserve(len + HUGEPAGE).map_err(|e| hugepage_error(len, e))?;
    let skip = (reserve.as_ptr() as usize).next_multiple_of(HUGEPAGE) - reserve.as_ptr() as usize;
    // SAFETY: `skip < HUGEPAGE`, inside the reservation.
    let base = unsafe { NonNull::new_unchecked(reserve.as_ptr().add(skip)) };
    for (i, page) in run.iter().enumerate() {
        // SAFETY: `base + i * HUGEPAGE .. + HUGEPAGE` is inside our reservation
        // (`skip + len <= len + HUGEPAGE`), which nothing else uses.
        let r = unsafe {
            let at = NonNull::new_unchecked(base.as_ptr().add(i * HUGEPAGE));
            ioctl::mmap_fixed_shared(at, HUGEPAGE, page.fd.as_fd())
        };
        if let Err(e) = r {
            // SAFETY: the whole reservation, with what was mapped into it, is ours and unused.
            unsafe { ioctl::munmap(reserve, len + HUGEPAGE) };
            return Err(hugepage_error(len, e));
        }
    }
    // The address space before `base` and after the run stays reserved until the region goes:
    // give the unaligned head and the tail back now.
    // SAFETY: both ranges are parts of our reservation outside the run, unused.
    unsafe {
        if skip > 0 {
            ioctl::munmap(reserve, skip);
        }
        let tail = HUGEPAGE - skip;
        ioctl::munmap(NonNull::new_unchecked(base.as_ptr().add(len)), tail);
    }
    Ok(base)
}

fn with_len(e: PciError, len: usize) -> PciError {
    match e {
        PciError::DmaAlloc { reason, .. } => PciError::DmaAlloc { len, reason },
        e => e,
    }
}

/// Index of the first run of `n` physically consecutive pages in `spares` (sorted).
fn find_run(spares: &[Spare], n: usize) -> Option<usize> {
    let pas: Vec<u64> = spares.iter().map(|s| s.pa).collect();
    find_run_in(&pas, n)
}

fn find_run_in(pas: &[u64], n: usize) -> Option<usize> {
    let mut start = 0;
    for i in 0..pas.len() {
        if i > start && pas[i] != pas[i - 1] + HUGEPAGE as u64 {
            start = i;
        }
        if i + 1 - start == n {
            return Some(start);
        }
    }
    None
}

impl HugepagePool {
    /// The process-wide pool.
    pub(crate) fn global() -> &'static Arc<HugepagePool> {
        static POOL: OnceLock<Arc<HugepagePool>> = OnceLock::new();
        POOL.get_or_init(|| {
            Arc::new(HugepagePool {
                chunks: Mutex::new(Vec::new()),
                spares: Mutex::new(Vec::new()),
            })
        })
    }

    /// Zeroed memory of at least `len` bytes, physically contiguous; its IOVA is its physical
    /// address.
    pub(crate) fn alloc(
        self: &Arc<Self>,
        len: usize,
        unmap: Option<Arc<dyn DmaUnmap>>,
    ) -> Result<DmaMemory, PciError> {
        let len = len.max(1).next_multiple_of(PAGE);
        if len > HUGEPAGE {
            return self.alloc_large(len, unmap);
        }
        let n = len / PAGE;
        let mut chunks = self.chunks.lock();
        let found = chunks
            .iter()
            .enumerate()
            .find_map(|(i, c)| first_fit(&c.used, n).map(|at| (i, at)));
        let (i, at) = match found {
            Some(f) => f,
            None => {
                let page = {
                    let mut spares = self.spares.lock();
                    match spares.pop() {
                        Some(p) => p,
                        None => Spare::probe().map_err(|e| with_len(e, len))?,
                    }
                };
                let pa = page.pa;
                let va = map_run(std::slice::from_ref(&page)).map_err(|e| with_len(e, len))?;
                chunks.push(Chunk {
                    va,
                    pa,
                    used: [false; PAGES_PER_HUGEPAGE],
                });
                (chunks.len() - 1, 0)
            }
        };
        let c = &mut chunks[i];
        c.used[at..at + n].fill(true);
        // SAFETY: `at + n <= 512` pages, inside the 2 MiB mapping of this chunk.
        let ptr = unsafe { NonNull::new_unchecked(c.va.as_ptr().add(at * PAGE)) };
        let iova = c.pa + (at * PAGE) as u64;
        let free: Arc<dyn DmaFree> = self.clone();
        let mem = DmaMemory::from_pool(ptr, len, iova, free, unmap);
        mem.fill(0, len, 0);
        Ok(mem)
    }
}

impl DmaFree for HugepagePool {
    fn free(&self, ptr: NonNull<u8>, len: usize) {
        let mut chunks = self.chunks.lock();
        let p = ptr.as_ptr() as usize;
        if let Some(c) = chunks
            .iter_mut()
            .find(|c| (c.va.as_ptr() as usize..c.va.as_ptr() as usize + HUGEPAGE).contains(&p))
        {
            let at = (p - c.va.as_ptr() as usize) / PAGE;
            c.used[at..at + len / PAGE].fill(false);
        }
    }
}

/// First run of `n` free pages.
fn first_fit(used: &[bool], n: usize) -> Option<usize> {
    let mut run = 0;
    for (i, u) in used.iter().enumerate() {
        run = if *u { 0 } else { run + 1 };
        if run == n {
            return Some(i + 1 - n);
        }
    }
    None
}

impl HugepagePool {
    /// A region of several hugepages, physically contiguous.
    fn alloc_large(
        &self,
        len: usize,
        unmap: Option<Arc<dyn DmaUnmap>>,
    ) -> Result<DmaMemory, PciError> {
        let n = len.div_ceil(HUGEPAGE);
        let run: Vec<Spare> = {
            let mut spares = self.spares.lock();
            loop {
                if let Some(at) = find_run(&spares, n) {
                    break spares.drain(at..at + n).collect();
                }
                match Spare::probe() {
                    Ok(page) => {
                        let at = spares.partition_point(|s| s.pa < page.pa);
                        spares.insert(at, page);
                    }
                    Err(e) => {
                        return Err(PciError::DmaAlloc {
                            len,
                            reason: format!(
                                "no {n} physically consecutive hugepages among the {} free ones \
                                 ({e}); without an IOMMU a buffer larger than 2 MiB needs them: \
                                 reserve more hugepages (memsize=), or use vfio",
                                spares.len()
                            ),
                        });
                    }
                }
            }
        };
        let pa = run[0].pa;
        let va = map_run(&run)?;
        // Unmapped (and the hugepages given back) when the region is freed.
        let mem = DmaMemory::from_mmap(va, n * HUGEPAGE, pa, unmap);
        mem.fill(0, mem.len(), 0);
        Ok(mem)
    }
}

/// Number of 2 MiB hugepages the kernel has free.
pub fn free_hugepages() -> u64 {
    std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagemap_entries() {
        // present, PFN 0x12345
        assert_eq!(pagemap_pfn(1 << 63 | 0x12345), Some(0x12345));
        // present, soft-dirty and exclusive bits do not leak into the PFN
        assert_eq!(pagemap_pfn(1 << 63 | 1 << 56 | 1 << 55 | 0x42), Some(0x42));
        // not present
        assert_eq!(pagemap_pfn(0x12345), None);
        // swapped
        assert_eq!(pagemap_pfn(1 << 62 | 0x12345), None);
        // PFN hidden from an unprivileged reader
        assert_eq!(pagemap_pfn(1 << 63), None);
    }

    #[test]
    fn physically_consecutive_runs() {
        let h = HUGEPAGE as u64;
        assert_eq!(find_run_in(&[0, h, 2 * h], 3), Some(0));
        assert_eq!(find_run_in(&[0, 2 * h, 3 * h, 4 * h], 3), Some(1));
        assert_eq!(find_run_in(&[0, 2 * h, 3 * h, 5 * h], 3), None);
        assert_eq!(find_run_in(&[7 * h], 1), Some(0));
        assert_eq!(find_run_in(&[], 1), None);
    }

    #[test]
    fn first_fit_runs() {
        let mut used = [false; 8];
        assert_eq!(first_fit(&used, 8), Some(0));
        used[2] = true;
        assert_eq!(first_fit(&used, 2), Some(0));
        assert_eq!(first_fit(&used, 3), Some(3));
        assert_eq!(first_fit(&used, 6), None);
    }

    #[test]
    fn pool_when_hugepages_exist() {
        // Runs for real only on a machine with free hugepages and root; else checks the error.
        match HugepagePool::global().alloc(8192, None) {
            Ok(m) => {
                assert_eq!(m.len(), 8192);
                assert!(m.to_vec(0, 8192).iter().all(|&b| b == 0));
                let b = HugepagePool::global().alloc(4096, None).unwrap();
                assert_eq!(b.iova(), m.iova() + 8192);
            }
            Err(e) => assert!(e.to_string().contains("hugepage") || e.to_string().contains("root")),
        }
    }
}
