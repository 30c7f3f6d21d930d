//! Metamode against the simulated SSD: queues, SQEs, PRP lists and SGLs built by the caller,
//! doorbells written by hand, completions read phase first.

use nvme_driver::metamode::{
    io_command, rw_command, set_prp_entry, set_sgl_entry, Chunk, DataPointer, IoCq, IoSq,
    QueueMemory, SglKind, SqConfig,
};
use nvme_driver::{Completion, Controller, DriverError, Qpair, QpairConfig};
use nvme_pci::DmaMemory;
use nvme_spec::cmd::nvm;
use nvme_spec::status::sct;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Ctx = Option<u32>;
type Ctrl = Controller<Ctx>;

const T: Duration = Duration::from_secs(5);

fn open(uri: &str) -> Arc<Ctrl> {
    let pci = nvme_pci::open(uri).expect("simulator opens");
    let ctrl = Controller::<Ctx>::new(pci).expect("controller");
    ctrl.init_default(None).expect("init");
    ctrl
}

fn mem(len: usize) -> DmaMemory {
    nvme_pci::dma_alloc(len).unwrap()
}

fn piece(len: usize) -> QueueMemory {
    QueueMemory::contiguous(Chunk {
        mem: mem(len),
        offset: 0,
        len,
    })
}

fn no_events(_: Completion<Ctx>) -> nvme_driver::Result<()> {
    panic!("no asynchronous event expected")
}

fn pair(ctrl: &Arc<Ctrl>, qid: u16, qsize: u32) -> (Arc<IoCq<Ctx>>, Arc<IoSq<Ctx>>) {
    let (cq, cqe) =
        IoCq::create(ctrl, qid, qsize, piece(qsize as usize * 16), true, 0, false).unwrap();
    assert!(cqe.status().is_success(), "{}", cqe.status());
    let cfg = SqConfig {
        qid,
        qsize,
        cqid: qid,
        pc: true,
        qprio: 0,
        nvmsetid: 0,
    };
    let (sq, cqe) = IoSq::create(ctrl, cfg, piece(qsize as usize * 64), Some(cq.clone())).unwrap();
    assert!(cqe.status().is_success(), "{}", cqe.status());
    (cq, sq)
}

fn sc_of(c: nvme_spec::Cqe) -> (u8, u8) {
    (c.status().sct, c.status().sc)
}

fn prp(m: &DmaMemory) -> DataPointer {
    DataPointer::Prp {
        prp1: m.iova(),
        prp2: 0,
    }
}

#[test]
fn write_and_read_by_hand() {
    let ctrl = open("sim://");
    let (cq, sq) = pair(&ctrl, 1, 10);
    let w = mem(4096);
    w.fill(0, 512, 0x5a);
    let r = mem(4096);
    let wr = rw_command(true, 3, 1, 8, 1, prp(&w), 0).unwrap();
    sq.set_entry(0, &wr, vec![w.clone()]).unwrap();
    sq.set_tail(1, &mut no_events).unwrap();
    assert!(cq.wait_pbit(0, true, T).unwrap());
    let c = cq.entry(0).unwrap();
    assert_eq!((c.cid, c.sqid, c.sqhd), (3, 1, 1));
    assert!(c.status().is_success());
    cq.set_head(1, &mut no_events).unwrap();

    let rd = rw_command(false, 4, 1, 8, 1, prp(&r), 0).unwrap();
    assert_eq!(sq.wpointer(), 0, "the helpers start at slot 0");
    sq.set_wpointer(1).unwrap();
    assert_eq!(sq.fill(&rd, vec![r.clone()], Some(9)).unwrap(), 1);
    assert_eq!(sq.wpointer(), 2);
    assert_eq!(sq.entry(1).unwrap(), rd);
    sq.set_tail(2, &mut no_events).unwrap();
    cq.waitdone(0, T).unwrap();
    // waitdone starts at its own read pointer: entry 0 was read by hand, so skip it first.
    let first = cq.waitdone(1, T).unwrap();
    assert_eq!(first.completions[0].cqe.cid, 3);
    assert_eq!(first.completions[0].ctx, None, "not filled by a helper");
    let got = cq.waitdone(1, T).unwrap();
    assert!(!got.timed_out);
    let c = &got.completions[0];
    assert_eq!((c.cqe.cid, c.ctx), (4, Some(Some(9))));
    assert_eq!(c.sqe.opc(), nvm::READ);
    assert_eq!(cq.rpointer(), 2);
    cq.set_head(cq.rpointer(), &mut no_events).unwrap();
    assert_eq!(r.to_vec(0, 512), vec![0x5a; 512]);

    assert!(sq.delete(None).unwrap().status().is_success());
    assert!(cq.delete(None).unwrap().status().is_success());
    assert!(!sq.created() && !cq.created());
}

