//! Features (NVMe 2.0 base spec, section 5.27.1): identifiers, Get Features select values, and
//! the command dword 11 layouts and data structures of the features a test script sets most.
//!
//! Each dword 11 layout is a small module with `encode`/`decode` functions (or field getters),
//! so the driver, the simulator and scripts agree bit for bit.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Feature identifiers (NVMe 2.0 base spec, figure 317).
pub mod fid {
    /// Arbitration.
    pub const ARBITRATION: u8 = 0x01;
    /// Power Management.
    pub const POWER_MANAGEMENT: u8 = 0x02;
    /// LBA Range Type.
    pub const LBA_RANGE_TYPE: u8 = 0x03;
    /// Temperature Threshold.
    pub const TEMPERATURE_THRESHOLD: u8 = 0x04;
    /// Error Recovery.
    pub const ERROR_RECOVERY: u8 = 0x05;
    /// Volatile Write Cache.
    pub const VOLATILE_WRITE_CACHE: u8 = 0x06;
    /// Number of Queues.
    pub const NUMBER_OF_QUEUES: u8 = 0x07;
    /// Interrupt Coalescing.
    pub const INTERRUPT_COALESCING: u8 = 0x08;
    /// Interrupt Vector Configuration.
    pub const INTERRUPT_VECTOR_CONFIG: u8 = 0x09;
    /// Write Atomicity Normal.
    pub const WRITE_ATOMICITY: u8 = 0x0a;
    /// Asynchronous Event Configuration.
    pub const ASYNC_EVENT_CONFIG: u8 = 0x0b;
    /// Autonomous Power State Transition.
    pub const AUTONOMOUS_POWER_STATE_TRANSITION: u8 = 0x0c;
    /// Host Memory Buffer.
    pub const HOST_MEMORY_BUFFER: u8 = 0x0d;
    /// Timestamp.
    pub const TIMESTAMP: u8 = 0x0e;
    /// Keep Alive Timer.
    pub const KEEP_ALIVE_TIMER: u8 = 0x0f;
    /// Host Controlled Thermal Management.
    pub const HOST_CONTROLLED_THERMAL_MGMT: u8 = 0x10;
    /// Non-Operational Power State Config.
    pub const NON_OPERATIONAL_POWER_STATE: u8 = 0x11;
    /// Read Recovery Level Config.
    pub const READ_RECOVERY_LEVEL: u8 = 0x12;
    /// Predictable Latency Mode Config.
    pub const PREDICTABLE_LATENCY_CONFIG: u8 = 0x13;
    /// Predictable Latency Mode Window.
    pub const PREDICTABLE_LATENCY_WINDOW: u8 = 0x14;
    /// LBA Status Information Report Interval.
    pub const LBA_STATUS_REPORT_INTERVAL: u8 = 0x15;
    /// Host Behavior Support.
    pub const HOST_BEHAVIOR_SUPPORT: u8 = 0x16;
    /// Sanitize Config.
    pub const SANITIZE_CONFIG: u8 = 0x17;
    /// Endurance Group Event Configuration.
    pub const ENDURANCE_GROUP_EVENT_CONFIG: u8 = 0x18;
    /// I/O Command Set Profile.
    pub const IO_COMMAND_SET_PROFILE: u8 = 0x19;
    /// Spinup Control.
    pub const SPINUP_CONTROL: u8 = 0x1a;
    /// Enhanced Controller Metadata.
    pub const ENHANCED_CONTROLLER_METADATA: u8 = 0x7d;
    /// Controller Metadata.
    pub const CONTROLLER_METADATA: u8 = 0x7e;
    /// Namespace Metadata.
    pub const NAMESPACE_METADATA: u8 = 0x7f;
    /// Software Progress Marker.
    pub const SOFTWARE_PROGRESS_MARKER: u8 = 0x80;
    /// Host Identifier.
    pub const HOST_IDENTIFIER: u8 = 0x81;
    /// Reservation Notification Mask.
    pub const RESERVATION_NOTIFICATION_MASK: u8 = 0x82;
    /// Reservation Persistence.
    pub const RESERVATION_PERSISTENCE: u8 = 0x83;
    /// Namespace Write Protection Config.
    pub const NS_WRITE_PROTECTION: u8 = 0x84;
}

