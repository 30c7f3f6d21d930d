//! The driver's errors. A failing device status is not an error: it is a completion, reported as
//! a warning by the layer above. Errors are what a script did wrong, or what the host could not do.
//!
//! Every variant that a caller may act on carries its context as fields (queue id, epoch,
//! controller state ...), so no caller needs to look into a message: a thread whose queue went
//! away matches [`DriverError::QueueGone`], waits with [`crate::Controller::wait_ready`] and
//! submits again (or creates a new queue pair).

use crate::lifecycle::State;
use nvme_pci::PciError;
use std::time::Duration;

/// "admin" for queue 0, "io" otherwise: pynvme's words in its submission errors.
fn kind(qid: &u16) -> &'static str {
    if *qid == 0 {
        "admin"
    } else {
        "io"
    }
}

/// Everything the driver can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// An argument outside what is allowed: names the argument and says what is allowed.
    #[error("{arg}: {msg}")]
    InvalidArgument {
        /// The argument's name as the script passes it.
        arg: &'static str,
        /// What is wrong and what is allowed.
        msg: String,
    },
    /// A request the host cannot carry out safely (DMA outside a buffer, a transfer the driver
    /// cannot describe); unlike [`DriverError::InvalidArgument`] this is about the host's own
    /// safety, never about what the NVMe spec allows (the device judges that).
    #[error("{arg}: {msg} (refused by the host: it would be unsafe for the host, not only against the spec)")]
    HostUnsafe {
        /// The argument's name as the script passes it.
        arg: &'static str,
        /// Why the host cannot do it.
        msg: String,
    },
    /// Bytes or entries `start..end` of `what` are not all inside `0..len` (a single index
    /// `i` is the range `i..i + 1`).
    #[error("{what} {} out of range 0..{len}", if *end == *start + 1 { format!("index {start}") } else { format!("range {start}..{end}") })]
    OutOfRange {
        /// What was indexed, e.g. "buffer", "SQ".
        what: &'static str,
        /// First index asked for.
        start: u64,
        /// One past the last index asked for.
        end: u64,
        /// Size of `what`.
        len: u64,
    },
    /// Controller initialisation failed at `step` (pynvme's NvmeEnumerateError), with what
    /// made it fail when that is an error of its own (a command's status, a timeout ...).
    #[error("{step}{}", source.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Enumerate {
        /// What the host was doing, e.g. "fail to init admin queue".
        step: &'static str,
        /// Why it failed, when that is more than the step's own words.
        #[source]
        source: Option<Box<DriverError>>,
    },
    /// A command the driver sent for itself (identify during init, queue deletion ...)
    /// completed with a failing status.
    #[error("{what} completed with status {status}")]
    CommandFailed {
        /// The command, e.g. "identify controller".
        what: &'static str,
        /// Its status.
        status: nvme_spec::Status,
    },
    /// A queue pair with a non-zero priority class `prio` on a controller whose arbitration is
    /// not weighted round robin: CC.AMS is `ams`, not 1 (pynvme refuses this too; a metamode
    /// `IOSQ` sends any QPRIO to the device).
    #[error("qpair create fail: prio {prio} needs weighted round robin arbitration (CC.AMS = 1, it is {ams})")]
    PriorityWithoutWrr {
        /// The priority class asked for.
        prio: u8,
        /// CC.AMS as read.
        ams: u8,
    },
    /// The host could not allocate `bytes` of DMA memory for `what`.
    #[error("memory alloc fail, {what}: {bytes} bytes: {source}")]
    Alloc {
        /// What the memory was for, e.g. "ioworker buffer pool".
        what: &'static str,
        /// Bytes asked for.
        bytes: usize,
        /// The PCI layer's error.
        #[source]
        source: PciError,
    },
    /// The host could not start a thread for `what`.
    #[error("cannot start {what}: {source}")]
    Spawn {
        /// What the thread was for, e.g. "an ioworker thread".
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// No IO queue id for a new queue pair: `want` is taken or outside 1..=`max`, or (`want`
    /// None) all `max` queues the controller allocated are in use.
    #[error("qpair create fail: {}", match want { Some(q) => format!("sqid {q} is not free or not in 1..={max}"), None => format!("all {max} IO queues are in use") })]
    QueueIdUnavailable {
        /// The queue id asked for, if any.
        want: Option<u16>,
        /// IO queues the controller allocated.
        max: u16,
    },
    /// The device refused to create queue `qid`: `what` ("create I/O CQ" or "create I/O SQ")
    /// completed with `status`.
    #[error("qpair create fail: {what} completed with status {status}")]
    QueueCreateRefused {
        /// The queue id.
        qid: u16,
        /// The admin command that failed.
        what: &'static str,
        /// Its status.
        status: nvme_spec::Status,
    },
    /// Deleting IO queue `qid` failed at its `what` ("SQ" or "CQ").
    #[error("delete I/O {what} {qid}: {source}")]
    QpairDeletion {
        /// The queue id.
        qid: u16,
        /// "SQ" or "CQ".
        what: &'static str,
        /// The deletion command's failing status ([`DriverError::CommandFailed`]) or the error
        /// that kept it from completing.
        #[source]
        source: Box<DriverError>,
    },
    /// Namespace `nsid` could not be opened: Identify Namespace failed, or it is not active.
    #[error("namespace {nsid}: {}", match source { Some(e) => e.to_string(), None => "not active (NSZE is 0)".to_string() })]
    NamespaceCreation {
        /// The namespace id.
        nsid: u32,
        /// Identify Namespace's failure; `None` when the namespace is not active.
        #[source]
        source: Option<Box<DriverError>>,
    },
    /// CSTS.SHST did not report shutdown complete within `waited` (pynvme's text).
    #[error("csts.shst timeout")]
    ShutdownTimeout {
        /// How long the host waited.
        waited: Duration,
    },
    /// The queue has no free slot: `outstanding` commands fill a queue of `entries` entries.
    /// Reap completions (`waitdone`/`poll`) and submit again.
    #[error("error in submitting {} commands: queue {qid} is full: {outstanding} commands outstanding in a queue of {entries} entries", kind(qid))]
    QueueFull {
        /// Queue id (0: admin).
        qid: u16,
        /// Commands outstanding.
        outstanding: usize,
        /// Entries of the queue.
        entries: u16,
    },
    /// The queue no longer exists on the device: it was deleted, or a controller reset, FLR, hot
    /// reset, subsystem reset or power loss tore it down. `epoch` is the controller epoch the
    /// queue belonged to. Its outstanding commands completed with 00/08. Wait for
    /// [`State::Ready`] ([`crate::Controller::wait_ready`]): a reset re-creates the controller's
    /// queue pairs in place, so the same queue pair works again (unless it was deleted).
    #[error("error in submitting {} commands: queue {qid} is gone (controller epoch {epoch}): deleted, or torn down by a reset or a power loss; wait until the controller is ready and submit again", kind(qid))]
    QueueGone {
        /// Queue id (0: admin).
        qid: u16,
        /// The controller epoch the queue belonged to.
        epoch: u64,
    },
    /// The controller is not in a state that allows the request (being reset, powered off,
    /// gone, or waiting for its initialisation).
    #[error("the controller is not ready: it is {state}")]
    NotReady {
        /// The controller's state when the request was refused.
        state: State,
    },
    /// `waitdone` asked for more completions than can come: nothing is outstanding.
    #[error("waitdone({expected}): {reaped} {} reaped{} and none is outstanding", if *qid == 0 { "admin commands" } else { "commands" }, if *qid == 0 { String::new() } else { format!(" on qpair {qid}") })]
    NothingOutstanding {
        /// Queue id (0: admin).
        qid: u16,
        /// Completions asked for.
        expected: usize,
        /// Completions delivered before the wait ended.
        reaped: usize,
    },
    /// `waitdone` called again from a completion callback.
    #[error("cannot re-entry waitdone() functions which may be caused by waitdone in callback functions, {0}")]
    Reentry(u16),
    /// The host gave up waiting for `what` after `waited`.
    #[error("{what}: timeout after {waited:?}")]
    Timeout {
        /// What the host waited for.
        what: String,
        /// How long it waited.
        waited: Duration,
    },
    /// The device does not answer on the bus any more: BAR0 register `register` read all ones
    /// while the host was doing `during`.
    #[error("the device does not respond: register {register:#x} reads 0xffffffff ({during})")]
    DeviceGone {
        /// What the host was doing, e.g. "register read", "controller reset".
        during: &'static str,
        /// The register's offset in BAR0.
        register: u32,
    },
    /// A lifecycle operation (reset, FLR, power cycle ...) failed at one of its steps.
    #[error("{op} failed: {source}")]
    Lifecycle {
        /// The operation, e.g. "controller reset".
        op: &'static str,
        /// What failed.
        #[source]
        source: Box<DriverError>,
    },
    /// An IO generator's thread panicked (a bug of the driver) with `message`.
    #[error("the ioworker thread panicked: {message}")]
    WorkerPanicked {
        /// The panic's message.
        message: String,
    },
    /// A wait was interrupted on request (Ctrl-C); commands stay outstanding.
    #[error("the wait was interrupted")]
    Interrupted,
    /// A completion callback of the script failed; the caller holds the script's own error.
    #[error("a completion callback raised an exception")]
    Callback,
    /// The PCI layer failed.
    #[error(transparent)]
    Pci(#[from] PciError),
}

impl DriverError {
    /// A controller initialisation failure at `step`, caused by `source` if given.
    pub fn enumerate(step: &'static str, source: Option<DriverError>) -> DriverError {
        DriverError::Enumerate {
            step,
            source: source.map(Box::new),
        }
    }

    /// An invalid-argument error.
    pub fn invalid(arg: &'static str, msg: impl Into<String>) -> DriverError {
        DriverError::InvalidArgument {
            arg,
            msg: msg.into(),
        }
    }

    /// A request refused because it would be unsafe for the host.
    pub fn unsafe_for_host(arg: &'static str, msg: impl Into<String>) -> DriverError {
        DriverError::HostUnsafe {
            arg,
            msg: msg.into(),
        }
    }

    /// Fails with [`DriverError::OutOfRange`] unless `start..end` is inside `0..len`.
    pub fn check_range(what: &'static str, start: u64, end: u64, len: u64) -> Result<()> {
        if start > end || end > len {
            return Err(DriverError::OutOfRange {
                what,
                start,
                end,
                len,
            });
        }
        Ok(())
    }

    /// Wraps `self` as the failure of lifecycle operation `op`.
    pub fn during(self, op: &'static str) -> DriverError {
        match self {
            // Already says which operation failed.
            e @ DriverError::Lifecycle { .. } => e,
            e => DriverError::Lifecycle {
                op,
                source: Box::new(e),
            },
        }
    }

    /// The error at the root of a [`DriverError::Lifecycle`] chain (itself otherwise).
    pub fn root(&self) -> &DriverError {
        match self {
            DriverError::Lifecycle { source, .. } => source.root(),
            e => e,
        }
    }
}

/// Result with [`DriverError`].
pub type Result<T, E = DriverError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn init_failures_keep_their_cause_as_a_source() {
        let status = nvme_spec::Status::new(0, 2);
        let e = DriverError::enumerate(
            "init queues",
            Some(DriverError::CommandFailed {
                what: "get features number of queues",
                status,
            }),
        );
        assert_eq!(
            e.to_string(),
            "init queues: get features number of queues completed with status 00/02"
        );
        let cause = e.source().expect("a source");
        assert_eq!(
            cause.to_string(),
            "get features number of queues completed with status 00/02"
        );
        match e {
            DriverError::Enumerate {
                source: Some(c), ..
            } => assert!(matches!(*c, DriverError::CommandFailed { status: s, .. } if s == status)),
            e => panic!("{e:?}"),
        }
        let bare = DriverError::enumerate("csts.rdy timeout after setting cc.en", None);
        assert!(bare.source().is_none());
        assert_eq!(bare.to_string(), "csts.rdy timeout after setting cc.en");
    }

    #[test]
    fn a_failed_queue_deletion_names_the_queue_and_its_cause() {
        let e = DriverError::QpairDeletion {
            qid: 3,
            what: "SQ",
            source: Box::new(DriverError::CommandFailed {
                what: "delete I/O queue",
                status: nvme_spec::Status::new(1, 1),
            }),
        };
        assert_eq!(
            e.to_string(),
            "delete I/O SQ 3: delete I/O queue completed with status 01/01"
        );
        assert!(e.source().is_some());
        let ns = DriverError::NamespaceCreation {
            nsid: 5,
            source: None,
        };
        assert_eq!(ns.to_string(), "namespace 5: not active (NSZE is 0)");
    }

    #[test]
    fn ranges_name_what_was_indexed_and_its_size() {
        let e = DriverError::check_range("buffer", 7, 8, 4).unwrap_err();
        assert_eq!(e.to_string(), "buffer index 7 out of range 0..4");
        assert!(matches!(
            e,
            DriverError::OutOfRange {
                what: "buffer",
                start: 7,
                end: 8,
                len: 4
            }
        ));
        let e = DriverError::check_range("buffer", 2, 6, 4).unwrap_err();
        assert_eq!(e.to_string(), "buffer range 2..6 out of range 0..4");
        assert!(DriverError::check_range("buffer", 0, 4, 4).is_ok());
        assert!(DriverError::check_range("buffer", 4, 4, 4).is_ok());
        assert!(DriverError::check_range("buffer", 5, 4, 8).is_err());
        let gone = DriverError::DeviceGone {
            during: "controller reset",
            register: 0x1c,
        };
        assert_eq!(
            gone.to_string(),
            "the device does not respond: register 0x1c reads 0xffffffff (controller reset)"
        );
    }
}
