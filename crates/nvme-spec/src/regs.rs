//! Controller registers in BAR0 (NVMe 2.0 base spec, section 3.1) and their fields.

/// Controller Capabilities (64 bits).
pub const CAP: u32 = 0x00;
/// Version.
pub const VS: u32 = 0x08;
/// Interrupt Mask Set.
pub const INTMS: u32 = 0x0c;
/// Interrupt Mask Clear.
pub const INTMC: u32 = 0x10;
/// Controller Configuration.
pub const CC: u32 = 0x14;
/// Controller Status.
pub const CSTS: u32 = 0x1c;
/// NVM Subsystem Reset.
pub const NSSR: u32 = 0x20;
/// Admin Queue Attributes.
pub const AQA: u32 = 0x24;
/// Admin Submission Queue Base Address (64 bits).
pub const ASQ: u32 = 0x28;
/// Admin Completion Queue Base Address (64 bits).
pub const ACQ: u32 = 0x30;
/// Controller Memory Buffer Location.
pub const CMBLOC: u32 = 0x38;
/// Controller Memory Buffer Size.
pub const CMBSZ: u32 = 0x3c;
/// Boot Partition Information.
pub const BPINFO: u32 = 0x40;
/// Controller Memory Buffer Memory Space Control (64 bits).
pub const CMBMSC: u32 = 0x50;
/// Controller Memory Buffer Status.
pub const CMBSTS: u32 = 0x58;
/// Persistent Memory Capabilities.
pub const PMRCAP: u32 = 0xe00;
/// First doorbell register (SQ 0 tail).
pub const DOORBELL_BASE: u32 = 0x1000;
/// The value written to NSSR to start an NVM subsystem reset ("NVMe").
pub const NSSR_MAGIC: u32 = 0x4e56_4d65;

/// Offset of the SQ `qid` tail doorbell for a doorbell stride of `4 << dstrd` bytes.
pub const fn sq_tail_doorbell(qid: u16, dstrd: u8) -> u32 {
    DOORBELL_BASE + ((2 * qid as u32) * (4 << dstrd))
}

/// Offset of the CQ `qid` head doorbell for a doorbell stride of `4 << dstrd` bytes.
pub const fn cq_head_doorbell(qid: u16, dstrd: u8) -> u32 {
    DOORBELL_BASE + ((2 * qid as u32 + 1) * (4 << dstrd))
}

/// CAP: Controller Capabilities, decoded from its 64-bit value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cap(pub u64);

impl Cap {
    /// Maximum Queue Entries Supported, 0-based (bits 15:0).
    pub const fn mqes(&self) -> u16 {
        self.0 as u16
    }
    /// Contiguous Queues Required (bit 16).
    pub const fn cqr(&self) -> bool {
        self.0 & (1 << 16) != 0
    }
    /// Arbitration Mechanism Supported (bits 18:17): bit 0 weighted round robin, bit 1 vendor.
    pub const fn ams(&self) -> u8 {
        ((self.0 >> 17) & 3) as u8
    }
    /// Timeout for CSTS.RDY transitions, in 500 ms units (bits 31:24).
    pub const fn to(&self) -> u8 {
        (self.0 >> 24) as u8
    }
    /// Doorbell Stride: doorbells are `4 << dstrd` bytes apart (bits 35:32).
    pub const fn dstrd(&self) -> u8 {
        ((self.0 >> 32) & 0xf) as u8
    }
    /// NVM Subsystem Reset Supported (bit 36).
    pub const fn nssrs(&self) -> bool {
        self.0 & (1 << 36) != 0
    }
    /// Command Sets Supported (bits 44:37).
    pub const fn css(&self) -> u8 {
        ((self.0 >> 37) & 0xff) as u8
    }
    /// Boot Partition Support (bit 45).
    pub const fn bps(&self) -> bool {
        self.0 & (1 << 45) != 0
    }
    /// Memory Page Size Minimum: `2 ^ (12 + mpsmin)` bytes (bits 51:48).
    pub const fn mpsmin(&self) -> u8 {
        ((self.0 >> 48) & 0xf) as u8
    }
    /// Memory Page Size Maximum (bits 55:52).
    pub const fn mpsmax(&self) -> u8 {
        ((self.0 >> 52) & 0xf) as u8
    }
    /// Controller Memory Buffer Supported (bit 57).
    pub const fn cmbs(&self) -> bool {
        self.0 & (1 << 57) != 0
    }

    /// Builds a CAP value from its fields.
    #[allow(clippy::too_many_arguments)]
    pub const fn build(
        mqes: u16,
        cqr: bool,
        ams: u8,
        to: u8,
        dstrd: u8,
        nssrs: bool,
        css: u8,
        mpsmin: u8,
        mpsmax: u8,
        cmbs: bool,
    ) -> Cap {
        Cap(mqes as u64
            | (cqr as u64) << 16
            | ((ams as u64) & 3) << 17
            | (to as u64) << 24
            | ((dstrd as u64) & 0xf) << 32
            | (nssrs as u64) << 36
            | (css as u64) << 37
            | ((mpsmin as u64) & 0xf) << 48
            | ((mpsmax as u64) & 0xf) << 52
            | (cmbs as u64) << 57)
    }
}

