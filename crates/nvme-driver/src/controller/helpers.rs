//! Synchronous admin helpers built on the admin queue: namespace management and attachment,
//! reads of identify data and log pages, firmware download.

use super::Controller;
use crate::commands;
use crate::error::{DriverError, Result};
use crate::queue::DataRef;
use nvme_pci::DmaMemory;
use nvme_spec::{Cqe, Sqe};

impl<C: Clone + Send + 'static> Controller<C> {
    /// Namespace Management create: a namespace of `nsze` blocks (`ncap` allocated, LBA format
    /// `flbas`, protection `dps`, sharing `nmic`). Returns the completion (dword 0: the new nsid).
    pub fn ns_create(&self, nsze: u64, ncap: u64, flbas: u8, dps: u8, nmic: u8) -> Result<Cqe> {
        let mem = self.pci.dma_alloc(4096)?;
        mem.write(0, &nsze.to_le_bytes());
        mem.write(8, &ncap.to_le_bytes());
        mem.write(26, &[flbas]);
        mem.write(29, &[dps, nmic]);
        self.admin_sync(commands::ns_management(0, 0, 0)?, Some(&mem))
    }

    /// Namespace Management delete of `nsid` (0xffffffff: all).
    pub fn ns_delete(&self, nsid: u32) -> Result<Cqe> {
        self.admin_sync(commands::ns_management(1, nsid, 0)?, None)
    }

    /// Namespace Attachment: attach (`detach` false) or detach `nsid` to/from the controllers
    /// `cntlids` (at most 2047).
    pub fn ns_attachment(&self, nsid: u32, detach: bool, cntlids: &[u16]) -> Result<Cqe> {
        if cntlids.len() > 2047 {
            return Err(DriverError::invalid(
                "cntlids",
                format!("{} controllers: a list holds at most 2047", cntlids.len()),
            ));
        }
        let mem = self.pci.dma_alloc(4096)?;
        mem.write(0, &(cntlids.len() as u16).to_le_bytes());
        for (i, c) in cntlids.iter().enumerate() {
            mem.write(2 + 2 * i, &c.to_le_bytes());
        }
        self.admin_sync(
            commands::ns_attachment(u32::from(detach), nsid)?,
            Some(&mem),
        )
    }

    /// A synchronous admin command that returns `len` bytes of data: the completion and the
    /// memory the data came into.
    pub fn admin_read(&self, sqe: Sqe, len: usize) -> Result<(Cqe, DmaMemory)> {
        let mem = self.pci.dma_alloc(len)?;
        let cqe = self.admin_sync_data(
            sqe,
            DataRef {
                mem: mem.clone(),
                offset: 0,
                len,
                sgl: false,
            },
        )?;
        Ok((cqe, mem))
    }

    /// Whether admin opcode `opcode` (0..=255), or IO opcode `opcode - 256`, is supported, from
    /// CSUPP in the Commands Supported and Effects log page; with the log page's completion.
    pub fn supports(&self, opcode: u32) -> Result<(Cqe, bool)> {
        if opcode >= 512 {
            return Err(DriverError::invalid(
                "opcode",
                format!("{opcode} is not 0..=511 (256 + n for IO opcode n)"),
            ));
        }
        let (cqe, log) = self.admin_read(commands::get_log_page(5, 4096, 0, 0, 0)?, 4096)?;
        let effects = log.load_u32(opcode as usize * 4);
        Ok((cqe, cqe.status().is_success() && effects & 1 != 0))
    }

    /// The index of namespace `nsid`'s LBA format with this data and metadata size, if any, from
    /// Identify Namespace; with the identify completion.
    pub fn lba_format_of(
        &self,
        nsid: u32,
        data_size: usize,
        meta_size: usize,
    ) -> Result<(Cqe, Option<usize>)> {
        use zerocopy::FromBytes;
        let (cqe, data) = self.admin_read(commands::identify(nsid, 0, 0, 0, 0, 0, 0)?, 4096)?;
        let id = data.with_bytes(0, 4096, |b| {
            nvme_spec::identify::IdentifyNamespace::read_from_bytes(b).expect("4096 bytes")
        });
        let found = (0..=id.nlbaf as usize).find(|&i| {
            let f = id.lbaf(i);
            f.lbads >= 9 && f.data_size() as usize == data_size && f.ms as usize == meta_size
        });
        Ok((cqe, found.filter(|_| cqe.status().is_success())))
    }

    /// The Timestamp feature: milliseconds since the epoch as the controller counts them; with
    /// the Get Features completion.
    pub fn timestamp(&self) -> Result<(Cqe, u64)> {
        let (cqe, data) = self.admin_read(commands::get_features(0x0e, 0, 0, 0, 0, 0, 0, 0)?, 8)?;
        Ok((cqe, data.load_u64(0) & 0xffff_ffff_ffff))
    }

    /// Firmware Image Download of `image` in 4 KiB pieces, then Firmware Commit to `slot` with
    /// `action`. Returns the first failing completion, or the commit's.
    pub fn download_firmware(&self, image: &[u8], slot: u32, action: u32) -> Result<Cqe> {
        for (i, chunk) in image.chunks(4096).enumerate() {
            let len = chunk.len().next_multiple_of(4);
            let mem = self.pci.dma_alloc(len)?;
            mem.write(0, chunk);
            let (sqe, _) = commands::fw_download(len, (i * 4096) as u64)?;
            let cqe = self.admin_sync_data(
                sqe,
                DataRef {
                    mem,
                    offset: 0,
                    len,
                    sgl: false,
                },
            )?;
            if !cqe.status().is_success() {
                return Ok(cqe);
            }
        }
        self.admin_sync(commands::fw_commit(slot, action, 0)?, None)
    }
}
