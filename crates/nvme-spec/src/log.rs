//! Log pages (NVMe 2.0 base spec, section 5.16) and asynchronous event completions (5.2).
//!
//! Get Log Page returns a page selected by its log identifier ([`lid`]). The structures here
//! are the pages a test platform reads every day: error information, SMART / health, firmware
//! slots, commands supported and effects, device self-test and sanitize status. 128-bit
//! counters are kept as `[u8; 16]` (zerocopy alignment) with `u128` accessors.

use crate::identify::{u128_from_le, Field, FieldKind};
use zerocopy::little_endian::{U16, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// Log page identifiers (NVMe 2.0 base spec, figure 202; NVM command set spec).
pub mod lid {
    /// Supported Log Pages.
    pub const SUPPORTED_LOG_PAGES: u8 = 0x00;
    /// Error Information.
    pub const ERROR_INFO: u8 = 0x01;
    /// SMART / Health Information.
    pub const SMART: u8 = 0x02;
    /// Firmware Slot Information.
    pub const FIRMWARE_SLOT: u8 = 0x03;
    /// Changed Namespace List.
    pub const CHANGED_NS_LIST: u8 = 0x04;
    /// Commands Supported and Effects.
    pub const COMMANDS_SUPPORTED_EFFECTS: u8 = 0x05;
    /// Device Self-test.
    pub const DEVICE_SELF_TEST: u8 = 0x06;
    /// Telemetry Host-Initiated.
    pub const TELEMETRY_HOST: u8 = 0x07;
    /// Telemetry Controller-Initiated.
    pub const TELEMETRY_CONTROLLER: u8 = 0x08;
    /// Endurance Group Information.
    pub const ENDURANCE_GROUP_INFO: u8 = 0x09;
    /// Predictable Latency Per NVM Set.
    pub const PREDICTABLE_LATENCY_NVM_SET: u8 = 0x0a;
    /// Predictable Latency Event Aggregate.
    pub const PREDICTABLE_LATENCY_AGGREGATE: u8 = 0x0b;
    /// Asymmetric Namespace Access.
    pub const ANA: u8 = 0x0c;
    /// Persistent Event Log.
    pub const PERSISTENT_EVENT: u8 = 0x0d;
    /// LBA Status Information (NVM command set).
    pub const LBA_STATUS_INFO: u8 = 0x0e;
    /// Endurance Group Event Aggregate.
    pub const ENDURANCE_GROUP_EVENT_AGGREGATE: u8 = 0x0f;
    /// Media Unit Status.
    pub const MEDIA_UNIT_STATUS: u8 = 0x10;
    /// Supported Capacity Configuration List.
    pub const SUPPORTED_CAPACITY_CONFIG: u8 = 0x11;
    /// Feature Identifiers Supported and Effects.
    pub const FEATURES_SUPPORTED_EFFECTS: u8 = 0x12;
    /// NVMe-MI Commands Supported and Effects.
    pub const MI_COMMANDS_SUPPORTED_EFFECTS: u8 = 0x13;
    /// Command and Feature Lockdown.
    pub const LOCKDOWN: u8 = 0x14;
    /// Boot Partition.
    pub const BOOT_PARTITION: u8 = 0x15;
    /// Rotational Media Information.
    pub const ROTATIONAL_MEDIA: u8 = 0x16;
    /// Discovery (fabrics).
    pub const DISCOVERY: u8 = 0x70;
    /// Reservation Notification.
    pub const RESERVATION_NOTIFICATION: u8 = 0x80;
    /// Sanitize Status.
    pub const SANITIZE_STATUS: u8 = 0x81;
    /// Changed Zone List (zoned namespace command set).
    pub const CHANGED_ZONE_LIST: u8 = 0xbf;

    /// The page's name as the specification writes it, for logs.
    pub fn name(lid: u8) -> &'static str {
        match lid {
            SUPPORTED_LOG_PAGES => "Supported Log Pages",
            ERROR_INFO => "Error Information",
            SMART => "SMART / Health Information",
            FIRMWARE_SLOT => "Firmware Slot Information",
            CHANGED_NS_LIST => "Changed Namespace List",
            COMMANDS_SUPPORTED_EFFECTS => "Commands Supported and Effects",
            DEVICE_SELF_TEST => "Device Self-test",
            TELEMETRY_HOST => "Telemetry Host-Initiated",
            TELEMETRY_CONTROLLER => "Telemetry Controller-Initiated",
            ENDURANCE_GROUP_INFO => "Endurance Group Information",
            PREDICTABLE_LATENCY_NVM_SET => "Predictable Latency Per NVM Set",
            PREDICTABLE_LATENCY_AGGREGATE => "Predictable Latency Event Aggregate",
            ANA => "Asymmetric Namespace Access",
            PERSISTENT_EVENT => "Persistent Event Log",
            LBA_STATUS_INFO => "LBA Status Information",
            ENDURANCE_GROUP_EVENT_AGGREGATE => "Endurance Group Event Aggregate",
            MEDIA_UNIT_STATUS => "Media Unit Status",
            SUPPORTED_CAPACITY_CONFIG => "Supported Capacity Configuration List",
            FEATURES_SUPPORTED_EFFECTS => "Feature Identifiers Supported and Effects",
            MI_COMMANDS_SUPPORTED_EFFECTS => "NVMe-MI Commands Supported and Effects",
            LOCKDOWN => "Command and Feature Lockdown",
            BOOT_PARTITION => "Boot Partition",
            ROTATIONAL_MEDIA => "Rotational Media Information",
            DISCOVERY => "Discovery",
            RESERVATION_NOTIFICATION => "Reservation Notification",
            SANITIZE_STATUS => "Sanitize Status",
            CHANGED_ZONE_LIST => "Changed Zone List",
            0xc0..=0xff => "Vendor specific",
            _ => "Unknown",
        }
    }
}

