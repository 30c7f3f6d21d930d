//! The defect campaign: how often data verification catches each kind of defect the simulated
//! SSD can inject, per digest width, and how many false alarms clean overlapping traffic gives.
//!
//! For each `crc_size` (1, 2, 4), each defect kind, single-LBA and 8-LBA IO, and writes stamped
//! (`Namespace::write`: LBA and token in each block) or raw (a plain write command through
//! `Namespace::submit`, the script's data as it is, checked by digest only), the campaign injects
//! the defect `--injections` times (default 500; 10,000 for the full campaign), each time on
//! LBAs whose latest version the table knows, with fresh random data for every write, and counts
//! the reads verification fails with 07/81 (or, for an error status, the reads that fail).
//!
//! Defects (the simulator's fault injection, `nvme_sim::faults`):
//! - bit flips: 1, 2 or 3 random bits of the data a read returns (anywhere in an 8-LBA read);
//! - lost write: a rewrite completes but stores nothing; the read returns the previous version;
//! - stale read: a read returns the version before the latest write;
//! - misdirected write: a rewrite lands 32 LBAs away; read at its target (which held other known
//!   data) and at its source (which still holds the previous version);
//! - torn write: a FUA rewrite completes, and a dirty power loss takes back its second half
//!   (its last 4 of 8 blocks, or the second half of a single block's bytes);
//! - wrong status: a read that completes successfully without moving data (the buffer holds the
//!   previous read's data), and a good read completed with an error status (02/81).
//!
//! Then clean traffic: four threads of overlapping reads and writes (1-8 LBAs on 64 LBAs, half
//! stamped, half raw), `--injections` x 8 IOs per thread; every failed read is a false alarm.
//!
//! `--injections N` sets the count, `--seed S` the random seed. Prints one Markdown table.

use nvme_driver::verify::MISCOMPARE;
use nvme_driver::{Buffer, Controller, Namespace, PowerSwitch, Qpair, QpairConfig};
use nvme_sim::faults::{FaultAction, FaultMatch, FaultRule};
use nvme_spec::cmd::{io_flags, nvm};
use nvme_spec::Status;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the writes of an injection carry their data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `Namespace::write`: stamped with namespace, LBA and token.
    Stamped,
    /// A raw write command: the data as it is, checked by digest only.
    Raw,
}

/// The defect kinds, in the order of the report.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Flip(u32),
    LostWrite,
    StaleRead,
    MisdirectedTarget,
    MisdirectedSource,
    Torn,
    NoData,
    ErrorStatus,
}

impl Kind {
    fn name(self) -> String {
        match self {
            Kind::Flip(n) => format!("{n}-bit flip in read data"),
            Kind::LostWrite => "lost write".into(),
            Kind::StaleRead => "stale read (the version before)".into(),
            Kind::MisdirectedTarget => "misdirected write, read at its target".into(),
            Kind::MisdirectedSource => "misdirected write, read at its source".into(),
            Kind::Torn => "torn write at a dirty power loss (FUA write)".into(),
            Kind::NoData => "wrong status: read succeeds without data".into(),
            Kind::ErrorStatus => "wrong status: good read fails with 02/81".into(),
        }
    }
}

const KINDS: [Kind; 9] = [
    Kind::Flip(1),
    Kind::Flip(2),
    Kind::Flip(3),
    Kind::LostWrite,
    Kind::StaleRead,
    Kind::MisdirectedTarget,
    Kind::MisdirectedSource,
    Kind::Torn,
    Kind::NoData,
];

/// Distance of a misdirected write.
const MISDIRECT: u64 = 32;
/// LBAs between the regions of two injections (room for the misdirected target).
const STRIDE: u64 = 64;
/// Injections done together: their IOs are in flight at the same time (distinct LBAs).
const BATCH: usize = 64;
/// Torn writes between two power losses.
const TORN_BATCH: usize = 512;

