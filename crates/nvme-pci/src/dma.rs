//! DMA memory: host memory that a device may read and write by bus address.
//!
//! A [`DmaMemory`] is one physically contiguous (as the device sees it) region: a virtual address
//! for the host, a bus address (IOVA) for the device. Its bytes are shared with a device that
//! runs concurrently (a real one over PCIe, or the simulator's thread), so the host never gets a
//! `&mut [u8]` that outlives a call: it copies in and out, reads dwords with acquire ordering where
//! it polls, and looks at the bytes through short-lived views ([`DmaMemory::with_bytes`]).
//!
//! Ownership has two levels. The [`Region`] owns the memory and frees it when its last reference
//! goes. The mapping handle behind a [`DmaMemory`] is what the host holds (a command that is
//! outstanding holds a clone); when the last handle goes, the region is unmapped from the devices.
//! A bus table that maps the region holds a strong reference of its own, so a device access in
//! flight keeps the memory alive without touching a reference count per access, and the host's
//! fields sit on a cache line the device never writes.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// Removes a device's access to a region when the host no longer holds it.
pub trait DmaUnmap: Send + Sync {
    /// Removes the device's access to `[iova, iova + len)`. Called once.
    fn unmap(&self, iova: u64, len: usize);
}

/// A pool that hands out pieces of its memory as regions and takes them back.
pub trait DmaFree: Send + Sync {
    /// Gives back `len` bytes at `ptr`, handed out by this pool. Called once per region.
    fn free(&self, ptr: NonNull<u8>, len: usize);
}

/// How the memory of a region was obtained, so it is given back the same way.
pub(crate) enum Backing {
    /// `std::alloc` with this layout (the simulator's memory).
    Heap(Layout),
    /// An anonymous or hugetlbfs `mmap` of this length.
    Mmap(usize),
    /// A piece of a pool's memory (hugepages).
    Pool(Arc<dyn DmaFree>),
}

/// A pointer and a length of memory shared with a device: every access is bounds checked.
#[derive(Clone, Copy)]
pub(crate) struct RawMem {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: RawMem is a view of plain memory kept alive by its owner (a Region); every access
// copies bytes or uses atomics, so using it from several threads is sound.
unsafe impl Send for RawMem {}
// SAFETY: see Send: no method hands out a unique reference that outlives the call.
unsafe impl Sync for RawMem {}

impl RawMem {
    #[inline]
    fn check(&self, offset: usize, len: usize) {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "DMA memory access [{offset:#x}, +{len:#x}) outside a region of {:#x} bytes",
            self.len
        );
    }

    /// Copies bytes out at `offset`.
    #[inline]
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) {
        self.check(offset, buf.len());
        // SAFETY: the range is inside the memory (checked above), which its owner keeps alive, and
        // `buf` is distinct host memory. The bytes have no validity invariant; a device writing
        // concurrently can only make the copy observe torn data, as with any DMA (the practice of
        // rust-vmm's vm-memory for guest memory shared with other agents).
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(offset),
                buf.as_mut_ptr(),
                buf.len(),
            )
        }
    }

    /// Copies `data` in at `offset`.
    #[inline]
    pub(crate) fn write(&self, offset: usize, data: &[u8]) {
        self.check(offset, data.len());
        // SAFETY: in bounds (checked) and alive (owner); `data` cannot overlap this memory, since no
        // view of it outlives `with_bytes`/`with_bytes_mut`; bytes have no validity invariant.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(offset), data.len())
        }
    }

    #[inline]
    fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        self.check(offset, 4);
        assert!(
            offset.is_multiple_of(4),
            "unaligned dword access at {offset:#x}"
        );
        // SAFETY: in bounds and 4-byte aligned (the memory is page aligned); AtomicU32 has the size
        // and alignment of u32 and every bit pattern is valid. The reference lives as long as
        // `&self`, and the owner keeps the memory alive at least that long.
        unsafe { &*(self.ptr.as_ptr().add(offset) as *const AtomicU32) }
    }

    #[inline]
    fn atomic_u64(&self, offset: usize) -> &AtomicU64 {
        self.check(offset, 8);
        assert!(
            offset.is_multiple_of(8),
            "unaligned qword access at {offset:#x}"
        );
        // SAFETY: as `atomic_u32`, with 8-byte size and alignment.
        unsafe { &*(self.ptr.as_ptr().add(offset) as *const AtomicU64) }
    }

    /// Stores a little-endian dword with release ordering.
    #[inline]
    pub(crate) fn store_u32(&self, offset: usize, value: u32) {
        self.atomic_u32(offset)
            .store(value.to_le(), Ordering::Release)
    }
}

