//! Identify data structures (NVMe 2.0 base spec, section 5.17; NVM command set spec 1.0, 4.1.5).
//!
//! The Identify command returns one 4096-byte data structure selected by CNS (command dword 10
//! bits 7:0). This module has the controller ([`IdentifyController`]) and NVM namespace
//! ([`IdentifyNamespace`]) structures with every field of NVMe 2.0 by its spec name, the
//! namespace identification descriptor list, and field tables ([`Field`]) that let a script
//! read any field by name without knowing the layout.

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// Size of every Identify data structure.
pub const IDENTIFY_DATA_SIZE: usize = 4096;

/// CNS values: which data structure Identify returns (NVMe 2.0 base spec, figure 273).
pub mod cns {
    /// Identify Namespace data structure for the specified NSID.
    pub const NAMESPACE: u8 = 0x00;
    /// Identify Controller data structure.
    pub const CONTROLLER: u8 = 0x01;
    /// Active namespace ID list: NSIDs greater than the specified one.
    pub const ACTIVE_NS_LIST: u8 = 0x02;
    /// Namespace identification descriptor list for the specified NSID.
    pub const NS_ID_DESCRIPTOR_LIST: u8 = 0x03;
    /// NVM Set list.
    pub const NVM_SET_LIST: u8 = 0x04;
    /// I/O command set specific Identify Namespace data structure.
    pub const CSI_NAMESPACE: u8 = 0x05;
    /// I/O command set specific Identify Controller data structure.
    pub const CSI_CONTROLLER: u8 = 0x06;
    /// Active namespace ID list of one I/O command set.
    pub const CSI_ACTIVE_NS_LIST: u8 = 0x07;
    /// I/O command set independent Identify Namespace data structure.
    pub const CS_INDEPENDENT_NAMESPACE: u8 = 0x08;
    /// Allocated namespace ID list.
    pub const ALLOCATED_NS_LIST: u8 = 0x10;
    /// Identify Namespace data structure for an allocated NSID.
    pub const ALLOCATED_NAMESPACE: u8 = 0x11;
    /// Controller list: controllers attached to the specified NSID.
    pub const NS_CONTROLLER_LIST: u8 = 0x12;
    /// Controller list: all controllers of the NVM subsystem.
    pub const CONTROLLER_LIST: u8 = 0x13;
    /// Primary controller capabilities.
    pub const PRIMARY_CONTROLLER_CAPS: u8 = 0x14;
    /// Secondary controller list.
    pub const SECONDARY_CONTROLLER_LIST: u8 = 0x15;
    /// Namespace granularity list.
    pub const NS_GRANULARITY_LIST: u8 = 0x16;
    /// UUID list.
    pub const UUID_LIST: u8 = 0x17;
    /// Domain list.
    pub const DOMAIN_LIST: u8 = 0x18;
    /// Endurance group list.
    pub const ENDURANCE_GROUP_LIST: u8 = 0x19;
    /// Allocated namespace ID list of one I/O command set.
    pub const CSI_ALLOCATED_NS_LIST: u8 = 0x1a;
    /// I/O command set specific Identify Namespace data structure for an allocated NSID.
    pub const CSI_ALLOCATED_NAMESPACE: u8 = 0x1b;
    /// I/O command set data structure.
    pub const IO_COMMAND_SET: u8 = 0x1c;

    /// Command dword 10 of Identify: CNS (bits 7:0) and controller identifier (bits 31:16).
    pub const fn cdw10(cns: u8, cntid: u16) -> u32 {
        cns as u32 | (cntid as u32) << 16
    }

    /// Command dword 11 of Identify: CNS specific identifier (bits 15:0) and command set
    /// identifier (bits 31:24).
    pub const fn cdw11(cnssid: u16, csi: u8) -> u32 {
        cnssid as u32 | (csi as u32) << 24
    }
}

/// Command set identifiers (CSI).
pub mod csi {
    /// NVM command set.
    pub const NVM: u8 = 0x00;
    /// Key value command set.
    pub const KEY_VALUE: u8 = 0x01;
    /// Zoned namespace command set.
    pub const ZNS: u8 = 0x02;
}

/// How a field of a table is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// A little-endian unsigned integer of 1 to 16 bytes.
    Int,
    /// ASCII text, padded on the right with spaces (or NULs).
    Str,
    /// Raw bytes.
    Bytes,
}

/// One named field of a data structure: where it is and how to decode it.
///
/// Tables of fields let the Python face read `id_data.mdts` or `id_data["sn"]` without a
/// line of layout code of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Field {
    /// The spec's abbreviation, in lower case.
    pub name: &'static str,
    /// Byte offset in the data structure.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
    /// How the bytes are decoded.
    pub kind: FieldKind,
}

impl Field {
    /// A table entry.
    pub const fn new(name: &'static str, offset: usize, len: usize, kind: FieldKind) -> Field {
        Field {
            name,
            offset,
            len,
            kind,
        }
    }

    /// The field's bytes in `data`, or `None` when `data` is too short.
    pub fn bytes<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        data.get(self.offset..self.offset.checked_add(self.len)?)
    }

    /// The field as a little-endian integer; `None` when `data` is too short or the field is
    /// longer than 16 bytes.
    pub fn int(&self, data: &[u8]) -> Option<u128> {
        let b = self.bytes(data)?;
        if b.len() > 16 {
            return None;
        }
        Some(b.iter().rev().fold(0u128, |v, &x| (v << 8) | x as u128))
    }

    /// The field as text, trailing spaces and NULs removed; `None` when `data` is too short.
    pub fn text(&self, data: &[u8]) -> Option<String> {
        self.bytes(data).map(ascii_trim)
    }

    /// The entry named `name` in a table.
    pub fn find(table: &'static [Field], name: &str) -> Option<&'static Field> {
        table.iter().find(|f| f.name == name)
    }
}