/// The feature's name as the specification writes it, for logs.
pub fn name(fid: u8) -> &'static str {
    use fid::*;
    match fid {
        ARBITRATION => "Arbitration",
        POWER_MANAGEMENT => "Power Management",
        LBA_RANGE_TYPE => "LBA Range Type",
        TEMPERATURE_THRESHOLD => "Temperature Threshold",
        ERROR_RECOVERY => "Error Recovery",
        VOLATILE_WRITE_CACHE => "Volatile Write Cache",
        NUMBER_OF_QUEUES => "Number of Queues",
        INTERRUPT_COALESCING => "Interrupt Coalescing",
        INTERRUPT_VECTOR_CONFIG => "Interrupt Vector Configuration",
        WRITE_ATOMICITY => "Write Atomicity Normal",
        ASYNC_EVENT_CONFIG => "Asynchronous Event Configuration",
        AUTONOMOUS_POWER_STATE_TRANSITION => "Autonomous Power State Transition",
        HOST_MEMORY_BUFFER => "Host Memory Buffer",
        TIMESTAMP => "Timestamp",
        KEEP_ALIVE_TIMER => "Keep Alive Timer",
        HOST_CONTROLLED_THERMAL_MGMT => "Host Controlled Thermal Management",
        NON_OPERATIONAL_POWER_STATE => "Non-Operational Power State Config",
        READ_RECOVERY_LEVEL => "Read Recovery Level Config",
        PREDICTABLE_LATENCY_CONFIG => "Predictable Latency Mode Config",
        PREDICTABLE_LATENCY_WINDOW => "Predictable Latency Mode Window",
        LBA_STATUS_REPORT_INTERVAL => "LBA Status Information Report Interval",
        HOST_BEHAVIOR_SUPPORT => "Host Behavior Support",
        SANITIZE_CONFIG => "Sanitize Config",
        ENDURANCE_GROUP_EVENT_CONFIG => "Endurance Group Event Configuration",
        IO_COMMAND_SET_PROFILE => "I/O Command Set Profile",
        SPINUP_CONTROL => "Spinup Control",
        ENHANCED_CONTROLLER_METADATA => "Enhanced Controller Metadata",
        CONTROLLER_METADATA => "Controller Metadata",
        NAMESPACE_METADATA => "Namespace Metadata",
        SOFTWARE_PROGRESS_MARKER => "Software Progress Marker",
        HOST_IDENTIFIER => "Host Identifier",
        RESERVATION_NOTIFICATION_MASK => "Reservation Notification Mask",
        RESERVATION_PERSISTENCE => "Reservation Persistence",
        NS_WRITE_PROTECTION => "Namespace Write Protection Config",
        0xc0..=0xff => "Vendor specific",
        _ => "Unknown",
    }
}

/// Get Features select values (command dword 10 bits 10:8).
pub mod sel {
    /// The current value.
    pub const CURRENT: u8 = 0;
    /// The default value.
    pub const DEFAULT: u8 = 1;
    /// The saved value.
    pub const SAVED: u8 = 2;
    /// The supported capabilities: saveable (bit 0), namespace specific (1), changeable (2),
    /// returned in completion dword 0.
    pub const SUPPORTED_CAPABILITIES: u8 = 3;

    /// Capability bit: the feature is saveable.
    pub const CAP_SAVEABLE: u32 = 1 << 0;
    /// Capability bit: the feature is namespace specific.
    pub const CAP_NS_SPECIFIC: u32 = 1 << 1;
    /// Capability bit: the feature is changeable.
    pub const CAP_CHANGEABLE: u32 = 1 << 2;
}

