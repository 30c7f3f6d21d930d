//! Admin commands.

use std::time::{Duration, Instant};

use nvme_spec::cmd::admin;
use nvme_spec::features::fid;
use nvme_spec::identify::{
    cns, IdentifyController, IdentifyNamespace, LbaFormat as SpecLbaf, PowerStateDescriptor,
};
use nvme_spec::log::{
    aen, lid, sanitize_status, self_test, CommandsSupportedEffects, FirmwareSlotLog, SmartLog,
};
use nvme_spec::status::{cs, sc, sct};
use nvme_spec::{Sqe, Status};
use zerocopy::{FromZeros, IntoBytes};

use crate::ctrl::{Controller, Done, Outcome};
use crate::state::{
    Sanitizing, SelfTest, AE_IO, AE_NOTICE, AE_SMART, CCTEMP, FW_SLOTS, MNTMT, MXTMT, WCTEMP,
};

/// Our controller identifier.
pub const CNTLID: u16 = 1;
/// Abort command limit, 0-based.
const ACL: u8 = 3;
/// Asynchronous event request limit, 0-based.
const AERL: u8 = 3;
/// Number of power states, 0-based.
const NPSS: u8 = 4;

fn invalid_field() -> Done {
    Done::generic(sc::INVALID_FIELD)
}

fn invalid_ns() -> Done {
    Done::generic(sc::INVALID_NAMESPACE_OR_FORMAT)
}

fn pad(dst: &mut [u8], s: &str) {
    nvme_spec::identify::ascii_pad(dst, s);
}

impl Controller {
    /// Sends `data` to the host buffer of an admin command (PRP only, as over PCIe).
    pub(crate) fn xfer_to_host(&mut self, sqe: &Sqe, data: &[u8]) -> Result<(), Status> {
        if sqe.psdt() != 0 {
            return Err(Status::new(0, sc::INVALID_FIELD).dnr());
        }
        self.map
            .prp(&self.bus, sqe.prp1, sqe.prp2, data.len() as u64, self.mps)?;
        self.map.scatter(&self.bus, data)
    }

    /// Receives `len` bytes from the host buffer of an admin command.
    pub(crate) fn xfer_from_host(&mut self, sqe: &Sqe, len: usize) -> Result<Vec<u8>, Status> {
        if sqe.psdt() != 0 {
            return Err(Status::new(0, sc::INVALID_FIELD).dnr());
        }
        let mut v = vec![0u8; len];
        self.map
            .prp(&self.bus, sqe.prp1, sqe.prp2, len as u64, self.mps)?;
        self.map.gather(&self.bus, &mut v)?;
        Ok(v)
    }

    fn send(&mut self, sqe: &Sqe, data: &[u8]) -> Done {
        match self.xfer_to_host(sqe, data) {
            Ok(()) => Done::ok(),
            Err(s) => Done::err(s),
        }
    }

    fn max_transfer(&self) -> usize {
        if self.cfg.mdts == 0 {
            usize::MAX
        } else {
            (4096usize << self.cfg.mdts).min(self.mps as usize * (1usize << self.cfg.mdts))
        }
    }

    /// Executes one admin command.
    pub(crate) fn admin(&mut self, sqe: &Sqe) -> Outcome {
        if sqe.fuse() != 0 {
            return invalid_field().into();
        }
        if self.st.sanitizing.is_some()
            && matches!(
                sqe.opc(),
                admin::FW_DOWNLOAD
                    | admin::FW_COMMIT
                    | admin::FORMAT_NVM
                    | admin::DEVICE_SELF_TEST
                    | admin::NS_MANAGEMENT
                    | admin::NS_ATTACHMENT
                    | admin::SECURITY_SEND
                    | admin::SECURITY_RECEIVE
            )
        {
            return Done::generic(sc::SANITIZE_IN_PROGRESS).into();
        }
        let lat = self.cfg.latency.admin;
        let mut d = match sqe.opc() {
            admin::DELETE_IO_SQ => self.delete_io_sq(sqe),
            admin::CREATE_IO_SQ => self.create_io_sq(sqe),
            admin::GET_LOG_PAGE => self.get_log_page(sqe),
            admin::DELETE_IO_CQ => self.delete_io_cq(sqe),
            admin::CREATE_IO_CQ => self.create_io_cq(sqe),
            admin::IDENTIFY => self.identify(sqe),
            admin::ABORT => self.abort(sqe),
            admin::SET_FEATURES => self.set_features(sqe),
            admin::GET_FEATURES => self.get_features(sqe),
            admin::ASYNC_EVENT_REQUEST => {
                if self.st.aer.outstanding.len() > AERL as usize {
                    Done::specific(cs::ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED)
                } else {
                    self.st.aer.outstanding.push(sqe.cid());
                    self.deliver_events();
                    return Outcome::Hold;
                }
            }
            admin::NS_MANAGEMENT => self.ns_management(sqe),
            admin::FW_COMMIT => self.fw_commit(sqe),
            admin::FW_DOWNLOAD => self.fw_download(sqe),
            admin::DEVICE_SELF_TEST => self.device_self_test(sqe),
            admin::NS_ATTACHMENT => self.ns_attachment(sqe),
            admin::KEEP_ALIVE => Done::ok(),
            admin::FORMAT_NVM => self.format(sqe),
            admin::SECURITY_SEND => invalid_field(),
            admin::SECURITY_RECEIVE => self.security_receive(sqe),
            admin::SANITIZE => self.sanitize(sqe),
            _ => Done::generic(sc::INVALID_OPCODE),
        };
        if !lat.is_zero() {
            d.after += self.latency(lat);
        }
        d.into()
    }

    // ------------------------------------------------------------ queues

    fn create_io_cq(&mut self, sqe: &Sqe) -> Done {
        let qid = sqe.cdw10 as u16;
        let qsize = (sqe.cdw10 >> 16) + 1;
        let pc = sqe.cdw11 & 1 != 0;
        let ien = sqe.cdw11 & 2 != 0;
        let iv = (sqe.cdw11 >> 16) as u16;
        let (_, ncq) = self.st.allocated_queues();
        if qid == 0
            || qid > ncq
            || qid as usize >= self.cqs.len()
            || self.cqs[qid as usize].is_some()
        {
            return Done::specific(cs::INVALID_QUEUE_IDENTIFIER);
        }
        if qsize < 2 || qsize > self.cfg.mqes as u32 + 1 {
            return Done::specific(cs::INVALID_QUEUE_SIZE);
        }
        if nvme_spec::regs::cc::iocqes(self.cc) != 4 {
            return invalid_field();
        }
        if iv >= self.sh.layout.vectors {
            return Done::specific(cs::INVALID_INTERRUPT_VECTOR);
        }
        if !pc {
            return invalid_field();
        }
        if sqe.prp1 & (self.mps - 1) != 0 || sqe.prp1 == 0 {
            return Done::generic(sc::INVALID_PRP_OFFSET);
        }
        self.create_cq(qid, sqe.prp1, qsize, iv, ien);
        Done::ok()
    }