/// Text of a space-padded ASCII field (SN, MN, FR ...), trailing spaces and NULs removed.
/// Bytes that are not UTF-8 are replaced, since a device under test may return anything.
pub fn ascii_trim(field: &[u8]) -> String {
    let end = field
        .iter()
        .rposition(|&b| b != b' ' && b != 0)
        .map_or(0, |i| i + 1);
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// Writes `s` into a space-padded ASCII field, truncating it to the field's length.
pub fn ascii_pad(field: &mut [u8], s: &str) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s.as_bytes()[..n]);
    field[n..].fill(b' ');
}

/// Reads a 128-bit little-endian counter (TNVMCAP, NVMCAP, SMART counters ...).
pub const fn u128_from_le(b: &[u8; 16]) -> u128 {
    u128::from_le_bytes(*b)
}

/// A power state descriptor: 32 bytes (NVMe 2.0 base spec, figure 276).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PowerStateDescriptor {
    /// Maximum Power, in 0.01 W units, or 0.0001 W when MXPS is set.
    pub mp: u16,
    /// Reserved.
    pub rsvd2: u8,
    /// Max Power Scale (bit 0) and Non-Operational State (bit 1).
    pub flags: u8,
    /// Entry Latency, microseconds.
    pub enlat: u32,
    /// Exit Latency, microseconds.
    pub exlat: u32,
    /// Relative Read Throughput (bits 4:0).
    pub rrt: u8,
    /// Relative Read Latency (bits 4:0).
    pub rrl: u8,
    /// Relative Write Throughput (bits 4:0).
    pub rwt: u8,
    /// Relative Write Latency (bits 4:0).
    pub rwl: u8,
    /// Idle Power.
    pub idlp: u16,
    /// Idle Power Scale (bits 7:6): 1 is 0.0001 W, 2 is 0.01 W.
    pub ips: u8,
    /// Reserved.
    pub rsvd19: u8,
    /// Active Power.
    pub actp: u16,
    /// Active Power Workload (bits 2:0) and Active Power Scale (bits 7:6).
    pub apw_aps: u8,
    /// Reserved.
    pub rsvd23: [u8; 9],
}
crate::assert_size!(PowerStateDescriptor, 32);

impl PowerStateDescriptor {
    /// Max Power Scale: MP is in 0.0001 W units instead of 0.01 W.
    pub const fn mxps(&self) -> bool {
        self.flags & 1 != 0
    }
    /// Non-Operational State: the controller processes no I/O in this state.
    pub const fn nops(&self) -> bool {
        self.flags & 2 != 0
    }
    /// Idle Power Scale (bits 7:6 of byte 18).
    pub const fn idle_power_scale(&self) -> u8 {
        self.ips >> 6
    }
    /// Active Power Workload (bits 2:0 of byte 22).
    pub const fn apw(&self) -> u8 {
        self.apw_aps & 7
    }
    /// Active Power Scale (bits 7:6 of byte 22).
    pub const fn aps(&self) -> u8 {
        self.apw_aps >> 6
    }
    /// Maximum power in watts, scale applied.
    pub fn max_power_watts(&self) -> f64 {
        self.mp as f64 * if self.mxps() { 0.0001 } else { 0.01 }
    }
}

