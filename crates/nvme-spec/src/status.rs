//! The status field of a completion: status code type, status code, retry delay, more, DNR.

use core::fmt;

/// The 15-bit status field of a completion queue entry (bits 31:17 of dword 3), decoded.
///
/// Every 15-bit value round-trips through [`Status::from_field`] and [`Status::field`], since
/// a device under test may answer anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Status {
    /// Status code type (3 bits).
    pub sct: u8,
    /// Status code.
    pub sc: u8,
    /// Command retry delay (2 bits).
    pub crd: u8,
    /// More information in the error log page.
    pub more: bool,
    /// Do not retry.
    pub dnr: bool,
}

impl Status {
    /// Successful completion.
    pub const SUCCESS: Status = Status::new(sct::GENERIC, 0);

    /// A status with this type and code, CRD, More and DNR clear.
    pub const fn new(sct: u8, sc: u8) -> Status {
        Status {
            sct,
            sc,
            crd: 0,
            more: false,
            dnr: false,
        }
    }

    /// The same status with DNR set.
    pub const fn dnr(mut self) -> Status {
        self.dnr = true;
        self
    }

    /// Decodes the status field without the phase tag (CQE dword 3 bits 31:17, shifted down).
    pub const fn from_field(f: u16) -> Status {
        Status {
            sc: f as u8,
            sct: ((f >> 8) & 7) as u8,
            crd: ((f >> 11) & 3) as u8,
            more: f & (1 << 13) != 0,
            dnr: f & (1 << 14) != 0,
        }
    }

    /// Encodes the status field without the phase tag.
    pub const fn field(&self) -> u16 {
        self.sc as u16
            | ((self.sct as u16 & 7) << 8)
            | ((self.crd as u16 & 3) << 11)
            | ((self.more as u16) << 13)
            | ((self.dnr as u16) << 14)
    }

    /// Whether this is a successful completion (SCT 0, SC 0).
    pub const fn is_success(&self) -> bool {
        self.sct == 0 && self.sc == 0
    }

    /// The status as pynvme's `status1`: phase in bit 0, the status field above it.
    pub const fn status1(&self, phase: bool) -> u16 {
        (self.field() << 1) | phase as u16
    }

