//! Command builders: the SQE of every admin and NVM command the API offers, with argument checks.
//!
//! Encodings follow the NVMe 2.0 base and NVM command set specs, and pynvme/PyNVMe3 where they
//! choose defaults (for example Get Features with nsid 0 unless given). CID and data pointer are
//! filled in at submission.

use crate::error::{DriverError, Result};
use nvme_spec::cmd::{admin, nvm};
use nvme_spec::Sqe;

fn check(arg: &'static str, ok: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(DriverError::invalid(arg, msg()))
    }
}

/// Identify (06h).
pub fn identify(
    nsid: u32,
    cns: u32,
    cntid: u32,
    csi: u32,
    nvmsetid: u32,
    cns_specific_id: u32,
    cdw14: u32,
) -> Result<Sqe> {
    check("cns", cns <= 0xff, || format!("{cns:#x} is not 0..=0xff"))?;
    check("cntid", cntid <= 0xffff, || {
        format!("{cntid:#x} is not 0..=0xffff")
    })?;
    check("csi", csi <= 0xff, || format!("{csi:#x} is not 0..=0xff"))?;
    check("nvmsetid", nvmsetid <= 0xffff, || {
        format!("{nvmsetid:#x} is not 0..=0xffff")
    })?;
    let mut s = Sqe::new(admin::IDENTIFY, nsid);
    s.cdw10 = cntid << 16 | cns;
    s.cdw11 = csi << 24 | (cns_specific_id & 0xffff) | nvmsetid;
    s.cdw14 = cdw14;
    Ok(s)
}

/// Get Features (0Ah): cdw10 = sel << 8 | fid.
pub fn get_features(
    fid: u32,
    sel: u32,
    nsid: u32,
    cdw11: u32,
    cdw12: u32,
    cdw13: u32,
    cdw14: u32,
    cdw15: u32,
) -> Result<Sqe> {
    check("fid", fid <= 0xff, || {
        format!("{fid:#x} is not a feature identifier 0..=0xff")
    })?;
    check("sel", sel <= 7, || {
        format!("{sel} is not a select value 0..=7 (0 current, 1 default, 2 saved, 3 supported capabilities)")
    })?;
    let mut s = Sqe::new(admin::GET_FEATURES, nsid);
    s.cdw10 = sel << 8 | fid;
    (s.cdw11, s.cdw12, s.cdw13, s.cdw14, s.cdw15) = (cdw11, cdw12, cdw13, cdw14, cdw15);
    Ok(s)
}

/// Set Features (09h): cdw10 = sv << 31 | fid.
pub fn set_features(
    fid: u32,
    sv: u32,
    nsid: u32,
    cdw11: u32,
    cdw12: u32,
    cdw13: u32,
    cdw14: u32,
    cdw15: u32,
) -> Result<Sqe> {
    check("fid", fid <= 0xff, || {
        format!("{fid:#x} is not a feature identifier 0..=0xff")
    })?;
    check("sv", sv <= 1, || format!("{sv} is not 0 or 1"))?;
    let mut s = Sqe::new(admin::SET_FEATURES, nsid);
    s.cdw10 = sv << 31 | fid;
    (s.cdw11, s.cdw12, s.cdw13, s.cdw14, s.cdw15) = (cdw11, cdw12, cdw13, cdw14, cdw15);
    Ok(s)
}

