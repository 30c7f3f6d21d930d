//! Admin commands: features, logs, format, firmware, self-test, sanitize, namespaces, security.

mod common;

use common::*;
use nvme_spec::cmd::{admin, nvm};
use nvme_spec::log::{DeviceSelfTestLog, FirmwareSlotLog, SanitizeStatusLog, SmartLog};
use nvme_spec::status::{cs, sc, sct};
use nvme_spec::Sqe;
use std::time::{Duration, Instant};
use zerocopy::FromBytes;

fn rig() -> Rig {
    let mut r = Rig::new();
    r.enable();
    r
}

fn log(r: &mut Rig, lid: u8, len: usize, offset: u64) -> (nvme_spec::Status, Vec<u8>) {
    let mut s = Sqe::new(admin::GET_LOG_PAGE, 0xffff_ffff);
    s.cdw10 = lid as u32 | ((len / 4 - 1) as u32) << 16;
    s.cdw12 = offset as u32;
    let (c, d) = r.admin_data(s, None, len);
    (c.status(), d)
}

#[test]
fn features_select_and_errors() {
    let mut r = rig();
    assert!(r.set_features(0x06, 0).status().is_success());
    assert_eq!(r.get_features(0x06, 0, 0).dw0, 0);
    assert_eq!(r.get_features(0x06, 1, 0).dw0, 1, "default");
    assert_eq!(r.get_features(0x06, 3, 0).dw0 & 4, 4, "changeable");
    assert_eq!(r.get_features(0x77, 0, 0).status().sc, sc::INVALID_FIELD);
    assert_eq!(
        r.set_features(0x02, 9).status().sc,
        sc::INVALID_FIELD,
        "power state beyond NPSS"
    );
    assert!(r.set_features(0x02, 2).status().is_success());
    assert_eq!(r.get_features(0x02, 0, 0).dw0, 2);
    let mut s = Sqe::new(admin::SET_FEATURES, 0);
    s.cdw10 = 0x06 | 1 << 31;
    s.cdw11 = 1;
    let st = r.admin(s).status();
    assert_eq!(
        (st.sct, st.sc),
        (sct::COMMAND_SPECIFIC, cs::FEATURE_IDENTIFIER_NOT_SAVEABLE)
    );
    for (fid, v) in [
        (0x05u8, 10u32),
        (0x08, 0x0a05),
        (0x0b, 0x300),
        (0x0f, 5000),
        (0x0a, 1),
    ] {
        assert!(r.set_features(fid, v).status().is_success(), "fid {fid:#x}");
        assert_eq!(r.get_features(fid, 0, 0).dw0, v, "fid {fid:#x}");
    }
    // Features return to defaults on controller reset.
    r.enable();
    assert_eq!(r.get_features(0x05, 0, 0).dw0, 0);
    // Timestamp.
    let mut s = Sqe::new(admin::SET_FEATURES, 0);
    s.cdw10 = 0x0e;
    let (c, _) = r.admin_data(
        s,
        Some(&nvme_spec::features::Timestamp::new(1_000_000).timestamp),
        8,
    );
    assert!(c.status().is_success());
    let mut g = Sqe::new(admin::GET_FEATURES, 0);
    g.cdw10 = 0x0e;
    let (_, d) = r.admin_data(g, None, 8);
    let t = nvme_spec::features::Timestamp::read_from_bytes(&d).unwrap();
    assert!(t.millis() >= 1_000_000 && t.millis() < 1_010_000);
}

#[test]
fn temperature_threshold_raises_smart_event() {
    let mut r = rig();
    assert!(r.set_features(0x0b, 0x2).status().is_success());
    let cid = r.post(0, Sqe::new(admin::ASYNC_EVENT_REQUEST, 0));
    r.ring(0);
    // Over-temperature threshold below the current temperature.
    let c = r.set_features(0x04, 300);
    assert!(c.status().is_success());
    let e = r.reap(0);
    assert_eq!(e.cid, cid);
    assert_eq!(e.dw0, 0x020101);
    let (_, d) = log(&mut r, 2, 512, 0);
    let smart = SmartLog::read_from_bytes(&d).unwrap();
    assert_eq!(smart.critical_warning & 2, 2);
    assert_eq!(
        r.set_features(0x04, 300 | 3 << 16).status().sc,
        sc::INVALID_FIELD
    );
}

