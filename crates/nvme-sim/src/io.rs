//! NVM command set I/O commands.

use std::time::Duration;

use nvme_spec::cmd::{io_flags, nvm, CopyRange, DsmRange};
use nvme_spec::status::{cs, media, sc};
use nvme_spec::{Sqe, Status};
use zerocopy::IntoBytes;

use crate::ctrl::{Controller, Done};
use crate::perf::PerfOp;

/// LBAs `start..end` an I/O command touches, for fault matching.
pub(crate) fn lba_range(sqe: &Sqe) -> Option<(u64, u64)> {
    match sqe.opc() {
        nvm::READ
        | nvm::WRITE
        | nvm::COMPARE
        | nvm::WRITE_UNCORRECTABLE
        | nvm::WRITE_ZEROES
        | nvm::VERIFY => {
            let s = sqe.slba();
            Some((s, s.saturating_add(sqe.nlb() as u64)))
        }
        _ => None,
    }
}

fn flip_bits(rng: &mut fastrand::Rng, data: &mut [u8], n: u32) {
    if data.is_empty() {
        return;
    }
    for _ in 0..n {
        let i = rng.usize(..data.len());
        data[i] ^= 1 << rng.u8(..8);
    }
}

impl Controller {
    /// Executes one I/O command.
    pub(crate) fn io(&mut self, _sqid: u16, sqe: &Sqe) -> Done {
        let opc = sqe.opc();
        if sqe.fuse() != 0 {
            return Done::generic(sc::INVALID_FIELD);
        }
        if self.st.sanitizing.is_some() {
            return Done::generic(sc::SANITIZE_IN_PROGRESS);
        }
        if opc == nvm::FLUSH {
            return self.flush(sqe);
        }
        let nsid = sqe.nsid;
        if self.st.active_ns(nsid).is_none() {
            return Done::generic(sc::INVALID_NAMESPACE_OR_FORMAT);
        }
        if let Some((f, _)) = self.st.formatting {
            if f == nsid || f == 0xffff_ffff {
                return Done::err(Status::new(0, sc::FORMAT_IN_PROGRESS));
            }
        }
        let lat = match opc {
            nvm::READ | nvm::COMPARE | nvm::VERIFY => self.cfg.latency.read,
            nvm::WRITE | nvm::WRITE_ZEROES | nvm::WRITE_UNCORRECTABLE | nvm::COPY => {
                self.cfg.latency.write
            }
            nvm::DSM => self.cfg.latency.trim,
            _ => Default::default(),
        };
        let mut d = match opc {
            nvm::READ => self.rw(sqe, false),
            nvm::WRITE => self.rw(sqe, true),
            nvm::COMPARE => self.compare(sqe),
            nvm::WRITE_UNCORRECTABLE => self.write_uncorrectable(sqe),
            nvm::WRITE_ZEROES => self.write_zeroes(sqe),
            nvm::DSM => self.dsm(sqe),
            nvm::VERIFY => self.verify(sqe),
            nvm::COPY => self.copy(sqe),
            _ => Done::generic(sc::INVALID_OPCODE),
        };
        if !lat.is_zero() {
            d.after += self.latency(lat);
        }
        if self.perf.is_some() && d.status.is_success() {
            d.after += self.perf_time(sqe);
        }
        d
    }

    /// The benchmark profile's time for a successful command (see `perf`).
    fn perf_time(&mut self, sqe: &Sqe) -> Duration {
        let bs = self.st.active_ns(sqe.nsid).map_or(512, |ns| ns.bs());
        let blocks = sqe.nlb() as u64;
        let op = match sqe.opc() {
            nvm::READ | nvm::COMPARE | nvm::VERIFY => PerfOp::Read(blocks * bs),
            nvm::WRITE | nvm::WRITE_ZEROES | nvm::WRITE_UNCORRECTABLE => PerfOp::Write(blocks * bs),
            nvm::COPY => PerfOp::Write(bs),
            nvm::DSM => {
                let nr = (sqe.cdw10 & 0xff) as usize + 1;
                let mut all = [DsmRange::default(); 256];
                let total = if self.map.gather(&self.bus, all[..nr].as_mut_bytes()).is_ok() {
                    all[..nr].iter().map(|r| r.nlb as u64 * bs).sum()
                } else {
                    0
                };
                PerfOp::Trim(total)
            }
            _ => return Duration::ZERO,
        };
        let tail = self.rng.u32(..1_000_000);
        let now = std::time::Instant::now();
        self.perf
            .as_mut()
            .map_or(Duration::ZERO, |m| m.command(now, op, tail))
    }

