//! The NVM media of a namespace: sparse in memory (or in a backing file), behind a volatile write
//! cache that is lost when power goes away unless it was flushed.
//!
//! Storage is kept in chunks of [`CHUNK`] bytes that appear only where something was written, so a
//! namespace of any size costs nothing until it is written, and random 4 KiB writes cost their
//! data plus about 1 % (the chunk's index entry). The write cache holds whole chunks:
//! a cached chunk is the current content of that chunk (or `None`: deallocated), and a flush moves
//! the cached chunks to the media.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::SimError;

/// Bytes per storage chunk: a 4 KiB write (aligned) costs one chunk.
pub const CHUNK: u64 = 4 * 1024;

/// Bytes a `HashMap` with `m`'s capacity allocated: hashbrown's buckets (a power of two, 8/7 of
/// the capacity once there are at least 8) of one entry and one control byte each, plus a group
/// of 16 control bytes, the entries' part rounded up to 16.
fn map_bytes<V>(m: &HashMap<u64, V>) -> usize {
    let cap = m.capacity();
    if cap == 0 {
        return 0;
    }
    let buckets = if cap < 7 {
        cap + 1
    } else {
        (cap * 8 / 7).next_power_of_two()
    };
    (buckets * std::mem::size_of::<(u64, V)>()).next_multiple_of(16) + buckets + 16
}

enum Backend {
    Memory(HashMap<u64, Box<[u8]>>),
    File { file: File, path: PathBuf },
}

/// Byte-addressed sparse storage with an optional write-back cache.
pub(crate) struct Sparse {
    backend: Backend,
    cache: HashMap<u64, Option<Box<[u8]>>>,
}

fn zero_chunk() -> Box<[u8]> {
    vec![0u8; CHUNK as usize].into_boxed_slice()
}

impl Sparse {
    pub fn memory() -> Sparse {
        Sparse {
            backend: Backend::Memory(HashMap::new()),
            cache: HashMap::new(),
        }
    }