#[test]
fn smart_counters_and_log_offsets() {
    let mut r = rig();
    r.io_pair(1, 16);
    for i in 0..3 {
        assert!(r.write(1, i * 8, &[1u8; 4096]).is_success());
    }
    r.read(1, 0, 8);
    let (st, d) = log(&mut r, 2, 512, 0);
    assert!(st.is_success());
    let s = SmartLog::read_from_bytes(&d).unwrap();
    assert_eq!(s.host_write_commands(), 3);
    assert_eq!(s.host_read_commands(), 1);
    assert_eq!(
        s.data_units_written(),
        1,
        "24 x 512 B rounds up to one unit"
    );
    assert_eq!(s.power_cycles(), 1);
    let (_, part) = log(&mut r, 2, 8, 48);
    assert_eq!(&part[..], &d[48..56], "offset honoured");
    assert_eq!(
        log(&mut r, 2, 8, 2).0.sc,
        sc::INVALID_FIELD,
        "unaligned offset"
    );
    let st = log(&mut r, 0x33, 512, 0).0;
    assert_eq!(
        (st.sct, st.sc),
        (sct::COMMAND_SPECIFIC, cs::INVALID_LOG_PAGE)
    );
    for lid in [0u8, 1, 3, 4, 5, 6, 0x81] {
        assert!(log(&mut r, lid, 512, 0).0.is_success(), "log {lid:#x}");
    }
}

#[test]
fn firmware_download_commit_and_activation() {
    let mut r = rig();
    let img = b"FW2.0.0 and some more image bytes...";
    let mut dl = Sqe::new(admin::FW_DOWNLOAD, 0);
    dl.cdw10 = (img.len() / 4 - 1) as u32;
    let (c, _) = r.admin_data(dl, Some(img), img.len());
    assert!(c.status().is_success());
    let mut commit = Sqe::new(admin::FW_COMMIT, 0);
    commit.cdw10 = 2 | 1 << 3; // slot 2, replace and activate at next reset
    assert!(r.admin(commit).status().is_success());
    let (_, d) = r.identify(1, 0);
    let id = nvme_spec::identify::IdentifyController::read_from_bytes(&d).unwrap();
    assert_eq!(id.firmware(), "1.0");
    let (_, d) = log(&mut r, 3, 512, 0);
    let fs = FirmwareSlotLog::read_from_bytes(&d).unwrap();
    assert_eq!((fs.active_slot(), fs.next_slot()), (1, 2));
    r.enable(); // controller reset activates
    let (_, d) = r.identify(1, 0);
    let id = nvme_spec::identify::IdentifyController::read_from_bytes(&d).unwrap();
    assert_eq!(id.firmware(), "FW2.0.0");
    // Errors: slot out of range, no image.
    commit.cdw10 = 7 | 1 << 3;
    assert_eq!(r.admin(commit).status().sc, cs::INVALID_FIRMWARE_SLOT);
    commit.cdw10 = 3 | 1 << 3;
    assert_eq!(r.admin(commit).status().sc, cs::INVALID_FIRMWARE_IMAGE);
    // Immediate activation of slot 1.
    commit.cdw10 = 1 | 3 << 3;
    assert!(r.admin(commit).status().is_success());
    let (_, d) = r.identify(1, 0);
    assert_eq!(
        nvme_spec::identify::IdentifyController::read_from_bytes(&d)
            .unwrap()
            .firmware(),
        "1.0"
    );
}

#[test]
fn self_test_runs_in_background() {
    let mut r = rig();
    let mut t = Sqe::new(admin::DEVICE_SELF_TEST, 0xffff_ffff);
    t.cdw10 = 1;
    assert!(r.admin(t).status().is_success());
    assert_eq!(r.admin(t).status().sc, cs::DEVICE_SELF_TEST_IN_PROGRESS);
    let (_, d) = log(&mut r, 6, 564, 0);
    assert_eq!(
        DeviceSelfTestLog::read_from_bytes(&d)
            .unwrap()
            .current_operation,
        1
    );
    let start = Instant::now();
    loop {
        let (_, d) = log(&mut r, 6, 564, 0);
        let l = DeviceSelfTestLog::read_from_bytes(&d).unwrap();
        if l.current_operation == 0 {
            assert_eq!(l.result[0].code(), 1);
            assert_eq!(l.result[0].result(), 0);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(3));
        std::thread::sleep(Duration::from_millis(10));
    }
    // Extended, then abort.
    t.cdw10 = 2;
    assert!(r.admin(t).status().is_success());
    t.cdw10 = 0xf;
    assert!(r.admin(t).status().is_success());
    let (_, d) = log(&mut r, 6, 564, 0);
    let l = DeviceSelfTestLog::read_from_bytes(&d).unwrap();
    assert_eq!(
        (
            l.current_operation,
            l.result[0].code(),
            l.result[0].result()
        ),
        (0, 2, 1)
    );
}

