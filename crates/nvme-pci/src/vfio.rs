//! The vfio backend: a function bound to `vfio-pci`, behind an IOMMU.
//!
//! VFIO hands a process three file descriptors: a *container* (an IOMMU address space, where
//! [`crate::domain`] maps the DMA memory), a *group* (the functions the IOMMU cannot tell apart,
//! all of which must be bound to vfio-pci) and the *device* (config space and BARs as regions of
//! its fd, interrupts as eventfds, resets). vfio-pci keeps the MSI-X table for itself, so the
//! software interrupt scheme of [`crate::msix::SoftMsix`] cannot be used: [`VfioMsix`] gets one
//! eventfd per vector through `VFIO_DEVICE_SET_IRQS` and offers the same [`Interrupts`] view.

use crate::domain::{self, IommuMapper};
use crate::ioctl::{self, *};
use crate::mmio::Mmio;
use crate::sysfs::{check_range, Sysfs};
use crate::{Interrupts, PciError, PciFunction};
use parking_lot::Mutex;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn os(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> PciError {
    let op = op.into();
    move |source| PciError::Os { op, source }
}

/// A VFIO container: one IOMMU address space.
pub(crate) struct Container {
    fd: OwnedFd,
    /// `Some` while the function is let go for a power cycle ([`VfioFunction::release`]): the
    /// container may have lost its IOMMU with the function (a removed function's group leaves
    /// it), so a region allocated then that the IOMMU refuses waits here, by IOVA, until the
    /// function is back ([`VfioFunction::reacquire`] maps it). A script may create buffers while
    /// the device is powered off.
    deferred: Mutex<Option<std::collections::BTreeMap<u64, (usize, usize)>>>,
}

impl Container {
    fn new(fd: OwnedFd) -> Container {
        Container {
            fd,
            deferred: Mutex::new(None),
        }
    }

    /// From now on a region the IOMMU refuses is kept for [`Container::resume`].
    fn defer(&self) {
        self.deferred.lock().get_or_insert_with(Default::default);
    }

    /// Ends [`Container::defer`]: a region the IOMMU refuses is an error again. Returns the
    /// regions kept since, which the caller maps (or drops, when it maps every live region).
    fn resume(&self) -> std::collections::BTreeMap<u64, (usize, usize)> {
        self.deferred.lock().take().unwrap_or_default()
    }

    fn map_now(&self, vaddr: usize, iova: u64, len: usize) -> Result<(), PciError> {
        let mut m = DmaMap {
            argsz: std::mem::size_of::<DmaMap>() as u32,
            flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
            vaddr: vaddr as u64,
            iova,
            size: len as u64,
        };
        // SAFETY: VFIO_IOMMU_MAP_DMA takes a `vfio_iommu_type1_dma_map`, which `m` is.
        unsafe { ioctl_ref(self.fd.as_fd(), VFIO_IOMMU_MAP_DMA, &mut m) }
            .map(|_| ())
            .map_err(|source| PciError::DmaAlloc {
                len,
                reason: format!(
                    "VFIO_IOMMU_MAP_DMA at IOVA {iova:#x}: {source} (bus addresses start at \
                     768 GiB: an IOMMU with less than 40 address bits cannot map them, use uio)"
                ),
            })
    }
}

impl IommuMapper for Container {
    fn map(&self, vaddr: usize, iova: u64, len: usize) -> Result<(), PciError> {
        let mut deferred = self.deferred.lock();
        match self.map_now(vaddr, iova, len) {
            Err(_) if deferred.is_some() => {
                deferred
                    .get_or_insert_with(Default::default)
                    .insert(iova, (vaddr, len));
                Ok(())
            }
            r => r,
        }
    }

    fn unmap(&self, iova: u64, len: usize) {
        if let Some(d) = self.deferred.lock().as_mut() {
            d.remove(&iova);
        }
        let mut u = DmaUnmapArg {
            argsz: std::mem::size_of::<DmaUnmapArg>() as u32,
            flags: 0,
            iova,
            size: len as u64,
        };
        // SAFETY: VFIO_IOMMU_UNMAP_DMA takes a `vfio_iommu_type1_dma_unmap`, which `u` is. A range
        // that was never mapped unmaps nothing, which is fine.
        let _ = unsafe { ioctl_ref(self.fd.as_fd(), VFIO_IOMMU_UNMAP_DMA, &mut u) };
    }
}

/// A function bound to vfio-pci.
pub struct VfioFunction {
    addr: String,
    sys: Sysfs,
    /// The device's fd. Its number never changes: a power cycle that lets the device go points
    /// it at /dev/null, then at the device found again (see [`VfioFunction::release`]).
    device: OwnedFd,
    /// The group's fd (number fixed as the device's).
    group: OwnedFd,
    /// The IOMMU group the function is in now (it changes when the function is removed and
    /// added again).
    group_id: Mutex<String>,
    /// A second descriptor of the container, to attach a new group to.
    container_fd: OwnedFd,
    container: Arc<Container>,
    config_offset: u64,
    bars: [Option<Bar>; 6],
    /// Offset of the PCI Power Management capability in config space (0: none).
    pm_cap: u16,
    /// The BARs do not decode now (memory space disabled in the command register, or a power
    /// state other than D0): vfio-pci has unmapped them, so touching the mapping would kill the
    /// process with SIGBUS. Reads then return all ones and writes are dropped, as a function
    /// answers memory requests it does not decode (Unsupported Request).
    bars_off: std::sync::atomic::AtomicBool,
    /// Offset of the MSI-X capability in config space (0: none).
    msix_cap: u16,
    /// The MSI-X Function Mask (Message Control bit 14) as the host last wrote it. vfio-pci
    /// owns the function's MSI-X setup and does not let user space mask it, so the mask is
    /// emulated in [`VfioMsix`] like a vector's mask: no vector reads as signalled while it is
    /// set, and messages stay pending in the eventfds until it is cleared.
    function_mask: std::sync::atomic::AtomicBool,
    /// The power switch (and the header saved across it).
    power: crate::power::SwitchedPower,
}

/// A BAR: mapped if vfio allows, else read and written through the device fd.
struct Bar {
    size: u64,
    offset: u64,
    mmio: Option<Mmio>,
}

impl VfioFunction {
    /// Opens `bdf` (canonical form), which must be bound to vfio-pci.
    ///
    /// A VFIO group can be open only once, so while the function is open in this process (a
    /// script's `Pcie` not collected yet, say) opening it again returns the same function.
    pub fn open(sys: &Sysfs, bdf: &str) -> Result<Arc<VfioFunction>, PciError> {
        static OPEN: Mutex<Vec<(String, std::sync::Weak<VfioFunction>)>> = Mutex::new(Vec::new());
        let mut open = OPEN.lock();
        open.retain(|(_, w)| w.strong_count() > 0);
        if let Some(f) = open
            .iter()
            .find(|(a, _)| a == bdf)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(f);
        }
        let f = Self::open_new(sys, bdf)?;
        open.push((bdf.to_string(), Arc::downgrade(&f)));
        Ok(f)
    }

    fn open_new(sys: &Sysfs, bdf: &str) -> Result<Arc<VfioFunction>, PciError> {
        let fail = |reason: String| PciError::Open {
            addr: bdf.to_string(),
            reason,
        };
        let group_id = sys.iommu_group(bdf).ok_or_else(|| {
            fail(
                "it is in no IOMMU group: the IOMMU is off (intel_iommu=on / amd_iommu=on on \
                  the kernel command line), or use uio_pci_generic (`pynvme setup`)"
                    .into(),
            )
        })?;
        let open_rw = |p: &str| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .map(OwnedFd::from)
        };
        let container = open_rw("/dev/vfio/vfio")
            .map_err(|e| fail(format!("/dev/vfio/vfio: {e} (is vfio-pci loaded? root?)")))?;
        let version = ioctl_val(container.as_fd(), VFIO_GET_API_VERSION, 0)
            .map_err(os("VFIO_GET_API_VERSION"))?;
        if version != VFIO_API_VERSION {
            return Err(fail(format!("unknown VFIO API version {version}")));
        }
        let iommu = [VFIO_TYPE1V2_IOMMU, VFIO_TYPE1_IOMMU]
            .into_iter()
            .find(|t| ioctl_val(container.as_fd(), VFIO_CHECK_EXTENSION, *t as _).unwrap_or(0) > 0)
            .ok_or_else(|| fail("the kernel offers no type1 IOMMU to VFIO".into()))?;
        let gpath = format!("/dev/vfio/{group_id}");
        let group = open_rw(&gpath).map_err(|e| {
            fail(match e.raw_os_error() {
                Some(libc::EBUSY) => format!("{gpath} is in use by another process"),
                _ => format!("{gpath}: {e}"),
            })
        })?;
        let mut status = GroupStatus { argsz: 8, flags: 0 };
        // SAFETY: VFIO_GROUP_GET_STATUS takes a `vfio_group_status`, which `status` is.
        unsafe { ioctl_ref(group.as_fd(), VFIO_GROUP_GET_STATUS, &mut status) }
            .map_err(os("VFIO_GROUP_GET_STATUS"))?;
        if status.flags & VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(fail(format!(
                "IOMMU group {group_id} is not viable: every function in \
                 /sys/kernel/iommu_groups/{group_id}/devices must be bound to vfio-pci or to no driver"
            )));
        }
        ioctl::group_set_container(group.as_fd(), container.as_fd())
            .map_err(os("VFIO_GROUP_SET_CONTAINER"))?;
        ioctl_val(container.as_fd(), VFIO_SET_IOMMU, iommu as _).map_err(os("VFIO_SET_IOMMU"))?;
        let device = ioctl::group_get_device_fd(group.as_fd(), bdf)
            .map_err(os("VFIO_GROUP_GET_DEVICE_FD"))?;
        let region = |index: u32| -> Result<RegionInfo, PciError> {
            let mut r = RegionInfo {
                argsz: std::mem::size_of::<RegionInfo>() as u32,
                index,
                ..Default::default()
            };
            // SAFETY: VFIO_DEVICE_GET_REGION_INFO takes a `vfio_region_info`; argsz bounds the write.
            unsafe { ioctl_ref(device.as_fd(), VFIO_DEVICE_GET_REGION_INFO, &mut r) }
                .map_err(os(format!("VFIO_DEVICE_GET_REGION_INFO {index}")))?;
            Ok(r)
        };
        let config_offset = region(VFIO_PCI_CONFIG_REGION_INDEX)?.offset;
        let mut bars: [Option<Bar>; 6] = Default::default();
        for (i, slot) in bars.iter_mut().enumerate() {
            let Ok(r) = region(i as u32) else { continue };
            if r.size == 0 {
                continue;
            }
            let mmio = (r.flags & VFIO_REGION_INFO_FLAG_MMAP != 0)
                .then(|| Mmio::map(device.as_fd(), r.size as usize, r.offset).ok())
                .flatten();
            *slot = Some(Bar {
                size: r.size,
                offset: r.offset,
                mmio,
            });
        }
        if bars[0].is_none() {
            return Err(fail("BAR0 is not available through VFIO".into()));
        }
        let container_fd = container
            .try_clone()
            .map_err(os("dup of the VFIO container"))?;
        let container = Arc::new(Container::new(container));
        domain::add_mapper(&(container.clone() as Arc<dyn IommuMapper>))?;
        let f = VfioFunction {
            addr: bdf.to_string(),
            sys: sys.clone(),
            device,
            group,
            group_id: Mutex::new(group_id),
            container_fd,
            container,
            config_offset,
            bars,
            pm_cap: 0,
            bars_off: std::sync::atomic::AtomicBool::new(false),
            msix_cap: 0,
            function_mask: std::sync::atomic::AtomicBool::new(false),
            power: Default::default(),
        };
        let mut f = f;
        f.pm_cap = f.find_capability(0x01);
        f.msix_cap = f.find_capability(nvme_spec::pci::cap_id::MSIX);
        let cmd = f.config_read16(0x04)?;
        f.config_write16(0x04, cmd | 0x6)?;
        Ok(Arc::new(f))
    }

    /// Offset of the first capability with id `id` in the capability list (0: none).
    fn find_capability(&self, id: u8) -> u16 {
        let mut at = self.config_read8(0x34).unwrap_or(0) as u16 & 0xfc;
        for _ in 0..48 {
            if at < 0x40 {
                return 0;
            }
            match self.config_read16(at) {
                Ok(v) if v as u8 == id => return at,
                Ok(v) => at = (v >> 8) & 0xfc,
                Err(_) => return 0,
            }
        }
        0
    }

    /// Recomputes whether the BARs decode, after a write to the command register or PMCSR.
    fn refresh_bars_off(&self) {
        let mem_on = self.config_read16(0x04).is_ok_and(|c| c & 0x2 != 0);
        let d0 = self.pm_cap == 0
            || self
                .config_read16(self.pm_cap + 4)
                .is_ok_and(|p| p & 3 == 0);
        self.bars_off
            .store(!(mem_on && d0), std::sync::atomic::Ordering::Release);
    }

    /// The BAR, when it decodes now (see `bars_off`).
    fn live_bar(&self, bar: u8) -> Option<&Bar> {
        if self.bars_off.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        self.bar(bar)
    }

    fn bar(&self, bar: u8) -> Option<&Bar> {
        self.bars.get(bar as usize)?.as_ref()
    }

    fn bar_pread(&self, b: &Bar, offset: u64, buf: &mut [u8]) -> bool {
        offset + buf.len() as u64 <= b.size
            && self
                .device_file()
                .read_exact_at(buf, b.offset + offset)
                .is_ok()
    }

    fn bar_pwrite(&self, b: &Bar, offset: u64, data: &[u8]) {
        if offset + data.len() as u64 <= b.size {
            let _ = self.device_file().write_all_at(data, b.offset + offset);
        }
    }

    /// Lets go of the device before its power is cut (the switch may remove the function, and
    /// vfio-pci waits until no process holds it): the BAR mappings become zeroed memory, BAR
    /// accesses read all ones, and the device fd points at /dev/null. The group stays open and
    /// attached to the container, which keeps the DMA mappings for the device's return.
    fn release(&self) -> Result<(), PciError> {
        self.container.defer();
        self.bars_off
            .store(true, std::sync::atomic::Ordering::Release);
        for b in self.bars.iter().flatten() {
            if let Some(m) = &b.mmio {
                m.detach().map_err(os("unmap a BAR"))?;
            }
        }
        let null = std::fs::File::open("/dev/null").map_err(os("/dev/null"))?;
        ioctl::replace_fd(self.device.as_fd(), null.as_fd()).map_err(os("close the device"))
    }

    /// Opens the device again after [`VfioFunction::release`]: in the group it is in now (a
    /// function that was removed and added again has a new group, which joins the container
    /// and replaces the old one), with its BARs mapped where they were.
    fn reacquire(&self) -> Result<(), PciError> {
        let fail = |reason: String| PciError::Open {
            addr: self.addr.clone(),
            reason,
        };
        let gid = self.sys.iommu_group(&self.addr).ok_or_else(|| {
            fail("back from the power cycle in no IOMMU group (bound to vfio-pci?)".into())
        })?;
        let mut cur = self.group_id.lock();
        // The group we hold still has the function when it never left the bus (a reset as the
        // power switch). A function that was removed and added again is in a new group, even
        // under the same number (vfio drops a group when its last function goes, whoever holds
        // it open): that one is opened and joins the container, replacing the old one.
        let mut remapped = false;
        let device = match ioctl::group_get_device_fd(self.group.as_fd(), &self.addr) {
            Ok(d) if *cur == gid => d,
            _ => {
                let gpath = format!("/dev/vfio/{gid}");
                let group = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&gpath)
                    .map(OwnedFd::from)
                    .map_err(|e| fail(format!("{gpath}: {e}")))?;
                ioctl::group_set_container(group.as_fd(), self.container_fd.as_fd())
                    .map_err(os(format!("VFIO_GROUP_SET_CONTAINER ({gpath})")))?;
                // The old group leaves the container as its fd closes.
                ioctl::replace_fd(self.group.as_fd(), group.as_fd())
                    .map_err(os("replace the group"))?;
                *cur = gid;
                // When the old group's last function went, vfio took the group out of the
                // container, and the container, left without groups, lost its IOMMU and its
                // DMA mappings: set the IOMMU again (EBUSY: it still has one) and map every
                // live DMA region again, at the same bus addresses.
                let iommu = [VFIO_TYPE1V2_IOMMU, VFIO_TYPE1_IOMMU]
                    .into_iter()
                    .find(|t| {
                        ioctl_val(self.container_fd.as_fd(), VFIO_CHECK_EXTENSION, *t as _)
                            .unwrap_or(0)
                            > 0
                    })
                    .ok_or_else(|| fail("the kernel offers no type1 IOMMU to VFIO".into()))?;
                match ioctl_val(self.container_fd.as_fd(), VFIO_SET_IOMMU, iommu as _) {
                    Ok(_) => {
                        // Every live region, those created while the power was off too.
                        self.container.resume();
                        domain::remap(&(self.container.clone() as Arc<dyn IommuMapper>))?;
                        remapped = true;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                    Err(e) => return Err(os("VFIO_SET_IOMMU (after the power cycle)")(e)),
                }
                ioctl::group_get_device_fd(self.group.as_fd(), &self.addr)
                    .map_err(os("VFIO_GROUP_GET_DEVICE_FD"))?
            }
        };
        if !remapped {
            // Buffers the script created while the power was off, which the IOMMU refused.
            for (iova, (vaddr, len)) in self.container.resume() {
                self.container.map_now(vaddr, iova, len)?;
            }
        }
        ioctl::replace_fd(self.device.as_fd(), device.as_fd()).map_err(os("replace the device"))?;
        drop(device);
        for b in self.bars.iter().flatten() {
            if let Some(m) = &b.mmio {
                m.reattach(self.device.as_fd(), b.offset)
                    .map_err(os("map a BAR again"))?;
            }
        }
        self.function_mask
            .store(false, std::sync::atomic::Ordering::Release);
        self.refresh_bars_off();
        Ok(())
    }

    fn device_file(&self) -> std::mem::ManuallyDrop<std::fs::File> {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: a `File` view of our device fd that is never dropped (ManuallyDrop), so the fd
        // stays owned by `self.device` and is not closed twice.
        std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(self.device.as_raw_fd()) })
    }
}