    /// A short name of the status, for logs ("SUCCESS", "INVALID FIELD" ...).
    pub fn name(&self) -> &'static str {
        use sc::*;
        match (self.sct, self.sc) {
            (sct::GENERIC, SUCCESS) => "SUCCESS",
            (sct::GENERIC, INVALID_OPCODE) => "INVALID OPCODE",
            (sct::GENERIC, INVALID_FIELD) => "INVALID FIELD",
            (sct::GENERIC, COMMAND_ID_CONFLICT) => "COMMAND ID CONFLICT",
            (sct::GENERIC, DATA_TRANSFER_ERROR) => "DATA TRANSFER ERROR",
            (sct::GENERIC, ABORTED_POWER_LOSS) => "ABORTED - POWER LOSS",
            (sct::GENERIC, INTERNAL_ERROR) => "INTERNAL ERROR",
            (sct::GENERIC, ABORTED_BY_REQUEST) => "ABORTED - BY REQUEST",
            (sct::GENERIC, ABORTED_SQ_DELETION) => "ABORTED - SQ DELETION",
            (sct::GENERIC, ABORTED_FAILED_FUSED) => "ABORTED - FAILED FUSED",
            (sct::GENERIC, ABORTED_MISSING_FUSED) => "ABORTED - MISSING FUSED",
            (sct::GENERIC, INVALID_NAMESPACE_OR_FORMAT) => "INVALID NAMESPACE OR FORMAT",
            (sct::GENERIC, COMMAND_SEQUENCE_ERROR) => "COMMAND SEQUENCE ERROR",
            (sct::GENERIC, INVALID_SGL_SEGMENT_DESCRIPTOR) => "INVALID SGL SEGMENT DESCRIPTOR",
            (sct::GENERIC, INVALID_NUMBER_OF_SGL_DESCRIPTORS) => {
                "INVALID NUMBER OF SGL DESCRIPTORS"
            }
            (sct::GENERIC, DATA_SGL_LENGTH_INVALID) => "DATA SGL LENGTH INVALID",
            (sct::GENERIC, METADATA_SGL_LENGTH_INVALID) => "METADATA SGL LENGTH INVALID",
            (sct::GENERIC, SGL_DESCRIPTOR_TYPE_INVALID) => "SGL DESCRIPTOR TYPE INVALID",
            (sct::GENERIC, INVALID_PRP_OFFSET) => "INVALID PRP OFFSET",
            (sct::GENERIC, SGL_OFFSET_INVALID) => "SGL OFFSET INVALID",
            (sct::GENERIC, SANITIZE_FAILED) => "SANITIZE FAILED",
            (sct::GENERIC, SANITIZE_IN_PROGRESS) => "SANITIZE IN PROGRESS",
            (sct::GENERIC, SGL_DATA_BLOCK_GRANULARITY_INVALID) => {
                "SGL DATA BLOCK GRANULARITY INVALID"
            }
            (sct::GENERIC, NAMESPACE_IS_WRITE_PROTECTED) => "NAMESPACE IS WRITE PROTECTED",
            (sct::GENERIC, INVALID_USE_OF_CMB) => "INVALID USE OF CONTROLLER MEMORY BUFFER",
            (sct::GENERIC, ATOMIC_WRITE_UNIT_EXCEEDED) => "ATOMIC WRITE UNIT EXCEEDED",
            (sct::GENERIC, OPERATION_DENIED) => "OPERATION DENIED",
            (sct::GENERIC, HOST_ID_INCONSISTENT_FORMAT) => "HOST IDENTIFIER INCONSISTENT FORMAT",
            (sct::GENERIC, KEEP_ALIVE_TIMER_EXPIRED) => "KEEP ALIVE TIMER EXPIRED",
            (sct::GENERIC, KEEP_ALIVE_TIMEOUT_INVALID) => "KEEP ALIVE TIMEOUT INVALID",
            (sct::GENERIC, ABORTED_PREEMPT) => "ABORTED - PREEMPT AND ABORT",
            (sct::GENERIC, CMD_NOT_SUPPORTED_FOR_CMB_QUEUE) => {
                "COMMAND NOT SUPPORTED FOR QUEUE IN CMB"
            }
            (sct::GENERIC, COMMAND_INTERRUPTED) => "COMMAND INTERRUPTED",
            (sct::GENERIC, TRANSIENT_TRANSPORT_ERROR) => "TRANSIENT TRANSPORT ERROR",
            (sct::GENERIC, RESERVATION_CONFLICT) => "RESERVATION CONFLICT",
            (sct::GENERIC, LBA_OUT_OF_RANGE) => "LBA OUT OF RANGE",
            (sct::GENERIC, CAPACITY_EXCEEDED) => "CAPACITY EXCEEDED",
            (sct::GENERIC, NAMESPACE_NOT_READY) => "NAMESPACE NOT READY",
            (sct::GENERIC, FORMAT_IN_PROGRESS) => "FORMAT IN PROGRESS",
            (sct::COMMAND_SPECIFIC, cs::COMPLETION_QUEUE_INVALID) => "COMPLETION QUEUE INVALID",
            (sct::COMMAND_SPECIFIC, cs::INVALID_QUEUE_IDENTIFIER) => "INVALID QUEUE IDENTIFIER",
            (sct::COMMAND_SPECIFIC, cs::INVALID_QUEUE_SIZE) => "INVALID QUEUE SIZE",
            (sct::COMMAND_SPECIFIC, cs::ABORT_COMMAND_LIMIT_EXCEEDED) => {
                "ABORT COMMAND LIMIT EXCEEDED"
            }
            (sct::COMMAND_SPECIFIC, cs::ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED) => {
                "ASYNCHRONOUS EVENT REQUEST LIMIT EXCEEDED"
            }
            (sct::COMMAND_SPECIFIC, cs::INVALID_FIRMWARE_SLOT) => "INVALID FIRMWARE SLOT",
            (sct::COMMAND_SPECIFIC, cs::INVALID_FIRMWARE_IMAGE) => "INVALID FIRMWARE IMAGE",
            (sct::COMMAND_SPECIFIC, cs::INVALID_INTERRUPT_VECTOR) => "INVALID INTERRUPT VECTOR",
            (sct::COMMAND_SPECIFIC, cs::INVALID_LOG_PAGE) => "INVALID LOG PAGE",
            (sct::COMMAND_SPECIFIC, cs::INVALID_FORMAT) => "INVALID FORMAT",
            (sct::COMMAND_SPECIFIC, cs::FIRMWARE_ACTIVATION_REQUIRES_CONVENTIONAL_RESET) => {
                "FIRMWARE ACTIVATION REQUIRES CONVENTIONAL RESET"
            }
            (sct::COMMAND_SPECIFIC, cs::INVALID_QUEUE_DELETION) => "INVALID QUEUE DELETION",
            (sct::COMMAND_SPECIFIC, cs::FEATURE_IDENTIFIER_NOT_SAVEABLE) => {
                "FEATURE IDENTIFIER NOT SAVEABLE"
            }
            (sct::COMMAND_SPECIFIC, cs::FEATURE_NOT_CHANGEABLE) => "FEATURE NOT CHANGEABLE",
            (sct::COMMAND_SPECIFIC, cs::FEATURE_NOT_NAMESPACE_SPECIFIC) => {
                "FEATURE NOT NAMESPACE SPECIFIC"
            }
            (sct::COMMAND_SPECIFIC, cs::FIRMWARE_ACTIVATION_REQUIRES_NVM_SUBSYSTEM_RESET) => {
                "FIRMWARE ACTIVATION REQUIRES NVM SUBSYSTEM RESET"
            }
            (sct::COMMAND_SPECIFIC, cs::FIRMWARE_ACTIVATION_REQUIRES_RESET) => {
                "FIRMWARE ACTIVATION REQUIRES RESET"
            }
            (sct::COMMAND_SPECIFIC, cs::NAMESPACE_INSUFFICIENT_CAPACITY) => {
                "NAMESPACE INSUFFICIENT CAPACITY"
            }
            (sct::COMMAND_SPECIFIC, cs::FIRMWARE_ACTIVATION_REQUIRES_MAX_TIME_VIOLATION) => {
                "FIRMWARE ACTIVATION REQUIRES MAXIMUM TIME VIOLATION"
            }
            (sct::COMMAND_SPECIFIC, cs::FIRMWARE_ACTIVATION_PROHIBITED) => {
                "FIRMWARE ACTIVATION PROHIBITED"
            }
            (sct::COMMAND_SPECIFIC, cs::OVERLAPPING_RANGE) => "OVERLAPPING RANGE",
            (sct::COMMAND_SPECIFIC, cs::NAMESPACE_IS_PRIVATE) => "NAMESPACE IS PRIVATE",
            (sct::COMMAND_SPECIFIC, cs::THIN_PROVISIONING_NOT_SUPPORTED) => {
                "THIN PROVISIONING NOT SUPPORTED"
            }
            (sct::COMMAND_SPECIFIC, cs::BOOT_PARTITION_WRITE_PROHIBITED) => {
                "BOOT PARTITION WRITE PROHIBITED"
            }
            (sct::COMMAND_SPECIFIC, cs::INVALID_CONTROLLER_IDENTIFIER) => {
                "INVALID CONTROLLER IDENTIFIER"
            }
            (sct::COMMAND_SPECIFIC, cs::INVALID_SECONDARY_CONTROLLER_STATE) => {
                "INVALID SECONDARY CONTROLLER STATE"
            }
            (sct::COMMAND_SPECIFIC, cs::INVALID_NUMBER_OF_CONTROLLER_RESOURCES) => {
                "INVALID NUMBER OF CONTROLLER RESOURCES"
            }
            (sct::COMMAND_SPECIFIC, cs::INVALID_RESOURCE_IDENTIFIER) => {
                "INVALID RESOURCE IDENTIFIER"
            }
            (sct::COMMAND_SPECIFIC, cs::SANITIZE_PROHIBITED_PMR) => {
                "SANITIZE PROHIBITED WHILE PMR IS ENABLED"
            }
            (sct::COMMAND_SPECIFIC, cs::ANA_GROUP_IDENTIFIER_INVALID) => {
                "ANA GROUP IDENTIFIER INVALID"
            }
            (sct::COMMAND_SPECIFIC, cs::ANA_ATTACH_FAILED) => "ANA ATTACH FAILED",
            (sct::COMMAND_SPECIFIC, cs::ATTEMPTED_WRITE_TO_READ_ONLY_RANGE) => {
                "ATTEMPTED WRITE TO READ ONLY RANGE"
            }
            (sct::COMMAND_SPECIFIC, cs::COMMAND_SIZE_LIMIT_EXCEEDED) => {
                "COMMAND SIZE LIMIT EXCEEDED"
            }
            (sct::COMMAND_SPECIFIC, cs::NAMESPACE_IDENTIFIER_UNAVAILABLE) => {
                "NAMESPACE IDENTIFIER UNAVAILABLE"
            }
            (sct::COMMAND_SPECIFIC, cs::NAMESPACE_ALREADY_ATTACHED) => "NAMESPACE ALREADY ATTACHED",
            (sct::COMMAND_SPECIFIC, cs::NAMESPACE_NOT_ATTACHED) => "NAMESPACE NOT ATTACHED",
            (sct::COMMAND_SPECIFIC, cs::CONTROLLER_LIST_INVALID) => "CONTROLLER LIST INVALID",
            (sct::COMMAND_SPECIFIC, cs::DEVICE_SELF_TEST_IN_PROGRESS) => {
                "DEVICE SELF-TEST IN PROGRESS"
            }
            (sct::COMMAND_SPECIFIC, cs::CONFLICTING_ATTRIBUTES) => "CONFLICTING ATTRIBUTES",
            (sct::COMMAND_SPECIFIC, cs::INVALID_PROTECTION_INFORMATION) => {
                "INVALID PROTECTION INFORMATION"
            }
            (sct::MEDIA_ERROR, media::WRITE_FAULT) => "WRITE FAULT",
            (sct::MEDIA_ERROR, media::UNRECOVERED_READ_ERROR) => "UNRECOVERED READ ERROR",
            (sct::MEDIA_ERROR, media::GUARD_CHECK_ERROR) => "END-TO-END GUARD CHECK ERROR",
            (sct::MEDIA_ERROR, media::APPLICATION_TAG_CHECK_ERROR) => {
                "END-TO-END APPLICATION TAG CHECK ERROR"
            }
            (sct::MEDIA_ERROR, media::REFERENCE_TAG_CHECK_ERROR) => {
                "END-TO-END REFERENCE TAG CHECK ERROR"
            }
            (sct::MEDIA_ERROR, media::COMPARE_FAILURE) => "COMPARE FAILURE",
            (sct::MEDIA_ERROR, media::ACCESS_DENIED) => "ACCESS DENIED",
            (sct::MEDIA_ERROR, media::DEALLOCATED_OR_UNWRITTEN_BLOCK) => {
                "DEALLOCATED OR UNWRITTEN LOGICAL BLOCK"
            }
            (sct::VENDOR, 0x81) => "DATA MISCOMPARE (HOST VERIFY)",
            (sct::VENDOR, 0xff) => "COMMAND TIMEOUT (HOST)",
            (sct::VENDOR, _) => "VENDOR SPECIFIC",
            _ => "UNKNOWN",
        }
    }
}

