//! The controller's life: one state machine per controller, with an epoch, and the operations
//! that move it (controller reset, PCIe FLR, hot reset, NVM subsystem reset, power off / on /
//! cycle, surprise removal). They are driver operations: the Python face only calls them.
//!
//! ```text
//!              initialize / reset_end                 power_off
//!   NeedsInit ─────────────────────────► Ready ───────────────────► PoweredOff
//!       ▲   ▲                              │                           │
//!       │   └──── flr / hot_reset / nssr ──┤ (Resetting while the      │ power_on
//!       │                                  │  queues are torn down)    ▼
//!       └──────────────────────────────────┼────────────────────── NeedsInit
//!                                          │ reset_begin
//!                                          ▼
//!                                     Initializing (the init function runs) ──reset_end──► Ready
//!   any state ── surprise removal, or registers reading all ones during an operation ──► Gone
//! ```
//!
//! **The epoch** (a `u64`, starting at 0) grows by one at every event that tears the controller's
//! queues down: controller reset, FLR, hot reset, NVM subsystem reset, power off (so at every
//! power cycle), surprise removal. Every queue knows the epoch it was created in
//! ([`crate::Qpair::epoch`]).
//!
//! **What a thread with IO in flight sees** when the controller changes under it:
//!
//! - each of its outstanding commands (those waiting for their LBAs too) completes exactly once,
//!   with status 00/08 (aborted, SQ deletion: the host aborted it), through its own queue's next
//!   `waitdone` or `poll`; a read ended this way is not checked against the data table, a write
//!   ended this way makes its LBAs unknown. On the admin queue, the driver's own synchronous
//!   commands end with 00/08 for their waiters, a script's commands end with 00/08, delivered by
//!   [`Controller::deliver_aborted`] (the Python `Controller.reset()` calls it after its init
//!   function, so they complete during the reset, as in pynvme), and its AERs end silently (no callback, no warning, as pynvme treats
//!   an AER aborted by SQ deletion; the init function sends new ones);
//! - its next `submit` fails with [`DriverError::QueueGone`] (queue id and the queue's epoch)
//!   until the queue is re-created, or with [`DriverError::NotReady`] when it tries to create a
//!   queue pair while the controller is being reset, powered off or gone;
//! - it may wait with [`Controller::wait_ready`]: a controller reset re-creates every queue pair
//!   not deleted, in place (same id and depth, fresh queue memory), so the thread submits again
//!   on the same queue pair, or deletes it and creates a new one;
//! - the driver never reads the ring of a queue it tore down: a completion a device writes there
//!   late is ignored silently, and a re-created queue starts on fresh memory, so it can never
//!   be taken for a duplicate. A completion on a live queue for a CID that is not outstanding
//!   is still reported as device misbehaviour;
//! - the memory the device may still reach (the data of the commands an event ended) is kept
//!   until the device is disabled: a thread may drop its buffers as soon as it gets the 00/08.
//!
//! **Locks.** The lifecycle has three: `serial` (re-entrant) makes whole operations, a reset with
//! its init function included, one at a time whichever threads ask; `ops` serialises the steps
//! of lifecycle operations with the creation and deletion of IO queue pairs (taken after
//! `serial`, never while a queue or admin lock is held), and
//! `state` (the state and epoch, with a condition variable for [`Controller::wait_ready`]) is taken
//! last and held only to read or write them. See the controller's lock order in
//! [`crate::controller`].

use crate::controller::Controller;
use crate::error::{DriverError, Result};
use nvme_spec::regs;
use parking_lot::{Condvar, Mutex, MutexGuard, ReentrantMutex, ReentrantMutexGuard};
use std::time::{Duration, Instant};

