//! The driver against a misbehaving simulated SSD: it never hangs, never trusts a bad completion,
//! and reports what the device did wrong.

mod common;

use common::Ctx;
use nvme_driver::{Buffer, Completion, Controller, Namespace, Qpair};
use nvme_sim::faults::{FaultAction, FaultMatch, FaultRule};
use nvme_spec::cmd::nvm;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Dut {
    ctrl: Arc<Controller<Ctx>>,
    ns: Namespace<Ctx>,
    qp: Arc<Qpair<Ctx>>,
    buf: Buffer,
}

fn dut() -> Dut {
    let ctrl = common::controller("sim://");
    let ns = Namespace::new(&ctrl, 1, 0).unwrap();
    let qp = common::qpair(&ctrl, 16);
    let buf = common::buffer(ns.sector_size());
    Dut { ctrl, ns, qp, buf }
}

fn faults(d: &Dut) -> &nvme_sim::faults::Faults {
    d.ctrl.pci().simulator().expect("simulated").faults()
}

fn read_one(d: &Dut, lba: u64) -> Vec<Completion<Ctx>> {
    d.ns.read(&d.qp, &d.buf, lba, 1, 0, 0, 0, 0, Some(lba as u32))
        .unwrap();
    let mut got = Vec::new();
    d.qp.waitdone(1, &mut |c| {
        got.push(c);
        Ok(())
    })
    .unwrap();
    got
}

#[test]
fn a_dropped_completion_times_out_with_07_ff_and_the_queue_goes_on() {
    let d = dut();
    d.ctrl.timeouts().set_default_ms(200);
    faults(&d).add(FaultRule::new(FaultMatch::io(nvm::READ), FaultAction::DropCompletion).times(1));
    let t0 = Instant::now();
    let got = read_one(&d, 3);
    let waited = t0.elapsed();
    assert!(got[0].timed_out);
    assert_eq!(got[0].cqe.status().to_string(), "07/ff");
    assert_eq!(got[0].ctx, Some(3));
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let w = nvme_driver::completion_warnings(1, &got[0].sqe, &got[0].cqe, true);
    assert_eq!(
        w.before,
        [format!(
            "drive timeout: qpair: {}, cid: {}",
            d.qp.qid(),
            got[0].cqe.cid
        )]
    );
    assert_eq!(w.after, ["ERROR status: 07/ff"]);
    let again = read_one(&d, 4);
    assert!(again[0].cqe.status().is_success() && !again[0].timed_out);
}

#[test]
fn a_duplicate_completion_is_reported_and_not_delivered_twice() {
    let d = dut();
    faults(&d).add(FaultRule::new(FaultMatch::io(nvm::READ), FaultAction::DuplicateCqe).times(1));
    let got = read_one(&d, 1);
    assert_eq!(got.len(), 1);
    // The duplicate arrives right behind; the next poll sees it and reports it.
    let got2 = read_one(&d, 2);
    assert_eq!(got2.len(), 1);
    assert_eq!(got2[0].ctx, Some(2));
    let a = d.qp.take_anomalies();
    assert!(a.iter().any(|m| m.contains("not outstanding")), "{a:?}");
}

#[test]
fn a_completion_with_a_wrong_cid_is_ignored_and_the_command_times_out() {
    let d = dut();
    d.ctrl.timeouts().set_default_ms(200);
    faults(&d).add(FaultRule::new(FaultMatch::io(nvm::READ), FaultAction::WrongCid(0x40)).times(1));
    let got = read_one(&d, 1);
    assert!(got[0].timed_out, "the real command never completed");
    let a = d.qp.take_anomalies();
    assert!(
        a.iter()
            .any(|m| m.contains("never submitted") || m.contains("not outstanding")),
        "{a:?}"
    );
}

#[test]
fn a_completion_naming_another_sq_is_ignored() {
    let d = dut();
    d.ctrl.timeouts().set_default_ms(200);
    faults(&d).add(FaultRule::new(FaultMatch::io(nvm::READ), FaultAction::WrongSqid(9)).times(1));
    let got = read_one(&d, 1);
    assert!(got[0].timed_out);
    let a = d.qp.take_anomalies();
    assert!(a.iter().any(|m| m.contains("names SQ 9")), "{a:?}");
}

