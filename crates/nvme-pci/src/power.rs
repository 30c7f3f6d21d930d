//! Power control of a real device's slot, for `Subsystem.poweroff()` / `poweron()`.
//!
//! A lab switches an SSD's power with whatever it has: a relay board, a PDU, a Quarch module.
//! The Python `Subsystem(nvme, poweron_cb=..., poweroff_cb=...)` takes callbacks for that. Without
//! callbacks, the backend asks the [`PowerController`] of the process:
//!
//! * `PYNVME_POWER_OFF` / `PYNVME_POWER_ON`: shell commands, run with `PYNVME_PCIADDR` set to the
//!   device's address; they must return once the power is off / on (the lab hook);
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
}