/// Where a controller is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Not initialised: just opened, or after an FLR, hot reset, NVM subsystem reset or power
    /// on. A controller reset (or the first initialisation) makes it ready.
    NeedsInit,
    /// A lifecycle operation is tearing the queues down and disabling the controller.
    Resetting,
    /// The initialisation function of a controller reset runs (admin queue, identify,
    /// features); queue pairs may be created.
    Initializing,
    /// Enabled and initialised: IO queues exist and take commands.
    Ready,
    /// The power is off.
    PoweredOff,
    /// The device does not answer (surprise removal): registers read all ones.
    Gone,
}

impl State {
    /// A short name: "needs_init", "resetting", "initializing", "ready", "powered_off", "gone".
    pub fn name(self) -> &'static str {
        match self {
            State::NeedsInit => "needs_init",
            State::Resetting => "resetting",
            State::Initializing => "initializing",
            State::Ready => "ready",
            State::PoweredOff => "powered_off",
            State::Gone => "gone",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::NeedsInit => "not initialised (waiting for a controller reset)",
            State::Resetting => "being reset",
            State::Initializing => "initialising",
            State::Ready => "ready",
            State::PoweredOff => "powered off",
            State::Gone => "gone (the device does not respond)",
        })
    }
}

/// A lifecycle event, as counted by [`Controller::events`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// Controller reset (CC.EN cleared, initialisation, queues re-created).
    ControllerReset,
    /// PCIe function level reset.
    Flr,
    /// PCIe hot reset (secondary bus reset).
    HotReset,
    /// NVM subsystem reset (NSSR).
    SubsystemReset,
    /// Power off after a normal shutdown notification.
    CleanPowerOff,
    /// Power off without shutdown notification (power loss).
    DirtyPowerOff,
    /// Power on.
    PowerOn,
    /// The device was removed while in use.
    SurpriseRemoval,
}

/// The state, the epoch and what waits for them. Owned by the controller.
pub(crate) struct Lifecycle {
    state: Mutex<(State, u64)>,
    changed: Condvar,
    /// The thread running the init function of the current initialisation or reset.
    init_thread: Mutex<Option<std::thread::ThreadId>>,
    /// Serialises lifecycle operations with queue pair creation and deletion.
    ops: Mutex<()>,
    /// Serialises whole lifecycle operations (a reset with its init function included) between
    /// threads; re-entrant, so an init function may itself perform one.
    serial: ReentrantMutex<()>,
}

impl Lifecycle {
    pub(crate) fn new() -> Self {
        Lifecycle {
            state: Mutex::new((State::NeedsInit, 0)),
            changed: Condvar::new(),
            init_thread: Mutex::new(None),
            ops: Mutex::new(()),
            serial: ReentrantMutex::new(()),
        }
    }

    pub(crate) fn get(&self) -> (State, u64) {
        *self.state.lock()
    }

    pub(crate) fn set(&self, s: State) {
        self.state.lock().0 = s;
        self.changed.notify_all();
    }

    /// Enters `s` and starts a new epoch; returns it.
    pub(crate) fn next_epoch(&self, s: State) -> u64 {
        let mut g = self.state.lock();
        g.0 = s;
        g.1 += 1;
        let e = g.1;
        drop(g);
        self.changed.notify_all();
        e
    }

    /// Marks this thread as the one running the init function (`true`), or no thread.
    pub(crate) fn set_init_thread(&self, mine: bool) {
        *self.init_thread.lock() = mine.then(|| std::thread::current().id());
    }

    fn on_init_thread(&self) -> bool {
        *self.init_thread.lock() == Some(std::thread::current().id())
    }

    pub(crate) fn ops(&self) -> MutexGuard<'_, ()> {
        self.ops.lock()
    }

    /// Held for a whole lifecycle operation: one at a time, whichever threads ask.
    pub(crate) fn serial(&self) -> ReentrantMutexGuard<'_, ()> {
        self.serial.lock()
    }

    pub(crate) fn wait_for(
        &self,
        want: State,
        timeout: Duration,
    ) -> std::result::Result<u64, State> {
        let limit = Instant::now() + timeout;
        let mut g = self.state.lock();
        while g.0 != want {
            if self.changed.wait_until(&mut g, limit).timed_out() {
                return if g.0 == want { Ok(g.1) } else { Err(g.0) };
            }
        }
        Ok(g.1)
    }
}

