//! Buffers: DMA memory with a name, a data pattern, and the offset/size a command uses.
//!
//! ```text
//!  0             offset                             length
//!  |---------------|<========= size =========>|------|
//! ```
//! `length` is the memory given at creation; a command transfers `size` bytes starting at
//! `offset` (PRPs and SGLs are built from them), so a script can build unaligned or short data
//! pointers on purpose.

use crate::error::DriverError;
use nvme_pci::DmaMemory;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Pattern types (`ptype`) of buffer contents, as pynvme and PyNVMe3 define them.
pub mod ptype {
    /// `pvalue` 0: all zero bytes; any other `pvalue`: all 0xff (written as dwords).
    pub const CONST: u32 = 0;
    /// `pvalue` is a 32-bit value repeated little-endian in every dword.
    pub const DWORD: u32 = 32;
    /// Random data: the first `pvalue` percent of the bytes random, the rest zero (compressibility).
    pub const RANDOM: u32 = 0xbeef;
    /// 16-bit words increasing from `pvalue`.
    pub const INCREASING: u32 = 0x1234;
    /// 16-bit words decreasing from `pvalue`.
    pub const DECREASING: u32 = 0x4321;
}

/// The process-wide random generator behind random patterns; `srand` seeds it.
static RNG: Mutex<Option<fastrand::Rng>> = Mutex::new(None);

/// Seeds the generator of random data patterns (and of anything else the driver randomises).
pub fn srand(seed: u64) {
    *RNG.lock().unwrap_or_else(|e| e.into_inner()) = Some(fastrand::Rng::with_seed(seed));
}

/// Fills `out` with bytes from the seeded generator.
pub fn random_fill(out: &mut [u8]) {
    let mut g = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let rng = g.get_or_insert_with(fastrand::Rng::new);
    fill_rng(rng, out);
}

/// Fills `out` from `rng`, eight bytes at a time.
pub fn fill_rng(rng: &mut fastrand::Rng, out: &mut [u8]) {
    let mut chunks = out.chunks_exact_mut(8);
    for c in &mut chunks {
        c.copy_from_slice(&rng.u64(..).to_le_bytes());
    }
    let rest = chunks.into_remainder();
    let r = rng.u64(..).to_le_bytes();
    let n = rest.len();
    rest.copy_from_slice(&r[..n]);
}

