//! Queue machinery: CQ full, invalid doorbells and their asynchronous events, interrupts.

mod common;

use common::*;
use nvme_spec::cmd::{admin, nvm};
use nvme_spec::status::{cs, sc};
use nvme_spec::Sqe;
use std::time::Duration;

fn aer(rig: &mut Rig) -> u16 {
    let cid = rig.post(0, Sqe::new(admin::ASYNC_EVENT_REQUEST, 0));
    rig.ring(0);
    cid
}

fn get_log(rig: &mut Rig, lid: u8, len: usize, rae: bool) -> Vec<u8> {
    let mut s = Sqe::new(admin::GET_LOG_PAGE, 0xffff_ffff);
    s.cdw10 = lid as u32 | (rae as u32) << 15 | ((len / 4 - 1) as u32) << 16;
    let (c, d) = rig.admin_data(s, None, len);
    assert!(c.status().is_success(), "log {lid:#x}: {}", c.status());
    d
}

#[test]
fn invalid_sq_tail_raises_error_event_then_masked_until_log_read() {
    let mut rig = Rig::new();
    rig.enable();
    rig.io_pair(1, 16);
    let cid = aer(&mut rig);
    std::thread::sleep(Duration::from_millis(20));
    assert!(rig.peek(0).is_none(), "AER stays outstanding");
    // Tail beyond the queue size.
    rig.dev.bar_write32(0, rig.sq_doorbell(1), 16);
    let c = rig.reap(0);
    assert_eq!(c.cid, cid);
    assert_eq!(c.dw0, 0x10100);
    // A second event of the same type is masked until the error log is read.
    let cid2 = aer(&mut rig);
    rig.dev.bar_write32(0, rig.sq_doorbell(1), 17);
    assert!(rig.reap_timeout(0, Duration::from_millis(100)).is_none());
    let log = get_log(&mut rig, 1, 64, false);
    assert!(
        u64::from_le_bytes(log[0..8].try_into().unwrap()) >= 1,
        "error count"
    );
    let c = rig.reap(0);
    assert_eq!((c.cid, c.dw0), (cid2, 0x10100));
    // The queue still works with a valid tail.
    rig.dev.bar_write32(0, rig.sq_doorbell(1), 0);
    assert!(rig.write(1, 0, &[7u8; 512]).is_success());
}

#[test]
fn doorbell_of_missing_queue_and_bad_cq_head() {
    let mut rig = Rig::new();
    rig.enable();
    rig.io_pair(1, 16);
    aer(&mut rig);
    rig.dev.bar_write32(0, rig.sq_doorbell(5), 1);
    let c = rig.reap(0);
    assert_eq!(c.dw0, 0x10000, "invalid doorbell register");
    get_log(&mut rig, 1, 64, false);
    aer(&mut rig);
    // CQ head beyond what was posted.
    rig.dev.bar_write32(0, rig.cq_doorbell(1), 5);
    let c = rig.reap(0);
    assert_eq!(c.dw0, 0x10100);
}

#[test]
fn aer_limit_exceeded() {
    let mut rig = Rig::new();
    rig.enable();
    for _ in 0..4 {
        aer(&mut rig);
    }
    std::thread::sleep(Duration::from_millis(20));
    let c = rig.cmd(0, Sqe::new(admin::ASYNC_EVENT_REQUEST, 0));
    assert_eq!(
        (c.status().sct, c.status().sc),
        (1, cs::ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED)
    );
}

