//! The controller's life under load: threads doing verified IO on their own queue pairs while
//! the main thread resets, FLRs, hot resets, subsystem resets and power cycles the simulated SSD
//! at random moments. No panic, no hang, no command completed twice or lost, no false device
//! warning, no false miscompare, and every thread goes on once the controller is ready again.
//!
//! `PYNVME_SOAK=<events>` makes the stress tests run that many lifecycle events (default 12).

mod common;

use nvme_driver::{
    Buffer, Controller, DriverError, Event, Namespace, PowerSwitch, Qpair, QpairConfig, State,
};
use nvme_sim::faults::{FaultAction, FaultMatch, FaultRule};
use nvme_spec::status::{sc, sct};
use nvme_spec::Status;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Ctrl = Controller<common::Ctx>;

const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn aborted() -> Status {
    Status::new(sct::GENERIC, sc::ABORTED_SQ_DELETION)
}

/// A controller on a simulated SSD without a volatile write cache (a power loss loses nothing
/// that completed, so every miscompare would be false), verification on.
fn setup() -> (Arc<Ctrl>, Arc<Namespace<common::Ctx>>) {
    let ctrl = common::controller("sim://?vwc=off&capacity=1G");
    let ns = Arc::new(Namespace::new(&ctrl, 1, 0).unwrap());
    ns.verifier().set_enabled(true);
    (ctrl, ns)
}

fn reinit(ctrl: &Ctrl) {
    ctrl.reset(&mut || ctrl.init_default(None)).unwrap();
}

/// The lifecycle operations the stress test picks from.
#[derive(Clone, Copy, Debug)]
enum Op {
    Reset,
    Flr,
    HotReset,
    SubsystemReset,
    CleanPowerCycle,
    DirtyPowerCycle,
}

const OPS: [Op; 6] = [
    Op::Reset,
    Op::Flr,
    Op::HotReset,
    Op::SubsystemReset,
    Op::CleanPowerCycle,
    Op::DirtyPowerCycle,
];

fn perform(ctrl: &Ctrl, op: Op) {
    match op {
        Op::Reset => {}
        Op::Flr => ctrl.flr().unwrap(),
        Op::HotReset => ctrl.hot_reset().unwrap(),
        Op::SubsystemReset => {
            ctrl.subsystem_reset().unwrap();
        }
        Op::CleanPowerCycle => {
            ctrl.power_cycle(
                true,
                Some(Duration::ZERO),
                PowerSwitch::Backend,
                PowerSwitch::Backend,
            )
            .unwrap();
        }
        Op::DirtyPowerCycle => {
            ctrl.power_cycle(
                false,
                Some(Duration::ZERO),
                PowerSwitch::Backend,
                PowerSwitch::Backend,
            )
            .unwrap();
        }
    }
    if !matches!(op, Op::Reset) {
        assert_ne!(
            ctrl.state(),
            State::Ready,
            "{op:?} leaves the controller not ready"
        );
    }
    reinit(ctrl);
    assert_eq!(ctrl.state(), State::Ready);
}

/// A new queue pair, waiting for the controller while it is not ready.
fn new_qpair(ctrl: &Arc<Ctrl>, cfg: QpairConfig) -> Arc<Qpair<common::Ctx>> {
    let t0 = Instant::now();
    loop {
        assert!(
            t0.elapsed() < READY_TIMEOUT,
            "no queue pair in {READY_TIMEOUT:?}"
        );
        match Qpair::new(ctrl, cfg) {
            Ok(q) => return q,
            Err(DriverError::NotReady { .. }) => {
                ctrl.wait_ready(READY_TIMEOUT).unwrap();
            }
            Err(e) => panic!("new qpair: {e}"),
        }
    }
}

/// What one IO thread saw.
#[derive(Debug, Default)]
struct Tally {
    submitted: u64,
    completed: u64,
    aborted: u64,
    failed: Vec<String>,
    duplicates: Vec<u32>,
    queue_gone: u64,
    recreated: u64,
    anomalies: Vec<String>,
    findings: usize,
}