    fn flush(&mut self, sqe: &Sqe) -> Done {
        let nsid = sqe.nsid;
        if nsid == 0xffff_ffff {
            self.st.flush_all();
        } else {
            let Some(ns) = self.st.active_ns(nsid) else {
                return Done::generic(sc::INVALID_NAMESPACE_OR_FORMAT);
            };
            ns.data.flush();
            ns.meta.flush();
        }
        let l = self.cfg.latency.flush;
        let after = if l.is_zero() {
            Duration::ZERO
        } else {
            self.latency(l)
        };
        Done::ok().after(after)
    }

    /// Checks the LBA range of a command against the namespace; returns (slba, nlb, bs, ms).
    fn range(&mut self, sqe: &Sqe) -> Result<(u64, u64, u64, u64), Done> {
        let ns = self.st.active_ns(sqe.nsid).expect("checked by io()");
        let slba = sqe.slba();
        let nlb = sqe.nlb() as u64;
        if slba.checked_add(nlb).is_none_or(|e| e > ns.nsze) {
            return Err(Done::generic(sc::LBA_OUT_OF_RANGE));
        }
        Ok((slba, nlb, ns.bs(), ns.ms()))
    }

    /// Maps the command's data pointer for `len` bytes.
    fn map_data(&mut self, sqe: &Sqe, len: u64, to_device: bool) -> Result<(), Status> {
        match sqe.psdt() {
            0 => self.map.prp(&self.bus, sqe.prp1, sqe.prp2, len, self.mps),
            1 | 2 => {
                let mut d = [0u8; 16];
                d[..8].copy_from_slice(&sqe.prp1.to_le_bytes());
                d[8..].copy_from_slice(&sqe.prp2.to_le_bytes());
                self.map.sgl(&self.bus, d, len, to_device)
            }
            _ => Err(Status::new(0, sc::INVALID_FIELD).dnr()),
        }
    }

    /// The bus address of the metadata buffer.
    fn metadata_address(&mut self, sqe: &Sqe) -> Result<u64, Status> {
        if sqe.psdt() == 2 {
            let mut d = [0u8; 16];
            self.bus
                .read(sqe.mptr, &mut d)
                .map_err(|_| Status::new(0, sc::DATA_TRANSFER_ERROR))?;
            if d[15] >> 4 != 0 {
                return Err(Status::new(0, sc::SGL_DESCRIPTOR_TYPE_INVALID).dnr());
            }
            Ok(u64::from_le_bytes(d[..8].try_into().expect("8")))
        } else {
            Ok(sqe.mptr)
        }
    }

    fn check_len(&self, len: u64) -> bool {
        self.cfg.mdts == 0 || len <= (self.mps << self.cfg.mdts)
    }

    fn rw(&mut self, sqe: &Sqe, write: bool) -> Done {
        let (slba, nlb, bs, ms) = match self.range(sqe) {
            Ok(r) => r,
            Err(d) => return d,
        };
        let len = nlb * bs;
        if !self.check_len(len) {
            return Done::generic(sc::INVALID_FIELD);
        }
        if write {
            self.st.smart.host_writes += 1;
            self.st.smart.written_512 += len / 512;
        } else {
            self.st.smart.host_reads += 1;
            self.st.smart.read_512 += len / 512;
        }
        if self.cfg.null_media {
            return Done::ok();
        }
        if let Err(s) = self.map_data(sqe, len, write) {
            return Done::err(s);
        }
        let mlen = (nlb * ms) as usize;
        if self.buf.len() < len as usize {
            self.buf.resize(len as usize, 0);
        }
        if self.mbuf.len() < mlen {
            self.mbuf.resize(mlen, 0);
        }
        let mut buf = std::mem::take(&mut self.buf);
        let d = if write {
            self.do_write(sqe, slba, nlb, bs, ms, &mut buf)
        } else {
            self.do_read(sqe, slba, nlb, bs, ms, &mut buf)
        };
        self.buf = buf;
        d
    }

    fn do_read(
        &mut self,
        sqe: &Sqe,
        slba: u64,
        nlb: u64,
        bs: u64,
        ms: u64,
        buf: &mut [u8],
    ) -> Done {
        let len = (nlb * bs) as usize;
        let data = &mut buf[..len];
        let stale = self.fx.stale;
        let flip = self.fx.flip;
        let ns = self.st.active_ns(sqe.nsid).expect("checked");
        if ns.has_unc(slba, nlb) {
            self.st.smart.media_errors += 1;
            return Done::media(media::UNRECOVERED_READ_ERROR);
        }
        if !stale && flip == 0 && ms == 0 {
            // Straight from the store to host memory: no staging copy.
            let mut cursor = self.map.cursor();
            let bus = &self.bus;
            match ns
                .data
                .visit(slba * bs, len, |piece| cursor.put(bus, piece))
            {
                Ok(true) => return Done::ok(),
                Ok(false) => {}
                Err(s) => return Done::err(s),
            }
        }
        ns.data.read(slba * bs, data);
        if stale && !ns.history.is_empty() {
            for i in 0..nlb {
                if let Some(old) = ns.history.get(&(slba + i)) {
                    data[(i * bs) as usize..((i + 1) * bs) as usize].copy_from_slice(old);
                }
            }
        }
        if ms > 0 {
            let mlen = (nlb * ms) as usize;
            ns.meta.read(slba * ms, &mut self.mbuf[..mlen]);
        }
        if flip > 0 {
            flip_bits(&mut self.rng, data, flip);
        }
        if let Err(s) = self.map.scatter(&self.bus, data) {
            return Done::err(s);
        }
        if ms > 0 {
            let mlen = (nlb * ms) as usize;
            let addr = match self.metadata_address(sqe) {
                Ok(a) => a,
                Err(s) => return Done::err(s),
            };
            if self.bus.write(addr, &self.mbuf[..mlen]).is_err() {
                return Done::generic(sc::DATA_TRANSFER_ERROR);
            }
        }
        Done::ok()
    }