impl fmt::Display for Status {
    /// `SCT/SC` in hex, as pynvme prints it: `02/81`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}/{:02x}", self.sct, self.sc)
    }
}

/// Status code types.
pub mod sct {
    /// Generic command status.
    pub const GENERIC: u8 = 0;
    /// Command specific status.
    pub const COMMAND_SPECIFIC: u8 = 1;
    /// Media and data integrity errors.
    pub const MEDIA_ERROR: u8 = 2;
    /// Path related status.
    pub const PATH: u8 = 3;
    /// Vendor specific: the host driver uses it for its own verdicts (07/81 miscompare, 07/ff timeout).
    pub const VENDOR: u8 = 7;
}

/// Generic command status codes (SCT 0).
pub mod sc {
    /// Successful completion.
    pub const SUCCESS: u8 = 0x00;
    /// Invalid command opcode.
    pub const INVALID_OPCODE: u8 = 0x01;
    /// Invalid field in command.
    pub const INVALID_FIELD: u8 = 0x02;
    /// Command ID conflict.
    pub const COMMAND_ID_CONFLICT: u8 = 0x03;
    /// Data transfer error.
    pub const DATA_TRANSFER_ERROR: u8 = 0x04;
    /// Commands aborted due to power loss notification.
    pub const ABORTED_POWER_LOSS: u8 = 0x05;
    /// Internal error.
    pub const INTERNAL_ERROR: u8 = 0x06;
    /// Command abort requested.
    pub const ABORTED_BY_REQUEST: u8 = 0x07;
    /// Command aborted due to SQ deletion.
    pub const ABORTED_SQ_DELETION: u8 = 0x08;
    /// Command aborted due to failed fused command.
    pub const ABORTED_FAILED_FUSED: u8 = 0x09;
    /// Command aborted due to missing fused command.
    pub const ABORTED_MISSING_FUSED: u8 = 0x0a;
    /// Invalid namespace or format.
    pub const INVALID_NAMESPACE_OR_FORMAT: u8 = 0x0b;
    /// Command sequence error.
    pub const COMMAND_SEQUENCE_ERROR: u8 = 0x0c;
    /// Invalid SGL segment descriptor.
    pub const INVALID_SGL_SEGMENT_DESCRIPTOR: u8 = 0x0d;
    /// Invalid number of SGL descriptors.
    pub const INVALID_NUMBER_OF_SGL_DESCRIPTORS: u8 = 0x0e;
    /// Data SGL length invalid.
    pub const DATA_SGL_LENGTH_INVALID: u8 = 0x0f;
    /// Metadata SGL length invalid.
    pub const METADATA_SGL_LENGTH_INVALID: u8 = 0x10;
    /// SGL descriptor type invalid.
    pub const SGL_DESCRIPTOR_TYPE_INVALID: u8 = 0x11;
    /// Invalid use of controller memory buffer.
    pub const INVALID_USE_OF_CMB: u8 = 0x12;
    /// PRP offset invalid.
    pub const INVALID_PRP_OFFSET: u8 = 0x13;
    /// Atomic write unit exceeded.
    pub const ATOMIC_WRITE_UNIT_EXCEEDED: u8 = 0x14;
    /// Operation denied.
    pub const OPERATION_DENIED: u8 = 0x15;
    /// SGL offset invalid.
    pub const SGL_OFFSET_INVALID: u8 = 0x16;
    /// Host identifier inconsistent format.
    pub const HOST_ID_INCONSISTENT_FORMAT: u8 = 0x18;
    /// Keep alive timer expired.
    pub const KEEP_ALIVE_TIMER_EXPIRED: u8 = 0x19;
    /// Keep alive timeout invalid.
    pub const KEEP_ALIVE_TIMEOUT_INVALID: u8 = 0x1a;
    /// Command aborted due to preempt and abort.
    pub const ABORTED_PREEMPT: u8 = 0x1b;
    /// Sanitize failed.
    pub const SANITIZE_FAILED: u8 = 0x1c;
    /// Sanitize in progress.
    pub const SANITIZE_IN_PROGRESS: u8 = 0x1d;
    /// SGL data block granularity invalid.
    pub const SGL_DATA_BLOCK_GRANULARITY_INVALID: u8 = 0x1e;
    /// Command not supported for queue in CMB.
    pub const CMD_NOT_SUPPORTED_FOR_CMB_QUEUE: u8 = 0x1f;
    /// Namespace is write protected.
    pub const NAMESPACE_IS_WRITE_PROTECTED: u8 = 0x20;
    /// Command interrupted.
    pub const COMMAND_INTERRUPTED: u8 = 0x21;
    /// Transient transport error.
    pub const TRANSIENT_TRANSPORT_ERROR: u8 = 0x22;
    /// LBA out of range.
    pub const LBA_OUT_OF_RANGE: u8 = 0x80;
    /// Capacity exceeded.
    pub const CAPACITY_EXCEEDED: u8 = 0x81;
    /// Namespace not ready.
    pub const NAMESPACE_NOT_READY: u8 = 0x82;
    /// Reservation conflict.
    pub const RESERVATION_CONFLICT: u8 = 0x83;
    /// Format in progress.
    pub const FORMAT_IN_PROGRESS: u8 = 0x84;
}

