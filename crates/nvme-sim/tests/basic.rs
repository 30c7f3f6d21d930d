//! Bring-up: config space, registers, enable, admin queue, identify, queues, read/write, MSI-X.

mod common;

use common::*;
use nvme_spec::cmd::{admin, nvm};
use nvme_spec::identify::{IdentifyController, IdentifyNamespace};
use nvme_spec::regs;
use nvme_spec::status::{cs, sc, sct};
use nvme_spec::{Sqe, Status};
use std::time::Duration;
use zerocopy::FromBytes;

#[test]
fn config_space_identity_and_capabilities() {
    let rig = Rig::new();
    let mut b = [0u8; 64];
    rig.dev.config_read(0, &mut b);
    assert_eq!(u16::from_le_bytes([b[0], b[1]]), nvme_sim::VENDOR_ID);
    assert_eq!([b[9], b[10], b[11]], [0x02, 0x08, 0x01]);
    // Walk the capability list: PM, MSI-X, PCIe.
    let mut ids = vec![];
    let mut p = b[0x34] as u16;
    while p != 0 {
        let mut h = [0u8; 2];
        rig.dev.config_read(p, &mut h);
        ids.push(h[0]);
        p = h[1] as u16;
    }
    assert_eq!(ids, vec![0x01, 0x11, 0x10]);
    let mut e = [0u8; 4];
    rig.dev.config_read(0x100, &mut e);
    assert_eq!(u32::from_le_bytes(e) & 0xffff, 1, "AER at 0x100");
    // BAR sizing.
    rig.dev.config_write(0x10, &[0xff; 4]);
    rig.dev.config_read(0x10, &mut e);
    let size = !(u32::from_le_bytes(e) & !0xf) as u64 + 1;
    assert_eq!(size, rig.dev.bar_size(0));
    assert!(size.is_power_of_two());
    // Read-only fields ignore writes.
    rig.dev.config_write(0, &[0, 0, 0, 0]);
    rig.dev.config_read(0, &mut e);
    assert_eq!(u16::from_le_bytes([e[0], e[1]]), nvme_sim::VENDOR_ID);
}

#[test]
fn mse_off_reads_all_ones() {
    let rig = Rig::new();
    assert_ne!(rig.reg32(regs::VS), 0xffff_ffff);
    rig.dev.config_write(0x04, &0u16.to_le_bytes());
    assert_eq!(rig.reg32(regs::VS), 0xffff_ffff);
    assert_eq!(rig.dev.bar_read64(0, 0), u64::MAX);
}

#[test]
fn registers_and_enable() {
    let mut rig = Rig::new();
    let cap = regs::Cap(rig.dev.bar_read64(0, 0));
    assert_eq!(cap.mqes(), 1023);
    assert!(cap.cqr());
    assert!(cap.nssrs());
    assert_eq!(cap.css() & 1, 1);
    assert_eq!(rig.reg32(regs::VS), 0x0002_0000);
    rig.enable();
    assert_eq!(rig.reg32(regs::CSTS) & 1, 1);
    // Disable: RDY clears.
    rig.set_reg32(regs::CC, 0);
    assert!(rig.wait_csts(1, 0));
    rig.enable();
}

