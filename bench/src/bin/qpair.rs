//! 4 KiB reads in null-media mode through the driver's public API, as an IO generator sends
//! them: commands built by `Namespace::rw_command`, submitted a batch at a time under one lock
//! with `Qpair::submit_batch` (LBA locks and the verification table in the path, a `DataRef`
//! clone, PRPs, the command log, a host timeout) and reaped with `Qpair::waitdone`, with the
//! qpair's default settings except a lazy doorbell (rung by `waitdone`, so one ring per batch).
//!
//! The loop keeps `qd` reads outstanding and reaps in batches of a quarter of the depth.

use nvme_bench::{measure, pin_threads, row, Options, TABLE_HEADER};
use nvme_driver::{Buffer, Controller, Namespace, Qpair, QpairConfig};

fn main() {
    let o = Options::from_args(&["null"]);
    println!("{TABLE_HEADER}");
    let uri = "sim://?null=1";
    let pci = nvme_pci::open(uri).expect("simulator opens");
    let ctrl = Controller::<()>::new(pci).expect("controller");
    ctrl.init_default(()).expect("init");
    let ns = Namespace::new(&ctrl, 1, 0).expect("namespace 1");
    let ss = ns.sector_size();
    let nlb = (4096 / ss) as u32;
    let buf = Buffer::new(nvme_pci::dma_alloc(4096).expect("dma"), 4096, "b", 0, 0).expect("buf");
    let placement = if o.pin {
        pin_threads()
    } else {
        "not pinned".into()
    };
    eprintln!("qpair: {uri}, {ss}-byte LBAs, {placement}");
    let span = 1u64 << 20;
    for &qd in &o.qds {
        let qp = Qpair::new(
            &ctrl,
            QpairConfig {
                depth: (qd + 1).max(256),
                lazy_doorbell: true,
                ..Default::default()
            },
        )
        .expect("qpair");
        let batch = o.batch(qd);
        let mut next = 0u64;
        let mut errors = 0u64;
        // One lock per batch, as an IO generator submits (Qpair::submit_batch).
        let read = |n: usize, next: &mut u64| {
            let cmds = (0..n).map(|_| {
                let lba = *next % span * nlb as u64;
                *next += 1;
                let (sqe, d) = ns
                    .rw_command(nvme_spec::cmd::nvm::READ, &buf, lba, nlb, 0, 0, 0, 0)
                    .expect("read");
                (sqe, Some(d), ())
            });
            qp.submit_batch(cmds, false).expect("submit");
        };
        read(qd as usize, &mut next);
        let s = measure(&o, || {
            qp.waitdone(batch, &mut |c| {
                errors += u64::from(!c.cqe.status().is_success());
                Ok(())
            })
            .expect("waitdone");
            read(batch, &mut next);
            batch as u64
        });
        assert_eq!(errors, 0, "reads completed with an error status");
        row(
            "Rust Qpair/Namespace",
            &format!("null media, 4 KiB read, QD {qd}"),
            &s,
            Some(3e6),
        );
        qp.waitdone(qp.outstanding(), &mut |_| Ok(()))
            .expect("drain");
        qp.delete().expect("delete");
    }
}