    fn create_io_sq(&mut self, sqe: &Sqe) -> Done {
        let qid = sqe.cdw10 as u16;
        let qsize = (sqe.cdw10 >> 16) + 1;
        let pc = sqe.cdw11 & 1 != 0;
        let prio = ((sqe.cdw11 >> 1) & 3) as u8;
        let cqid = (sqe.cdw11 >> 16) as u16;
        let (nsq, _) = self.st.allocated_queues();
        if qid == 0
            || qid > nsq
            || qid as usize >= self.sqs.len()
            || self.sqs[qid as usize].is_some()
        {
            return Done::specific(cs::INVALID_QUEUE_IDENTIFIER);
        }
        if cqid == 0 || cqid as usize >= self.cqs.len() || self.cqs[cqid as usize].is_none() {
            return Done::specific(cs::COMPLETION_QUEUE_INVALID);
        }
        if qsize < 2 || qsize > self.cfg.mqes as u32 + 1 {
            return Done::specific(cs::INVALID_QUEUE_SIZE);
        }
        if nvme_spec::regs::cc::iosqes(self.cc) != 6 {
            return invalid_field();
        }
        if !pc || sqe.cdw12 & 0xffff != 0 {
            return invalid_field();
        }
        if sqe.prp1 & (self.mps - 1) != 0 || sqe.prp1 == 0 {
            return Done::generic(sc::INVALID_PRP_OFFSET);
        }
        self.create_sq(qid, sqe.prp1, qsize, cqid, prio);
        Done::ok()
    }

    fn delete_io_sq(&mut self, sqe: &Sqe) -> Done {
        let qid = sqe.cdw10 as u16;
        if qid == 0 || qid as usize >= self.sqs.len() || self.sqs[qid as usize].is_none() {
            return Done::specific(cs::INVALID_QUEUE_IDENTIFIER);
        }
        self.delete_sq(qid);
        Done::ok()
    }

    fn delete_io_cq(&mut self, sqe: &Sqe) -> Done {
        let qid = sqe.cdw10 as u16;
        if qid == 0 || qid as usize >= self.cqs.len() || self.cqs[qid as usize].is_none() {
            return Done::specific(cs::INVALID_QUEUE_IDENTIFIER);
        }
        if self.cqs[qid as usize].as_ref().is_some_and(|c| c.nsq > 0) {
            return Done::specific(cs::INVALID_QUEUE_DELETION);
        }
        self.delete_cq(qid);
        Done::ok()
    }

    fn abort(&mut self, sqe: &Sqe) -> Done {
        let sqid = sqe.cdw10 as u16;
        let cid = (sqe.cdw10 >> 16) as u16;
        // An outstanding Asynchronous Event Request: it completes with Command Abort Requested.
        if sqid == 0 {
            if let Some(i) = self.st.aer.outstanding.iter().position(|&c| c == cid) {
                self.st.aer.outstanding.remove(i);
                self.complete_held_status(
                    cid,
                    0,
                    Status::new(sct::GENERIC, sc::ABORTED_BY_REQUEST),
                );
                return Done::dw0(0);
            }
        }
        if self.abort_pending(sqid, cid) {
            return Done::dw0(0);
        }
        // A command still in the SQ, not yet fetched?
        if let Some(Some(sq)) = self.sqs.get(sqid as usize) {
            let tail =
                self.sh.doorbells[2 * sqid as usize].load(std::sync::atomic::Ordering::Acquire);
            if tail < sq.size {
                let (base, size, mut h) = (sq.base, sq.size, sq.head);
                let mut e = Sqe::default();
                while h != tail {
                    if self
                        .bus
                        .read(base + h as u64 * 64, e.as_mut_bytes())
                        .is_err()
                    {
                        break;
                    }
                    if e.cid() == cid {
                        if self.abort_list.len() <= ACL as usize {
                            self.abort_list.push((sqid, cid));
                            return Done::dw0(0);
                        }
                        return Done::specific(cs::ABORT_COMMAND_LIMIT_EXCEEDED);
                    }
                    h = (h + 1) % size;
                }
            }
        }
        Done::dw0(1)
    }

    // ------------------------------------------------------------ identify