/// Get Log Page (02h). `lid` may carry LSP/RAE in bits 15:8 as PyNVMe3 allows; `size` and
/// `offset` are bytes, dword aligned.
pub fn get_log_page(lid: u32, size: usize, offset: u64, nsid: u32, lsi: u32) -> Result<Sqe> {
    check("lid", lid <= 0xffff, || {
        format!("{lid:#x} is not 0..=0xffff (log id in bits 7:0, LSP and RAE above)")
    })?;
    check("size", size >= 4 && size.is_multiple_of(4), || {
        format!("{size} is not a non-zero multiple of 4 bytes")
    })?;
    check("offset", offset.is_multiple_of(4), || {
        format!("{offset} is not a multiple of 4 bytes")
    })?;
    let numd = (size / 4 - 1) as u32;
    let mut s = Sqe::new(admin::GET_LOG_PAGE, nsid);
    s.cdw10 = (numd & 0xffff) << 16 | lid;
    s.cdw11 = (lsi & 0xffff) << 16 | numd >> 16;
    s.cdw12 = offset as u32;
    s.cdw13 = (offset >> 32) as u32;
    Ok(s)
}

/// Abort (08h): cdw10 = cid << 16 | sqid.
pub fn abort(cid: u32, sqid: u32) -> Result<Sqe> {
    check("cid", cid <= 0xffff, || {
        format!("{cid:#x} is not 0..=0xffff")
    })?;
    check("sqid", sqid <= 0xffff, || {
        format!("{sqid:#x} is not 0..=0xffff")
    })?;
    let mut s = Sqe::new(admin::ABORT, 0);
    s.cdw10 = cid << 16 | sqid;
    Ok(s)
}

/// Asynchronous Event Request (0Ch).
pub fn aer() -> Sqe {
    Sqe::new(admin::ASYNC_EVENT_REQUEST, 0)
}

/// Format NVM (80h): cdw10 = mset << 4 | pi << 5 | pil << 8 | ses << 9 | lbaf (bits 3:0, upper bits 13:12).
pub fn format(lbaf: u32, ses: u32, nsid: u32, pil: u32, pi: u32, mset: u32) -> Result<Sqe> {
    check("lbaf", lbaf < 64, || {
        format!("{lbaf} is not an LBA format index 0..=63")
    })?;
    check("ses", ses < 8, || {
        format!("{ses} is not 0..=7 (0 none, 1 user data erase, 2 cryptographic erase)")
    })?;
    check("pil", pil < 2, || format!("{pil} is not 0 or 1"))?;
    check("pi", pi < 8, || format!("{pi} is not 0..=7"))?;
    check("mset", mset < 2, || format!("{mset} is not 0 or 1"))?;
    let mut s = Sqe::new(admin::FORMAT_NVM, nsid);
    s.cdw10 = (lbaf & 0xf) | mset << 4 | pi << 5 | pil << 8 | ses << 9 | (lbaf >> 4) << 12;
    Ok(s)
}

/// Sanitize (84h): cdw10 = the sanitize action and options, cdw11 = overwrite pattern.
pub fn sanitize(option: u32, pattern: u32) -> Result<Sqe> {
    check("option", option & 7 != 0 && option & 7 <= 4, || {
        format!("{option:#x}: sanitize action (bits 2:0) is 1 exit failure, 2 block erase, 3 overwrite, 4 crypto erase")
    })?;
    let mut s = Sqe::new(admin::SANITIZE, 0);
    s.cdw10 = option;
    s.cdw11 = pattern;
    Ok(s)
}

/// Device Self-test (14h): cdw10 = stc.
pub fn dst(stc: u32, nsid: u32) -> Result<Sqe> {
    check("stc", stc <= 0xf, || {
        format!("{stc:#x} is not 0..=0xf (1 short, 2 extended, 0xe vendor, 0xf abort)")
    })?;
    let mut s = Sqe::new(admin::DEVICE_SELF_TEST, nsid);
    s.cdw10 = stc;
    Ok(s)
}