struct Rig {
    ctrl: Arc<Controller<()>>,
    ns: Namespace<()>,
    qp: Arc<Qpair<(), ()>>,
    /// A write buffer and a read buffer per IO in flight.
    w: Vec<Buffer>,
    r: Vec<Buffer>,
    rng: fastrand::Rng,
    next: u64,
    nsze: u64,
}

impl Rig {
    fn new(crc_size: usize, seed: u64) -> Rig {
        let pci = nvme_pci::open("sim://").expect("simulator opens");
        let ctrl = Controller::<()>::new(pci).expect("controller");
        ctrl.init_default(()).expect("init");
        let ns = Namespace::with_crc_size(&ctrl, 1, 0, Some(crc_size)).expect("namespace 1");
        ns.verifier().set_enabled(true);
        let qp = Qpair::new(
            &ctrl,
            QpairConfig {
                depth: BATCH as u16 + 1,
                ..Default::default()
            },
        )
        .expect("qpair");
        let bufs = |name| -> Vec<Buffer> {
            (0..BATCH)
                .map(|_| {
                    let mem = nvme_pci::dma_alloc(8 * 512).expect("dma");
                    Buffer::new(mem, 8 * 512, name, 100, 0xbeef).expect("buffer")
                })
                .collect()
        };
        let nsze = ns.nsze();
        Rig {
            ctrl,
            ns,
            qp,
            w: bufs("w"),
            r: bufs("r"),
            rng: fastrand::Rng::with_seed(seed),
            next: 0,
            nsze,
        }
    }

    fn faults(&self) -> &nvme_sim::faults::Faults {
        self.ctrl.pci().simulator().expect("simulated SSD").faults()
    }

    /// The first LBAs of `n` fresh regions, one per injection.
    fn regions(&mut self, n: usize) -> Vec<u64> {
        (0..n)
            .map(|_| {
                let lba = self.next * STRIDE % (self.nsze - STRIDE);
                self.next += 1;
                lba
            })
            .collect()
    }

    /// Waits for `n` completions; returns their statuses.
    fn wait(&self, n: usize) -> Vec<Status> {
        let mut st = Vec::with_capacity(n);
        self.qp
            .waitdone(n, &mut |c| {
                st.push(c.cqe.status());
                Ok(())
            })
            .expect("waitdone");
        self.qp.take_findings();
        st
    }

    /// Writes `nlb` blocks of fresh random data at each of `lbas` (at most [`BATCH`]), all in
    /// flight together.
    fn write(&mut self, mode: Mode, lbas: &[u64], nlb: u32, fua: bool) {
        let flags = if fua { io_flags::FUA } else { 0 };
        let mut data = vec![0u8; nlb as usize * 512];
        for (&lba, b) in lbas.iter().zip(&self.w) {
            self.rng.fill(&mut data);
            b.memory().write(0, &data);
            match mode {
                Mode::Stamped => {
                    self.ns
                        .write(&self.qp, b, lba, nlb, flags, 0, 0, 0, ())
                        .expect("write");
                }
                Mode::Raw => {
                    let (sqe, d) = self
                        .ns
                        .rw_command(nvm::WRITE, b, lba, nlb, flags, 0, 0, 0)
                        .expect("command");
                    self.ns
                        .submit(&self.qp, sqe, Some(d), (), false)
                        .expect("submit");
                }
            }
        }
        let st = self.wait(lbas.len());
        assert!(st.iter().all(|s| s.is_success()), "a write failed: {st:?}");
    }

    /// Reads `nlb` blocks at each of `lbas`, all in flight together; returns the statuses.
    fn read(&mut self, lbas: &[u64], nlb: u32) -> Vec<Status> {
        for (&lba, b) in lbas.iter().zip(&self.r) {
            self.ns
                .read(&self.qp, b, lba, nlb, 0, 0, 0, 0, ())
                .expect("read");
        }
        self.wait(lbas.len())
    }