#[test]
fn a_delayed_completion_within_the_timeout_is_normal() {
    let d = dut();
    faults(&d).add(
        FaultRule::new(
            FaultMatch::io(nvm::READ),
            FaultAction::Delay(Duration::from_millis(50)),
        )
        .times(1),
    );
    let got = read_one(&d, 1);
    assert!(!got[0].timed_out && got[0].cqe.status().is_success());
    assert!(got[0].latency_us >= 45_000, "{}", got[0].latency_us);
}

#[test]
fn controller_fatal_status_times_commands_out_and_a_reset_recovers() {
    let d = dut();
    d.ctrl.timeouts().set_default_ms(200);
    faults(&d).controller_fatal();
    // The device thread takes the fault on its next turn: a read sent before would complete.
    let t = Instant::now();
    while d.ctrl.csts() & nvme_spec::regs::csts::CFS == 0 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let got = read_one(&d, 1);
    assert!(got[0].timed_out);
    assert!(d.ctrl.csts() & nvme_spec::regs::csts::CFS != 0);
    faults(&d).clear();
    d.ctrl.reset_begin().unwrap();
    d.ctrl.init_default(None).unwrap();
    d.ctrl.reset_end().unwrap();
    let got = read_one(&d, 1);
    assert!(
        got[0].cqe.status().is_success(),
        "{:?}",
        got[0].cqe.status()
    );
}

#[test]
fn surprise_removal_reads_all_ones_and_nothing_hangs() {
    let d = dut();
    d.ctrl.timeouts().set_default_ms(200);
    faults(&d).surprise_removal();
    assert_eq!(d.ctrl.csts(), u32::MAX);
    let t0 = Instant::now();
    let got = read_one(&d, 1);
    assert!(got[0].timed_out);
    assert!(t0.elapsed() < Duration::from_secs(5));
    let e = d.ctrl.reset_begin();
    assert!(e.is_err(), "a removed device cannot be disabled");
    faults(&d).reinsert();
}

#[test]
fn an_admin_command_whose_completion_is_dropped_times_out_too() {
    let d = dut();
    d.ctrl.timeouts().set_default_ms(200);
    faults(&d).add(
        FaultRule::new(
            FaultMatch::admin(nvme_spec::cmd::admin::GET_FEATURES),
            FaultAction::DropCompletion,
        )
        .times(1),
    );
    d.ctrl
        .submit(
            nvme_driver::commands::get_features(7, 0, 0, 0, 0, 0, 0, 0).unwrap(),
            None,
            false,
            Some(7),
        )
        .unwrap();
    let mut got = Vec::new();
    d.ctrl
        .waitdone(1, true, &mut |c| {
            got.push(c);
            Ok(())
        })
        .unwrap();
    assert!(got[0].timed_out);
    assert_eq!(got[0].ctx, Some(7));
}

#[test]
fn a_firmware_crash_is_fatal_status_and_a_reset_recovers() {
    let d = dut();
    d.ctrl.timeouts().set_default_ms(200);
    faults(&d).firmware_crash();
    // CFS is set once the device thread's panic has unwound: after the panic hook, which may
    // take a while to print a backtrace. A command submitted before that may still complete
    // (the device thread can be in the middle of a pass that already took the doorbell).
    let t0 = std::time::Instant::now();
    while d.ctrl.csts() & nvme_spec::regs::csts::CFS == 0 && t0.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(
        d.ctrl.csts() & nvme_spec::regs::csts::CFS != 0,
        "the crash shows as CSTS.CFS"
    );
    let got = read_one(&d, 1);
    assert!(got[0].timed_out, "a crashed controller completes nothing");
    d.ctrl.reset_begin().unwrap();
    d.ctrl.init_default(None).unwrap();
    d.ctrl.reset_end().unwrap();
    let got = read_one(&d, 1);
    assert!(
        got[0].cqe.status().is_success(),
        "{:?}",
        got[0].cqe.status()
    );
}