#[test]
fn wait_pbit_and_waitdone_give_up_in_time() {
    let ctrl = open("sim://");
    let (cq, _sq) = pair(&ctrl, 1, 4);
    let t0 = Instant::now();
    assert!(!cq.wait_pbit(0, true, Duration::from_millis(50)).unwrap());
    let r = cq.waitdone(1, Duration::from_millis(50)).unwrap();
    assert!(r.timed_out && r.completions.is_empty());
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(matches!(cq.entry(4), Err(DriverError::OutOfRange { .. })));
    assert!(matches!(
        cq.wait_pbit(4, true, T),
        Err(DriverError::OutOfRange { .. })
    ));
}

#[test]
fn two_commands_with_the_same_cid_both_complete() {
    let ctrl = open("sim://");
    let (cq, sq) = pair(&ctrl, 2, 10);
    let (a, b) = (mem(4096), mem(4096));
    sq.set_entry(
        0,
        &rw_command(false, 1, 1, 0, 1, prp(&a), 0).unwrap(),
        vec![a],
    )
    .unwrap();
    sq.set_entry(
        1,
        &rw_command(false, 1, 1, 0, 1, prp(&b), 0).unwrap(),
        vec![b],
    )
    .unwrap();
    sq.set_tail(2, &mut no_events).unwrap();
    assert!(cq.wait_pbit(1, true, T).unwrap());
    assert_eq!(cq.entry(0).unwrap().cid, 1);
    assert_eq!(cq.entry(1).unwrap().cid, 1);
    cq.set_head(2, &mut no_events).unwrap();
}

#[test]
fn several_sqs_share_one_cq() {
    let ctrl = open("sim://");
    let (cq, cqe) = IoCq::create(&ctrl, 1, 10, piece(4096), true, 0, false).unwrap();
    assert!(cqe.status().is_success());
    let sqs: Vec<_> = (1..=3u16)
        .map(|qid| {
            let cfg = SqConfig {
                qid,
                qsize: 10,
                cqid: 1,
                pc: true,
                qprio: 0,
                nvmsetid: 0,
            };
            IoSq::create(&ctrl, cfg, piece(4096), Some(cq.clone()))
                .unwrap()
                .0
        })
        .collect();
    for (i, sq) in sqs.iter().enumerate() {
        let b = mem(4096);
        let s = rw_command(false, 10 + i as u16, 1, 0, 1, prp(&b), 0).unwrap();
        sq.fill(&s, vec![b], None).unwrap();
        sq.set_tail(1, &mut no_events).unwrap();
        assert!(cq.wait_pbit(i as u32, true, T).unwrap());
        let c = cq.entry(i as u32).unwrap();
        assert_eq!((c.sqid, c.cid), (sq.qid(), 10 + i as u16));
        cq.set_head(i as u32 + 1, &mut no_events).unwrap();
    }
    // The CQ cannot go while SQs use it.
    let st = cq.delete(None).unwrap().status();
    assert_eq!((st.sct, st.sc), (sct::COMMAND_SPECIFIC, 0x0c));
    for sq in &sqs {
        assert!(sq.delete(None).unwrap().status().is_success());
    }
    assert!(cq.delete(None).unwrap().status().is_success());
}

#[test]
fn an_out_of_range_doorbell_raises_the_event_at_the_write() {
    let ctrl = open("sim://");
    let (cq, sq) = pair(&ctrl, 4, 16);
    let mut events = Vec::new();
    let n = sq
        .set_tail(20, &mut |c| {
            events.push(c.cqe.dw0);
            Ok(())
        })
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(events, [0x0001_0100]);
    // The event is re-armed: the error log page unmasks the type, the next one arrives too.
    let log = mem(4096);
    let glp = nvme_driver::commands::get_log_page(1, 512, 0, 0xffff_ffff, 0).unwrap();
    assert!(ctrl
        .admin_sync(glp, Some(&log))
        .unwrap()
        .status()
        .is_success());
    let n = cq
        .set_head(16, &mut |c| {
            events.push(c.cqe.dw0);
            Ok(())
        })
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(events, [0x0001_0100, 0x0001_0100]);
    // A value within the queue waits for nothing.
    let t0 = Instant::now();
    assert_eq!(sq.set_tail(0, &mut no_events).unwrap(), 0);
    assert!(t0.elapsed() < Duration::from_millis(400));
}

