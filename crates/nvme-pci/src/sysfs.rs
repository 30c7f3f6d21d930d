//! What Linux tells about PCI functions in sysfs: the bound driver, the IOMMU group, the BARs,
//! the upstream bridge, and config space through the `config` file.
//!
//! Every lookup goes through a [`Sysfs`] root, `/sys` on a real system and a temporary directory
//! in the tests, so the parsing is tested without hardware.

use crate::PciError;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A sysfs tree (normally `/sys`).
#[derive(Debug, Clone)]
pub struct Sysfs {
    root: PathBuf,
}

/// Which backend serves a function, from the driver it is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// `vfio-pci`: the vfio backend.
    Vfio,
    /// `uio_pci_generic`: the uio backend.
    Uio,
}

/// One BAR as the `resource` file lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// Bus address of the first byte.
    pub start: u64,
    /// Size in bytes (0: not implemented).
    pub size: u64,
    /// `IORESOURCE_*` flags.
    pub flags: u64,
}

impl Resource {
    /// Whether this is a memory BAR (`IORESOURCE_MEM`).
    pub fn is_memory(&self) -> bool {
        self.flags & 0x200 != 0
    }
}

/// Parses `0000:01:00.0` or `01:00.0` (domain 0) into the canonical `dddd:bb:dd.f` form.
pub fn normalize_bdf(addr: &str) -> Option<String> {
    let addr = addr.trim();
    let (domain, rest) = match addr.matches(':').count() {
        1 => ("0000", addr),
        2 => addr.split_once(':')?,
        _ => return None,
    };
    let (bus, devfn) = rest.split_once(':')?;
    let (dev, func) = devfn.split_once('.')?;
    let hex = |s: &str, max: u32| u32::from_str_radix(s, 16).ok().filter(|v| *v <= max);
    let (d, b, v, f) = (
        hex(domain, 0xffff)?,
        hex(bus, 0xff)?,
        hex(dev, 0x1f)?,
        hex(func, 7)?,
    );
    Some(format!("{d:04x}:{b:02x}:{v:02x}.{f:x}"))
}

impl Sysfs {
    /// The system's `/sys`.
    pub fn system() -> Sysfs {
        Sysfs::at("/sys")
    }

    /// A tree rooted at `root` (tests).
    pub fn at(root: impl Into<PathBuf>) -> Sysfs {
        Sysfs { root: root.into() }
    }

    /// `<root>/bus/pci/devices/<bdf>`.
    pub fn device_dir(&self, bdf: &str) -> PathBuf {
        self.root.join("bus/pci/devices").join(bdf)
    }

    fn link_name(path: &Path) -> Option<String> {
        std::fs::read_link(path)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    }

    /// Whether the function exists.
    pub fn exists(&self, bdf: &str) -> bool {
        self.device_dir(bdf).exists()
    }

    /// The name of the driver the function is bound to, if any.
    pub fn driver(&self, bdf: &str) -> Option<String> {
        Self::link_name(&self.device_dir(bdf).join("driver"))
    }

    /// The function's IOMMU group number, if the kernel put it in one.
    pub fn iommu_group(&self, bdf: &str) -> Option<String> {
        Self::link_name(&self.device_dir(bdf).join("iommu_group"))
    }

    /// The backend for the function at `addr`, or an error that says what to do.
    pub fn binding(&self, addr: &str) -> Result<(String, Binding), PciError> {
        let bdf = normalize_bdf(addr).ok_or_else(|| PciError::Open {
            addr: addr.to_string(),
            reason: "not a PCI address (like 0000:01:00.0) nor a simulator URI (sim://...)".into(),
        })?;
        if !self.exists(&bdf) {
            return Err(PciError::Open {
                addr: addr.to_string(),
                reason: format!(
                    "no PCI function {bdf} on this machine (`pynvme list` shows the NVMe functions)"
                ),
            });
        }
        match self.driver(&bdf).as_deref() {
            Some("vfio-pci") => Ok((bdf, Binding::Vfio)),
            Some("uio_pci_generic") => Ok((bdf, Binding::Uio)),
            other => Err(PciError::Open {
                addr: addr.to_string(),
                reason: format!(
                    "{bdf} is bound to {}, not to vfio-pci or uio_pci_generic: run \
                     `pynvme setup --pciaddr={bdf}` (as root) to hand it to the test driver",
                    other.unwrap_or("no driver")
                ),
            }),
        }
    }

    /// The BARs (the first six lines of the `resource` file).
    pub fn resources(&self, bdf: &str) -> Result<Vec<Resource>, PciError> {
        let path = self.device_dir(bdf).join("resource");
        let text = std::fs::read_to_string(&path).map_err(|source| PciError::Os {
            op: format!("read {}", path.display()),
            source,
        })?;
        Ok(parse_resources(&text))
    }

    /// The upstream bridge of the function (the parent directory, if it is a PCI function).
    pub fn upstream_bridge(&self, bdf: &str) -> Option<String> {
        let real = std::fs::canonicalize(self.device_dir(bdf)).ok()?;
        let parent = real.parent()?.file_name()?.to_string_lossy().into_owned();
        normalize_bdf(&parent).filter(|p| *p == parent)
    }

