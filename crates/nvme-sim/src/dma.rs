//! Data pointers: PRP entries and lists, SGL descriptors and segments, turned into a list of bus
//! address segments (kept in a reused buffer: nothing is allocated per command in steady state).

use nvme_spec::status::sc;
use nvme_spec::Status;

use crate::shared::Bus;

/// A segment address that discards the data (SGL bit bucket).
pub const BIT_BUCKET: u64 = u64::MAX;

/// The most SGL descriptors one command may use, a guard against looping lists.
const MAX_SGL_DESCRIPTORS: usize = 4096;

fn st(code: u8) -> Status {
    Status::new(0, code)
}

/// Reusable buffers for mapping data pointers.
#[derive(Default)]
pub(crate) struct Mapper {
    /// The mapped segments: (bus address, length).
    pub segs: Vec<(u64, u32)>,
    list: Vec<u64>,
}

impl Mapper {
    pub fn new() -> Mapper {
        Mapper {
            segs: Vec::with_capacity(1024),
            list: Vec::with_capacity(512),
        }
    }

    fn push(&mut self, addr: u64, len: u32) {
        if len == 0 {
            return;
        }
        if let Some(last) = self.segs.last_mut() {
            if last.0 != BIT_BUCKET
                && addr != BIT_BUCKET
                && last.0.wrapping_add(last.1 as u64) == addr
            {
                if let Some(n) = last.1.checked_add(len) {
                    last.1 = n;
                    return;
                }
            }
        }
        self.segs.push((addr, len));
    }

    /// Maps `len` bytes described by PRP1/PRP2 with memory page size `mps`.
    pub fn prp(
        &mut self,
        bus: &Bus,
        prp1: u64,
        prp2: u64,
        len: u64,
        mps: u64,
    ) -> Result<(), Status> {
        self.segs.clear();
        if len == 0 {
            return Ok(());
        }
        if prp1 & 3 != 0 {
            return Err(st(sc::INVALID_PRP_OFFSET));
        }
        let first = len.min(mps - (prp1 & (mps - 1)));
        self.push(prp1, first as u32);
        let mut rem = len - first;
        if rem == 0 {
            return Ok(());
        }
        if rem <= mps {
            if prp2 & (mps - 1) != 0 {
                return Err(st(sc::INVALID_PRP_OFFSET));
            }
            self.push(prp2, rem as u32);
            return Ok(());
        }
        if prp2 & 7 != 0 {
            return Err(st(sc::INVALID_PRP_OFFSET));
        }
        let mut list = prp2;
        let mut entries = std::mem::take(&mut self.list);
        let result = (|| loop {
            let needed = rem.div_ceil(mps);
            let slots = (mps - (list & (mps - 1))) / 8;
            let take = if needed <= slots { needed } else { slots };
            entries.clear();
            entries.resize(take as usize, 0);
            let bytes = zerocopy::IntoBytes::as_mut_bytes(entries.as_mut_slice());
            bus.read(list, bytes)
                .map_err(|_| st(sc::DATA_TRANSFER_ERROR))?;
            let data_entries = if needed <= slots { take } else { take - 1 };
            for &e in &entries[..data_entries as usize] {
                let e = u64::from_le(e);
                if e & (mps - 1) != 0 {
                    return Err(st(sc::INVALID_PRP_OFFSET));
                }
                let n = rem.min(mps);
                self.push(e, n as u32);
                rem -= n;
            }
            if rem == 0 {
                return Ok(());
            }
            let next = u64::from_le(entries[take as usize - 1]);
            if next & (mps - 1) != 0 {
                return Err(st(sc::INVALID_PRP_OFFSET));
            }
            list = next;
        })();
        self.list = entries;
        result
    }