/// Command specific status codes (SCT 1).
pub mod cs {
    /// Completion queue invalid.
    pub const COMPLETION_QUEUE_INVALID: u8 = 0x00;
    /// Invalid queue identifier.
    pub const INVALID_QUEUE_IDENTIFIER: u8 = 0x01;
    /// Invalid queue size.
    pub const INVALID_QUEUE_SIZE: u8 = 0x02;
    /// Abort command limit exceeded.
    pub const ABORT_COMMAND_LIMIT_EXCEEDED: u8 = 0x03;
    /// Asynchronous event request limit exceeded.
    pub const ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED: u8 = 0x05;
    /// Invalid firmware slot.
    pub const INVALID_FIRMWARE_SLOT: u8 = 0x06;
    /// Invalid firmware image.
    pub const INVALID_FIRMWARE_IMAGE: u8 = 0x07;
    /// Invalid interrupt vector.
    pub const INVALID_INTERRUPT_VECTOR: u8 = 0x08;
    /// Invalid log page.
    pub const INVALID_LOG_PAGE: u8 = 0x09;
    /// Invalid format.
    pub const INVALID_FORMAT: u8 = 0x0a;
    /// Firmware activation requires conventional reset.
    pub const FIRMWARE_ACTIVATION_REQUIRES_CONVENTIONAL_RESET: u8 = 0x0b;
    /// Invalid queue deletion.
    pub const INVALID_QUEUE_DELETION: u8 = 0x0c;
    /// Feature identifier not saveable.
    pub const FEATURE_IDENTIFIER_NOT_SAVEABLE: u8 = 0x0d;
    /// Feature not changeable.
    pub const FEATURE_NOT_CHANGEABLE: u8 = 0x0e;
    /// Feature not namespace specific.
    pub const FEATURE_NOT_NAMESPACE_SPECIFIC: u8 = 0x0f;
    /// Firmware activation requires NVM subsystem reset.
    pub const FIRMWARE_ACTIVATION_REQUIRES_NVM_SUBSYSTEM_RESET: u8 = 0x10;
    /// Firmware activation requires controller level reset.
    pub const FIRMWARE_ACTIVATION_REQUIRES_RESET: u8 = 0x11;
    /// Firmware activation requires maximum time violation.
    pub const FIRMWARE_ACTIVATION_REQUIRES_MAX_TIME_VIOLATION: u8 = 0x12;
    /// Firmware activation prohibited.
    pub const FIRMWARE_ACTIVATION_PROHIBITED: u8 = 0x13;
    /// Overlapping range.
    pub const OVERLAPPING_RANGE: u8 = 0x14;
    /// Namespace insufficient capacity.
    pub const NAMESPACE_INSUFFICIENT_CAPACITY: u8 = 0x15;
    /// Namespace identifier unavailable.
    pub const NAMESPACE_IDENTIFIER_UNAVAILABLE: u8 = 0x16;
    /// Namespace already attached.
    pub const NAMESPACE_ALREADY_ATTACHED: u8 = 0x18;
    /// Namespace is private.
    pub const NAMESPACE_IS_PRIVATE: u8 = 0x19;
    /// Namespace not attached.
    pub const NAMESPACE_NOT_ATTACHED: u8 = 0x1a;
    /// Thin provisioning not supported.
    pub const THIN_PROVISIONING_NOT_SUPPORTED: u8 = 0x1b;
    /// Controller list invalid.
    pub const CONTROLLER_LIST_INVALID: u8 = 0x1c;
    /// Device self-test in progress.
    pub const DEVICE_SELF_TEST_IN_PROGRESS: u8 = 0x1d;
    /// Boot partition write prohibited.
    pub const BOOT_PARTITION_WRITE_PROHIBITED: u8 = 0x1e;
    /// Invalid controller identifier.
    pub const INVALID_CONTROLLER_IDENTIFIER: u8 = 0x1f;
    /// Invalid secondary controller state.
    pub const INVALID_SECONDARY_CONTROLLER_STATE: u8 = 0x20;
    /// Invalid number of controller resources.
    pub const INVALID_NUMBER_OF_CONTROLLER_RESOURCES: u8 = 0x21;
    /// Invalid resource identifier.
    pub const INVALID_RESOURCE_IDENTIFIER: u8 = 0x22;
    /// Sanitize prohibited while persistent memory region is enabled.
    pub const SANITIZE_PROHIBITED_PMR: u8 = 0x23;
    /// ANA group identifier invalid.
    pub const ANA_GROUP_IDENTIFIER_INVALID: u8 = 0x24;
    /// ANA attach failed.
    pub const ANA_ATTACH_FAILED: u8 = 0x25;
    /// Conflicting attributes (NVM command set, DSM / Write Zeroes).
    pub const CONFLICTING_ATTRIBUTES: u8 = 0x80;
    /// Invalid protection information.
    pub const INVALID_PROTECTION_INFORMATION: u8 = 0x81;
    /// Attempted write to read only range.
    pub const ATTEMPTED_WRITE_TO_READ_ONLY_RANGE: u8 = 0x82;
    /// Command size limit exceeded (Copy).
    pub const COMMAND_SIZE_LIMIT_EXCEEDED: u8 = 0x83;
}

