//! PCI configuration space (PCI Local Bus 3.0, PCI Express Base 5.0): header offsets,
//! capability structures, and walkers for the capability lists.
//!
//! Offsets of capability registers are relative to the capability's own offset, which
//! [`find_capability`] and [`find_ext_capability`] return. The walkers are panic-free on any
//! input, since a device under test may present a broken list.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Vendor ID (16 bits).
pub const VENDOR_ID: u16 = 0x00;
/// Device ID (16 bits).
pub const DEVICE_ID: u16 = 0x02;
/// Command register (16 bits, see [`command`]).
pub const COMMAND: u16 = 0x04;
/// Status register (16 bits, see [`status`]).
pub const STATUS: u16 = 0x06;
/// Revision ID (8 bits).
pub const REVISION_ID: u16 = 0x08;
/// Class code: programming interface (0x09), subclass (0x0a), base class (0x0b).
pub const CLASS_CODE: u16 = 0x09;
/// Cache Line Size (8 bits).
pub const CACHE_LINE_SIZE: u16 = 0x0c;
/// Latency Timer (8 bits).
pub const LATENCY_TIMER: u16 = 0x0d;
/// Header Type (8 bits): layout (bits 6:0, 0 endpoint, 1 bridge), multi-function (bit 7).
pub const HEADER_TYPE: u16 = 0x0e;
/// BIST (8 bits).
pub const BIST: u16 = 0x0f;
/// Base Address Register 0; BARs 1..5 follow every 4 bytes.
pub const BAR0: u16 = 0x10;
/// Subsystem Vendor ID (16 bits, type 0 header).
pub const SUBSYSTEM_VENDOR_ID: u16 = 0x2c;
/// Subsystem ID (16 bits, type 0 header).
pub const SUBSYSTEM_ID: u16 = 0x2e;
/// Expansion ROM Base Address (type 0 header).
pub const EXPANSION_ROM: u16 = 0x30;
/// Capabilities Pointer (8 bits).
pub const CAPABILITIES_POINTER: u16 = 0x34;
/// Interrupt Line (8 bits).
pub const INTERRUPT_LINE: u16 = 0x3c;
/// Interrupt Pin (8 bits).
pub const INTERRUPT_PIN: u16 = 0x3d;
/// Size of the legacy configuration space.
pub const CONFIG_SPACE_SIZE: usize = 256;
/// Size of the PCI Express extended configuration space.
pub const EXT_CONFIG_SPACE_SIZE: usize = 4096;
/// Offset of the first extended capability.
pub const EXT_CAP_START: u16 = 0x100;

/// Offset of BAR `n` (0..5).
pub const fn bar_offset(n: u8) -> u16 {
    BAR0 + 4 * n as u16
}

/// The class code of an NVM Express controller: mass storage (01h), non-volatile memory (08h),
/// NVMe I/O controller (02h).
pub const NVME_CLASS_CODE: u32 = 0x01_08_02;

/// Command register bits.
pub mod command {
    /// I/O Space Enable.
    pub const IO_SPACE: u16 = 1 << 0;
    /// Memory Space Enable.
    pub const MSE: u16 = 1 << 1;
    /// Bus Master Enable.
    pub const BME: u16 = 1 << 2;
    /// Parity Error Response.
    pub const PARITY_ERROR_RESPONSE: u16 = 1 << 6;
    /// SERR# Enable.
    pub const SERR: u16 = 1 << 8;
    /// Interrupt Disable (INTx).
    pub const INTX_DISABLE: u16 = 1 << 10;
}

