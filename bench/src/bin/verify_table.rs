//! The host's verification work per IO, without a device: what a 4 KiB write (8 LBAs of 512
//! bytes) costs to stamp, digest and record in the table, and what a read costs to check, in
//! CPU time of this thread (so other processes on the machine disturb it less than a wall clock
//! rate). Sequential IO over 1 GiB (the table dense) and random IO over a 32 TiB namespace (the
//! table sparse). Prints ns per IO, the median of `--runs` passes.

use nvme_driver::verify::{lba_stamp, NsVerify};

fn cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut runs = 5usize;
    let mut ios = 65_536usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--runs", Some(n)) if n > 0 => runs = n,
            ("--ios", Some(n)) if n > 0 => ios = n,
            _ => {
                eprintln!("options: --runs N (default 5) --ios N (default 65536)");
                std::process::exit(2)
            }
        }
    }
    let nlba = (32u64 << 40) / 512;
    let mut rng = fastrand::Rng::with_seed(5);
    for (pattern, lbas) in [
        (
            "sequential",
            (0..ios as u64).map(|i| i * 8).collect::<Vec<u64>>(),
        ),
        (
            "random",
            (0..ios).map(|_| rng.u64(0..nlba / 8) * 8).collect(),
        ),
    ] {
        let (mut w, mut r) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let v = NsVerify::new(1, nlba, 512);
            let mut data = vec![0u8; 4096];
            rng.fill(&mut data);
            let mut tokens = Vec::with_capacity(lbas.len());
            let t0 = cpu_ns();
            for &lba in &lbas {
                let token = v.stamp_write(&mut data, lba);
                v.record_written(&v.written(&data, lba, 8, token));
                tokens.push(token);
            }
            let t1 = cpu_ns();
            let mut found = Vec::new();
            for (&lba, &token) in lbas.iter().zip(&tokens) {
                // The data as written: the same bytes, with that write's stamps.
                for (j, b) in data.chunks_exact_mut(512).enumerate() {
                    b[..8].copy_from_slice(&lba_stamp(1, lba + j as u64).to_le_bytes());
                    b[504..].copy_from_slice(&(token + j as u64).to_le_bytes());
                }
                v.check_into(&data, lba, &mut found);
            }
            let t2 = cpu_ns();
            assert!(found.is_empty(), "a false miscompare: {:?}", found.first());
            w.push((t1 - t0) as f64 / lbas.len() as f64);
            r.push((t2 - t1) as f64 / lbas.len() as f64);
        }
        println!(
            "| verification work, no device | {pattern} 4 KiB IOs, {ios} of them: write (stamp, digest, record) / read (check) | {:.0} ns / {:.0} ns CPU per IO | | | | | |",
            median(w),
            median(r)
        );
    }
}