/// Command dwords of Get Log Page (NVMe 2.0 base spec, figures 197-200).
pub mod get_log {
    /// Command dword 10: log identifier (7:0), log specific field (14:8), retain asynchronous
    /// event (15), and the lower 16 bits of the 0-based dword count (31:16).
    pub const fn cdw10(lid: u8, lsp: u8, rae: bool, numd: u32) -> u32 {
        lid as u32 | ((lsp & 0x7f) as u32) << 8 | (rae as u32) << 15 | (numd & 0xffff) << 16
    }

    /// Command dword 11: upper 16 bits of the 0-based dword count (15:0), log specific
    /// identifier (31:16).
    pub const fn cdw11(numd: u32, lsi: u16) -> u32 {
        numd >> 16 | (lsi as u32) << 16
    }

    /// The 0-based dword count (NUMD) that transfers `bytes` (rounded up to whole dwords);
    /// 0 for 0 bytes as well as for 4.
    pub const fn numd(bytes: usize) -> u32 {
        let dwords = bytes.div_ceil(4);
        if dwords == 0 {
            0
        } else {
            (dwords - 1) as u32
        }
    }

    /// Bytes transferred for command dwords 10 and 11.
    pub const fn transfer_len(cdw10: u32, cdw11: u32) -> usize {
        let numd = (cdw10 >> 16) | (cdw11 & 0xffff) << 16;
        (numd as usize + 1) * 4
    }
}

/// An error information log entry: 64 bytes (NVMe 2.0 base spec, figure 205).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ErrorInformationEntry {
    /// Error Count: a unique, increasing number; 0 means the entry is empty.
    pub error_count: u64,
    /// Submission Queue ID of the failed command (0xffff if not associated with one).
    pub sqid: u16,
    /// Command ID of the failed command (0xffff if not associated with one).
    pub cid: u16,
    /// Status Field of the completion: phase tag (bit 0) and status (bits 15:1).
    pub status_field: u16,
    /// Parameter Error Location: byte (7:0) and bit (10:8) in the command.
    pub parm_error_location: u16,
    /// The first LBA that had the error.
    pub lba: u64,
    /// Namespace of the error.
    pub nsid: u32,
    /// Vendor Specific Information Available: log page identifier, or 0.
    pub vs: u8,
    /// Transport Type.
    pub trtype: u8,
    /// Reserved.
    pub rsvd30: [u8; 2],
    /// Command Specific Information.
    pub cs: u64,
    /// Transport Type Specific Information.
    pub trtype_spec_info: u16,
    /// Reserved.
    pub rsvd42: [u8; 22],
}
crate::assert_size!(ErrorInformationEntry, 64);