/// The Identify Controller data structure: 4096 bytes (NVMe 2.0 base spec, figure 275).
///
/// Bytes 240..255 are defined by the NVMe Management Interface spec (NVMSR, VWCI, MEC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IdentifyController {
    /// PCI Vendor ID.
    pub vid: u16,
    /// PCI Subsystem Vendor ID.
    pub ssvid: u16,
    /// Serial Number, ASCII, space padded.
    pub sn: [u8; 20],
    /// Model Number, ASCII, space padded.
    pub mn: [u8; 40],
    /// Firmware Revision, ASCII, space padded.
    pub fr: [u8; 8],
    /// Recommended Arbitration Burst, log2.
    pub rab: u8,
    /// IEEE OUI Identifier, little endian.
    pub ieee: [u8; 3],
    /// Controller Multi-Path I/O and Namespace Sharing Capabilities.
    pub cmic: u8,
    /// Maximum Data Transfer Size, log2 in units of CAP.MPSMIN; 0 is no limit.
    pub mdts: u8,
    /// Controller ID.
    pub cntlid: u16,
    /// Version, as the VS register.
    pub ver: u32,
    /// RTD3 Resume Latency, microseconds.
    pub rtd3r: u32,
    /// RTD3 Entry Latency, microseconds.
    pub rtd3e: u32,
    /// Optional Asynchronous Events Supported.
    pub oaes: u32,
    /// Controller Attributes.
    pub ctratt: u32,
    /// Read Recovery Levels Supported.
    pub rrls: u16,
    /// Reserved.
    pub rsvd102: [u8; 9],
    /// Controller Type: 1 I/O, 2 discovery, 3 administrative.
    pub cntrltype: u8,
    /// FRU Globally Unique Identifier.
    pub fguid: [u8; 16],
    /// Command Retry Delay Time 1, 100 ms units.
    pub crdt1: u16,
    /// Command Retry Delay Time 2, 100 ms units.
    pub crdt2: u16,
    /// Command Retry Delay Time 3, 100 ms units.
    pub crdt3: u16,
    /// Reserved.
    pub rsvd134: [u8; 119],
    /// NVM Subsystem Report (NVMe-MI).
    pub nvmsr: u8,
    /// VPD Write Cycle Information (NVMe-MI).
    pub vwci: u8,
    /// Management Endpoint Capabilities (NVMe-MI).
    pub mec: u8,
    /// Optional Admin Command Support.
    pub oacs: u16,
    /// Abort Command Limit, 0-based.
    pub acl: u8,
    /// Asynchronous Event Request Limit, 0-based.
    pub aerl: u8,
    /// Firmware Updates.
    pub frmw: u8,
    /// Log Page Attributes.
    pub lpa: u8,
    /// Error Log Page Entries, 0-based.
    pub elpe: u8,
    /// Number of Power States Support, 0-based.
    pub npss: u8,
    /// Admin Vendor Specific Command Configuration.
    pub avscc: u8,
    /// Autonomous Power State Transition Attributes.
    pub apsta: u8,
    /// Warning Composite Temperature Threshold, kelvin.
    pub wctemp: u16,
    /// Critical Composite Temperature Threshold, kelvin.
    pub cctemp: u16,
    /// Maximum Time for Firmware Activation, 100 ms units.
    pub mtfa: u16,
    /// Host Memory Buffer Preferred Size, 4 KiB units.
    pub hmpre: u32,
    /// Host Memory Buffer Minimum Size, 4 KiB units.
    pub hmmin: u32,
    /// Total NVM Capacity, bytes (128-bit).
    pub tnvmcap: [u8; 16],
    /// Unallocated NVM Capacity, bytes (128-bit).
    pub unvmcap: [u8; 16],
    /// Replay Protected Memory Block Support.
    pub rpmbs: u32,
    /// Extended Device Self-test Time, minutes.
    pub edstt: u16,
    /// Device Self-test Options.
    pub dsto: u8,
    /// Firmware Update Granularity, 4 KiB units.
    pub fwug: u8,
    /// Keep Alive Support, 100 ms units.
    pub kas: u16,
    /// Host Controlled Thermal Management Attributes.
    pub hctma: u16,
    /// Minimum Thermal Management Temperature, kelvin.
    pub mntmt: u16,
    /// Maximum Thermal Management Temperature, kelvin.
    pub mxtmt: u16,
    /// Sanitize Capabilities.
    pub sanicap: u32,
    /// Host Memory Buffer Minimum Descriptor Entry Size, 4 KiB units.
    pub hmminds: u32,
    /// Host Memory Maximum Descriptors Entries.
    pub hmmaxd: u16,
    /// NVM Set Identifier Maximum.
    pub nsetidmax: u16,
    /// Endurance Group Identifier Maximum.
    pub endgidmax: u16,
    /// ANA Transition Time, seconds.
    pub anatt: u8,
    /// Asymmetric Namespace Access Capabilities.
    pub anacap: u8,
    /// ANA Group Identifier Maximum.
    pub anagrpmax: u32,
    /// Number of ANA Group Identifiers.
    pub nanagrpid: u32,
    /// Persistent Event Log Size, 64 KiB units.
    pub pels: u32,
    /// Domain Identifier.
    pub domainid: u16,
    /// Reserved.
    pub rsvd358: [u8; 10],
    /// Max Endurance Group Capacity, bytes (128-bit).
    pub megcap: [u8; 16],
    /// Reserved.
    pub rsvd384: [u8; 128],
    /// Submission Queue Entry Size: required (bits 3:0) and maximum (bits 7:4), log2.
    pub sqes: u8,
    /// Completion Queue Entry Size: required (bits 3:0) and maximum (bits 7:4), log2.
    pub cqes: u8,
    /// Maximum Outstanding Commands.
    pub maxcmd: u16,
    /// Number of Namespaces: the largest valid NSID.
    pub nn: u32,
    /// Optional NVM Command Support.
    pub oncs: u16,
    /// Fused Operation Support.
    pub fuses: u16,
    /// Format NVM Attributes.
    pub fna: u8,
    /// Volatile Write Cache: present (bit 0), flush behaviour (bits 2:1).
    pub vwc: u8,
    /// Atomic Write Unit Normal, logical blocks, 0-based.
    pub awun: u16,
    /// Atomic Write Unit Power Fail, logical blocks, 0-based.
    pub awupf: u16,
    /// I/O Command Set Vendor Specific Command Configuration.
    pub icsvscc: u8,
    /// Namespace Write Protection Capabilities.
    pub nwpc: u8,
    /// Atomic Compare & Write Unit, logical blocks, 0-based.
    pub acwu: u16,
    /// Copy Descriptor Formats Supported.
    pub cdfs: u16,
    /// SGL Support (see [`crate::sgl::sgls`]).
    pub sgls: u32,
    /// Maximum Number of Allowed Namespaces.
    pub mnan: u32,
    /// Maximum Domain Namespace Attachments (128-bit).
    pub maxdna: [u8; 16],
    /// Maximum I/O Controller Namespace Attachments.
    pub maxcna: u32,
    /// Reserved.
    pub rsvd564: [u8; 204],
    /// NVM Subsystem NVMe Qualified Name, UTF-8, NUL terminated.
    pub subnqn: [u8; 256],
    /// Reserved.
    pub rsvd1024: [u8; 768],
    /// I/O Queue Command Capsule Supported Size (fabrics), 16-byte units.
    pub ioccsz: u32,
    /// I/O Queue Response Capsule Supported Size (fabrics), 16-byte units.
    pub iorcsz: u32,
    /// In Capsule Data Offset (fabrics), 16-byte units.
    pub icdoff: u16,
    /// Fabrics Controller Attributes.
    pub fcatt: u8,
    /// Maximum SGL Data Block Descriptors (fabrics).
    pub msdbd: u8,
    /// Optional Fabric Commands Support.
    pub ofcs: u16,
    /// Reserved.
    pub rsvd1806: [u8; 242],
    /// Power State Descriptors 0..31.
    pub psd: [PowerStateDescriptor; 32],
    /// Vendor Specific.
    pub vs: [u8; 1024],
}
crate::assert_size!(IdentifyController, IDENTIFY_DATA_SIZE);

