//! `Simulator`: fault injection into the simulated SSD, for tests that prove a script (or the
//! driver) catches a defective drive.

use crate::errors::bad_arg;
use nvme_driver::pci::PciFunction;
use nvme_driver::sim::{FaultAction, FaultId, FaultMatch, FaultRule, Faults};
use nvme_spec::Status;
use parking_lot::Mutex;
use pyo3::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// The simulated SSD behind a `Pcie` (`pcie.sim`; None for a real device): makes it misbehave.
///
/// `inject(action, value, ...)` installs a fault on matching commands and returns its id.
/// Actions and their `value`: "delay" (ms), "drop" (never complete: the host times out),
/// "status" (SCT << 8 | SC to complete with), "flip_bits" (bits flipped in read data),
/// "lost_write", "misdirected_write" (LBA offset), "stale_data", "duplicate_cqe",
/// "wrong_cid" (XOR applied to the CID), "wrong_sqid" (SQ id to post). Matching: `admin`
/// (admin queue instead of IO queues), `opcode`, `queue`, `nsid`, `lba=(start, end)`; `count`
/// limits how many commands are affected, `probability` makes it random.
#[pyclass(module = "nvme._native", name = "Simulator")]
pub struct PySimulator {
    dev: Arc<dyn PciFunction>,
    ids: Mutex<Vec<FaultId>>,
}

impl PySimulator {
    /// The handle, if `dev` is simulated.
    pub fn of(dev: Arc<dyn PciFunction>) -> Option<PySimulator> {
        dev.simulator()?;
        Some(PySimulator {
            dev,
            ids: Mutex::new(Vec::new()),
        })
    }

    fn faults(&self) -> &Faults {
        self.dev.simulator().expect("checked at creation").faults()
    }

    fn id(&self, fault_id: usize) -> PyResult<FaultId> {
        self.ids.lock().get(fault_id).copied().ok_or_else(|| {
            bad_arg(
                "fault_id",
                format!("{fault_id} was not returned by inject()"),
            )
        })
    }
}

fn action(name: &str, value: Option<i64>) -> PyResult<FaultAction> {
    let need = |what: &str| {
        value.ok_or_else(|| bad_arg("value", format!("action '{name}' needs a value: {what}")))
    };
    Ok(match name {
        "delay" => FaultAction::Delay(Duration::from_millis(need("milliseconds")?.max(0) as u64)),
        "drop" => FaultAction::DropCompletion,
        "status" => {
            let v = need("SCT << 8 | SC")?;
            FaultAction::Status(Status::new(((v >> 8) & 7) as u8, v as u8))
        }
        "flip_bits" => FaultAction::FlipBits(need("number of bits")?.clamp(1, u32::MAX as i64) as u32),
        "lost_write" => FaultAction::LostWrite,
        "misdirected_write" => FaultAction::MisdirectedWrite(need("LBA offset")?),
        "stale_data" => FaultAction::StaleData,
        "torn_write" => FaultAction::TornWrite,
        "read_without_data" => FaultAction::ReadWithoutData,
        "duplicate_cqe" => FaultAction::DuplicateCqe,
        "wrong_cid" => FaultAction::WrongCid(need("value XOR-ed into the CID")? as u16),
        "wrong_sqid" => FaultAction::WrongSqid(need("SQ id")? as u16),
        _ => {
            return Err(bad_arg(
                "action",
                format!("'{name}' is not one of delay, drop, status, flip_bits, lost_write, misdirected_write, stale_data, torn_write, read_without_data, duplicate_cqe, wrong_cid, wrong_sqid"),
            ))
        }
    })
}

#[pymethods]
impl PySimulator {
    /// Installs a fault; returns its id (for `hits` and `remove`).
    #[pyo3(signature = (action, value=None, *, admin=false, opcode=None, queue=None, nsid=None, lba=None, count=None, probability=1.0))]
    #[allow(clippy::too_many_arguments)]
    fn inject(
        &self,
        action: &str,
        value: Option<i64>,
        admin: bool,
        opcode: Option<u8>,
        queue: Option<u16>,
        nsid: Option<u32>,
        lba: Option<(u64, u64)>,
        count: Option<u64>,
        probability: f64,
    ) -> PyResult<usize> {
        if !(0.0..=1.0).contains(&probability) {
            return Err(bad_arg(
                "probability",
                format!("{probability} is not 0.0..=1.0"),
            ));
        }
        let on = FaultMatch {
            admin,
            opcode,
            queue,
            nsid,
            lba,
        };
        let mut rule =
            FaultRule::new(on, self::action(action, value)?).with_probability(probability);
        if let Some(n) = count {
            rule = rule.times(n);
        }
        let id = self.faults().add(rule);
        let mut ids = self.ids.lock();
        ids.push(id);
        Ok(ids.len() - 1)
    }

    /// How many commands fault `fault_id` has affected.
    fn hits(&self, fault_id: usize) -> PyResult<u64> {
        Ok(self.faults().hits(self.id(fault_id)?))
    }

    /// Removes fault `fault_id`; False if it was gone already.
    fn remove(&self, fault_id: usize) -> PyResult<bool> {
        Ok(self.faults().remove(self.id(fault_id)?))
    }

    /// Removes every fault.
    fn clear(&self) {
        self.faults().clear()
    }

    /// Controller fatal status: CSTS.CFS is set and the controller stops processing commands.
    fn controller_fatal(&self) {
        self.faults().controller_fatal()
    }

    /// A firmware crash: the device's own code fails mid-work; the controller reports
    /// Controller Fatal Status (CSTS.CFS) and works again after `Controller.reset()`.
    fn firmware_crash(&self) {
        self.faults().firmware_crash()
    }

    /// Surprise removal: every register and config read returns all ones, no more DMA.
    fn surprise_removal(&self) {
        self.faults().surprise_removal()
    }

    /// Undoes a surprise removal (the device comes back as after a conventional reset).
    fn reinsert(&self) {
        self.faults().reinsert()
    }

    /// Removes the simulated SSD's power, as a lab's power switch does: what the volatile
    /// write cache held is lost, and an unsafe shutdown is counted unless a shutdown
    /// notification completed. The driver is not told: this is the switch that a
    /// `Subsystem` power callback (or a lab relay) flips while `Subsystem.poweroff()` runs.
    fn power_off(&self, py: Python<'_>) -> PyResult<()> {
        let dev = self.dev.clone();
        py.allow_threads(|| dev.power_off())
            .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))
    }

    /// Restores the simulated SSD's power: it comes up as from a cold boot (see `power_off`).
    fn power_on(&self, py: Python<'_>) -> PyResult<()> {
        let dev = self.dev.clone();
        py.allow_threads(|| dev.power_on())
            .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))
    }

    /// Whether the simulated SSD has power.
    #[getter]
    fn powered(&self) -> bool {
        self.dev.simulator().expect("checked at creation").powered()
    }
}