impl ErrorInformationEntry {
    /// The status of the failed command, without the phase tag.
    pub const fn status(&self) -> crate::Status {
        crate::Status::from_field(self.status_field >> 1)
    }
}

/// Critical Warning bits of the SMART / health log (byte 0).
pub mod critical_warning {
    /// Available spare capacity fell below the threshold.
    pub const AVAILABLE_SPARE: u8 = 1 << 0;
    /// A temperature is above an over-temperature or below an under-temperature threshold.
    pub const TEMPERATURE: u8 = 1 << 1;
    /// NVM subsystem reliability degraded.
    pub const RELIABILITY_DEGRADED: u8 = 1 << 2;
    /// All media placed in read-only mode.
    pub const READ_ONLY: u8 = 1 << 3;
    /// Volatile memory backup device failed.
    pub const VOLATILE_BACKUP_FAILED: u8 = 1 << 4;
    /// Persistent memory region became read-only or unreliable.
    pub const PMR_READ_ONLY: u8 = 1 << 5;
}

/// The SMART / Health Information log page: 512 bytes (NVMe 2.0 base spec, figure 207).
///
/// Data units are thousands of 512-byte units; temperatures are in kelvin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct SmartLog {
    /// Critical Warning (see [`critical_warning`]).
    pub critical_warning: u8,
    /// Composite Temperature, kelvin (at the unaligned offset 1).
    pub composite_temperature: U16,
    /// Available Spare, percent.
    pub avail_spare: u8,
    /// Available Spare Threshold, percent.
    pub avail_spare_threshold: u8,
    /// Percentage Used (may exceed 100).
    pub percentage_used: u8,
    /// Endurance Group Critical Warning Summary.
    pub endurance_group_critical_warning: u8,
    /// Reserved.
    pub rsvd7: [u8; 25],
    /// Data Units Read, thousands of 512-byte units.
    pub data_units_read: [u8; 16],
    /// Data Units Written, thousands of 512-byte units.
    pub data_units_written: [u8; 16],
    /// Host Read Commands.
    pub host_read_commands: [u8; 16],
    /// Host Write Commands.
    pub host_write_commands: [u8; 16],
    /// Controller Busy Time, minutes.
    pub controller_busy_time: [u8; 16],
    /// Power Cycles.
    pub power_cycles: [u8; 16],
    /// Power On Hours.
    pub power_on_hours: [u8; 16],
    /// Unsafe Shutdowns.
    pub unsafe_shutdowns: [u8; 16],
    /// Media and Data Integrity Errors.
    pub media_errors: [u8; 16],
    /// Number of Error Information Log Entries over the controller's life.
    pub num_err_log_entries: [u8; 16],
    /// Warning Composite Temperature Time, minutes.
    pub warning_temp_time: u32,
    /// Critical Composite Temperature Time, minutes.
    pub critical_comp_time: u32,
    /// Temperature Sensors 1..8, kelvin (0 if not implemented).
    pub temp_sensor: [u16; 8],
    /// Thermal Management Temperature 1 Transition Count.
    pub thm_temp1_trans_count: u32,
    /// Thermal Management Temperature 2 Transition Count.
    pub thm_temp2_trans_count: u32,
    /// Total Time For Thermal Management Temperature 1, seconds.
    pub thm_temp1_total_time: u32,
    /// Total Time For Thermal Management Temperature 2, seconds.
    pub thm_temp2_total_time: u32,
    /// Reserved.
    pub rsvd232: [u8; 280],
}
crate::assert_size!(SmartLog, 512);

impl Default for SmartLog {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

macro_rules! u128_accessors {
    ($($field:ident, $set:ident;)*) => {
        $(
            #[doc = concat!("`", stringify!($field), "` as a number.")]
            pub const fn $field(&self) -> u128 {
                u128_from_le(&self.$field)
            }
            #[doc = concat!("Sets `", stringify!($field), "`.")]
            pub fn $set(&mut self, v: u128) {
                self.$field = v.to_le_bytes();
            }
        )*
    };
}

impl SmartLog {
    u128_accessors! {
        data_units_read, set_data_units_read;
        data_units_written, set_data_units_written;
        host_read_commands, set_host_read_commands;
        host_write_commands, set_host_write_commands;
        controller_busy_time, set_controller_busy_time;
        power_cycles, set_power_cycles;
        power_on_hours, set_power_on_hours;
        unsafe_shutdowns, set_unsafe_shutdowns;
        media_errors, set_media_errors;
        num_err_log_entries, set_num_err_log_entries;
    }