/// Status register bits.
pub mod status {
    /// Interrupt Status (INTx asserted).
    pub const INTERRUPT: u16 = 1 << 3;
    /// Capabilities List: the capabilities pointer is valid.
    pub const CAPABILITIES_LIST: u16 = 1 << 4;
    /// Master Data Parity Error.
    pub const MASTER_DATA_PARITY_ERROR: u16 = 1 << 8;
    /// Signaled Target Abort.
    pub const SIGNALED_TARGET_ABORT: u16 = 1 << 11;
    /// Received Target Abort.
    pub const RECEIVED_TARGET_ABORT: u16 = 1 << 12;
    /// Received Master Abort.
    pub const RECEIVED_MASTER_ABORT: u16 = 1 << 13;
    /// Signaled System Error.
    pub const SIGNALED_SYSTEM_ERROR: u16 = 1 << 14;
    /// Detected Parity Error.
    pub const DETECTED_PARITY_ERROR: u16 = 1 << 15;
}

/// BAR bits.
pub mod bar {
    /// I/O space BAR (bit 0).
    pub const IO: u32 = 1 << 0;
    /// Memory BAR type (bits 2:1): 2 is a 64-bit BAR taking the next BAR as its upper half.
    pub const fn mem_type(bar: u32) -> u8 {
        ((bar >> 1) & 3) as u8
    }
    /// Memory type value: 64-bit.
    pub const MEM_TYPE_64: u8 = 2;
    /// Prefetchable (bit 3).
    pub const PREFETCHABLE: u32 = 1 << 3;
    /// Mask of the address bits of a memory BAR.
    pub const MEM_ADDRESS_MASK: u32 = !0xf;
}

/// Type 1 (bridge) header registers.
pub mod bridge {
    /// Primary Bus Number (8 bits).
    pub const PRIMARY_BUS: u16 = 0x18;
    /// Secondary Bus Number (8 bits).
    pub const SECONDARY_BUS: u16 = 0x19;
    /// Subordinate Bus Number (8 bits).
    pub const SUBORDINATE_BUS: u16 = 0x1a;
    /// Bridge Control (16 bits).
    pub const BRIDGE_CONTROL: u16 = 0x3e;
    /// Bridge Control: Secondary Bus Reset (bit 6).
    pub const SECONDARY_BUS_RESET: u16 = 1 << 6;
}

/// Capability IDs of the legacy list.
pub mod cap_id {
    /// Power Management.
    pub const PM: u8 = 0x01;
    /// Vital Product Data.
    pub const VPD: u8 = 0x03;
    /// MSI.
    pub const MSI: u8 = 0x05;
    /// Vendor specific.
    pub const VENDOR: u8 = 0x09;
    /// PCI Express.
    pub const PCIE: u8 = 0x10;
    /// MSI-X.
    pub const MSIX: u8 = 0x11;
}

/// Extended capability IDs (PCI Express extended configuration space).
pub mod ext_cap_id {
    /// Advanced Error Reporting.
    pub const AER: u16 = 0x0001;
    /// Virtual Channel.
    pub const VC: u16 = 0x0002;
    /// Device Serial Number.
    pub const DSN: u16 = 0x0003;
    /// Power Budgeting.
    pub const POWER_BUDGETING: u16 = 0x0004;
    /// Vendor-Specific Extended Capability.
    pub const VENDOR: u16 = 0x000b;
    /// Access Control Services.
    pub const ACS: u16 = 0x000d;
    /// Alternative Routing-ID Interpretation.
    pub const ARI: u16 = 0x000e;
    /// Address Translation Services.
    pub const ATS: u16 = 0x000f;
    /// Single Root I/O Virtualization.
    pub const SRIOV: u16 = 0x0010;
    /// Resizable BAR.
    pub const RESIZABLE_BAR: u16 = 0x0015;
    /// Latency Tolerance Reporting.
    pub const LTR: u16 = 0x0018;
    /// Secondary PCI Express.
    pub const SECONDARY_PCIE: u16 = 0x0019;
    /// Downstream Port Containment.
    pub const DPC: u16 = 0x001d;
    /// L1 PM Substates.
    pub const L1SS: u16 = 0x001e;
    /// Precision Time Measurement.
    pub const PTM: u16 = 0x001f;
    /// Data Link Feature.
    pub const DLF: u16 = 0x0025;
    /// Physical Layer 16.0 GT/s.
    pub const PL_16GT: u16 = 0x0026;
    /// Lane Margining at the Receiver.
    pub const LANE_MARGINING: u16 = 0x0027;
    /// Physical Layer 32.0 GT/s.
    pub const PL_32GT: u16 = 0x002a;
    /// Data Object Exchange.
    pub const DOE: u16 = 0x002e;
}