    pub fn file(path: &Path, size: u64) -> Result<Sparse, SimError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|source| SimError::Backing {
                path: path.to_path_buf(),
                source,
            })?;
        let len = file
            .metadata()
            .map_err(|source| SimError::Backing {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        if len < size {
            file.set_len(size).map_err(|source| SimError::Backing {
                path: path.to_path_buf(),
                source,
            })?;
        }
        Ok(Sparse {
            backend: Backend::File {
                file,
                path: path.to_path_buf(),
            },
            cache: HashMap::new(),
        })
    }

    /// Reads chunk `c` from the media (not the cache) into `out`.
    fn media_chunk(&self, c: u64, out: &mut [u8]) {
        match &self.backend {
            Backend::Memory(m) => match m.get(&c) {
                Some(d) => out.copy_from_slice(d),
                None => out.fill(0),
            },
            Backend::File { file, .. } => {
                if file.read_exact_at(out, c * CHUNK).is_err() {
                    out.fill(0);
                }
            }
        }
    }

    fn read_media_at(&self, c: u64, off: usize, out: &mut [u8]) {
        match &self.backend {
            Backend::Memory(m) => match m.get(&c) {
                Some(d) => out.copy_from_slice(&d[off..off + out.len()]),
                None => out.fill(0),
            },
            Backend::File { file, .. } => {
                if file.read_exact_at(out, c * CHUNK + off as u64).is_err() {
                    out.fill(0);
                }
            }
        }
    }

    /// Hands the `len` bytes at `pos` to `f` as slices of the storage itself (the cache, the
    /// memory chunks, or zeroes for what was never written), in order, without copying them.
    /// Returns false, calling nothing, for a file-backed store: the caller reads instead.
    pub fn visit<E>(
        &self,
        mut pos: u64,
        mut len: usize,
        mut f: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<bool, E> {
        static ZERO: [u8; CHUNK as usize] = [0; CHUNK as usize];
        let Backend::Memory(m) = &self.backend else {
            return Ok(false);
        };
        while len > 0 {
            let c = pos / CHUNK;
            let off = (pos % CHUNK) as usize;
            let n = len.min(CHUNK as usize - off);
            let chunk: &[u8] = match self.cache.get(&c) {
                Some(Some(d)) => d,
                Some(None) => &ZERO,
                None => m.get(&c).map_or(&ZERO[..], |d| d),
            };
            f(&chunk[off..off + n])?;
            len -= n;
            pos += n as u64;
        }
        Ok(true)
    }

    /// Reads `out.len()` bytes at byte offset `pos`.
    pub fn read(&self, mut pos: u64, mut out: &mut [u8]) {
        while !out.is_empty() {
            let c = pos / CHUNK;
            let off = (pos % CHUNK) as usize;
            let n = out.len().min(CHUNK as usize - off);
            let (head, rest) = out.split_at_mut(n);
            match self.cache.get(&c) {
                Some(Some(d)) => head.copy_from_slice(&d[off..off + n]),
                Some(None) => head.fill(0),
                None => self.read_media_at(c, off, head),
            }
            out = rest;
            pos += n as u64;
        }
    }

    /// Writes `data` at byte offset `pos`; through the cache unless `through`.
    pub fn write(&mut self, mut pos: u64, mut data: &[u8], through: bool) {
        while !data.is_empty() {
            let c = pos / CHUNK;
            let off = (pos % CHUNK) as usize;
            let n = data.len().min(CHUNK as usize - off);
            let (head, rest) = data.split_at(n);
            if through {
                if let Some(entry) = self.cache.get_mut(&c) {
                    let d = entry.get_or_insert_with(zero_chunk);
                    d[off..off + n].copy_from_slice(head);
                }
                self.media_write(c, off, head);
            } else {
                if !self.cache.contains_key(&c) {
                    let mut d = zero_chunk();
                    self.media_chunk(c, &mut d);
                    self.cache.insert(c, Some(d));
                }
                let entry = self.cache.get_mut(&c).expect("inserted above");
                let d = entry.get_or_insert_with(zero_chunk);
                d[off..off + n].copy_from_slice(head);
            }
            data = rest;
            pos += n as u64;
        }
    }

    fn media_write(&mut self, c: u64, off: usize, data: &[u8]) {
        match &mut self.backend {
            Backend::Memory(m) => {
                let d = m.entry(c).or_insert_with(zero_chunk);
                d[off..off + data.len()].copy_from_slice(data);
            }
            Backend::File { file, .. } => {
                let _ = file.write_all_at(data, c * CHUNK + off as u64);
            }
        }
    }

    /// Makes `len` bytes at `pos` read as zeroes, releasing whole chunks.
    pub fn zero(&mut self, mut pos: u64, mut len: u64, through: bool) {
        while len > 0 {
            let c = pos / CHUNK;
            let off = pos % CHUNK;
            let n = len.min(CHUNK - off);
            if off == 0 && n == CHUNK {
                if through {
                    self.cache.remove(&c);
                    self.media_release(c);
                } else {
                    self.cache.insert(c, None);
                }
            } else {
                const Z: [u8; 4096] = [0; 4096];
                let mut p = pos;
                let mut left = n;
                while left > 0 {
                    let k = left.min(4096);
                    self.write(p, &Z[..k as usize], through);
                    p += k;
                    left -= k;
                }
            }
            pos += n;
            len -= n;
        }
    }

    fn media_release(&mut self, c: u64) {
        match &mut self.backend {
            Backend::Memory(m) => {
                m.remove(&c);
            }
            Backend::File { file, .. } => {
                let _ = file.write_all_at(&zero_chunk(), c * CHUNK);
            }
        }
    }

    /// Bytes of host memory the store takes: its chunks (in memory and in the write cache) and
    /// their index (a file-backed store counts only its cache).
    pub fn bytes_used(&self) -> usize {
        let chunks = |n: usize| n * CHUNK as usize;
        let media = match &self.backend {
            Backend::Memory(m) => map_bytes(m) + chunks(m.len()),
            Backend::File { .. } => 0,
        };
        media + map_bytes(&self.cache) + chunks(self.cache.values().flatten().count())
    }

    /// Moves every cached chunk to the media.
    pub fn flush(&mut self) {
        let cache = std::mem::take(&mut self.cache);
        for (c, d) in cache {
            match d {
                Some(d) => match &mut self.backend {
                    Backend::Memory(m) => {
                        m.insert(c, d);
                    }
                    Backend::File { file, .. } => {
                        let _ = file.write_all_at(&d, c * CHUNK);
                    }
                },
                None => self.media_release(c),
            }
        }
        if let Backend::File { file, .. } = &self.backend {
            let _ = file.sync_data();
        }
    }

    /// Power loss: whatever the cache held is gone.
    pub fn drop_cache(&mut self) {
        self.cache.clear();
    }

    /// Everything reads as zeroes (format, sanitize).
    pub fn erase_all(&mut self) {
        self.cache = HashMap::new();
        match &mut self.backend {
            Backend::Memory(m) => *m = HashMap::new(),
            Backend::File { file, path } => {
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                let _ = file.set_len(0);
                let _ = file.set_len(len);
                let _ = path;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_4k_writes_cost_their_data_and_little_more() {
        let mut s = Sparse::memory();
        assert_eq!(s.bytes_used(), 0);
        let mut rng = fastrand::Rng::with_seed(3);
        let data = [0x5au8; 4096];
        let n = 20_000u64;
        for _ in 0..n {
            s.write(rng.u64(0..1 << 33) * 4096, &data, false);
        }
        let cost = |s: &Sparse| s.bytes_used() as f64 / (n * 4096) as f64;
        assert!(cost(&s) <= 1.25, "in the write cache: {}", cost(&s));
        s.flush();
        assert!(cost(&s) <= 1.25, "on the media: {}", cost(&s));
        s.erase_all();
        assert_eq!(s.bytes_used(), 0);
    }

    #[test]
    fn sparse_read_write_cache_and_loss() {
        let mut s = Sparse::memory();
        let mut b = [1u8; 100];
        s.read(1 << 40, &mut b);
        assert!(b.iter().all(|&x| x == 0));
        let data: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        s.write(CHUNK - 10, &data, false);
        let mut out = vec![0u8; data.len()];
        s.read(CHUNK - 10, &mut out);
        assert_eq!(out, data);
        s.drop_cache();
        s.read(CHUNK - 10, &mut out);
        assert!(out.iter().all(|&x| x == 0));
        s.write(5, &data, false);
        s.flush();
        s.drop_cache();
        s.read(5, &mut out);
        assert_eq!(out, data);
        s.zero(0, 18 * CHUNK, false);
        s.read(5, &mut out);
        assert!(out.iter().all(|&x| x == 0));
        s.write(0, &[9; 4], true);
        let mut four = [0u8; 4];
        s.read(0, &mut four);
        assert_eq!(four, [9; 4]);
    }
}
