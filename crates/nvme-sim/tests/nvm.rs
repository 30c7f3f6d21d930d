//! NVM commands: compare, write uncorrectable, write zeroes, DSM, verify, copy, FUA, SGL,
//! metadata, CMB.

mod common;

use common::*;
use nvme_sim::SimConfig;
use nvme_spec::cmd::nvm;
use nvme_spec::status::{cs, media, sc, sct};
use nvme_spec::Sqe;

fn rig() -> Rig {
    let mut r = Rig::new();
    r.enable();
    r.io_pair(1, 64);
    r
}

#[test]
fn compare_and_miscompare() {
    let mut r = rig();
    let d = pattern(1024, 3);
    assert!(r.write(1, 10, &d).is_success());
    assert!(r
        .rw(1, nvm::COMPARE, 1, 10, 2, Some(&d), 512)
        .0
        .is_success());
    let mut bad = d.clone();
    bad[700] ^= 1;
    let st = r.rw(1, nvm::COMPARE, 1, 10, 2, Some(&bad), 512).0;
    assert_eq!((st.sct, st.sc), (sct::MEDIA_ERROR, media::COMPARE_FAILURE));
}

#[test]
fn write_uncorrectable_until_rewritten() {
    let mut r = rig();
    let mut s = Sqe::new(nvm::WRITE_UNCORRECTABLE, 1);
    s.set_slba(20);
    s.cdw12 = 3;
    assert!(r.cmd(1, s).status().is_success());
    let (st, _) = r.read(1, 22, 1);
    assert_eq!(
        (st.sct, st.sc),
        (sct::MEDIA_ERROR, media::UNRECOVERED_READ_ERROR)
    );
    let mut v = Sqe::new(nvm::VERIFY, 1);
    v.set_slba(20);
    assert_eq!(r.cmd(1, v).status().sc, media::UNRECOVERED_READ_ERROR);
    assert!(r.read(1, 19, 1).0.is_success());
    assert!(r.write(1, 22, &[5u8; 512]).is_success());
    assert!(r.read(1, 22, 1).0.is_success());
    assert!(!r.read(1, 21, 1).0.is_success());
}

#[test]
fn write_zeroes_and_deallocate() {
    let mut r = rig();
    assert!(r.write(1, 0, &[0xaa; 8 * 512]).is_success());
    let mut z = Sqe::new(nvm::WRITE_ZEROES, 1);
    z.set_slba(2);
    z.cdw12 = 1 | nvme_spec::cmd::io_flags::DEAC;
    assert!(r.cmd(1, z).status().is_success());
    let (_, d) = r.read(1, 0, 8);
    assert!(d[..1024].iter().all(|&b| b == 0xaa));
    assert!(d[1024..2048].iter().all(|&b| b == 0));
    assert!(d[2048..].iter().all(|&b| b == 0xaa));
    // DSM deallocate of two ranges; DLFEAT says deallocated blocks read zeroes.
    let ranges = r.host.alloc(PAGE, PAGE);
    r.host.put(
        ranges,
        zerocopy::IntoBytes::as_bytes(&nvme_spec::cmd::DsmRange {
            cattr: 0,
            nlb: 1,
            slba: 0,
        }),
    );
    r.host.put(
        ranges + 16,
        zerocopy::IntoBytes::as_bytes(&nvme_spec::cmd::DsmRange {
            cattr: 0,
            nlb: 2,
            slba: 6,
        }),
    );
    let mut t = Sqe::new(nvm::DSM, 1);
    t.prp1 = ranges;
    t.cdw10 = 1;
    t.cdw11 = 4;
    assert!(r.cmd(1, t).status().is_success());
    let (_, d) = r.read(1, 0, 8);
    assert!(d[..512].iter().all(|&b| b == 0));
    assert!(d[512..1024].iter().all(|&b| b == 0xaa));
    assert!(d[3072..].iter().all(|&b| b == 0));
    // A range beyond the namespace.
    r.host.put(
        ranges,
        zerocopy::IntoBytes::as_bytes(&nvme_spec::cmd::DsmRange {
            cattr: 0,
            nlb: 2,
            slba: u64::MAX - 1,
        }),
    );
    t.cdw10 = 0;
    assert_eq!(r.cmd(1, t).status().sc, sc::LBA_OUT_OF_RANGE);
}

