//! Resets, power, shutdown, D3hot, FLR, NSSR.

mod common;

use common::*;
use nvme_spec::log::SmartLog;
use nvme_spec::regs;
use nvme_spec::Sqe;
use zerocopy::FromBytes;

fn smart(r: &mut Rig) -> SmartLog {
    let mut s = Sqe::new(nvme_spec::cmd::admin::GET_LOG_PAGE, 0xffff_ffff);
    s.cdw10 = 2 | 127 << 16;
    let (_, d) = r.admin_data(s, None, 512);
    SmartLog::read_from_bytes(&d).unwrap()
}

fn reboot(r: &mut Rig) {
    r.dev.power_off();
    assert_eq!(r.dev.bar_read32(0, 0), 0xffff_ffff, "no power: all ones");
    r.dev.power_on();
    r.pci_setup();
    r.enable();
    r.io_pair(1, 16);
}

#[test]
fn power_loss_drops_cache_and_counts_unsafe_shutdown() {
    let mut r = Rig::new();
    r.enable();
    r.io_pair(1, 16);
    assert!(r.write(1, 0, &[1u8; 512]).is_success());
    assert!(r
        .cmd(1, Sqe::new(nvme_spec::cmd::nvm::FLUSH, 1))
        .status()
        .is_success());
    assert!(r.write(1, 1, &[2u8; 512]).is_success());
    reboot(&mut r);
    let (_, d) = r.read(1, 0, 2);
    assert!(d[..512].iter().all(|&b| b == 1), "flushed data kept");
    assert!(d[512..].iter().all(|&b| b == 0), "cached data lost");
    let s = smart(&mut r);
    assert_eq!((s.power_cycles(), s.unsafe_shutdowns()), (2, 1));
    // Clean shutdown: cache flushed, no unsafe shutdown counted.
    assert!(r.write(1, 1, &[3u8; 512]).is_success());
    let cc = r.reg32(regs::CC);
    r.set_reg32(regs::CC, cc | 1 << 14);
    assert!(r.wait_csts(0xc, regs::csts::SHST_COMPLETE));
    reboot(&mut r);
    let (_, d) = r.read(1, 1, 1);
    assert!(d.iter().all(|&b| b == 3));
    let s = smart(&mut r);
    assert_eq!((s.power_cycles(), s.unsafe_shutdowns()), (3, 1));
}

#[test]
fn disable_deletes_queues_and_hot_reset_restores_registers() {
    let mut r = Rig::new();
    r.enable();
    r.io_pair(1, 16);
    r.enable();
    // Queue 1 is gone: its doorbell is an invalid doorbell register write; creating it works.
    r.io_pair(1, 16);
    assert!(r.write(1, 0, &[1u8; 512]).is_success());
    r.dev.hot_reset();
    assert_eq!(
        r.reg32(regs::VS),
        0xffff_ffff,
        "command register reset: memory space off"
    );
    r.pci_setup();
    assert_eq!(r.reg32(regs::CC), 0);
    assert_eq!(r.reg32(regs::CSTS) & 1, 0);
    r.enable();
    r.io_pair(1, 16);
    let (_, d) = r.read(1, 0, 1);
    assert!(d.iter().all(|&b| b == 1), "a reset keeps the write cache");
}

#[test]
fn flr_and_d3hot() {
    let mut r = Rig::new();
    r.enable();
    // D3hot: registers not accessible.
    r.dev.config_write(0x44, &3u16.to_le_bytes());
    assert_eq!(r.reg32(regs::VS), 0xffff_ffff);
    r.dev.config_write(0x44, &0u16.to_le_bytes());
    assert_eq!(r.reg32(regs::VS), 0x0002_0000);
    assert_eq!(r.reg32(regs::CSTS) & 1, 1, "No_Soft_Reset: state kept");
    // FLR via PCIe device control bit 15.
    let mut b = [0u8; 2];
    r.dev.config_read(0x68, &mut b);
    let dc = u16::from_le_bytes(b);
    r.dev.config_write(0x68, &(dc | 0x8000).to_le_bytes());
    r.dev.config_read(0x68, &mut b);
    assert_eq!(u16::from_le_bytes(b) & 0x8000, 0);
    r.pci_setup();
    assert_eq!(r.reg32(regs::CSTS) & 1, 0);
    r.enable();
    // ASPM control is writable, link status reports speed and width.
    r.dev.config_write(0x70, &2u16.to_le_bytes());
    r.dev.config_read(0x70, &mut b);
    assert_eq!(u16::from_le_bytes(b) & 3, 2);
    r.dev.config_read(0x72, &mut b);
    assert_eq!(u16::from_le_bytes(b) & 0x3ff, 0x44);
}

#[test]
fn nssr_sets_nssro() {
    let mut r = Rig::new();
    r.enable();
    r.set_reg32(regs::NSSR, 0x1234);
    assert_eq!(r.reg32(regs::CSTS) & 1, 1, "wrong value ignored");
    r.set_reg32(regs::NSSR, regs::NSSR_MAGIC);
    assert!(r.wait_csts(regs::csts::NSSRO | 1, regs::csts::NSSRO));
    r.set_reg32(regs::CSTS, regs::csts::NSSRO);
    assert_eq!(r.reg32(regs::CSTS) & regs::csts::NSSRO, 0);
    r.enable();
}

#[test]
fn no_dma_without_bus_master() {
    let mut r = Rig::new();
    r.enable();
    r.dev.config_write(0x04, &0x0002u16.to_le_bytes());
    let before = r.host.accesses.load(std::sync::atomic::Ordering::SeqCst);
    r.post(0, Sqe::new(nvme_spec::cmd::admin::KEEP_ALIVE, 0));
    r.ring(0);
    assert!(r.take(0, std::time::Duration::from_millis(100)).is_none());
    assert_eq!(
        r.host.accesses.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "device touched memory without BME"
    );
}