/// Power Management capability registers, relative to the capability.
pub mod pm {
    /// Power Management Capabilities (16 bits).
    pub const PMC: u16 = 0x02;
    /// Power Management Control/Status (16 bits).
    pub const PMCSR: u16 = 0x04;
    /// PMCSR: Power State (bits 1:0): 0 D0 ... 3 D3hot.
    pub const PMCSR_POWER_STATE_MASK: u16 = 0x3;
    /// PMCSR: No Soft Reset: D3hot to D0 keeps the function's state (bit 3).
    pub const PMCSR_NO_SOFT_RESET: u16 = 1 << 3;
    /// PMCSR: PME Enable (bit 8).
    pub const PMCSR_PME_ENABLE: u16 = 1 << 8;
    /// PMCSR: PME Status, write 1 to clear (bit 15).
    pub const PMCSR_PME_STATUS: u16 = 1 << 15;
    /// Power state D0.
    pub const D0: u16 = 0;
    /// Power state D1.
    pub const D1: u16 = 1;
    /// Power state D2.
    pub const D2: u16 = 2;
    /// Power state D3hot.
    pub const D3HOT: u16 = 3;
}

/// MSI capability registers, relative to the capability.
pub mod msi {
    /// Message Control (16 bits).
    pub const MESSAGE_CONTROL: u16 = 0x02;
    /// Message Control: MSI Enable (bit 0).
    pub const ENABLE: u16 = 1 << 0;
    /// Message Control: Multiple Message Capable, log2 (bits 3:1).
    pub const fn mmc(ctrl: u16) -> u8 {
        ((ctrl >> 1) & 7) as u8
    }
    /// Message Control: Multiple Message Enable, log2 (bits 6:4).
    pub const fn mme(ctrl: u16) -> u8 {
        ((ctrl >> 4) & 7) as u8
    }
    /// Message Control: 64-bit address capable (bit 7).
    pub const ADDR_64: u16 = 1 << 7;
    /// Message Control: per-vector masking capable (bit 8).
    pub const PER_VECTOR_MASKING: u16 = 1 << 8;
    /// Message Address (lower 32 bits).
    pub const ADDRESS_LO: u16 = 0x04;
}

/// MSI-X capability registers, relative to the capability.
pub mod msix {
    /// Message Control (16 bits).
    pub const MESSAGE_CONTROL: u16 = 0x02;
    /// Message Control: Function Mask (bit 14).
    pub const FUNCTION_MASK: u16 = 1 << 14;
    /// Message Control: MSI-X Enable (bit 15).
    pub const ENABLE: u16 = 1 << 15;
    /// Number of table entries: Message Control bits 10:0 hold it 0-based.
    pub const fn table_size(ctrl: u16) -> u16 {
        (ctrl & 0x7ff) + 1
    }
    /// Table Offset/BIR (32 bits).
    pub const TABLE: u16 = 0x04;
    /// PBA Offset/BIR (32 bits).
    pub const PBA: u16 = 0x08;
    /// The BAR index (bits 2:0) of a Table or PBA Offset/BIR register.
    pub const fn bir(reg: u32) -> u8 {
        (reg & 7) as u8
    }
    /// The offset in the BAR (bits 31:3, 8-byte aligned) of a Table or PBA Offset/BIR register.
    pub const fn offset(reg: u32) -> u32 {
        reg & !7
    }
    /// Size of one table entry.
    pub const ENTRY_SIZE: usize = 16;
    /// Vector Control: Mask Bit (bit 0).
    pub const VECTOR_MASKED: u32 = 1;
}