#[test]
fn sanitize_blocks_io_and_erases() {
    let mut r = rig();
    r.io_pair(1, 16);
    assert!(r.write(1, 0, &[3u8; 512]).is_success());
    let mut s = Sqe::new(admin::SANITIZE, 0);
    s.cdw10 = 2; // block erase
    assert!(r.admin(s).status().is_success());
    assert_eq!(r.read(1, 0, 1).0.sc, sc::SANITIZE_IN_PROGRESS);
    assert_eq!(r.admin(s).status().sc, sc::SANITIZE_IN_PROGRESS);
    let (_, d) = log(&mut r, 0x81, 512, 0);
    assert_eq!(SanitizeStatusLog::read_from_bytes(&d).unwrap().sstat & 7, 2);
    let start = Instant::now();
    while r.read(1, 0, 1).0.sc == sc::SANITIZE_IN_PROGRESS {
        assert!(start.elapsed() < Duration::from_secs(3));
        std::thread::sleep(Duration::from_millis(10));
    }
    let (st, d) = r.read(1, 0, 1);
    assert!(st.is_success());
    assert!(d.iter().all(|&b| b == 0));
    let (_, d) = log(&mut r, 0x81, 512, 0);
    let l = SanitizeStatusLog::read_from_bytes(&d).unwrap();
    assert_eq!((l.sstat & 7, l.sprog), (1, 0xffff));
    s.cdw10 = 7;
    assert_eq!(r.admin(s).status().sc, sc::INVALID_FIELD);
}

#[test]
fn format_erases_and_changes_block_size() {
    let mut r = rig();
    r.io_pair(1, 16);
    assert!(r.write(1, 0, &[3u8; 512]).is_success());
    let mut f = Sqe::new(admin::FORMAT_NVM, 1);
    f.cdw10 = 2 | 1 << 9; // 4096, user data erase
    assert!(r.admin(f).status().is_success());
    std::thread::sleep(Duration::from_millis(40));
    let (_, d) = r.identify(0, 1);
    let ns = nvme_spec::identify::IdentifyNamespace::read_from_bytes(&d).unwrap();
    assert_eq!(ns.sector_size(), 4096);
    assert_eq!(ns.nsze, (8u64 << 30) / 4096);
    let (st, buf) = r.rw(1, nvm::READ, 1, 0, 1, None, 4096);
    assert!(st.is_success());
    assert!(r.host.get(buf, 4096).iter().all(|&b| b == 0));
    f.cdw10 = 9;
    assert_eq!(r.admin(f).status().sc, cs::INVALID_FORMAT);
    f.cdw10 = 3 << 9;
    assert_eq!(r.admin(f).status().sc, sc::INVALID_FIELD);
    f.nsid = 5;
    f.cdw10 = 0;
    assert_eq!(r.admin(f).status().sc, sc::INVALID_NAMESPACE_OR_FORMAT);
}

#[test]
fn namespace_management_and_attachment() {
    let mut r = rig();
    // The default namespace takes the whole capacity: delete it, create two.
    let mut del = Sqe::new(admin::NS_MANAGEMENT, 1);
    del.cdw10 = 1;
    assert!(r.admin(del).status().is_success());
    let (_, d) = r.identify(2, 0);
    assert_eq!(&d[..4], &[0, 0, 0, 0]);
    let mut data = vec![0u8; 4096];
    let nsze: u64 = 1 << 20;
    data[0..8].copy_from_slice(&nsze.to_le_bytes());
    data[8..16].copy_from_slice(&nsze.to_le_bytes());
    let create = Sqe::new(admin::NS_MANAGEMENT, 0);
    let (c, _) = r.admin_data(create, Some(&data), 4096);
    assert!(c.status().is_success());
    let nsid = c.dw0;
    assert_eq!(nsid, 1);
    let (_, d) = r.identify(0x10, 0);
    assert_eq!(
        u32::from_le_bytes(d[0..4].try_into().unwrap()),
        1,
        "allocated list"
    );
    let (_, d) = r.identify(2, 0);
    assert_eq!(&d[..4], &[0, 0, 0, 0], "not attached yet");
    let mut list = vec![0u8; 4096];
    list[0..2].copy_from_slice(&1u16.to_le_bytes());
    list[2..4].copy_from_slice(&1u16.to_le_bytes());
    let mut att = Sqe::new(admin::NS_ATTACHMENT, nsid);
    let (c, _) = r.admin_data(att, Some(&list), 4096);
    assert!(c.status().is_success());
    let (c, _) = r.admin_data(att, Some(&list), 4096);
    assert_eq!(c.status().sc, cs::NAMESPACE_ALREADY_ATTACHED);
    r.io_pair(1, 16);
    assert!(r.write(1, 0, &[1u8; 512]).is_success());
    // Too big.
    let big: u64 = 1 << 40;
    data[0..8].copy_from_slice(&big.to_le_bytes());
    data[8..16].copy_from_slice(&big.to_le_bytes());
    let (c, _) = r.admin_data(create, Some(&data), 4096);
    assert_eq!(c.status().sc, cs::NAMESPACE_INSUFFICIENT_CAPACITY);
    // Detach.
    att.cdw10 = 1;
    let (c, _) = r.admin_data(att, Some(&list), 4096);
    assert!(c.status().is_success());
    let (c, _) = r.admin_data(att, Some(&list), 4096);
    assert_eq!(c.status().sc, cs::NAMESPACE_NOT_ATTACHED);
    assert_eq!(r.read(1, 0, 1).0.sc, sc::INVALID_NAMESPACE_OR_FORMAT);
    // Wrong controller list.
    list[2..4].copy_from_slice(&7u16.to_le_bytes());
    att.cdw10 = 0;
    let (c, _) = r.admin_data(att, Some(&list), 4096);
    assert_eq!(c.status().sc, cs::CONTROLLER_LIST_INVALID);
}