    /// Every named field, by its spec offset (reserved ranges left out).
    pub const FIELDS: &'static [Field] = &{
        use FieldKind::*;
        [
            Field::new("critical_warning", 0, 1, Int),
            Field::new("composite_temperature", 1, 2, Int),
            Field::new("avail_spare", 3, 1, Int),
            Field::new("avail_spare_threshold", 4, 1, Int),
            Field::new("percentage_used", 5, 1, Int),
            Field::new("endurance_group_critical_warning", 6, 1, Int),
            Field::new("data_units_read", 32, 16, Int),
            Field::new("data_units_written", 48, 16, Int),
            Field::new("host_read_commands", 64, 16, Int),
            Field::new("host_write_commands", 80, 16, Int),
            Field::new("controller_busy_time", 96, 16, Int),
            Field::new("power_cycles", 112, 16, Int),
            Field::new("power_on_hours", 128, 16, Int),
            Field::new("unsafe_shutdowns", 144, 16, Int),
            Field::new("media_errors", 160, 16, Int),
            Field::new("num_err_log_entries", 176, 16, Int),
            Field::new("warning_temp_time", 192, 4, Int),
            Field::new("critical_comp_time", 196, 4, Int),
            Field::new("temp_sensor", 200, 16, Bytes),
            Field::new("thm_temp1_trans_count", 216, 4, Int),
            Field::new("thm_temp2_trans_count", 220, 4, Int),
            Field::new("thm_temp1_total_time", 224, 4, Int),
            Field::new("thm_temp2_total_time", 228, 4, Int),
        ]
    };
}

/// The Firmware Slot Information log page: 512 bytes (NVMe 2.0 base spec, figure 209).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct FirmwareSlotLog {
    /// Active Firmware Info: active slot (bits 2:0), slot activated at the next reset (6:4).
    pub afi: u8,
    /// Reserved.
    pub rsvd1: [u8; 7],
    /// Firmware Revision for slots 1..7, ASCII; all zeroes when a slot is empty.
    pub frs: [[u8; 8]; 7],
    /// Reserved.
    pub rsvd64: [u8; 448],
}
crate::assert_size!(FirmwareSlotLog, 512);

impl Default for FirmwareSlotLog {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

impl FirmwareSlotLog {
    /// The slot (1..7) the running firmware came from.
    pub const fn active_slot(&self) -> u8 {
        self.afi & 7
    }
    /// The slot to activate at the next controller reset; 0 when none is pending.
    pub const fn next_slot(&self) -> u8 {
        (self.afi >> 4) & 7
    }
    /// Firmware revision of slot `slot` (1..7); `None` for other slot numbers.
    pub fn revision(&self, slot: u8) -> Option<String> {
        let i = usize::from(slot).checked_sub(1)?;
        self.frs.get(i).map(|r| crate::identify::ascii_trim(r))
    }
}

/// Bits of one Commands Supported and Effects entry (NVMe 2.0 base spec, figure 211).
pub mod effects {
    /// Command Supported.
    pub const CSUPP: u32 = 1 << 0;
    /// Logical Block Content Change.
    pub const LBCC: u32 = 1 << 1;
    /// Namespace Capability Change.
    pub const NCC: u32 = 1 << 2;
    /// Namespace Inventory Change.
    pub const NIC: u32 = 1 << 3;
    /// Controller Capability Change.
    pub const CCC: u32 = 1 << 4;
    /// Command Submission and Execution (bits 18:16): 0 no restriction, 1 one namespace at a
    /// time, 2 one command in the subsystem at a time.
    pub const fn cse(entry: u32) -> u8 {
        ((entry >> 16) & 7) as u8
    }
    /// UUID Selection Supported.
    pub const USS: u32 = 1 << 19;
}

/// The Commands Supported and Effects log page: 4096 bytes (NVMe 2.0 base spec, figure 210).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct CommandsSupportedEffects {
    /// Admin Command Supported, indexed by opcode (see [`effects`]).
    pub acs: [u32; 256],
    /// I/O Command Supported, indexed by opcode (see [`effects`]).
    pub iocs: [u32; 256],
    /// Reserved.
    pub rsvd2048: [u8; 2048],
}
crate::assert_size!(CommandsSupportedEffects, 4096);