/// Media and data integrity errors (SCT 2).
pub mod media {
    /// Write fault.
    pub const WRITE_FAULT: u8 = 0x80;
    /// Unrecovered read error.
    pub const UNRECOVERED_READ_ERROR: u8 = 0x81;
    /// End-to-end guard check error.
    pub const GUARD_CHECK_ERROR: u8 = 0x82;
    /// End-to-end application tag check error.
    pub const APPLICATION_TAG_CHECK_ERROR: u8 = 0x83;
    /// End-to-end reference tag check error.
    pub const REFERENCE_TAG_CHECK_ERROR: u8 = 0x84;
    /// Compare failure.
    pub const COMPARE_FAILURE: u8 = 0x85;
    /// Access denied.
    pub const ACCESS_DENIED: u8 = 0x86;
    /// Deallocated or unwritten logical block.
    pub const DEALLOCATED_OR_UNWRITTEN_BLOCK: u8 = 0x87;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_value_round_trips() {
        for f in 0..0x8000u16 {
            assert_eq!(Status::from_field(f).field(), f);
        }
    }

    #[test]
    fn every_defined_status_has_a_name() {
        let src = include_str!("status.rs");
        for (module, sct) in [
            ("sc", sct::GENERIC),
            ("cs", sct::COMMAND_SPECIFIC),
            ("media", sct::MEDIA_ERROR),
        ] {
            let body = src
                .split(&format!("pub mod {module} {{"))
                .nth(1)
                .unwrap()
                .split("\n}")
                .next()
                .unwrap();
            for line in body
                .lines()
                .filter(|l| l.trim_start().starts_with("pub const"))
            {
                let hex = line.rsplit("0x").next().unwrap().trim_end_matches(';');
                let code = u8::from_str_radix(hex, 16).unwrap();
                assert_ne!(Status::new(sct, code).name(), "UNKNOWN", "{module}: {line}");
            }
        }
    }

    #[test]
    fn display_is_pynvme_style() {
        assert_eq!(Status::new(7, 0x81).to_string(), "07/81");
        assert_eq!(
            Status::new(sct::GENERIC, sc::INVALID_FIELD).to_string(),
            "00/02"
        );
        assert_eq!(Status::new(1, 1).status1(true), 0x203);
    }
}