    fn do_write(
        &mut self,
        sqe: &Sqe,
        slba: u64,
        nlb: u64,
        bs: u64,
        ms: u64,
        buf: &mut [u8],
    ) -> Done {
        let len = (nlb * bs) as usize;
        let data = &mut buf[..len];
        if let Err(s) = self.map.gather(&self.bus, data) {
            return Done::err(s);
        }
        let mlen = (nlb * ms) as usize;
        if ms > 0 {
            let addr = match self.metadata_address(sqe) {
                Ok(a) => a,
                Err(s) => return Done::err(s),
            };
            if self.bus.read(addr, &mut self.mbuf[..mlen]).is_err() {
                return Done::generic(sc::DATA_TRANSFER_ERROR);
            }
        }
        if self.fx.lost_write {
            return Done::ok();
        }
        let through = sqe.cdw12 & io_flags::FUA != 0 || !self.st.features.vwc;
        let keep = self.faults.armed() && self.faults.keeps_history(sqe.nsid, slba, slba + nlb);
        let misdirect = self.fx.misdirect;
        let ns = self.st.active_ns(sqe.nsid).expect("checked");
        let target = match misdirect {
            Some(off) => {
                let n = ns.nsze as i128;
                ((slba as i128 + off as i128).rem_euclid(n)) as u64
            }
            None => slba,
        };
        if keep {
            for i in 0..nlb {
                let mut old = vec![0u8; bs as usize].into_boxed_slice();
                ns.data.read((target + i) * bs, &mut old);
                ns.history.insert(target + i, old);
            }
        }
        if target + nlb <= ns.nsze {
            ns.data.write(target * bs, data, through);
            if ms > 0 {
                ns.meta.write(target * ms, &self.mbuf[..mlen], through);
            }
        } else {
            // A misdirected write that wraps: block by block.
            for i in 0..nlb {
                let l = (target + i) % ns.nsze;
                ns.data.write(
                    l * bs,
                    &data[(i * bs) as usize..((i + 1) * bs) as usize],
                    through,
                );
            }
        }
        ns.clear_unc(target, nlb);
        Done::ok()
    }

    fn compare(&mut self, sqe: &Sqe) -> Done {
        let (slba, nlb, bs, _ms) = match self.range(sqe) {
            Ok(r) => r,
            Err(d) => return d,
        };
        let len = nlb * bs;
        if !self.check_len(len) {
            return Done::generic(sc::INVALID_FIELD);
        }
        if let Err(s) = self.map_data(sqe, len, true) {
            return Done::err(s);
        }
        let len = len as usize;
        if self.buf.len() < 2 * len {
            self.buf.resize(2 * len, 0);
        }
        let mut buf = std::mem::take(&mut self.buf);
        let (host, media_buf) = buf.split_at_mut(len);
        let r = self.map.gather(&self.bus, host);
        let d = match r {
            Err(s) => Done::err(s),
            Ok(()) => {
                let ns = self.st.active_ns(sqe.nsid).expect("checked");
                if ns.has_unc(slba, nlb) {
                    self.st.smart.media_errors += 1;
                    Done::media(media::UNRECOVERED_READ_ERROR)
                } else {
                    ns.data.read(slba * bs, &mut media_buf[..len]);
                    if host[..] != media_buf[..len] {
                        Done::media(media::COMPARE_FAILURE)
                    } else {
                        Done::ok()
                    }
                }
            }
        };
        self.buf = buf;
        d
    }

    fn write_uncorrectable(&mut self, sqe: &Sqe) -> Done {
        let (slba, nlb, _, _) = match self.range(sqe) {
            Ok(r) => r,
            Err(d) => return d,
        };
        let ns = self.st.active_ns(sqe.nsid).expect("checked");
        ns.unc.extend(slba..slba + nlb);
        Done::ok()
    }

