//! Power control of a real device's slot, for `Subsystem.poweroff()` / `poweron()`.
//!
//! A lab switches an SSD's power with whatever it has: a relay board, a PDU, a Quarch module.
//! The Python `Subsystem(nvme, poweron_cb=..., poweroff_cb=...)` takes callbacks for that. Without
//! callbacks, the backend asks the [`PowerController`] of the process:
//!
//! * `PYNVME_POWER_OFF` / `PYNVME_POWER_ON`: shell commands, run with `PYNVME_PCIADDR` set to the
//!   device's address; they must return once the power is off / on (the lab hook). The
//!   backend closes the device before the power goes off and opens it again once `PYNVME_POWER_ON`
//!   returned, so the hook may remove the function and bring it back (at the same address, bound
//!   to the same driver: vfio-pci or uio_pci_generic);
//! * otherwise the default: power off does nothing by itself, and power on suspends the machine
//!   to RAM with an RTC wake-up alarm a few seconds later (S3 removes the slot's main power on
//!   most platforms), as pynvme does. `PYNVME_SUSPEND_SECONDS` sets the alarm (default 3).

use crate::sysfs::Sysfs;
use crate::PciError;

/// Switches a device's power.
pub trait PowerController: Send + Sync {
    /// Removes the power of the device at `bdf`.
    fn power_off(&self, sys: &Sysfs, bdf: &str) -> Result<(), PciError>;
    /// Restores it; returns when the device can be reached again.
    fn power_on(&self, sys: &Sysfs, bdf: &str) -> Result<(), PciError>;

    /// Whether the backend lets go of the device (its files and mappings) before the power goes
    /// off and opens it again after the power is back. A switch that really cuts the power may
    /// make the host remove the function (a hotplug slot, a hypervisor's device_del), and
    /// vfio-pci cannot remove a function that a process still holds.
    fn releases_device(&self) -> bool {
        false
    }
}

/// Runs the lab's commands from `PYNVME_POWER_OFF` / `PYNVME_POWER_ON`.
pub struct CommandPower {
    off: String,
    on: String,
}

fn run(cmd: &str, bdf: &str) -> Result<(), PciError> {
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("PYNVME_PCIADDR", bdf)
        .status()
        .map_err(|source| PciError::Os {
            op: format!("run `{cmd}`"),
            source,
        })?;
    if st.success() {
        Ok(())
    } else {
        Err(PciError::Os {
            op: format!("power command `{cmd}`"),
            source: std::io::Error::other(format!("exited with {st}")),
        })
    }
}

impl PowerController for CommandPower {
    fn power_off(&self, _sys: &Sysfs, bdf: &str) -> Result<(), PciError> {
        run(&self.off, bdf)
    }
    fn power_on(&self, _sys: &Sysfs, bdf: &str) -> Result<(), PciError> {
        run(&self.on, bdf)
    }

    /// The lab's switch may take the function off the bus: the device is let go first.
    fn releases_device(&self) -> bool {
        true
    }
}

/// Suspend to RAM with an RTC wake-up: the default.
pub struct SuspendPower;

impl PowerController for SuspendPower {
    fn power_off(&self, _sys: &Sysfs, _bdf: &str) -> Result<(), PciError> {
        Ok(())
    }

    fn power_on(&self, _sys: &Sysfs, _bdf: &str) -> Result<(), PciError> {
        let secs: u64 = std::env::var("PYNVME_SUSPEND_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3);
        let write = |path: &str, v: &str| {
            std::fs::write(path, v).map_err(|source| PciError::Os {
                op: format!(
                    "write {v:?} to {path} (suspend to RAM as the default power cycle; set \
                     PYNVME_POWER_OFF/PYNVME_POWER_ON or give Subsystem callbacks for a lab switch)"
                ),
                source,
            })
        };
        let alarm = "/sys/class/rtc/rtc0/wakealarm";
        write(alarm, "0")?;
        write(alarm, &format!("+{secs}"))?;
        write("/sys/power/state", "mem")?;
        std::thread::sleep(std::time::Duration::from_millis(500));
        Ok(())
    }
}

/// The process's power controller (read from the environment at each call).
pub fn controller() -> Box<dyn PowerController> {
    match (
        std::env::var("PYNVME_POWER_OFF"),
        std::env::var("PYNVME_POWER_ON"),
    ) {
        (Ok(off), Ok(on)) if !off.is_empty() && !on.is_empty() => {
            Box::new(CommandPower { off, on })
        }
        _ => Box::new(SuspendPower),
    }
}

/// The power switch of a function on the host's bus (vfio, uio), through [`controller`]: the
/// config header is saved before the power goes and written back once it is on again, and a
/// controller that removes the function from the bus gets it let go of first and opened again
/// after (the backend's `release` / `reacquire`).
#[derive(Default)]
pub(crate) struct SwitchedPower {
    saved_header: parking_lot::Mutex<Option<[u8; 64]>>,
}

impl SwitchedPower {
    /// Powers `dev` (at `addr`) off, calling `release` first when the controller removes it.
    pub(crate) fn off(
        &self,
        dev: &dyn crate::PciFunction,
        sys: &Sysfs,
        addr: &str,
        release: impl FnOnce() -> Result<(), PciError>,
    ) -> Result<(), PciError> {
        let power = controller();
        *self.saved_header.lock() = Some(crate::sysfs::save_header(dev)?);
        if power.releases_device() {
            release()?;
        }
        power.power_off(sys, addr)
    }

    /// Powers `dev` (at `addr`) on, calling `reacquire` when the controller had removed it, and
    /// writes the header saved at [`SwitchedPower::off`] back.
    pub(crate) fn on(
        &self,
        dev: &dyn crate::PciFunction,
        sys: &Sysfs,
        addr: &str,
        reacquire: impl FnOnce() -> Result<(), PciError>,
    ) -> Result<(), PciError> {
        let power = controller();
        let saved = match self.saved_header.lock().take() {
            Some(h) => h,
            None => crate::sysfs::save_header(dev)?,
        };
        power.power_on(sys, addr)?;
        if power.releases_device() {
            reacquire()?;
        }
        crate::sysfs::restore_header(dev, &saved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_get_the_address() {
        let dir = crate::sysfs::tests::tempdir::TempDir::new();
        let log = dir.path().join("log");
        let p = CommandPower {
            off: format!("echo off $PYNVME_PCIADDR >> {}", log.display()),
            on: "exit 3".into(),
        };
        let sys = Sysfs::at(dir.path());
        p.power_off(&sys, "0000:01:00.0").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "off 0000:01:00.0\n");
        let e = p.power_on(&sys, "0000:01:00.0").unwrap_err().to_string();
        assert!(e.contains("exit"), "{e}");
    }

    #[test]
    fn only_a_lab_switch_makes_the_backend_let_go_of_the_device() {
        let p = CommandPower {
            off: "true".into(),
            on: "true".into(),
        };
        assert!(p.releases_device());
        assert!(!SuspendPower.releases_device());
    }
}