impl PciFunction for VfioFunction {
    fn address(&self) -> &str {
        &self.addr
    }

    fn backend(&self) -> &'static str {
        "vfio"
    }

    fn config_read(&self, offset: u16, buf: &mut [u8]) -> Result<(), PciError> {
        check_range(offset, buf.len())?;
        let n = self
            .device_file()
            .read_at(buf, self.config_offset + offset as u64)
            .map_err(os(format!("config space read at {offset:#x}")))?;
        buf[n..].fill(0xff);
        Ok(())
    }

    fn config_write(&self, offset: u16, data: &[u8]) -> Result<(), PciError> {
        check_range(offset, data.len())?;
        let r = self
            .device_file()
            .write_all_at(data, self.config_offset + offset as u64)
            .map_err(os(format!("config space write at {offset:#x}")));
        let end = offset as usize + data.len();
        let touches = |reg: u16| (offset as usize) < reg as usize + 2 && end > reg as usize;
        if touches(0x04) || (self.pm_cap != 0 && touches(self.pm_cap + 4)) {
            self.refresh_bars_off();
        }
        // Message Control's upper byte (Function Mask is its bit 6) written: keep the mask.
        let control_hi = self.msix_cap as usize + 3;
        if self.msix_cap != 0 && (offset as usize) < control_hi + 1 && end > control_hi {
            let byte = data[control_hi - offset as usize];
            self.function_mask
                .store(byte & 0x40 != 0, std::sync::atomic::Ordering::Release);
        }
        r
    }

    fn bar_size(&self, bar: u8) -> u64 {
        self.bar(bar).map_or(0, |b| b.size)
    }

    fn bar_read32(&self, bar: u8, offset: u64) -> u32 {
        let Some(b) = self.live_bar(bar) else {
            return u32::MAX;
        };
        if let Some(m) = &b.mmio {
            return m.read32(offset);
        }
        let mut v = [0xffu8; 4];
        self.bar_pread(b, offset, &mut v);
        u32::from_le_bytes(v)
    }

    fn bar_write32(&self, bar: u8, offset: u64, value: u32) {
        let Some(b) = self.live_bar(bar) else { return };
        match &b.mmio {
            Some(m) => m.write32(offset, value),
            None => self.bar_pwrite(b, offset, &value.to_le_bytes()),
        }
    }

    fn bar_read64(&self, bar: u8, offset: u64) -> u64 {
        let Some(b) = self.live_bar(bar) else {
            return u64::MAX;
        };
        if let Some(m) = b.mmio.as_ref().filter(|m| m.len() as u64 >= offset + 8) {
            return m.read64(offset);
        }
        let mut v = [0xffu8; 8];
        self.bar_pread(b, offset, &mut v);
        u64::from_le_bytes(v)
    }

    fn bar_write64(&self, bar: u8, offset: u64, value: u64) {
        let Some(b) = self.live_bar(bar) else { return };
        match &b.mmio {
            Some(m) => m.write64(offset, value),
            None => self.bar_pwrite(b, offset, &value.to_le_bytes()),
        }
    }

    fn msix_enable(self: Arc<Self>, nvec: u16) -> Result<Arc<dyn Interrupts>, PciError> {
        Ok(Arc::new(VfioMsix::enable(self, nvec)?))
    }

    fn flr(&self) -> Result<(), PciError> {
        // vfio-pci picks the function's reset (FLR when the function has it) and saves and
        // restores config space around it.
        ioctl_val(self.device.as_fd(), VFIO_DEVICE_RESET, 0).map_err(os("VFIO_DEVICE_RESET"))?;
        let cmd = self.config_read16(0x04)?;
        self.config_write16(0x04, cmd | 0x6)
    }

    fn hot_reset(&self) -> Result<(), PciError> {
        use std::os::fd::AsRawFd;
        let head = std::mem::size_of::<HotResetHead>();
        let mut buf = vec![0u8; head + 4];
        let h = HotResetHead {
            argsz: buf.len() as u32,
            flags: 0,
            count: 1,
        };
        buf[0..4].copy_from_slice(&h.argsz.to_ne_bytes());
        buf[8..12].copy_from_slice(&h.count.to_ne_bytes());
        buf[head..].copy_from_slice(&self.group.as_raw_fd().to_ne_bytes());
        // SAFETY: VFIO_DEVICE_PCI_HOT_RESET takes a `vfio_pci_hot_reset` followed by `count`
        // group fds, which `buf` holds, with argsz = its length.
        if unsafe { ioctl_buf(self.device.as_fd(), VFIO_DEVICE_PCI_HOT_RESET, &mut buf) }.is_err() {
            // The kernel refuses when it cannot reset the bus by itself (a hotplug slot without a
            // reset method, ENOTTY, as QEMU's root ports in a 6.1 guest): reset through the bridge's
            // config space in sysfs. Writing the command register back through vfio-pci makes it
            // restore the BARs the reset cleared.
            return crate::sysfs::secondary_bus_reset(&self.sys, &self.addr, self);
        }
        let cmd = self.config_read16(0x04)?;
        self.config_write16(0x04, cmd | 0x6)
    }

    fn power_off(&self) -> Result<(), PciError> {
        self.power
            .off(self, &self.sys, &self.addr, || self.release())
    }

    fn power_on(&self) -> Result<(), PciError> {
        self.power
            .on(self, &self.sys, &self.addr, || self.reacquire())?;
        let cmd = self.config_read16(0x04)?;
        self.config_write16(0x04, cmd | 0x6)
    }
}