#[test]
fn cq_full_holds_completions_until_head_moves() {
    let mut rig = Rig::new();
    rig.enable();
    assert!(rig.create_cq(1, 4, 1, true).is_success());
    assert!(rig.create_sq(1, 16, 1).is_success());
    rig.queues[1].as_mut().unwrap().size = 4;
    // The test tracks SQ and CQ with one ring; use a separate SQ ring of 16.
    let sq = rig.queues[1].as_ref().unwrap().sq;
    for i in 0..8u16 {
        let mut s = Sqe::new(nvm::FLUSH, 1);
        s.set_cid(100 + i);
        rig.host
            .put(sq + i as u64 * 64, zerocopy::IntoBytes::as_bytes(&s));
    }
    rig.dev.bar_write32(0, rig.sq_doorbell(1), 8);
    std::thread::sleep(Duration::from_millis(50));
    // A 4-entry CQ holds 3 entries; the 4th slot is never written.
    let mut got = vec![];
    for _ in 0..3 {
        got.push(rig.take(1, TIMEOUT).unwrap().cid);
    }
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        rig.peek(1).is_none(),
        "device overwrote an unreleased entry"
    );
    rig.release(1);
    for _ in 0..3 {
        got.push(rig.take(1, TIMEOUT).unwrap().cid);
    }
    rig.release(1);
    for _ in 0..2 {
        got.push(rig.take(1, TIMEOUT).unwrap().cid);
    }
    rig.release(1);
    assert_eq!(got, (100..108).collect::<Vec<u16>>());
}

#[test]
fn msix_mask_pending_and_unmask_delivery() {
    let mut rig = Rig::new();
    rig.enable();
    rig.io_pair(2, 16);
    let l = rig.dev.bar0_layout();
    let ctrl = l.msix_table + 2 * 16 + 12;
    rig.dev.bar_write32(0, ctrl, 1);
    rig.clear_msix(2);
    assert!(rig.write(2, 0, &[1u8; 512]).is_success());
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(rig.msix_word(2), 0, "masked vector sends nothing");
    assert_ne!(
        rig.dev.bar_read32(0, l.msix_pba) & (1 << 2),
        0,
        "pending bit set"
    );
    rig.dev.bar_write32(0, ctrl, 0);
    assert!(
        rig.wait_msix(2, Duration::from_secs(2)),
        "delivered at unmask"
    );
    assert_eq!(rig.dev.bar_read32(0, l.msix_pba) & (1 << 2), 0);
    // Function mask.
    let mut b = [0u8; 2];
    rig.dev.config_read(0x52, &mut b);
    let mc = u16::from_le_bytes(b);
    rig.dev.config_write(0x52, &(mc | 0x4000).to_le_bytes());
    rig.clear_msix(2);
    assert!(rig.write(2, 0, &[1u8; 512]).is_success());
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(rig.msix_word(2), 0);
    rig.dev.config_write(0x52, &(mc & !0x4000).to_le_bytes());
    assert!(rig.wait_msix(2, Duration::from_secs(2)));
}

#[test]
fn interrupt_coalescing_threshold_and_time() {
    let mut rig = Rig::new();
    rig.enable();
    rig.io_pair(1, 64);
    // Threshold 4 entries (0-based 3), time 100 ms (1000 x 100 us is too long: use 200 = 20 ms).
    assert!(rig.set_features(0x08, 3 | 200 << 8).status().is_success());
    rig.clear_msix(1);
    let s = Sqe::new(nvm::FLUSH, 1);
    rig.post(1, s);
    rig.ring(1);
    let t = std::time::Instant::now();
    rig.take(1, TIMEOUT).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(rig.msix_word(1), 0, "one entry below threshold: held");
    assert!(rig.wait_msix(1, Duration::from_secs(2)));
    assert!(
        t.elapsed() >= Duration::from_millis(15),
        "aggregation time honoured"
    );
    rig.release(1);
    // Four entries reach the threshold at once.
    rig.clear_msix(1);
    for _ in 0..4 {
        rig.post(1, s);
    }
    rig.ring(1);
    for _ in 0..4 {
        rig.take(1, TIMEOUT).unwrap();
    }
    assert!(rig.wait_msix(1, Duration::from_millis(10)));
    rig.release(1);
    // Coalescing disabled for the vector.
    assert!(rig.set_features(0x09, 1 | 1 << 16).status().is_success());
    rig.clear_msix(1);
    rig.cmd(1, s);
    assert!(rig.wait_msix(1, Duration::from_millis(10)));
}

