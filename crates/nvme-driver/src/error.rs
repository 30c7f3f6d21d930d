//! The driver's errors. A failing device status is not an error: it is a completion, reported as
//! a warning by the layer above. Errors are what a script did wrong, or what the host could not do.

use nvme_pci::PciError;

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
    /// An index outside a buffer or table.
    #[error("{0}")]
    Index(String),
    /// Controller initialisation failed (pynvme's NvmeEnumerateError).
    #[error("{0}")]
    Enumerate(String),
    /// Closing a controller failed (pynvme's NvmeDeletionError).
    #[error("{0}")]
    Deletion(String),
    /// An IO queue pair could not be created.
    #[error("{0}")]
    QpairCreation(String),
    /// An IO queue pair could not be deleted.
    #[error("{0}")]
    QpairDeletion(String),
    /// A namespace could not be opened.
    #[error("{0}")]
    NamespaceCreation(String),
    /// A namespace could not be closed.
    #[error("{0}")]
    NamespaceDeletion(String),
    /// CSTS.SHST did not report shutdown complete in time.
    #[error("{0}")]
    ShutdownTimeout(String),
    /// A command could not be submitted (queue full, queue deleted, controller not ready).
    #[error("{0}")]
    Submit(String),
    /// `waitdone` cannot reap what was asked.
    #[error("{0}")]
    Reap(String),
    /// `waitdone` called again from a completion callback.
    #[error("cannot re-entry waitdone() functions which may be caused by waitdone in callback functions, {0}")]
    Reentry(u16),
    /// The host gave up waiting.
    #[error("{0}")]
    Timeout(String),
    /// The device does not answer on the bus any more (registers read all ones).
    #[error("the device does not respond: {0}")]
    DeviceGone(String),
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
    /// An invalid-argument error.
    pub fn invalid(arg: &'static str, msg: impl Into<String>) -> DriverError {
        DriverError::InvalidArgument {
            arg,
            msg: msg.into(),
        }
    }
}

/// Result with [`DriverError`].
pub type Result<T, E = DriverError> = std::result::Result<T, E>;