/// One MSI-X table entry: 16 bytes in the BAR the Table BIR names.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct MsixEntry {
    /// Message Address, lower 32 bits (dword aligned).
    pub msg_addr_lo: u32,
    /// Message Address, upper 32 bits.
    pub msg_addr_hi: u32,
    /// Message Data.
    pub msg_data: u32,
    /// Vector Control: mask bit 0.
    pub vector_control: u32,
}
crate::assert_size!(MsixEntry, 16);

impl MsixEntry {
    /// The 64-bit message address.
    pub const fn address(&self) -> u64 {
        self.msg_addr_lo as u64 | (self.msg_addr_hi as u64) << 32
    }
    /// Whether the vector is masked.
    pub const fn masked(&self) -> bool {
        self.vector_control & msix::VECTOR_MASKED != 0
    }
}

/// PCI Express capability registers, relative to the capability.
pub mod pcie {
    /// PCI Express Capabilities register (16 bits): version (3:0), device/port type (7:4).
    pub const CAPS: u16 = 0x02;
    /// Device/port type of the PCI Express Capabilities register.
    pub const fn port_type(caps: u16) -> u8 {
        ((caps >> 4) & 0xf) as u8
    }
    /// Device/port type: PCI Express endpoint.
    pub const TYPE_ENDPOINT: u8 = 0x0;
    /// Device/port type: root port.
    pub const TYPE_ROOT_PORT: u8 = 0x4;
    /// Device/port type: switch downstream port.
    pub const TYPE_DOWNSTREAM_PORT: u8 = 0x6;

    /// Device Capabilities (32 bits).
    pub const DEVCAP: u16 = 0x04;
    /// Device Capabilities: Max Payload Size Supported (bits 2:0), `128 << n` bytes.
    pub const fn devcap_mps(devcap: u32) -> u8 {
        (devcap & 7) as u8
    }
    /// Device Capabilities: Function Level Reset Capability (bit 28).
    pub const DEVCAP_FLR: u32 = 1 << 28;

    /// Device Control (16 bits).
    pub const DEVCTL: u16 = 0x08;
    /// Device Control: Max Payload Size (bits 7:5), `128 << n` bytes.
    pub const fn devctl_mps(devctl: u16) -> u8 {
        ((devctl >> 5) & 7) as u8
    }
    /// Device Control: Max Read Request Size (bits 14:12), `128 << n` bytes.
    pub const fn devctl_mrrs(devctl: u16) -> u8 {
        ((devctl >> 12) & 7) as u8
    }
    /// Device Control: Initiate Function Level Reset (bit 15).
    pub const DEVCTL_INITIATE_FLR: u16 = 1 << 15;

    /// Device Status (16 bits).
    pub const DEVSTA: u16 = 0x0a;
    /// Device Status: Transactions Pending (bit 5).
    pub const DEVSTA_TRANSACTIONS_PENDING: u16 = 1 << 5;

    /// Link Capabilities (32 bits).
    pub const LINKCAP: u16 = 0x0c;
    /// Link Capabilities: Max Link Speed (bits 3:0, see [`speed_gts`]).
    pub const fn linkcap_speed(linkcap: u32) -> u8 {
        (linkcap & 0xf) as u8
    }
    /// Link Capabilities: Maximum Link Width (bits 9:4).
    pub const fn linkcap_width(linkcap: u32) -> u8 {
        ((linkcap >> 4) & 0x3f) as u8
    }
    /// Link Capabilities: ASPM Support (bits 11:10): bit 0 L0s, bit 1 L1.
    pub const fn linkcap_aspm(linkcap: u32) -> u8 {
        ((linkcap >> 10) & 3) as u8
    }

