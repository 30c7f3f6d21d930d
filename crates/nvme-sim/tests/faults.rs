//! Fault injection.

mod common;

use common::*;
use nvme_sim::{FaultAction, FaultMatch, FaultRule};
use nvme_spec::cmd::{admin, nvm};
use nvme_spec::status::{media, sct};
use nvme_spec::{regs, Sqe, Status};
use std::time::{Duration, Instant};

fn rig() -> Rig {
    let mut r = Rig::new();
    r.enable();
    r.io_pair(1, 16);
    r
}

#[test]
fn error_status_for_an_lba_range_and_count() {
    let mut r = rig();
    let st = Status::new(sct::MEDIA_ERROR, media::UNRECOVERED_READ_ERROR);
    let id = r.dev.faults().add(
        FaultRule::new(
            FaultMatch::io(nvm::READ).lbas(10, 20),
            FaultAction::Status(st),
        )
        .times(2),
    );
    assert!(r.read(1, 0, 1).0.is_success());
    assert_eq!(r.read(1, 15, 1).0, st);
    assert_eq!(r.read(1, 5, 8).0, st);
    assert!(r.read(1, 15, 1).0.is_success(), "count exhausted");
    assert_eq!(r.dev.faults().hits(id), 2);
    // Admin command fault.
    r.dev
        .faults()
        .add(FaultRule::new(FaultMatch::admin(admin::IDENTIFY), FaultAction::Status(st)).times(1));
    assert_eq!(r.identify(1, 0).0, st);
    assert!(r.identify(1, 0).0.is_success());
}

#[test]
fn delay_and_drop_completion() {
    let mut r = rig();
    r.dev.faults().add(
        FaultRule::new(
            FaultMatch::io(nvm::FLUSH),
            FaultAction::Delay(Duration::from_millis(100)),
        )
        .times(1),
    );
    let t = Instant::now();
    assert!(r.cmd(1, Sqe::new(nvm::FLUSH, 1)).status().is_success());
    assert!(t.elapsed() >= Duration::from_millis(90));
    r.dev
        .faults()
        .add(FaultRule::new(FaultMatch::io(nvm::FLUSH), FaultAction::DropCompletion).times(1));
    r.post(1, Sqe::new(nvm::FLUSH, 1));
    r.ring(1);
    assert!(
        r.reap_timeout(1, Duration::from_millis(100)).is_none(),
        "host times out"
    );
    assert!(r.cmd(1, Sqe::new(nvm::FLUSH, 1)).status().is_success());
}

#[test]
fn bit_flips_lost_and_misdirected_writes() {
    let mut r = rig();
    let d = pattern(512, 1);
    assert!(r.write(1, 0, &d).is_success());
    r.dev
        .faults()
        .add(FaultRule::new(FaultMatch::io(nvm::READ), FaultAction::FlipBits(1)).times(1));
    let (_, got) = r.read(1, 0, 1);
    let diff: u32 = got.iter().zip(&d).map(|(a, b)| (a ^ b).count_ones()).sum();
    assert_eq!(diff, 1);
    // n flips are n distinct bits: never one bit flipped twice (no change at all).
    for n in [2u32, 3] {
        r.dev
            .faults()
            .add(FaultRule::new(FaultMatch::io(nvm::READ), FaultAction::FlipBits(n)).times(3000));
        for _ in 0..3000 {
            let (_, got) = r.read(1, 0, 1);
            let diff: u32 = got.iter().zip(&d).map(|(a, b)| (a ^ b).count_ones()).sum();
            assert_eq!(diff, n);
        }
    }
    r.dev
        .faults()
        .add(FaultRule::new(FaultMatch::io(nvm::WRITE), FaultAction::LostWrite).times(1));
    assert!(r.write(1, 1, &d).is_success());
    assert!(
        r.read(1, 1, 1).1.iter().all(|&b| b == 0),
        "lost write stored nothing"
    );
    r.dev.faults().add(
        FaultRule::new(
            FaultMatch::io(nvm::WRITE),
            FaultAction::MisdirectedWrite(100),
        )
        .times(1),
    );
    assert!(r.write(1, 2, &d).is_success());
    assert!(r.read(1, 2, 1).1.iter().all(|&b| b == 0));
    assert_eq!(r.read(1, 102, 1).1, d);
}

#[test]
fn stale_data_returns_previous_version() {
    let mut r = rig();
    let v1 = pattern(512, 1);
    let v2 = pattern(512, 2);
    let id = r.dev.faults().add(FaultRule::new(
        FaultMatch::io(nvm::READ).lbas(5, 6),
        FaultAction::StaleData,
    ));
    assert!(r.write(1, 5, &v1).is_success());
    assert!(r.write(1, 5, &v2).is_success());
    assert_eq!(r.read(1, 5, 1).1, v1);
    r.dev.faults().remove(id);
    assert_eq!(r.read(1, 5, 1).1, v2);
}