    /// Maps `len` bytes described by the SGL descriptor in the command's data pointer.
    /// `to_device` is true when data moves from host to device (bit buckets are invalid then).
    pub fn sgl(
        &mut self,
        bus: &Bus,
        dptr: [u8; 16],
        len: u64,
        to_device: bool,
    ) -> Result<(), Status> {
        self.segs.clear();
        let mut total: u64 = 0;
        let mut count = 0usize;
        // The current descriptor and, when walking a segment, where the rest of it is.
        let mut desc = dptr;
        let mut seg_next: u64 = 0;
        let mut seg_left: u64 = 0; // descriptors left in the current segment after `desc`
        let mut in_last = false;
        loop {
            count += 1;
            if count > MAX_SGL_DESCRIPTORS {
                return Err(st(sc::INVALID_NUMBER_OF_SGL_DESCRIPTORS));
            }
            let addr = u64::from_le_bytes(desc[0..8].try_into().expect("8 bytes"));
            let dlen = u32::from_le_bytes(desc[8..12].try_into().expect("4 bytes"));
            let ty = desc[15] >> 4;
            let sub = desc[15] & 0xf;
            match ty {
                0 | 1 => {
                    if sub != 0 {
                        return Err(st(if sub == 1 {
                            sc::SGL_OFFSET_INVALID
                        } else {
                            sc::SGL_DESCRIPTOR_TYPE_INVALID
                        }));
                    }
                    if ty == 1 && to_device {
                        return Err(st(sc::SGL_DESCRIPTOR_TYPE_INVALID));
                    }
                    let want = (len - total.min(len)).min(dlen as u64);
                    self.push(if ty == 1 { BIT_BUCKET } else { addr }, want as u32);
                    total += dlen as u64;
                }
                2 | 3 => {
                    if sub != 0 {
                        return Err(st(if sub == 1 {
                            sc::SGL_OFFSET_INVALID
                        } else {
                            sc::SGL_DESCRIPTOR_TYPE_INVALID
                        }));
                    }
                    // A segment descriptor may only be the last descriptor of a (non-last) segment.
                    if in_last || seg_left != 0 {
                        return Err(st(sc::INVALID_SGL_SEGMENT_DESCRIPTOR));
                    }
                    if dlen == 0 {
                        return Err(st(sc::INVALID_NUMBER_OF_SGL_DESCRIPTORS));
                    }
                    if dlen % 16 != 0 || addr & 3 != 0 {
                        return Err(st(sc::INVALID_SGL_SEGMENT_DESCRIPTOR));
                    }
                    in_last = ty == 3;
                    seg_next = addr;
                    seg_left = dlen as u64 / 16;
                }
                _ => return Err(st(sc::SGL_DESCRIPTOR_TYPE_INVALID)),
            }
            if seg_left == 0 {
                break;
            }
            bus.read(seg_next, &mut desc)
                .map_err(|_| st(sc::DATA_TRANSFER_ERROR))?;
            seg_next += 16;
            seg_left -= 1;
        }
        if total < len {
            return Err(st(sc::DATA_SGL_LENGTH_INVALID));
        }
        Ok(())
    }

    /// Copies `data` to the mapped segments.
    pub fn scatter(&self, bus: &Bus, mut data: &[u8]) -> Result<(), Status> {
        for &(addr, len) in &self.segs {
            let n = (len as usize).min(data.len());
            if addr != BIT_BUCKET {
                bus.write(addr, &data[..n])
                    .map_err(|_| st(sc::DATA_TRANSFER_ERROR))?;
            }
            data = &data[n..];
        }
        Ok(())
    }

    /// A cursor that writes data to the mapped segments piece by piece, in order.
    pub fn cursor(&self) -> ScatterCursor<'_> {
        ScatterCursor {
            segs: &self.segs,
            seg: 0,
            off: 0,
        }
    }

    /// Fills `data` from the mapped segments.
    pub fn gather(&self, bus: &Bus, mut data: &mut [u8]) -> Result<(), Status> {
        for &(addr, len) in &self.segs {
            let n = (len as usize).min(data.len());
            let (head, rest) = data.split_at_mut(n);
            if addr != BIT_BUCKET {
                bus.read(addr, head)
                    .map_err(|_| st(sc::DATA_TRANSFER_ERROR))?;
            }
            data = rest;
        }
        Ok(())
    }
}

/// Writes a transfer to its segments in pieces, as they come from storage (see
/// [`Mapper::cursor`]): no staging copy of the whole transfer.
pub struct ScatterCursor<'a> {
    segs: &'a [(u64, u32)],
    seg: usize,
    off: usize,
}

impl ScatterCursor<'_> {
    /// Writes the next `data.len()` bytes of the transfer.
    pub fn put(&mut self, bus: &Bus, mut data: &[u8]) -> Result<(), Status> {
        while !data.is_empty() {
            let Some(&(addr, len)) = self.segs.get(self.seg) else {
                return Ok(());
            };
            let n = (len as usize - self.off).min(data.len());
            if addr != BIT_BUCKET {
                bus.write(addr + self.off as u64, &data[..n])
                    .map_err(|_| st(sc::DATA_TRANSFER_ERROR))?;
            }
            self.off += n;
            if self.off == len as usize {
                self.seg += 1;
                self.off = 0;
            }
            data = &data[n..];
        }
        Ok(())
    }
}