    fn flush(&self) {
        let sqe = nvme_driver::commands::raw(nvm::FLUSH as u32, 1, 0, 0, 0, 0, 0, 0, 0, 0);
        self.ns
            .submit(&self.qp, sqe, None, (), false)
            .expect("flush");
        assert!(self.wait(1)[0].is_success());
    }

    /// A dirty power loss, and the controller back.
    fn power_loss(&self) {
        self.ctrl
            .power_cycle(
                false,
                Some(Duration::ZERO),
                PowerSwitch::Backend,
                PowerSwitch::Backend,
            )
            .expect("power cycle");
        self.ctrl
            .reset(&mut || self.ctrl.init_default(()))
            .expect("controller reset");
    }

    /// A rule for the next `n` matching commands.
    fn inject(&self, on: FaultMatch, action: FaultAction, n: usize) {
        self.faults()
            .add(FaultRule::new(on, action).times(n as u64));
    }

    /// Injects `kind` `n` times; returns how many reads verification (or the status) caught.
    fn campaign(&mut self, kind: Kind, mode: Mode, nlb: u32, n: usize) -> usize {
        let caught = |st: Vec<Status>| st.iter().filter(|&&s| s == MISCOMPARE).count();
        let mut hits = 0;
        let mut left = n;
        if kind == Kind::Torn {
            while left > 0 {
                let group = self.regions(left.min(TORN_BATCH));
                for b in group.chunks(BATCH) {
                    self.write(mode, b, nlb, false);
                }
                self.flush();
                self.inject(
                    FaultMatch::io(nvm::WRITE),
                    FaultAction::TornWrite,
                    group.len(),
                );
                for b in group.chunks(BATCH) {
                    self.write(mode, b, nlb, true);
                }
                self.power_loss();
                for b in group.chunks(BATCH) {
                    hits += caught(self.read(b, nlb));
                }
                left -= group.len();
            }
            return hits;
        }
        while left > 0 {
            let b = self.regions(left.min(BATCH));
            let k = b.len();
            left -= k;
            let st = match kind {
                Kind::Flip(bits) => {
                    self.write(mode, &b, nlb, false);
                    self.inject(FaultMatch::io(nvm::READ), FaultAction::FlipBits(bits), k);
                    self.read(&b, nlb)
                }
                Kind::LostWrite => {
                    self.write(mode, &b, nlb, false);
                    self.inject(FaultMatch::io(nvm::WRITE), FaultAction::LostWrite, k);
                    self.write(mode, &b, nlb, false);
                    self.read(&b, nlb)
                }
                Kind::StaleRead => {
                    self.write(mode, &b, nlb, false);
                    // The simulator keeps old versions of what is written while the rule waits.
                    self.inject(FaultMatch::io(nvm::READ), FaultAction::StaleData, k);
                    self.write(mode, &b, nlb, false);
                    self.read(&b, nlb)
                }
                Kind::MisdirectedTarget | Kind::MisdirectedSource => {
                    let targets: Vec<u64> = b.iter().map(|s| s + MISDIRECT).collect();
                    self.write(mode, &targets, nlb, false);
                    self.write(mode, &b, nlb, false);
                    self.inject(
                        FaultMatch::io(nvm::WRITE),
                        FaultAction::MisdirectedWrite(MISDIRECT as i64),
                        k,
                    );
                    self.write(mode, &b, nlb, false);
                    if kind == Kind::MisdirectedTarget {
                        self.read(&targets, nlb)
                    } else {
                        self.read(&b, nlb)
                    }
                }
                Kind::NoData => {
                    // The read buffers hold the previous batch's data (other LBAs).
                    self.write(mode, &b, nlb, false);
                    self.inject(FaultMatch::io(nvm::READ), FaultAction::ReadWithoutData, k);
                    self.read(&b, nlb)
                }
                Kind::ErrorStatus => {
                    self.write(mode, &b, nlb, false);
                    self.inject(
                        FaultMatch::io(nvm::READ),
                        FaultAction::Status(Status::new(2, 0x81)),
                        k,
                    );
                    let st = self.read(&b, nlb);
                    hits += st.iter().filter(|s| !s.is_success()).count();
                    continue;
                }
                Kind::Torn => unreachable!("handled above"),
            };
            hits += caught(st);
        }
        hits
    }
}

