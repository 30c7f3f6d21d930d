//! The cost of data verification: 4 KiB writes and reads with real data from the simulated SSD's
//! sparse store, through `Qpair::submit_batch`, once on a controller with no `Namespace` object
//! (so no verification state: no stamps, no LBA locks, no digests) and once with the namespace's
//! verification on (stamps on writes, locks on every IO, digests recorded and checked). The
//! ratio of the two rates is the figure of merit (goal: at least 0.75).
//!
//! Then the memory of the digest table of a 32 TiB namespace of 512-byte LBAs with 1 GiB written.

use nvme_bench::{measure, pin_threads, row, Options, Stats, TABLE_HEADER};
use nvme_driver::{commands, Controller, DataRef, Namespace, NsVerify, Qpair, QpairConfig};
use nvme_spec::cmd::nvm;

/// Writes (opc 01h) or reads (02h) of one 4 KiB block each, `qd` outstanding, over `span` blocks.
fn run(o: &Options, verified: bool, opc: u8, qd: u16) -> Stats {
    let pci = nvme_pci::open("sim://").expect("simulator opens");
    let ctrl = Controller::<()>::new(pci).expect("controller");
    ctrl.init_default(()).expect("init");
    // Pinned once this run's device thread exists (a new thread inherits its creator's CPU).
    if o.pin {
        pin_threads();
    }
    let ns = verified.then(|| Namespace::new(&ctrl, 1, 0).expect("namespace 1"));
    if let Some(ns) = &ns {
        ns.verifier().set_enabled(true);
    }
    let qp = Qpair::new(
        &ctrl,
        QpairConfig {
            depth: qd + 1,
            lazy_doorbell: true,
            ..Default::default()
        },
    )
    .expect("qpair");
    // A buffer per command in flight: a buffer reused while a command still uses it would make
    // the stamps and the read checks race, as in any script.
    let bufs = nvme_bench::random_buffers(2 * qd as usize + 8);
    let nlb = 8u32; // 4 KiB of 512-byte LBAs
    let span = 16_384u64; // 64 MiB
    let mut next = 0u64;
    // Every block of the span written once, so reads return real data.
    let fill = |n: u64, next: &mut u64, op: u8| {
        let cmds = (0..n).map(|_| {
            let lba = (*next % span) * nlb as u64;
            let b = &bufs[(*next % bufs.len() as u64) as usize];
            *next += 1;
            let sqe = commands::rw(op, 1, lba, nlb, 0, 0, 0, 0).expect("command");
            (
                sqe,
                Some(DataRef {
                    mem: b.memory().clone(),
                    offset: 0,
                    len: 4096,
                    sgl: false,
                }),
                (),
            )
        });
        qp.submit_batch(cmds, true).expect("submit")
    };
    for _ in 0..span / qd as u64 {
        fill(qd as u64, &mut next, nvm::WRITE);
        qp.waitdone(qd as usize, &mut |_| Ok(())).expect("write");
    }
    let batch = o.batch(qd);
    let mut errors = 0u64;
    fill(qd as u64, &mut next, opc);
    let s = measure(o, || {
        qp.waitdone(batch, &mut |c| {
            errors += u64::from(!c.cqe.status().is_success());
            Ok(())
        })
        .expect("waitdone");
        fill(batch as u64, &mut next, opc);
        batch as u64
    });
    qp.waitdone(qp.outstanding(), &mut |_| Ok(()))
        .expect("drain");
    assert_eq!(
        errors, 0,
        "an IO failed (a false miscompare would show here)"
    );
    qp.delete().expect("delete");
    s
}

fn main() {
    let o = Options::from_args(&["real"]);
    println!("{TABLE_HEADER}");
    let placement = if o.pin {
        pin_threads()
    } else {
        "not pinned".into()
    };
    eprintln!("verify: sim://, 512-byte LBAs, 4 KiB IOs, {placement}");
    for &qd in &o.qds {
        for (name, opc) in [("write", nvm::WRITE), ("read", nvm::READ)] {
            let plain = run(&o, false, opc, qd);
            let checked = run(&o, true, opc, qd);
            row(
                "verification off",
                &format!("4 KiB {name}, QD {qd}"),
                &plain,
                None,
            );
            row(
                "verification on",
                &format!("4 KiB {name}, QD {qd}"),
                &checked,
                Some(plain.median() * 0.75),
            );
            println!(
                "| verification cost | 4 KiB {name}, QD {qd}: on / off | {:.2} | | | | | ≥ 0.75 {} |",
                checked.median() / plain.median(),
                if checked.median() / plain.median() >= 0.75 { "met" } else { "**missed**" }
            );
        }
    }
    // Memory of the table: 32 TiB of 512-byte LBAs, 1 GiB written (every 7th LBA: spread out).
    let v = NsVerify::new(1, (32u64 << 40) / 512, 512);
    let empty = v.memory();
    let lbas = (1u64 << 30) / 512;
    let data = vec![0x5au8; 512];
    for i in 0..lbas {
        v.record(&data, i * 7);
    }
    println!(
        "| verification table | 32 TiB namespace, 512-byte LBAs: empty / 1 GiB written (spread) | {:.1} MiB / {:.1} MiB | | | | | < 64 MiB {} |",
        empty as f64 / (1 << 20) as f64,
        v.memory() as f64 / (1 << 20) as f64,
        if v.memory() < 64 << 20 { "met" } else { "**missed**" }
    );
}
