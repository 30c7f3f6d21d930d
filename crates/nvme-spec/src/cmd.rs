//! Submission and completion queue entries, and the opcodes of the admin and NVM command sets.

use crate::status::Status;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A submission queue entry: one 64-byte command (NVMe 2.0 base spec, figure 88).
///
/// Dword 0 holds the opcode (bits 7:0), FUSE (9:8), PSDT (15:14) and the command identifier
/// (31:16). Dwords 6..9 are the data pointer: PRP1/PRP2, or one SGL descriptor when PSDT is
/// non-zero.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Sqe {
    /// Command dword 0: opcode, fused operation, PSDT and CID.
    pub cdw0: u32,
    /// Namespace identifier.
    pub nsid: u32,
    /// Command dword 2 (command specific).
    pub cdw2: u32,
    /// Command dword 3 (command specific).
    pub cdw3: u32,
    /// Metadata pointer.
    pub mptr: u64,
    /// Data pointer, first half: PRP entry 1, or bytes 0..8 of an SGL descriptor.
    pub prp1: u64,
    /// Data pointer, second half: PRP entry 2 or list pointer, or bytes 8..16 of an SGL descriptor.
    pub prp2: u64,
    /// Command dword 10.
    pub cdw10: u32,
    /// Command dword 11.
    pub cdw11: u32,
    /// Command dword 12.
    pub cdw12: u32,
    /// Command dword 13.
    pub cdw13: u32,
    /// Command dword 14.
    pub cdw14: u32,
    /// Command dword 15.
    pub cdw15: u32,
}
crate::assert_size!(Sqe, 64);

impl Sqe {
    /// A command with this opcode and namespace, everything else zero.
    pub fn new(opc: u8, nsid: u32) -> Self {
        Sqe {
            cdw0: opc as u32,
            nsid,
            ..Default::default()
        }
    }

    /// The opcode (dword 0 bits 7:0).
    pub fn opc(&self) -> u8 {
        self.cdw0 as u8
    }

    /// Fused operation (dword 0 bits 9:8): 0 normal, 1 first, 2 second.
    pub fn fuse(&self) -> u8 {
        ((self.cdw0 >> 8) & 3) as u8
    }

    /// PRP or SGL for data transfer (dword 0 bits 15:14): 0 PRP, 1 SGL with a contiguous
    /// metadata buffer, 2 SGL with a metadata SGL segment.
    pub fn psdt(&self) -> u8 {
        ((self.cdw0 >> 14) & 3) as u8
    }

    /// Sets PSDT.
    pub fn set_psdt(&mut self, psdt: u8) {
        self.cdw0 = (self.cdw0 & !(3 << 14)) | (((psdt & 3) as u32) << 14);
    }

    /// The command identifier (dword 0 bits 31:16).
    pub fn cid(&self) -> u16 {
        (self.cdw0 >> 16) as u16
    }

    /// Sets the command identifier.
    pub fn set_cid(&mut self, cid: u16) {
        self.cdw0 = (self.cdw0 & 0xffff) | ((cid as u32) << 16);
    }

    /// Starting LBA of an NVM read/write-like command (dwords 11:10).
    pub fn slba(&self) -> u64 {
        (self.cdw10 as u64) | ((self.cdw11 as u64) << 32)
    }

    /// Sets the starting LBA (dwords 11:10).
    pub fn set_slba(&mut self, slba: u64) {
        self.cdw10 = slba as u32;
        self.cdw11 = (slba >> 32) as u32;
    }

    /// Number of logical blocks of an NVM read/write-like command, 1-based (dword 12 bits 15:0 + 1).
    pub fn nlb(&self) -> u32 {
        (self.cdw12 & 0xffff) + 1
    }

    /// The 16 dwords of the command, in order.
    pub fn dwords(&self) -> [u32; 16] {
        let mut d = [0u32; 16];
        for (i, c) in self.as_bytes().chunks_exact(4).enumerate() {
            d[i] = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        d
    }

    /// A command from its 16 dwords.
    pub fn from_dwords(d: &[u32; 16]) -> Self {
        let mut s = Sqe::default();
        for (i, c) in s.as_mut_bytes().chunks_exact_mut(4).enumerate() {
            c.copy_from_slice(&d[i].to_le_bytes());
        }
        s
    }
}

/// A completion queue entry: 16 bytes (NVMe 2.0 base spec, figure 89).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Cqe {
    /// Dword 0, command specific.
    pub dw0: u32,
    /// Dword 1, command specific.
    pub dw1: u32,
    /// SQ head pointer.
    pub sqhd: u16,
    /// SQ identifier.
    pub sqid: u16,
    /// Command identifier.
    pub cid: u16,
    /// Phase tag (bit 0) and status field (bits 15:1).
    pub status: u16,
}
crate::assert_size!(Cqe, 16);

impl Cqe {
    /// The phase tag.
    pub fn phase(&self) -> bool {
        self.status & 1 != 0
    }

    /// The status field, without the phase tag.
    pub fn status(&self) -> Status {
        Status::from_field(self.status >> 1)
    }

