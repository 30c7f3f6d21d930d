//! Settings of a simulated SSD, and their `sim://` URI form.

use crate::perf::PerfProfile;
use crate::SimError;
use std::path::PathBuf;
use std::time::Duration;

/// One LBA format the drive offers (an entry of Identify Namespace LBAF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LbaFormat {
    /// Logical block data size in bytes (512 or 4096).
    pub data_size: u32,
    /// Metadata bytes per logical block (0 or 8), transferred in a separate buffer (MPTR).
    pub metadata_size: u16,
    /// Relative performance, 0 best .. 3 degraded (Identify Namespace LBAF.RP).
    pub relative_performance: u8,
}

impl LbaFormat {
    /// log2 of the data size, as Identify Namespace LBAF.LBADS holds it.
    pub fn lbads(&self) -> u8 {
        self.data_size.trailing_zeros() as u8
    }
}

/// How long the device takes for one kind of command: fixed when `min == max`, otherwise uniform
/// random in `min..=max` per command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatencySpec {
    /// Shortest latency.
    pub min: Duration,
    /// Longest latency.
    pub max: Duration,
}

impl LatencySpec {
    /// A fixed latency.
    pub const fn fixed(d: Duration) -> LatencySpec {
        LatencySpec { min: d, max: d }
    }

    /// Whether the command completes without any modelled delay.
    pub fn is_zero(&self) -> bool {
        self.max.is_zero()
    }
}

/// Modelled device latency per kind of command (zero: complete as fast as the device thread can).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// Read, Compare and Verify.
    pub read: LatencySpec,
    /// Write, Write Zeroes, Write Uncorrectable and Copy.
    pub write: LatencySpec,
    /// Flush.
    pub flush: LatencySpec,
    /// Dataset Management.
    pub trim: LatencySpec,
    /// Admin commands other than the long-running ones below.
    pub admin: LatencySpec,
    /// Format NVM.
    pub format: LatencySpec,
    /// A whole sanitize operation (it runs in the background; progress is reported in the log).
    pub sanitize: LatencySpec,
    /// A short device self-test.
    pub selftest_short: LatencySpec,
    /// An extended device self-test.
    pub selftest_extended: LatencySpec,
}

impl Default for Latency {
    fn default() -> Self {
        let z = LatencySpec::default();
        Latency {
            read: z,
            write: z,
            flush: z,
            trim: z,
            admin: z,
            format: LatencySpec::fixed(Duration::from_millis(20)),
            sanitize: LatencySpec::fixed(Duration::from_millis(200)),
            selftest_short: LatencySpec::fixed(Duration::from_millis(100)),
            selftest_extended: LatencySpec::fixed(Duration::from_millis(500)),
        }
    }
}

/// Settings of a simulated SSD. [`SimConfig::default`] is a 1-namespace 8 GiB drive with 512-byte
/// blocks; [`SimConfig::from_uri`] reads the `sim://?key=value&...` form.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Total NVM capacity in bytes (Identify Controller TNVMCAP); the initial namespaces share it.
    pub capacity: u64,
    /// The LBA formats the namespaces offer (at most 16).
    pub lba_formats: Vec<LbaFormat>,
    /// Index in `lba_formats` of the format the initial namespaces use.
    pub lba_format: u8,
    /// Number of namespaces created and attached at first power on.
    pub namespaces: u32,
    /// Maximum number of namespaces (Identify Controller NN).
    pub max_namespaces: u32,
    /// Maximum data transfer size, as a power of two of 4 KiB pages (0: no limit).
    pub mdts: u8,
    /// Maximum number of I/O queue pairs (Number of Queues feature, 1-based).
    pub queues: u16,
    /// Maximum queue entries supported, 0-based (CAP.MQES).
    pub mqes: u16,
    /// Doorbell stride: doorbells are `4 << dstrd` bytes apart (CAP.DSTRD).
    pub dstrd: u8,
    /// Controller memory buffer size in bytes (0: none); it is BAR2.
    pub cmb_size: u64,
    /// Number of MSI-X vectors (at least 1, at most 2048).
    pub msix_vectors: u16,
    /// Whether the drive has a volatile write cache (Identify Controller VWC).
    pub volatile_write_cache: bool,
    /// Modelled latencies.
    pub latency: Latency,
    /// Identify Controller serial number (up to 20 ASCII characters).
    pub serial: String,
    /// Identify Controller model number (up to 40 ASCII characters).
    pub model: String,
    /// Identify Controller firmware revision (up to 8 ASCII characters).
    pub firmware: String,
    /// Complete reads and writes without moving or storing data (measures the host alone).
    pub null_media: bool,
    /// Keep the media in this file (sparse, created if missing) instead of memory.
    pub backing: Option<PathBuf>,
    /// Composite temperature reported in the SMART log, in kelvin.
    pub temperature: u16,
    /// The benchmark profile's speeds (`profile=bench`): write cache, sustained writes, idle
    /// flush, latency growing with queue depth. None (the default): commands take only the
    /// `latency` settings.
    pub perf: Option<PerfProfile>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            capacity: 8 << 30,
            lba_formats: vec![
                LbaFormat {
                    data_size: 512,
                    metadata_size: 0,
                    relative_performance: 2,
                },
                LbaFormat {
                    data_size: 512,
                    metadata_size: 8,
                    relative_performance: 2,
                },
                LbaFormat {
                    data_size: 4096,
                    metadata_size: 0,
                    relative_performance: 0,
                },
                LbaFormat {
                    data_size: 4096,
                    metadata_size: 8,
                    relative_performance: 0,
                },
            ],
            lba_format: 0,
            namespaces: 1,
            max_namespaces: 32,
            mdts: 5,
            queues: 64,
            mqes: 1023,
            dstrd: 0,
            cmb_size: 0,
            msix_vectors: 65,
            volatile_write_cache: true,
            latency: Latency::default(),
            serial: "SIM0000000000000001".into(),
            model: "pynvme-rs simulated SSD".into(),
            firmware: "1.0".into(),
            null_media: false,
            backing: None,
            temperature: 310,
            perf: None,
        }
    }
}