/// Writes then reads 8-LBA chunks of its own 256 LBAs on its own queue pair until `stop`, then
/// until it completed `after` more commands successfully in the final epoch; on a gone queue it
/// waits for the controller and goes on with the same queue pair (even threads) or a new one.
fn io_thread(
    t: u32,
    ctrl: Arc<Ctrl>,
    ns: Arc<Namespace<common::Ctx>>,
    stop: Arc<AtomicBool>,
    progress: Arc<AtomicU64>,
) -> Tally {
    let cfg = QpairConfig {
        depth: 8,
        ..Default::default()
    };
    let mut qp = new_qpair(&ctrl, cfg);
    let ss = ns.sector_size();
    let mut rng = fastrand::Rng::with_seed(t as u64);
    let mut tally = Tally::default();
    let mut seen = HashSet::new();
    let mut next_id = t << 24;
    let mut ok_after_stop = 0u64;
    let base = t as u64 * 256;
    let mut reap =
        |qp: &Qpair<common::Ctx>, tally: &mut Tally, ok_after: &mut u64, stopped: bool| {
            qp.poll(usize::MAX, &mut |c| {
                let id = c.ctx.expect("every command has an id");
                if !seen.insert(id) {
                    tally.duplicates.push(id);
                }
                tally.completed += 1;
                let st = c.cqe.status();
                if st == aborted() {
                    tally.aborted += 1;
                } else if !st.is_success() || c.timed_out {
                    tally.failed.push(format!("{:?} {st}", c.sqe.opc()));
                } else {
                    progress.fetch_add(1, Ordering::Relaxed);
                    if stopped {
                        *ok_after += 1;
                    }
                }
                Ok(())
            })
            .unwrap()
        };
    // A hang is a thread that completes nothing for this long (however long the whole run
    // takes on a loaded machine).
    let deadline = |since: Instant| since.elapsed() < READY_TIMEOUT * 3;
    let mut progress_at = Instant::now();
    let mut completed = 0;
    loop {
        let stopped = stop.load(Ordering::Acquire);
        if stopped && ok_after_stop >= 32 {
            break;
        }
        if tally.completed != completed {
            (completed, progress_at) = (tally.completed, Instant::now());
        }
        assert!(deadline(progress_at), "thread {t} makes no progress");
        // A buffer of its own per command: the device may read or write it until it completes.
        let b: Buffer = if rng.bool() {
            common::random_buffer(8 * ss)
        } else {
            common::buffer(8 * ss)
        };
        let b = &b;
        let lba = base + rng.u64(0..32) * 8;
        let write = rng.bool();
        let id = next_id;
        let r = if write {
            ns.write(&qp, b, lba, 8, 0, 0, 0, 0, Some(id))
        } else {
            ns.read(&qp, b, lba, 8, 0, 0, 0, 0, Some(id))
        };
        match r {
            Ok(_) => {
                next_id += 1;
                tally.submitted += 1;
            }
            Err(DriverError::QueueFull { .. }) => {}
            Err(DriverError::QueueGone { qid, epoch }) => {
                assert_eq!(qid, qp.qid());
                assert!(epoch <= ctrl.epoch());
                tally.queue_gone += 1;
                ctrl.wait_ready(READY_TIMEOUT).unwrap();
                if t % 2 == 1 {
                    // Finish what the old queue pair holds, then take a new one.
                    let drain_at = Instant::now();
                    while qp.outstanding() > 0
                        || reap(&qp, &mut tally, &mut ok_after_stop, stopped) > 0
                    {
                        assert!(deadline(drain_at), "thread {t} cannot drain its queue");
                        std::thread::yield_now();
                    }
                    tally.anomalies.extend(qp.take_anomalies());
                    tally.findings += qp.take_findings().len();
                    match qp.delete() {
                        Ok(()) => {}
                        // A reset may have torn it down again meanwhile; it is gone either way.
                        Err(DriverError::QpairDeletion { .. }) => {}
                        Err(e) => panic!("thread {t}: delete: {e}"),
                    }
                    qp = new_qpair(&ctrl, cfg);
                    tally.recreated += 1;
                }
            }
            Err(e) => panic!("thread {t}: submit: {e}"),
        }
        reap(&qp, &mut tally, &mut ok_after_stop, stopped);
    }
    let t0 = Instant::now();
    while tally.completed < tally.submitted {
        assert!(
            t0.elapsed() < READY_TIMEOUT,
            "thread {t}: {} of {} commands never completed",
            tally.submitted - tally.completed,
            tally.submitted
        );
        if reap(&qp, &mut tally, &mut ok_after_stop, true) == 0 {
            std::thread::yield_now();
        }
    }
    tally.anomalies.extend(qp.take_anomalies());
    tally.findings += qp.take_findings().len();
    qp.delete().unwrap();
    tally
}

