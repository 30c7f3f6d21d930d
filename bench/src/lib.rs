//! Shared pieces of the benchmarks: command-line options, timing with warm-up and repeated runs,
//! thread placement on the two sides of the simulated SSD, and the report rows.
//!
//! Every benchmark measures a rate (commands per second) over several timed runs after a
//! warm-up, and prints one Markdown table row per configuration with the median, the range and
//! the spread, so `bench/run` can assemble the rows of all benchmarks into one report.

use std::time::{Duration, Instant};

/// Options common to the benchmark binaries.
#[derive(Clone, Debug)]
pub struct Options {
    /// Timed runs per configuration.
    pub runs: usize,
    /// Length of one timed run.
    pub run_time: Duration,
    /// Length of the warm-up before the timed runs.
    pub warmup: Duration,
    /// Queue depths to measure.
    pub qds: Vec<u16>,
    /// Media modes to measure ("null", "real"), for benchmarks that have both.
    pub media: Vec<String>,
    /// Commands are reaped and re-posted in batches of `qd / batch_div` (at least 1).
    pub batch_div: usize,
    /// Pin the device thread and the host thread to different cores.
    pub pin: bool,
}

impl Options {
    /// Parses `--runs N --secs S --warmup S --qd 1,32,128 --media null,real --batch-div 8 --no-pin` from the
    /// process arguments; unknown arguments end the process with a usage message.
    pub fn from_args(default_media: &[&str]) -> Options {
        let mut o = Options {
            runs: 5,
            run_time: Duration::from_millis(500),
            warmup: Duration::from_millis(300),
            qds: vec![1, 32, 128],
            media: default_media.iter().map(|s| s.to_string()).collect(),
            batch_div: 8,
            pin: true,
        };
        let usage = "options: --runs N --secs S --warmup S --qd 1,32,128 --media null,real --batch-div 8 --no-pin";
        let mut args = std::env::args().skip(1);
        let secs = |v: Option<String>| -> Duration {
            let s: f64 = v.and_then(|v| v.parse().ok()).unwrap_or_else(|| die(usage));
            Duration::from_secs_f64(s)
        };
        while let Some(a) = args.next() {
            match a.as_str() {
                "--runs" => {
                    o.runs = args
                        .next()
                        .and_then(|v| v.parse().ok())
                        .filter(|&n| n > 0)
                        .unwrap_or_else(|| die(usage))
                }
                "--secs" => o.run_time = secs(args.next()),
                "--warmup" => o.warmup = secs(args.next()),
                "--qd" => {
                    o.qds = args
                        .next()
                        .map(|v| v.split(',').filter_map(|q| q.parse().ok()).collect())
                        .filter(|v: &Vec<u16>| !v.is_empty() && v.iter().all(|&q| q > 0))
                        .unwrap_or_else(|| die(usage))
                }
                "--media" => {
                    o.media = args
                        .next()
                        .map(|v| v.split(',').map(str::to_string).collect())
                        .unwrap_or_else(|| die(usage))
                }
                "--batch-div" => {
                    o.batch_div = args
                        .next()
                        .and_then(|v| v.parse().ok())
                        .filter(|&n| n > 0)
                        .unwrap_or_else(|| die(usage))
                }
                "--no-pin" => o.pin = false,
                _ => die(usage),
            }
        }
        o
    }
}

fn die(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(2)
}

impl Options {
    /// The reap/re-post batch at queue depth `qd`.
    pub fn batch(&self, qd: u16) -> usize {
        (qd as usize).div_ceil(self.batch_div)
    }
}

/// Rates of the timed runs of one configuration.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Commands per second of each run, sorted.
    pub rates: Vec<f64>,
}

impl Stats {
    /// The median rate.
    pub fn median(&self) -> f64 {
        let r = &self.rates;
        let n = r.len();
        if n % 2 == 1 {
            r[n / 2]
        } else {
            (r[n / 2 - 1] + r[n / 2]) / 2.0
        }
    }

    /// The lowest rate.
    pub fn min(&self) -> f64 {
        self.rates[0]
    }

    /// The highest rate.
    pub fn max(&self) -> f64 {
        self.rates[self.rates.len() - 1]
    }

    /// (max − min) / median, in percent.
    pub fn spread_pct(&self) -> f64 {
        (self.max() - self.min()) / self.median() * 100.0
    }
}