impl Default for CommandsSupportedEffects {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

/// Device self-test codes (command dword 10 bits 3:0, result status bits 7:4).
pub mod self_test {
    /// Short device self-test.
    pub const SHORT: u8 = 0x1;
    /// Extended device self-test.
    pub const EXTENDED: u8 = 0x2;
    /// Vendor specific.
    pub const VENDOR: u8 = 0xe;
    /// Abort the running self-test.
    pub const ABORT: u8 = 0xf;

    /// Result: completed without error.
    pub const RESULT_OK: u8 = 0x0;
    /// Result: aborted by a Device Self-test command.
    pub const RESULT_ABORTED_BY_COMMAND: u8 = 0x1;
    /// Result: aborted by a controller level reset.
    pub const RESULT_ABORTED_BY_RESET: u8 = 0x2;
    /// Result: aborted by the removal of a namespace from the namespace inventory.
    pub const RESULT_ABORTED_BY_NS_REMOVAL: u8 = 0x3;
    /// Result: aborted by a Format NVM command.
    pub const RESULT_ABORTED_BY_FORMAT: u8 = 0x4;
    /// Result: a fatal error or unknown test error.
    pub const RESULT_FATAL: u8 = 0x5;
    /// Result: completed with a segment that failed, the segment unknown.
    pub const RESULT_UNKNOWN_SEGMENT_FAILED: u8 = 0x6;
    /// Result: completed with one or more failed segments (segment number is valid).
    pub const RESULT_SEGMENT_FAILED: u8 = 0x7;
    /// Result: aborted for an unknown reason.
    pub const RESULT_ABORTED_UNKNOWN: u8 = 0x8;
    /// Result: aborted by a sanitize operation.
    pub const RESULT_ABORTED_BY_SANITIZE: u8 = 0x9;
    /// Result: the entry holds no result.
    pub const RESULT_UNUSED: u8 = 0xf;
}

/// One self-test result data structure: 28 bytes (NVMe 2.0 base spec, figure 213).
///
/// It sits at offset 4 + 28 n of the log, so its 64-bit fields are unaligned byte-order types.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SelfTestResult {
    /// Device Self-test Status: self-test code (bits 7:4), result (bits 3:0).
    pub status: u8,
    /// Segment Number of the first failed segment.
    pub segment: u8,
    /// Valid Diagnostic Information: NSID (bit 0), FLBA (1), SCT (2), SC (3) valid.
    pub valid: u8,
    /// Reserved.
    pub rsvd3: u8,
    /// Power On Hours when the test completed or aborted.
    pub poh: U64,
    /// Namespace Identifier of the failing LBA.
    pub nsid: u32,
    /// Failing LBA.
    pub flba: U64,
    /// Status Code Type of the failure.
    pub sct: u8,
    /// Status Code of the failure.
    pub sc: u8,
    /// Vendor Specific.
    pub vs: [u8; 2],
}
crate::assert_size!(SelfTestResult, 28);

impl SelfTestResult {
    /// The self-test code this result belongs to (status bits 7:4).
    pub const fn code(&self) -> u8 {
        self.status >> 4
    }
    /// The result (status bits 3:0); [`self_test::RESULT_UNUSED`] marks an empty entry.
    pub const fn result(&self) -> u8 {
        self.status & 0xf
    }
    /// An empty entry, as a controller reports unused slots.
    pub const fn unused() -> SelfTestResult {
        SelfTestResult {
            status: self_test::RESULT_UNUSED,
            segment: 0,
            valid: 0,
            rsvd3: 0,
            poh: U64::ZERO,
            nsid: 0,
            flba: U64::ZERO,
            sct: 0,
            sc: 0,
            vs: [0; 2],
        }
    }
}

/// The Device Self-test log page: 564 bytes (NVMe 2.0 base spec, figure 212).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct DeviceSelfTestLog {
    /// Current Device Self-Test Operation (bits 3:0): 0 none, otherwise the running code.
    pub current_operation: u8,
    /// Current Device Self-Test Completion, percent (bits 6:0).
    pub current_completion: u8,
    /// Reserved.
    pub rsvd2: [u8; 2],
    /// Self-test results, newest first.
    pub result: [SelfTestResult; 20],
}
crate::assert_size!(DeviceSelfTestLog, 564);