/// The stress tests' random seed: `PYNVME_SOAK_SEED` (`make soak` gives each round a new
/// one) plus the number of threads.
fn seed(threads: u64) -> u64 {
    std::env::var("PYNVME_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        .wrapping_mul(1000)
        + threads
}

fn soak_events() -> usize {
    std::env::var("PYNVME_SOAK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

/// DMA accesses the simulated SSD was refused (memory not mapped: freed, or never given).
/// The simulator counts DMA faults for the whole process: the tests of this file take turns, so
/// that a fault one test's teardown causes is never counted against another.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn dma_faults() -> u64 {
    nvme_pci::sim::SimBus::global().fault_count()
}

fn stress(threads: u32, events: usize, seed: u64) {
    let (ctrl, ns) = setup();
    let faults0 = dma_faults();
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (ctrl, ns, stop, progress) =
                (ctrl.clone(), ns.clone(), stop.clone(), progress.clone());
            std::thread::spawn(move || io_thread(t, ctrl, ns, stop, progress))
        })
        .collect();
    let mut rng = fastrand::Rng::with_seed(seed);
    let epoch0 = ctrl.epoch();
    for _ in 0..events {
        // A random moment: let some IO happen first.
        let p = progress.load(Ordering::Relaxed);
        let wait = Instant::now();
        while progress.load(Ordering::Relaxed) < p + rng.u64(1..64)
            && wait.elapsed() < Duration::from_millis(200)
        {
            std::thread::sleep(Duration::from_micros(rng.u64(50..500)));
        }
        perform(&ctrl, OPS[rng.usize(0..OPS.len())]);
    }
    assert!(ctrl.epoch() > epoch0 + events as u64 - 1);
    stop.store(true, Ordering::Release);
    let mut total = Tally::default();
    for (t, h) in handles.into_iter().enumerate() {
        let tally = h.join().unwrap_or_else(|_| panic!("thread {t} panicked"));
        assert!(
            tally.duplicates.is_empty(),
            "thread {t}: completed twice: {:?}",
            tally.duplicates
        );
        assert_eq!(
            tally.submitted, tally.completed,
            "thread {t}: commands lost"
        );
        assert!(
            tally.failed.is_empty(),
            "thread {t}: failures: {:?}",
            tally.failed
        );
        assert!(
            tally.anomalies.is_empty(),
            "thread {t}: false device warnings: {:?}",
            tally.anomalies
        );
        assert_eq!(tally.findings, 0, "thread {t}: false miscompares");
        total.submitted += tally.submitted;
        total.aborted += tally.aborted;
        total.queue_gone += tally.queue_gone;
        total.recreated += tally.recreated;
    }
    assert!(ctrl.take_anomalies().is_empty());
    assert_eq!(dma_faults(), faults0, "the device reached freed memory");
    eprintln!(
        "{threads} threads, {events} events: {} commands, {} aborted by the host, {} submissions \
         refused as queue gone, {} queue pairs re-created by their thread",
        total.submitted, total.aborted, total.queue_gone, total.recreated
    );
}

