//! Data verification under load: overlapping reads and writes from several queue pairs in several
//! threads never give a false miscompare, and real corruption is always caught.

mod common;

use common::Ctx;
use nvme_driver::{Buffer, Controller, Namespace, Qpair, QpairConfig};
use nvme_sim::faults::{FaultAction, FaultMatch, FaultRule};
use std::sync::Arc;

fn setup() -> (Arc<Controller<Ctx>>, Arc<Namespace<Ctx>>) {
    let ctrl = common::controller("sim://");
    let ns = Arc::new(Namespace::new(&ctrl, 1, 0).unwrap());
    ns.verifier().set_enabled(true);
    (ctrl, ns)
}

#[test]
fn overlapping_io_from_four_threads_gives_no_false_miscompare() {
    let (ctrl, ns) = setup();
    let ss = ns.sector_size();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (ctrl, ns) = (ctrl.clone(), ns.clone());
            std::thread::spawn(move || {
                let qp = Qpair::<_>::new(
                    &ctrl,
                    QpairConfig {
                        depth: 16,
                        ..Default::default()
                    },
                )
                .unwrap();
                let mut rng = fastrand::Rng::with_seed(t);
                let bufs: Vec<Buffer> = (0..8)
                    .map(|_| {
                        Buffer::new(
                            nvme_pci::dma_alloc(8 * ss).unwrap(),
                            8 * ss,
                            "b",
                            100,
                            0xbeef,
                        )
                        .unwrap()
                    })
                    .collect();
                let mut bad = 0usize;
                let mut done = 0usize;
                for round in 0..300 {
                    for b in &bufs {
                        let lba = rng.u64(0..56);
                        let n = rng.u32(1..=8);
                        if rng.bool() {
                            ns.write(&qp, b, lba, n, 0, 0, 0, 0, Some(round)).unwrap();
                        } else {
                            ns.read(&qp, b, lba, n, 0, 0, 0, 0, Some(round)).unwrap();
                        }
                    }
                    qp.waitdone(bufs.len(), &mut |c| {
                        done += 1;
                        if !c.cqe.status().is_success() {
                            bad += 1;
                        }
                        Ok(())
                    })
                    .unwrap();
                }
                let findings = qp.take_findings();
                qp.delete().unwrap();
                (done, bad, findings)
            })
        })
        .collect();
    for t in threads {
        let (done, bad, findings) = t.join().unwrap();
        assert_eq!(done, 300 * 8);
        assert_eq!(bad, 0, "false miscompares: {findings:?}");
    }
}

#[test]
fn every_bit_flip_is_caught_with_its_lba() {
    let (ctrl, ns) = setup();
    let qp = Qpair::<_>::new(&ctrl, QpairConfig::default()).unwrap();
    let ss = ns.sector_size();
    let w = Buffer::new(nvme_pci::dma_alloc(ss).unwrap(), ss, "w", 100, 0xbeef).unwrap();
    let r = Buffer::new(nvme_pci::dma_alloc(ss).unwrap(), ss, "r", 0, 0).unwrap();
    let faults = ctrl.pci().simulator().unwrap().faults();
    for lba in 0..200u64 {
        ns.write(&qp, &w, lba, 1, 0, 0, 0, 0, None).unwrap();
        qp.waitdone(1, &mut |_| Ok(())).unwrap();
        faults.add(FaultRule::new(FaultMatch::io(2), FaultAction::FlipBits(1)).times(1));
        ns.read(&qp, &r, lba, 1, 0, 0, 0, 0, None).unwrap();
        let mut st = None;
        qp.waitdone(1, &mut |c| {
            st = Some(c.cqe.status());
            Ok(())
        })
        .unwrap();
        assert_eq!(
            st.unwrap().to_string(),
            "07/81",
            "a single flipped bit at lba {lba} went unnoticed"
        );
        let f = qp.take_findings();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].lba, lba);
    }
}