    /// Dword 2: SQ identifier (31:16) and SQ head (15:0).
    pub fn dw2(&self) -> u32 {
        (self.sqid as u32) << 16 | self.sqhd as u32
    }

    /// Dword 3: status and phase (31:16), command identifier (15:0).
    pub fn dw3(&self) -> u32 {
        (self.status as u32) << 16 | self.cid as u32
    }

    /// The four dwords of the entry.
    pub fn dwords(&self) -> [u32; 4] {
        [self.dw0, self.dw1, self.dw2(), self.dw3()]
    }

    /// An entry from its four dwords.
    pub fn from_dwords(d: [u32; 4]) -> Self {
        Cqe {
            dw0: d[0],
            dw1: d[1],
            sqhd: d[2] as u16,
            sqid: (d[2] >> 16) as u16,
            cid: d[3] as u16,
            status: (d[3] >> 16) as u16,
        }
    }
}

/// Admin command opcodes (NVMe 2.0 base spec, figure 28).
pub mod admin {
    /// Delete I/O Submission Queue.
    pub const DELETE_IO_SQ: u8 = 0x00;
    /// Create I/O Submission Queue.
    pub const CREATE_IO_SQ: u8 = 0x01;
    /// Get Log Page.
    pub const GET_LOG_PAGE: u8 = 0x02;
    /// Delete I/O Completion Queue.
    pub const DELETE_IO_CQ: u8 = 0x04;
    /// Create I/O Completion Queue.
    pub const CREATE_IO_CQ: u8 = 0x05;
    /// Identify.
    pub const IDENTIFY: u8 = 0x06;
    /// Abort.
    pub const ABORT: u8 = 0x08;
    /// Set Features.
    pub const SET_FEATURES: u8 = 0x09;
    /// Get Features.
    pub const GET_FEATURES: u8 = 0x0a;
    /// Asynchronous Event Request.
    pub const ASYNC_EVENT_REQUEST: u8 = 0x0c;
    /// Namespace Management.
    pub const NS_MANAGEMENT: u8 = 0x0d;
    /// Firmware Commit.
    pub const FW_COMMIT: u8 = 0x10;
    /// Firmware Image Download.
    pub const FW_DOWNLOAD: u8 = 0x11;
    /// Device Self-test.
    pub const DEVICE_SELF_TEST: u8 = 0x14;
    /// Namespace Attachment.
    pub const NS_ATTACHMENT: u8 = 0x15;
    /// Keep Alive.
    pub const KEEP_ALIVE: u8 = 0x18;
    /// Directive Send.
    pub const DIRECTIVE_SEND: u8 = 0x19;
    /// Directive Receive.
    pub const DIRECTIVE_RECEIVE: u8 = 0x1a;
    /// Virtualization Management.
    pub const VIRT_MGMT: u8 = 0x1c;
    /// NVMe-MI Send.
    pub const MI_SEND: u8 = 0x1d;
    /// NVMe-MI Receive.
    pub const MI_RECEIVE: u8 = 0x1e;
    /// Doorbell Buffer Config.
    pub const DOORBELL_BUFFER_CONFIG: u8 = 0x7c;
    /// Format NVM.
    pub const FORMAT_NVM: u8 = 0x80;
    /// Security Send.
    pub const SECURITY_SEND: u8 = 0x81;
    /// Security Receive.
    pub const SECURITY_RECEIVE: u8 = 0x82;
    /// Sanitize.
    pub const SANITIZE: u8 = 0x84;
    /// Get LBA Status.
    pub const GET_LBA_STATUS: u8 = 0x86;

    /// The command's name as the specification writes it, for logs.
    pub fn name(opc: u8) -> &'static str {
        match opc {
            DELETE_IO_SQ => "Delete I/O Submission Queue",
            CREATE_IO_SQ => "Create I/O Submission Queue",
            GET_LOG_PAGE => "Get Log Page",
            DELETE_IO_CQ => "Delete I/O Completion Queue",
            CREATE_IO_CQ => "Create I/O Completion Queue",
            IDENTIFY => "Identify",
            ABORT => "Abort",
            SET_FEATURES => "Set Features",
            GET_FEATURES => "Get Features",
            ASYNC_EVENT_REQUEST => "Asynchronous Event Request",
            NS_MANAGEMENT => "Namespace Management",
            FW_COMMIT => "Firmware Commit",
            FW_DOWNLOAD => "Firmware Image Download",
            DEVICE_SELF_TEST => "Device Self-test",
            NS_ATTACHMENT => "Namespace Attachment",
            KEEP_ALIVE => "Keep Alive",
            DIRECTIVE_SEND => "Directive Send",
            DIRECTIVE_RECEIVE => "Directive Receive",
            VIRT_MGMT => "Virtualization Management",
            MI_SEND => "NVMe-MI Send",
            MI_RECEIVE => "NVMe-MI Receive",
            DOORBELL_BUFFER_CONFIG => "Doorbell Buffer Config",
            FORMAT_NVM => "Format NVM",
            SECURITY_SEND => "Security Send",
            SECURITY_RECEIVE => "Security Receive",
            SANITIZE => "Sanitize",
            GET_LBA_STATUS => "Get LBA Status",
            0xc0..=0xff => "Vendor specific",
            _ => "Unknown",
        }
    }
}

