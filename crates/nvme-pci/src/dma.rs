//! DMA memory: host memory that a device may read and write by bus address.
//!
//! A [`DmaMemory`] is one physically contiguous (as the device sees it) region: a virtual address
//! for the host, a bus address (IOVA) for the device. Its bytes are shared with a device that
//! runs concurrently (a real one over PCIe, or the simulator's thread), so the host never gets a
//! `&mut [u8]` into it: it copies in and out, reads dwords with acquire ordering where it polls,
//! and looks at the bytes through a short-lived shared view ([`DmaMemory::with_bytes`]).
//!
//! The memory is reference counted: a command that is outstanding holds a clone, so dropping a
//! Python `Buffer` while the device still writes into it cannot free the memory under the device.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// What frees a region when its last reference is gone: unmaps it from the device first.
pub trait DmaUnmap: Send + Sync {
    /// Removes the device's access to `[iova, iova + len)`. Called once, before the memory is freed.
    fn unmap(&self, iova: u64, len: usize);
}

/// How the memory of a region was obtained, so it is given back the same way.
pub(crate) enum Backing {
    /// `std::alloc` with this layout (the simulator's memory).
    Heap(Layout),
    /// An anonymous or hugetlbfs `mmap` of this length.
    #[allow(dead_code)]
    Mmap(usize),
}

/// The shared part of a region.
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
    iova: u64,
    backing: Backing,
    unmap: Option<Arc<dyn DmaUnmap>>,
}

// SAFETY: the region is plain memory owned by this struct; every host access goes through
// methods that copy bytes or use atomics, so sharing the pointer between threads is sound.
unsafe impl Send for Region {}
// SAFETY: see `Send`: no method hands out a unique reference, so concurrent `&Region` use is fine.
unsafe impl Sync for Region {}

impl Drop for Region {
    fn drop(&mut self) {
        if let Some(u) = self.unmap.take() {
            u.unmap(self.iova, self.len);
        }
        match self.backing {
            // SAFETY: `ptr` came from `alloc_zeroed` with exactly this layout, and this is the only
            // deallocation (Region is dropped once, after the device lost access by `unmap`).
            Backing::Heap(layout) => unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) },
            Backing::Mmap(len) => {
                // SAFETY: `ptr`/`len` are exactly what `mmap` returned; the mapping is not used after.
                unsafe { libc::munmap(self.ptr.as_ptr().cast(), len) };
            }
        }
    }
}

/// A region of DMA memory: host virtual address plus device bus address.
///
/// Cloning is cheap and shares the memory. All offsets are relative to the region's start and are
/// checked: an access outside the region panics with the offending range, which is a host-side
/// bug, never a device's.
#[derive(Clone)]
pub struct DmaMemory {
    region: Arc<Region>,
}

impl std::fmt::Debug for DmaMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DmaMemory {{ iova: {:#x}, len: {:#x} }}",
            self.iova(),
            self.len()
        )
    }
}

impl DmaMemory {
    /// Zeroed heap memory with `align`-byte alignment (a power of two, at least 4096); `iova` and
    /// `unmap` are filled in by [`DmaMemory::set_mapping`] once the backend has mapped it.
    pub(crate) fn alloc_heap(len: usize, align: usize) -> Option<DmaMemory> {
        let len = len.max(1).next_multiple_of(4096);
        let layout = Layout::from_size_align(len, align.max(4096)).ok()?;
        // SAFETY: `layout` has a non-zero size (at least 4096).
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        Some(DmaMemory {
            region: Arc::new(Region {
                ptr,
                len,
                iova: 0,
                backing: Backing::Heap(layout),
                unmap: None,
            }),
        })
    }

    /// Memory from an `mmap` the caller made: `ptr`/`len` are given back to `munmap` on drop.
    #[allow(dead_code)]
    pub(crate) fn from_mmap(
        ptr: NonNull<u8>,
        len: usize,
        iova: u64,
        unmap: Option<Arc<dyn DmaUnmap>>,
    ) -> DmaMemory {
        DmaMemory {
            region: Arc::new(Region {
                ptr,
                len,
                iova,
                backing: Backing::Mmap(len),
                unmap,
            }),
        }
    }

    /// Records the bus address and the unmapper; only while the region is not shared yet.
    pub(crate) fn set_mapping(&mut self, iova: u64, unmap: Arc<dyn DmaUnmap>) {
        let r = Arc::get_mut(&mut self.region).expect("mapping is set before the region is shared");
        r.iova = iova;
        r.unmap = Some(unmap);
    }

    /// A weak reference to the region, for a bus table that must not keep it alive.
    pub(crate) fn weak_region(&self) -> std::sync::Weak<Region> {
        Arc::downgrade(&self.region)
    }

    /// A handle from a region kept alive by the caller.
    pub(crate) fn from_region(region: Arc<Region>) -> DmaMemory {
        DmaMemory { region }
    }

    /// Length in bytes (a multiple of 4096).
    pub fn len(&self) -> usize {
        self.region.len
    }

    /// Always false: a region has at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bus address (IOVA) of byte 0, as the device must be given it.
    pub fn iova(&self) -> u64 {
        self.region.iova
    }

    /// The host virtual address of byte 0 (for logs and for backends that map it).
    pub fn host_addr(&self) -> usize {
        self.region.ptr.as_ptr() as usize
    }

    /// Whether two handles share the same memory.
    pub fn same_region(&self, other: &DmaMemory) -> bool {
        Arc::ptr_eq(&self.region, &other.region)
    }

    #[inline]
    fn check(&self, offset: usize, len: usize) {
        assert!(
            offset
                .checked_add(len)
                .is_some_and(|end| end <= self.region.len),
            "DMA memory access [{offset:#x}, +{len:#x}) outside a region of {:#x} bytes",
            self.region.len
        );
    }