#[test]
fn queue_ids_are_shared_with_qpairs_without_collision() {
    let ctrl = open("sim://");
    let (cq, sq) = pair(&ctrl, 1, 8);
    let qp = Qpair::<_>::new(&ctrl, QpairConfig::default()).unwrap();
    assert_ne!(qp.qid(), 1, "a Qpair never takes a metamode queue's id");
    let taken = Qpair::<_>::new(
        &ctrl,
        QpairConfig {
            sqid: Some(1),
            ..Default::default()
        },
    );
    assert!(matches!(
        taken,
        Err(DriverError::QueueIdUnavailable { want: Some(1), .. })
    ));
    let e = IoCq::create(&ctrl, qp.qid(), 8, piece(4096), true, 0, false)
        .err()
        .expect("the id of a Qpair is refused");
    assert!(
        matches!(e, DriverError::QueueIdUnavailable { want: Some(_), .. }),
        "{e}"
    );
    sq.delete(None).unwrap();
    cq.delete(None).unwrap();
    let qp1 = Qpair::<_>::new(
        &ctrl,
        QpairConfig {
            sqid: Some(1),
            ..Default::default()
        },
    )
    .expect("deleting both metamode queues frees the id");
    assert_eq!(qp1.qid(), 1);
}

#[test]
fn the_device_judges_bad_queues() {
    let ctrl = open("sim://");
    let (cq, cqe) = IoCq::create(&ctrl, 5, 1, piece(4096), true, 0, false).unwrap();
    assert_eq!(sc_of(cqe), (sct::COMMAND_SPECIFIC, 0x02));
    assert!(!cq.created());
    let (cq0, cqe) = IoCq::create(&ctrl, 0, 5, piece(4096), true, 0, false).unwrap();
    assert_eq!(sc_of(cqe), (sct::COMMAND_SPECIFIC, 0x01));
    drop(cq0);
    let (cq, _) = IoCq::create(&ctrl, 5, 5, piece(4096), true, 0, false).unwrap();
    let cfg = SqConfig {
        qid: 5,
        qsize: 5,
        cqid: 6,
        pc: true,
        qprio: 0,
        nvmsetid: 0,
    };
    let (sq, cqe) = IoSq::create(&ctrl, cfg, piece(4096), None).unwrap();
    assert_eq!(sc_of(cqe), (sct::COMMAND_SPECIFIC, 0x00));
    assert!(!sq.created());
    assert_eq!(
        sc_of(cq.delete(Some(4)).unwrap()),
        (sct::COMMAND_SPECIFIC, 0x01)
    );
    assert!(cq.created());
    assert!(cq.delete(None).unwrap().status().is_success());
    let e = IoCq::create(&ctrl, 5, 0, piece(4096), true, 0, false)
        .err()
        .unwrap();
    assert!(e.to_string().starts_with("qsize:"), "{e}");
    let cfg = SqConfig { qprio: 4, ..cfg };
    let e = IoSq::create(&ctrl, cfg, piece(4096), None).err().unwrap();
    assert!(e.to_string().starts_with("qprio:"), "{e}");
}

