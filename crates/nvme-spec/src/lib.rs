//! Wire formats and constants of the NVMe 2.0 and PCIe specifications.
//!
//! Everything here is plain data: the 64-byte submission queue entry ([`Sqe`]), the 16-byte
//! completion queue entry ([`Cqe`]) with its [`Status`], opcodes, controller registers,
//! Identify data, log pages, feature identifiers, PRP entries, SGL descriptors and DSM ranges.
//! Structures that travel over the bus are `#[repr(C)]` and derive `zerocopy` traits, so they
//! can be read from and written to DMA memory as bytes; their sizes are checked at compile time.
//!
//! Field names follow the specification's abbreviations (`mdts`, `sqes`, `nsze`, `flbas` ...), so
//! a reader with the spec open finds every field by its name.
#![forbid(unsafe_code)]

pub mod cmd;
pub mod features;
pub mod identify;
pub mod log;
pub mod pci;
pub mod prp;
pub mod regs;
pub mod sgl;
pub mod status;

pub use cmd::{Cqe, Sqe};
pub use identify::{Field, FieldKind, IdentifyController, IdentifyNamespace, LbaFormat};
pub use log::SmartLog;
pub use sgl::SglDescriptor;
pub use status::Status;

/// Fails the build when a wire structure does not have the size the specification gives it.
#[macro_export]
macro_rules! assert_size {
    ($t:ty, $n:expr) => {
        const _: () = assert!(core::mem::size_of::<$t>() == $n);
    };
}