impl Default for DeviceSelfTestLog {
    fn default() -> Self {
        DeviceSelfTestLog {
            current_operation: 0,
            current_completion: 0,
            rsvd2: [0; 2],
            result: [SelfTestResult::unused(); 20],
        }
    }
}

impl DeviceSelfTestLog {
    /// Records a finished test as the newest result, dropping the oldest.
    pub fn push_result(&mut self, r: SelfTestResult) {
        self.result.copy_within(0..19, 1);
        self.result[0] = r;
    }
}

/// Sanitize status values (SSTAT bits 2:0).
pub mod sanitize_status {
    /// The NVM subsystem has never been sanitized.
    pub const NEVER: u16 = 0;
    /// The most recent sanitize operation completed successfully.
    pub const COMPLETED: u16 = 1;
    /// A sanitize operation is in progress.
    pub const IN_PROGRESS: u16 = 2;
    /// The most recent sanitize operation failed.
    pub const FAILED: u16 = 3;
    /// The most recent sanitize operation completed with deallocation not done as requested.
    pub const COMPLETED_NO_DEALLOCATE: u16 = 4;
    /// Global Data Erased (SSTAT bit 8): no user data written since manufacture or sanitize.
    pub const GLOBAL_DATA_ERASED: u16 = 1 << 8;
}

/// The Sanitize Status log page: 512 bytes (NVMe 2.0 base spec, figure 290).
///
/// Estimated times are in seconds; 0xffff_ffff means no estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct SanitizeStatusLog {
    /// Sanitize Progress, as a fraction of 65536.
    pub sprog: u16,
    /// Sanitize Status: status (bits 2:0), overwrite passes (7:3), global data erased (8).
    pub sstat: u16,
    /// Sanitize Command Dword 10 of the most recent sanitize.
    pub scdw10: u32,
    /// Estimated Time For Overwrite.
    pub eto: u32,
    /// Estimated Time For Block Erase.
    pub etbe: u32,
    /// Estimated Time For Crypto Erase.
    pub etce: u32,
    /// Estimated Time For Overwrite With No-Deallocate Media Modification.
    pub etond: u32,
    /// Estimated Time For Block Erase With No-Deallocate Media Modification.
    pub etbend: u32,
    /// Estimated Time For Crypto Erase With No-Deallocate Media Modification.
    pub etcend: u32,
    /// Reserved.
    pub rsvd32: [u8; 480],
}
crate::assert_size!(SanitizeStatusLog, 512);

impl Default for SanitizeStatusLog {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

impl SanitizeStatusLog {
    /// The status of the most recent sanitize (SSTAT bits 2:0, see [`sanitize_status`]).
    pub const fn status(&self) -> u16 {
        self.sstat & 7
    }
}

/// The Changed Namespace List log page: up to 1024 NSIDs, zero terminated; 0xffff_ffff in the
/// first entry means more than 1024 namespaces changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct ChangedNsList {
    /// Namespace identifiers.
    pub nsid: [u32; 1024],
}
crate::assert_size!(ChangedNsList, 4096);

impl Default for ChangedNsList {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

/// Asynchronous event types, information and the completion dword 0 of an Asynchronous Event
/// Request (NVMe 2.0 base spec, figures 146-151).
pub mod aen {
    /// Event type: error status.
    pub const TYPE_ERROR: u8 = 0;
    /// Event type: SMART / health status.
    pub const TYPE_SMART: u8 = 1;
    /// Event type: notice.
    pub const TYPE_NOTICE: u8 = 2;
    /// Event type: immediate.
    pub const TYPE_IMMEDIATE: u8 = 3;
    /// Event type: I/O command specific status.
    pub const TYPE_IO_COMMAND_SET: u8 = 6;
    /// Event type: vendor specific.
    pub const TYPE_VENDOR: u8 = 7;