/// Four threads of overlapping reads and writes on 64 LBAs; returns (IOs, failed reads).
fn clean_traffic(crc_size: usize, ios_per_thread: usize, seed: u64) -> (usize, usize) {
    let rig = Rig::new(crc_size, seed);
    let ctrl = rig.ctrl.clone();
    let ns = Arc::new(rig.ns);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (ctrl, ns) = (ctrl.clone(), ns.clone());
            std::thread::spawn(move || {
                let qp = Qpair::<(), ()>::new(
                    &ctrl,
                    QpairConfig {
                        depth: 16,
                        ..Default::default()
                    },
                )
                .expect("qpair");
                let mut rng = fastrand::Rng::with_seed(seed ^ t << 32);
                let bufs: Vec<Buffer> = (0..8)
                    .map(|_| {
                        Buffer::new(nvme_pci::dma_alloc(4096).expect("dma"), 4096, "b", 0, 0)
                            .expect("buffer")
                    })
                    .collect();
                let (mut ios, mut bad) = (0, 0);
                while ios < ios_per_thread {
                    for b in &bufs {
                        let lba = rng.u64(0..56);
                        let n = rng.u32(1..=8);
                        match rng.u8(0..4) {
                            0 => {
                                let mut d = vec![0u8; 4096];
                                rng.fill(&mut d);
                                b.memory().write(0, &d);
                                ns.write(&qp, b, lba, n, 0, 0, 0, 0, ()).expect("write");
                            }
                            1 => {
                                let mut d = vec![0u8; 4096];
                                rng.fill(&mut d);
                                b.memory().write(0, &d);
                                let (sqe, data) = ns
                                    .rw_command(nvm::WRITE, b, lba, n, 0, 0, 0, 0)
                                    .expect("command");
                                ns.submit(&qp, sqe, Some(data), (), false).expect("submit");
                            }
                            _ => {
                                ns.read(&qp, b, lba, n, 0, 0, 0, 0, ()).expect("read");
                            }
                        }
                    }
                    qp.waitdone(bufs.len(), &mut |c| {
                        ios += 1;
                        bad += !c.cqe.status().is_success() as usize;
                        Ok(())
                    })
                    .expect("waitdone");
                    qp.take_findings();
                }
                qp.delete().expect("delete");
                (ios, bad)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

fn die(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(2)
}

fn main() {
    let usage = "options: --injections N (default 500) --seed S";
    let (mut n, mut seed) = (500usize, 1u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().and_then(|v| v.parse::<u64>().ok());
        match (a.as_str(), v) {
            ("--injections", Some(v)) if v > 0 => n = v as usize,
            ("--seed", Some(v)) => seed = v,
            _ => die(usage),
        }
    }
    let t0 = Instant::now();
    println!(
        "Defect campaign: {n} injections per cell, sim:// (512-byte LBAs), seed {seed}. \
         Caught: reads failed with 07/81 by verification (for an error status: reads that failed)."
    );
    println!();
    println!("| defect | IO | writes | crc_size 1 | crc_size 2 | crc_size 4 |");
    println!("| --- | --- | --- | ---: | ---: | ---: |");
    let widths = [1usize, 2, 4];
    let mut rigs: Vec<Rig> = widths
        .iter()
        .map(|&w| Rig::new(w, seed.wrapping_add(w as u64)))
        .collect();
    let cell = |hits: usize| {
        if hits == n {
            format!("{hits}/{n} (100 %)")
        } else {
            format!("{hits}/{n} ({:.2} %)", 100.0 * hits as f64 / n as f64)
        }
    };
    // Raw single-LBA cells: the digest alone decides, so they measure its escape probability.
    let mut escapes: Vec<(Kind, Vec<usize>)> = Vec::new();
    let mut all_caught_at_4 = true;
    let mut always_caught = true;
    for kind in KINDS.iter().copied().chain([Kind::ErrorStatus]) {
        for nlb in [1u32, 8] {
            for mode in [Mode::Stamped, Mode::Raw] {
                let hits: Vec<usize> = rigs
                    .iter_mut()
                    .map(|r| r.campaign(kind, mode, nlb, n))
                    .collect();
                all_caught_at_4 &= hits[2] == n;
                if nlb == 1
                    && mode == Mode::Raw
                    && matches!(kind, Kind::Flip(2) | Kind::StaleRead | Kind::LostWrite)
                {
                    escapes.push((kind, hits.iter().map(|h| n - h).collect()));
                }
                let must = matches!(
                    kind,
                    Kind::Flip(1)
                        | Kind::Flip(3)
                        | Kind::MisdirectedTarget
                        | Kind::MisdirectedSource
                ) && mode == Mode::Stamped;
                if must {
                    always_caught &= hits.iter().all(|&h| h == n);
                }
                println!(
                    "| {} | {} | {} | {} | {} | {} |",
                    kind.name(),
                    if nlb == 1 { "1 LBA" } else { "8 LBAs" },
                    if mode == Mode::Stamped {
                        "stamped"
                    } else {
                        "raw"
                    },
                    cell(hits[0]),
                    cell(hits[1]),
                    cell(hits[2]),
                );
            }
        }
    }
    drop(rigs);
    let mut alarms = Vec::new();
    for &w in &widths {
        alarms.push(clean_traffic(w, 8 * n, seed ^ 0x5eed));
    }
    println!(
        "| false alarms: clean overlapping traffic, 4 threads, 1-8 LBAs on 64 LBAs, half the writes stamped | 1-8 LBAs | both | {} | {} | {} |",
        format_args!("{} in {} IOs", alarms[0].1, alarms[0].0),
        format_args!("{} in {} IOs", alarms[1].1, alarms[1].0),
        format_args!("{} in {} IOs", alarms[2].1, alarms[2].0),
    );
    println!();
    println!(
        "Escapes of the digest alone (raw single-LBA writes, so no stamps), measured / computed:"
    );
    println!();
    println!("| change | crc_size 1 | crc_size 2 | crc_size 4 |");
    println!("| --- | ---: | ---: | ---: |");
    for (kind, e) in &escapes {
        // Two flipped bits keep the parity bit, so only the hash part can tell: 1 in 126,
        // 32766 or 2^31 - 2; other changes also change the parity half the time.
        let computed: [f64; 3] = match kind {
            Kind::Flip(_) => [126.0, 32766.0, 2147483646.0],
            _ => [252.0, 65532.0, 4294967292.0],
        };
        let what = match kind {
            Kind::Flip(_) => "content change (2 bits flipped in one LBA)",
            Kind::StaleRead => "stale version (the LBA's previous data)",
            _ => "lost write (the LBA's previous data)",
        };
        let cells: Vec<String> = e
            .iter()
            .zip(computed)
            .map(|(&k, c)| {
                let measured = if k == 0 {
                    format!("0 in {n} (< 1 in {:.0} at 95 %)", n as f64 / 3.0)
                } else {
                    format!("{k} in {n} (1 in {:.0})", n as f64 / k as f64)
                };
                format!("{measured} / 1 in {c:.0}")
            })
            .collect();
        println!("| {what} | {} | {} | {} |", cells[0], cells[1], cells[2]);
    }
    println!();
    let no_alarm = alarms.iter().all(|a| a.1 == 0);
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    println!(
        "Goals: odd-bit flips and misdirected writes (stamped) caught every time at every crc_size: {}; \
         crc_size 4 catches every injection of every kind: {}; no false alarm: {}. ({:.0} s)",
        verdict(always_caught),
        verdict(all_caught_at_4),
        verdict(no_alarm),
        t0.elapsed().as_secs_f64()
    );
}