    /// Copies `buf.len()` bytes out of the region at `offset`.
    #[inline]
    pub fn read(&self, offset: usize, buf: &mut [u8]) {
        self.check(offset, buf.len());
        // SAFETY: the range is inside the region (checked above) and `buf` is distinct host memory.
        // The region holds plain bytes with no validity invariant; a device writing concurrently can
        // only make the copy observe torn data, as with any DMA (the practice of rust-vmm's
        // vm-memory for guest memory shared with other agents).
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.region.ptr.as_ptr().add(offset),
                buf.as_mut_ptr(),
                buf.len(),
            )
        }
    }

    /// Copies `data` into the region at `offset`.
    #[inline]
    pub fn write(&self, offset: usize, data: &[u8]) {
        self.check(offset, data.len());
        // SAFETY: in bounds (checked); `data` cannot overlap the region, since no `&[u8]` into a region
        // outlives `with_bytes`, which takes `&self` only; bytes have no validity invariant (see `read`).
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.region.ptr.as_ptr().add(offset),
                data.len(),
            )
        }
    }

    /// Fills `len` bytes at `offset` with `byte`.
    pub fn fill(&self, offset: usize, len: usize, byte: u8) {
        self.check(offset, len);
        // SAFETY: in bounds (checked); see `read` for sharing with the device.
        unsafe { std::ptr::write_bytes(self.region.ptr.as_ptr().add(offset), byte, len) }
    }

    /// Runs `f` on a shared view of `len` bytes at `offset`.
    ///
    /// For memory whose commands have completed (data to check, a CQE already seen by its phase
    /// tag): the device has no reason to write it. A device that does anyway only makes `f` see
    /// torn bytes, exactly as the CPU would on hardware.
    #[inline]
    pub fn with_bytes<R>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        self.check(offset, len);
        // SAFETY: in bounds (checked), the region outlives the call (we hold `&self`), and the view
        // does not escape `f`. Concurrent device writes are the DMA case described at `read`.
        let s = unsafe { std::slice::from_raw_parts(self.region.ptr.as_ptr().add(offset), len) };
        f(s)
    }

    /// Runs `f` on a mutable view of `len` bytes at `offset`, for the host to fill data in place
    /// (patterns, stamps) before a command that uses it is submitted.
    #[inline]
    pub fn with_bytes_mut<R>(
        &self,
        offset: usize,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> R {
        self.check(offset, len);
        // SAFETY: in bounds (checked) and the view does not escape `f`. The host API is single
        // writer per region by contract (a region is written by the host only while no command
        // uses it); another concurrent host view of the same bytes can only come from a
        // `with_bytes` on another thread, which sees torn data at worst (DMA case, see `read`).
        let s =
            unsafe { std::slice::from_raw_parts_mut(self.region.ptr.as_ptr().add(offset), len) };
        f(s)
    }

    #[inline]
    fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        self.check(offset, 4);
        assert!(
            offset.is_multiple_of(4),
            "unaligned dword access at {offset:#x}"
        );
        // SAFETY: in bounds and 4-byte aligned (the region is page aligned); AtomicU32 has the size
        // and alignment of u32, and all bit patterns are valid. The reference lives as long as `&self`.
        unsafe { &*(self.region.ptr.as_ptr().add(offset) as *const AtomicU32) }
    }

    #[inline]
    fn atomic_u64(&self, offset: usize) -> &AtomicU64 {
        self.check(offset, 8);
        assert!(
            offset.is_multiple_of(8),
            "unaligned qword access at {offset:#x}"
        );
        // SAFETY: as `atomic_u32`, with 8-byte size and alignment.
        unsafe { &*(self.region.ptr.as_ptr().add(offset) as *const AtomicU64) }
    }

    /// Reads a little-endian dword with acquire ordering: what the device wrote before it is visible
    /// after it (the CQE phase tag, an MSI-X message).
    #[inline]
    pub fn load_u32(&self, offset: usize) -> u32 {
        u32::from_le(self.atomic_u32(offset).load(Ordering::Acquire))
    }

    /// Writes a little-endian dword with release ordering.
    #[inline]
    pub fn store_u32(&self, offset: usize, value: u32) {
        self.atomic_u32(offset)
            .store(value.to_le(), Ordering::Release)
    }

    /// Reads a little-endian qword with acquire ordering.
    #[inline]
    pub fn load_u64(&self, offset: usize) -> u64 {
        u64::from_le(self.atomic_u64(offset).load(Ordering::Acquire))
    }

    /// Writes a little-endian qword with release ordering.
    #[inline]
    pub fn store_u64(&self, offset: usize, value: u64) {
        self.atomic_u64(offset)
            .store(value.to_le(), Ordering::Release)
    }

    /// Copies `len` bytes at `offset` into a new vector.
    pub fn to_vec(&self, offset: usize, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.read(offset, &mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_memory_is_zeroed_aligned_and_checked() {
        let m = DmaMemory::alloc_heap(100, 4096).unwrap();
        assert_eq!(m.len(), 4096);
        assert_eq!(m.host_addr() % 4096, 0);
        assert!(m.to_vec(0, 4096).iter().all(|&b| b == 0));
        m.write(10, b"hello");
        assert_eq!(m.to_vec(10, 5), b"hello");
        m.store_u32(16, 0xdead_beef);
        assert_eq!(m.load_u32(16), 0xdead_beef);
        assert_eq!(
            m.with_bytes(16, 4, |b| b.to_vec()),
            0xdead_beefu32.to_le_bytes()
        );
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.read(4090, &mut [0; 8])));
        assert!(r.is_err());
    }
}