    #[allow(clippy::field_reassign_with_default)]
    pub(crate) fn identify_controller(&self) -> IdentifyController {
        let c = &self.cfg;
        let mut id = IdentifyController::new_zeroed();
        id.vid = crate::pcicfg::VENDOR_ID;
        id.ssvid = crate::pcicfg::VENDOR_ID;
        pad(&mut id.sn, &c.serial);
        pad(&mut id.mn, &c.model);
        let active = self.st.fw.slots[self.st.fw.active as usize - 1].unwrap_or(*b"        ");
        id.fr = active;
        id.rab = 6;
        id.mdts = c.mdts;
        id.cntlid = CNTLID;
        id.ver = nvme_spec::regs::version(2, 0, 0);
        id.rtd3r = 1_000_000;
        id.rtd3e = 1_000_000;
        id.oaes = (1 << 8) | (1 << 9);
        id.cntrltype = 1;
        id.oacs = nvme_spec::identify::oacs::SECURITY
            | nvme_spec::identify::oacs::FORMAT
            | nvme_spec::identify::oacs::FIRMWARE
            | nvme_spec::identify::oacs::NS_MANAGEMENT
            | nvme_spec::identify::oacs::SELF_TEST;
        id.acl = ACL;
        id.aerl = AERL;
        id.frmw = (FW_SLOTS << 1) | (1 << 4);
        id.lpa = (1 << 1) | (1 << 2);
        id.elpe = (crate::state::ERROR_LOG_ENTRIES - 1) as u8;
        id.npss = NPSS;
        id.avscc = 1;
        id.apsta = 1;
        id.wctemp = WCTEMP;
        id.cctemp = CCTEMP;
        id.hctma = 1;
        id.mntmt = MNTMT;
        id.mxtmt = MXTMT;
        id.hmpre = 256;
        id.hmmin = 256;
        id.set_tnvmcap(c.capacity as u128);
        id.set_unvmcap(c.capacity.saturating_sub(self.st.allocated()) as u128);
        id.edstt = 1;
        id.dsto = 1;
        id.kas = 10;
        id.sanicap = 0x7;
        id.sqes = 0x66;
        id.cqes = 0x44;
        id.nn = c.max_namespaces;
        id.oncs = nvme_spec::identify::oncs::COMPARE
            | nvme_spec::identify::oncs::WRITE_UNCORRECTABLE
            | nvme_spec::identify::oncs::DSM
            | nvme_spec::identify::oncs::WRITE_ZEROES
            | nvme_spec::identify::oncs::SAVE_SELECT
            | nvme_spec::identify::oncs::TIMESTAMP
            | nvme_spec::identify::oncs::VERIFY
            | nvme_spec::identify::oncs::COPY;
        id.fna = 1 << 2;
        id.vwc = if c.volatile_write_cache { 0x7 } else { 0x6 };
        id.cdfs = 1;
        id.sgls = 0x1 | (1 << 16) | (1 << 18);
        id.mnan = 0;
        let nqn = format!("nqn.2024-01.invalid.pynvme-rs:sim:{}", c.serial);
        pad(&mut id.subnqn, &nqn);
        for b in id.subnqn.iter_mut() {
            if *b == b' ' {
                *b = 0;
            }
        }
        // Three operational states, then two non-operational ones (NOPS) with longer latencies,
        // as client drives have them.
        let ps = [
            (2500u16, 0u32, 0u32, false),
            (1200, 100, 100, false),
            (300, 2000, 2000, false),
            (50, 5_000, 10_000, true),
            (5, 20_000, 50_000, true),
        ];
        for (i, &(mp, enlat, exlat, nops)) in ps.iter().enumerate() {
            let mut d = PowerStateDescriptor::default();
            d.mp = mp; // centiwatts
            d.flags = if nops { 2 } else { 0 };
            d.enlat = enlat;
            d.exlat = exlat;
            d.rrt = i as u8;
            d.rrl = i as u8;
            d.rwt = i as u8;
            d.rwl = i as u8;
            id.psd[i] = d;
        }
        id
    }

    fn identify_ns_common(&self) -> IdentifyNamespace {
        let mut id = IdentifyNamespace::new_zeroed();
        let c = &self.cfg;
        id.nlbaf = c.lba_formats.len() as u8 - 1;
        id.mc = 0x2;
        id.dlfeat = 0x9;
        id.mssrl = 128;
        id.mcl = 1024;
        id.msrc = 127;
        for (i, f) in c.lba_formats.iter().enumerate() {
            id.lbaf[i] = SpecLbaf::new(f.data_size, f.metadata_size, f.relative_performance);
        }
        id
    }

    pub(crate) fn identify_ns(&self, nsid: u32) -> IdentifyNamespace {
        let mut id = self.identify_ns_common();
        if let Some(Some(n)) = self.st.ns.get(nsid as usize - 1) {
            id.nsze = n.nsze;
            id.ncap = n.nsze;
            id.nuse = n.nsze;
            id.flbas = n.fmt & 0xf | ((n.fmt >> 4) << 5);
            id.set_nvmcap(n.bytes() as u128);
            id.nguid = self.nguid(nsid);
            id.eui64.copy_from_slice(&self.nguid(nsid)[..8]);
        }
        id
    }