#[test]
fn copy_format0() {
    let mut r = rig();
    let a = pattern(1024, 1);
    let b = pattern(512, 2);
    assert!(r.write(1, 100, &a).is_success());
    assert!(r.write(1, 200, &b).is_success());
    let ranges = r.host.alloc(PAGE, PAGE);
    let mk = |slba: u64, nlb: u16| nvme_spec::cmd::CopyRange {
        slba,
        nlb,
        ..Default::default()
    };
    r.host
        .put(ranges, zerocopy::IntoBytes::as_bytes(&mk(100, 1)));
    r.host
        .put(ranges + 32, zerocopy::IntoBytes::as_bytes(&mk(200, 0)));
    let mut c = Sqe::new(nvm::COPY, 1);
    c.prp1 = ranges;
    c.set_slba(300);
    c.cdw12 = 1;
    assert!(r.cmd(1, c).status().is_success());
    let (_, d) = r.read(1, 300, 3);
    assert_eq!(&d[..1024], &a[..]);
    assert_eq!(&d[1024..], &b[..]);
    c.cdw12 = 1 | 1 << 8;
    assert_eq!(r.cmd(1, c).status().sc, sc::INVALID_FIELD);
    r.host
        .put(ranges, zerocopy::IntoBytes::as_bytes(&mk(100, 200)));
    c.cdw12 = 0;
    let st = r.cmd(1, c).status();
    assert_eq!(
        (st.sct, st.sc),
        (sct::COMMAND_SPECIFIC, cs::COMMAND_SIZE_LIMIT_EXCEEDED)
    );
}

#[test]
fn fua_write_survives_power_loss_cached_write_does_not() {
    let mut r = rig();
    let mut w = Sqe::new(nvm::WRITE, 1);
    let buf = r.host.alloc(PAGE, PAGE);
    r.host.fill(buf, 512, 0x11);
    w.prp1 = buf;
    w.set_slba(1);
    w.cdw12 = nvme_spec::cmd::io_flags::FUA;
    assert!(r.cmd(1, w).status().is_success());
    assert!(r.write(1, 2, &[0x22; 512]).is_success());
    r.dev.power_off();
    r.dev.power_on();
    r.pci_setup();
    r.enable();
    r.io_pair(1, 16);
    let (_, d) = r.read(1, 1, 2);
    assert!(d[..512].iter().all(|&b| b == 0x11), "FUA data persisted");
    assert!(d[512..].iter().all(|&b| b == 0), "cached data lost");
}

fn sgl(addr: u64, len: u32, ty: u8) -> [u8; 16] {
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&addr.to_le_bytes());
    d[8..12].copy_from_slice(&len.to_le_bytes());
    d[15] = ty << 4;
    d
}

fn sgl_cmd(opc: u8, slba: u64, nlb: u32, d: [u8; 16]) -> Sqe {
    let mut s = Sqe::new(opc, 1);
    s.set_psdt(1);
    s.prp1 = u64::from_le_bytes(d[..8].try_into().unwrap());
    s.prp2 = u64::from_le_bytes(d[8..].try_into().unwrap());
    s.set_slba(slba);
    s.cdw12 = nlb - 1;
    s
}

#[test]
fn sgl_data_block_segments_and_bit_bucket() {
    let mut r = rig();
    let data = pattern(2048, 4);
    // Write with a segment of three data blocks (512, 1024, 512).
    let bufs: Vec<u64> = (0..3).map(|_| r.host.alloc(PAGE, PAGE)).collect();
    r.host.put(bufs[0], &data[..512]);
    r.host.put(bufs[1], &data[512..1536]);
    r.host.put(bufs[2], &data[1536..]);
    let seg = r.host.alloc(PAGE, PAGE);
    r.host.put(seg, &sgl(bufs[0], 512, 0));
    r.host.put(seg + 16, &sgl(bufs[1], 1024, 0));
    r.host.put(seg + 32, &sgl(bufs[2], 512, 0));
    assert!(r
        .cmd(1, sgl_cmd(nvm::WRITE, 0, 4, sgl(seg, 48, 3)))
        .status()
        .is_success());
    // Read back through a single data block.
    let out = r.host.alloc(PAGE, PAGE);
    assert!(r
        .cmd(1, sgl_cmd(nvm::READ, 0, 4, sgl(out, 2048, 0)))
        .status()
        .is_success());
    assert_eq!(r.host.get(out, 2048), data);
    // Segment chaining: a segment whose last descriptor is a last segment.
    let seg2 = r.host.alloc(PAGE, PAGE);
    let a = r.host.alloc(PAGE, PAGE);
    let b = r.host.alloc(PAGE, PAGE);
    r.host.put(seg, &sgl(a, 1024, 0));
    r.host.put(seg + 16, &sgl(seg2, 32, 3));
    r.host.put(seg2, &sgl(0, 512, 1)); // bit bucket
    r.host.put(seg2 + 16, &sgl(b, 512, 0));
    assert!(r
        .cmd(1, sgl_cmd(nvm::READ, 0, 4, sgl(seg, 32, 2)))
        .status()
        .is_success());
    assert_eq!(r.host.get(a, 1024), &data[..1024]);
    assert_eq!(r.host.get(b, 512), &data[1536..]);
    // Errors.
    let st = r
        .cmd(1, sgl_cmd(nvm::READ, 0, 4, sgl(out, 1024, 0)))
        .status();
    assert_eq!(st.sc, sc::DATA_SGL_LENGTH_INVALID);
    let st = r
        .cmd(1, sgl_cmd(nvm::READ, 0, 4, sgl(out, 2048, 0xa)))
        .status();
    assert_eq!(st.sc, sc::SGL_DESCRIPTOR_TYPE_INVALID);
    let mut off = sgl(out, 2048, 0);
    off[15] |= 1;
    assert_eq!(
        r.cmd(1, sgl_cmd(nvm::READ, 0, 4, off)).status().sc,
        sc::SGL_OFFSET_INVALID
    );
    assert_eq!(
        r.cmd(1, sgl_cmd(nvm::READ, 0, 4, sgl(seg, 20, 3)))
            .status()
            .sc,
        sc::INVALID_SGL_SEGMENT_DESCRIPTOR
    );
    assert_eq!(
        r.cmd(1, sgl_cmd(nvm::READ, 0, 4, sgl(seg, 0, 3)))
            .status()
            .sc,
        sc::INVALID_NUMBER_OF_SGL_DESCRIPTORS
    );
    r.host.put(seg2, &sgl(seg, 16, 2));
    assert_eq!(
        r.cmd(1, sgl_cmd(nvm::READ, 0, 4, sgl(seg2, 32, 3)))
            .status()
            .sc,
        sc::INVALID_SGL_SEGMENT_DESCRIPTOR
    );
    assert_eq!(
        r.cmd(1, sgl_cmd(nvm::WRITE, 0, 1, sgl(0, 512, 1)))
            .status()
            .sc,
        sc::SGL_DESCRIPTOR_TYPE_INVALID
    );
}