/// Runs `step` in a loop: first for the warm-up, then for `runs` timed runs of `run_time` each.
/// `step` does a batch of work and returns the number of commands it completed; the clock is
/// read once per 64 steps, never per command.
pub fn measure(o: &Options, mut step: impl FnMut() -> u64) -> Stats {
    let until = Instant::now() + o.warmup;
    while Instant::now() < until {
        step();
    }
    let mut rates = Vec::with_capacity(o.runs);
    for _ in 0..o.runs {
        let t0 = Instant::now();
        let mut n = 0u64;
        let mut elapsed;
        loop {
            // An idle poll is cheaper than a clock read: look at the clock every 64 steps.
            for _ in 0..64 {
                n += step();
            }
            elapsed = t0.elapsed();
            if elapsed >= o.run_time {
                break;
            }
        }
        rates.push(n as f64 / elapsed.as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    Stats { rates }
}

/// Human form of a rate: `12.3 M/s`, `456 K/s`.
pub fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} K/s", r / 1e3)
    } else {
        format!("{r:.0} /s")
    }
}

/// The header of the table whose rows [`row`] prints.
pub const TABLE_HEADER: &str =
    "| benchmark | configuration | median | min | max | spread | ns/cmd | target |\n\
                                | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |";

/// Prints one table row; `target` is the goal in commands per second, if the benchmark has one.
pub fn row(bench: &str, config: &str, s: &Stats, target: Option<f64>) {
    let verdict = match target {
        Some(t) if s.median() >= t => format!("≥ {} met", fmt_rate(t)),
        Some(t) => format!("≥ {} **missed**", fmt_rate(t)),
        None => "-".into(),
    };
    println!(
        "| {bench} | {config} | {} | {} | {} | {:.1}% | {:.0} | {verdict} |",
        fmt_rate(s.median()),
        fmt_rate(s.min()),
        fmt_rate(s.max()),
        s.spread_pct(),
        1e9 / s.median(),
    );
}

/// The online CPUs as a list (`0-1`) and their number; not the calling thread's affinity, which
/// [`pin_threads`] narrows.
pub fn online_cpus() -> (String, usize) {
    let fallback = || {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        (format!("0-{}", n - 1), n)
    };
    let Ok(list) = std::fs::read_to_string("/sys/devices/system/cpu/online") else {
        return fallback();
    };
    let list = list.trim().to_string();
    let mut n = 0;
    for part in list.split(',') {
        let mut ends = part.split('-').map(|x| x.parse::<usize>());
        match (ends.next(), ends.next()) {
            (Some(Ok(a)), Some(Ok(b))) if b >= a => n += b - a + 1,
            (Some(Ok(_)), None) => n += 1,
            _ => return fallback(),
        }
    }
    (list, n)
}

/// Places the simulator's device threads on CPU 0 and the calling (host) thread on CPU 1, so the
/// two sides of the queue never share a core. Uses `taskset` on thread ids; does nothing with
/// fewer than two CPUs or without `taskset`. Returns a description of what was done.
pub fn pin_threads() -> String {
    if online_cpus().1 < 2 {
        return "not pinned (1 CPU)".into();
    }
    let Ok(me) = std::fs::read_link("/proc/thread-self") else {
        return "not pinned (no /proc/thread-self)".into();
    };
    let Some(host_tid) = me.file_name().and_then(|t| t.to_str()).map(str::to_string) else {
        return "not pinned".into();
    };
    let mut sim_tids = Vec::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.trim() == "nvme-sim" {
                sim_tids.push(t.file_name().to_string_lossy().into_owned());
            }
        }
    }
    let taskset = |cpu: &str, tid: &str| {
        std::process::Command::new("taskset")
            .args(["-pc", cpu, tid])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = sim_tids.iter().all(|t| taskset("0", t)) && taskset("1", &host_tid);
    if ok {
        format!(
            "device thread{} on CPU 0, host on CPU 1",
            if sim_tids.len() == 1 { "" } else { "s" }
        )
    } else {
        "not pinned (taskset failed)".into()
    }
}

/// Gives every thread of the process all CPUs again (after [`pin_threads`]).
pub fn unpin_threads() {
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        let (all, _) = online_cpus();
        for t in tasks.flatten() {
            let _ = std::process::Command::new("taskset")
                .args(["-pc", &all, &t.file_name().to_string_lossy()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// `n` DMA buffers of 4 KiB of random, incompressible data (pattern 0xbeef, 100 % random), one
/// per command in flight.
pub fn random_buffers(n: usize) -> Vec<nvme_driver::Buffer> {
    (0..n)
        .map(|_| {
            nvme_driver::Buffer::new(
                nvme_pci::dma_alloc(4096).expect("dma"),
                4096,
                "b",
                100,
                0xbeef,
            )
            .expect("buffer")
        })
        .collect()
}
