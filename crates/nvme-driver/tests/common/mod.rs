//! What the driver's tests against the simulated SSD share: an initialised controller, queue
//! pairs and buffers.
#![allow(dead_code)]

use nvme_driver::{Buffer, Controller, Qpair, QpairConfig};
use std::sync::Arc;

/// The context the tests attach to commands: a number to recognise them by.
pub type Ctx = Option<u32>;

/// A controller on a simulated SSD made from `uri`, initialised the spec's way.
pub fn controller(uri: &str) -> Arc<Controller<Ctx>> {
    let pci = nvme_pci::open(uri).expect("simulator opens");
    let ctrl = Controller::<Ctx>::new(pci).expect("controller");
    ctrl.init_default(None).expect("init");
    ctrl
}

/// An IO queue pair of `depth` entries.
pub fn qpair(ctrl: &Arc<Controller<Ctx>>, depth: u16) -> Arc<Qpair<Ctx>> {
    Qpair::new(
        ctrl,
        QpairConfig {
            depth,
            ..Default::default()
        },
    )
    .expect("qpair")
}

/// A buffer of `len` bytes with pattern (`ptype`, `pvalue`).
pub fn pattern_buffer(len: usize, ptype: u32, pvalue: u64) -> Buffer {
    Buffer::new(
        nvme_pci::dma_alloc(len).expect("dma memory"),
        len,
        "b",
        pvalue,
        ptype,
    )
    .expect("buffer")
}

/// A zeroed buffer of `len` bytes.
pub fn buffer(len: usize) -> Buffer {
    pattern_buffer(len, 0, 0)
}

/// A buffer of `len` random bytes.
pub fn random_buffer(len: usize) -> Buffer {
    pattern_buffer(len, 0xbeef, 100)
}
