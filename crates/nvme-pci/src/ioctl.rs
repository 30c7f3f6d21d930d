//! Every `ioctl` and `mmap` of the crate, with the kernel structures they take.
//!
//! Trust: these wrappers trust the Linux kernel's VFIO and mm interfaces to behave as documented
//! in `include/uapi/linux/vfio.h` and `mmap(2)`: the kernel reads and writes no more than the
//! `argsz` we pass, returns file descriptors we then own, and keeps a mapping valid until we
//! `munmap` it. Each structure below is laid out exactly as its C counterpart (`#[repr(C)]`,
//! sizes checked by tests), and every call passes a pointer to a live value of the right type.
//! The rest of the crate builds safe types on top of these functions; nothing else calls
//! `libc::ioctl` or `libc::mmap`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

const VFIO_TYPE: u64 = b';' as u64;
const VFIO_BASE: u64 = 100;

/// `_IO(VFIO_TYPE, VFIO_BASE + n)`: VFIO's ioctls carry their size in `argsz`, not the number.
const fn vfio_io(n: u64) -> u64 {
    (VFIO_TYPE << 8) | (VFIO_BASE + n)
}

pub(crate) const VFIO_GET_API_VERSION: u64 = vfio_io(0);
pub(crate) const VFIO_CHECK_EXTENSION: u64 = vfio_io(1);
pub(crate) const VFIO_SET_IOMMU: u64 = vfio_io(2);
pub(crate) const VFIO_GROUP_GET_STATUS: u64 = vfio_io(3);
pub(crate) const VFIO_GROUP_SET_CONTAINER: u64 = vfio_io(4);
pub(crate) const VFIO_GROUP_GET_DEVICE_FD: u64 = vfio_io(6);
pub(crate) const VFIO_DEVICE_GET_REGION_INFO: u64 = vfio_io(8);
pub(crate) const VFIO_DEVICE_SET_IRQS: u64 = vfio_io(10);
pub(crate) const VFIO_DEVICE_RESET: u64 = vfio_io(11);
pub(crate) const VFIO_DEVICE_PCI_HOT_RESET: u64 = vfio_io(13);
pub(crate) const VFIO_IOMMU_MAP_DMA: u64 = vfio_io(13);
pub(crate) const VFIO_IOMMU_UNMAP_DMA: u64 = vfio_io(14);

/// The only VFIO API version there is.
pub(crate) const VFIO_API_VERSION: i32 = 0;
pub(crate) const VFIO_TYPE1_IOMMU: u64 = 1;
pub(crate) const VFIO_TYPE1V2_IOMMU: u64 = 3;
pub(crate) const VFIO_GROUP_FLAGS_VIABLE: u32 = 1;
pub(crate) const VFIO_REGION_INFO_FLAG_MMAP: u32 = 1 << 2;
pub(crate) const VFIO_PCI_CONFIG_REGION_INDEX: u32 = 7;
pub(crate) const VFIO_PCI_MSIX_IRQ_INDEX: u32 = 2;
pub(crate) const VFIO_IRQ_SET_DATA_NONE: u32 = 1;
pub(crate) const VFIO_IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
pub(crate) const VFIO_IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;
pub(crate) const VFIO_DMA_MAP_FLAG_READ: u32 = 1;
pub(crate) const VFIO_DMA_MAP_FLAG_WRITE: u32 = 2;

/// `struct vfio_group_status`.
#[repr(C)]
#[derive(Default)]
pub(crate) struct GroupStatus {
    pub argsz: u32,
    pub flags: u32,
}

/// `struct vfio_region_info` (without the capability chain, which we do not ask for).
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub(crate) struct RegionInfo {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    pub cap_offset: u32,
    pub size: u64,
    pub offset: u64,
}

/// `struct vfio_iommu_type1_dma_map`.
#[repr(C)]
pub(crate) struct DmaMap {
    pub argsz: u32,
    pub flags: u32,
    pub vaddr: u64,
    pub iova: u64,
    pub size: u64,
}

/// `struct vfio_iommu_type1_dma_unmap`.
#[repr(C)]
pub(crate) struct DmaUnmapArg {
    pub argsz: u32,
    pub flags: u32,
    pub iova: u64,
    pub size: u64,
}

/// The fixed head of `struct vfio_irq_set`; `data[]` follows it in the same buffer.
#[repr(C)]
pub(crate) struct IrqSetHead {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    pub start: u32,
    pub count: u32,
}

/// The fixed head of `struct vfio_pci_hot_reset`; `group_fds[]` follows it.
#[repr(C)]
pub(crate) struct HotResetHead {
    pub argsz: u32,
    pub flags: u32,
    pub count: u32,
}

fn check(ret: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if ret < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(ret)
    }
}