    /// Link Control (16 bits).
    pub const LINKCTL: u16 = 0x10;
    /// Link Control: ASPM Control mask (bits 1:0): 0 disabled, 1 L0s, 2 L1, 3 both.
    pub const LINKCTL_ASPM_MASK: u16 = 0x3;
    /// Link Control: Link Disable (bit 4).
    pub const LINKCTL_LINK_DISABLE: u16 = 1 << 4;
    /// Link Control: Retrain Link (bit 5).
    pub const LINKCTL_RETRAIN: u16 = 1 << 5;

    /// Link Status (16 bits).
    pub const LINKSTA: u16 = 0x12;
    /// Link Status: Current Link Speed (bits 3:0, see [`speed_gts`]).
    pub const fn linksta_speed(linksta: u16) -> u8 {
        (linksta & 0xf) as u8
    }
    /// Link Status: Negotiated Link Width (bits 9:4).
    pub const fn linksta_width(linksta: u16) -> u8 {
        ((linksta >> 4) & 0x3f) as u8
    }
    /// Link Status: Link Training (bit 11).
    pub const LINKSTA_TRAINING: u16 = 1 << 11;
    /// Link Status: Data Link Layer Link Active (bit 13).
    pub const LINKSTA_DLLLA: u16 = 1 << 13;

    /// Slot Capabilities (32 bits).
    pub const SLOTCAP: u16 = 0x14;
    /// Slot Control (16 bits).
    pub const SLOTCTL: u16 = 0x18;
    /// Slot Status (16 bits).
    pub const SLOTSTA: u16 = 0x1a;
    /// Device Capabilities 2 (32 bits).
    pub const DEVCAP2: u16 = 0x24;
    /// Device Control 2 (16 bits).
    pub const DEVCTL2: u16 = 0x28;
    /// Link Capabilities 2 (32 bits).
    pub const LINKCAP2: u16 = 0x2c;

    /// Link Control 2 (16 bits).
    pub const LINKCTL2: u16 = 0x30;
    /// Link Control 2: Target Link Speed mask (bits 3:0).
    pub const LINKCTL2_TARGET_SPEED_MASK: u16 = 0xf;
    /// Link Status 2 (16 bits).
    pub const LINKSTA2: u16 = 0x32;

    /// The rate in GT/s of a link speed code (1 = 2.5 GT/s ... 6 = 64 GT/s); `None` if unknown.
    pub const fn speed_gts(code: u8) -> Option<f32> {
        match code {
            1 => Some(2.5),
            2 => Some(5.0),
            3 => Some(8.0),
            4 => Some(16.0),
            5 => Some(32.0),
            6 => Some(64.0),
            _ => None,
        }
    }
}