#[test]
fn one_thread_through_every_lifecycle_event() {
    let _serial = serial();
    stress(1, soak_events(), seed(1));
}

#[test]
fn four_threads_through_every_lifecycle_event() {
    let _serial = serial();
    stress(4, soak_events(), seed(4));
}

#[test]
fn sixteen_threads_through_every_lifecycle_event() {
    let _serial = serial();
    stress(16, soak_events(), seed(16));
}

#[test]
fn every_event_starts_a_new_epoch_and_counts() {
    let _serial = serial();
    let (ctrl, _ns) = setup();
    assert_eq!(ctrl.state(), State::Ready);
    let mut last = ctrl.epoch();
    for op in OPS {
        perform(&ctrl, op);
        assert!(ctrl.epoch() > last, "{op:?} did not change the epoch");
        last = ctrl.epoch();
    }
    let ev = ctrl.events();
    for (e, n) in [
        (Event::Flr, 1),
        (Event::HotReset, 1),
        (Event::CleanPowerOff, 1),
        (Event::DirtyPowerOff, 1),
        (Event::PowerOn, 2),
        (Event::ControllerReset, 6),
    ] {
        assert_eq!(ev.get(&e).copied().unwrap_or(0), n, "{e:?}: {ev:?}");
    }
}

#[test]
fn outstanding_commands_complete_once_with_00_08_at_every_event() {
    let _serial = serial();
    let (ctrl, ns) = setup();
    let faults = ctrl.pci().simulator().unwrap().faults();
    for op in OPS {
        let qp = common::qpair(&ctrl, 16);
        let epoch = qp.epoch();
        // The device holds the reads: they are outstanding when the event comes.
        faults.add(
            nvme_sim::faults::FaultRule::new(
                nvme_sim::faults::FaultMatch::io(2),
                nvme_sim::faults::FaultAction::DropCompletion,
            )
            .times(4),
        );
        let b = common::buffer(4096);
        for i in 0..4 {
            ns.read(&qp, &b, i * 8, 8, 0, 0, 0, 0, Some(i as u32))
                .unwrap();
        }
        // A script's admin command the device holds too, and an AER.
        faults.add(FaultRule::new(FaultMatch::admin(0x0a), FaultAction::DropCompletion).times(1));
        let gf = nvme_driver::commands::get_features(7, 0, 0, 0, 0, 0, 0, 0).unwrap();
        ctrl.submit(gf, None, false, Some(100)).unwrap();
        ctrl.aer(Some(200)).unwrap();
        ctrl.ring_doorbell();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(qp.outstanding(), 4);
        match op {
            Op::Reset => ctrl.reset_begin().unwrap(),
            Op::Flr => ctrl.flr().unwrap(),
            Op::HotReset => ctrl.hot_reset().unwrap(),
            Op::SubsystemReset => assert!(ctrl.subsystem_reset().unwrap()),
            Op::CleanPowerCycle | Op::DirtyPowerCycle => ctrl
                .power_off(
                    matches!(op, Op::CleanPowerCycle),
                    Duration::from_secs(5),
                    PowerSwitch::Backend,
                )
                .unwrap(),
        }
        assert!(!qp.is_alive());
        // The next submission says the queue is gone, with the epoch it belonged to.
        match ns.read(&qp, &b, 0, 1, 0, 0, 0, 0, Some(99)) {
            Err(DriverError::QueueGone { qid, epoch: e }) => {
                assert_eq!((qid, e), (qp.qid(), epoch), "{op:?}")
            }
            r => panic!("{op:?}: submit on a torn-down queue gave {r:?}"),
        }
        let mut got = Vec::new();
        qp.waitdone(4, &mut |c| {
            got.push((c.ctx.unwrap(), c.cqe.status()));
            Ok(())
        })
        .unwrap();
        got.sort_by_key(|g| g.0);
        assert_eq!(
            got,
            (0..4).map(|i| (i, aborted())).collect::<Vec<_>>(),
            "{op:?}"
        );
        // Exactly once: nothing more comes.
        assert!(matches!(
            qp.waitdone(1, &mut |_| Ok(())),
            Err(DriverError::NothingOutstanding { reaped: 0, .. })
        ));
        if matches!(op, Op::CleanPowerCycle | Op::DirtyPowerCycle) {
            assert_eq!(ctrl.state(), State::PoweredOff);
            assert!(matches!(
                Qpair::<common::Ctx>::new(&ctrl, QpairConfig::default()),
                Err(DriverError::NotReady {
                    state: State::PoweredOff
                })
            ));
            ctrl.power_on(PowerSwitch::Backend).unwrap();
        }
        if matches!(op, Op::Reset) {
            ctrl.init_default(None).unwrap();
            ctrl.reset_end().unwrap();
        } else {
            reinit(&ctrl);
        }
        faults.clear();
        // The script's admin command completes once, 00/08, when delivered after the init
        // function; the AER ends silently.
        let mut admin = Vec::new();
        let mut take = |c: nvme_driver::Completion<common::Ctx>| {
            admin.push((c.ctx, c.cqe.status()));
            Ok(())
        };
        assert_eq!(ctrl.deliver_aborted(&mut take).unwrap(), 1, "{op:?}");
        assert_eq!(ctrl.deliver_aborted(&mut take).unwrap(), 0, "{op:?}");
        assert_eq!(admin, vec![(Some(100), aborted())], "{op:?}");
        // The same queue pair works again, in the new epoch, and no warning was raised.
        assert!(qp.is_alive());
        assert_eq!(qp.epoch(), ctrl.epoch());
        ns.read(&qp, &b, 0, 8, 0, 0, 0, 0, Some(7)).unwrap();
        let mut st = None;
        qp.waitdone(1, &mut |c| {
            st = Some(c.cqe.status());
            Ok(())
        })
        .unwrap();
        assert!(st.unwrap().is_success(), "{op:?}: {st:?}");
        assert_eq!(qp.take_anomalies(), Vec::<String>::new(), "{op:?}");
        qp.delete().unwrap();
    }
    assert!(ctrl.take_anomalies().is_empty());
}