/// MSI-X through VFIO: one eventfd per vector.
///
/// vfio-pci cannot mask an MSI-X vector for user space, so masking is emulated where the host
/// looks: a masked vector's messages stay counted in its eventfd (pending) and show up when it is
/// unmasked, which is what a script can observe of a real mask.
pub struct VfioMsix {
    dev: Arc<VfioFunction>,
    fds: Vec<OwnedFd>,
    fired: Vec<AtomicBool>,
    masked: Vec<AtomicBool>,
    lock: Mutex<()>,
}

impl VfioMsix {
    fn set_irqs(dev: &VfioFunction, flags: u32, fds: &[OwnedFd]) -> Result<(), PciError> {
        use std::os::fd::AsRawFd;
        let head = std::mem::size_of::<IrqSetHead>();
        let mut buf = vec![0u8; head + 4 * fds.len()];
        let fields = [
            buf.len() as u32,
            flags,
            VFIO_PCI_MSIX_IRQ_INDEX,
            0,
            fds.len() as u32,
        ];
        for (i, v) in fields.iter().enumerate() {
            buf[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
        }
        for (i, fd) in fds.iter().enumerate() {
            buf[head + i * 4..head + i * 4 + 4].copy_from_slice(&fd.as_raw_fd().to_ne_bytes());
        }
        // SAFETY: VFIO_DEVICE_SET_IRQS takes a `vfio_irq_set` followed by `count` eventfds,
        // which `buf` holds, with argsz = its length.
        unsafe { ioctl_buf(dev.device.as_fd(), VFIO_DEVICE_SET_IRQS, &mut buf) }
            .map(|_| ())
            .map_err(os("VFIO_DEVICE_SET_IRQS (MSI-X)"))
    }

    /// Enables `min(nvec, table size)` vectors, each signalling its own eventfd.
    pub fn enable(dev: Arc<VfioFunction>, nvec: u16) -> Result<VfioMsix, PciError> {
        let cap = crate::msix::find_capability(dev.as_ref(), nvme_spec::pci::cap_id::MSIX)?
            .ok_or(PciError::NoCapability("MSI-X"))?;
        let table_size = (dev.config_read16(cap + 2)? & 0x7ff) + 1;
        let n = nvec.clamp(1, table_size);
        // Disable first: vfio-pci does not resize an enabled vector set.
        let _ = Self::set_irqs(
            &dev,
            VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
            &[],
        );
        let fds = (0..n)
            .map(|_| ioctl::eventfd().map_err(os("eventfd")))
            .collect::<Result<Vec<_>, _>>()?;
        Self::set_irqs(
            &dev,
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            &fds,
        )?;
        Ok(VfioMsix {
            dev,
            fired: (0..n).map(|_| AtomicBool::new(false)).collect(),
            masked: (0..n).map(|_| AtomicBool::new(false)).collect(),
            fds,
            lock: Mutex::new(()),
        })
    }
}

impl VfioMsix {
    /// Vector `v` (in range) is masked, by its own mask or by the Function Mask.
    fn masked(&self, v: usize) -> bool {
        self.masked[v].load(Ordering::Acquire) || self.dev.function_mask.load(Ordering::Acquire)
    }
}

impl Interrupts for VfioMsix {
    fn count(&self) -> u16 {
        self.fds.len() as u16
    }

    fn is_set(&self, v: u16) -> bool {
        let v = v as usize;
        if v >= self.fds.len() || self.masked(v) {
            return false;
        }
        if self.fired[v].load(Ordering::Acquire) {
            return true;
        }
        if ioctl::eventfd_take(self.fds[v].as_fd()) > 0 {
            self.fired[v].store(true, Ordering::Release);
            return true;
        }
        false
    }

    fn clear(&self, v: u16) {
        let v = v as usize;
        if v < self.fds.len() {
            let _g = self.lock.lock();
            if !self.masked(v) {
                ioctl::eventfd_take(self.fds[v].as_fd());
            }
            self.fired[v].store(false, Ordering::Release);
        }
    }

    fn mask(&self, v: u16) {
        if let Some(m) = self.masked.get(v as usize) {
            m.store(true, Ordering::Release);
        }
    }

    fn unmask(&self, v: u16) {
        if let Some(m) = self.masked.get(v as usize) {
            m.store(false, Ordering::Release);
        }
    }
}