impl Default for IdentifyController {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

/// Optional Admin Command Support bits (OACS).
pub mod oacs {
    /// Security Send and Security Receive.
    pub const SECURITY: u16 = 1 << 0;
    /// Format NVM.
    pub const FORMAT: u16 = 1 << 1;
    /// Firmware Commit and Firmware Image Download.
    pub const FIRMWARE: u16 = 1 << 2;
    /// Namespace Management.
    pub const NS_MANAGEMENT: u16 = 1 << 3;
    /// Device Self-test.
    pub const SELF_TEST: u16 = 1 << 4;
    /// Directives.
    pub const DIRECTIVES: u16 = 1 << 5;
    /// NVMe-MI Send and Receive.
    pub const MI: u16 = 1 << 6;
    /// Virtualization Management.
    pub const VIRT_MGMT: u16 = 1 << 7;
    /// Doorbell Buffer Config.
    pub const DOORBELL_BUFFER_CONFIG: u16 = 1 << 8;
    /// Get LBA Status.
    pub const GET_LBA_STATUS: u16 = 1 << 9;
    /// Command and Feature Lockdown.
    pub const LOCKDOWN: u16 = 1 << 10;
}

/// Optional NVM Command Support bits (ONCS).
pub mod oncs {
    /// Compare.
    pub const COMPARE: u16 = 1 << 0;
    /// Write Uncorrectable.
    pub const WRITE_UNCORRECTABLE: u16 = 1 << 1;
    /// Dataset Management.
    pub const DSM: u16 = 1 << 2;
    /// Write Zeroes.
    pub const WRITE_ZEROES: u16 = 1 << 3;
    /// Save field in Set Features and select in Get Features.
    pub const SAVE_SELECT: u16 = 1 << 4;
    /// Reservations.
    pub const RESERVATIONS: u16 = 1 << 5;
    /// Timestamp feature.
    pub const TIMESTAMP: u16 = 1 << 6;
    /// Verify.
    pub const VERIFY: u16 = 1 << 7;
    /// Copy.
    pub const COPY: u16 = 1 << 8;
}

impl IdentifyController {
    /// Serial number as text.
    pub fn serial(&self) -> String {
        ascii_trim(&self.sn)
    }
    /// Model number as text.
    pub fn model(&self) -> String {
        ascii_trim(&self.mn)
    }
    /// Firmware revision as text.
    pub fn firmware(&self) -> String {
        ascii_trim(&self.fr)
    }
    /// NVM subsystem NQN as text.
    pub fn nqn(&self) -> String {
        ascii_trim(&self.subnqn)
    }
    /// Total NVM capacity in bytes.
    pub const fn tnvmcap(&self) -> u128 {
        u128_from_le(&self.tnvmcap)
    }
    /// Unallocated NVM capacity in bytes.
    pub const fn unvmcap(&self) -> u128 {
        u128_from_le(&self.unvmcap)
    }
    /// Sets the total NVM capacity.
    pub fn set_tnvmcap(&mut self, v: u128) {
        self.tnvmcap = v.to_le_bytes();
    }
    /// Sets the unallocated NVM capacity.
    pub fn set_unvmcap(&mut self, v: u128) {
        self.unvmcap = v.to_le_bytes();
    }
    /// Required SQ entry size in bytes (SQES bits 3:0).
    pub const fn sq_entry_size(&self) -> usize {
        1 << (self.sqes & 0xf)
    }
    /// Required CQ entry size in bytes (CQES bits 3:0).
    pub const fn cq_entry_size(&self) -> usize {
        1 << (self.cqes & 0xf)
    }
    /// Maximum data transfer in bytes for a minimum memory page size of `page_size`;
    /// `None` when MDTS is 0 (no limit).
    pub const fn max_transfer(&self, page_size: usize) -> Option<usize> {
        if self.mdts == 0 {
            None
        } else if self.mdts as u32 >= usize::BITS {
            Some(usize::MAX)
        } else {
            Some(page_size.saturating_mul(1 << self.mdts))
        }
    }
    /// Whether a volatile write cache is present (VWC bit 0).
    pub const fn has_vwc(&self) -> bool {
        self.vwc & 1 != 0
    }