#[test]
fn duplicate_and_wrong_cqe_fields() {
    let mut r = rig();
    r.dev
        .faults()
        .add(FaultRule::new(FaultMatch::io(nvm::FLUSH), FaultAction::DuplicateCqe).times(1));
    let cid = r.post(1, Sqe::new(nvm::FLUSH, 1));
    r.ring(1);
    assert_eq!(r.reap(1).cid, cid);
    assert_eq!(r.reap(1).cid, cid, "posted twice");
    r.dev
        .faults()
        .add(FaultRule::new(FaultMatch::io(nvm::FLUSH), FaultAction::WrongCid(0x40)).times(1));
    let cid = r.post(1, Sqe::new(nvm::FLUSH, 1));
    r.ring(1);
    assert_eq!(r.reap(1).cid, cid ^ 0x40);
    r.dev
        .faults()
        .add(FaultRule::new(FaultMatch::io(nvm::FLUSH), FaultAction::WrongSqid(9)).times(1));
    r.post(1, Sqe::new(nvm::FLUSH, 1));
    r.ring(1);
    assert_eq!(r.reap(1).sqid, 9);
}

#[test]
fn probability_rules_hit_some() {
    let mut r = rig();
    let st = Status::new(sct::MEDIA_ERROR, media::WRITE_FAULT);
    let id = r.dev.faults().add(
        FaultRule::new(FaultMatch::io(nvm::FLUSH), FaultAction::Status(st)).with_probability(0.5),
    );
    let fails = (0..200)
        .filter(|_| !r.cmd(1, Sqe::new(nvm::FLUSH, 1)).status().is_success())
        .count();
    assert!((50..150).contains(&fails), "{fails}");
    assert_eq!(r.dev.faults().hits(id), fails as u64);
    r.dev.faults().clear();
    assert!(r.dev.faults().is_empty());
}

#[test]
fn controller_fatal_until_reset() {
    let mut r = rig();
    r.dev.faults().controller_fatal();
    assert!(r.wait_csts(regs::csts::CFS, regs::csts::CFS));
    r.post(1, Sqe::new(nvm::FLUSH, 1));
    r.ring(1);
    assert!(
        r.reap_timeout(1, Duration::from_millis(100)).is_none(),
        "no processing"
    );
    r.enable();
    assert_eq!(r.reg32(regs::CSTS) & regs::csts::CFS, 0);
}

#[test]
fn surprise_removal() {
    let mut r = rig();
    r.dev.faults().surprise_removal();
    assert_eq!(r.reg32(regs::VS), 0xffff_ffff);
    let mut b = [0u8; 4];
    r.dev.config_read(0, &mut b);
    assert_eq!(b, [0xff; 4]);
    let before = r.host.accesses.load(std::sync::atomic::Ordering::SeqCst);
    r.dev.bar_write32(0, r.sq_doorbell(1), 1);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        r.host.accesses.load(std::sync::atomic::Ordering::SeqCst),
        before
    );
    r.dev.faults().reinsert();
    r.dev.power_off();
    r.dev.power_on();
    r.pci_setup();
    r.enable();
}

#[test]
fn a_torn_write_loses_its_second_half_at_the_next_power_loss() {
    let mut r = rig();
    let (old, new) = (pattern(4 * 512, 1), pattern(4 * 512, 2));
    // Durable old data, then a torn write of 4 blocks and of 1 block, flushed.
    assert!(r.write(1, 0, &old).is_success());
    assert!(r.write(1, 10, &old[..512]).is_success());
    r.dev
        .faults()
        .add(FaultRule::new(FaultMatch::io(nvm::WRITE), FaultAction::TornWrite).times(2));
    assert!(r.write(1, 0, &new).is_success());
    assert!(r.write(1, 10, &new[..512]).is_success());
    assert!(r.cmd(1, Sqe::new(nvm::FLUSH, 1)).status().is_success());
    assert_eq!(r.read(1, 0, 4).1, new, "whole until the power goes");
    r.dev.power_off();
    r.dev.power_on();
    r.pci_setup();
    r.enable();
    r.io_pair(1, 16);
    let d = r.read(1, 0, 4).1;
    assert_eq!(&d[..1024], &new[..1024], "first half kept");
    assert_eq!(&d[1024..], &old[1024..], "second half as before");
    let d = r.read(1, 10, 1).1;
    assert_eq!((&d[..256], &d[256..]), (&new[..256], &old[256..512]));
    // A later write of the torn bytes cancels the tear.
    r.dev
        .faults()
        .add(FaultRule::new(FaultMatch::io(nvm::WRITE), FaultAction::TornWrite).times(1));
    assert!(r.write(1, 20, &new[..1024]).is_success());
    assert!(r.write(1, 21, &old[..512]).is_success());
    assert!(r.cmd(1, Sqe::new(nvm::FLUSH, 1)).status().is_success());
    r.dev.power_off();
    r.dev.power_on();
    r.pci_setup();
    r.enable();
    r.io_pair(1, 16);
    assert_eq!(r.read(1, 21, 1).1, &old[..512]);
}

#[test]
fn a_read_without_data_completes_successfully_and_moves_nothing() {
    let mut r = rig();
    let v = pattern(512, 7);
    assert!(r.write(1, 3, &v).is_success());
    r.dev
        .faults()
        .add(FaultRule::new(FaultMatch::io(nvm::READ), FaultAction::ReadWithoutData).times(1));
    let (st, d) = r.read(1, 3, 1);
    assert!(st.is_success());
    assert_ne!(d, v, "the buffer keeps what it held");
    assert_eq!(r.read(1, 3, 1).1, v);
}