const KEYS: &str =
    "capacity, lba, namespaces, max_namespaces, mdts, queues, mqes, dstrd, cmb, vectors, vwc, \
                    latency, null, serial, model, fw, backing, temperature, profile (plain, null, bench), and with \
                    profile=bench: cache, cache_bw, sustained_bw, flush_bw, read_bw, read_iops, \
                    write_iops";

fn bad(key: &str, value: &str, why: &str) -> SimError {
    SimError::Config {
        key: key.to_string(),
        value: value.to_string(),
        reason: why.to_string(),
    }
}

/// Parses `1T`, `16M`, `4096`, `512K`, `2G`, `1GiB` (binary multiples).
pub(crate) fn parse_size(key: &str, v: &str) -> Result<u64, SimError> {
    let s = v.trim();
    let s = s
        .strip_suffix("iB")
        .or_else(|| s.strip_suffix('B'))
        .unwrap_or(s);
    let (num, mul) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        Some('T' | 't') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| bad(key, v, "not a size (examples: 4096, 16M, 1T)"))?;
    n.checked_mul(mul).ok_or_else(|| bad(key, v, "too large"))
}

/// Parses `50us`, `2ms`, `1s`, `100ns`, or `50us-200us` (random in that range).
pub(crate) fn parse_latency(key: &str, v: &str) -> Result<LatencySpec, SimError> {
    fn one(key: &str, v: &str) -> Result<Duration, SimError> {
        let s = v.trim();
        let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
        let n: u64 = num
            .parse()
            .map_err(|_| bad(key, v, "not a duration (examples: 50us, 2ms)"))?;
        Ok(match unit {
            "ns" => Duration::from_nanos(n),
            "us" | "" => Duration::from_micros(n),
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            _ => return Err(bad(key, v, "unknown time unit (ns, us, ms, s)")),
        })
    }
    match v.split_once('-') {
        Some((a, b)) => {
            let (min, max) = (one(key, a)?, one(key, b)?);
            if min > max {
                return Err(bad(key, v, "minimum above maximum"));
            }
            Ok(LatencySpec { min, max })
        }
        None => Ok(LatencySpec::fixed(one(key, v)?)),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, SimError> {
    v.trim()
        .parse()
        .map_err(|_| bad(key, v, "not a number in range"))
}

fn parse_bool(key: &str, v: &str) -> Result<bool, SimError> {
    match v {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(bad(key, v, "not a boolean (0 or 1)")),
    }
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(c) => {
                        out.push(c);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl SimConfig {
    /// Reads a `sim://?capacity=1T&lba=4096&namespaces=2&...` URI; `sim://` and `""` give the
    /// default. Keys: capacity, lba (512 or 4096: the initial format), namespaces, max_namespaces,
    /// mdts, queues, mqes, dstrd, cmb (size), vectors, vwc, latency (`read:50us,write:20us-40us`,
    /// kinds read, write, flush, trim, admin, format, sanitize, selftest_short, selftest_extended),
    /// null, serial, model, fw, backing (a file path), temperature (kelvin), profile (`plain`,
    /// the default; `null`, as null=1; `bench`, the benchmark profile [`PerfProfile`]) and the
    /// benchmark profile's keys cache, cache_bw, sustained_bw, flush_bw, read_bw, read_iops,
    /// write_iops.
    pub fn from_uri(uri: &str) -> Result<SimConfig, SimError> {
        let mut c = SimConfig::default();
        let uri = uri.trim();
        if uri.is_empty() {
            return Ok(c);
        }
        let rest = uri
            .strip_prefix("sim://")
            .or_else(|| uri.strip_prefix("sim:"))
            .ok_or_else(|| SimError::Uri {
                uri: uri.to_string(),
                reason: "the scheme is not sim://".into(),
            })?;
        let query = match rest.split_once('?') {
            Some((_, q)) => q,
            None if rest.is_empty() || rest == "/" => "",
            None => rest,
        };
        let mut bench = false;
        let mut perf_keys: Vec<(String, String)> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = unescape(k);
            let v = unescape(v);
            let (k, v) = (k.as_str(), v.as_str());
            match k {
                "capacity" => c.capacity = parse_size(k, v)?,
                "lba" => {
                    let sz = parse_size(k, v)?;
                    let i = c
                        .lba_formats
                        .iter()
                        .position(|f| f.data_size as u64 == sz && f.metadata_size == 0)
                        .ok_or_else(|| bad(k, v, "no such LBA format (512 or 4096)"))?;
                    c.lba_format = i as u8;
                }
                "namespaces" => c.namespaces = parse_num(k, v)?,
                "max_namespaces" => c.max_namespaces = parse_num(k, v)?,
                "mdts" => c.mdts = parse_num(k, v)?,
                "queues" => c.queues = parse_num(k, v)?,
                "mqes" => c.mqes = parse_num(k, v)?,
                "dstrd" => c.dstrd = parse_num(k, v)?,
                "cmb" => c.cmb_size = parse_size(k, v)?,
                "vectors" => c.msix_vectors = parse_num(k, v)?,
                "vwc" => c.volatile_write_cache = parse_bool(k, v)?,
                "null" => c.null_media = parse_bool(k, v)?,
                "serial" => c.serial = v.to_string(),
                "model" => c.model = v.to_string(),
                "fw" => c.firmware = v.to_string(),
                "backing" => c.backing = Some(PathBuf::from(v)),
                "temperature" => c.temperature = parse_num(k, v)?,
                "profile" => match v {
                    "plain" => bench = false,
                    "null" => c.null_media = true,
                    "bench" => bench = true,
                    _ => return Err(bad(k, v, "unknown profile (plain, null, bench)")),
                },
                "cache" | "cache_bw" | "sustained_bw" | "flush_bw" | "read_bw" | "read_iops"
                | "write_iops" => perf_keys.push((k.to_string(), v.to_string())),
                "latency" => {
                    for item in v.split(',').filter(|s| !s.is_empty()) {
                        let (kind, d) = item.split_once(':').ok_or_else(|| {
                            bad(k, item, "expected kind:duration, e.g. read:50us")
                        })?;
                        let l = parse_latency(k, d)?;
                        let slot = match kind {
                            "read" => &mut c.latency.read,
                            "write" => &mut c.latency.write,
                            "flush" => &mut c.latency.flush,
                            "trim" => &mut c.latency.trim,
                            "admin" => &mut c.latency.admin,
                            "format" => &mut c.latency.format,
                            "sanitize" => &mut c.latency.sanitize,
                            "selftest_short" => &mut c.latency.selftest_short,
                            "selftest_extended" => &mut c.latency.selftest_extended,
                            _ => return Err(bad(
                                k,
                                kind,
                                "unknown kind (read, write, flush, trim, admin, format, sanitize, \
                                     selftest_short, selftest_extended)",
                            )),
                        };
                        *slot = l;
                    }
                }
                _ => {
                    return Err(SimError::UnknownKey {
                        key: k.to_string(),
                        allowed: KEYS,
                    })
                }
            }
        }
        if bench {
            let mut p = PerfProfile::for_capacity(c.capacity);
            for (k, v) in &perf_keys {
                p.set(k, v)?;
            }
            c.perf = Some(p);
        } else if let Some((k, v)) = perf_keys.first() {
            return Err(bad(
                k,
                v,
                "a key of the benchmark profile: give profile=bench too",
            ));
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks that the settings describe a device that can exist.
    pub fn validate(&self) -> Result<(), SimError> {
        let e = |k: &str, v: String, r: &str| Err(bad(k, &v, r));
        if self.lba_formats.is_empty() || self.lba_formats.len() > 16 {
            return e(
                "lba_formats",
                self.lba_formats.len().to_string(),
                "1 to 16 formats",
            );
        }
        for f in &self.lba_formats {
            if !f.data_size.is_power_of_two() || !(512..=65536).contains(&f.data_size) {
                return e(
                    "lba_formats",
                    f.data_size.to_string(),
                    "data size must be a power of two, 512..64K",
                );
            }
        }
        if self.lba_format as usize >= self.lba_formats.len() {
            return e(
                "lba_format",
                self.lba_format.to_string(),
                "index beyond lba_formats",
            );
        }
        let bs = self.lba_formats[self.lba_format as usize].data_size as u64;
        if self.namespaces > self.max_namespaces
            || self.max_namespaces == 0
            || self.max_namespaces > 1024
        {
            return e(
                "namespaces",
                self.namespaces.to_string(),
                "0 ..= max_namespaces (at most 1024)",
            );
        }
        if self.namespaces > 0 && self.capacity / self.namespaces as u64 / bs == 0 {
            return e(
                "capacity",
                self.capacity.to_string(),
                "too small for the namespaces",
            );
        }
        if self.queues == 0 || self.queues > 1024 {
            return e(
                "queues",
                self.queues.to_string(),
                "1 ..= 1024 I/O queue pairs",
            );
        }
        if self.mqes == 0 {
            return e("mqes", self.mqes.to_string(), "at least 1 (2 entries)");
        }
        if self.dstrd > 8 {
            return e("dstrd", self.dstrd.to_string(), "0 ..= 8");
        }
        if self.mdts > 12 {
            return e("mdts", self.mdts.to_string(), "0 ..= 12");
        }
        if self.msix_vectors == 0 || self.msix_vectors > 2048 {
            return e("vectors", self.msix_vectors.to_string(), "1 ..= 2048");
        }
        if self.cmb_size != 0 && (!self.cmb_size.is_power_of_two() || self.cmb_size < 4096) {
            return e(
                "cmb",
                self.cmb_size.to_string(),
                "a power of two of at least 4K",
            );
        }
        if self.serial.len() > 20 || self.model.len() > 40 || self.firmware.len() > 8 {
            return e(
                "serial/model/fw",
                String::new(),
                "at most 20/40/8 characters",
            );
        }
        if !self.serial.is_ascii() || !self.model.is_ascii() || !self.firmware.is_ascii() {
            return e("serial/model/fw", String::new(), "ASCII only");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_defaults_and_keys() {
        assert_eq!(
            SimConfig::from_uri("").unwrap().capacity,
            SimConfig::default().capacity
        );
        assert_eq!(SimConfig::from_uri("sim://").unwrap().namespaces, 1);
        let c = SimConfig::from_uri(
            "sim://?capacity=1T&lba=4096&namespaces=2&mdts=5&queues=64&mqes=1023&dstrd=0&cmb=16M\
             &latency=read:50us,write:20us-40us&null=1&serial=S1&model=M%20x&fw=F1&backing=/tmp/x",
        )
        .unwrap();
        assert_eq!(c.capacity, 1 << 40);
        assert_eq!(c.lba_formats[c.lba_format as usize].data_size, 4096);
        assert_eq!(c.namespaces, 2);
        assert_eq!(c.cmb_size, 16 << 20);
        assert_eq!(
            c.latency.read,
            LatencySpec::fixed(Duration::from_micros(50))
        );
        assert_eq!(c.latency.write.max, Duration::from_micros(40));
        assert!(c.null_media);
        assert_eq!(c.model, "M x");
        assert_eq!(c.backing, Some(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn unknown_key_names_it() {
        let e = SimConfig::from_uri("sim://?colour=red")
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour") && e.contains("capacity"), "{e}");
        assert!(SimConfig::from_uri("sim://?capacity=lots").is_err());
        assert!(SimConfig::from_uri("pcie://0000:01:00.0").is_err());
    }

    #[test]
    fn benchmark_profile_keys() {
        assert!(SimConfig::from_uri("sim://").unwrap().perf.is_none());
        assert!(SimConfig::from_uri("sim://?profile=plain")
            .unwrap()
            .perf
            .is_none());
        assert!(
            SimConfig::from_uri("sim://?profile=null")
                .unwrap()
                .null_media
        );
        let c = SimConfig::from_uri("sim://?profile=bench&capacity=2G").unwrap();
        let p = c.perf.unwrap();
        assert_eq!(p.cache_size, 256 << 20, "an eighth of the capacity");
        let c = SimConfig::from_uri("sim://?cache=64M&profile=bench&sustained_bw=50M").unwrap();
        let p = c.perf.unwrap();
        assert_eq!((p.cache_size, p.sustained_write_bw), (64 << 20, 50 << 20));
        let e = SimConfig::from_uri("sim://?cache=64M")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cache") && e.contains("profile=bench"), "{e}");
        let e = SimConfig::from_uri("sim://?profile=fast")
            .unwrap_err()
            .to_string();
        assert!(e.contains("profile") && e.contains("bench"), "{e}");
    }
}