#[test]
fn wait_ready_returns_at_ready_and_times_out_otherwise() {
    let _serial = serial();
    let (ctrl, _ns) = setup();
    assert_eq!(ctrl.wait_ready(Duration::ZERO).unwrap(), ctrl.epoch());
    ctrl.flr().unwrap();
    let t0 = Instant::now();
    match ctrl.wait_ready(Duration::from_millis(50)) {
        Err(DriverError::NotReady { state }) => assert_eq!(state, State::NeedsInit),
        r => panic!("{r:?}"),
    }
    assert!(t0.elapsed() >= Duration::from_millis(50));
    let waiter = {
        let ctrl = ctrl.clone();
        std::thread::spawn(move || ctrl.wait_ready(READY_TIMEOUT))
    };
    std::thread::sleep(Duration::from_millis(20));
    reinit(&ctrl);
    assert_eq!(waiter.join().unwrap().unwrap(), ctrl.epoch());
}

#[test]
fn a_power_cycle_keeps_the_power_off_as_long_as_asked() {
    let _serial = serial();
    let (ctrl, _ns) = setup();
    let t0 = Instant::now();
    let off = ctrl
        .power_cycle(
            false,
            Some(Duration::from_millis(300)),
            PowerSwitch::Backend,
            PowerSwitch::Backend,
        )
        .unwrap();
    assert!(off >= Duration::from_millis(300), "{off:?}");
    assert!(t0.elapsed() >= Duration::from_millis(300));
    reinit(&ctrl);
}