/// An ioctl whose argument is an integer (or nothing).
pub(crate) fn ioctl_val(fd: BorrowedFd<'_>, req: u64, arg: libc::c_ulong) -> io::Result<i32> {
    // SAFETY: the requests used with this function (GET_API_VERSION, CHECK_EXTENSION,
    // SET_IOMMU, DEVICE_RESET) take an integer or nothing, never a pointer; `fd` is open.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg) };
    check(r, "ioctl")
}

/// An ioctl that reads and/or writes one `T` in place.
///
/// # Safety
/// `req` must be a request whose argument is a `T` (for VFIO: `argsz` is set to at most
/// `size_of::<T>()` by the caller, so the kernel stays inside `*arg`).
pub(crate) unsafe fn ioctl_ref<T>(fd: BorrowedFd<'_>, req: u64, arg: &mut T) -> io::Result<i32> {
    // SAFETY: `arg` is a live, exclusive `T`; the caller guarantees `req` takes a `T`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg as *mut T) };
    check(r, "ioctl")
}

/// An ioctl whose argument is a byte buffer holding a variable-length structure.
///
/// # Safety
/// `req` must take a structure whose `argsz` (first field) is `buf.len()` or less.
pub(crate) unsafe fn ioctl_buf(fd: BorrowedFd<'_>, req: u64, buf: &mut [u8]) -> io::Result<i32> {
    // SAFETY: `buf` is live and writable for its whole length, which bounds `argsz`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, buf.as_mut_ptr()) };
    check(r, "ioctl")
}

/// `VFIO_GROUP_SET_CONTAINER`: the argument is a pointer to the container's fd.
pub(crate) fn group_set_container(
    group: BorrowedFd<'_>,
    container: BorrowedFd<'_>,
) -> io::Result<()> {
    let mut fd: RawFd = container.as_raw_fd();
    // SAFETY: the request takes a pointer to an `int` holding a file descriptor.
    unsafe { ioctl_ref(group, VFIO_GROUP_SET_CONTAINER, &mut fd) }.map(|_| ())
}

/// `VFIO_GROUP_GET_DEVICE_FD`: returns a new fd for the named device, which we own.
pub(crate) fn group_get_device_fd(group: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    let c =
        std::ffi::CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: the request takes a NUL-terminated device name, which `c` is, alive for the call.
    let r = unsafe { libc::ioctl(group.as_raw_fd(), VFIO_GROUP_GET_DEVICE_FD as _, c.as_ptr()) };
    let fd = check(r, "VFIO_GROUP_GET_DEVICE_FD")?;
    // SAFETY: on success the kernel returns a new descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A new non-blocking eventfd.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = check(
        unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) },
        "eventfd",
    )?;
    // SAFETY: a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads (and so resets) a non-blocking eventfd's counter; 0 if nothing was signalled.
pub(crate) fn eventfd_take(fd: BorrowedFd<'_>) -> u64 {
    let mut v = 0u64;
    // SAFETY: reads 8 bytes into a live u64, the size an eventfd read requires.
    let n = unsafe { libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    if n == 8 {
        v
    } else {
        0
    }
}

/// A shared mapping of `len` bytes of `fd` at `offset`, read-write.
pub(crate) fn mmap_shared(fd: BorrowedFd<'_>, len: usize, offset: u64) -> io::Result<NonNull<u8>> {
    // SAFETY: a new mapping chosen by the kernel (addr null); it aliases nothing in Rust.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// A memory file of one hugepage of the default size (`memfd_create` with `MFD_HUGETLB`): a
/// hugepage that can be mapped, and mapped again elsewhere, by its fd.
pub(crate) fn memfd_hugepage(len: usize) -> io::Result<OwnedFd> {
    let name = c"pynvme-dma";
    // SAFETY: a NUL-terminated name and flags; returns a new descriptor or -1.
    let fd = check(
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_HUGETLB | libc::MFD_CLOEXEC) },
        "memfd_create(MFD_HUGETLB)",
    )?;
    // SAFETY: a new descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: plain syscall on the descriptor we own.
    let r = unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) };
    check(r, "ftruncate")?;
    Ok(fd)
}