    /// Error: write to an invalid doorbell register.
    pub const ERROR_INVALID_DOORBELL_REGISTER: u8 = 0;
    /// Error: invalid doorbell write value.
    pub const ERROR_INVALID_DOORBELL_VALUE: u8 = 1;
    /// Error: diagnostic failure.
    pub const ERROR_DIAGNOSTIC_FAILURE: u8 = 2;
    /// Error: persistent internal error.
    pub const ERROR_PERSISTENT_INTERNAL: u8 = 3;
    /// Error: transient internal error.
    pub const ERROR_TRANSIENT_INTERNAL: u8 = 4;
    /// Error: firmware image load error.
    pub const ERROR_FIRMWARE_IMAGE_LOAD: u8 = 5;

    /// SMART: NVM subsystem reliability.
    pub const SMART_RELIABILITY: u8 = 0;
    /// SMART: temperature threshold.
    pub const SMART_TEMPERATURE: u8 = 1;
    /// SMART: spare below threshold.
    pub const SMART_SPARE: u8 = 2;

    /// Notice: namespace attribute changed.
    pub const NOTICE_NS_ATTRIBUTE_CHANGED: u8 = 0;
    /// Notice: firmware activation starting.
    pub const NOTICE_FIRMWARE_ACTIVATION: u8 = 1;
    /// Notice: telemetry log changed.
    pub const NOTICE_TELEMETRY_LOG_CHANGED: u8 = 2;
    /// Notice: asymmetric namespace access change.
    pub const NOTICE_ANA_CHANGE: u8 = 3;
    /// Notice: predictable latency event aggregate log change.
    pub const NOTICE_PREDICTABLE_LATENCY: u8 = 4;
    /// Notice: LBA status information alert.
    pub const NOTICE_LBA_STATUS_ALERT: u8 = 5;
    /// Notice: endurance group event aggregate log page change.
    pub const NOTICE_ENDURANCE_GROUP_EVENT: u8 = 6;
    /// Notice: normal NVM subsystem shutdown.
    pub const NOTICE_NORMAL_SUBSYSTEM_SHUTDOWN: u8 = 7;
    /// Notice: discovery log page change (fabrics).
    pub const NOTICE_DISCOVERY_LOG_CHANGE: u8 = 0xf0;

    /// I/O command set: reservation log page available.
    pub const IO_RESERVATION_LOG: u8 = 0;
    /// I/O command set: sanitize operation completed.
    pub const IO_SANITIZE_COMPLETED: u8 = 1;
    /// I/O command set: sanitize completed with unexpected deallocation.
    pub const IO_SANITIZE_COMPLETED_NO_DEALLOCATE: u8 = 2;

    /// Completion dword 0 of an Asynchronous Event Request: log page (23:16), event
    /// information (15:8), event type (2:0).
    pub const fn dword0(event_type: u8, info: u8, lid: u8) -> u32 {
        (lid as u32) << 16 | (info as u32) << 8 | (event_type & 7) as u32
    }

