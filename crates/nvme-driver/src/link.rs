//! PCIe link and power management of the function, through its config space: link speed (with
//! retraining), ASPM control, PCI power state (D0 .. D3hot). The Python `Pcie` attributes
//! `speed`, `aspm` and `power_state` only call these.

use crate::error::{DriverError, Result};
use nvme_pci::PciFunction;
use nvme_spec::pci::{cap_id, pcie as pcie_cap, pm};

/// Offset of capability `id` in the function's config space.
fn capability(pci: &dyn PciFunction, id: u8) -> Result<u16> {
    let mut head = [0u8; 256];
    pci.config_read(0, &mut head)?;
    nvme_spec::pci::find_capability(&head, id).ok_or_else(|| {
        DriverError::invalid("pcie", format!("the function has no capability {id:#x}"))
    })
}

/// Current link speed: 1 = 2.5 GT/s ... 6 = 64 GT/s (Link Status).
pub fn speed(pci: &dyn PciFunction) -> Result<u16> {
    let c = capability(pci, cap_id::PCIE)?;
    Ok(pci.config_read16(c + pcie_cap::LINKSTA)? & 0xf)
}

/// Writes the target link speed (Link Control 2, 1..=6) and retrains the link.
pub fn set_speed(pci: &dyn PciFunction, speed: u16) -> Result<()> {
    if !(1..=6).contains(&speed) {
        return Err(DriverError::invalid(
            "speed",
            format!("{speed} is not a PCIe generation 1..=6"),
        ));
    }
    let c = capability(pci, cap_id::PCIE)?;
    let l2 = pci.config_read16(c + pcie_cap::LINKCTL2)?;
    pci.config_write16(c + pcie_cap::LINKCTL2, (l2 & !0xf) | speed)?;
    let lc = pci.config_read16(c + pcie_cap::LINKCTL)?;
    pci.config_write16(c + pcie_cap::LINKCTL, lc | pcie_cap::LINKCTL_RETRAIN)?;
    Ok(())
}

/// ASPM control of the link (Link Control bits 1:0): 0 off, 1 L0s, 2 L1, 3 both.
pub fn aspm(pci: &dyn PciFunction) -> Result<u16> {
    let c = capability(pci, cap_id::PCIE)?;
    Ok(pci.config_read16(c + pcie_cap::LINKCTL)? & 3)
}

/// Sets ASPM control (0..=3).
pub fn set_aspm(pci: &dyn PciFunction, aspm: u16) -> Result<()> {
    if aspm > 3 {
        return Err(DriverError::invalid(
            "aspm",
            format!("{aspm} is not 0 (off), 1 (L0s), 2 (L1) or 3 (L0s and L1)"),
        ));
    }
    let c = capability(pci, cap_id::PCIE)?;
    let lc = pci.config_read16(c + pcie_cap::LINKCTL)?;
    pci.config_write16(c + pcie_cap::LINKCTL, (lc & !3) | aspm)?;
    Ok(())
}

/// PCI power state (PMCSR bits 1:0): 0 D0, 1 D1, 2 D2, 3 D3hot.
pub fn power_state(pci: &dyn PciFunction) -> Result<u16> {
    let c = capability(pci, cap_id::PM)?;
    Ok(pci.config_read16(c + pm::PMCSR)? & 3)
}

/// Sets the PCI power state (0..=3).
pub fn set_power_state(pci: &dyn PciFunction, state: u16) -> Result<()> {
    if state > 3 {
        return Err(DriverError::invalid(
            "power_state",
            format!("{state} is not 0 (D0), 1 (D1), 2 (D2) or 3 (D3hot)"),
        ));
    }
    let c = capability(pci, cap_id::PM)?;
    let v = pci.config_read16(c + pm::PMCSR)?;
    pci.config_write16(c + pm::PMCSR, (v & !3) | state)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_and_power_attributes_round_trip_on_the_simulator() {
        let pci = nvme_pci::open("sim://").unwrap();
        let pci = pci.as_ref();
        set_aspm(pci, 2).unwrap();
        assert_eq!(aspm(pci).unwrap(), 2);
        set_power_state(pci, 3).unwrap();
        assert_eq!(power_state(pci).unwrap(), 3);
        set_power_state(pci, 0).unwrap();
        assert_eq!(power_state(pci).unwrap(), 0);
        assert!((1..=6).contains(&speed(pci).unwrap()));
        assert!(matches!(
            set_speed(pci, 7),
            Err(DriverError::InvalidArgument { arg: "speed", .. })
        ));
        assert!(set_aspm(pci, 4).is_err());
    }
}