    /// Opens the function's `config` file for reading and writing.
    pub fn config(&self, bdf: &str) -> Result<ConfigFile, PciError> {
        let path = self.device_dir(bdf).join("config");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| PciError::Os {
                op: format!("open {} (as root?)", path.display()),
                source,
            })?;
        Ok(ConfigFile { file })
    }
}

/// Parses a sysfs `resource` file: `0x<start> 0x<end> 0x<flags>` per line, BARs 0..=5 first.
pub fn parse_resources(text: &str) -> Vec<Resource> {
    text.lines()
        .take(6)
        .map(|line| {
            let v: Vec<u64> = line
                .split_whitespace()
                .map(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).unwrap_or(0))
                .collect();
            let (start, end, flags) = (
                v.first().copied().unwrap_or(0),
                v.get(1).copied().unwrap_or(0),
                v.get(2).copied().unwrap_or(0),
            );
            let size = if end > start || (end == start && start != 0) {
                end - start + 1
            } else {
                0
            };
            Resource { start, size, flags }
        })
        .collect()
}

/// A function's config space through sysfs: the whole 4 KiB for root.
#[derive(Debug)]
pub struct ConfigFile {
    file: std::fs::File,
}

impl std::os::fd::AsFd for ConfigFile {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl ConfigFile {
    /// Reads `buf.len()` bytes at `offset`; bytes the kernel does not give read as all ones.
    pub fn read(&self, offset: u16, buf: &mut [u8]) -> Result<(), PciError> {
        check_range(offset, buf.len())?;
        let n = self
            .file
            .read_at(buf, offset as u64)
            .map_err(|source| PciError::Os {
                op: format!("config space read at {offset:#x}"),
                source,
            })?;
        buf[n..].fill(0xff);
        Ok(())
    }