#[test]
fn prp_list_with_offsets_moves_the_data() {
    let ctrl = open("sim://");
    let (cq, sq) = pair(&ctrl, 1, 10);
    let ns = nvme_driver::Namespace::new(&ctrl, 1, 0).unwrap();
    let ss = ns.sector_size();
    let n = 3 * 4096 / ss; // 3 pages: PRP1 with an offset, then a list of 3 entries
    let data = mem(4 * 4096);
    for i in 0..4 * 4096 {
        data.write(i, &[(i % 251) as u8]);
    }
    let list = mem(4096);
    let pages: Vec<DmaMemory> = (0..3).map(|_| mem(4096)).collect();
    // Write 3 pages from `data` at offset 0x10 with a PRP list that starts at 0x20.
    for (i, p) in pages.iter().enumerate() {
        set_prp_entry(&list, 4096, 4 + i, p.iova()).unwrap();
    }
    let first = mem(4096);
    first.write(0x10, &data.to_vec(0, 4096 - 0x10));
    let mut at = 4096 - 0x10;
    for p in &pages {
        p.write(0, &data.to_vec(at, 4096));
        at += 4096;
    }
    let dptr = DataPointer::Prp {
        prp1: first.iova() + 0x10,
        prp2: list.iova() + 0x20,
    };
    let mut keep = vec![first.clone(), list.clone()];
    keep.extend(pages.iter().cloned());
    let w = rw_command(true, 1, 1, 0, n as u32, dptr, 0).unwrap();
    sq.fill(&w, keep, None).unwrap();
    sq.set_tail(1, &mut no_events).unwrap();
    let r = cq.waitdone(1, T).unwrap();
    assert!(r.completions[0].cqe.status().is_success());
    cq.set_head(1, &mut no_events).unwrap();
    // Read it back contiguously through the driver's own path.
    let back = mem(3 * 4096);
    let rd = rw_command(
        false,
        2,
        1,
        0,
        n as u32,
        DataPointer::Prp { prp1: 0, prp2: 0 },
        0,
    )
    .unwrap();
    let mut rd = rd;
    let list2 = mem(4096);
    set_prp_entry(&list2, 4096, 0, back.iova() + 4096).unwrap();
    set_prp_entry(&list2, 4096, 1, back.iova() + 8192).unwrap();
    DataPointer::Prp {
        prp1: back.iova(),
        prp2: list2.iova(),
    }
    .apply(&mut rd);
    sq.fill(&rd, vec![back.clone(), list2], None).unwrap();
    sq.set_tail(2, &mut no_events).unwrap();
    let r = cq.waitdone(1, T).unwrap();
    assert!(r.completions[0].cqe.status().is_success());
    assert_eq!(back.to_vec(0, 3 * 4096), data.to_vec(0, 3 * 4096));
}

#[test]
fn sgl_segments_with_a_bit_bucket() {
    let ctrl = open("sim://");
    let (cq, sq) = pair(&ctrl, 1, 10);
    let ns = nvme_driver::Namespace::new(&ctrl, 1, 0).unwrap();
    let ss = ns.sector_size();
    // Write 26 blocks of a pattern the normal way, through a metamode write with PRPs.
    let src = mem(26 * ss);
    for i in 0..26 * ss {
        src.write(i, &[(i / ss) as u8 ^ (i as u8)]);
    }
    let list = mem(4096);
    let pages = (26 * ss).div_ceil(4096);
    for p in 1..pages {
        set_prp_entry(&list, 4096, p - 1, src.iova() + (p * 4096) as u64).unwrap();
    }
    let dptr = DataPointer::Prp {
        prp1: src.iova(),
        prp2: if pages > 2 {
            list.iova()
        } else {
            src.iova() + 4096
        },
    };
    sq.fill(
        &rw_command(true, 1, 1, 100, 26, dptr, 0).unwrap(),
        vec![src.clone(), list],
        None,
    )
    .unwrap();
    sq.set_tail(1, &mut no_events).unwrap();
    assert!(cq.waitdone(1, T).unwrap().completions[0]
        .cqe
        .status()
        .is_success());

    // The guide's SGL: seg0 = [6 blocks, -> seg1], seg1 = [8 blocks, 4-block hole, -> seg2],
    // seg2 (last) = [8 blocks].
    let (seg0, seg1, seg2) = (mem(32), mem(48), mem(16));
    let (d0, d1, d2) = (mem(6 * ss), mem(8 * ss), mem(8 * ss));
    let desc = |k: SglKind, m: &DmaMemory, len: usize| k.descriptor(m.iova(), len).unwrap();
    set_sgl_entry(&seg0, 32, 0, &desc(SglKind::DataBlock, &d0, 6 * ss)).unwrap();
    set_sgl_entry(&seg0, 32, 1, &desc(SglKind::Segment, &seg1, 48)).unwrap();
    set_sgl_entry(&seg1, 48, 0, &desc(SglKind::DataBlock, &d1, 8 * ss)).unwrap();
    set_sgl_entry(
        &seg1,
        48,
        1,
        &SglKind::BitBucket.descriptor(0, 4 * ss).unwrap(),
    )
    .unwrap();
    set_sgl_entry(&seg1, 48, 2, &desc(SglKind::LastSegment, &seg2, 16)).unwrap();
    set_sgl_entry(&seg2, 16, 0, &desc(SglKind::DataBlock, &d2, 8 * ss)).unwrap();
    let rd = io_command(
        nvm::READ,
        2,
        1,
        DataPointer::Sgl(desc(SglKind::Segment, &seg0, 32)),
        0,
    );
    let mut rd = rd;
    rd.set_slba(100);
    rd.cdw12 = 25;
    let keep = vec![seg0, seg1, seg2, d0.clone(), d1.clone(), d2.clone()];
    sq.fill(&rd, keep, None).unwrap();
    sq.set_tail(2, &mut no_events).unwrap();
    let c = cq.waitdone(1, T).unwrap();
    assert!(
        c.completions[0].cqe.status().is_success(),
        "{}",
        c.completions[0].cqe.status()
    );
    assert_eq!(d0.to_vec(0, 6 * ss), src.to_vec(0, 6 * ss));
    assert_eq!(d1.to_vec(0, 8 * ss), src.to_vec(6 * ss, 8 * ss));
    assert_eq!(d2.to_vec(0, 8 * ss), src.to_vec(18 * ss, 8 * ss));
}