#[test]
fn identify_controller_and_namespace() {
    let mut rig = Rig::new();
    rig.enable();
    let (st, d) = rig.identify(1, 0);
    assert!(st.is_success());
    let id = IdentifyController::read_from_bytes(&d).unwrap();
    assert_eq!(id.vid, nvme_sim::VENDOR_ID);
    assert!(
        id.vid & 0xff != 0 && id.vid >> 8 != 0,
        "a vendor id byte is zero"
    );
    // Five power states: three operational, two non-operational with longer latencies.
    assert_eq!(id.npss, 4);
    for (i, p) in id.psd[..5].iter().enumerate() {
        assert_eq!(p.nops(), i >= 3, "power state {i}");
        if i > 0 {
            assert!(p.enlat >= id.psd[i - 1].enlat && p.exlat >= id.psd[i - 1].exlat);
            assert!(p.mp < id.psd[i - 1].mp);
        }
    }
    assert_eq!(id.serial(), rig.dev.config().serial);
    assert_eq!(id.mdts, 5);
    assert_eq!(id.sqes, 0x66);
    assert_eq!(id.nn, 32);
    let (st, d) = rig.identify(0, 1);
    assert!(st.is_success());
    let ns = IdentifyNamespace::read_from_bytes(&d).unwrap();
    assert_eq!(ns.nsze, (8u64 << 30) / 512);
    assert_eq!(ns.sector_size(), 512);
    let (st, _) = rig.identify(0, 0);
    assert_eq!(
        (st.sct, st.sc),
        (sct::GENERIC, sc::INVALID_NAMESPACE_OR_FORMAT)
    );
    let (st, d) = rig.identify(2, 0);
    assert!(st.is_success());
    assert_eq!(u32::from_le_bytes(d[0..4].try_into().unwrap()), 1);
    assert_eq!(u32::from_le_bytes(d[4..8].try_into().unwrap()), 0);
    let (st, _) = rig.identify(0x55, 0);
    assert_eq!(st.sc, sc::INVALID_FIELD);
}

#[test]
fn number_of_queues_and_io_queue_errors() {
    let mut rig = Rig::new();
    rig.enable();
    let c = rig.set_features(0x07, 100 | 100 << 16);
    assert!(c.status().is_success());
    assert_eq!(c.dw0, 63 | 63 << 16, "capped at the maximum");
    assert_eq!(rig.get_features(0x07, 0, 0).dw0, 63 | 63 << 16);
    let c = rig.set_features(0x07, 3 | 3 << 16);
    assert_eq!(
        c.dw0,
        63 | 63 << 16,
        "the allocation does not change until a reset"
    );
    assert_eq!(
        rig.set_features(0x07, 0xffff).status().sc,
        sc::INVALID_FIELD
    );
    // Invalid queue id, size, vector, missing CQ.
    let bad = |s: Status, code: u8| s.sct == sct::COMMAND_SPECIFIC && s.sc == code;
    assert!(bad(
        rig.create_cq(0, 16, 1, true),
        cs::INVALID_QUEUE_IDENTIFIER
    ));
    assert!(bad(
        rig.create_cq(65, 16, 1, true),
        cs::INVALID_QUEUE_IDENTIFIER
    ));
    assert!(bad(rig.create_cq(1, 1, 1, true), cs::INVALID_QUEUE_SIZE));
    assert!(bad(rig.create_cq(1, 2048, 1, true), cs::INVALID_QUEUE_SIZE));
    assert!(bad(
        rig.create_cq(1, 16, 500, true),
        cs::INVALID_INTERRUPT_VECTOR
    ));
    assert!(bad(rig.create_sq(1, 16, 1), cs::COMPLETION_QUEUE_INVALID));
    // PC=0 is invalid with CAP.CQR=1.
    let mut s = Sqe::new(admin::CREATE_IO_CQ, 0);
    s.prp1 = rig.host.alloc(PAGE, PAGE);
    s.cdw10 = 1 | 15 << 16;
    assert_eq!(rig.admin(s).status().sc, sc::INVALID_FIELD);
    rig.io_pair(1, 16);
    assert!(bad(
        rig.create_cq(1, 16, 1, true),
        cs::INVALID_QUEUE_IDENTIFIER
    ));
    // Number of queues cannot change once I/O queues exist.
    assert_eq!(
        rig.set_features(0x07, 1 | 1 << 16).status().sc,
        sc::COMMAND_SEQUENCE_ERROR
    );
    // CQ with an SQ cannot be deleted.
    let mut d = Sqe::new(admin::DELETE_IO_CQ, 0);
    d.cdw10 = 1;
    assert!(bad(rig.admin(d).status(), cs::INVALID_QUEUE_DELETION));
    let mut ds = Sqe::new(admin::DELETE_IO_SQ, 0);
    ds.cdw10 = 1;
    assert!(rig.admin(ds).status().is_success());
    assert!(bad(rig.admin(ds).status(), cs::INVALID_QUEUE_IDENTIFIER));
    assert!(rig.admin(d).status().is_success());
}