#[test]
fn abort_of_queued_command_and_latency() {
    let mut cfg = nvme_sim::SimConfig::default();
    cfg.latency.write = nvme_sim::LatencySpec::fixed(Duration::from_millis(200));
    let mut rig = Rig::with(cfg);
    rig.enable();
    rig.io_pair(1, 16);
    let buf = rig.host.alloc(PAGE, PAGE);
    let mut w = Sqe::new(nvm::WRITE, 1);
    w.prp1 = buf;
    let cid = rig.post(1, w);
    rig.ring(1);
    std::thread::sleep(Duration::from_millis(20));
    let mut a = Sqe::new(admin::ABORT, 0);
    a.cdw10 = 1 | (cid as u32) << 16;
    let c = rig.admin(a);
    assert!(c.status().is_success());
    assert_eq!(c.dw0 & 1, 0, "aborted");
    let c = rig.reap(1);
    assert_eq!((c.cid, c.status().sc), (cid, sc::ABORTED_BY_REQUEST));
    // Nothing to abort.
    a.cdw10 = 1 | 999 << 16;
    assert_eq!(rig.admin(a).dw0 & 1, 1);
}

#[test]
fn weighted_round_robin_and_urgent_queue() {
    let mut rig = Rig::new();
    rig.set_reg32(nvme_spec::regs::CC, 0);
    assert!(rig.wait_csts(1, 0));
    let sq = rig.host.alloc(32 * 64, PAGE);
    let cq = rig.host.alloc(32 * 16, PAGE);
    rig.set_reg32(nvme_spec::regs::AQA, nvme_spec::regs::aqa::build(31, 31));
    rig.dev.bar_write64(0, nvme_spec::regs::ASQ as u64, sq);
    rig.dev.bar_write64(0, nvme_spec::regs::ACQ as u64, cq);
    rig.set_reg32(
        nvme_spec::regs::CC,
        nvme_spec::regs::cc::DEFAULT | 1 << 11 | 1,
    );
    assert!(rig.wait_csts(1, 1), "WRR accepted");
    rig.queues[0] = Some(Queue {
        sq,
        cq,
        size: 32,
        tail: 0,
        head: 0,
        phase: true,
        cid: 0,
    });
    assert!(rig
        .set_features(0x01, 7 | 1 << 8 | 2 << 16 | 4 << 24)
        .status()
        .is_success());
    assert_eq!(
        rig.get_features(0x01, 0, 0).dw0,
        7 | 1 << 8 | 2 << 16 | 4 << 24
    );
    rig.io_pair(1, 16);
    assert!(rig.write(1, 0, &[1u8; 512]).is_success());
}

#[test]
fn abort_completes_an_outstanding_aer_with_abort_requested() {
    let mut rig = Rig::new();
    rig.enable();
    let first = aer(&mut rig);
    let second = aer(&mut rig);
    std::thread::sleep(Duration::from_millis(20));
    assert!(rig.peek(0).is_none(), "an AER completed without an event");
    let mut s = Sqe::new(admin::ABORT, 0);
    s.cdw10 = (second as u32) << 16;
    let cid = rig.post(0, s);
    rig.ring(0);
    // Two completions: the AER with 00/07, and the Abort with dword 0 bit 0 cleared.
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(rig.reap(0));
    }
    let aborted = got
        .iter()
        .find(|c| c.cid == second)
        .expect("aborted AER completes");
    assert_eq!(
        (aborted.status().sct, aborted.status().sc),
        (0, sc::ABORTED_BY_REQUEST)
    );
    let abort = got.iter().find(|c| c.cid == cid).expect("abort completes");
    assert!(abort.status().is_success());
    assert_eq!(abort.dw0 & 1, 0);
    // The other AER is still outstanding; a second abort of the same CID finds nothing.
    let mut s = Sqe::new(admin::ABORT, 0);
    s.cdw10 = (second as u32) << 16;
    let c = rig.cmd(0, s);
    assert!(c.status().is_success());
    assert_eq!(c.dw0 & 1, 1);
    let mut s = Sqe::new(admin::ABORT, 0);
    s.cdw10 = (first as u32) << 16;
    let cid = rig.post(0, s);
    rig.ring(0);
    let a = rig.reap(0);
    assert_eq!((a.cid, a.status().sc), (first, sc::ABORTED_BY_REQUEST));
    let c = rig.reap(0);
    assert_eq!((c.cid, c.dw0 & 1), (cid, 0));
}