#[test]
fn a_reset_forgets_metamode_queues() {
    let ctrl = open("sim://");
    let (cq, sq) = pair(&ctrl, 1, 8);
    drop(sq);
    drop(cq);
    // Dropped without deletion: the id stays reserved (the queues still exist on the device).
    assert!(Qpair::<_>::new(
        &ctrl,
        QpairConfig {
            sqid: Some(1),
            ..Default::default()
        }
    )
    .is_err());
    ctrl.reset_begin().unwrap();
    ctrl.init_default(None).unwrap();
    ctrl.reset_end().unwrap();
    let qp = Qpair::<_>::new(
        &ctrl,
        QpairConfig {
            sqid: Some(1),
            ..Default::default()
        },
    )
    .expect("a reset deletes every IO queue and frees the ids");
    assert_eq!(qp.qid(), 1);
}

#[test]
fn a_metamode_write_leaves_its_lbas_unknown_to_verification() {
    let ctrl = open("sim://");
    let ns = nvme_driver::Namespace::new(&ctrl, 1, 0).unwrap();
    ns.verifier()
        .fill(nvme_driver::verify::LbaRange { slba: 0, nlb: 16 }, 0x42);
    let (cq, sq) = pair(&ctrl, 1, 4);
    let w = mem(4096);
    let r = mem(4096);
    // Slots 0-2: a write of LBA 2-3, a read of LBA 8, a write zeroes of LBA 10; the doorbell
    // wraps: slot 3, then slot 0 again (a write of LBA 12).
    let cmds = [
        rw_command(true, 1, 1, 2, 2, prp(&w), 0).unwrap(),
        rw_command(false, 2, 1, 8, 1, prp(&r), 0).unwrap(),
        io_command(
            nvm::WRITE_ZEROES,
            3,
            1,
            DataPointer::Prp { prp1: 0, prp2: 0 },
            0,
        ),
    ];
    for (i, c) in cmds.iter().enumerate() {
        let mut c = *c;
        if c.opc() == nvm::WRITE_ZEROES {
            c.set_slba(10);
        }
        sq.set_entry(i as u32, &c, vec![w.clone(), r.clone()])
            .unwrap();
    }
    sq.set_tail(3, &mut no_events).unwrap();
    cq.waitdone(3, T).unwrap();
    let v = ns.verifier();
    let known: Vec<bool> = (0..16).map(|l| v.get(l) == 0x42).collect();
    let unknown: Vec<u64> = (0..16).filter(|&l| !known[l as usize]).collect();
    assert_eq!(unknown, vec![2, 3, 10], "the writes' LBAs, not the read's");
    sq.set_entry(
        3,
        &rw_command(false, 4, 1, 9, 1, prp(&r), 0).unwrap(),
        vec![r.clone()],
    )
    .unwrap();
    sq.set_entry(
        0,
        &rw_command(true, 5, 1, 12, 1, prp(&w), 0).unwrap(),
        vec![w.clone()],
    )
    .unwrap();
    cq.set_head(3, &mut no_events).unwrap();
    sq.set_tail(1, &mut no_events).unwrap();
    cq.waitdone(2, T).unwrap();
    assert_eq!((v.get(9), v.get(12)), (0x42, nvme_driver::verify::UNKNOWN));
}
