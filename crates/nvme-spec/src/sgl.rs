//! Scatter gather lists (NVMe 2.0 base spec, section 4.1.2).
//!
//! An SGL is a chain of 16-byte descriptors. A command holds the first one in its data pointer
//! (dwords 6..9, the `prp1`/`prp2` fields of [`Sqe`]) when PSDT is non-zero. A data block
//! descriptor names one memory buffer; a segment descriptor points to a list of descriptors;
//! the last segment descriptor points to the final list, which holds no further segment.

use crate::cmd::Sqe;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// SGL descriptor types (bits 7:4 of the identifier byte).
pub mod desc_type {
    /// SGL Data Block: a buffer of `length` bytes at `address`.
    pub const DATA_BLOCK: u8 = 0x0;
    /// SGL Bit Bucket: `length` bytes of a read are discarded.
    pub const BIT_BUCKET: u8 = 0x1;
    /// SGL Segment: `address` holds a list of descriptors, `length` bytes long.
    pub const SEGMENT: u8 = 0x2;
    /// SGL Last Segment: like a segment, and the list it points to is the last.
    pub const LAST_SEGMENT: u8 = 0x3;
    /// Keyed SGL Data Block (fabrics).
    pub const KEYED_DATA_BLOCK: u8 = 0x4;
    /// Transport SGL Data Block (fabrics).
    pub const TRANSPORT_DATA_BLOCK: u8 = 0x5;
    /// Vendor specific.
    pub const VENDOR: u8 = 0xf;
}

/// SGL descriptor subtypes (bits 3:0 of the identifier byte).
pub mod subtype {
    /// The address field is a memory address.
    pub const ADDRESS: u8 = 0x0;
    /// The address field is an offset (fabrics in-capsule data).
    pub const OFFSET: u8 = 0x1;
}

/// One SGL descriptor: 16 bytes (NVMe 2.0 base spec, figure 117).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SglDescriptor {
    /// Address (or offset) of the buffer or of the next segment.
    pub address: u64,
    /// Length in bytes.
    pub length: u32,
    /// Reserved (type specific for keyed descriptors).
    pub rsvd: [u8; 3],
    /// SGL Identifier: descriptor type (bits 7:4) and subtype (bits 3:0).
    pub sgl_id: u8,
}
crate::assert_size!(SglDescriptor, 16);

impl SglDescriptor {
    /// A descriptor of any type and subtype.
    pub const fn new(desc_type: u8, subtype: u8, address: u64, length: u32) -> SglDescriptor {
        SglDescriptor {
            address,
            length,
            rsvd: [0; 3],
            sgl_id: (desc_type & 0xf) << 4 | (subtype & 0xf),
        }
    }
    /// A data block: `len` bytes at memory address `addr`.
    pub const fn data_block(addr: u64, len: u32) -> SglDescriptor {
        Self::new(desc_type::DATA_BLOCK, subtype::ADDRESS, addr, len)
    }
    /// A bit bucket of `len` bytes.
    pub const fn bit_bucket(len: u32) -> SglDescriptor {
        Self::new(desc_type::BIT_BUCKET, subtype::ADDRESS, 0, len)
    }
    /// A segment: a list of `len / 16` descriptors at `addr`.
    pub const fn segment(addr: u64, len: u32) -> SglDescriptor {
        Self::new(desc_type::SEGMENT, subtype::ADDRESS, addr, len)
    }
    /// The last segment: the final list of `len / 16` descriptors at `addr`.
    pub const fn last_segment(addr: u64, len: u32) -> SglDescriptor {
        Self::new(desc_type::LAST_SEGMENT, subtype::ADDRESS, addr, len)
    }
    /// Descriptor type (bits 7:4 of the identifier, see [`desc_type`]).
    pub const fn desc_type(&self) -> u8 {
        self.sgl_id >> 4
    }
    /// Descriptor subtype (bits 3:0 of the identifier, see [`subtype`]).
    pub const fn subtype(&self) -> u8 {
        self.sgl_id & 0xf
    }
    /// Whether the descriptor points to a further list (segment or last segment).
    pub const fn is_segment(&self) -> bool {
        matches!(
            self.desc_type(),
            desc_type::SEGMENT | desc_type::LAST_SEGMENT
        )
    }
    /// Number of descriptors in the list a segment points to (length / 16).
    pub const fn segment_entries(&self) -> usize {
        self.length as usize / 16
    }

