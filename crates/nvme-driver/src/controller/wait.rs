//! Waiting: the guard against re-entering `waitdone` from a callback, the backoff of every
//! wait loop, and the interrupt check (Ctrl-C) a long wait consults.

use crate::error::{DriverError, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

thread_local! {
    /// Whether this thread is inside a `waitdone` (of any queue): its callbacks run there.
    static IN_WAITDONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks a `waitdone` in progress on one queue and on this thread; refuses re-entry from a
/// completion callback (of any queue, as pynvme does) and a second waiter on the same queue.
pub(crate) struct WaitGuard<'a> {
    queue: &'a AtomicBool,
}

impl<'a> WaitGuard<'a> {
    pub(crate) fn enter(queue: &'a AtomicBool, qid: u16) -> Result<WaitGuard<'a>> {
        if IN_WAITDONE.get() || queue.swap(true, Ordering::Acquire) {
            return Err(DriverError::Reentry(qid));
        }
        IN_WAITDONE.set(true);
        Ok(WaitGuard { queue })
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.queue.store(false, Ordering::Release);
        IN_WAITDONE.set(false);
    }
}

/// Waiting without burning a core forever: spin briefly, then yield, then sleep a little.
pub(crate) fn backoff(spins: &mut u32) -> Result<()> {
    *spins = spins.wrapping_add(1);
    if *spins < 2000 {
        std::hint::spin_loop();
    } else if *spins < 4000 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(50));
        // About every 100 ms of sleeping, ask whether the waiter should give up (Ctrl-C).
        if (*spins - 4000) % 2000 == 1999 && !interrupt_check() {
            return Err(DriverError::Interrupted);
        }
    }
    Ok(())
}

thread_local! {
    /// The check a long wait on this thread consults, installed by [`with_interrupt_check`].
    static INTERRUPT_CHECK: std::cell::RefCell<Option<Box<dyn FnMut() -> bool>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` with `check` consulted about every 100 ms while a wait of this thread sleeps: when it
/// returns false the wait ends with [`DriverError::Interrupted`]. The Python face checks for
/// Ctrl-C there, so a script can be stopped while it waits for a slow or silent device.
pub fn with_interrupt_check<R>(check: impl FnMut() -> bool + 'static, f: impl FnOnce() -> R) -> R {
    let old = INTERRUPT_CHECK.with(|c| c.borrow_mut().replace(Box::new(check)));
    let r = f();
    INTERRUPT_CHECK.with(|c| *c.borrow_mut() = old);
    r
}

fn interrupt_check() -> bool {
    INTERRUPT_CHECK.with(|c| c.borrow_mut().as_mut().is_none_or(|f| f()))
}