/// Firmware Image Download (11h) of `size` bytes at byte `offset`, encoded as pynvme does:
/// cdw10 (NUMD) = `size / 4 − 1`, cdw11 (OFST) = `offset / 4`. A size or offset that is not a
/// multiple of 4 (the spec counts dwords) is sent as encoded: the device judges it. Returns the
/// command and the bytes it transfers ((NUMD + 1) × 4), which the caller checks fit the buffer:
/// a size below 4 bytes gives NUMD = 0xffffffff, a 16 GiB transfer no buffer holds.
pub fn fw_download(size: usize, offset: u64) -> Result<(Sqe, usize)> {
    check("offset", offset / 4 <= u32::MAX as u64, || {
        format!("{offset} is beyond what OFST (32 bits of dwords) can encode")
    })?;
    let numd = ((size / 4) as u32).wrapping_sub(1);
    let mut s = Sqe::new(admin::FW_DOWNLOAD, 0);
    s.cdw10 = numd;
    s.cdw11 = (offset / 4) as u32;
    Ok((s, (numd as usize + 1) * 4))
}

/// Firmware Commit (10h): cdw10 = bpid << 31 | action << 3 | slot.
pub fn fw_commit(slot: u32, action: u32, bpid: u32) -> Result<Sqe> {
    check("slot", slot < 8, || {
        format!("{slot} is not a firmware slot 0..=7")
    })?;
    check("action", action < 8, || {
        format!("{action} is not a commit action 0..=7")
    })?;
    check("bpid", bpid < 2, || format!("{bpid} is not 0 or 1"))?;
    let mut s = Sqe::new(admin::FW_COMMIT, 0);
    s.cdw10 = bpid << 31 | action << 3 | slot;
    Ok(s)
}

/// Security Send (81h) or Receive (82h): cdw10 = secp << 24 | spsp << 8 | nssf, cdw11 = length.
pub fn security(
    send: bool,
    secp: u32,
    spsp: u32,
    nssf: u32,
    size: usize,
    nsid: u32,
) -> Result<Sqe> {
    check("secp", secp <= 0xff, || {
        format!("{secp:#x} is not 0..=0xff")
    })?;
    check("spsp", spsp <= 0xffff, || {
        format!("{spsp:#x} is not 0..=0xffff")
    })?;
    check("nssf", nssf <= 0xff, || {
        format!("{nssf:#x} is not 0..=0xff")
    })?;
    let mut s = Sqe::new(
        if send {
            admin::SECURITY_SEND
        } else {
            admin::SECURITY_RECEIVE
        },
        nsid,
    );
    s.cdw10 = secp << 24 | spsp << 8 | nssf;
    s.cdw11 = size as u32;
    Ok(s)
}

/// Namespace Management (0Dh): sel 0 create (data: the namespace structure), 1 delete.
pub fn ns_management(sel: u32, nsid: u32, csi: u32) -> Result<Sqe> {
    check("sel", sel <= 1, || {
        format!("{sel} is not 0 (create) or 1 (delete)")
    })?;
    let mut s = Sqe::new(admin::NS_MANAGEMENT, nsid);
    s.cdw10 = sel;
    s.cdw11 = csi << 24;
    Ok(s)
}

/// Namespace Attachment (15h): sel 0 attach, 1 detach (data: the controller list).
pub fn ns_attachment(sel: u32, nsid: u32) -> Result<Sqe> {
    check("sel", sel <= 1, || {
        format!("{sel} is not 0 (attach) or 1 (detach)")
    })?;
    let mut s = Sqe::new(admin::NS_ATTACHMENT, nsid);
    s.cdw10 = sel;
    Ok(s)
}

/// Create I/O Completion Queue (05h).
pub fn create_io_cq(qid: u16, entries: u16, pc: bool, ien: bool, iv: u16) -> Sqe {
    let mut s = Sqe::new(admin::CREATE_IO_CQ, 0);
    s.cdw10 = (entries as u32 - 1) << 16 | qid as u32;
    s.cdw11 = (iv as u32) << 16 | (ien as u32) << 1 | pc as u32;
    s
}

/// Create I/O Submission Queue (01h).
pub fn create_io_sq(qid: u16, entries: u16, cqid: u16, pc: bool, qprio: u8, nvmsetid: u16) -> Sqe {
    let mut s = Sqe::new(admin::CREATE_IO_SQ, 0);
    s.cdw10 = (entries as u32 - 1) << 16 | qid as u32;
    s.cdw11 = (cqid as u32) << 16 | ((qprio as u32) & 3) << 1 | pc as u32;
    s.cdw12 = nvmsetid as u32;
    s
}