#[test]
fn a_custom_power_switch_is_the_one_used() {
    let _serial = serial();
    let (ctrl, _ns) = setup();
    let mut calls = Vec::new();
    ctrl.power_off(
        false,
        Duration::from_secs(1),
        PowerSwitch::Custom(&mut || {
            calls.push("off");
            Ok(())
        }),
    )
    .unwrap();
    assert_eq!(ctrl.state(), State::PoweredOff);
    ctrl.power_on(PowerSwitch::Custom(&mut || {
        calls.push("on");
        Ok(())
    }))
    .unwrap();
    assert_eq!(calls, ["off", "on"]);
    assert_eq!(ctrl.state(), State::NeedsInit);
    reinit(&ctrl);
}

#[test]
fn a_surprise_removal_is_gone_and_a_reset_brings_it_back() {
    let _serial = serial();
    let (ctrl, _ns) = setup();
    let qp = common::qpair(&ctrl, 8);
    let faults = ctrl.pci().simulator().unwrap().faults();
    faults.surprise_removal();
    // The host finds out when a reset cannot disable it.
    let e = ctrl.reset(&mut || ctrl.init_default(None)).unwrap_err();
    assert!(
        matches!(e.root(), DriverError::DeviceGone { register: 0x1c, .. }),
        "{e}"
    );
    assert_eq!(ctrl.state(), State::Gone);
    assert!(matches!(
        Qpair::<common::Ctx>::new(&ctrl, QpairConfig::default()),
        Err(DriverError::NotReady { state: State::Gone })
    ));
    faults.reinsert();
    reinit(&ctrl);
    assert!(qp.is_alive());
    ctrl.surprise_removal();
    assert_eq!(ctrl.state(), State::Gone);
    assert!(!qp.is_alive());
    reinit(&ctrl);
    assert!(qp.is_alive());
}

#[test]
fn a_late_completion_into_a_torn_down_queue_is_ignored_silently() {
    let _serial = serial();
    let (ctrl, ns) = setup();
    let qp = common::qpair(&ctrl, 8);
    let faults = ctrl.pci().simulator().unwrap().faults();
    // The device answers the read 100 ms late: after the host tore the queue down.
    faults.add(
        nvme_sim::faults::FaultRule::new(
            nvme_sim::faults::FaultMatch::io(2),
            nvme_sim::faults::FaultAction::Delay(Duration::from_millis(100)),
        )
        .times(1),
    );
    let b = common::buffer(4096);
    ns.read(&qp, &b, 0, 8, 0, 0, 0, 0, Some(1)).unwrap();
    std::thread::sleep(Duration::from_millis(10));
    ctrl.surprise_removal();
    std::thread::sleep(Duration::from_millis(200));
    let mut got = Vec::new();
    qp.waitdone(1, &mut |c| {
        got.push(c.cqe.status());
        Ok(())
    })
    .unwrap();
    assert_eq!(got, [aborted()]);
    reinit(&ctrl);
    ns.read(&qp, &b, 0, 8, 0, 0, 0, 0, Some(2)).unwrap();
    qp.waitdone(1, &mut |c| {
        assert!(c.cqe.status().is_success());
        Ok(())
    })
    .unwrap();
    assert_eq!(qp.take_anomalies(), Vec::<String>::new());
    faults.clear();
}

