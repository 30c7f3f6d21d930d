//! The NVMe host driver of pynvme-rs.
//!
//! It drives one controller through [`nvme_pci::PciFunction`], whatever the backend: the
//! simulated SSD, or a real device through vfio/uio. Layers, bottom up:
//!
//! - [`queue::QueuePair`]: one SQ/CQ pair in host memory, with preallocated trackers (CID = tracker
//!   index), PRP lists and SGLs built in per-tracker pages, lazy doorbells, phase-first CQ reads,
//!   per-command timeouts and a command log. Generic over what the submitter attaches to a command.
//! - [`controller::Controller`]: registers, the spec's initialisation in replaceable steps, the admin
//!   queue, AERs re-armed on completion.
//! - [`lifecycle`]: the controller's state and epoch, and the operations that change them
//!   (controller reset, FLR, hot reset, NVM subsystem reset, power off/on/cycle, surprise
//!   removal), with what a thread with IO in flight sees.
//! - [`qpair::Qpair`] and [`namespace::Namespace`]: IO queue pairs and the NVM commands.
//! - [`buffer::Buffer`]: DMA memory with patterns, offset and size, as scripts use it.
//! - [`commands`]: the SQE of every command, with argument checks.
//! - [`metamode`]: IO queues, SQEs, PRP lists and SGLs the script builds and rings itself.
//! - [`ioworker`]: the IO generator, a native thread and a queue pair per worker.
//!
//! A failing device status is a completion like any other; the layer above turns it into a warning.
//! A misbehaving device (unknown CID, duplicate completion, wrong SQ id, no completion) never makes
//! the driver hang or trust it: see [`queue`].
#![forbid(unsafe_code)]

pub mod buffer;
pub mod cmdlog;
pub mod commands;
pub mod controller;
pub mod error;
pub mod ioworker;
pub mod lifecycle;
pub mod link;
pub mod metamode;
pub mod namespace;
pub mod qpair;
pub mod queue;
pub mod verify;

pub use buffer::Buffer;
pub use controller::{
    completion_warnings, status_warning, with_interrupt_check, Controller, Warnings,
};
pub use error::{DriverError, Result};
pub use lifecycle::{Event, LifecycleGuard, PowerSwitch, State};
pub use namespace::Namespace;
pub use qpair::{Qpair, QpairConfig};
pub use queue::{Completion, DataRef};
pub use verify::{Miscompare, MiscompareKind, NsVerify};

/// The PCI layer as a binding uses it: opening a function (the simulated SSD, vfio or uio),
/// DMA memory for buffers, and its errors. A binding depends on the driver only.
pub mod pci {
    pub use nvme_pci::{dma_alloc, open, DmaMemory, PciError, PciFunction};
}

/// The simulated SSD's fault injection (its function is opened with [`pci::open`]).
pub mod sim {
    pub use nvme_sim::{FaultAction, FaultId, FaultMatch, FaultRule, Faults};
}