#[test]
fn write_read_flush_with_prps() {
    let mut rig = Rig::new();
    rig.enable();
    rig.io_pair(1, 64);
    for (slba, nlb) in [(0u64, 1u32), (7, 8), (100, 24), (1000, 256)] {
        let data = pattern(nlb as usize * 512, slba as u8);
        assert!(rig.write(1, slba, &data).is_success());
        let (st, back) = rig.read(1, slba, nlb);
        assert!(st.is_success());
        assert_eq!(back, data, "slba {slba} nlb {nlb}");
    }
    let f = rig.cmd(1, Sqe::new(nvm::FLUSH, 1));
    assert!(f.status().is_success());
    // Unwritten LBAs read zeroes.
    let (_, z) = rig.read(1, 5000, 4);
    assert!(z.iter().all(|&b| b == 0));
    // LBA out of range, invalid namespace, invalid opcode, above MDTS.
    let nsze = (8u64 << 30) / 512;
    assert_eq!(
        rig.rw(1, nvm::READ, 1, nsze - 1, 2, None, 512).0.sc,
        sc::LBA_OUT_OF_RANGE
    );
    assert_eq!(
        rig.rw(1, nvm::READ, 9, 0, 1, None, 512).0.sc,
        sc::INVALID_NAMESPACE_OR_FORMAT
    );
    assert_eq!(
        rig.cmd(1, Sqe::new(0x7e, 1)).status().sc,
        sc::INVALID_OPCODE
    );
    assert_eq!(
        rig.rw(1, nvm::READ, 1, 0, 257, None, 512).0.sc,
        sc::INVALID_FIELD
    );
}

#[test]
fn prp_first_entry_offset_and_chained_lists() {
    let mut rig = Rig::new();
    rig.enable();
    rig.io_pair(1, 16);
    // 128 KiB across a PRP1 with an offset and a chained list (list page holds 3 entries + chain).
    let len = 128 * 1024;
    let data = pattern(len, 9);
    let pages = 34u64;
    let buf = rig.host.alloc(pages * PAGE, PAGE);
    let prp1 = buf + 0x200;
    rig.host.put(prp1, &data);
    // Entries: pages 1..=32 (the data spans 33 pages from offset 0x200).
    let entries: Vec<u64> = (1..33).map(|i| buf + i * PAGE).collect();
    // First list: last 4 entries of a page (offset 0xfe0), chain at its end.
    let l1 = rig.host.alloc(2 * PAGE, PAGE);
    let first = l1 + PAGE - 32;
    let l2 = rig.host.alloc(PAGE, PAGE);
    for (i, e) in entries[..3].iter().enumerate() {
        rig.host.put_u64(first + i as u64 * 8, *e);
    }
    rig.host.put_u64(first + 24, l2);
    for (i, e) in entries[3..].iter().enumerate() {
        rig.host.put_u64(l2 + i as u64 * 8, *e);
    }
    let mut s = Sqe::new(nvm::WRITE, 1);
    s.prp1 = prp1;
    s.prp2 = first;
    s.set_slba(64);
    s.cdw12 = (len / 512) as u32 - 1;
    assert!(rig.cmd(1, s).status().is_success());
    let (st, back) = rig.read(1, 64, (len / 512) as u32);
    assert!(st.is_success());
    assert_eq!(back, data);
    // A data PRP2 with an offset is an invalid PRP offset.
    let mut s = Sqe::new(nvm::READ, 1);
    s.prp1 = buf;
    s.prp2 = buf + PAGE + 8;
    s.cdw12 = 15;
    assert_eq!(rig.cmd(1, s).status().sc, sc::INVALID_PRP_OFFSET);
}

#[test]
fn msix_message_per_completion() {
    let mut rig = Rig::new();
    rig.enable();
    rig.clear_msix(0);
    rig.identify(1, 0);
    assert!(
        rig.wait_msix(0, Duration::from_secs(2)),
        "admin completion interrupt"
    );
    rig.io_pair(3, 16);
    rig.clear_msix(3);
    assert!(rig.write(3, 0, &[1u8; 512]).is_success());
    assert!(
        rig.wait_msix(3, Duration::from_secs(2)),
        "I/O completion interrupt on vector 3"
    );
}