/// Reads a little-endian u16 at `off`; `None` out of range.
pub fn read_u16(config: &[u8], off: usize) -> Option<u16> {
    let b = config.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// Reads a little-endian u32 at `off`; `None` out of range.
pub fn read_u32(config: &[u8], off: usize) -> Option<u32> {
    let b = config.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The class code (base class, subclass, programming interface) as one 24-bit value.
pub fn class_code(config: &[u8]) -> Option<u32> {
    read_u32(config, REVISION_ID as usize).map(|v| v >> 8)
}

/// Most entries a legacy list can hold: 48 four-byte-aligned slots after the header.
const MAX_CAPS: usize = (CONFIG_SPACE_SIZE - 0x40) / 4;
/// Most entries an extended list can hold.
const MAX_EXT_CAPS: usize = (EXT_CONFIG_SPACE_SIZE - EXT_CAP_START as usize) / 4;

/// The legacy capabilities as `(id, offset)`, in list order.
///
/// The walk starts at the capabilities pointer when the status register has the capabilities
/// list bit. It stops at a null pointer, at a pointer into the header (below 0x40) or beyond
/// the data, and after as many entries as the space can hold, so a looping list ends.
pub fn capabilities(config: &[u8]) -> impl Iterator<Item = (u8, u16)> + '_ {
    let has_list =
        read_u16(config, STATUS as usize).is_some_and(|s| s & status::CAPABILITIES_LIST != 0);
    let mut ptr = if has_list {
        config
            .get(CAPABILITIES_POINTER as usize)
            .copied()
            .unwrap_or(0)
            & !3
    } else {
        0
    };
    let mut left = MAX_CAPS;
    core::iter::from_fn(move || {
        if ptr < 0x40 || left == 0 {
            return None;
        }
        left -= 1;
        let at = ptr as usize;
        let id = *config.get(at)?;
        let next = *config.get(at + 1)?;
        ptr = next & !3;
        Some((id, at as u16))
    })
}

/// Offset of the first legacy capability with ID `cap_id` (see [`cap_id`]), walking the list
/// as [`capabilities`] does.
pub fn find_capability(config: &[u8], cap_id: u8) -> Option<u16> {
    capabilities(config)
        .find(|&(id, _)| id == cap_id)
        .map(|(_, at)| at)
}

/// The extended capabilities as `(id, version, offset)`, in list order, from offset 0x100.
///
/// The walk stops at an empty (0) or absent (all ones) header, at a next pointer below 0x100
/// or beyond the data, and after as many entries as the space can hold.
pub fn ext_capabilities(config: &[u8]) -> impl Iterator<Item = (u16, u8, u16)> + '_ {
    let mut ptr = EXT_CAP_START;
    let mut left = MAX_EXT_CAPS;
    core::iter::from_fn(move || {
        if ptr < EXT_CAP_START || left == 0 {
            return None;
        }
        left -= 1;
        let at = ptr;
        let header = read_u32(config, at as usize)?;
        if header == 0 || header == u32::MAX {
            return None;
        }
        ptr = ((header >> 20) as u16) & !3;
        Some((header as u16, ((header >> 16) & 0xf) as u8, at))
    })
}