/// NVM command set opcodes (NVM command set spec 1.0, figure 18).
pub mod nvm {
    /// Flush.
    pub const FLUSH: u8 = 0x00;
    /// Write.
    pub const WRITE: u8 = 0x01;
    /// Read.
    pub const READ: u8 = 0x02;
    /// Write Uncorrectable.
    pub const WRITE_UNCORRECTABLE: u8 = 0x04;
    /// Compare.
    pub const COMPARE: u8 = 0x05;
    /// Write Zeroes.
    pub const WRITE_ZEROES: u8 = 0x08;
    /// Dataset Management.
    pub const DSM: u8 = 0x09;
    /// Verify.
    pub const VERIFY: u8 = 0x0c;
    /// Reservation Register.
    pub const RESERVATION_REGISTER: u8 = 0x0d;
    /// Reservation Report.
    pub const RESERVATION_REPORT: u8 = 0x0e;
    /// Reservation Acquire.
    pub const RESERVATION_ACQUIRE: u8 = 0x11;
    /// Reservation Release.
    pub const RESERVATION_RELEASE: u8 = 0x15;
    /// Copy.
    pub const COPY: u8 = 0x19;

    /// The command's name as the specification writes it, for logs.
    pub fn name(opc: u8) -> &'static str {
        match opc {
            FLUSH => "Flush",
            WRITE => "Write",
            READ => "Read",
            WRITE_UNCORRECTABLE => "Write Uncorrectable",
            COMPARE => "Compare",
            WRITE_ZEROES => "Write Zeroes",
            DSM => "Dataset Management",
            VERIFY => "Verify",
            RESERVATION_REGISTER => "Reservation Register",
            RESERVATION_REPORT => "Reservation Report",
            RESERVATION_ACQUIRE => "Reservation Acquire",
            RESERVATION_RELEASE => "Reservation Release",
            COPY => "Copy",
            0x80..=0xff => "Vendor specific",
            _ => "Unknown",
        }
    }

    /// Whether data moves from host to device (opcode bits 1:0 = 01b), as the spec encodes it.
    pub fn is_host_to_device(opc: u8) -> bool {
        opc & 3 == 1
    }

    /// Whether data moves from device to host (opcode bits 1:0 = 10b).
    pub fn is_device_to_host(opc: u8) -> bool {
        opc & 3 == 2
    }
}

/// Command dword 12 flags of NVM read/write-like commands (the upper 16 bits, "io_flags").
pub mod io_flags {
    /// Limited Retry (bit 31).
    pub const LR: u32 = 1 << 31;
    /// Force Unit Access (bit 30).
    pub const FUA: u32 = 1 << 30;
    /// Deallocate, in Write Zeroes (bit 25).
    pub const DEAC: u32 = 1 << 25;
}

/// A Dataset Management range (NVM command set spec, figure 39): 16 bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct DsmRange {
    /// Context attributes.
    pub cattr: u32,
    /// Length in logical blocks.
    pub nlb: u32,
    /// Starting LBA.
    pub slba: u64,
}
crate::assert_size!(DsmRange, 16);

/// A Copy source range, format 0 (NVM command set spec, figure 44): 32 bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct CopyRange {
    /// Reserved.
    pub rsvd0: u64,
    /// Starting LBA.
    pub slba: u64,
    /// Number of logical blocks, 0-based.
    pub nlb: u16,
    /// Reserved.
    pub rsvd18: [u8; 6],
    /// Expected initial logical block reference tag.
    pub eilbrt: u32,
    /// Expected logical block application tag.
    pub elbat: u16,
    /// Expected logical block application tag mask.
    pub elbatm: u16,
}
crate::assert_size!(CopyRange, 32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqe_fields_round_trip() {
        let mut s = Sqe::new(nvm::READ, 1);
        s.set_cid(0x1234);
        s.set_psdt(1);
        s.set_slba(0x1_0000_0002);
        s.cdw12 = 7;
        assert_eq!(s.opc(), 2);
        assert_eq!(s.cid(), 0x1234);
        assert_eq!(s.psdt(), 1);
        assert_eq!(s.slba(), 0x1_0000_0002);
        assert_eq!(s.nlb(), 8);
        assert_eq!(Sqe::from_dwords(&s.dwords()), s);
    }

    #[test]
    fn cqe_dwords_round_trip() {
        let c = Cqe {
            dw0: 1,
            dw1: 2,
            sqhd: 3,
            sqid: 4,
            cid: 5,
            status: 0x8003,
        };
        assert_eq!(c.dw2(), 0x0004_0003);
        assert_eq!(c.dw3(), 0x8003_0005);
        assert_eq!(Cqe::from_dwords(c.dwords()), c);
        assert!(c.phase());
        assert_eq!(c.status().sc, 1);
        assert!(c.status().dnr);
    }
}