#[test]
fn a_torn_down_qpair_is_deleted_without_the_device_and_its_id_is_free_again() {
    let _serial = serial();
    let (ctrl, _ns) = setup();
    let qp = common::qpair(&ctrl, 8);
    let qid = qp.qid();
    ctrl.power_off(false, Duration::from_secs(1), PowerSwitch::Backend)
        .unwrap();
    // The admin queue is gone too: deletion cannot and need not ask the device.
    qp.delete().unwrap();
    ctrl.power_on(PowerSwitch::Backend).unwrap();
    reinit(&ctrl);
    assert!(!qp.is_alive(), "a deleted qpair is not re-created");
    let again = Qpair::<common::Ctx>::new(
        &ctrl,
        QpairConfig {
            sqid: Some(qid),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(again.qid(), qid);
    again.delete().unwrap();
}

#[test]
fn only_the_init_function_creates_queue_pairs_during_a_reset() {
    let _serial = serial();
    let (ctrl, _ns) = setup();
    let mut inner = None;
    ctrl.reset(&mut || {
        ctrl.init_default(None)?;
        assert_eq!(ctrl.state(), State::Initializing);
        // Another thread is told to wait ...
        let other = {
            let ctrl = ctrl.clone();
            std::thread::spawn(move || {
                Qpair::<common::Ctx>::new(&ctrl, QpairConfig::default()).map(|_| ())
            })
        };
        match other.join().unwrap() {
            Err(DriverError::NotReady {
                state: State::Initializing,
            }) => {}
            r => panic!("{r:?}"),
        }
        // ... the init function's own thread may.
        inner = Some(Qpair::<common::Ctx>::new(&ctrl, QpairConfig::default())?);
        Ok(())
    })
    .unwrap();
    let qp = inner.unwrap();
    assert!(qp.is_alive());
    assert_eq!(qp.epoch(), ctrl.epoch());
    qp.delete().unwrap();
}

#[test]
fn lifecycle_operations_from_several_threads_take_turns() {
    let _serial = serial();
    let (ctrl, ns) = setup();
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let io = {
        let (ctrl, ns, stop, progress) = (ctrl.clone(), ns.clone(), stop.clone(), progress.clone());
        std::thread::spawn(move || io_thread(0, ctrl, ns, stop, progress))
    };
    let resetters: Vec<_> = (0..3u64)
        .map(|t| {
            let ctrl = ctrl.clone();
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t);
                for _ in 0..4 {
                    // Each operation with its controller reset, whole: another thread's
                    // operations wait.
                    let _turn = ctrl.lifecycle_lock();
                    perform(&ctrl, OPS[rng.usize(0..OPS.len())]);
                }
            })
        })
        .collect();
    for r in resetters {
        r.join().expect("a lifecycle operation failed");
    }
    assert_eq!(ctrl.state(), State::Ready);
    stop.store(true, Ordering::Release);
    let tally = io.join().unwrap();
    assert_eq!(tally.submitted, tally.completed);
    assert!(tally.duplicates.is_empty() && tally.failed.is_empty() && tally.anomalies.is_empty());
}

#[test]
fn a_qpair_dropped_with_io_in_flight_keeps_its_memory_until_the_controller_is_disabled() {
    let _serial = serial();
    let (ctrl, ns) = setup();
    let faults0 = dma_faults();
    let qp = common::qpair(&ctrl, 8);
    // The device answers 100 ms late, into the memory of a qpair nobody holds any more.
    ctrl.pci().simulator().unwrap().faults().add(
        FaultRule::new(
            FaultMatch::io(2),
            FaultAction::Delay(Duration::from_millis(100)),
        )
        .times(1),
    );
    let b = common::buffer(4096);
    ns.read(&qp, &b, 0, 8, 0, 0, 0, 0, Some(1)).unwrap();
    drop(b);
    drop(qp);
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(dma_faults(), faults0, "the device wrote into freed memory");
    reinit(&ctrl);
}

#[test]
fn the_default_init_called_directly_after_an_event_brings_the_queue_pairs_back() {
    let _serial = serial();
    let (ctrl, ns) = setup();
    let qp = common::qpair(&ctrl, 8);
    ctrl.hot_reset().unwrap();
    assert!(!qp.is_alive());
    ctrl.init_default(None).unwrap();
    assert_eq!(ctrl.state(), State::Ready);
    assert!(qp.is_alive());
    let b = common::buffer(4096);
    ns.read(&qp, &b, 0, 8, 0, 0, 0, 0, Some(1)).unwrap();
    qp.waitdone(1, &mut |c| {
        assert!(c.cqe.status().is_success());
        Ok(())
    })
    .unwrap();
    qp.delete().unwrap();
}