    fn write_zeroes(&mut self, sqe: &Sqe) -> Done {
        let (slba, nlb, bs, ms) = match self.range(sqe) {
            Ok(r) => r,
            Err(d) => return d,
        };
        if self.cfg.null_media {
            return Done::ok();
        }
        let through = sqe.cdw12 & io_flags::FUA != 0 || !self.st.features.vwc;
        let ns = self.st.active_ns(sqe.nsid).expect("checked");
        ns.data.zero(slba * bs, nlb * bs, through);
        if ms > 0 {
            ns.meta.zero(slba * ms, nlb * ms, through);
        }
        ns.clear_unc(slba, nlb);
        Done::ok()
    }

    fn verify(&mut self, sqe: &Sqe) -> Done {
        let (slba, nlb, _, _) = match self.range(sqe) {
            Ok(r) => r,
            Err(d) => return d,
        };
        let ns = self.st.active_ns(sqe.nsid).expect("checked");
        if ns.has_unc(slba, nlb) {
            self.st.smart.media_errors += 1;
            return Done::media(media::UNRECOVERED_READ_ERROR);
        }
        Done::ok()
    }

    fn dsm(&mut self, sqe: &Sqe) -> Done {
        let nr = (sqe.cdw10 & 0xff) as usize + 1;
        let ad = sqe.cdw11 & 4 != 0;
        let len = nr * 16;
        if let Err(s) = self.map_data(sqe, len as u64, true) {
            return Done::err(s);
        }
        let mut all = [DsmRange::default(); 256];
        if let Err(s) = self.map.gather(&self.bus, all[..nr].as_mut_bytes()) {
            return Done::err(s);
        }
        let ranges = &all[..nr];
        let ns = self.st.active_ns(sqe.nsid).expect("checked");
        for r in ranges {
            if r.slba.checked_add(r.nlb as u64).is_none_or(|e| e > ns.nsze) {
                return Done::generic(sc::LBA_OUT_OF_RANGE);
            }
        }
        if ad && !self.cfg.null_media {
            let (bs, ms) = (ns.bs(), ns.ms());
            let through = !self.st.features.vwc;
            let ns = self.st.active_ns(sqe.nsid).expect("checked");
            for r in ranges {
                let n = r.nlb as u64;
                ns.data.zero(r.slba * bs, n * bs, through);
                if ms > 0 {
                    ns.meta.zero(r.slba * ms, n * ms, through);
                }
                ns.clear_unc(r.slba, n);
            }
        }
        Done::ok()
    }

    fn copy(&mut self, sqe: &Sqe) -> Done {
        let sdlba = sqe.slba();
        let nr = (sqe.cdw12 & 0xff) as usize + 1;
        let df = (sqe.cdw12 >> 8) & 0xf;
        if df != 0 {
            return Done::generic(sc::INVALID_FIELD);
        }
        if nr > 128 {
            return Done::specific(cs::COMMAND_SIZE_LIMIT_EXCEEDED);
        }
        let len = nr * 32;
        if let Err(s) = self.map_data(sqe, len as u64, true) {
            return Done::err(s);
        }
        let mut all = [CopyRange::default(); 128];
        if let Err(s) = self.map.gather(&self.bus, all[..nr].as_mut_bytes()) {
            return Done::err(s);
        }
        let ranges = &all[..nr];
        let through = sqe.cdw12 & io_flags::FUA != 0 || !self.st.features.vwc;
        let ns = self.st.active_ns(sqe.nsid).expect("checked");
        let mut total = 0u64;
        for r in ranges {
            let n = r.nlb as u64 + 1;
            if n > 128 {
                return Done::specific(cs::COMMAND_SIZE_LIMIT_EXCEEDED);
            }
            total += n;
            if r.slba.checked_add(n).is_none_or(|e| e > ns.nsze) {
                return Done::generic(sc::LBA_OUT_OF_RANGE);
            }
            if ns.has_unc(r.slba, n) {
                return Done::media(media::UNRECOVERED_READ_ERROR);
            }
        }
        if total > 1024 {
            return Done::specific(cs::COMMAND_SIZE_LIMIT_EXCEEDED);
        }
        if sdlba.checked_add(total).is_none_or(|e| e > ns.nsze) {
            return Done::generic(sc::LBA_OUT_OF_RANGE);
        }
        if self.cfg.null_media {
            return Done::ok();
        }
        let bs = ns.bs();
        let mut block = vec![0u8; bs as usize];
        let mut dst = sdlba;
        for r in ranges {
            for l in r.slba..=r.slba + r.nlb as u64 {
                ns.data.read(l * bs, &mut block);
                ns.data.write(dst * bs, &block, through);
                dst += 1;
            }
        }
        ns.clear_unc(sdlba, total);
        self.st.smart.host_writes += 1;
        Done::ok()
    }
}