#[test]
fn metadata_in_separate_buffer_after_format() {
    let mut r = rig();
    let mut f = Sqe::new(nvme_spec::cmd::admin::FORMAT_NVM, 1);
    f.cdw10 = 3; // 4096 + 8
    assert!(r.admin(f).status().is_success());
    std::thread::sleep(std::time::Duration::from_millis(40));
    let buf = r.host.alloc(PAGE, PAGE);
    let md = r.host.alloc(PAGE, PAGE);
    r.host.put(buf, &pattern(4096, 8));
    r.host.put(md, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let mut w = Sqe::new(nvm::WRITE, 1);
    w.prp1 = buf;
    w.mptr = md;
    assert!(r.cmd(1, w).status().is_success());
    let (buf2, md2) = (r.host.alloc(PAGE, PAGE), r.host.alloc(PAGE, PAGE));
    let mut rd = Sqe::new(nvm::READ, 1);
    rd.prp1 = buf2;
    rd.mptr = md2;
    assert!(r.cmd(1, rd).status().is_success());
    assert_eq!(r.host.get(buf2, 4096), pattern(4096, 8));
    assert_eq!(r.host.get(md2, 8), vec![1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn queues_and_data_in_cmb() {
    let cfg = SimConfig {
        cmb_size: 1 << 20,
        ..Default::default()
    };
    let mut r = Rig::with(cfg);
    assert_eq!(r.dev.bar_size(2), 1 << 20);
    // Program BAR2 at a bus address outside the host window.
    let cmb_bus: u64 = 0x8000_0000;
    r.dev.config_write(0x18, &(cmb_bus as u32).to_le_bytes());
    r.dev.config_write(0x1c, &0u32.to_le_bytes());
    r.dev.bar_write64(0, nvme_spec::regs::CMBMSC as u64, 3);
    assert_eq!(r.reg32(nvme_spec::regs::CMBLOC) & 7, 2);
    assert_ne!(r.reg32(nvme_spec::regs::CMBSZ), 0);
    r.enable();
    r.io_pair(1, 16);
    // Write from a data buffer in the CMB, read it back into host memory.
    for i in 0..128u64 {
        r.dev.bar_write32(2, 0x1000 + i * 4, 0xc0de_0000 + i as u32);
    }
    let mut w = Sqe::new(nvm::WRITE, 1);
    w.prp1 = cmb_bus + 0x1000;
    assert!(r.cmd(1, w).status().is_success());
    let (_, d) = r.read(1, 0, 1);
    assert_eq!(u32::from_le_bytes(d[4..8].try_into().unwrap()), 0xc0de_0001);
    assert_eq!(r.host.refused.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn null_media_moves_no_data() {
    let cfg = SimConfig::from_uri("sim://?null=1").unwrap();
    let mut r = Rig::with(cfg);
    r.enable();
    r.io_pair(1, 16);
    assert!(r.write(1, 0, &[9u8; 512]).is_success());
    let (st, d) = r.read(1, 0, 1);
    assert!(st.is_success());
    assert!(d.iter().all(|&b| b == 0));
}