    /// Every named field, by its spec offset (reserved ranges left out).
    pub const FIELDS: &'static [Field] = &{
        use FieldKind::*;
        [
            Field::new("vid", 0, 2, Int),
            Field::new("ssvid", 2, 2, Int),
            Field::new("sn", 4, 20, Str),
            Field::new("mn", 24, 40, Str),
            Field::new("fr", 64, 8, Str),
            Field::new("rab", 72, 1, Int),
            Field::new("ieee", 73, 3, Int),
            Field::new("cmic", 76, 1, Int),
            Field::new("mdts", 77, 1, Int),
            Field::new("cntlid", 78, 2, Int),
            Field::new("ver", 80, 4, Int),
            Field::new("rtd3r", 84, 4, Int),
            Field::new("rtd3e", 88, 4, Int),
            Field::new("oaes", 92, 4, Int),
            Field::new("ctratt", 96, 4, Int),
            Field::new("rrls", 100, 2, Int),
            Field::new("cntrltype", 111, 1, Int),
            Field::new("fguid", 112, 16, Bytes),
            Field::new("crdt1", 128, 2, Int),
            Field::new("crdt2", 130, 2, Int),
            Field::new("crdt3", 132, 2, Int),
            Field::new("nvmsr", 253, 1, Int),
            Field::new("vwci", 254, 1, Int),
            Field::new("mec", 255, 1, Int),
            Field::new("oacs", 256, 2, Int),
            Field::new("acl", 258, 1, Int),
            Field::new("aerl", 259, 1, Int),
            Field::new("frmw", 260, 1, Int),
            Field::new("lpa", 261, 1, Int),
            Field::new("elpe", 262, 1, Int),
            Field::new("npss", 263, 1, Int),
            Field::new("avscc", 264, 1, Int),
            Field::new("apsta", 265, 1, Int),
            Field::new("wctemp", 266, 2, Int),
            Field::new("cctemp", 268, 2, Int),
            Field::new("mtfa", 270, 2, Int),
            Field::new("hmpre", 272, 4, Int),
            Field::new("hmmin", 276, 4, Int),
            Field::new("tnvmcap", 280, 16, Int),
            Field::new("unvmcap", 296, 16, Int),
            Field::new("rpmbs", 312, 4, Int),
            Field::new("edstt", 316, 2, Int),
            Field::new("dsto", 318, 1, Int),
            Field::new("fwug", 319, 1, Int),
            Field::new("kas", 320, 2, Int),
            Field::new("hctma", 322, 2, Int),
            Field::new("mntmt", 324, 2, Int),
            Field::new("mxtmt", 326, 2, Int),
            Field::new("sanicap", 328, 4, Int),
            Field::new("hmminds", 332, 4, Int),
            Field::new("hmmaxd", 336, 2, Int),
            Field::new("nsetidmax", 338, 2, Int),
            Field::new("endgidmax", 340, 2, Int),
            Field::new("anatt", 342, 1, Int),
            Field::new("anacap", 343, 1, Int),
            Field::new("anagrpmax", 344, 4, Int),
            Field::new("nanagrpid", 348, 4, Int),
            Field::new("pels", 352, 4, Int),
            Field::new("domainid", 356, 2, Int),
            Field::new("megcap", 368, 16, Int),
            Field::new("sqes", 512, 1, Int),
            Field::new("cqes", 513, 1, Int),
            Field::new("maxcmd", 514, 2, Int),
            Field::new("nn", 516, 4, Int),
            Field::new("oncs", 520, 2, Int),
            Field::new("fuses", 522, 2, Int),
            Field::new("fna", 524, 1, Int),
            Field::new("vwc", 525, 1, Int),
            Field::new("awun", 526, 2, Int),
            Field::new("awupf", 528, 2, Int),
            Field::new("icsvscc", 530, 1, Int),
            Field::new("nwpc", 531, 1, Int),
            Field::new("acwu", 532, 2, Int),
            Field::new("cdfs", 534, 2, Int),
            Field::new("sgls", 536, 4, Int),
            Field::new("mnan", 540, 4, Int),
            Field::new("maxdna", 544, 16, Int),
            Field::new("maxcna", 560, 4, Int),
            Field::new("subnqn", 768, 256, Str),
            Field::new("ioccsz", 1792, 4, Int),
            Field::new("iorcsz", 1796, 4, Int),
            Field::new("icdoff", 1800, 2, Int),
            Field::new("fcatt", 1802, 1, Int),
            Field::new("msdbd", 1803, 1, Int),
            Field::new("ofcs", 1804, 2, Int),
            Field::new("psd", 2048, 1024, Bytes),
            Field::new("vs", 3072, 1024, Bytes),
        ]
    };
}

/// An LBA format: 4 bytes (NVM command set spec 1.0, figure 98).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct LbaFormat {
    /// Metadata Size per logical block, bytes.
    pub ms: u16,
    /// LBA Data Size, log2 of bytes; 0 means the format is not available.
    pub lbads: u8,
    /// Relative Performance (bits 1:0): 0 best ... 3 degraded.
    pub rp: u8,
}
crate::assert_size!(LbaFormat, 4);

impl LbaFormat {
    /// A format of `data_size` bytes per block (a power of two, at least 2), `ms` metadata bytes
    /// and relative performance `rp`.
    pub const fn new(data_size: u32, ms: u16, rp: u8) -> LbaFormat {
        LbaFormat {
            ms,
            lbads: data_size.trailing_zeros() as u8,
            rp: rp & 3,
        }
    }

    /// Data size of one logical block in bytes; 0 when the format is not available
    /// (LBADS below 9 or too large to be meaningful).
    pub const fn data_size(&self) -> u32 {
        if self.lbads < 9 || self.lbads >= 32 {
            0
        } else {
            1 << self.lbads
        }
    }

    /// The format as the dword the spec draws: MS (15:0), LBADS (23:16), RP (25:24).
    pub const fn dword(&self) -> u32 {
        self.ms as u32 | (self.lbads as u32) << 16 | ((self.rp & 3) as u32) << 24
    }
}

