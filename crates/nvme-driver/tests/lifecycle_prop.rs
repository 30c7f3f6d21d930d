//! A property test: the driver against the simulated SSD under random IO, random device faults
//! and random lifecycle events (controller reset, FLR, hot reset, subsystem reset, clean and
//! dirty power cycles). Whatever happens, every command submitted completes exactly once, the
//! driver never hangs or panics, it never reports a misbehaviour the device did not commit, and
//! IO works again after a controller reset.
//!
//! `cargo test` runs a few cases; `PYNVME_SOAK_CASES=<n>` (`make soak`) runs more.

mod common;

use nvme_driver::{DriverError, Namespace, PowerSwitch, Qpair, QpairConfig, State};
use nvme_sim::faults::{FaultAction, FaultMatch, FaultRule};
use proptest::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
enum Step {
    /// Write (true) or read of 8 LBAs at chunk `n`.
    Io(bool, u64),
    /// Reap what completed.
    Poll,
    /// A device fault on the next read or write.
    Fault(u8),
    /// A lifecycle event (0..6), then the controller reset that brings it back.
    Event(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (any::<bool>(), 0u64..16).prop_map(|(w, n)| Step::Io(w, n)),
        3 => Just(Step::Poll),
        1 => (0u8..5).prop_map(Step::Fault),
        1 => (0u8..6).prop_map(Step::Event),
    ]
}

/// Faults that make the device misbehave on purpose (the driver must say so) are told apart
/// from those that only delay, drop or fail a command.
fn fault(kind: u8) -> (FaultAction, bool) {
    match kind {
        0 => (FaultAction::Delay(Duration::from_millis(5)), false),
        1 => (FaultAction::DropCompletion, false),
        2 => (FaultAction::Status(nvme_spec::Status::new(0, 0x06)), false),
        3 => (FaultAction::DuplicateCqe, true),
        _ => (FaultAction::WrongCid(0x40), true),
    }
}

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let dma_faults = || nvme_pci::sim::SimBus::global().fault_count();
    let faults0 = dma_faults();
    let ctrl = common::controller("sim://?vwc=off&capacity=256M");
    ctrl.timeouts().set_default_ms(300);
    let ns = Arc::new(Namespace::new(&ctrl, 1, 0).unwrap());
    ns.verifier().set_enabled(true);
    let faults = ctrl.pci().simulator().unwrap().faults();
    let cfg = QpairConfig {
        depth: 8,
        ..Default::default()
    };
    let qp = Qpair::<common::Ctx>::new(&ctrl, cfg).unwrap();
    let ss = ns.sector_size();
    let mut submitted = 0u32;
    let mut seen = HashSet::new();
    let mut twice = Vec::new();
    let mut misbehaved = false;
    let reap = |seen: &mut HashSet<u32>, twice: &mut Vec<u32>| {
        qp.poll(usize::MAX, &mut |c| {
            let id = c.ctx.unwrap();
            if !seen.insert(id) {
                twice.push(id);
            }
            Ok(())
        })
        .unwrap()
    };
    for s in steps {
        match s {
            Step::Io(write, n) => {
                let b = common::random_buffer(8 * ss);
                let r = if write {
                    ns.write(&qp, &b, n * 8, 8, 0, 0, 0, 0, Some(submitted))
                } else {
                    ns.read(&qp, &b, n * 8, 8, 0, 0, 0, 0, Some(submitted))
                };
                match r {
                    Ok(_) => submitted += 1,
                    Err(DriverError::QueueFull { .. }) => {}
                    Err(e) => return Err(TestCaseError::fail(format!("submit: {e}"))),
                }
            }
            Step::Poll => {
                reap(&mut seen, &mut twice);
            }
            Step::Fault(k) => {
                let (action, bad) = fault(k);
                misbehaved |= bad;
                faults.add(
                    FaultRule::new(FaultMatch::io(if k % 2 == 0 { 1 } else { 2 }), action).times(1),
                );
            }
            Step::Event(e) => {
                match e {
                    0 => {}
                    1 => ctrl.flr().unwrap(),
                    2 => ctrl.hot_reset().unwrap(),
                    3 => {
                        ctrl.subsystem_reset().unwrap();
                    }
                    _ => {
                        ctrl.power_cycle(
                            e == 4,
                            Some(Duration::ZERO),
                            PowerSwitch::Backend,
                            PowerSwitch::Backend,
                        )
                        .unwrap();
                    }
                }
                ctrl.reset(&mut || ctrl.init_default(None)).unwrap();
                ctrl.timeouts().set_default_ms(300);
                prop_assert_eq!(ctrl.state(), State::Ready);
                prop_assert!(qp.is_alive());
            }
        }
    }
    // Everything completes, by the device, the host's timeout or the host's abort.
    let t0 = Instant::now();
    while (seen.len() as u32) < submitted {
        prop_assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{} of {submitted} commands never completed",
            submitted - seen.len() as u32
        );
        if reap(&mut seen, &mut twice) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    prop_assert!(twice.is_empty(), "completed twice: {:?}", twice);
    let anomalies = qp.take_anomalies();
    prop_assert!(
        misbehaved || anomalies.is_empty(),
        "false device warnings: {:?}",
        anomalies
    );
    // And IO works after a controller reset.
    faults.clear();
    ctrl.reset(&mut || ctrl.init_default(None)).unwrap();
    let b = common::random_buffer(8 * ss);
    ns.write(&qp, &b, 0, 8, 0, 0, 0, 0, Some(u32::MAX)).unwrap();
    let mut ok = false;
    qp.waitdone(1, &mut |c| {
        ok = c.cqe.status().is_success();
        Ok(())
    })
    .unwrap();
    prop_assert!(ok);
    qp.delete().unwrap();
    prop_assert_eq!(dma_faults(), faults0, "the device reached freed memory");
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PYNVME_SOAK_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_command_completes_once_through_faults_resets_and_power_loss(
        steps in proptest::collection::vec(step(), 1..120)
    ) {
        run(steps)?;
    }
}
