//! A BAR mapped into this process: volatile 32/64-bit loads and stores.

use crate::ioctl;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;
use std::sync::atomic::{fence, Ordering};

/// One memory BAR mapped with `mmap` (sysfs `resourceN` or a VFIO region).
pub(crate) struct Mmio {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is device memory owned by this struct; every access is a volatile load or
// store of a naturally aligned dword or qword, which the device serialises, so concurrent use from
// several threads is as sound as on the bus itself.
unsafe impl Send for Mmio {}
// SAFETY: see `Send`.
unsafe impl Sync for Mmio {}

impl Mmio {
    /// Maps `len` bytes of `fd` at `offset`.
    pub(crate) fn map(fd: BorrowedFd<'_>, len: usize, offset: u64) -> std::io::Result<Mmio> {
        let ptr = ioctl::mmap_shared(fd, len, offset)?;
        Ok(Mmio { ptr, len })
    }

    /// Lets go of the file mapped here: the range becomes zeroed private memory, so accesses
    /// racing with the release stay harmless, and the device's file is no longer referenced by
    /// the mapping (vfio-pci waits for that before it lets a device go).
    pub(crate) fn detach(&self) -> std::io::Result<()> {
        // SAFETY: exactly this struct's mapping; only volatile accesses through raw pointers
        // ever point into it, and they stay valid over the replacement.
        unsafe { ioctl::mmap_fixed_anonymous(self.ptr, self.len) }
    }

    /// Maps `len()` bytes of `fd` at `offset` where this mapping is (after [`Mmio::detach`],
    /// once the device is back).
    pub(crate) fn reattach(&self, fd: BorrowedFd<'_>, offset: u64) -> std::io::Result<()> {
        // SAFETY: as in `detach`.
        unsafe { ioctl::mmap_fixed_file(self.ptr, self.len, fd, offset) }
    }

    /// Size of the mapping.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn at<T>(&self, offset: u64) -> Option<*mut T> {
        let size = std::mem::size_of::<T>() as u64;
        (offset.is_multiple_of(size) && offset + size <= self.len as u64)
            // SAFETY: in bounds of the mapping (checked just above).
            .then(|| unsafe { self.ptr.as_ptr().add(offset as usize) }.cast())
    }

    /// 32-bit load; all ones outside the BAR or unaligned, as a master abort reads.
    pub(crate) fn read32(&self, offset: u64) -> u32 {
        match self.at::<u32>(offset) {
            // SAFETY: in bounds and aligned (checked by `at`); the mapping lives as long as `self`.
            Some(p) => u32::from_le(unsafe { p.read_volatile() }),
            None => u32::MAX,
        }
    }

    /// 32-bit store, ordered after every earlier store to DMA memory (SQ entries before a doorbell).
    pub(crate) fn write32(&self, offset: u64, value: u32) {
        if let Some(p) = self.at::<u32>(offset) {
            fence(Ordering::SeqCst);
            // SAFETY: in bounds and aligned (checked by `at`); the mapping lives as long as `self`.
            unsafe { p.write_volatile(value.to_le()) }
        }
    }

    /// 64-bit load.
    pub(crate) fn read64(&self, offset: u64) -> u64 {
        match self.at::<u64>(offset) {
            // SAFETY: in bounds and aligned (checked by `at`).
            Some(p) => u64::from_le(unsafe { p.read_volatile() }),
            None => u64::MAX,
        }
    }

    /// 64-bit store.
    pub(crate) fn write64(&self, offset: u64, value: u64) {
        if let Some(p) = self.at::<u64>(offset) {
            fence(Ordering::SeqCst);
            // SAFETY: in bounds and aligned (checked by `at`).
            unsafe { p.write_volatile(value.to_le()) }
        }
    }
}

impl Drop for Mmio {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `map`, unused after this.
        unsafe { ioctl::munmap(self.ptr, self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sysfs::tests::tempdir::TempDir;
    use std::os::fd::AsFd;

    fn file_of(dir: &TempDir, name: &str, word: u32) -> std::fs::File {
        let path = dir.path().join(name);
        std::fs::write(&path, word.to_le_bytes().repeat(1024)).unwrap();
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap()
    }

    #[test]
    fn a_detached_mapping_reads_zeroes_and_reattaches_at_the_same_address() {
        let dir = TempDir::new();
        let first = file_of(&dir, "first", 0x1111_1111);
        let m = Mmio::map(first.as_fd(), 4096, 0).unwrap();
        let at = m.ptr;
        assert_eq!(m.read32(8), 0x1111_1111);
        m.detach().unwrap();
        drop(first);
        assert_eq!(m.read32(8), 0, "the file is no longer mapped");
        m.write32(8, 7);
        let second = file_of(&dir, "second", 0x2222_2222);
        m.reattach(second.as_fd(), 0).unwrap();
        assert_eq!(m.ptr, at);
        assert_eq!(
            m.read32(8),
            0x2222_2222,
            "the new file is mapped where the old one was"
        );
        m.write32(12, 0xabcd);
        drop(m);
        let mut b = [0u8; 4];
        std::os::unix::fs::FileExt::read_at(&second, &mut b, 12).unwrap();
        assert_eq!(u32::from_le_bytes(b), 0xabcd, "writes reach the new file");
    }
}