/// The NVM command set Identify Namespace data structure: 4096 bytes (NVM command set spec 1.0,
/// figure 97).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IdentifyNamespace {
    /// Namespace Size, logical blocks.
    pub nsze: u64,
    /// Namespace Capacity, logical blocks.
    pub ncap: u64,
    /// Namespace Utilization, logical blocks.
    pub nuse: u64,
    /// Namespace Features.
    pub nsfeat: u8,
    /// Number of LBA Formats, 0-based.
    pub nlbaf: u8,
    /// Formatted LBA Size: format index (bits 3:0, upper bits 6:5), extended metadata (bit 4).
    pub flbas: u8,
    /// Metadata Capabilities.
    pub mc: u8,
    /// End-to-end Data Protection Capabilities.
    pub dpc: u8,
    /// End-to-end Data Protection Type Settings.
    pub dps: u8,
    /// Namespace Multi-path I/O and Namespace Sharing Capabilities.
    pub nmic: u8,
    /// Reservation Capabilities.
    pub rescap: u8,
    /// Format Progress Indicator.
    pub fpi: u8,
    /// Deallocate Logical Block Features: read value of deallocated blocks (bits 2:0).
    pub dlfeat: u8,
    /// Namespace Atomic Write Unit Normal, 0-based.
    pub nawun: u16,
    /// Namespace Atomic Write Unit Power Fail, 0-based.
    pub nawupf: u16,
    /// Namespace Atomic Compare & Write Unit, 0-based.
    pub nacwu: u16,
    /// Namespace Atomic Boundary Size Normal, 0-based.
    pub nabsn: u16,
    /// Namespace Atomic Boundary Offset.
    pub nabo: u16,
    /// Namespace Atomic Boundary Size Power Fail, 0-based.
    pub nabspf: u16,
    /// Namespace Optimal I/O Boundary, logical blocks.
    pub noiob: u16,
    /// NVM Capacity, bytes (128-bit).
    pub nvmcap: [u8; 16],
    /// Namespace Preferred Write Granularity, 0-based.
    pub npwg: u16,
    /// Namespace Preferred Write Alignment, 0-based.
    pub npwa: u16,
    /// Namespace Preferred Deallocate Granularity, 0-based.
    pub npdg: u16,
    /// Namespace Preferred Deallocate Alignment, 0-based.
    pub npda: u16,
    /// Namespace Optimal Write Size, 0-based.
    pub nows: u16,
    /// Maximum Single Source Range Length (Copy).
    pub mssrl: u16,
    /// Maximum Copy Length.
    pub mcl: u32,
    /// Maximum Source Range Count, 0-based.
    pub msrc: u8,
    /// Reserved.
    pub rsvd81: u8,
    /// Number of Unique Capability LBA Formats: formats beyond NLBAF.
    pub nulbaf: u8,
    /// Reserved.
    pub rsvd83: [u8; 9],
    /// ANA Group Identifier.
    pub anagrpid: u32,
    /// Reserved.
    pub rsvd96: [u8; 3],
    /// Namespace Attributes: write protected (bit 0).
    pub nsattr: u8,
    /// NVM Set Identifier.
    pub nvmsetid: u16,
    /// Endurance Group Identifier.
    pub endgid: u16,
    /// Namespace Globally Unique Identifier.
    pub nguid: [u8; 16],
    /// IEEE Extended Unique Identifier.
    pub eui64: [u8; 8],
    /// LBA Formats 0..63.
    pub lbaf: [LbaFormat; 64],
    /// Vendor Specific.
    pub vs: [u8; 3712],
}
crate::assert_size!(IdentifyNamespace, IDENTIFY_DATA_SIZE);

impl Default for IdentifyNamespace {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

impl IdentifyNamespace {
    /// Index of the formatted LBA format: FLBAS bits 3:0, with bits 6:5 as bits 5:4 of the
    /// index when more than 16 formats exist.
    pub const fn lba_format_index(&self) -> usize {
        ((self.flbas & 0xf) | ((self.flbas >> 5) & 3) << 4) as usize
    }

    /// Sets FLBAS to format `index` (0..63), keeping the extended-metadata bit.
    pub fn set_lba_format_index(&mut self, index: usize) {
        let i = (index & 0x3f) as u8;
        self.flbas = (self.flbas & 0x10) | (i & 0xf) | ((i >> 4) << 5);
    }

    /// LBA format `i`; a zeroed (unavailable) format when `i` is out of range.
    pub fn lbaf(&self, i: usize) -> LbaFormat {
        self.lbaf.get(i).copied().unwrap_or_default()
    }

    /// The LBA format in use.
    pub fn current_lbaf(&self) -> LbaFormat {
        self.lbaf(self.lba_format_index())
    }

    /// Logical block data size in bytes of the format in use (0 if FLBAS names a bad format).
    pub fn sector_size(&self) -> u32 {
        self.current_lbaf().data_size()
    }

    /// Metadata bytes per logical block of the format in use.
    pub fn metadata_size(&self) -> u16 {
        self.current_lbaf().ms
    }

    /// Whether metadata is transferred at the end of each block (FLBAS bit 4).
    pub const fn extended_lba(&self) -> bool {
        self.flbas & 0x10 != 0
    }

    /// NVM capacity in bytes.
    pub const fn nvmcap(&self) -> u128 {
        u128_from_le(&self.nvmcap)
    }

    /// Sets the NVM capacity.
    pub fn set_nvmcap(&mut self, v: u128) {
        self.nvmcap = v.to_le_bytes();
    }

    /// Every named field, by its spec offset (reserved ranges left out). `lbaf` is the raw
    /// array of 64 formats; [`IdentifyNamespace::lbaf`] decodes one.
    pub const FIELDS: &'static [Field] = &{
        use FieldKind::*;
        [
            Field::new("nsze", 0, 8, Int),
            Field::new("ncap", 8, 8, Int),
            Field::new("nuse", 16, 8, Int),
            Field::new("nsfeat", 24, 1, Int),
            Field::new("nlbaf", 25, 1, Int),
            Field::new("flbas", 26, 1, Int),
            Field::new("mc", 27, 1, Int),
            Field::new("dpc", 28, 1, Int),
            Field::new("dps", 29, 1, Int),
            Field::new("nmic", 30, 1, Int),
            Field::new("rescap", 31, 1, Int),
            Field::new("fpi", 32, 1, Int),
            Field::new("dlfeat", 33, 1, Int),
            Field::new("nawun", 34, 2, Int),
            Field::new("nawupf", 36, 2, Int),
            Field::new("nacwu", 38, 2, Int),
            Field::new("nabsn", 40, 2, Int),
            Field::new("nabo", 42, 2, Int),
            Field::new("nabspf", 44, 2, Int),
            Field::new("noiob", 46, 2, Int),
            Field::new("nvmcap", 48, 16, Int),
            Field::new("npwg", 64, 2, Int),
            Field::new("npwa", 66, 2, Int),
            Field::new("npdg", 68, 2, Int),
            Field::new("npda", 70, 2, Int),
            Field::new("nows", 72, 2, Int),
            Field::new("mssrl", 74, 2, Int),
            Field::new("mcl", 76, 4, Int),
            Field::new("msrc", 80, 1, Int),
            Field::new("nulbaf", 82, 1, Int),
            Field::new("anagrpid", 92, 4, Int),
            Field::new("nsattr", 99, 1, Int),
            Field::new("nvmsetid", 100, 2, Int),
            Field::new("endgid", 102, 2, Int),
            Field::new("nguid", 104, 16, Bytes),
            Field::new("eui64", 120, 8, Bytes),
            Field::new("lbaf", 128, 256, Bytes),
            Field::new("vs", 384, 3712, Bytes),
        ]
    };
}