/// Command dword 10 of Get Features: feature identifier (7:0) and select (10:8).
pub const fn get_cdw10(fid: u8, sel: u8) -> u32 {
    fid as u32 | ((sel & 7) as u32) << 8
}

/// Command dword 10 of Set Features: feature identifier (7:0) and save (31).
pub const fn set_cdw10(fid: u8, save: bool) -> u32 {
    fid as u32 | (save as u32) << 31
}

/// Arbitration (FID 01h): dword 11.
pub mod arbitration {
    /// Arbitration Burst (bits 2:0): log2 of commands per burst; 7 means no limit.
    pub const fn ab(dw11: u32) -> u8 {
        (dw11 & 7) as u8
    }
    /// Low Priority Weight, 0-based (bits 15:8).
    pub const fn lpw(dw11: u32) -> u8 {
        (dw11 >> 8) as u8
    }
    /// Medium Priority Weight, 0-based (bits 23:16).
    pub const fn mpw(dw11: u32) -> u8 {
        (dw11 >> 16) as u8
    }
    /// High Priority Weight, 0-based (bits 31:24).
    pub const fn hpw(dw11: u32) -> u8 {
        (dw11 >> 24) as u8
    }
    /// Builds dword 11.
    pub const fn encode(ab: u8, lpw: u8, mpw: u8, hpw: u8) -> u32 {
        (ab & 7) as u32 | (lpw as u32) << 8 | (mpw as u32) << 16 | (hpw as u32) << 24
    }
}

/// Power Management (FID 02h): dword 11.
pub mod power_management {
    /// Power State (bits 4:0).
    pub const fn ps(dw11: u32) -> u8 {
        (dw11 & 0x1f) as u8
    }
    /// Workload Hint (bits 7:5).
    pub const fn wh(dw11: u32) -> u8 {
        ((dw11 >> 5) & 7) as u8
    }
    /// Builds dword 11.
    pub const fn encode(ps: u8, wh: u8) -> u32 {
        (ps & 0x1f) as u32 | ((wh & 7) as u32) << 5
    }
}

/// Temperature Threshold (FID 04h): dword 11.
pub mod temperature_threshold {
    /// Threshold type select: over temperature.
    pub const OVER: u8 = 0;
    /// Threshold type select: under temperature.
    pub const UNDER: u8 = 1;
    /// Threshold sensor select: the composite temperature.
    pub const COMPOSITE: u8 = 0;
    /// Threshold sensor select: every sensor, for Set Features.
    pub const ALL_SENSORS: u8 = 0xf;

    /// Temperature Threshold, kelvin (bits 15:0).
    pub const fn tmpth(dw11: u32) -> u16 {
        dw11 as u16
    }
    /// Threshold Temperature Select (bits 19:16): 0 composite, 1..8 sensors.
    pub const fn tmpsel(dw11: u32) -> u8 {
        ((dw11 >> 16) & 0xf) as u8
    }
    /// Threshold Type Select (bits 21:20): [`OVER`] or [`UNDER`].
    pub const fn thsel(dw11: u32) -> u8 {
        ((dw11 >> 20) & 3) as u8
    }
    /// Builds dword 11.
    pub const fn encode(tmpth: u16, tmpsel: u8, thsel: u8) -> u32 {
        tmpth as u32 | ((tmpsel & 0xf) as u32) << 16 | ((thsel & 3) as u32) << 20
    }
}

/// Error Recovery (FID 05h): dword 11.
pub mod error_recovery {
    /// Time Limited Error Recovery, 100 ms units (bits 15:0).
    pub const fn tler(dw11: u32) -> u16 {
        dw11 as u16
    }
    /// Deallocated or Unwritten Logical Block Error Enable (bit 16).
    pub const DULBE: u32 = 1 << 16;
}