    /// Writes `data` at `offset`.
    pub fn write(&self, offset: u16, data: &[u8]) -> Result<(), PciError> {
        check_range(offset, data.len())?;
        self.file
            .write_all_at(data, offset as u64)
            .map_err(|source| PciError::Os {
                op: format!("config space write at {offset:#x}"),
                source,
            })
    }
}

pub(crate) fn check_range(offset: u16, len: usize) -> Result<(), PciError> {
    if offset as usize + len > 4096 {
        return Err(PciError::ConfigRange {
            offset: offset as usize,
            len,
        });
    }
    Ok(())
}

/// Secondary bus reset through the bridge above `bdf` (bridge control bit 6), with the
/// function's config header saved before and restored after, as Linux does around a reset.
pub(crate) fn secondary_bus_reset(
    sys: &Sysfs,
    bdf: &str,
    dev: &dyn crate::PciFunction,
) -> Result<(), PciError> {
    let bridge = sys
        .upstream_bridge(bdf)
        .ok_or(PciError::NoCapability("upstream bridge (hot reset)"))?;
    let cfg = sys.config(&bridge)?;
    let saved = save_header(dev)?;
    let mut ctl = [0u8; 2];
    cfg.read(0x3e, &mut ctl)?;
    let ctl = u16::from_le_bytes(ctl);
    cfg.write(0x3e, &(ctl | 1 << 6).to_le_bytes())?;
    // PCIe base spec: hold the reset at least 1 ms.
    std::thread::sleep(std::time::Duration::from_millis(2));
    cfg.write(0x3e, &(ctl & !(1 << 6)).to_le_bytes())?;
    // ... and give the link 100 ms before the first config request (we give a little more).
    std::thread::sleep(std::time::Duration::from_millis(200));
    restore_header(dev, &saved)
}

/// The type 0 header's writable part: command, BARs, cache line/latency, interrupt line.
pub(crate) fn save_header(dev: &dyn crate::PciFunction) -> Result<[u8; 64], PciError> {
    let mut h = [0u8; 64];
    dev.config_read(0, &mut h)?;
    Ok(h)
}

/// Writes back what [`save_header`] saved: BARs first, the command register last.
pub(crate) fn restore_header(dev: &dyn crate::PciFunction, h: &[u8; 64]) -> Result<(), PciError> {
    dev.config_write(0x0c, &h[0x0c..0x0e])?;
    dev.config_write(0x10, &h[0x10..0x28])?;
    dev.config_write(0x30, &h[0x30..0x34])?;
    dev.config_write(0x3c, &h[0x3c..0x3e])?;
    dev.config_write(0x04, &h[0x04..0x06])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fake sysfs with one NVMe function at 0000:01:00.0 behind bridge 0000:00:1c.0.
    pub(crate) fn fake_sysfs(driver: Option<&str>) -> (tempdir::TempDir, Sysfs) {
        let t = tempdir::TempDir::new();
        let root = t.path();
        let dev = root.join("devices/pci0000:00/0000:00:1c.0/0000:01:00.0");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::create_dir_all(root.join("bus/pci/devices")).unwrap();
        std::fs::create_dir_all(root.join("kernel/iommu_groups/7")).unwrap();
        symlink(&dev, root.join("bus/pci/devices/0000:01:00.0")).unwrap();
        symlink(
            root.join("devices/pci0000:00/0000:00:1c.0"),
            root.join("bus/pci/devices/0000:00:1c.0"),
        )
        .unwrap();
        symlink(root.join("kernel/iommu_groups/7"), dev.join("iommu_group")).unwrap();
        std::fs::write(dev.join("class"), "0x010802\n").unwrap();
        std::fs::write(
            dev.join("resource"),
            "0x00000000fe000000 0x00000000fe003fff 0x0000000000140204\n\
             0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
             0x00000000fd000000 0x00000000fdffffff 0x000000000014220c\n\
             0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
             0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
             0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
             0x0000000000000000 0x0000000000000000 0x0000000000000000\n",
        )
        .unwrap();
        let mut cfg = vec![0u8; 4096];
        cfg[0..4].copy_from_slice(&[0x36, 0x1b, 0x10, 0x00]);
        std::fs::write(dev.join("config"), &cfg).unwrap();
        if let Some(d) = driver {
            let drv = root.join("bus/pci/drivers").join(d);
            std::fs::create_dir_all(&drv).unwrap();
            symlink(&drv, dev.join("driver")).unwrap();
        }
        let sys = Sysfs::at(root);
        (t, sys)
    }

    /// A temporary directory removed on drop (no extra dependency for the tests).
    pub(crate) mod tempdir {
        pub(crate) struct TempDir(std::path::PathBuf);
        impl TempDir {
            pub(crate) fn new() -> TempDir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "nvme-pci-test-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).unwrap();
                TempDir(p)
            }
            pub(crate) fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for TempDir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn bdf_forms() {
        assert_eq!(normalize_bdf("0000:01:00.0").unwrap(), "0000:01:00.0");
        assert_eq!(normalize_bdf("01:00.0").unwrap(), "0000:01:00.0");
        assert_eq!(normalize_bdf("0000:AF:1f.7").unwrap(), "0000:af:1f.7");
        assert!(normalize_bdf("01:20.0").is_none());
        assert!(normalize_bdf("01:00.8").is_none());
        assert!(normalize_bdf("sim://").is_none());
        assert!(normalize_bdf("pci0000:00").is_none());
    }

    #[test]
    fn resources_parse() {
        let (_t, sys) = fake_sysfs(None);
        let r = sys.resources("0000:01:00.0").unwrap();
        assert_eq!(r.len(), 6);
        assert_eq!(r[0].start, 0xfe00_0000);
        assert_eq!(r[0].size, 0x4000);
        assert!(r[0].is_memory());
        assert_eq!(r[1].size, 0);
        assert_eq!(r[2].size, 0x100_0000);
    }

    #[test]
    fn driver_group_and_bridge() {
        let (_t, sys) = fake_sysfs(Some("nvme"));
        assert_eq!(sys.driver("0000:01:00.0").as_deref(), Some("nvme"));
        assert_eq!(sys.iommu_group("0000:01:00.0").as_deref(), Some("7"));
        assert_eq!(
            sys.upstream_bridge("0000:01:00.0").as_deref(),
            Some("0000:00:1c.0")
        );
        // The bridge's parent is the host bridge directory `pci0000:00`: no bridge above it.
        assert_eq!(sys.upstream_bridge("0000:00:1c.0"), None);
    }

    #[test]
    fn binding_by_driver() {
        for (driver, want) in [
            (Some("vfio-pci"), Ok(Binding::Vfio)),
            (Some("uio_pci_generic"), Ok(Binding::Uio)),
            (Some("nvme"), Err("bound to nvme")),
            (None, Err("bound to no driver")),
        ] {
            let (_t, sys) = fake_sysfs(driver);
            match (sys.binding("01:00.0"), want) {
                (Ok((bdf, b)), Ok(w)) => {
                    assert_eq!(bdf, "0000:01:00.0");
                    assert_eq!(b, w);
                }
                (Err(e), Err(w)) => {
                    let e = e.to_string();
                    assert!(e.contains(w) && e.contains("pynvme setup"), "{e}");
                }
                (got, w) => panic!("{driver:?}: got {got:?}, want {w:?}"),
            }
        }
        let (_t, sys) = fake_sysfs(None);
        assert!(sys
            .binding("0000:02:00.0")
            .unwrap_err()
            .to_string()
            .contains("no PCI function"));
        assert!(sys
            .binding("nonsense")
            .unwrap_err()
            .to_string()
            .contains("not a PCI address"));
    }

    #[test]
    fn config_file_reads_and_writes() {
        let (_t, sys) = fake_sysfs(None);
        let cfg = sys.config("0000:01:00.0").unwrap();
        let mut id = [0u8; 4];
        cfg.read(0, &mut id).unwrap();
        assert_eq!(u32::from_le_bytes(id), 0x0010_1b36);
        cfg.write(4, &[6, 0]).unwrap();
        let mut cmd = [0u8; 2];
        cfg.read(4, &mut cmd).unwrap();
        assert_eq!(cmd, [6, 0]);
        assert!(cfg.read(4095, &mut cmd).is_err());
    }
}