/// Namespace Identifier Types of the namespace identification descriptor (NVMe 2.0 base spec,
/// figure 274).
pub mod nidt {
    /// IEEE Extended Unique Identifier, 8 bytes.
    pub const EUI64: u8 = 1;
    /// Namespace Globally Unique Identifier, 16 bytes.
    pub const NGUID: u8 = 2;
    /// Namespace UUID, 16 bytes.
    pub const UUID: u8 = 3;
    /// Command Set Identifier, 1 byte.
    pub const CSI: u8 = 4;

    /// The length NIDL must have for a type, or `None` for an unknown type.
    pub const fn len(nidt: u8) -> Option<usize> {
        match nidt {
            EUI64 => Some(8),
            NGUID | UUID => Some(16),
            CSI => Some(1),
            _ => None,
        }
    }
}

/// The 4-byte header of a namespace identification descriptor; NIDL bytes of identifier follow.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct NsIdDescriptor {
    /// Namespace Identifier Type (see [`nidt`]).
    pub nidt: u8,
    /// Namespace Identifier Length, bytes.
    pub nidl: u8,
    /// Reserved.
    pub rsvd2: [u8; 2],
}
crate::assert_size!(NsIdDescriptor, 4);

/// Builds a namespace identification descriptor list page (CNS 03h) from `(nidt, identifier)`
/// pairs. The list ends with a zeroed header; descriptors that do not fit in the page, or with
/// an identifier longer than 255 bytes, are left out.
pub fn ns_id_descriptor_list(descriptors: &[(u8, &[u8])]) -> [u8; IDENTIFY_DATA_SIZE] {
    let mut page = [0u8; IDENTIFY_DATA_SIZE];
    let mut at = 0;
    for &(nidt, id) in descriptors {
        let Ok(nidl) = u8::try_from(id.len()) else {
            continue;
        };
        let end = at + 4 + id.len();
        // Room must remain for the terminating zero header.
        if end + 4 > IDENTIFY_DATA_SIZE {
            break;
        }
        let header = NsIdDescriptor {
            nidt,
            nidl,
            rsvd2: [0; 2],
        };
        page[at..at + 4].copy_from_slice(header.as_bytes());
        page[at + 4..end].copy_from_slice(id);
        at = end;
    }
    page
}

