//! The benchmark profile through the controller: writes slow down once the write cache is
//! full, and an idle drive flushes it so that writes are fast again.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nvme_sim::SimConfig;

/// Time for `n` 64 KiB writes, one after the other, from LBA `slba` on.
fn writes(r: &mut Rig, slba: u64, n: u64) -> Duration {
    let data = pattern(64 << 10, 7);
    let t = Instant::now();
    for i in 0..n {
        assert!(r.write(1, slba + i * 128, &data).is_success());
    }
    t.elapsed()
}

#[test]
fn cache_phase_sustained_phase_and_recovery() {
    // 1 MiB cache (16 writes of 64 KiB) at 1 GiB/s, then 1 MiB/s: 62.5 ms per write.
    let cfg = SimConfig::from_uri(
        "sim://?profile=bench&capacity=64M&cache=1M&cache_bw=1G&sustained_bw=1M&flush_bw=1M",
    )
    .unwrap();
    let mut r = Rig::with(cfg);
    r.enable();
    r.io_pair(1, 64);
    let fast = writes(&mut r, 0, 16) / 16;
    let slow = writes(&mut r, 16 * 128, 4) / 4;
    // The model's completion times are lower bounds that a loaded machine cannot shorten.
    assert!(
        slow >= Duration::from_millis(60),
        "sustained phase {slow:?} per write"
    );
    assert!(
        fast < slow / 2,
        "per write: cache phase {fast:?}, sustained phase {slow:?}"
    );
    // Half a second idle at 1 MiB/s (after the 50 ms before the flush starts) flushes 512 KiB:
    // 8 fast writes again.
    std::thread::sleep(Duration::from_millis(550));
    let again = writes(&mut r, 20 * 128, 4) / 4;
    assert!(
        again < slow / 2,
        "per write: after idle {again:?}, sustained {slow:?}"
    );
}

#[test]
fn plain_profile_has_no_model() {
    let cfg = SimConfig::from_uri("sim://?capacity=64M").unwrap();
    assert!(cfg.perf.is_none());
    let mut r = Rig::with(cfg);
    r.enable();
    r.io_pair(1, 64);
    assert!(writes(&mut r, 0, 32) < Duration::from_secs(2));
}

/// Time from CC.EN to CSTS.RDY of one enable.
fn time_to_ready(r: &mut Rig) -> Duration {
    let t = Instant::now();
    r.enable();
    t.elapsed()
}

fn power_cycle(r: &mut Rig) {
    r.dev.power_off();
    r.dev.power_on();
    r.pci_setup();
}

#[test]
fn ready_comes_after_the_start_up_time_longest_after_a_power_loss() {
    let cfg = SimConfig::from_uri("sim://?profile=bench&capacity=64M").unwrap();
    let p = cfg.perf.unwrap();
    let mut r = Rig::with(cfg);
    // Out of the box: a clean start.
    let first = time_to_ready(&mut r);
    assert!(first >= p.ready_clean, "{first:?}");
    // A controller reset.
    let reset = time_to_ready(&mut r);
    assert!(reset >= p.ready_reset, "{reset:?}");
    // Power loss without shutdown notification.
    power_cycle(&mut r);
    let dirty = time_to_ready(&mut r);
    assert!(dirty >= p.ready_dirty, "{dirty:?}");
    // Normal shutdown, then power cycle.
    let cc = r.reg32(nvme_spec::regs::CC);
    r.set_reg32(nvme_spec::regs::CC, cc | 1 << 14);
    assert!(r.wait_csts(0xc, nvme_spec::regs::csts::SHST_COMPLETE));
    power_cycle(&mut r);
    let clean = time_to_ready(&mut r);
    assert!(clean >= p.ready_clean, "{clean:?}");
    assert!(clean < dirty, "clean {clean:?}, dirty {dirty:?}");
    // The device works once ready.
    r.io_pair(1, 16);
    assert!(r.write(1, 0, &[5u8; 512]).is_success());
}