/// Volatile Write Cache (FID 06h): dword 11.
pub mod volatile_write_cache {
    /// Volatile Write Cache Enable (bit 0).
    pub const WCE: u32 = 1;
}

/// Number of Queues (FID 07h): dword 11 asks, completion dword 0 answers, both 0-based.
pub mod number_of_queues {
    /// Builds dword 11 from the number of I/O submission and completion queues wanted
    /// (1-based; 0 is sent as 0).
    pub const fn encode(nsq: u16, ncq: u16) -> u32 {
        (nsq.saturating_sub(1) as u32) | (ncq.saturating_sub(1) as u32) << 16
    }
    /// `(submission, completion)` queue counts, 1-based, of a dword 11 or a completion dword 0.
    /// A 0-based 0xffff is reported as 65536.
    pub const fn decode(dw: u32) -> (u32, u32) {
        ((dw & 0xffff) + 1, (dw >> 16) + 1)
    }
}

/// Interrupt Coalescing (FID 08h): dword 11.
pub mod interrupt_coalescing {
    /// Aggregation Threshold, 0-based completions (bits 7:0).
    pub const fn thr(dw11: u32) -> u8 {
        dw11 as u8
    }
    /// Aggregation Time, 100 microsecond units (bits 15:8).
    pub const fn time(dw11: u32) -> u8 {
        (dw11 >> 8) as u8
    }
    /// Builds dword 11.
    pub const fn encode(thr: u8, time: u8) -> u32 {
        thr as u32 | (time as u32) << 8
    }
}

/// Interrupt Vector Configuration (FID 09h): dword 11.
pub mod interrupt_vector_config {
    /// Interrupt Vector (bits 15:0).
    pub const fn iv(dw11: u32) -> u16 {
        dw11 as u16
    }
    /// Coalescing Disable (bit 16).
    pub const fn cd(dw11: u32) -> bool {
        dw11 & (1 << 16) != 0
    }
    /// Builds dword 11.
    pub const fn encode(iv: u16, cd: bool) -> u32 {
        iv as u32 | (cd as u32) << 16
    }
}

/// Asynchronous Event Configuration (FID 0Bh): dword 11 bits.
pub mod async_event_config {
    /// SMART / health critical warnings (bits 7:0), one bit per critical warning bit.
    pub const SMART_MASK: u32 = 0xff;
    /// Namespace Attribute Notices (bit 8).
    pub const NAMESPACE_ATTRIBUTE: u32 = 1 << 8;
    /// Firmware Activation Notices (bit 9).
    pub const FIRMWARE_ACTIVATION: u32 = 1 << 9;
    /// Telemetry Log Notices (bit 10).
    pub const TELEMETRY_LOG: u32 = 1 << 10;
    /// Asymmetric Namespace Access Change Notices (bit 11).
    pub const ANA_CHANGE: u32 = 1 << 11;
    /// Predictable Latency Event Aggregate Log Change Notices (bit 12).
    pub const PREDICTABLE_LATENCY: u32 = 1 << 12;
    /// LBA Status Information Notices (bit 13).
    pub const LBA_STATUS: u32 = 1 << 13;
    /// Endurance Group Event Aggregate Log Change Notices (bit 14).
    pub const ENDURANCE_GROUP_EVENT: u32 = 1 << 14;
    /// Normal NVM Subsystem Shutdown Event (bit 15).
    pub const NORMAL_SUBSYSTEM_SHUTDOWN: u32 = 1 << 15;
    /// Discovery Log Page Change Notification (bit 31).
    pub const DISCOVERY_LOG: u32 = 1 << 31;
}

/// Autonomous Power State Transition (FID 0Ch): dword 11 and the data entries.
pub mod apst {
    /// Autonomous Power State Transition Enable (dword 11 bit 0).
    pub const APSTE: u32 = 1;

