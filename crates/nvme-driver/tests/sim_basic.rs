//! The driver against the simulated SSD: initialisation, queues, data round trips, errors.

mod common;

use common::{buffer, controller as open, qpair, random_buffer};
use nvme_driver::{Namespace, Qpair, QpairConfig};

#[test]
fn init_identifies_and_counts_queues() {
    let ctrl = open("sim://");
    assert!(ctrl.nn() >= 1);
    assert!(ctrl.num_io_queues() >= 1);
    let id = ctrl.id_ctrl().expect("identify data kept");
    assert_eq!(id.len(), 4096);
    assert!(ctrl.mdts() >= 4096);
}

#[test]
fn write_then_read_returns_the_data() {
    let ctrl = open("sim://");
    let ns = Namespace::new(&ctrl, 1, 0).unwrap();
    let qp = qpair(&ctrl, 16);
    let ss = ns.sector_size();
    let w = random_buffer(8 * ss);
    let r = buffer(8 * ss);
    ns.write(&qp, &w, 5, 8, 0, 0, 0, 0, Some(1)).unwrap();
    let mut seen = Vec::new();
    qp.waitdone(1, &mut |c| {
        seen.push((c.ctx, c.cqe.status()));
        Ok(())
    })
    .unwrap();
    ns.read(&qp, &r, 5, 8, 0, 0, 0, 0, Some(2)).unwrap();
    qp.waitdone(1, &mut |c| {
        seen.push((c.ctx, c.cqe.status()));
        Ok(())
    })
    .unwrap();
    assert!(seen.iter().all(|(_, s)| s.is_success()), "{seen:?}");
    assert_eq!(
        seen.iter().map(|s| s.0).collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );
    assert!(w.same_data(&r));
    qp.delete().unwrap();
}

#[test]
fn prp_lists_and_unaligned_offsets_move_the_right_bytes() {
    let ctrl = open("sim://");
    let ns = Namespace::new(&ctrl, 1, 0).unwrap();
    let qp = qpair(&ctrl, 8);
    let ss = ns.sector_size();
    let n = (64 * 1024 / ss) as u32;
    let len = n as usize * ss;
    let mut w = random_buffer(len + 512);
    w.set_offset(512).unwrap();
    w.set_size(len).unwrap();
    let r = buffer(len);
    ns.write(&qp, &w, 100, n, 0, 0, 0, 0, None).unwrap();
    qp.waitdone(1, &mut |c| {
        assert!(c.cqe.status().is_success(), "{:?}", c.cqe.status());
        Ok(())
    })
    .unwrap();
    ns.read(&qp, &r, 100, n, 0, 0, 0, 0, None).unwrap();
    qp.waitdone(1, &mut |c| {
        assert!(c.cqe.status().is_success());
        Ok(())
    })
    .unwrap();
    assert_eq!(w.to_vec()[512..], r.to_vec()[..]);
}

#[test]
fn out_of_range_lba_completes_with_an_error_status() {
    let ctrl = open("sim://");
    let ns = Namespace::new(&ctrl, 1, 0).unwrap();
    let qp = Qpair::<_>::new(&ctrl, QpairConfig::default()).unwrap();
    let b = buffer(ns.sector_size());
    ns.read(&qp, &b, ns.nsze(), 1, 0, 0, 0, 0, None).unwrap();
    let mut st = None;
    qp.waitdone(1, &mut |c| {
        st = Some(c.cqe.status());
        Ok(())
    })
    .unwrap();
    let st = st.unwrap();
    assert_eq!((st.sct, st.sc), (0, 0x80));
    let w = nvme_driver::completion_warnings(
        1,
        &nvme_spec::Sqe::new(2, 1),
        &nvme_spec::Cqe {
            status: st.status1(true),
            ..Default::default()
        },
        false,
    );
    assert_eq!(w.after, ["ERROR status: 00/80"]);
}

#[test]
fn waitdone_with_nothing_outstanding_is_an_error_not_a_hang() {
    let ctrl = open("sim://");
    let qp = Qpair::<_>::new(&ctrl, QpairConfig::default()).unwrap();
    let e = qp.waitdone(1, &mut |_| Ok(())).unwrap_err();
    assert!(e.to_string().contains("none is outstanding"), "{e}");
    let e = ctrl.waitdone(1, true, &mut |_| Ok(())).unwrap_err();
    assert!(e.to_string().contains("none is outstanding"), "{e}");
}

#[test]
fn reset_recreates_live_qpairs() {
    let ctrl = open("sim://");
    let ns = Namespace::new(&ctrl, 1, 0).unwrap();
    let qp = Qpair::<_>::new(&ctrl, QpairConfig::default()).unwrap();
    ctrl.reset_begin().unwrap();
    ctrl.init_default(None).unwrap();
    ctrl.reset_end().unwrap();
    let b = buffer(ns.sector_size());
    ns.read(&qp, &b, 0, 1, 0, 0, 0, 0, None).unwrap();
    qp.waitdone(1, &mut |c| {
        assert!(c.cqe.status().is_success());
        Ok(())
    })
    .unwrap();
}

#[test]
fn live_qpairs_tell_their_state_through_io_queue() {
    let ctrl = open("sim://");
    let ns = Namespace::new(&ctrl, 1, 0).unwrap();
    let qp = Qpair::<_>::new(
        &ctrl,
        QpairConfig {
            depth: 8,
            ..QpairConfig::default()
        },
    )
    .unwrap();
    let b = buffer(ns.sector_size());
    ns.read(&qp, &b, 0, 1, 0, 0, 0, 0, None).unwrap();
    let live = ctrl.live_qpairs();
    let q = live.iter().find(|q| q.qid() == qp.qid()).unwrap();
    assert_eq!((q.depth(), q.outstanding(), q.is_deleted()), (8, 1, false));
    qp.waitdone(1, &mut |_| Ok(())).unwrap();
    assert_eq!(q.io_counts(), (ns.sector_size() as u64, 1));
    assert_eq!(q.cmdlog(1, 0)[0].sqe.opc(), 2);
    qp.delete().unwrap();
    assert!(q.is_deleted());
}