/// Writes pattern (`ptype`, `pvalue`) into `out`.
pub fn fill_pattern(out: &mut [u8], ptype: u32, pvalue: u64) -> Result<(), DriverError> {
    match ptype {
        ptype::CONST => {
            let v: u32 = if pvalue == 0 { 0 } else { 0xffff_ffff };
            out.fill(0);
            for c in out.chunks_exact_mut(4) {
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
        ptype::DWORD => {
            let v = u32::try_from(pvalue)
                .map_err(|_| DriverError::invalid("pvalue", format!("{pvalue:#x} is not a 32-bit value (ptype 32)")))?;
            out.fill(0);
            for c in out.chunks_exact_mut(4) {
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
        ptype::RANDOM => {
            if pvalue > 100 {
                return Err(DriverError::invalid("pvalue", format!("{pvalue} is not a percentage 0..=100 (ptype 0xbeef)")));
            }
            let n = out.len() * pvalue as usize / 100;
            random_fill(&mut out[..n]);
            out[n..].fill(0);
        }
        ptype::INCREASING | ptype::DECREASING => {
            let mut v = pvalue as u16;
            let up = ptype == ptype::INCREASING;
            out.fill(0);
            for c in out.chunks_exact_mut(2) {
                c.copy_from_slice(&v.to_le_bytes());
                v = if up { v.wrapping_add(1) } else { v.wrapping_sub(1) };
            }
        }
        _ => {
            return Err(DriverError::invalid(
                "ptype",
                format!("{ptype:#x} is not a pattern type: 0 (all 0 or all 1), 32 (dword), 0xbeef (random), 0x1234 / 0x4321 (16-bit increasing / decreasing)"),
            ))
        }
    }
    Ok(())
}

/// A buffer of DMA memory that commands read from or write to.
#[derive(Debug, Clone)]
pub struct Buffer {
    mem: DmaMemory,
    length: usize,
    offset: usize,
    size: usize,
    /// Name shown by `dump()` and in logs.
    pub name: String,
    /// Whether commands describe this buffer with an SGL instead of PRPs.
    pub sgl: bool,
}

impl Buffer {
    /// A buffer of `length` bytes over `mem` (at least that long), filled with a pattern.
    pub fn new(
        mem: DmaMemory,
        length: usize,
        name: &str,
        pvalue: u64,
        ptype: u32,
    ) -> Result<Buffer, DriverError> {
        if length == 0 {
            return Err(DriverError::invalid("size", "0 is not valid size"));
        }
        assert!(mem.len() >= length);
        let b = Buffer {
            mem,
            length,
            offset: 0,
            size: length,
            name: name.to_string(),
            sgl: false,
        };
        b.fill_pattern(pvalue, ptype)?;
        Ok(b)
    }

    /// A buffer over memory that already holds data (nothing is filled in).
    pub fn wrap(mem: DmaMemory, length: usize, name: &str) -> Buffer {
        assert!(mem.len() >= length && length > 0);
        Buffer {
            mem,
            length,
            offset: 0,
            size: length,
            name: name.to_string(),
            sgl: false,
        }
    }

    /// Refills the whole buffer with a pattern.
    pub fn fill_pattern(&self, pvalue: u64, ptype: u32) -> Result<(), DriverError> {
        self.mem
            .with_bytes_mut(0, self.length, |b| fill_pattern(b, ptype, pvalue))
    }

    /// The DMA memory behind the buffer.
    pub fn memory(&self) -> &DmaMemory {
        &self.mem
    }

    /// Length of the memory given at creation (`len(buf)`).
    pub fn length(&self) -> usize {
        self.length
    }

    /// Offset of the first byte a command transfers.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of bytes a command transfers.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Sets the offset; offset + size must stay within the length.
    pub fn set_offset(&mut self, offset: usize) -> Result<(), DriverError> {
        if offset > self.length {
            return Err(DriverError::invalid(
                "offset",
                format!("{offset} is larger than the buffer length {}", self.length),
            ));
        }
        self.offset = offset;
        self.size = self.size.min(self.length - offset);
        Ok(())
    }

    /// Sets the size; offset + size must stay within the length.
    pub fn set_size(&mut self, size: usize) -> Result<(), DriverError> {
        if self.offset + size > self.length {
            return Err(DriverError::invalid(
                "size",
                format!(
                    "cannot be larger than physical size: offset {} + size {size} > length {}",
                    self.offset, self.length
                ),
            ));
        }
        self.size = size;
        Ok(())
    }

    /// Bus address of the first byte a command transfers (memory start + offset).
    pub fn phys_addr(&self) -> u64 {
        self.mem.iova() + self.offset as u64
    }

    fn check_range(&self, start: usize, end: usize) -> Result<(), DriverError> {
        DriverError::check_range("buffer", start as u64, end as u64, self.length as u64)
    }

    fn check_index(&self, i: usize) -> Result<(), DriverError> {
        self.check_range(i, i.saturating_add(1))
    }

    /// Byte `i`.
    pub fn get(&self, i: usize) -> Result<u8, DriverError> {
        self.check_index(i)?;
        let mut b = [0u8];
        self.mem.read(i, &mut b);
        Ok(b[0])
    }

    /// Sets byte `i`.
    pub fn set(&self, i: usize, v: u8) -> Result<(), DriverError> {
        self.check_index(i)?;
        self.mem.write(i, &[v]);
        Ok(())
    }

    /// Copies bytes `[start, start + out.len())` out.
    pub fn read(&self, start: usize, out: &mut [u8]) -> Result<(), DriverError> {
        self.check_range(start, start.saturating_add(out.len()))?;
        self.mem.read(start, out);
        Ok(())
    }

    /// Copies `data` in at `start`.
    pub fn write(&self, start: usize, data: &[u8]) -> Result<(), DriverError> {
        self.check_range(start, start.saturating_add(data.len()))?;
        self.mem.write(start, data);
        Ok(())
    }

    /// All `length` bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.mem.to_vec(0, self.length)
    }

    /// The little-endian integer in bytes `[begin, end]` (inclusive, as the spec's tables write
    /// fields); `begin` defaults to `end`. At most 16 bytes.
    pub fn data_int(&self, end: usize, begin: Option<usize>) -> Result<u128, DriverError> {
        let (b, e) = self.field_range(end, begin)?;
        if e - b + 1 > 16 {
            return Err(DriverError::invalid(
                "byte_end",
                format!(
                    "an integer field is at most 16 bytes, [{b}, {e}] has {}",
                    e - b + 1
                ),
            ));
        }
        let mut v = [0u8; 16];
        self.mem.read(b, &mut v[..e - b + 1]);
        Ok(u128::from_le_bytes(v))
    }

    /// The ASCII string in bytes `[begin, end]`, trailing spaces and NULs removed.
    pub fn data_str(&self, end: usize, begin: Option<usize>) -> Result<String, DriverError> {
        let (b, e) = self.field_range(end, begin)?;
        let v = self.mem.to_vec(b, e - b + 1);
        Ok(String::from_utf8_lossy(&v)
            .trim_end_matches([' ', '\0'])
            .to_string())
    }

    fn field_range(&self, end: usize, begin: Option<usize>) -> Result<(usize, usize), DriverError> {
        let b = begin.unwrap_or(end);
        if b > end {
            return Err(DriverError::invalid(
                "byte_begin",
                format!("{b} is after byte_end {end}"),
            ));
        }
        self.check_index(end)?;
        Ok((b, end))
    }

    /// Writes DSM range `index` (16 bytes at `index * 16`): context attributes, length, start LBA.
    pub fn set_dsm_range(
        &self,
        index: usize,
        lba: u64,
        lba_count: u32,
        attr: u32,
    ) -> Result<(), DriverError> {
        let mut r = [0u8; 16];
        r[0..4].copy_from_slice(&attr.to_le_bytes());
        r[4..8].copy_from_slice(&lba_count.to_le_bytes());
        r[8..16].copy_from_slice(&lba.to_le_bytes());
        self.write(index * 16, &r)
    }

    /// A hexdump of the first `size` bytes (all when `None` or larger than the buffer), after a
    /// line with the name.
    pub fn dump(&self, size: Option<usize>) -> String {
        let n = size.filter(|&s| s <= self.length).unwrap_or(self.length);
        let data = self.mem.to_vec(0, n);
        let mut out = format!("{}\n", self.name);
        for (i, line) in data.chunks(16).enumerate() {
            let _ = write!(out, "[0x{:08x}] ", i * 16);
            for (j, b) in line.iter().enumerate() {
                let sep = if j == 8 { "  " } else { " " };
                let _ = write!(out, "{sep}{b:02x}");
            }
            for j in line.len()..16 {
                out.push_str(if j == 8 { "    " } else { "   " });
            }
            out.push_str("  ");
            out.extend(line.iter().map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            }));
            out.push('\n');
        }
        out
    }

    /// Whether two buffers hold the same bytes over their whole lengths.
    pub fn same_data(&self, other: &Buffer) -> bool {
        self.length == other.length && self.to_vec() == other.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(n: usize) -> DmaMemory {
        nvme_pci::dma_alloc(n).unwrap()
    }

    #[test]
    fn patterns() {
        let mut v = vec![0u8; 10];
        fill_pattern(&mut v, 0, 1).unwrap();
        assert_eq!(v, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
        fill_pattern(&mut v, 32, 0x1234_5678).unwrap();
        assert_eq!(&v[..4], &[0x78, 0x56, 0x34, 0x12]);
        fill_pattern(&mut v, 0x1234, 0xfffe).unwrap();
        assert_eq!(&v[..6], &[0xfe, 0xff, 0xff, 0xff, 0, 0]);
        let mut r = vec![0u8; 1000];
        fill_pattern(&mut r, 0xbeef, 50).unwrap();
        assert!(r[500..].iter().all(|&b| b == 0));
        assert!(r[..500].iter().any(|&b| b != 0));
        assert!(fill_pattern(&mut r, 0xbeef, 101).is_err());
        assert!(fill_pattern(&mut r, 7, 0).is_err());
    }

    #[test]
    fn fields_offsets_and_dump() {
        let mut b = Buffer::new(mem(4096), 512 + 3, "x", 0, 0).unwrap();
        b.write(24, b"MODEL   ").unwrap();
        assert_eq!(b.data_str(31, Some(24)).unwrap(), "MODEL");
        b.write(0, &[0x34, 0x12]).unwrap();
        assert_eq!(b.data_int(1, Some(0)).unwrap(), 0x1234);
        assert_eq!(b.data_int(1, None).unwrap(), 0x12);
        b.set_offset(3).unwrap();
        b.set_size(512).unwrap();
        assert_eq!(b.phys_addr(), b.memory().iova() + 3);
        assert!(b.set_size(513).is_err());
        assert!(b.get(515).is_err());
        let d = b.dump(Some(20));
        assert!(d.starts_with("x\n[0x00000000]  34 12 00"), "{d}");
        assert_eq!(d.lines().count(), 3);
        b.set_dsm_range(1, 0x10, 8, 0).unwrap();
        assert_eq!(b.data_int(16 + 15, Some(16 + 8)).unwrap(), 0x10);
    }
}