/// CC: Controller Configuration fields.
pub mod cc {
    /// Enable (bit 0).
    pub const EN: u32 = 1;
    /// I/O Command Set Selected (bits 6:4).
    pub const fn css(cc: u32) -> u8 {
        ((cc >> 4) & 7) as u8
    }
    /// Memory Page Size: `2 ^ (12 + mps)` bytes (bits 10:7).
    pub const fn mps(cc: u32) -> u8 {
        ((cc >> 7) & 0xf) as u8
    }
    /// Arbitration Mechanism Selected (bits 13:11): 0 round robin, 1 weighted round robin.
    pub const fn ams(cc: u32) -> u8 {
        ((cc >> 11) & 7) as u8
    }
    /// Shutdown Notification (bits 15:14): 0 none, 1 normal, 2 abrupt.
    pub const fn shn(cc: u32) -> u8 {
        ((cc >> 14) & 3) as u8
    }
    /// I/O Submission Queue Entry Size, log2 (bits 19:16).
    pub const fn iosqes(cc: u32) -> u8 {
        ((cc >> 16) & 0xf) as u8
    }
    /// I/O Completion Queue Entry Size, log2 (bits 23:20).
    pub const fn iocqes(cc: u32) -> u8 {
        ((cc >> 20) & 0xf) as u8
    }
    /// The value a standard initialisation writes before enabling: IOCQES 4, IOSQES 6, MPS 4 KiB,
    /// NVM command set, round robin.
    pub const DEFAULT: u32 = 0x0046_0000;
}

/// CSTS: Controller Status fields.
pub mod csts {
    /// Ready (bit 0).
    pub const RDY: u32 = 1;
    /// Controller Fatal Status (bit 1).
    pub const CFS: u32 = 1 << 1;
    /// Shutdown Status (bits 3:2): 0 normal operation, 1 occurring, 2 complete.
    pub const fn shst(csts: u32) -> u8 {
        ((csts >> 2) & 3) as u8
    }
    /// Shutdown status: complete.
    pub const SHST_COMPLETE: u32 = 2 << 2;
    /// Shutdown status: occurring.
    pub const SHST_OCCURRING: u32 = 1 << 2;
    /// NVM Subsystem Reset Occurred (bit 4).
    pub const NSSRO: u32 = 1 << 4;
    /// Processing Paused (bit 5).
    pub const PP: u32 = 1 << 5;
}

/// AQA: admin queue sizes, 0-based.
pub mod aqa {
    /// Admin Submission Queue Size (bits 11:0).
    pub const fn asqs(aqa: u32) -> u16 {
        (aqa & 0xfff) as u16
    }
    /// Admin Completion Queue Size (bits 27:16).
    pub const fn acqs(aqa: u32) -> u16 {
        ((aqa >> 16) & 0xfff) as u16
    }
    /// Builds AQA from 0-based sizes.
    pub const fn build(asqs: u16, acqs: u16) -> u32 {
        (asqs as u32 & 0xfff) | ((acqs as u32 & 0xfff) << 16)
    }
}

/// Builds a VS value: major, minor, tertiary.
pub const fn version(major: u16, minor: u8, ter: u8) -> u32 {
    (major as u32) << 16 | (minor as u32) << 8 | ter as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_fields_round_trip() {
        let c = Cap::build(1023, true, 1, 20, 2, true, 1, 0, 4, true);
        assert_eq!(c.mqes(), 1023);
        assert!(c.cqr());
        assert_eq!(c.ams(), 1);
        assert_eq!(c.to(), 20);
        assert_eq!(c.dstrd(), 2);
        assert!(c.nssrs());
        assert_eq!(c.css(), 1);
        assert_eq!(c.mpsmax(), 4);
        assert!(c.cmbs());
        // QEMU's CAP from the lab notes.
        let q = Cap(0x0040_0820_0f01_07ff);
        assert_eq!(q.mqes(), 2047);
        assert_eq!(q.to(), 15);
        assert_eq!(q.dstrd(), 0);
    }

    #[test]
    fn doorbells() {
        assert_eq!(sq_tail_doorbell(0, 0), 0x1000);
        assert_eq!(cq_head_doorbell(0, 0), 0x1004);
        assert_eq!(sq_tail_doorbell(1, 0), 0x1008);
        assert_eq!(cq_head_doorbell(1, 1), 0x1018);
        assert_eq!(cc::iosqes(cc::DEFAULT), 6);
        assert_eq!(cc::iocqes(cc::DEFAULT), 4);
    }
}
