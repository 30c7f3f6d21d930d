//! Namespaces: identify data, LBA format, data verification state, and the NVM commands sent to
//! one namespace.

use crate::buffer::Buffer;
use crate::commands;
use crate::controller::Controller;
use crate::error::{DriverError, Result};
use crate::qpair::Qpair;
use crate::queue::DataRef;
use crate::verify::NsVerify;
use nvme_spec::cmd::nvm;
use nvme_spec::identify::IdentifyNamespace;
use nvme_spec::Sqe;
use parking_lot::Mutex;
use std::sync::Arc;
use zerocopy::FromBytes;

/// One namespace of a controller.
pub struct Namespace<C: Clone + Send + 'static> {
    ctrl: Arc<Controller<C>>,
    nsid: u32,
    id: Mutex<Box<IdentifyNamespace>>,
}

impl<C: Clone + Send + 'static> Namespace<C> {
    /// Opens namespace `nsid`: reads its Identify Namespace data; fails if it is not active.
    /// Data verification covers its first `nlba_verify` LBAs (0: all), with 1-byte digests (or
    /// those of the table the namespace has); its state is shared with every other object of
    /// the same namespace.
    pub fn new(ctrl: &Arc<Controller<C>>, nsid: u32, nlba_verify: u64) -> Result<Namespace<C>> {
        Self::with_crc_size(ctrl, nsid, nlba_verify, None)
    }

    /// As [`Namespace::new`], with digests of `crc_size` bytes per LBA (1, 2 or 4). A width other
    /// than that of the namespace's table starts a new, empty table of that width (read checking
    /// and stamping stay as they were), shared by every object of the namespace; `None` keeps
    /// the table's width (1 for a new table).
    pub fn with_crc_size(
        ctrl: &Arc<Controller<C>>,
        nsid: u32,
        nlba_verify: u64,
        crc_size: Option<usize>,
    ) -> Result<Namespace<C>> {
        if nsid == 0 || nsid == u32::MAX {
            return Err(DriverError::invalid(
                "nsid",
                format!("{nsid:#x} is not a namespace id (1..=NN)"),
            ));
        }
        let id = Self::identify(ctrl, nsid)?;
        let nlba = if nlba_verify == 0 {
            id.nsze
        } else {
            nlba_verify.min(id.nsze)
        };
        let ss = id.sector_size() as usize;
        let verify = match (ctrl.verifier(nsid), crc_size) {
            (Some(v), None) => v,
            (Some(v), Some(size)) if v.crc_size() == size => v,
            (old, size) => {
                let v = NsVerify::with_crc_size(nsid, nlba, ss, size.unwrap_or(1))?;
                if let Some(old) = old {
                    v.set_enabled(old.enabled());
                    v.set_stamping(old.stamping());
                }
                ctrl.set_verifier(v)
            }
        };
        verify.set_format(ss, Self::inline_meta(&id));
        verify.set_dlfeat(id.dlfeat);
        Ok(Namespace {
            ctrl: ctrl.clone(),
            nsid,
            id: Mutex::new(id),
        })
    }

    fn identify(ctrl: &Arc<Controller<C>>, nsid: u32) -> Result<Box<IdentifyNamespace>> {
        let (cqe, buf) = ctrl.admin_read(commands::identify(nsid, 0, 0, 0, 0, 0, 0)?, 4096)?;
        if !cqe.status().is_success() {
            return Err(DriverError::NamespaceCreation {
                nsid,
                source: Some(Box::new(DriverError::CommandFailed {
                    what: "identify namespace",
                    status: cqe.status(),
                })),
            });
        }
        let id = buf.with_bytes(0, 4096, |b| {
            IdentifyNamespace::read_from_bytes(b).expect("4096 bytes")
        });
        if id.nsze == 0 {
            return Err(DriverError::NamespaceCreation { nsid, source: None });
        }
        Ok(Box::new(id))
    }

    /// Re-reads the Identify Namespace data (after a format or a namespace change); a new LBA
    /// size resets the verification state.
    pub fn refresh(&self) -> Result<()> {
        let id = Self::identify(&self.ctrl, self.nsid)?;
        let verify = self.verifier();
        verify.set_format(id.sector_size() as usize, Self::inline_meta(&id));
        verify.set_dlfeat(id.dlfeat);
        *self.id.lock() = id;
        Ok(())
    }

    /// The namespace id.
    pub fn nsid(&self) -> u32 {
        self.nsid
    }

    /// The controller.
    pub fn controller(&self) -> &Arc<Controller<C>> {
        &self.ctrl
    }

    /// The namespace's data verification state (the controller's, shared by every object of
    /// the namespace).
    pub fn verifier(&self) -> Arc<NsVerify> {
        self.ctrl
            .verifier(self.nsid)
            .expect("a Namespace object gives its namespace a verification state")
    }

    /// A copy of the Identify Namespace data as last read.
    pub fn id(&self) -> IdentifyNamespace {
        **self.id.lock()
    }

    /// Bytes per logical block of the current LBA format.
    pub fn sector_size(&self) -> usize {
        self.id.lock().sector_size() as usize
    }

    /// Metadata bytes that travel with each block's data: the metadata size for an extended LBA
    /// format (FLBAS bit 4), else 0 (metadata, if any, goes through MPTR).
    fn inline_meta(id: &IdentifyNamespace) -> usize {
        if id.extended_lba() {
            id.metadata_size() as usize
        } else {
            0
        }
    }

    /// Bytes per block in a data transfer: the data size, plus the metadata for an extended LBA
    /// format.
    pub fn block_size(&self) -> usize {
        let id = self.id.lock();
        id.sector_size() as usize + Self::inline_meta(&id)
    }

    /// Metadata bytes per logical block of the current LBA format.
    pub fn meta_size(&self) -> usize {
        self.id.lock().metadata_size() as usize
    }

    /// NSZE: size in logical blocks.
    pub fn nsze(&self) -> u64 {
        self.id.lock().nsze
    }

    /// The index of the LBA format with this data and metadata size, if the namespace offers it.
    pub fn get_lba_format(&self, data_size: usize, meta_size: usize) -> Option<usize> {
        let id = self.id.lock();
        (0..=id.nlbaf as usize).find(|&i| {
            let f = id.lbaf(i);
            f.lbads >= 9 && f.data_size() as usize == data_size && f.ms as usize == meta_size
        })
    }

    fn data_for(&self, buf: &Buffer, lba_count: u32) -> Result<DataRef> {
        let len = lba_count as usize * self.block_size();
        if buf.size() < len {
            return Err(DriverError::invalid(
                "buf",
                format!(
                    "{} bytes (buffer size) cannot hold {lba_count} blocks of {} bytes",
                    buf.size(),
                    self.block_size()
                ),
            ));
        }
        Ok(DataRef {
            mem: buf.memory().clone(),
            offset: buf.offset(),
            len,
            sgl: buf.sgl,
        })
    }

    /// Builds a read/write-like command with its data (read, write, compare).
    #[allow(clippy::too_many_arguments)]
    pub fn rw_command(
        &self,
        opc: u8,
        buf: &Buffer,
        lba: u64,
        lba_count: u32,
        io_flags: u32,
        cdw13: u32,
        cdw14: u32,
        cdw15: u32,
    ) -> Result<(Sqe, DataRef)> {
        let sqe = commands::rw(
            opc, self.nsid, lba, lba_count, io_flags, cdw13, cdw14, cdw15,
        )?;
        Ok((sqe, self.data_for(buf, lba_count)?))
    }

    /// Submits a command with optional data on `qpair`; `stamp` stamps a write's data with LBA
    /// and token (the path of `Namespace.write`; raw commands are not stamped). Returns the CID,
    /// or `None` while the command waits for its LBAs.
    pub fn submit<T: Send + 'static>(
        &self,
        qpair: &Qpair<C, T>,
        sqe: Sqe,
        data: Option<DataRef>,
        ctx: T,
        stamp: bool,
    ) -> Result<Option<u16>> {
        if !Arc::ptr_eq(qpair.controller(), &self.ctrl) {
            return Err(DriverError::invalid(
                "qpair",
                "belongs to another controller",
            ));
        }
        qpair.submit(sqe, data, false, ctx, stamp)
    }

    /// Read (02h) of `lba_count` blocks at `lba` into `buf`.
    #[allow(clippy::too_many_arguments)]
    pub fn read<T: Send + 'static>(
        &self,
        qpair: &Qpair<C, T>,
        buf: &Buffer,
        lba: u64,
        lba_count: u32,
        io_flags: u32,
        cdw13: u32,
        cdw14: u32,
        cdw15: u32,
        ctx: T,
    ) -> Result<Option<u16>> {
        let (sqe, data) = self.rw_command(
            nvm::READ,
            buf,
            lba,
            lba_count,
            io_flags,
            cdw13,
            cdw14,
            cdw15,
        )?;
        self.submit(qpair, sqe, Some(data), ctx, false)
    }

    /// Write (01h) of `lba_count` blocks at `lba` from `buf`, stamped for verification.
    #[allow(clippy::too_many_arguments)]
    pub fn write<T: Send + 'static>(
        &self,
        qpair: &Qpair<C, T>,
        buf: &Buffer,
        lba: u64,
        lba_count: u32,
        io_flags: u32,
        cdw13: u32,
        cdw14: u32,
        cdw15: u32,
        ctx: T,
    ) -> Result<Option<u16>> {
        let (sqe, data) = self.rw_command(
            nvm::WRITE,
            buf,
            lba,
            lba_count,
            io_flags,
            cdw13,
            cdw14,
            cdw15,
        )?;
        self.submit(qpair, sqe, Some(data), ctx, true)
    }

    /// Formats this namespace to the LBA format with `data_size` / `meta_size`, waiting for it
    /// with the Format NVM timeout raised to at least 100 s, then re-reads the identify data
    /// (the verification state is cleared by the format's completion).
    /// Returns the completion (a failing status is for the caller to report).
    pub fn format(&self, data_size: usize, meta_size: usize, ses: u32) -> Result<nvme_spec::Cqe> {
        let Some(lbaf) = self.get_lba_format(data_size, meta_size) else {
            let id = self.id();
            let offered: Vec<String> = (0..=id.nlbaf as usize)
                .map(|i| id.lbaf(i))
                .map(|f| format!("{}+{}", f.data_size(), f.ms))
                .collect();
            return Err(DriverError::invalid(
                "data_size",
                format!(
                    "{data_size}+{meta_size} is not an LBA format of namespace {}: it offers {}",
                    self.nsid,
                    offered.join(", ")
                ),
            ));
        };
        let t = self.ctrl.timeouts();
        let opc = nvme_spec::cmd::admin::FORMAT_NVM;
        let before = t.get(false, opc);
        t.set(false, opc, before.max(100_000));
        let r = self.ctrl.admin_sync(
            commands::format(lbaf as u32, ses, self.nsid, 0, 0, 0)?,
            None,
        );
        t.set(
            false,
            opc,
            if before == t.default_ms() { 0 } else { before },
        );
        let cqe = r?;
        if cqe.status().is_success() {
            self.refresh()?;
        }
        Ok(cqe)
    }
}