    /// `(event type, information, log page)` of a completion dword 0.
    pub const fn decode(dw0: u32) -> (u8, u8, u8) {
        ((dw0 & 7) as u8, (dw0 >> 8) as u8, (dw0 >> 16) as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn spec_offsets() {
        assert_eq!(offset_of!(ErrorInformationEntry, lba), 16);
        assert_eq!(offset_of!(ErrorInformationEntry, nsid), 24);
        assert_eq!(offset_of!(ErrorInformationEntry, cs), 32);
        assert_eq!(offset_of!(ErrorInformationEntry, trtype_spec_info), 40);
        assert_eq!(offset_of!(SmartLog, composite_temperature), 1);
        assert_eq!(offset_of!(SmartLog, endurance_group_critical_warning), 6);
        assert_eq!(offset_of!(SmartLog, data_units_read), 32);
        assert_eq!(offset_of!(SmartLog, num_err_log_entries), 176);
        assert_eq!(offset_of!(SmartLog, warning_temp_time), 192);
        assert_eq!(offset_of!(SmartLog, temp_sensor), 200);
        assert_eq!(offset_of!(SmartLog, thm_temp2_total_time), 228);
        assert_eq!(offset_of!(FirmwareSlotLog, frs), 8);
        assert_eq!(offset_of!(CommandsSupportedEffects, iocs), 1024);
        assert_eq!(offset_of!(DeviceSelfTestLog, result), 4);
        assert_eq!(offset_of!(SelfTestResult, nsid), 12);
        assert_eq!(offset_of!(SelfTestResult, flba), 16);
        assert_eq!(offset_of!(SelfTestResult, sct), 24);
        assert_eq!(offset_of!(SanitizeStatusLog, etcend), 28);
    }

    #[test]
    fn smart_table_matches_struct() {
        let s = SmartLog::new_zeroed();
        macro_rules! check {
            ($($f:ident),*) => {{
                let layout = [$((stringify!($f), offset_of!(SmartLog, $f), core::mem::size_of_val(&s.$f))),*];
                assert_eq!(layout.len(), SmartLog::FIELDS.len());
                for (name, offset, len) in layout {
                    let f = Field::find(SmartLog::FIELDS, name).unwrap();
                    assert_eq!((f.offset, f.len), (offset, len), "{name}");
                }
            }};
        }
        check!(
            critical_warning,
            composite_temperature,
            avail_spare,
            avail_spare_threshold,
            percentage_used,
            endurance_group_critical_warning,
            data_units_read,
            data_units_written,
            host_read_commands,
            host_write_commands,
            controller_busy_time,
            power_cycles,
            power_on_hours,
            unsafe_shutdowns,
            media_errors,
            num_err_log_entries,
            warning_temp_time,
            critical_comp_time,
            temp_sensor,
            thm_temp1_trans_count,
            thm_temp2_trans_count,
            thm_temp1_total_time,
            thm_temp2_total_time
        );
    }

    #[test]
    fn smart_counters() {
        let mut s = SmartLog::default();
        s.composite_temperature.set(310);
        s.set_data_units_read(u128::MAX - 1);
        s.set_power_on_hours(12345);
        assert_eq!(s.data_units_read(), u128::MAX - 1);
        assert_eq!(s.power_on_hours(), 12345);
        let b = s.as_bytes();
        assert_eq!(&b[1..3], &310u16.to_le_bytes());
        assert_eq!(&b[128..130], &12345u16.to_le_bytes());
        let f = Field::find(SmartLog::FIELDS, "composite_temperature").unwrap();
        assert_eq!(f.int(b), Some(310));
    }

    #[test]
    fn aer_dword0() {
        let dw0 = aen::dword0(
            aen::TYPE_ERROR,
            aen::ERROR_INVALID_DOORBELL_VALUE,
            lid::ERROR_INFO,
        );
        assert_eq!(dw0, 0x10100);
        assert_eq!(aen::decode(dw0), (0, 1, 1));
        assert_eq!(
            aen::dword0(aen::TYPE_SMART, aen::SMART_TEMPERATURE, lid::SMART),
            0x0002_0101
        );
    }

    #[test]
    fn self_test_history_keeps_newest_first() {
        let mut log = DeviceSelfTestLog::default();
        assert!(log
            .result
            .iter()
            .all(|r| r.result() == self_test::RESULT_UNUSED));
        for i in 0..25u64 {
            let mut r = SelfTestResult {
                status: self_test::SHORT << 4,
                ..Default::default()
            };
            r.poh.set(i);
            log.push_result(r);
        }
        assert_eq!(log.result[0].poh.get(), 24);
        assert_eq!(log.result[19].poh.get(), 5);
        assert_eq!(log.result[0].code(), self_test::SHORT);
        assert_eq!(log.result[0].result(), self_test::RESULT_OK);
    }

    #[test]
    fn get_log_dwords() {
        assert_eq!(get_log::numd(512), 127);
        assert_eq!(get_log::numd(0), 0);
        let numd = get_log::numd(1 << 20);
        let (d10, d11) = (
            get_log::cdw10(lid::SMART, 0, true, numd),
            get_log::cdw11(numd, 0),
        );
        assert_eq!(d10 & 0xff, 2);
        assert_eq!(d10 & (1 << 15), 1 << 15);
        assert_eq!(get_log::transfer_len(d10, d11), 1 << 20);
    }

    #[test]
    fn firmware_slots() {
        let mut f = FirmwareSlotLog {
            afi: 0x21,
            ..Default::default()
        };
        f.frs[0] = *b"1.0     ";
        assert_eq!((f.active_slot(), f.next_slot()), (1, 2));
        assert_eq!(f.revision(1).as_deref(), Some("1.0"));
        assert_eq!(f.revision(0), None);
        assert_eq!(f.revision(8), None);
    }
}