/// Held by [`Controller::lifecycle_lock`]: other threads' lifecycle operations wait.
pub struct LifecycleGuard<'a> {
    _g: ReentrantMutexGuard<'a, ()>,
}

/// How a power off is done.
pub enum PowerSwitch<'a> {
    /// The backend's own power control ([`nvme_pci::PciFunction::power_off`] / `power_on`).
    Backend,
    /// The script's switch (a lab power controller); returns when the power is off / on.
    Custom(&'a mut dyn FnMut() -> Result<()>),
}

impl<C: Clone + Send + 'static> Controller<C> {
    /// The controller's state.
    pub fn state(&self) -> State {
        self.life().get().0
    }

    /// The controller's epoch: grows by one at every controller reset, FLR, hot reset, NVM
    /// subsystem reset, power off and surprise removal.
    pub fn epoch(&self) -> u64 {
        self.life().get().1
    }

    /// Holds off the lifecycle operations of other threads until the guard is dropped, so that
    /// this thread performs several in a row (an FLR, then the controller reset that brings the
    /// controller back) without another thread's operation between them. Re-entrant: this
    /// thread's own operations go on.
    pub fn lifecycle_lock(&self) -> LifecycleGuard<'_> {
        LifecycleGuard {
            _g: self.life().serial(),
        }
    }

    /// Waits until the controller is [`State::Ready`], up to `timeout`; returns the epoch it is
    /// ready in, or [`DriverError::NotReady`] with the state it is still in. A thread whose
    /// queue went away ([`DriverError::QueueGone`]) calls it, then submits again.
    pub fn wait_ready(&self, timeout: Duration) -> Result<u64> {
        self.life()
            .wait_for(State::Ready, timeout)
            .map_err(|state| DriverError::NotReady { state })
    }

    /// Fails with [`DriverError::NotReady`] unless queue pairs can be created now: the
    /// controller is ready, or initialising and this is the thread running the init function.
    pub(crate) fn check_can_create_queues(&self) -> Result<u64> {
        let (s, e) = self.life().get();
        match s {
            State::Ready => Ok(e),
            State::Initializing if self.life().on_init_thread() => Ok(e),
            state => Err(DriverError::NotReady { state }),
        }
    }

    /// Runs `init` as the init function of this thread (it may create queue pairs).
    fn run_init(&self, init: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        self.life().set_init_thread(true);
        let r = init();
        self.life().set_init_thread(false);
        r
    }

    /// Runs the controller's first initialisation: `init` is the default
    /// ([`Controller::init_default`]) or the script's own. Ready when it succeeds.
    pub fn initialize(&self, init: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        let _serial = self.life().serial();
        self.life().set(State::Initializing);
        match self.run_init(init) {
            Ok(()) => {
                self.life().set(State::Ready);
                Ok(())
            }
            Err(e) => {
                self.life().set(State::NeedsInit);
                Err(e)
            }
        }
    }

    /// Controller reset: [`Controller::reset_begin`], the initialisation `init` (the default
    /// one or the script's), [`Controller::reset_end`]. Outstanding commands complete with
    /// 00/08; queue pairs not deleted are re-created in place. Ready when it returns `Ok`;
    /// if `init` fails the controller stays [`State::NeedsInit`].
    pub fn reset(&self, init: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        let _serial = self.life().serial();
        self.reset_begin()?;
        if let Err(e) = self.run_init(init) {
            self.life().set(State::NeedsInit);
            return Err(e);
        }
        self.reset_end()
    }

    /// First half of a controller reset: a new epoch begins; every IO queue pair ends its
    /// outstanding commands with 00/08 (each through its own queue's next `waitdone`/`poll`),
    /// a script's admin commands end with 00/08 for [`Controller::deliver_aborted`] (AERs
    /// silently), CC.EN is cleared and timeouts return to their
    /// defaults. The controller is then [`State::Initializing`]: the caller runs the init
    /// function (default or the script's) and [`Controller::reset_end`].
    pub fn reset_begin(&self) -> Result<()> {
        let _serial = self.life().serial();
        let _ops = self.life().ops();
        self.life().next_epoch(State::Resetting);
        self.event(Event::ControllerReset);
        self.teardown();
        self.pci().bar_write32(0, regs::CC as u64, 0);
        if !self.wait_csts(false, None) {
            return Err(self.failed("csts.rdy timeout after clearing cc.en"));
        }
        // The disabled controller has no IO queue left that could use parked memory.
        self.clear_parked();
        self.life().set(State::Initializing);
        Ok(())
    }

    /// Second half of a controller reset: re-creates on the device every IO queue pair torn
    /// down and not deleted (same qid, depth and attributes, fresh memory), as PyNVMe3's
    /// `reset(create_qpair=True)`; then the controller is [`State::Ready`].
    pub fn reset_end(&self) -> Result<()> {
        let _serial = self.life().serial();
        let _ops = self.life().ops();
        let epoch = self.epoch();
        for qp in self.live_qpairs() {
            if !qp.is_alive() {
                if let Err(e) = qp.recreate(epoch) {
                    self.life().set(State::NeedsInit);
                    return Err(e.during("controller reset"));
                }
            }
        }
        self.life().set(State::Ready);
        Ok(())
    }

    /// PCIe function level reset. Queues are torn down (outstanding commands complete with
    /// 00/08); the controller is [`State::NeedsInit`] until a controller reset.
    pub fn flr(&self) -> Result<()> {
        let _serial = self.life().serial();
        self.link_event(Event::Flr, "function level reset", |pci| {
            pci.flr().map(|()| true)
        })
    }

    /// PCIe hot reset (secondary bus reset), as [`Controller::flr`].
    pub fn hot_reset(&self) -> Result<()> {
        let _serial = self.life().serial();
        self.link_event(Event::HotReset, "hot reset", |pci| {
            pci.hot_reset().map(|()| true)
        })
    }

    /// NVM subsystem reset (writes "NVMe" to NSSR), as [`Controller::flr`]; `Ok(false)` (and
    /// nothing happens) if CAP.NSSRS says it is not supported.
    pub fn subsystem_reset(&self) -> Result<bool> {
        let _serial = self.life().serial();
        if !self.cap().nssrs() {
            return Ok(false);
        }
        let limit = self.ready_timeout();
        self.link_event(Event::SubsystemReset, "NVM subsystem reset", |pci| {
            // CSTS.NSSRO (write 1 to clear) tells when the reset took effect: until then the
            // device may still move data of the commands it was processing.
            pci.bar_write32(0, regs::CSTS as u64, regs::csts::NSSRO);
            pci.bar_write32(0, regs::NSSR as u64, regs::NSSR_MAGIC);
            let t0 = Instant::now();
            loop {
                let csts = pci.bar_read32(0, regs::CSTS as u64);
                if csts != u32::MAX && csts & regs::csts::NSSRO != 0 {
                    return Ok(true);
                }
                if t0.elapsed() > limit {
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        })?;
        Ok(true)
    }

    fn link_event(
        &self,
        ev: Event,
        op: &'static str,
        act: impl FnOnce(&dyn nvme_pci::PciFunction) -> std::result::Result<bool, nvme_pci::PciError>,
    ) -> Result<()> {
        let _ops = self.life().ops();
        self.life().next_epoch(State::Resetting);
        self.event(ev);
        self.teardown();
        match act(self.pci().as_ref()) {
            Err(e) => {
                self.life().set(State::NeedsInit);
                return Err(DriverError::Pci(e).during(op));
            }
            // The device is reset: it no longer reaches the memory of the torn-down commands.
            Ok(true) => self.clear_parked(),
            // Not known to be: that memory waits for the next disable.
            Ok(false) => {}
        }
        self.life().set(State::NeedsInit);
        Ok(())
    }

    /// Powers the device off: queues are torn down (outstanding commands complete with 00/08),
    /// then with `clean` a normal shutdown notification is sent and waited for (up to
    /// `shutdown_timeout`), then the power is switched off by `switch`. The controller is
    /// [`State::PoweredOff`] until [`Controller::power_on`].
    pub fn power_off(
        &self,
        clean: bool,
        shutdown_timeout: Duration,
        switch: PowerSwitch<'_>,
    ) -> Result<()> {
        let _serial = self.life().serial();
        let _ops = self.life().ops();
        self.life().next_epoch(State::Resetting);
        self.event(if clean {
            Event::CleanPowerOff
        } else {
            Event::DirtyPowerOff
        });
        self.teardown();
        let shut = if clean {
            self.shutdown_notify(false, shutdown_timeout)
        } else {
            Ok(())
        };
        let off = match switch {
            PowerSwitch::Backend => self.pci().power_off().map_err(DriverError::Pci),
            PowerSwitch::Custom(f) => f(),
        };
        self.clear_parked();
        // What the write cache held may be lost: verification stops checking the writes no
        // flush or completed shutdown made durable (a clean power off's shutdown did that for
        // everything completed before it).
        self.power_lost();
        self.life().set(State::PoweredOff);
        off.map_err(|e| e.during("power off"))?;
        shut
    }

    /// Powers the device on (by `switch`); the controller is [`State::NeedsInit`] until a
    /// controller reset.
    pub fn power_on(&self, switch: PowerSwitch<'_>) -> Result<()> {
        let _serial = self.life().serial();
        let _ops = self.life().ops();
        self.event(Event::PowerOn);
        let on = match switch {
            PowerSwitch::Backend => self.pci().power_on().map_err(DriverError::Pci),
            PowerSwitch::Custom(f) => f(),
        };
        self.life().set(State::NeedsInit);
        on.map_err(|e| e.during("power on"))
    }

    /// Power off ([`Controller::power_off`], by `off_switch`), `off_time` with the power off,
    /// power on ([`Controller::power_on`], by `on_switch`). The off time is honoured as given on
    /// every backend; `None` takes the backend's default
    /// ([`nvme_pci::PciFunction::default_power_off_time`]: 15 s, 100 ms on the simulated SSD).
    /// Returns how long the power was off.
    pub fn power_cycle(
        &self,
        clean: bool,
        off_time: Option<Duration>,
        off_switch: PowerSwitch<'_>,
        on_switch: PowerSwitch<'_>,
    ) -> Result<Duration> {
        let _serial = self.life().serial();
        let off_time = off_time.unwrap_or_else(|| self.pci().default_power_off_time());
        self.power_off(clean, Duration::from_secs(10), off_switch)?;
        let t0 = Instant::now();
        // Sleeps may end early on a signal: the off time is a floor.
        while t0.elapsed() < off_time {
            std::thread::sleep(off_time - t0.elapsed());
        }
        self.power_on(on_switch)?;
        Ok(t0.elapsed())
    }

    /// The device was removed while in use (the host learned it, or a test removed the
    /// simulated SSD): queues are torn down (outstanding commands complete with 00/08) and the
    /// controller is [`State::Gone`] until a controller reset finds it again.
    pub fn surprise_removal(&self) {
        let _serial = self.life().serial();
        let _ops = self.life().ops();
        self.life().next_epoch(State::Gone);
        self.event(Event::SurpriseRemoval);
        self.teardown();
    }

    /// The error of a step that failed during a lifecycle operation: the device is gone if its
    /// registers read all ones (the controller becomes [`State::Gone`]), else the controller
    /// needs a controller reset.
    fn failed(&self, what: &'static str) -> DriverError {
        if self.csts() == u32::MAX {
            self.life().set(State::Gone);
            DriverError::DeviceGone {
                during: what,
                register: nvme_spec::regs::CSTS,
            }
        } else {
            self.life().set(State::NeedsInit);
            DriverError::enumerate(what, None)
        }
    }
}
