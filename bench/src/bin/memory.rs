//! What verification and the simulated SSD's store cost in memory, counted two ways: the
//! structures' own byte counts (`NsVerify::memory`, `SimDevice::media_memory`) and the heap
//! bytes the allocator handed out meanwhile (this binary's global allocator counts them).
//!
//! A 32 TiB namespace of 512-byte LBAs on `sim://?capacity=32T`, written through the driver
//! (`Namespace::write`: stamped, verification on) with 1 GiB of 4 KiB writes (262,144 IOs) at
//! random 4 KiB-aligned places, or sequentially; then every written block read back (verified).
//! Then the digest table alone, per `crc_size`, for 1 GiB written densely, stamped and not.
//!
//! `--ios N` changes the number of 4 KiB writes (default 262,144).

use nvme_driver::verify::{NsVerify, CRC_SIZES};
use nvme_driver::{Controller, Namespace, Qpair, QpairConfig};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static ALLOC: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes live.
fn live() -> usize {
    let s = ALLOC.stats();
    s.bytes_allocated - s.bytes_deallocated
}

fn mib(b: usize) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

/// Writes `ios` 4 KiB blocks through the driver, at random or in sequence, then reads them all
/// back; prints the host state and the store, each counted and measured.
fn through_the_driver(ios: usize, random: bool) {
    let pci = nvme_pci::open("sim://?capacity=32T").expect("simulator opens");
    let ctrl = Controller::<()>::new(pci).expect("controller");
    ctrl.init_default(()).expect("init");
    let sim = || ctrl.pci().simulator().expect("simulated SSD");
    let ns = Namespace::new(&ctrl, 1, 0).expect("namespace 1");
    ns.verifier().set_enabled(true);
    let qd = 32usize;
    let qp = Qpair::new(
        &ctrl,
        QpairConfig {
            depth: qd as u16 + 1,
            ..Default::default()
        },
    )
    .expect("qpair");
    let bufs = nvme_bench::random_buffers(qd);
    let blocks = ns.nsze() / 8;
    let mut rng = fastrand::Rng::with_seed(7);
    let lbas: Vec<u64> = if random {
        let mut seen = std::collections::HashSet::with_capacity(ios);
        while seen.len() < ios {
            seen.insert(rng.u64(0..blocks) * 8);
        }
        seen.into_iter().collect()
    } else {
        (0..ios as u64).map(|i| i * 8).collect()
    };
    let (host0, store0, live0) = (ns.verifier().memory(), sim().media_memory(), live());
    let mut errors = 0usize;
    for chunk in lbas.chunks(qd) {
        for (b, &lba) in bufs.iter().zip(chunk) {
            ns.write(&qp, b, lba, 8, 0, 0, 0, 0, ()).expect("write");
        }
        qp.waitdone(chunk.len(), &mut |c| {
            errors += !c.cqe.status().is_success() as usize;
            Ok(())
        })
        .expect("waitdone");
    }
    let host = ns.verifier().memory() - host0;
    let store = sim().media_memory() - store0;
    let measured = live() - live0;
    for chunk in lbas.chunks(qd) {
        for (b, &lba) in bufs.iter().zip(chunk) {
            ns.read(&qp, b, lba, 8, 0, 0, 0, 0, ()).expect("read");
        }
        qp.waitdone(chunk.len(), &mut |c| {
            errors += !c.cqe.status().is_success() as usize;
            Ok(())
        })
        .expect("waitdone");
        qp.take_findings();
    }
    assert_eq!(errors, 0, "an IO failed or a read miscompared");
    let after_reads = ns.verifier().memory() - host0;
    let data = ios * 4096;
    let pattern = if random { "random" } else { "sequential" };
    println!(
        "| {pattern} 4 KiB writes, {ios} IOs ({}), verification on | {} (of which stamp tags {}, writes a power loss may undo {}) | {} ({:.3}x the data) | {} | {} |",
        mib(data),
        mib(host),
        mib(ns.verifier().tag_memory()),
        mib(ns.verifier().volatile_memory()),
        mib(store),
        store as f64 / data as f64,
        mib(measured),
        if after_reads == host { "no growth".to_string() } else { format!("now {}", mib(after_reads)) },
    );
    if random && ios == 262_144 {
        println!(
            "| goals for 1 GiB of random 4 KiB writes on 32 TiB | host state ≤ 64 MiB: {} | store ≤ 1.25 GiB: {} | | |",
            verdict(host <= 64 << 20),
            verdict(store as f64 <= 1.25 * (1u64 << 30) as f64),
        );
    }
}

fn main() {
    let mut ios = 262_144usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--ios", Some(n)) if n > 0 => ios = n,
            _ => {
                eprintln!("options: --ios N (default 262144)");
                std::process::exit(2)
            }
        }
    }
    println!("Memory: sim://?capacity=32T (one namespace, 512-byte LBAs), through the driver.");
    println!("Counted: the structures' own byte counts; measured: heap bytes the allocator handed out during the writes (host state, store and anything else kept).");
    println!();
    println!("| workload | host verification state (counted) | simulator store (counted) | heap measured | reading it all back |");
    println!("| --- | ---: | ---: | ---: | --- |");
    through_the_driver(ios, true);
    through_the_driver(ios, false);
    println!();

    // The table alone, per width: 1 GiB of 512-byte LBAs written densely (256 LBAs a write).
    println!(
        "Digest table alone, 1 GiB (2 Mi LBAs of 512 bytes) written densely, 32 TiB namespace:"
    );
    println!();
    println!("| crc_size | writes | bytes per LBA (digests, counted) | stamp tags per LBA | measured = counted | goal ≤ crc_size + 1 % |");
    println!("| ---: | --- | ---: | ---: | --- | --- |");
    let lbas = 1u64 << 21;
    let mut data = vec![0u8; 256 * 512];
    fastrand::Rng::with_seed(3).fill(&mut data);
    for w in CRC_SIZES {
        for stamped in [false, true] {
            let before = live();
            let v =
                Box::new(NsVerify::with_crc_size(1, (32u64 << 40) / 512, 512, w).expect("width"));
            let empty = v.memory();
            for slba in (0..lbas).step_by(256) {
                let token = if stamped {
                    v.stamp_write(&mut data, slba)
                } else {
                    0
                };
                v.record_written(&v.written(&data, slba, 256, token));
            }
            let m = v.memory();
            let tags = v.tag_memory();
            let per = (m - empty - tags) as f64 / lbas as f64;
            println!(
                "| {w} | {} | {per:.4} | {:.2} | {} | {} |",
                if stamped { "stamped" } else { "raw" },
                tags as f64 / lbas as f64,
                if live() - before == m {
                    "yes"
                } else {
                    "**no**"
                },
                verdict(per <= w as f64 * 1.01),
            );
        }
    }
}
