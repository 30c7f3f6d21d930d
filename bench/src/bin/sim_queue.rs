//! The simulated SSD's queue protocol with a polling host: commands per second at several queue
//! depths, through the driver's `QueuePair` (the layer below `Qpair`) with a `()` context.
//!
//! The host posts commands until `qd` are outstanding, then `poll` rings the SQ doorbell once for
//! the whole batch, reaps every completion waiting (one CQ head doorbell write), and the loop
//! tops the queue up again. Each command is a 4 KiB read whose PRP1 is set by the benchmark
//! (`raw_dptr`), so no `DataRef` is cloned per command, and no host timeout is armed: what is
//! measured is the SQ/CQ protocol between the two threads plus the device's command decoding.
//!
//! - `null`: `sim://?null=1`, the device completes reads without touching media or host data.
//! - `real`: `sim://`, 4 KiB reads from the sparse store, after writing the whole range read.

use nvme_bench::{measure, pin_threads, row, unpin_threads, Options, TABLE_HEADER};
use nvme_driver::commands;
use nvme_driver::queue::{Completion, QueuePair, QueueParams, Timeouts};
use nvme_driver::{Controller, Namespace};
use nvme_pci::{DmaMemory, PciFunction};
use nvme_spec::cmd::nvm;
use std::sync::Arc;

/// Blocks of 4 KiB read round-robin in the real-media runs (64 MiB, written first).
const RANGE_4K: u64 = 16384;

struct Bench {
    q: QueuePair<()>,
    buf: DmaMemory,
    nlb: u32,
    next: u64,
    errors: u64,
}

impl Bench {
    fn sqe(&mut self, opc: u8) -> nvme_spec::Sqe {
        let lba = self.next % RANGE_4K * self.nlb as u64;
        self.next += 1;
        let mut s = commands::rw(opc, 1, lba, self.nlb, 0, 0, 0, 0).expect("valid read");
        s.prp1 = self.buf.iova();
        s
    }

    /// Once `batch` commands have completed, tops the queue up to `qd` outstanding commands;
    /// then reaps what has completed (the poll rings the SQ doorbell once for the batch).
    fn step(&mut self, opc: u8, qd: usize, batch: usize) -> u64 {
        if self.q.outstanding() + batch <= qd {
            while self.q.outstanding() < qd {
                let s = self.sqe(opc);
                self.q.submit(s, None, true, (), false).expect("slot free");
            }
        }
        let mut n = 0u64;
        let mut errors = 0u64;
        self.q.poll(qd, &mut |c: Completion<()>| {
            n += 1;
            errors += u64::from(!c.cqe.status().is_success());
        });
        self.errors += errors;
        n
    }
}

fn queue_pair(ctrl: &Arc<Controller<()>>, pci: &Arc<dyn PciFunction>, depth: u16) -> QueuePair<()> {
    let qid = 1;
    let params = QueueParams {
        qid,
        entries: depth,
        dstrd: ctrl.cap().dstrd(),
        page_size: 4096,
        lazy_doorbell: true,
    };
    let q = QueuePair::new(pci.clone(), params, Arc::new(Timeouts::default())).expect("queue");
    let mut cq = commands::create_io_cq(qid, depth, true, false, 0);
    cq.prp1 = q.cq_addr();
    let st = ctrl.admin_sync(cq, None).expect("create CQ").status();
    assert!(st.is_success(), "create I/O CQ: {st}");
    let mut sq = commands::create_io_sq(qid, depth, qid, true, 0, 0);
    sq.prp1 = q.sq_addr();
    let st = ctrl.admin_sync(sq, None).expect("create SQ").status();
    assert!(st.is_success(), "create I/O SQ: {st}");
    q
}

fn delete_queue_pair(ctrl: &Arc<Controller<()>>, qid: u16) {
    for sq in [true, false] {
        let st = ctrl
            .admin_sync(commands::delete_io_queue(sq, qid), None)
            .expect("delete queue")
            .status();
        assert!(st.is_success(), "delete queue: {st}");
    }
}

fn main() {
    let o = Options::from_args(&["null", "real"]);
    println!("{TABLE_HEADER}");
    for media in &o.media {
        let (uri, target) = match media.as_str() {
            "null" => ("sim://?null=1", 10e6),
            "real" => ("sim://", 2.5e6),
            m => panic!("unknown media {m:?}: null or real"),
        };
        let pci = nvme_pci::open(uri).expect("simulator opens");
        let ctrl = Controller::<()>::new(pci.clone()).expect("controller");
        ctrl.init_default(()).expect("init");
        let ss = Namespace::new(&ctrl, 1, 0)
            .expect("namespace 1")
            .sector_size();
        let nlb = (4096 / ss) as u32;
        let placement = if o.pin {
            pin_threads()
        } else {
            "not pinned".into()
        };
        eprintln!("sim_queue: {uri}, {ss}-byte LBAs, {placement}");
        for &qd in &o.qds {
            let depth = (qd + 1).max(256);
            let mut b = Bench {
                q: queue_pair(&ctrl, &pci, depth),
                buf: nvme_pci::dma_alloc(4096).expect("buffer"),
                nlb,
                next: 0,
                errors: 0,
            };
            let batch = o.batch(qd);
            let qd = qd as usize;
            if media == "real" {
                b.buf.fill(0, 4096, 0x5a);
                while b.next < RANGE_4K {
                    let n = qd.min((RANGE_4K - b.next) as usize).max(1);
                    b.step(nvm::WRITE, n, 1);
                }
                while b.q.outstanding() > 0 {
                    b.q.poll(usize::MAX, &mut |_| {});
                }
                b.next = 0;
            }
            let s = measure(&o, || b.step(nvm::READ, qd, batch));
            assert_eq!(b.errors, 0, "commands completed with an error status");
            row(
                "sim queue protocol",
                &format!("{media} media, 4 KiB read, QD {qd}"),
                &s,
                (qd >= 32).then_some(target),
            );
            while b.q.outstanding() > 0 {
                b.q.poll(usize::MAX, &mut |_| {});
            }
            delete_queue_pair(&ctrl, 1);
        }
        if o.pin {
            unpin_threads();
        }
    }
}