/// The descriptors of a namespace identification descriptor list page, as `(nidt, identifier)`,
/// up to the first zero header or the end of the data.
pub fn ns_id_descriptors(page: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut at = 0usize;
    core::iter::from_fn(move || {
        let (nidt, nidl) = (*page.get(at)?, *page.get(at + 1)? as usize);
        if nidt == 0 || nidl == 0 {
            return None;
        }
        let id = page.get(at + 4..at + 4 + nidl)?;
        at += 4 + nidl;
        Some((nidt, id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    /// `(name, offset, size)` of struct fields, measured on the struct itself.
    macro_rules! layout {
        ($t:ty; $($f:ident),* $(,)?) => {{
            let v = <$t>::new_zeroed();
            vec![$((stringify!($f), offset_of!($t, $f), core::mem::size_of_val(&v.$f))),*]
        }};
    }

    fn check_table(table: &[Field], layout: Vec<(&str, usize, usize)>) {
        assert_eq!(
            table.len(),
            layout.len(),
            "table and struct name different field sets"
        );
        for (name, offset, len) in layout {
            let f = table
                .iter()
                .find(|f| f.name == name)
                .unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!((f.offset, f.len), (offset, len), "{name}");
            assert!(f.kind != FieldKind::Int || f.len <= 16, "{name}");
        }
    }

    #[test]
    fn controller_table_matches_struct() {
        let l = layout!(IdentifyController; vid, ssvid, sn, mn, fr, rab, ieee, cmic, mdts, cntlid,
            ver, rtd3r, rtd3e, oaes, ctratt, rrls, cntrltype, fguid, crdt1, crdt2, crdt3, nvmsr,
            vwci, mec, oacs, acl, aerl, frmw, lpa, elpe, npss, avscc, apsta, wctemp, cctemp, mtfa,
            hmpre, hmmin, tnvmcap, unvmcap, rpmbs, edstt, dsto, fwug, kas, hctma, mntmt, mxtmt,
            sanicap, hmminds, hmmaxd, nsetidmax, endgidmax, anatt, anacap, anagrpmax, nanagrpid,
            pels, domainid, megcap, sqes, cqes, maxcmd, nn, oncs, fuses, fna, vwc, awun, awupf,
            icsvscc, nwpc, acwu, cdfs, sgls, mnan, maxdna, maxcna, subnqn, ioccsz, iorcsz, icdoff,
            fcatt, msdbd, ofcs, psd, vs);
        check_table(IdentifyController::FIELDS, l);
    }

    #[test]
    fn namespace_table_matches_struct() {
        let l = layout!(IdentifyNamespace; nsze, ncap, nuse, nsfeat, nlbaf, flbas, mc, dpc, dps,
            nmic, rescap, fpi, dlfeat, nawun, nawupf, nacwu, nabsn, nabo, nabspf, noiob, nvmcap,
            npwg, npwa, npdg, npda, nows, mssrl, mcl, msrc, nulbaf, anagrpid, nsattr, nvmsetid,
            endgid, nguid, eui64, lbaf, vs);
        check_table(IdentifyNamespace::FIELDS, l);
    }

    #[test]
    fn spec_offsets() {
        assert_eq!(offset_of!(IdentifyController, mdts), 77);
        assert_eq!(offset_of!(IdentifyController, oacs), 256);
        assert_eq!(offset_of!(IdentifyController, sqes), 512);
        assert_eq!(offset_of!(IdentifyController, nn), 516);
        assert_eq!(offset_of!(IdentifyController, sgls), 536);
        assert_eq!(offset_of!(IdentifyController, subnqn), 768);
        assert_eq!(offset_of!(IdentifyController, psd), 2048);
        assert_eq!(offset_of!(IdentifyController, vs), 3072);
        assert_eq!(offset_of!(IdentifyNamespace, flbas), 26);
        assert_eq!(offset_of!(IdentifyNamespace, anagrpid), 92);
        assert_eq!(offset_of!(IdentifyNamespace, lbaf), 128);
        assert_eq!(offset_of!(IdentifyNamespace, vs), 384);
        assert_eq!(offset_of!(PowerStateDescriptor, enlat), 4);
        assert_eq!(offset_of!(PowerStateDescriptor, idlp), 16);
        assert_eq!(offset_of!(PowerStateDescriptor, actp), 20);
    }

    #[test]
    fn fields_read_from_bytes() {
        let mut c = IdentifyController {
            vid: 0x1b36,
            mdts: 5,
            nn: 0x0102_0304,
            ..Default::default()
        };
        c.set_tnvmcap(1 << 100);
        ascii_pad(&mut c.sn, "SIM0001");
        let b = c.as_bytes();
        let f = |n| Field::find(IdentifyController::FIELDS, n).unwrap();
        assert_eq!(f("vid").int(b), Some(0x1b36));
        assert_eq!(f("mdts").int(b), Some(5));
        assert_eq!(f("nn").int(b), Some(0x0102_0304));
        assert_eq!(f("tnvmcap").int(b), Some(1 << 100));
        assert_eq!(f("sn").text(b).as_deref(), Some("SIM0001"));
        assert_eq!(c.serial(), "SIM0001");
        assert_eq!(f("psd").int(b), None);
        assert_eq!(f("nn").int(&b[..100]), None);
        assert_eq!(c.max_transfer(4096), Some(128 * 1024));
    }

    #[test]
    fn lba_format_selection() {
        let mut ns = IdentifyNamespace::default();
        ns.lbaf[0] = LbaFormat::new(512, 0, 2);
        ns.lbaf[1] = LbaFormat::new(4096, 8, 0);
        ns.lbaf[17] = LbaFormat::new(4096, 64, 1);
        assert_eq!(ns.lbaf[1].lbads, 12);
        assert_eq!(ns.lbaf[1].dword(), 0x000c_0008);
        assert_eq!(ns.sector_size(), 512);
        ns.flbas = 0x11;
        assert_eq!(ns.lba_format_index(), 1);
        assert!(ns.extended_lba());
        assert_eq!((ns.sector_size(), ns.metadata_size()), (4096, 8));
        // Index 17: bits 3:0 = 1, bits 6:5 = 01b.
        ns.flbas = 0x21;
        assert_eq!(ns.lba_format_index(), 17);
        assert_eq!(ns.metadata_size(), 64);
        ns.flbas = 0x10;
        ns.set_lba_format_index(17);
        assert_eq!(ns.flbas, 0x31);
        assert_eq!(ns.lbaf(64), LbaFormat::default());
        assert_eq!(
            LbaFormat {
                ms: 0,
                lbads: 200,
                rp: 0
            }
            .data_size(),
            0
        );
    }

    #[test]
    fn ns_id_descriptor_list_round_trip() {
        let eui = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let nguid = [0xaau8; 16];
        let page = ns_id_descriptor_list(&[
            (nidt::EUI64, &eui),
            (nidt::NGUID, &nguid),
            (nidt::CSI, &[0]),
        ]);
        assert_eq!(&page[..4], &[1, 8, 0, 0]);
        assert_eq!(&page[4..12], &eui);
        assert_eq!(&page[12..16], &[2, 16, 0, 0]);
        assert_eq!(&page[32..37], &[4, 1, 0, 0, 0]);
        assert!(page[37..].iter().all(|&b| b == 0));
        let back: Vec<_> = ns_id_descriptors(&page).collect();
        assert_eq!(
            back,
            vec![
                (nidt::EUI64, &eui[..]),
                (nidt::NGUID, &nguid[..]),
                (nidt::CSI, &[0u8][..])
            ]
        );
        // Overflowing descriptors are left out rather than written past the page.
        let big = [0u8; 255];
        let many: Vec<(u8, &[u8])> = (0..20).map(|_| (0x80, &big[..])).collect();
        let page = ns_id_descriptor_list(&many);
        assert_eq!(ns_id_descriptors(&page).count(), 15);
        // A truncated or garbage list ends the walk without panicking.
        assert_eq!(ns_id_descriptors(&[3, 16, 0, 0, 1]).count(), 0);
    }

    #[test]
    fn power_state_flags() {
        let p = PowerStateDescriptor {
            mp: 900,
            flags: 2,
            apw_aps: 0x82,
            ..Default::default()
        };
        assert!(p.nops());
        assert!(!p.mxps());
        assert_eq!((p.apw(), p.aps()), (2, 2));
        assert!((p.max_power_watts() - 9.0).abs() < 1e-9);
    }
}
