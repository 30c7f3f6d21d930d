//! The memory of the verification state, counted by the allocator itself: what
//! `NsVerify::memory` reports is what was allocated, and it follows the LBAs written (random
//! writes over a huge namespace, dense writes at `crc_size` bytes per LBA); and the simulated
//! SSD's store counts what it allocated.
//!
//! A binary without the test harness, so no other thread allocates while it counts.

use nvme_driver::verify::{next_tokens, LbaRange, NsVerify, CRC_SIZES};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static ALLOC: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes live on the heap (allocated less freed; stats_alloc counts a reallocation's growth as
/// allocated and its shrinking as freed).
fn live() -> usize {
    let s = ALLOC.stats();
    s.bytes_allocated - s.bytes_deallocated
}

/// Creates a namespace's state in a Box, so all of it is on the heap and counted.
fn counted(nlba: u64, sector: usize, crc_size: usize) -> (Box<NsVerify>, usize) {
    let before = live();
    let v = Box::new(NsVerify::with_crc_size(1, nlba, sector, crc_size).unwrap());
    (v, before)
}

/// Writes `n` LBAs at `slba` through the table as a completed write would: stamped (with a tag)
/// or not. Blocks of 16 bytes keep the digests cheap; the table does not depend on the size.
fn write(v: &NsVerify, slba: u64, n: u64, stamped: bool) {
    let mut data = vec![0x5au8; 16 * n as usize];
    data[0] = slba as u8;
    let token = if stamped {
        v.stamp_write(&mut data, slba)
    } else {
        0
    };
    v.record_written(&v.written(&data, slba, n, token));
}

/// Runs without the test harness (`harness = false`): no other thread of the harness allocates
/// while the heap is counted.
fn main() {
    // Also warms this thread's list of reusable digest lists, which the counts below leave out.
    a_long_write_allocates_nothing_once_the_thread_has_its_digest_lists();
    the_state_counts_what_was_allocated_and_follows_the_lbas_written();
    println!("verify_memory: ok");
}

/// The digests of a write longer than the inline 8 blocks go in a list a thread reuses: an IO
/// generator (which submits and reaps on its own thread) allocates none per IO once it has one
/// list per command in flight.
fn a_long_write_allocates_nothing_once_the_thread_has_its_digest_lists() {
    let v = NsVerify::with_crc_size(1, 1 << 20, 16, 1).unwrap();
    let data = vec![0x5au8; 16 * 256];
    // Four in flight at a time, as four queue slots.
    let mut in_flight: Vec<_> = (0..4).map(|i| v.written(&data, i * 256, 256, 0)).collect();
    in_flight.clear();
    let allocations = ALLOC.stats().allocations + ALLOC.stats().reallocations;
    for round in 0..1000u64 {
        in_flight.extend((0..4).map(|i| v.written(&data, (round % 64) * 1024 + i * 256, 256, 0)));
        for w in in_flight.drain(..) {
            assert_eq!(w.digests().len(), 256);
            v.record_written(&w);
        }
    }
    let after = ALLOC.stats().allocations + ALLOC.stats().reallocations;
    // Recording may grow the table on its first writes; nothing per write after that.
    assert!(
        after - allocations < 64,
        "4000 writes of 256 blocks made {} allocations",
        after - allocations
    );
}

fn the_state_counts_what_was_allocated_and_follows_the_lbas_written() {
    // 32 TiB of 512-byte LBAs: 1 GiB of random 4 KiB writes (262,144 of them), stamped.
    let nlba = (32u64 << 40) / 512;
    let (v, before) = counted(nlba, 16, 1);
    assert_eq!(live() - before, v.memory(), "empty");
    assert!(v.memory() < 160 << 10, "empty: {}", v.memory());
    let mut rng = fastrand::Rng::with_seed(1);
    for _ in 0..262_144 {
        write(&v, rng.u64(0..nlba / 8) * 8, 8, true);
    }
    let m = v.memory();
    assert_eq!(live() - before, m, "random writes: counted = allocated");
    assert!(m <= 64 << 20, "1 GiB of random 4 KiB writes: {m} bytes");
    // The list of unflushed writes follows the writes still volatile: a flush gives it back.
    let volatile = v.volatile_memory();
    for i in 0..100_000 {
        v.note_volatile(LbaRange {
            slba: i * 8,
            nlb: 8,
        });
    }
    assert!(v.volatile_memory() >= 100_000 * 32);
    v.flushed_before(std::time::Instant::now());
    assert!(v.volatile_memory() <= volatile.max(1024 * 32));
    assert_eq!(live() - before, v.memory(), "after a flush");
    // Forgetting gives the memory back.
    v.clear();
    assert_eq!(live() - before, v.memory());
    assert!(
        v.memory() - v.volatile_memory() < 160 << 10,
        "cleared: {}",
        v.memory()
    );
    drop(v);

    // Dense writes: at most crc_size bytes per LBA plus 1 %, the stamp tags (2 bytes per LBA)
    // counted apart.
    for w in CRC_SIZES {
        for stamped in [false, true] {
            let (v, before) = counted(nlba, 16, w);
            let empty = v.memory();
            let lbas = 1u64 << 21; // 1 GiB of 512-byte LBAs
            for slba in (0..lbas).step_by(256) {
                write(&v, (1 << 30) + slba, 256, stamped);
            }
            let m = v.memory();
            assert_eq!(live() - before, m, "dense, width {w}, stamped {stamped}");
            let tags = v.tag_memory();
            assert_eq!(tags, if stamped { 2 * lbas as usize } else { 0 });
            let per_lba = (m - empty - tags) as f64 / lbas as f64;
            assert!(
                per_lba <= w as f64 * 1.01,
                "width {w}, stamped {stamped}: {per_lba} bytes per LBA"
            );
            // Deallocated: whole chunks give their memory back (an empty entry each stays).
            v.fill(
                LbaRange {
                    slba: 1 << 30,
                    nlb: lbas,
                },
                nvme_driver::verify::UNKNOWN,
            );
            assert_eq!(v.get((1 << 30) + 5), nvme_driver::verify::UNKNOWN);
            assert_eq!(live() - before, v.memory());
            assert!(v.memory() - empty < 16 << 10, "{}", v.memory() - empty);
        }
    }
    let _ = next_tokens(0);
    store_counts_what_was_allocated();
}

/// The simulated SSD's store, counted by `SimDevice::media_memory`, against the allocator:
/// random 4 KiB writes through a queue pair (no `Namespace`, so no verification state grows).
fn store_counts_what_was_allocated() {
    use nvme_driver::{commands, Controller, DataRef, Qpair, QpairConfig};
    let pci = nvme_pci::open("sim://?capacity=32T").unwrap();
    let ctrl = Controller::<()>::new(pci).unwrap();
    ctrl.init_default(()).unwrap();
    let qp = Qpair::new(&ctrl, QpairConfig::default()).unwrap();
    let mem = nvme_pci::dma_alloc(4096).unwrap();
    let sim = || ctrl.pci().simulator().unwrap();
    let mut rng = fastrand::Rng::with_seed(9);
    let write = |lba: u64| {
        let sqe = commands::rw(nvme_spec::cmd::nvm::WRITE, 1, lba, 8, 0, 0, 0, 0).unwrap();
        let d = DataRef {
            mem: mem.clone(),
            offset: 0,
            len: 4096,
            sgl: false,
        };
        qp.submit(sqe, Some(d), false, (), false).unwrap();
        qp.waitdone(1, &mut |c| {
            assert!(c.cqe.status().is_success());
            Ok(())
        })
        .unwrap();
    };
    // Warm up whatever the queue pair and the command log allocate once.
    for _ in 0..64 {
        write(rng.u64(0..1 << 20) * 8);
    }
    let (store0, live0) = (sim().media_memory(), live());
    let n = 4000u64;
    for _ in 0..n {
        write(rng.u64(0..1 << 33) * 8);
    }
    let counted = sim().media_memory() - store0;
    let measured = live() - live0;
    assert!(
        measured.abs_diff(counted) <= counted / 50,
        "store: counted {counted}, allocated {measured}"
    );
    assert!(
        counted as f64 <= 1.25 * (n * 4096) as f64,
        "random 4 KiB writes cost {counted} bytes for {} written",
        n * 4096
    );
}