/// Delete I/O Submission (00h) or Completion (04h) Queue.
pub fn delete_io_queue(sq: bool, qid: u16) -> Sqe {
    let mut s = Sqe::new(
        if sq {
            admin::DELETE_IO_SQ
        } else {
            admin::DELETE_IO_CQ
        },
        0,
    );
    s.cdw10 = qid as u32;
    s
}

/// Any command from its dwords: `cdw0` is the whole dword 0 (FUSE and PSDT bits may be set; the
/// CID is replaced at submission).
#[allow(clippy::too_many_arguments)]
pub fn raw(
    cdw0: u32,
    nsid: u32,
    cdw2: u32,
    cdw3: u32,
    cdw10: u32,
    cdw11: u32,
    cdw12: u32,
    cdw13: u32,
    cdw14: u32,
    cdw15: u32,
) -> Sqe {
    Sqe {
        cdw0,
        nsid,
        cdw2,
        cdw3,
        cdw10,
        cdw11,
        cdw12,
        cdw13,
        cdw14,
        cdw15,
        ..Default::default()
    }
}

/// The upper half of cdw12 for `io_flags`: PyNVMe3 gives bits 31:16 as a 16-bit value (0x4000
/// FUA, 0x8000 limited retry); pynvme (after SPDK) gives them in place (`1 << 30` FUA, `1 << 31`
/// limited retry). Any value of either form is sent as given; only a value with bits in both
/// halves cannot be encoded (its low half would change the command's count field).
fn cdw12_flags(io_flags: u32) -> Result<u32> {
    if io_flags <= 0xffff {
        Ok(io_flags << 16)
    } else if io_flags & 0xffff == 0 {
        Ok(io_flags)
    } else {
        Err(DriverError::invalid(
            "io_flags",
            format!(
                "{io_flags:#x} has bits in both halves: give bits 31:16 of cdw12 either as a 16-bit \
                 value (0x8000) or in place (1 << 31)"
            ),
        ))
    }
}

/// An NVM read/write-like command (read, write, compare, verify, write uncorrectable, write zeroes):
/// SLBA in cdw10/11, cdw12 = io_flags (bits 31:16, as a 16-bit value or in place) | (lba_count − 1).
#[allow(clippy::too_many_arguments)]
pub fn rw(
    opc: u8,
    nsid: u32,
    lba: u64,
    lba_count: u32,
    io_flags: u32,
    cdw13: u32,
    cdw14: u32,
    cdw15: u32,
) -> Result<Sqe> {
    check("lba_count", (1..=65536).contains(&lba_count), || {
        format!("{lba_count} is not 1..=65536")
    })?;
    let flags = cdw12_flags(io_flags)?;
    let mut s = Sqe::new(opc, nsid);
    s.set_slba(lba);
    s.cdw12 = flags | (lba_count - 1);
    (s.cdw13, s.cdw14, s.cdw15) = (cdw13, cdw14, cdw15);
    Ok(s)
}

/// Flush (00h).
pub fn flush(nsid: u32) -> Sqe {
    Sqe::new(nvm::FLUSH, nsid)
}

/// Dataset Management (09h): cdw10 = ranges − 1, cdw11 = attributes (bit 2 deallocate).
pub fn dsm(nsid: u32, range_count: u32, attribute: u32) -> Result<Sqe> {
    check("range_count", (1..=256).contains(&range_count), || {
        format!("{range_count} is not 1..=256")
    })?;
    let mut s = Sqe::new(nvm::DSM, nsid);
    s.cdw10 = range_count - 1;
    s.cdw11 = attribute;
    Ok(s)
}