/// Reserves `len` bytes of address space (no access, no memory) for mappings placed with
/// [`mmap_fixed_shared`].
pub(crate) fn mmap_reserve(len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a new inaccessible anonymous mapping chosen by the kernel; it aliases nothing.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// Maps `len` bytes of `fd` read-write and populated at exactly `addr`.
///
/// # Safety
/// `[addr, addr + len)` must lie inside a reservation made by [`mmap_reserve`] that the caller
/// owns and that nothing else uses: `MAP_FIXED` replaces whatever is mapped there.
pub(crate) unsafe fn mmap_fixed_shared(
    addr: NonNull<u8>,
    len: usize,
    fd: BorrowedFd<'_>,
) -> io::Result<()> {
    // SAFETY: guaranteed by the caller (the range is ours to replace).
    unsafe { mmap_fixed(addr, len, fd, 0, libc::MAP_POPULATE) }
}

/// Maps `len` bytes of `fd` at `offset` read-write at exactly `addr` (a device region again at
/// the address it had, after [`mmap_fixed_anonymous`] held its place).
///
/// # Safety
/// `[addr, addr + len)` must be a mapping the caller owns and that no Rust reference points
/// into: `MAP_FIXED` replaces whatever is mapped there.
pub(crate) unsafe fn mmap_fixed_file(
    addr: NonNull<u8>,
    len: usize,
    fd: BorrowedFd<'_>,
    offset: u64,
) -> io::Result<()> {
    // SAFETY: guaranteed by the caller (the range is ours to replace).
    unsafe { mmap_fixed(addr, len, fd, offset, 0) }
}

/// Maps `len` bytes of `fd` at `offset`, shared and read-write, at exactly `addr`, with
/// `flags` added to `MAP_SHARED | MAP_FIXED`.
///
/// # Safety
/// As [`mmap_fixed_file`].
unsafe fn mmap_fixed(
    addr: NonNull<u8>,
    len: usize,
    fd: BorrowedFd<'_>,
    offset: u64,
    flags: libc::c_int,
) -> io::Result<()> {
    // SAFETY: guaranteed by the caller (the range is ours to replace).
    let p = unsafe {
        libc::mmap(
            addr.as_ptr().cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_FIXED | flags,
            fd.as_raw_fd(),
            offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Replaces the mapping at `[addr, addr + len)` by zeroed private memory: the address range
/// stays valid (reads give zeroes, writes go nowhere) while the file mapped there is let go.
///
/// # Safety
/// As [`mmap_fixed_file`].
pub(crate) unsafe fn mmap_fixed_anonymous(addr: NonNull<u8>, len: usize) -> io::Result<()> {
    // SAFETY: guaranteed by the caller (the range is ours to replace).
    let p = unsafe {
        libc::mmap(
            addr.as_ptr().cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the descriptor number of `target` refer to what `with` refers to (`dup3`): the open
/// file `target` referred to is closed, and whoever owns `target` keeps a valid descriptor.
pub(crate) fn replace_fd(target: BorrowedFd<'_>, with: BorrowedFd<'_>) -> io::Result<()> {
    if target.as_raw_fd() == with.as_raw_fd() {
        return Ok(());
    }
    // SAFETY: plain syscall on two descriptors that are open (borrowed); `target` keeps its
    // owner, now pointing at a duplicate of `with`.
    let r = unsafe { libc::dup3(with.as_raw_fd(), target.as_raw_fd(), libc::O_CLOEXEC) };
    check(r, "dup3").map(|_| ())
}

/// Gives back a mapping made by one of the functions above.
///
/// # Safety
/// `ptr`/`len` must be exactly a mapping made here, no longer used by anyone.
pub(crate) unsafe fn munmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_fd_keeps_the_number_and_switches_the_file() {
        use std::io::Read;
        let dir = crate::sysfs::tests::tempdir::TempDir::new();
        std::fs::write(dir.path().join("a"), b"a").unwrap();
        std::fs::write(dir.path().join("b"), b"b").unwrap();
        let a = OwnedFd::from(std::fs::File::open(dir.path().join("a")).unwrap());
        let b = std::fs::File::open(dir.path().join("b")).unwrap();
        let n = a.as_raw_fd();
        replace_fd(a.as_fd(), b.as_fd()).unwrap();
        assert_eq!(a.as_raw_fd(), n);
        let mut s = String::new();
        std::fs::File::from(a).read_to_string(&mut s).unwrap();
        assert_eq!(s, "b");
    }

    #[test]
    fn structures_have_the_kernel_sizes() {
        assert_eq!(std::mem::size_of::<GroupStatus>(), 8);
        assert_eq!(std::mem::size_of::<RegionInfo>(), 32);
        assert_eq!(std::mem::size_of::<DmaMap>(), 32);
        assert_eq!(std::mem::size_of::<DmaUnmapArg>(), 24);
        assert_eq!(std::mem::size_of::<IrqSetHead>(), 20);
        assert_eq!(std::mem::size_of::<HotResetHead>(), 12);
    }

    #[test]
    fn request_numbers_match_linux() {
        // From include/uapi/linux/vfio.h on x86_64.
        assert_eq!(VFIO_GET_API_VERSION, 0x3b64);
        assert_eq!(VFIO_GROUP_GET_DEVICE_FD, 0x3b6a);
        assert_eq!(VFIO_DEVICE_SET_IRQS, 0x3b6e);
        assert_eq!(VFIO_IOMMU_MAP_DMA, 0x3b71);
    }

    #[test]
    fn eventfd_counts() {
        let fd = eventfd().unwrap();
        assert_eq!(eventfd_take(fd.as_fd()), 0);
        let one = 1u64;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we own.
        let n = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        assert_eq!(n, 8);
        assert_eq!(eventfd_take(fd.as_fd()), 1);
        assert_eq!(eventfd_take(fd.as_fd()), 0);
    }

    use std::os::fd::AsFd;
}