    fn nguid(&self, nsid: u32) -> [u8; 16] {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.cfg.serial.bytes().chain(nsid.to_le_bytes()) {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        let mut g = [0u8; 16];
        g[..8].copy_from_slice(&h.to_be_bytes());
        g[8..12].copy_from_slice(&(crate::pcicfg::VENDOR_ID as u32).to_be_bytes());
        g[12..].copy_from_slice(&nsid.to_be_bytes());
        g
    }

    fn ns_allocated(&self, nsid: u32) -> bool {
        nsid >= 1 && matches!(self.st.ns.get(nsid as usize - 1), Some(Some(_)))
    }

    fn ns_active(&self, nsid: u32) -> bool {
        nsid >= 1 && matches!(self.st.ns.get(nsid as usize - 1), Some(Some(n)) if n.attached)
    }

    fn identify(&mut self, sqe: &Sqe) -> Done {
        let cns_v = sqe.cdw10 as u8;
        let cntid = (sqe.cdw10 >> 16) as u16;
        let csi = (sqe.cdw11 >> 24) as u8;
        let nsid = sqe.nsid;
        let nn = self.cfg.max_namespaces;
        let mut page = [0u8; 4096];
        let valid_nsid = nsid >= 1 && nsid <= nn;
        match cns_v {
            cns::NAMESPACE | cns::ALLOCATED_NAMESPACE => {
                if nsid == 0xffff_ffff && cns_v == cns::NAMESPACE {
                    page.copy_from_slice(self.identify_ns_common().as_bytes());
                } else if !valid_nsid {
                    return invalid_ns();
                } else {
                    let show = if cns_v == cns::NAMESPACE {
                        self.ns_active(nsid)
                    } else {
                        self.ns_allocated(nsid)
                    };
                    if show {
                        page.copy_from_slice(self.identify_ns(nsid).as_bytes());
                    }
                }
            }
            cns::CONTROLLER => page.copy_from_slice(self.identify_controller().as_bytes()),
            cns::ACTIVE_NS_LIST | cns::CSI_ACTIVE_NS_LIST | cns::ALLOCATED_NS_LIST => {
                if nsid >= 0xffff_fffe || (cns_v == cns::CSI_ACTIVE_NS_LIST && csi != 0) {
                    return if nsid >= 0xffff_fffe {
                        invalid_ns()
                    } else {
                        invalid_field()
                    };
                }
                let mut k = 0;
                for (i, n) in self.st.ns.iter().enumerate() {
                    let id = i as u32 + 1;
                    let listed = match n {
                        Some(n) => cns_v == cns::ALLOCATED_NS_LIST || n.attached,
                        None => false,
                    };
                    if listed && id > nsid && k < 1024 {
                        page[k * 4..k * 4 + 4].copy_from_slice(&id.to_le_bytes());
                        k += 1;
                    }
                }
            }
            cns::NS_ID_DESCRIPTOR_LIST => {
                if !self.ns_active(nsid) {
                    return invalid_ns();
                }
                let g = self.nguid(nsid);
                let l = nvme_spec::identify::ns_id_descriptor_list(&[
                    (nvme_spec::identify::nidt::EUI64, &g[..8]),
                    (nvme_spec::identify::nidt::NGUID, &g),
                    (nvme_spec::identify::nidt::CSI, &[0]),
                ]);
                page.copy_from_slice(&l);
            }
            cns::CSI_NAMESPACE => {
                if csi != 0 {
                    return invalid_field();
                }
                if !valid_nsid {
                    return invalid_ns();
                }
            }
            cns::CSI_CONTROLLER => {
                if csi != 0 {
                    return invalid_field();
                }
            }
            cns::CS_INDEPENDENT_NAMESPACE => {
                if !valid_nsid {
                    return invalid_ns();
                }
                if self.ns_active(nsid) {
                    page[14] = 1; // NSTAT: namespace ready
                }
            }
            cns::NS_CONTROLLER_LIST => {
                if !valid_nsid {
                    return invalid_ns();
                }
                if self.ns_active(nsid) && cntid <= CNTLID {
                    page[0..2].copy_from_slice(&1u16.to_le_bytes());
                    page[2..4].copy_from_slice(&CNTLID.to_le_bytes());
                }
            }
            cns::CONTROLLER_LIST => {
                if cntid <= CNTLID {
                    page[0..2].copy_from_slice(&1u16.to_le_bytes());
                    page[2..4].copy_from_slice(&CNTLID.to_le_bytes());
                }
            }
            cns::IO_COMMAND_SET => {
                page[0] = 1; // NVM command set only
            }
            _ => return invalid_field(),
        }
        self.send(sqe, &page)
    }

    // ------------------------------------------------------------ features

    fn feature_value(&self, f: u8, default: bool, sqe: &Sqe) -> Option<u32> {
        let d = crate::state::Features::defaults(&self.cfg);
        let ft = if default { &d } else { &self.st.features };
        Some(match f {
            fid::ARBITRATION => ft.arbitration,
            fid::POWER_MANAGEMENT => ft.power_mgmt,
            fid::TEMPERATURE_THRESHOLD => {
                let tmpsel = (sqe.cdw11 >> 16) & 0xf;
                let thsel = (sqe.cdw11 >> 20) & 3;
                let v = if thsel == 0 {
                    ft.temp_over
                } else {
                    ft.temp_under
                };
                v as u32 | tmpsel << 16 | thsel << 20
            }
            fid::ERROR_RECOVERY => ft.error_recovery,
            fid::VOLATILE_WRITE_CACHE => ft.vwc as u32,
            fid::NUMBER_OF_QUEUES => ft.nq,
            fid::INTERRUPT_COALESCING => ft.int_coalescing,
            fid::INTERRUPT_VECTOR_CONFIG => {
                let iv = sqe.cdw11 & 0xffff;
                iv | (ft.iv_cd.get(iv as usize).copied().unwrap_or(false) as u32) << 16
            }
            fid::WRITE_ATOMICITY => ft.write_atomicity,
            fid::ASYNC_EVENT_CONFIG => ft.async_event,
            fid::AUTONOMOUS_POWER_STATE_TRANSITION => ft.apst_enabled as u32,
            fid::HOST_MEMORY_BUFFER => ft.hmb[0] & 3,
            fid::TIMESTAMP => 0,
            fid::KEEP_ALIVE_TIMER => ft.keep_alive,
            fid::HOST_CONTROLLED_THERMAL_MGMT => ft.hctm,
            _ => return None,
        })
    }

    fn get_features(&mut self, sqe: &Sqe) -> Done {
        let f = sqe.cdw10 as u8;
        let sel = ((sqe.cdw10 >> 8) & 7) as u8;
        if sel > 3 {
            return invalid_field();
        }
        if f == fid::VOLATILE_WRITE_CACHE && !self.cfg.volatile_write_cache {
            return invalid_field();
        }
        if f == fid::TEMPERATURE_THRESHOLD
            && ((sqe.cdw11 >> 16) & 0xf != 0 || (sqe.cdw11 >> 20) & 3 > 1)
        {
            return invalid_field();
        }
        if f == fid::INTERRUPT_VECTOR_CONFIG
            && (sqe.cdw11 & 0xffff) as u16 >= self.sh.layout.vectors
        {
            return invalid_field();
        }
        let Some(v) = self.feature_value(f, sel == 1 || sel == 2, sqe) else {
            return invalid_field();
        };
        if sel == 3 {
            return Done::dw0(nvme_spec::features::sel::CAP_CHANGEABLE);
        }
        let cur = sel == 0;
        match f {
            fid::AUTONOMOUS_POWER_STATE_TRANSITION => {
                let a = if cur { self.st.features.apst } else { [0; 32] };
                let mut bytes = [0u8; 256];
                for (i, e) in a.iter().enumerate() {
                    bytes[i * 8..i * 8 + 8].copy_from_slice(&e.to_le_bytes());
                }
                let d = self.send(sqe, &bytes);
                Done { dw0: v, ..d }
            }
            fid::HOST_MEMORY_BUFFER => {
                let mut bytes = [0u8; 4096];
                if cur {
                    // Host Memory Buffer Attributes: HSIZE, HMDLLA, HMDLUA, HMDLEC.
                    let h = self.st.features.hmb;
                    for (i, v) in h[1..5].iter().enumerate() {
                        bytes[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
                    }
                }
                let d = self.send(sqe, &bytes);
                Done { dw0: v, ..d }
            }
            fid::TIMESTAMP => {
                let ts = match (cur, self.st.timestamp) {
                    (true, Some((ms, at))) => {
                        let mut t = nvme_spec::features::Timestamp::new(
                            ms + at.elapsed().as_millis() as u64,
                        );
                        t.attr = 1 << 1; // set by a Set Features command, synch
                        t
                    }
                    _ => {
                        let since = self.st.smart.powered_since.elapsed().as_millis() as u64;
                        nvme_spec::features::Timestamp::new(since)
                    }
                };
                self.send(sqe, ts.as_bytes())
            }
            _ => Done::dw0(v),
        }
    }

    fn set_features(&mut self, sqe: &Sqe) -> Done {
        let f = sqe.cdw10 as u8;
        let save = sqe.cdw10 & (1 << 31) != 0;
        let v = sqe.cdw11;
        if self.feature_value(f, true, sqe).is_none() {
            return invalid_field();
        }
        if save {
            return Done::specific(cs::FEATURE_IDENTIFIER_NOT_SAVEABLE);
        }
        let ft = &mut self.st.features;
        match f {
            fid::ARBITRATION => ft.arbitration = v & 0xffff_ff07,
            fid::POWER_MANAGEMENT => {
                if v & 0x1f > NPSS as u32 {
                    return invalid_field();
                }
                ft.power_mgmt = v & 0xff;
            }
            fid::TEMPERATURE_THRESHOLD => {
                let tmpsel = (v >> 16) & 0xf;
                let thsel = (v >> 20) & 3;
                if tmpsel != 0 || thsel > 1 {
                    return invalid_field();
                }
                if thsel == 0 {
                    ft.temp_over = v as u16;
                } else {
                    ft.temp_under = v as u16;
                }
                self.check_temperature();
            }
            fid::ERROR_RECOVERY => ft.error_recovery = v & 0xffff,
            fid::VOLATILE_WRITE_CACHE => {
                if !self.cfg.volatile_write_cache {
                    return invalid_field();
                }
                ft.vwc = v & 1 != 0;
                if !ft.vwc {
                    self.st.flush_all();
                }
            }
            fid::NUMBER_OF_QUEUES => {
                if !self.io_sqs.is_empty() || self.cqs.iter().skip(1).any(|c| c.is_some()) {
                    return Done::generic(sc::COMMAND_SEQUENCE_ERROR);
                }
                let nsqr = v & 0xffff;
                let ncqr = v >> 16;
                if nsqr == 0xffff || ncqr == 0xffff {
                    return invalid_field();
                }
                // "The value allocated shall not change between resets": a second request
                // before the next reset is answered with what was allocated.
                if !ft.nq_allocated {
                    let max = self.cfg.queues as u32 - 1;
                    ft.nq = ncqr.min(max) << 16 | nsqr.min(max);
                    ft.nq_allocated = true;
                }
                return Done::dw0(ft.nq);
            }
            fid::INTERRUPT_COALESCING => ft.int_coalescing = v & 0xffff,
            fid::INTERRUPT_VECTOR_CONFIG => {
                let iv = (v & 0xffff) as usize;
                if iv >= ft.iv_cd.len() {
                    return invalid_field();
                }
                // The admin queue's vector cannot have coalescing disabled by the host: it never
                // coalesces anyway.
                ft.iv_cd[iv] = v & (1 << 16) != 0;
            }
            fid::WRITE_ATOMICITY => ft.write_atomicity = v & 1,
            fid::ASYNC_EVENT_CONFIG => {
                ft.async_event = v;
                self.check_temperature();
            }
            fid::AUTONOMOUS_POWER_STATE_TRANSITION => {
                let data = match self.xfer_from_host(sqe, 256) {
                    Ok(d) => d,
                    Err(s) => return Done::err(s),
                };
                let ft = &mut self.st.features;
                ft.apst_enabled = v & 1 != 0;
                for i in 0..32 {
                    ft.apst[i] =
                        u64::from_le_bytes(data[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
                }
            }
            fid::HOST_MEMORY_BUFFER => {
                ft.hmb = [v & 3, sqe.cdw12, sqe.cdw13, sqe.cdw14, sqe.cdw15];
            }
            fid::TIMESTAMP => {
                let data = match self.xfer_from_host(sqe, 8) {
                    Ok(d) => d,
                    Err(s) => return Done::err(s),
                };
                let mut b = [0u8; 8];
                b[..6].copy_from_slice(&data[..6]);
                self.st.timestamp = Some((u64::from_le_bytes(b), Instant::now()));
            }
            fid::KEEP_ALIVE_TIMER => ft.keep_alive = v,
            fid::HOST_CONTROLLED_THERMAL_MGMT => {
                // Each threshold 0 (disabled) or within MNTMT..=MXTMT; TMT1 below TMT2.
                let (tmt1, tmt2) = ((v >> 16) as u16, v as u16);
                let ok = |t: u16| t == 0 || (MNTMT..=MXTMT).contains(&t);
                if !ok(tmt1) || !ok(tmt2) || (tmt1 != 0 && tmt2 != 0 && tmt1 >= tmt2) {
                    return invalid_field();
                }
                ft.hctm = v;
            }
            _ => return invalid_field(),
        }
        Done::ok()
    }

    /// Raises the SMART temperature event when the composite temperature crosses a threshold.
    pub(crate) fn check_temperature(&mut self) {
        let t = self.cfg.temperature;
        let ft = &self.st.features;
        let over = t >= ft.temp_over || (ft.temp_under != 0 && t < ft.temp_under);
        let bit = nvme_spec::log::critical_warning::TEMPERATURE;
        if over && self.st.smart.critical_warning & bit == 0 {
            self.st.smart.critical_warning |= bit;
            if ft.async_event & bit as u32 != 0 {
                self.raise_event(AE_SMART, aen::SMART_TEMPERATURE, lid::SMART);
            }
        } else if !over {
            self.st.smart.critical_warning &= !bit;
        }
    }

    // ------------------------------------------------------------ logs

    #[allow(clippy::field_reassign_with_default)]
    fn smart_log(&self) -> SmartLog {
        let s = &self.st.smart;
        let mut l = SmartLog::default();
        l.critical_warning = s.critical_warning;
        l.composite_temperature = self.cfg.temperature.into();
        l.avail_spare = 100;
        l.avail_spare_threshold = 10;
        l.set_data_units_read(s.read_512.div_ceil(1000) as u128);
        l.set_data_units_written(s.written_512.div_ceil(1000) as u128);
        l.set_host_read_commands(s.host_reads as u128);
        l.set_host_write_commands(s.host_writes as u128);
        l.set_controller_busy_time((s.busy.as_secs() / 60) as u128);
        l.set_power_cycles(s.power_cycles as u128);
        l.set_power_on_hours(self.st.power_on_hours() as u128);
        l.set_unsafe_shutdowns(s.unsafe_shutdowns as u128);
        l.set_media_errors(s.media_errors as u128);
        l.set_num_err_log_entries(s.err_entries as u128);
        l.temp_sensor[0] = self.cfg.temperature;
        l
    }

    fn effects_log(&self) -> CommandsSupportedEffects {
        use nvme_spec::cmd::nvm;
        use nvme_spec::log::effects::*;
        let mut l = CommandsSupportedEffects::default();
        for op in [
            admin::DELETE_IO_SQ,
            admin::CREATE_IO_SQ,
            admin::GET_LOG_PAGE,
            admin::DELETE_IO_CQ,
            admin::CREATE_IO_CQ,
            admin::IDENTIFY,
            admin::ABORT,
            admin::SET_FEATURES,
            admin::GET_FEATURES,
            admin::ASYNC_EVENT_REQUEST,
            admin::KEEP_ALIVE,
            admin::SECURITY_SEND,
            admin::SECURITY_RECEIVE,
        ] {
            l.acs[op as usize] = CSUPP;
        }
        l.acs[admin::NS_MANAGEMENT as usize] = CSUPP | NIC | NCC;
        l.acs[admin::NS_ATTACHMENT as usize] = CSUPP | NIC | NCC;
        l.acs[admin::FW_COMMIT as usize] = CSUPP | CCC;
        l.acs[admin::FW_DOWNLOAD as usize] = CSUPP;
        l.acs[admin::DEVICE_SELF_TEST as usize] = CSUPP;
        l.acs[admin::FORMAT_NVM as usize] = CSUPP | LBCC | NCC | NIC;
        l.acs[admin::SANITIZE as usize] = CSUPP | LBCC | NCC | NIC;
        for op in [nvm::FLUSH, nvm::READ, nvm::COMPARE, nvm::VERIFY] {
            l.iocs[op as usize] = CSUPP;
        }
        for op in [
            nvm::WRITE,
            nvm::WRITE_UNCORRECTABLE,
            nvm::WRITE_ZEROES,
            nvm::DSM,
            nvm::COPY,
        ] {
            l.iocs[op as usize] = CSUPP | LBCC;
        }
        l
    }

    #[allow(clippy::field_reassign_with_default)]
    fn fw_slot_log(&self) -> FirmwareSlotLog {
        let mut l = FirmwareSlotLog::default();
        l.afi = self.st.fw.active | self.st.fw.next.map_or(0, |n| n << 4);
        for (i, s) in self.st.fw.slots.iter().enumerate() {
            if let Some(r) = s {
                l.frs[i] = *r;
            }
        }
        l
    }

    fn sanitize_log(&self) -> nvme_spec::log::SanitizeStatusLog {
        let mut l = self.st.sanitize_log;
        if let Some(s) = &self.st.sanitizing {
            let total = (s.end - s.start).as_secs_f64().max(1e-9);
            let done = s.start.elapsed().as_secs_f64() / total;
            l.sprog = (done.min(1.0) * 65535.0) as u16;
        } else {
            l.sprog = 0xffff;
        }
        let secs = self.cfg.latency.sanitize.max.as_secs().max(1) as u32;
        l.etbe = secs;
        l.etce = secs;
        l.eto = secs;
        l
    }

    fn get_log_page(&mut self, sqe: &Sqe) -> Done {
        let id = sqe.cdw10 as u8;
        let rae = sqe.cdw10 & (1 << 15) != 0;
        let numd = ((sqe.cdw10 >> 16) | ((sqe.cdw11 & 0xffff) << 16)) as usize + 1;
        let len = numd * 4;
        let offset = sqe.cdw12 as u64 | (sqe.cdw13 as u64) << 32;
        let ot = sqe.cdw14 & (1 << 23) != 0;
        if offset & 3 != 0 || ot || len > self.max_transfer() {
            return invalid_field();
        }
        let nsid = sqe.nsid;
        let full: Vec<u8> = match id {
            lid::SUPPORTED_LOG_PAGES => {
                let mut v = vec![0u8; 1024];
                for l in [0u8, 1, 2, 3, 4, 5, 6, 0x81] {
                    v[l as usize * 4] = 1;
                }
                v
            }
            lid::ERROR_INFO => {
                let mut v = vec![0u8; 64 * crate::state::ERROR_LOG_ENTRIES];
                for (i, e) in self.st.errors.iter().enumerate() {
                    v[i * 64..i * 64 + 64].copy_from_slice(e.as_bytes());
                }
                v
            }
            lid::SMART => {
                if nsid != 0 && nsid != 0xffff_ffff && !self.ns_active(nsid) {
                    return invalid_ns();
                }
                self.smart_log().as_bytes().to_vec()
            }
            lid::FIRMWARE_SLOT => self.fw_slot_log().as_bytes().to_vec(),
            lid::CHANGED_NS_LIST => {
                let mut v = vec![0u8; 4096];
                if self.st.changed_ns.len() > 1024 {
                    v[0..4].copy_from_slice(&0xffff_ffffu32.to_le_bytes());
                } else {
                    for (i, n) in self.st.changed_ns.iter().enumerate() {
                        v[i * 4..i * 4 + 4].copy_from_slice(&n.to_le_bytes());
                    }
                }
                if !rae {
                    self.st.changed_ns.clear();
                }
                v
            }
            lid::COMMANDS_SUPPORTED_EFFECTS => self.effects_log().as_bytes().to_vec(),
            lid::DEVICE_SELF_TEST => {
                let mut l = self.st.selftest_log;
                if let Some(t) = &self.st.selftest {
                    l.current_operation = t.code;
                    let total = (t.end - t.start).as_secs_f64().max(1e-9);
                    l.current_completion =
                        ((t.start.elapsed().as_secs_f64() / total) * 100.0).min(99.0) as u8;
                }
                l.as_bytes().to_vec()
            }
            lid::SANITIZE_STATUS => self.sanitize_log().as_bytes().to_vec(),
            _ => return Done::specific(cs::INVALID_LOG_PAGE),
        };
        if offset >= full.len() as u64 {
            return invalid_field();
        }
        let mut out = vec![0u8; len];
        let avail = &full[offset as usize..];
        let n = avail.len().min(len);
        out[..n].copy_from_slice(&avail[..n]);
        let d = self.send(sqe, &out);
        if d.status.is_success() && !rae {
            let ty = match id {
                lid::ERROR_INFO => Some(crate::state::AE_ERROR),
                lid::SMART => Some(AE_SMART),
                lid::FIRMWARE_SLOT | lid::CHANGED_NS_LIST => Some(AE_NOTICE),
                lid::SANITIZE_STATUS => Some(AE_IO),
                _ => None,
            };
            if let Some(t) = ty {
                self.st.aer.masked &= !(1 << t);
                // Events unmasked by this read complete AERs after this command's completion.
                self.events_after = true;
            }
        }
        d
    }

    // ------------------------------------------------------------ namespaces

    fn ns_changed(&mut self, nsid: u32) {
        if !self.st.changed_ns.contains(&nsid) {
            self.st.changed_ns.push(nsid);
        }
        if self.st.features.async_event
            & nvme_spec::features::async_event_config::NAMESPACE_ATTRIBUTE
            != 0
        {
            self.raise_event(
                AE_NOTICE,
                aen::NOTICE_NS_ATTRIBUTE_CHANGED,
                lid::CHANGED_NS_LIST,
            );
        }
    }

    fn ns_management(&mut self, sqe: &Sqe) -> Done {
        let sel = sqe.cdw10 & 0xf;
        match sel {
            0 => {
                if (sqe.cdw11 >> 24) != 0 {
                    return invalid_field();
                }
                let data = match self.xfer_from_host(sqe, 4096) {
                    Ok(d) => d,
                    Err(s) => return Done::err(s),
                };
                let nsze = u64::from_le_bytes(data[0..8].try_into().expect("8"));
                let ncap = u64::from_le_bytes(data[8..16].try_into().expect("8"));
                let flbas = data[26];
                let fmt = (flbas & 0xf) | ((flbas >> 5) & 3) << 4;
                let dps = data[29];
                let nmic = data[30];
                if fmt as usize >= self.cfg.lba_formats.len() || flbas & 0x10 != 0 {
                    return Done::specific(cs::INVALID_FORMAT);
                }
                if dps != 0 || nmic != 0 || nsze == 0 {
                    return invalid_field();
                }
                if ncap != nsze {
                    return Done::specific(cs::THIN_PROVISIONING_NOT_SUPPORTED);
                }
                let bs = self.cfg.lba_formats[fmt as usize].data_size as u64;
                let Some(bytes) = nsze.checked_mul(bs) else {
                    return Done::specific(cs::NAMESPACE_INSUFFICIENT_CAPACITY);
                };
                if bytes > self.cfg.capacity.saturating_sub(self.st.allocated()) {
                    return Done::specific(cs::NAMESPACE_INSUFFICIENT_CAPACITY);
                }
                let Some(free) = self.st.ns.iter().position(|n| n.is_none()) else {
                    return Done::specific(cs::NAMESPACE_IDENTIFIER_UNAVAILABLE);
                };
                let nsid = free as u32 + 1;
                if self.st.create_ns(nsid, nsze, fmt).is_err() {
                    return Done::generic(sc::INTERNAL_ERROR);
                }
                Done::dw0(nsid)
            }
            1 => {
                let nsid = sqe.nsid;
                let targets: Vec<u32> = if nsid == 0xffff_ffff {
                    (1..=self.cfg.max_namespaces)
                        .filter(|&n| self.ns_allocated(n))
                        .collect()
                } else if self.ns_allocated(nsid) {
                    vec![nsid]
                } else {
                    return invalid_ns();
                };
                for n in targets {
                    let was_attached = self.ns_active(n);
                    self.st.ns[n as usize - 1] = None;
                    if was_attached {
                        self.ns_changed(n);
                    }
                }
                Done::ok()
            }
            _ => invalid_field(),
        }
    }

    fn ns_attachment(&mut self, sqe: &Sqe) -> Done {
        let sel = sqe.cdw10 & 0xf;
        let nsid = sqe.nsid;
        if sel > 1 {
            return invalid_field();
        }
        if nsid == 0xffff_ffff || !self.ns_allocated(nsid) {
            return invalid_ns();
        }
        let data = match self.xfer_from_host(sqe, 4096) {
            Ok(d) => d,
            Err(s) => return Done::err(s),
        };
        let count = u16::from_le_bytes([data[0], data[1]]) as usize;
        let ids: Vec<u16> = (0..count.min(2047))
            .map(|i| u16::from_le_bytes([data[2 + 2 * i], data[3 + 2 * i]]))
            .collect();
        if count == 0 || ids.iter().any(|&c| c != CNTLID) {
            return Done::specific(cs::CONTROLLER_LIST_INVALID);
        }
        let attached = self.ns_active(nsid);
        match (sel, attached) {
            (0, true) => return Done::specific(cs::NAMESPACE_ALREADY_ATTACHED),
            (1, false) => return Done::specific(cs::NAMESPACE_NOT_ATTACHED),
            _ => {}
        }
        if let Some(Some(n)) = self.st.ns.get_mut(nsid as usize - 1) {
            n.attached = sel == 0;
            if sel == 1 {
                n.data.flush();
            }
        }
        self.ns_changed(nsid);
        Done::ok()
    }

    // ------------------------------------------------------------ format, sanitize, self-test

    fn format(&mut self, sqe: &Sqe) -> Done {
        let lbaf = ((sqe.cdw10 & 0xf) | ((sqe.cdw10 >> 12) & 3) << 4) as u8;
        let mset = sqe.cdw10 & (1 << 4) != 0;
        let pi = (sqe.cdw10 >> 5) & 7;
        let ses = (sqe.cdw10 >> 9) & 7;
        let nsid = sqe.nsid;
        let targets: Vec<u32> = if nsid == 0xffff_ffff {
            (1..=self.cfg.max_namespaces)
                .filter(|&n| self.ns_active(n))
                .collect()
        } else if self.ns_active(nsid) {
            vec![nsid]
        } else {
            return invalid_ns();
        };
        if ses > 2 {
            return invalid_field();
        }
        if lbaf as usize >= self.cfg.lba_formats.len() || pi != 0 || mset {
            return Done::specific(cs::INVALID_FORMAT);
        }
        let f = self.cfg.lba_formats[lbaf as usize];
        for n in &targets {
            if let Some(Some(ns)) = self.st.ns.get_mut(*n as usize - 1) {
                let bytes = ns.bytes();
                ns.erase();
                ns.fmt = lbaf;
                ns.lbaf = f;
                ns.nsze = bytes / f.data_size as u64;
            }
        }
        if let Some(t) = self.st.selftest.take() {
            self.st
                .push_selftest(t.code, self_test::RESULT_ABORTED_BY_FORMAT, t.nsid);
        }
        if let Some(m) = self.perf.as_mut() {
            m.clear_cache();
        }
        let lat = self.latency(self.cfg.latency.format);
        if !lat.is_zero() {
            self.st.formatting = Some((nsid, Instant::now() + lat));
        }
        Done::ok().after(lat)
    }

    fn sanitize(&mut self, sqe: &Sqe) -> Done {
        let sanact = sqe.cdw10 & 7;
        if self.st.sanitizing.is_some() {
            return Done::generic(sc::SANITIZE_IN_PROGRESS);
        }
        match sanact {
            1 => {
                if self.st.sanitize_log.sstat & 7 == sanitize_status::FAILED {
                    self.st.sanitize_log.sstat = sanitize_status::COMPLETED;
                }
                Done::ok()
            }
            2..=4 => {
                if let Some(m) = self.perf.as_mut() {
                    m.clear_cache();
                }
                let lat = self.latency(self.cfg.latency.sanitize);
                let now = Instant::now();
                self.st.sanitizing = Some(Sanitizing {
                    start: now,
                    end: now + lat,
                    cdw10: sqe.cdw10,
                });
                self.st.sanitize_log.sstat = sanitize_status::IN_PROGRESS;
                self.st.sanitize_log.scdw10 = sqe.cdw10;
                if let Some(t) = self.st.selftest.take() {
                    self.st
                        .push_selftest(t.code, self_test::RESULT_ABORTED_BY_SANITIZE, t.nsid);
                }
                Done::ok()
            }
            _ => invalid_field(),
        }
    }

    fn device_self_test(&mut self, sqe: &Sqe) -> Done {
        let stc = (sqe.cdw10 & 0xf) as u8;
        let nsid = sqe.nsid;
        if nsid != 0 && nsid != 0xffff_ffff && !self.ns_active(nsid) {
            return invalid_ns();
        }
        match stc {
            self_test::SHORT | self_test::EXTENDED => {
                if self.st.selftest.is_some() {
                    return Done::specific(cs::DEVICE_SELF_TEST_IN_PROGRESS);
                }
                let l = if stc == self_test::SHORT {
                    self.cfg.latency.selftest_short
                } else {
                    self.cfg.latency.selftest_extended
                };
                let lat = self.latency(l);
                let now = Instant::now();
                self.st.selftest = Some(SelfTest {
                    code: stc,
                    nsid,
                    start: now,
                    end: now + lat,
                });
                Done::ok()
            }
            self_test::ABORT => {
                if let Some(t) = self.st.selftest.take() {
                    self.st
                        .push_selftest(t.code, self_test::RESULT_ABORTED_BY_COMMAND, t.nsid);
                }
                Done::ok()
            }
            _ => invalid_field(),
        }
    }

    /// Progress of background operations; returns whether something finished.
    pub(crate) fn st_background(&mut self, now: Instant) -> bool {
        let mut work = false;
        if let Some((_, t)) = self.st.formatting {
            if now >= t {
                self.st.formatting = None;
                work = true;
            }
        }
        if self.st.selftest.as_ref().is_some_and(|t| now >= t.end) {
            let t = self.st.selftest.take().expect("checked");
            self.st.push_selftest(t.code, self_test::RESULT_OK, t.nsid);
            work = true;
        }
        if self.st.sanitizing.as_ref().is_some_and(|s| now >= s.end)
            && self.sh.powered.load(std::sync::atomic::Ordering::Relaxed)
        {
            let s = self.st.sanitizing.take().expect("checked");
            for n in self.st.ns.iter_mut().flatten() {
                n.erase();
            }
            let ndas = s.cdw10 & (1 << 9) != 0;
            self.st.sanitize_log.sstat = (if ndas {
                sanitize_status::COMPLETED_NO_DEALLOCATE
            } else {
                sanitize_status::COMPLETED
            }) | sanitize_status::GLOBAL_DATA_ERASED
                | (1 << 3);
            if self.enabled {
                self.raise_event(AE_IO, aen::IO_SANITIZE_COMPLETED, lid::SANITIZE_STATUS);
            }
            work = true;
        }
        work
    }

    // ------------------------------------------------------------ firmware, security

    fn fw_download(&mut self, sqe: &Sqe) -> Done {
        let numd = sqe.cdw10 as usize + 1;
        let ofst = sqe.cdw11 as usize;
        let len = numd * 4;
        if len > self.max_transfer() || ofst.saturating_mul(4) > 64 << 20 {
            return invalid_field();
        }
        let data = match self.xfer_from_host(sqe, len) {
            Ok(d) => d,
            Err(s) => return Done::err(s),
        };
        let start = ofst * 4;
        let img = &mut self.st.fw.image;
        if img.len() < start + len {
            img.resize(start + len, 0);
        }
        img[start..start + len].copy_from_slice(&data);
        Done::ok()
    }

    fn image_revision(img: &[u8]) -> [u8; 8] {
        let mut r = [b' '; 8];
        let head = &img[..img.len().min(8)];
        if !head.is_empty() && head.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            r[..head.len()].copy_from_slice(head);
        } else {
            let mut h: u32 = 0x811c_9dc5;
            for b in img {
                h = (h ^ *b as u32).wrapping_mul(0x0100_0193);
            }
            let s = format!("F{:07X}", h & 0x0fff_ffff);
            r.copy_from_slice(s.as_bytes());
        }
        r
    }

    fn fw_commit(&mut self, sqe: &Sqe) -> Done {
        let mut fs = (sqe.cdw10 & 7) as u8;
        let ca = ((sqe.cdw10 >> 3) & 7) as u8;
        if sqe.cdw10 & (1 << 31) != 0 || ca > 3 {
            return invalid_field();
        }
        if fs > FW_SLOTS {
            return Done::specific(cs::INVALID_FIRMWARE_SLOT);
        }
        if fs == 0 {
            fs = if ca <= 1 {
                (1..=FW_SLOTS)
                    .find(|&s| s != self.st.fw.active)
                    .unwrap_or(1)
            } else {
                self.st.fw.active
            };
        }
        if ca <= 1 {
            let img = std::mem::take(&mut self.st.fw.image);
            if img.is_empty() || !img.len().is_multiple_of(4) {
                return Done::specific(cs::INVALID_FIRMWARE_IMAGE);
            }
            self.st.fw.slots[fs as usize - 1] = Some(Self::image_revision(&img));
        } else if self.st.fw.slots[fs as usize - 1].is_none() {
            return Done::specific(cs::INVALID_FIRMWARE_IMAGE);
        }
        match ca {
            1 | 2 => self.st.fw.next = Some(fs),
            3 => {
                if self.st.features.async_event
                    & nvme_spec::features::async_event_config::FIRMWARE_ACTIVATION
                    != 0
                {
                    self.raise_event(
                        AE_NOTICE,
                        aen::NOTICE_FIRMWARE_ACTIVATION,
                        lid::FIRMWARE_SLOT,
                    );
                }
                self.st.fw.active = fs;
                self.st.fw.next = None;
            }
            _ => {}
        }
        Done::ok()
    }

    fn security_receive(&mut self, sqe: &Sqe) -> Done {
        let secp = (sqe.cdw10 >> 24) as u8;
        let spsp = ((sqe.cdw10 >> 8) & 0xffff) as u16;
        let al = sqe.cdw11 as usize;
        if secp != 0 || spsp != 0 || al > self.max_transfer() {
            return invalid_field();
        }
        let mut out = vec![0u8; al];
        let list = [0u8, 0, 0, 0, 0, 0, 0, 1, 0];
        let n = out.len().min(list.len());
        out[..n].copy_from_slice(&list[..n]);
        self.send(sqe, &out)
    }

    /// Test support: how long the modelled long operations take.
    #[allow(dead_code)]
    pub(crate) fn format_time(&self) -> Duration {
        self.cfg.latency.format.max
    }
}