/// Copy (19h), format 0: SDLBA in cdw10/11, cdw12 = ranges − 1 (bits 7:0) | format << 8 | io_flags << 16.
pub fn copy(nsid: u32, sdlba: u64, range_count: u32, format: u32, io_flags: u32) -> Result<Sqe> {
    check("range_count", (1..=256).contains(&range_count), || {
        format!("{range_count} is not 1..=256")
    })?;
    check("format", format <= 0xf, || {
        format!("{format} is not a descriptor format 0..=15")
    })?;
    let flags = cdw12_flags(io_flags)?;
    let mut s = Sqe::new(nvm::COPY, nsid);
    s.set_slba(sdlba);
    s.cdw12 = flags | format << 8 | (range_count - 1);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_flags_in_either_form_reach_the_command() {
        for (flags, cdw12) in [
            (0x8000, 0x8000_0007),
            (1 << 31, 0x8000_0007),
            (1 << 30, 0x4000_0007),
        ] {
            assert_eq!(
                rw(nvm::WRITE, 1, 0, 8, flags, 0, 0, 0).unwrap().cdw12,
                cdw12
            );
        }
        assert_eq!(copy(1, 0, 1, 0, 1 << 31).unwrap().cdw12, 0x8000_0000);
        let e = rw(nvm::READ, 1, 0, 1, 0x1_0001, 0, 0, 0).unwrap_err();
        assert!(
            matches!(
                e,
                DriverError::InvalidArgument {
                    arg: "io_flags",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn firmware_download_is_encoded_as_given() {
        let (s, len) = fw_download(10, 10).unwrap();
        assert_eq!((s.cdw10, s.cdw11, len), (1, 2, 8));
        let (s, len) = fw_download(4096, 8192).unwrap();
        assert_eq!((s.cdw10, s.cdw11, len), (1023, 2048, 4096));
        // Below one dword: NUMD wraps, a transfer no buffer holds (the caller refuses it).
        let (s, len) = fw_download(2, 0).unwrap();
        assert_eq!((s.cdw10, len), (u32::MAX, 1 << 34));
    }

    #[test]
    fn encodings() {
        let s = identify(1, 0, 0, 0, 0, 0, 0).unwrap();
        assert_eq!((s.opc(), s.nsid, s.cdw10), (6, 1, 0));
        let s = get_features(7, 0, 0, 0, 0, 0, 0, 0).unwrap();
        assert_eq!(s.cdw10, 7);
        let s = set_features(7, 1, 0, 0xfffe_fffe, 0, 0, 0, 0).unwrap();
        assert_eq!(s.cdw10, 0x8000_0007);
        let s = get_log_page(2, 512, 0, 0xffff_ffff, 0).unwrap();
        assert_eq!(s.cdw10, (127 << 16) | 2);
        let s = fw_commit(1, 3, 0).unwrap();
        assert_eq!(s.cdw10, 3 << 3 | 1);
        let s = format(1, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(s.cdw10, 1 << 9 | 1);
        let s = rw(nvm::READ, 1, 0x1_0000_0000, 8, 0x4000, 0, 0, 0).unwrap();
        assert_eq!((s.cdw10, s.cdw11, s.cdw12), (0, 1, 0x4000_0007));
        let s = create_io_cq(3, 16, true, true, 3);
        assert_eq!((s.cdw10, s.cdw11), (15 << 16 | 3, 3 << 16 | 3));
    }

    #[test]
    fn bad_arguments_name_the_argument() {
        let e = rw(nvm::READ, 1, 0, 0, 0, 0, 0, 0).unwrap_err().to_string();
        assert!(e.starts_with("lba_count: 0 is not 1..=65536"), "{e}");
        assert!(get_log_page(2, 6, 0, 0, 0)
            .unwrap_err()
            .to_string()
            .starts_with("size:"));
        assert!(fw_commit(8, 0, 0)
            .unwrap_err()
            .to_string()
            .starts_with("slot:"));
    }
}