/// Offset of the first extended capability with ID `cap_id` (see [`ext_cap_id`]), walking the
/// list as [`ext_capabilities`] does.
pub fn find_ext_capability(config: &[u8], cap_id: u16) -> Option<u16> {
    ext_capabilities(config)
        .find(|&(id, _, _)| id == cap_id)
        .map(|(_, _, at)| at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config space with the capabilities list bit and the given `(offset, id, next)` entries.
    fn config_with(caps: &[(usize, u8, u8)], first: u8) -> Vec<u8> {
        let mut c = vec![0u8; EXT_CONFIG_SPACE_SIZE];
        c[STATUS as usize] = status::CAPABILITIES_LIST as u8;
        c[CAPABILITIES_POINTER as usize] = first;
        for &(at, id, next) in caps {
            c[at] = id;
            c[at + 1] = next;
        }
        c
    }

    fn put_ext(c: &mut [u8], at: usize, id: u16, next: u16) {
        let h = id as u32 | 1 << 16 | (next as u32) << 20;
        c[at..at + 4].copy_from_slice(&h.to_le_bytes());
    }

    #[test]
    fn finds_capabilities() {
        let c = config_with(
            &[
                (0x40, cap_id::PM, 0x50),
                (0x50, cap_id::MSIX, 0x70),
                (0x70, cap_id::PCIE, 0),
            ],
            0x40,
        );
        assert_eq!(find_capability(&c, cap_id::PM), Some(0x40));
        assert_eq!(find_capability(&c, cap_id::MSIX), Some(0x50));
        assert_eq!(find_capability(&c, cap_id::PCIE), Some(0x70));
        assert_eq!(find_capability(&c, cap_id::MSI), None);
        assert_eq!(capabilities(&c).count(), 3);
        // Without the status bit the pointer is not trusted.
        let mut no_list = c.clone();
        no_list[STATUS as usize] = 0;
        assert_eq!(find_capability(&no_list, cap_id::PM), None);
    }

    #[test]
    fn survives_broken_lists() {
        // A loop: 0x40 -> 0x50 -> 0x40 ...
        let c = config_with(
            &[(0x40, cap_id::PM, 0x50), (0x50, cap_id::MSIX, 0x40)],
            0x40,
        );
        assert_eq!(find_capability(&c, cap_id::PCIE), None);
        assert_eq!(capabilities(&c).count(), MAX_CAPS);
        // A self loop.
        let c = config_with(&[(0x40, cap_id::PM, 0x40)], 0x40);
        assert_eq!(find_capability(&c, cap_id::MSI), None);
        // Pointers into the header, or past a short config space.
        let c = config_with(&[(0x40, cap_id::PM, 0x10)], 0x40);
        assert_eq!(capabilities(&c).count(), 1);
        let c = config_with(&[(0x40, cap_id::PM, 0xfc)], 0x40);
        assert_eq!(find_capability(&c[..0x80], cap_id::MSIX), None);
        // The low two bits of pointers are reserved.
        let c = config_with(&[(0x40, cap_id::PM, 0x53), (0x50, cap_id::MSIX, 0)], 0x43);
        assert_eq!(find_capability(&c, cap_id::MSIX), Some(0x50));
        // Too short for even the header.
        assert_eq!(find_capability(&[], cap_id::PM), None);
        assert_eq!(find_capability(&[0u8; 7], cap_id::PM), None);
    }

    #[test]
    fn finds_extended_capabilities() {
        let mut c = vec![0u8; EXT_CONFIG_SPACE_SIZE];
        put_ext(&mut c, 0x100, ext_cap_id::AER, 0x150);
        put_ext(&mut c, 0x150, ext_cap_id::DSN, 0x200);
        put_ext(&mut c, 0x200, ext_cap_id::L1SS, 0);
        assert_eq!(find_ext_capability(&c, ext_cap_id::AER), Some(0x100));
        assert_eq!(find_ext_capability(&c, ext_cap_id::L1SS), Some(0x200));
        assert_eq!(find_ext_capability(&c, ext_cap_id::SRIOV), None);
        assert_eq!(
            ext_capabilities(&c).nth(1),
            Some((ext_cap_id::DSN, 1, 0x150))
        );
        // A loop back to 0x100, a pointer into legacy space, a short buffer.
        put_ext(&mut c, 0x200, ext_cap_id::L1SS, 0x100);
        assert_eq!(find_ext_capability(&c, ext_cap_id::SRIOV), None);
        put_ext(&mut c, 0x200, ext_cap_id::L1SS, 0x40);
        assert_eq!(ext_capabilities(&c).count(), 3);
        assert_eq!(find_ext_capability(&c[..0x100], ext_cap_id::AER), None);
        assert_eq!(find_ext_capability(&c[..0x180], ext_cap_id::L1SS), None);
        // No extended space at all (all ones, as a conventional PCI device reads).
        let ones = vec![0xffu8; EXT_CONFIG_SPACE_SIZE];
        assert_eq!(ext_capabilities(&ones).count(), 0);
    }

    #[test]
    fn register_fields() {
        assert_eq!(bar_offset(5), 0x24);
        let mut c = vec![0u8; 64];
        c[9..12].copy_from_slice(&[0x02, 0x08, 0x01]);
        assert_eq!(class_code(&c), Some(NVME_CLASS_CODE));
        assert_eq!(msix::table_size(0x8000 | 64), 65);
        assert_eq!((msix::bir(0x2004), msix::offset(0x2004)), (4, 0x2000));
        let e = MsixEntry {
            msg_addr_lo: 0xfee0_0000,
            msg_addr_hi: 1,
            msg_data: 0x41,
            vector_control: 1,
        };
        assert_eq!(e.address(), 0x1_fee0_0000);
        assert!(e.masked());
        assert_eq!(pcie::linkcap_speed(0x0040_0c43), 3);
        assert_eq!(pcie::linkcap_width(0x0040_0c43), 4);
        assert_eq!(pcie::linkcap_aspm(0x0040_0c43), 3);
        assert_eq!(pcie::linksta_width(0x1043), 4);
        assert_eq!(pcie::speed_gts(4), Some(16.0));
        assert_eq!(msi::mmc(0x008a), 5);
    }
}