    /// Idle Transition Power State of an entry (bits 7:3).
    pub const fn itps(entry: u64) -> u8 {
        ((entry >> 3) & 0x1f) as u8
    }
    /// Idle Time Prior to Transition, milliseconds (bits 31:8).
    pub const fn itpt(entry: u64) -> u32 {
        ((entry >> 8) & 0xff_ffff) as u32
    }
    /// Builds an entry: go to `itps` after `itpt_ms` idle milliseconds (24 bits).
    pub const fn entry(itps: u8, itpt_ms: u32) -> u64 {
        ((itps & 0x1f) as u64) << 3 | ((itpt_ms & 0xff_ffff) as u64) << 8
    }
}

/// The Autonomous Power State Transition data structure: 256 bytes, one entry per power state
/// (NVMe 2.0 base spec, figure 330).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ApstData {
    /// Entries for power states 0..31 (see [`apst`]).
    pub entries: [u64; 32],
}
crate::assert_size!(ApstData, 256);

/// Host Memory Buffer (FID 0Dh): command dwords 11..15 of Set Features.
pub mod host_memory_buffer {
    /// Enable Host Memory (dword 11 bit 0).
    pub const EHM: u32 = 1 << 0;
    /// Memory Return: the host returns the buffer it gave before (dword 11 bit 1).
    pub const MR: u32 = 1 << 1;

    /// Dwords 11..15: EHM/MR, HSIZE (in memory page size units), the descriptor list address
    /// (16-byte aligned; lower and upper dwords) and the number of descriptor entries.
    pub const fn encode(
        enable: bool,
        memory_return: bool,
        hsize: u32,
        list_addr: u64,
        entries: u32,
    ) -> [u32; 5] {
        [
            (enable as u32) | (memory_return as u32) << 1,
            hsize,
            (list_addr as u32) & !0xf,
            (list_addr >> 32) as u32,
            entries,
        ]
    }
    /// `(enable, memory_return, hsize, list_addr, entries)` of dwords 11..15.
    pub const fn decode(dw: [u32; 5]) -> (bool, bool, u32, u64, u32) {
        (
            dw[0] & EHM != 0,
            dw[0] & MR != 0,
            dw[1],
            (dw[2] & !0xf) as u64 | (dw[3] as u64) << 32,
            dw[4],
        )
    }
}

/// One Host Memory Buffer descriptor entry: 16 bytes (NVMe 2.0 base spec, figure 334).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HmbDescriptor {
    /// Buffer Address, memory page size aligned.
    pub badd: u64,
    /// Buffer Size, memory page size units.
    pub bsize: u32,
    /// Reserved.
    pub rsvd12: u32,
}
crate::assert_size!(HmbDescriptor, 16);

/// The Timestamp data structure: 8 bytes (NVMe 2.0 base spec, figure 336).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Timestamp {
    /// Milliseconds since midnight, 1 January 1970 UTC (48 bits, little endian).
    pub timestamp: [u8; 6],
    /// Attributes: Synch (bit 0), Timestamp Origin (bits 3:1).
    pub attr: u8,
    /// Reserved.
    pub rsvd7: u8,
}
crate::assert_size!(Timestamp, 8);

impl Timestamp {
    /// A timestamp of `ms` milliseconds (the upper 16 bits are dropped), as a host sets it.
    pub const fn new(ms: u64) -> Timestamp {
        let b = ms.to_le_bytes();
        Timestamp {
            timestamp: [b[0], b[1], b[2], b[3], b[4], b[5]],
            attr: 0,
            rsvd7: 0,
        }
    }
    /// The timestamp in milliseconds.
    pub const fn millis(&self) -> u64 {
        let t = self.timestamp;
        u64::from_le_bytes([t[0], t[1], t[2], t[3], t[4], t[5], 0, 0])
    }
    /// Synch: the controller may have stopped counting (bit 0).
    pub const fn synch(&self) -> bool {
        self.attr & 1 != 0
    }
    /// Timestamp Origin (bits 3:1): 0 reset, 1 set by a Set Features command.
    pub const fn origin(&self) -> u8 {
        (self.attr >> 1) & 7
    }
}