#[test]
fn security_receive_protocol_list_and_unknown_opcodes() {
    let mut r = rig();
    let mut s = Sqe::new(admin::SECURITY_RECEIVE, 0);
    s.cdw11 = 16;
    let (c, d) = r.admin_data(s, None, 16);
    assert!(c.status().is_success());
    assert_eq!(&d[6..9], &[0, 1, 0]);
    s.cdw10 = 1 << 24;
    assert_eq!(r.admin(s).status().sc, sc::INVALID_FIELD);
    assert_eq!(r.admin(Sqe::new(0x7f, 0)).status().sc, sc::INVALID_OPCODE);
    assert!(r
        .admin(Sqe::new(admin::KEEP_ALIVE, 0))
        .status()
        .is_success());
}

#[test]
fn host_memory_buffer_attributes_layout() {
    let mut r = rig();
    let mut s = Sqe::new(admin::SET_FEATURES, 0);
    s.cdw10 = 0x0d;
    s.cdw11 = 1;
    s.cdw12 = 256;
    s.cdw13 = 0x1234_5000;
    s.cdw14 = 0x9;
    s.cdw15 = 3;
    assert!(r.admin(s).status().is_success());
    let mut g = Sqe::new(admin::GET_FEATURES, 0);
    g.cdw10 = 0x0d;
    let (c, d) = r.admin_data(g, None, 4096);
    assert!(c.status().is_success());
    assert_eq!(c.dw0 & 1, 1, "EHM");
    let dw = |i: usize| u32::from_le_bytes(d[4 * i..4 * i + 4].try_into().unwrap());
    // HSIZE, HMDLLA, HMDLUA, HMDLEC, then reserved.
    assert_eq!(
        [dw(0), dw(1), dw(2), dw(3), dw(4)],
        [256, 0x1234_5000, 0x9, 3, 0]
    );
}

#[test]
fn host_controlled_thermal_management_limits() {
    let mut r = rig();
    let (st, d) = r.identify(1, 0);
    assert!(st.is_success());
    let id = nvme_spec::identify::IdentifyController::read_from_bytes(&d).unwrap();
    let (hctma, mn, mx) = (id.hctma, id.mntmt, id.mxtmt);
    assert_eq!(hctma & 1, 1);
    assert!(273 < mn && mn < mx);
    assert!(r
        .set_features(0x10, (mn as u32) << 16 | mx as u32)
        .status()
        .is_success());
    assert_eq!(
        r.get_features(0x10, 0, 0).dw0,
        (mn as u32) << 16 | mx as u32
    );
    // TMT1 above TMT2, and a threshold outside MNTMT..=MXTMT, are invalid fields.
    for bad in [
        (mx as u32) << 16 | mn as u32,
        (mn as u32 - 1) << 16,
        mx as u32 + 1,
    ] {
        let c = r.set_features(0x10, bad);
        assert_eq!(
            (c.status().sct, c.status().sc),
            (sct::GENERIC, sc::INVALID_FIELD)
        );
    }
    assert_eq!(
        r.get_features(0x10, 0, 0).dw0,
        (mn as u32) << 16 | mx as u32
    );
    assert!(r.set_features(0x10, 0).status().is_success());
    assert_eq!(r.get_features(0x10, 1, 0).dw0, 0, "default: disabled");
}