#[test]
fn a_refused_command_leaves_no_lba_locked() {
    let (ctrl, ns) = setup();
    let qp = Qpair::<_>::new(
        &ctrl,
        QpairConfig {
            depth: 4,
            ..Default::default()
        },
    )
    .unwrap();
    let ss = ns.sector_size();
    let big = (3 << 20) / ss;
    let b = Buffer::new(nvme_pci::dma_alloc(big * ss).unwrap(), big * ss, "b", 0, 0).unwrap();
    let e = ns
        .write(&qp, &b, 0, big as u32, 0, 0, 0, 0, None)
        .unwrap_err();
    assert!(e.to_string().starts_with("buf:"), "{e}");
    // Fill the queue (3 slots), then one more is refused as full.
    for i in 0..3 {
        ns.read(&qp, &b, 100 + i, 1, 0, 0, 0, 0, None).unwrap();
    }
    assert!(ns
        .read(&qp, &b, 0, 1, 0, 0, 0, 0, None)
        .unwrap_err()
        .to_string()
        .contains("full"));
    qp.waitdone(3, &mut |_| Ok(())).unwrap();
    // LBA 0 is free: this write enters the queue at once.
    assert!(ns.write(&qp, &b, 0, 8, 0, 0, 0, 0, None).unwrap().is_some());
    qp.waitdone(1, &mut |c| {
        assert!(c.cqe.status().is_success());
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_batch_is_submitted_under_one_lock_and_verified_like_single_commands() {
    let (ctrl, ns) = setup();
    let qp = Qpair::<_>::new(
        &ctrl,
        QpairConfig {
            depth: 64,
            lazy_doorbell: true,
            ..Default::default()
        },
    )
    .unwrap();
    let ss = ns.sector_size();
    let w = Buffer::new(nvme_pci::dma_alloc(ss).unwrap(), ss, "w", 100, 0xbeef).unwrap();
    let cmds = (0..32u64).map(|lba| {
        let (sqe, d) = ns
            .rw_command(nvme_spec::cmd::nvm::WRITE, &w, lba, 1, 0, 0, 0, 0)
            .unwrap();
        (sqe, Some(d), Some(lba as u32))
    });
    // Not stamped (stamp = false): all 32 LBAs receive the same data from the one buffer.
    assert_eq!(qp.submit_batch(cmds, false).unwrap(), 32);
    let mut seen = 0;
    qp.waitdone(32, &mut |c| {
        assert!(c.cqe.status().is_success());
        seen += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, 32);
}

/// The whole of `b` as the data of a command.
fn data_of(b: &Buffer) -> nvme_driver::DataRef {
    nvme_driver::DataRef {
        mem: b.memory().clone(),
        offset: b.offset(),
        len: b.size(),
        sgl: false,
    }
}

/// Submits `sqe` with `data` on `qp` (unstamped, as a raw command is) and waits for it; returns
/// its status and the miscompares found.
fn run(
    qp: &Qpair<Ctx>,
    sqe: nvme_spec::Sqe,
    data: Option<nvme_driver::DataRef>,
) -> (nvme_spec::Status, Vec<nvme_driver::Miscompare>) {
    qp.submit(sqe, data, false, None, false).unwrap();
    let mut st = None;
    qp.waitdone(1, &mut |c| {
        st = Some(c.cqe.status());
        Ok(())
    })
    .unwrap();
    (st.unwrap(), qp.take_findings())
}

fn raw_rw(opcode: u8, slba: u64, nlb: u32) -> nvme_spec::Sqe {
    nvme_driver::commands::raw(
        opcode as u32,
        1,
        0,
        0,
        slba as u32,
        (slba >> 32) as u32,
        nlb - 1,
        0,
        0,
        0,
    )
}

#[test]
fn a_raw_read_into_a_larger_buffer_checks_only_the_lbas_it_reads() {
    let (ctrl, ns) = setup();
    let qp = common::qpair(&ctrl, 16);
    let ss = ns.sector_size();
    let w = common::random_buffer(8 * ss);
    ns.write(&qp, &w, 0, 8, 0, 0, 0, 0, None).unwrap();
    qp.waitdone(1, &mut |_| Ok(())).unwrap();
    // One block into a zeroed 8-block buffer: blocks 1-7 were not read and are not checked.
    let r = common::buffer(8 * ss);
    let (st, found) = run(
        &qp,
        raw_rw(nvme_spec::cmd::nvm::READ, 0, 1),
        Some(data_of(&r)),
    );
    assert!(st.is_success() && found.is_empty(), "{st} {found:?}");
    assert_eq!(r.memory().to_vec(0, ss), w.memory().to_vec(0, ss));
    assert_eq!(r.memory().to_vec(ss, ss), vec![0; ss]);
    // The same read of LBA 1 whose data was changed behind the driver's back is still caught.
    let faults = ctrl.pci().simulator().unwrap().faults();
    faults.add(FaultRule::new(FaultMatch::io(2), FaultAction::FlipBits(1)).times(1));
    let (st, found) = run(
        &qp,
        raw_rw(nvme_spec::cmd::nvm::READ, 1, 1),
        Some(data_of(&r)),
    );
    assert_eq!(
        (st.to_string(), found.len(), found[0].lba),
        ("07/81".into(), 1, 1)
    );
}

#[test]
fn a_raw_write_records_only_the_lbas_it_writes() {
    let (ctrl, ns) = setup();
    let qp = common::qpair(&ctrl, 16);
    let ss = ns.sector_size();
    let first = common::random_buffer(8 * ss);
    ns.write(&qp, &first, 0, 8, 0, 0, 0, 0, None).unwrap();
    qp.waitdone(1, &mut |_| Ok(())).unwrap();
    // One block from another 8-block buffer: LBAs 1-7 keep the first write's data.
    let second = common::pattern_buffer(8 * ss, 32, 0x1234_5678);
    let (st, _) = run(
        &qp,
        raw_rw(nvme_spec::cmd::nvm::WRITE, 0, 1),
        Some(data_of(&second)),
    );
    assert!(st.is_success());
    let r = common::buffer(8 * ss);
    ns.read(&qp, &r, 0, 8, 0, 0, 0, 0, None).unwrap();
    let mut st = None;
    qp.waitdone(1, &mut |c| {
        st = Some(c.cqe.status());
        Ok(())
    })
    .unwrap();
    assert!(st.unwrap().is_success(), "{:?}", qp.take_findings());
    assert_eq!(r.memory().to_vec(0, ss), second.memory().to_vec(0, ss));
    assert_eq!(
        r.memory().to_vec(ss, 7 * ss),
        first.memory().to_vec(ss, 7 * ss)
    );
    // A raw write without a buffer leaves its LBA unknown: nothing to check, nothing reported.
    let (st, _) = run(&qp, raw_rw(nvme_spec::cmd::nvm::WRITE, 2, 1), None);
    assert!(
        !st.is_success(),
        "the device refuses a write without data: {st}"
    );
    assert_eq!(ns.verifier().get(2), nvme_driver::verify::UNKNOWN);
}

#[test]
fn a_buffer_changed_while_its_write_is_in_flight_gives_no_false_miscompare() {
    let (ctrl, ns) = setup();
    let qp = common::qpair(&ctrl, 16);
    let ss = ns.sector_size();
    let faults = ctrl.pci().simulator().unwrap().faults();
    let slow = faults.add(
        FaultRule::new(
            FaultMatch::io(1),
            FaultAction::Delay(std::time::Duration::from_millis(300)),
        )
        .times(1),
    );
    let w = common::random_buffer(4 * ss);
    ns.write(&qp, &w, 40, 4, 0, 0, 0, 0, None).unwrap();
    let sent = w.memory().to_vec(0, 4 * ss);
    // The device has taken the data (it moves it when it fetches the command, then waits).
    let t0 = std::time::Instant::now();
    while faults.hits(slow) == 0 {
        assert!(t0.elapsed().as_secs() < 5, "the write was not fetched");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    w.memory().fill(0, 4 * ss, 0xee);
    let mut st = None;
    qp.waitdone(1, &mut |c| {
        st = Some(c.cqe.status());
        Ok(())
    })
    .unwrap();
    assert!(st.unwrap().is_success());
    let r = common::buffer(4 * ss);
    ns.read(&qp, &r, 40, 4, 0, 0, 0, 0, None).unwrap();
    qp.waitdone(1, &mut |c| {
        st = Some(c.cqe.status());
        Ok(())
    })
    .unwrap();
    assert!(st.unwrap().is_success(), "{:?}", qp.take_findings());
    assert_eq!(r.memory().to_vec(0, 4 * ss), sent);
}

#[test]
fn one_buffer_written_to_several_lbas_without_waiting_gives_no_false_miscompare() {
    let (ctrl, ns) = setup();
    // Lazy doorbell: the device fetches every write's data only after all were submitted.
    let qp = Qpair::<_>::new(
        &ctrl,
        QpairConfig {
            depth: 16,
            lazy_doorbell: true,
            ..Default::default()
        },
    )
    .unwrap();
    let ss = ns.sector_size();
    let w = common::random_buffer(ss);
    for lba in 0..8 {
        ns.write(&qp, &w, lba, 1, 0, 0, 0, 0, None).unwrap();
    }
    qp.waitdone(8, &mut |c| {
        assert!(c.cqe.status().is_success());
        Ok(())
    })
    .unwrap();
    let r = common::buffer(8 * ss);
    ns.read(&qp, &r, 0, 8, 0, 0, 0, 0, None).unwrap();
    let mut st = None;
    qp.waitdone(1, &mut |c| {
        st = Some(c.cqe.status());
        Ok(())
    })
    .unwrap();
    assert!(st.unwrap().is_success(), "{:?}", qp.take_findings());
    for lba in 0..8u64 {
        let stamp = u64::from_le_bytes(r.memory().to_vec(lba as usize * ss, 8).try_into().unwrap());
        assert_eq!(stamp, nvme_driver::verify::lba_stamp(1, lba), "lba {lba}");
    }
}

#[test]
fn a_write_torn_at_a_dirty_power_loss_is_caught_with_what_was_found() {
    let (ctrl, ns) = setup();
    let qp = Qpair::<_>::new(&ctrl, QpairConfig::default()).unwrap();
    let ss = ns.sector_size();
    let b = Buffer::new(
        nvme_pci::dma_alloc(8 * ss).unwrap(),
        8 * ss,
        "b",
        100,
        0xbeef,
    )
    .unwrap();
    let wait = |qp: &Qpair<Ctx>| {
        let mut st = None;
        qp.waitdone(1, &mut |c| {
            st = Some(c.cqe.status());
            Ok(())
        })
        .unwrap();
        st.unwrap()
    };
    // Old versions, made durable by a flush; then FUA rewrites the device tears.
    for lba in [0u64, 100] {
        ns.write(&qp, &b, lba, 8, 0, 0, 0, 0, None).unwrap();
        assert!(wait(&qp).is_success());
    }
    run(
        &qp,
        nvme_spec::Sqe::new(nvme_spec::cmd::nvm::FLUSH, 1),
        None,
    );
    let faults = ctrl.pci().simulator().unwrap().faults();
    faults.add(FaultRule::new(FaultMatch::io(1), FaultAction::TornWrite).times(2));
    ns.write(&qp, &b, 0, 8, 0x4000, 0, 0, 0, None).unwrap(); // FUA
    assert!(wait(&qp).is_success());
    ns.write(&qp, &b, 100, 1, 0x4000, 0, 0, 0, None).unwrap();
    assert!(wait(&qp).is_success());
    ctrl.power_cycle(
        false,
        Some(std::time::Duration::ZERO),
        nvme_driver::PowerSwitch::Backend,
        nvme_driver::PowerSwitch::Backend,
    )
    .unwrap();
    ctrl.reset(&mut || ctrl.init_default(None)).unwrap();
    // The durable FUA writes are still checked: their torn halves read as the old versions.
    ns.read(&qp, &b, 0, 8, 0, 0, 0, 0, None).unwrap();
    assert_eq!(wait(&qp), nvme_driver::verify::MISCOMPARE);
    let found = qp.take_findings();
    assert_eq!(
        found.iter().map(|m| m.lba).collect::<Vec<_>>(),
        [4, 5, 6, 7]
    );
    assert!(found
        .iter()
        .all(|m| m.kind == nvme_driver::MiscompareKind::Stale));
    ns.read(&qp, &b, 100, 1, 0, 0, 0, 0, None).unwrap();
    assert_eq!(wait(&qp), nvme_driver::verify::MISCOMPARE);
    let found = qp.take_findings();
    assert_eq!(
        (found[0].lba, found[0].kind),
        (100, nvme_driver::MiscompareKind::Stale),
        "a block torn inside keeps its old token"
    );
}

#[test]
fn a_read_that_succeeds_without_data_is_caught() {
    let (ctrl, ns) = setup();
    let qp = Qpair::<_>::new(&ctrl, QpairConfig::default()).unwrap();
    let ss = ns.sector_size();
    let b = Buffer::new(nvme_pci::dma_alloc(ss).unwrap(), ss, "b", 100, 0xbeef).unwrap();
    for lba in [7u64, 8] {
        ns.write(&qp, &b, lba, 1, 0, 0, 0, 0, None).unwrap();
        qp.waitdone(1, &mut |_| Ok(())).unwrap();
    }
    // The buffer holds LBA 7's data from a read; the next read of LBA 8 moves nothing.
    let (st, _) = run(&qp, raw_rw(2, 7, 1), Some(data_of(&b)));
    assert!(st.is_success());
    let faults = ctrl.pci().simulator().unwrap().faults();
    faults.add(FaultRule::new(FaultMatch::io(2), FaultAction::ReadWithoutData).times(1));
    let (st, found) = run(&qp, raw_rw(2, 8, 1), Some(data_of(&b)));
    assert_eq!(st, nvme_driver::verify::MISCOMPARE);
    assert_eq!(
        (found[0].lba, found[0].kind, found[0].claims),
        (8, nvme_driver::MiscompareKind::Misdirected, (1, 7))
    );
}