/// Size of the data a feature transfers with Get/Set Features, or 0 when it has none.
pub const fn data_len(fid: u8) -> usize {
    match fid {
        fid::LBA_RANGE_TYPE => 4096,
        fid::AUTONOMOUS_POWER_STATE_TRANSITION => 256,
        fid::TIMESTAMP => 8,
        fid::HOST_BEHAVIOR_SUPPORT => 512,
        fid::HOST_IDENTIFIER => 16,
        fid::HOST_MEMORY_BUFFER => 4096,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name(fid::NUMBER_OF_QUEUES), "Number of Queues");
        assert_eq!(
            name(fid::NS_WRITE_PROTECTION),
            "Namespace Write Protection Config"
        );
        assert_eq!(name(0xc5), "Vendor specific");
        assert_eq!(name(0x60), "Unknown");
    }

    #[test]
    fn dword_layouts_round_trip() {
        let a = arbitration::encode(3, 1, 2, 4);
        assert_eq!(a, 0x0402_0103);
        assert_eq!(
            (
                arbitration::ab(a),
                arbitration::lpw(a),
                arbitration::mpw(a),
                arbitration::hpw(a)
            ),
            (3, 1, 2, 4)
        );
        let p = power_management::encode(4, 2);
        assert_eq!((power_management::ps(p), power_management::wh(p)), (4, 2));
        let t = temperature_threshold::encode(350, 1, temperature_threshold::UNDER);
        assert_eq!(t, 0x0011_015e);
        assert_eq!(temperature_threshold::tmpth(t), 350);
        assert_eq!(temperature_threshold::tmpsel(t), 1);
        assert_eq!(temperature_threshold::thsel(t), 1);
        let q = number_of_queues::encode(16, 8);
        assert_eq!(q, 0x0007_000f);
        assert_eq!(number_of_queues::decode(q), (16, 8));
        assert_eq!(number_of_queues::decode(u32::MAX), (65536, 65536));
        let c = interrupt_coalescing::encode(9, 10);
        assert_eq!(
            (interrupt_coalescing::thr(c), interrupt_coalescing::time(c)),
            (9, 10)
        );
        let v = interrupt_vector_config::encode(5, true);
        assert_eq!(v, 0x1_0005);
        assert_eq!(
            (
                interrupt_vector_config::iv(v),
                interrupt_vector_config::cd(v)
            ),
            (5, true)
        );
        let h = host_memory_buffer::encode(true, false, 1024, 0x1_2345_6780, 3);
        assert_eq!(h, [1, 1024, 0x2345_6780, 1, 3]);
        assert_eq!(
            host_memory_buffer::decode(h),
            (true, false, 1024, 0x1_2345_6780, 3)
        );
        assert_eq!(
            get_cdw10(fid::ARBITRATION, sel::SUPPORTED_CAPABILITIES),
            0x301
        );
        assert_eq!(set_cdw10(fid::TIMESTAMP, true), 0x8000_000e);
    }

    #[test]
    fn apst_and_timestamp() {
        let e = apst::entry(3, 100);
        assert_eq!((apst::itps(e), apst::itpt(e)), (3, 100));
        let mut d = ApstData::default();
        d.entries[0] = e;
        assert_eq!(&d.as_bytes()[..4], &[0x18, 100, 0, 0]);
        let t = Timestamp::new(0x0123_4567_89ab);
        assert_eq!(t.millis(), 0x0123_4567_89ab);
        assert_eq!(t.as_bytes(), &[0xab, 0x89, 0x67, 0x45, 0x23, 0x01, 0, 0]);
        let t = Timestamp { attr: 0b11, ..t };
        assert!(t.synch());
        assert_eq!(t.origin(), 1);
        assert_eq!(data_len(fid::TIMESTAMP), 8);
    }
}