/// The memory of a region: freed when the last reference (host handle or bus table) goes.
pub(crate) struct Region {
    pub(crate) mem: RawMem,
    backing: Backing,
}

impl Drop for Region {
    fn drop(&mut self) {
        match &self.backing {
            // SAFETY: `ptr` came from `alloc_zeroed` with exactly this layout, and this is the only
            // deallocation: the region is dropped once, when no handle and no bus table holds it.
            Backing::Heap(layout) => unsafe { std::alloc::dealloc(self.mem.ptr.as_ptr(), *layout) },
            Backing::Mmap(len) => {
                // SAFETY: `ptr`/`len` are exactly what `mmap` returned; nothing refers to it any more.
                unsafe { libc::munmap(self.mem.ptr.as_ptr().cast(), *len) };
            }
            Backing::Pool(pool) => pool.free(self.mem.ptr, self.mem.len),
        }
    }
}

/// The host's handle of a mapped region: unmaps it from the devices when dropped.
struct Handle {
    mem: RawMem,
    iova: u64,
    region: Arc<Region>,
    unmap: Option<Arc<dyn DmaUnmap>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(u) = self.unmap.take() {
            u.unmap(self.iova, self.mem.len);
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
    h: Arc<Handle>,
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
    fn from_parts(
        ptr: NonNull<u8>,
        len: usize,
        iova: u64,
        backing: Backing,
        unmap: Option<Arc<dyn DmaUnmap>>,
    ) -> DmaMemory {
        let mem = RawMem { ptr, len };
        let region = Arc::new(Region { mem, backing });
        DmaMemory {
            h: Arc::new(Handle {
                mem,
                iova,
                region,
                unmap,
            }),
        }
    }

    /// Zeroed heap memory with `align`-byte alignment (a power of two, at least 4096); `iova` and
    /// `unmap` are filled in by [`DmaMemory::set_mapping`] once the backend has mapped it.
    pub(crate) fn alloc_heap(len: usize, align: usize) -> Option<DmaMemory> {
        let len = len.max(1).next_multiple_of(4096);
        let layout = Layout::from_size_align(len, align.max(4096)).ok()?;
        // SAFETY: `layout` has a non-zero size (at least 4096).
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        Some(Self::from_parts(ptr, len, 0, Backing::Heap(layout), None))
    }

    /// A piece of `pool`'s memory, given back to it when the region is freed.
    pub(crate) fn from_pool(
        ptr: NonNull<u8>,
        len: usize,
        iova: u64,
        pool: Arc<dyn DmaFree>,
        unmap: Option<Arc<dyn DmaUnmap>>,
    ) -> DmaMemory {
        Self::from_parts(ptr, len, iova, Backing::Pool(pool), unmap)
    }

    /// Memory from an `mmap` the caller made: `ptr`/`len` are given back to `munmap` when the
    /// region is freed.
    pub(crate) fn from_mmap(
        ptr: NonNull<u8>,
        len: usize,
        iova: u64,
        unmap: Option<Arc<dyn DmaUnmap>>,
    ) -> DmaMemory {
        Self::from_parts(ptr, len, iova, Backing::Mmap(len), unmap)
    }

    /// Records the bus address and the unmapper; only while the handle is not shared yet.
    pub(crate) fn set_mapping(&mut self, iova: u64, unmap: Arc<dyn DmaUnmap>) {
        let h = Arc::get_mut(&mut self.h).expect("mapping is set before the memory is shared");
        h.iova = iova;
        h.unmap = Some(unmap);
    }

    /// The region, for a bus table that must keep the memory alive while it is mapped.
    pub(crate) fn region(&self) -> Arc<Region> {
        self.h.region.clone()
    }

    /// Length in bytes (a multiple of 4096).
    pub fn len(&self) -> usize {
        self.h.mem.len
    }

    /// Always false: a region has at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bus address (IOVA) of byte 0, as the device must be given it.
    pub fn iova(&self) -> u64 {
        self.h.iova
    }

    /// The host virtual address of byte 0 (for logs and for backends that map it).
    pub fn host_addr(&self) -> usize {
        self.h.mem.ptr.as_ptr() as usize
    }

    /// Whether two handles share the same memory.
    pub fn same_region(&self, other: &DmaMemory) -> bool {
        Arc::ptr_eq(&self.h.region, &other.h.region)
    }

    /// Copies `buf.len()` bytes out of the region at `offset`.
    #[inline]
    pub fn read(&self, offset: usize, buf: &mut [u8]) {
        self.h.mem.read(offset, buf)
    }

    /// Copies `data` into the region at `offset`.
    #[inline]
    pub fn write(&self, offset: usize, data: &[u8]) {
        self.h.mem.write(offset, data)
    }

    /// Fills `len` bytes at `offset` with `byte`.
    pub fn fill(&self, offset: usize, len: usize, byte: u8) {
        self.h.mem.check(offset, len);
        // SAFETY: in bounds (checked) and alive (we hold the handle); see `RawMem::read` for sharing.
        unsafe { std::ptr::write_bytes(self.h.mem.ptr.as_ptr().add(offset), byte, len) }
    }

    /// Runs `f` on a shared view of `len` bytes at `offset`.
    ///
    /// For memory whose commands have completed (data to check, a CQE already seen by its phase
    /// tag): the device has no reason to write it. A device that does anyway only makes `f` see
    /// torn bytes, exactly as the CPU would on hardware.
    #[inline]
    pub fn with_bytes<R>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        self.h.mem.check(offset, len);
        // SAFETY: in bounds (checked), the region outlives the call (we hold the handle), and the
        // view does not escape `f`. Concurrent device writes are the DMA case described at `read`.
        let s = unsafe { std::slice::from_raw_parts(self.h.mem.ptr.as_ptr().add(offset), len) };
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
        self.h.mem.check(offset, len);
        // SAFETY: in bounds (checked) and the view does not escape `f`. The host API is single
        // writer per region by contract (a region is written by the host only while no command
        // uses it); another concurrent host view of the same bytes can only come from a
        // `with_bytes` on another thread, which sees torn data at worst (DMA case, see `read`).
        let s = unsafe { std::slice::from_raw_parts_mut(self.h.mem.ptr.as_ptr().add(offset), len) };
        f(s)
    }

    /// Reads a little-endian dword with acquire ordering: what the device wrote before it is visible
    /// after it (the CQE phase tag, an MSI-X message).
    #[inline]
    pub fn load_u32(&self, offset: usize) -> u32 {
        u32::from_le(self.h.mem.atomic_u32(offset).load(Ordering::Acquire))
    }

    /// Writes a little-endian dword with release ordering.
    #[inline]
    pub fn store_u32(&self, offset: usize, value: u32) {
        self.h.mem.store_u32(offset, value)
    }

    /// Reads a little-endian qword with acquire ordering.
    #[inline]
    pub fn load_u64(&self, offset: usize) -> u64 {
        u64::from_le(self.h.mem.atomic_u64(offset).load(Ordering::Acquire))
    }

    /// Writes a little-endian qword with release ordering.
    #[inline]
    pub fn store_u64(&self, offset: usize, value: u64) {
        self.h
            .mem
            .atomic_u64(offset)
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