    /// The descriptor as the two data pointer quadwords of a command: `(prp1, prp2)`.
    pub const fn to_dptr(&self) -> (u64, u64) {
        let hi = self.length as u64
            | (self.rsvd[0] as u64) << 32
            | (self.rsvd[1] as u64) << 40
            | (self.rsvd[2] as u64) << 48
            | (self.sgl_id as u64) << 56;
        (self.address, hi)
    }
    /// The descriptor held in a command's data pointer quadwords.
    pub const fn from_dptr(prp1: u64, prp2: u64) -> SglDescriptor {
        SglDescriptor {
            address: prp1,
            length: prp2 as u32,
            rsvd: [(prp2 >> 32) as u8, (prp2 >> 40) as u8, (prp2 >> 48) as u8],
            sgl_id: (prp2 >> 56) as u8,
        }
    }
    /// The descriptor in the data pointer of `sqe` (meaningful when PSDT is non-zero).
    pub const fn from_sqe(sqe: &Sqe) -> SglDescriptor {
        Self::from_dptr(sqe.prp1, sqe.prp2)
    }
    /// Puts the descriptor in the data pointer of `sqe` and sets PSDT to 1 (SGL, contiguous
    /// metadata buffer) unless an SGL PSDT is already set.
    pub fn write_to(&self, sqe: &mut Sqe) {
        (sqe.prp1, sqe.prp2) = self.to_dptr();
        if sqe.psdt() == 0 {
            sqe.set_psdt(1);
        }
    }
}

/// Bits of the SGLS field of Identify Controller.
pub mod sgls {
    /// SGL Support (bits 1:0): 0 not supported, 1 supported, 2 supported with dword alignment
    /// and granularity of data blocks.
    pub const fn support(sgls: u32) -> u8 {
        (sgls & 3) as u8
    }
    /// SGLs are supported for the NVM command set.
    pub const fn supported(sgls: u32) -> bool {
        matches!(support(sgls), 1 | 2)
    }
    /// SGL support value: supported, no alignment requirement.
    pub const SUPPORTED: u32 = 1;
    /// SGL support value: supported with dword alignment and granularity.
    pub const SUPPORTED_DWORD_ALIGNED: u32 = 2;
    /// Keyed SGL Data Block descriptor supported (bit 2).
    pub const KEYED_DATA_BLOCK: u32 = 1 << 2;
    /// SGL Descriptor Threshold (bits 15:8).
    pub const fn sdt(sgls: u32) -> u8 {
        (sgls >> 8) as u8
    }
    /// SGL Bit Bucket descriptor supported (bit 16).
    pub const BIT_BUCKET: u32 = 1 << 16;
    /// Byte aligned contiguous physical buffer of metadata supported (bit 17).
    pub const BYTE_ALIGNED_METADATA: u32 = 1 << 17;
    /// SGL length larger than the data to transfer supported (bit 18).
    pub const OVERSIZED_LENGTH: u32 = 1 << 18;
    /// MPTR holding one SGL descriptor supported (bit 19).
    pub const MPTR_SGL: u32 = 1 << 19;
    /// Address field as an offset supported (bit 20).
    pub const ADDRESS_AS_OFFSET: u32 = 1 << 20;
    /// Transport SGL Data Block descriptor supported (bit 21).
    pub const TRANSPORT_DATA_BLOCK: u32 = 1 << 21;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::nvm;

    #[test]
    fn constructors_and_accessors() {
        let d = SglDescriptor::data_block(0x1000, 4096);
        assert_eq!(
            (d.desc_type(), d.subtype()),
            (desc_type::DATA_BLOCK, subtype::ADDRESS)
        );
        let s = SglDescriptor::segment(0x2000, 64);
        assert_eq!(s.sgl_id, 0x20);
        assert!(s.is_segment());
        assert_eq!(s.segment_entries(), 4);
        assert_eq!(SglDescriptor::last_segment(0, 16).sgl_id, 0x30);
        let b = SglDescriptor::bit_bucket(512);
        assert_eq!(
            (b.desc_type(), b.length, b.address),
            (desc_type::BIT_BUCKET, 512, 0)
        );
        assert_eq!(
            SglDescriptor::new(desc_type::VENDOR, subtype::OFFSET, 0, 0).sgl_id,
            0xf1
        );
    }

    #[test]
    fn data_pointer_round_trip() {
        let d = SglDescriptor {
            address: 0xdead_beef_0000,
            length: 0x1234,
            rsvd: [1, 2, 3],
            sgl_id: 0x30,
        };
        let (p1, p2) = d.to_dptr();
        assert_eq!(p1, 0xdead_beef_0000);
        assert_eq!(p2, 0x3003_0201_0000_1234);
        // The quadwords are the descriptor's own bytes, as the controller reads them.
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&p1.to_le_bytes());
        bytes[8..].copy_from_slice(&p2.to_le_bytes());
        assert_eq!(&bytes, d.as_bytes());
        assert_eq!(SglDescriptor::from_dptr(p1, p2), d);
        let mut sqe = Sqe::new(nvm::READ, 1);
        d.write_to(&mut sqe);
        assert_eq!(sqe.psdt(), 1);
        assert_eq!(SglDescriptor::from_sqe(&sqe), d);
    }

    #[test]
    fn sgls_bits() {
        let v = sgls::SUPPORTED | sgls::BIT_BUCKET | 0x0100;
        assert!(sgls::supported(v));
        assert_eq!(sgls::sdt(v), 1);
        assert!(!sgls::supported(0));
        assert!(!sgls::supported(3));
    }
}
