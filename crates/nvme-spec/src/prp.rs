//! Physical Region Page entries (NVMe 2.0 base spec, section 4.1.1): pure arithmetic.
//!
//! A PRP entry is a 64-bit memory address. A transfer of `len` bytes at `addr` touches one or
//! more memory pages of the controller's page size (CC.MPS); it is described by one entry per
//! page touched:
//!
//! - The first entry (PRP1) may have an offset into its page; the offset must be dword aligned.
//!   It covers from `addr` to the end of its page.
//! - Every later entry must be page aligned (offset 0) and covers a whole page, except the last,
//!   which covers what remains.
//! - With one page, PRP2 is unused. With two, PRP2 is the second page's entry. With more, PRP2
//!   points to a PRP list: a page of 8-byte entries holding entries 2, 3 ... of the transfer.
//!   A PRP list pointer in the command may have an offset; the list then starts there.
//! - When the entries left do not fit in the rest of a list page, its last slot is not a data
//!   entry but a pointer to the next list page, where the list continues.
//!
//! `page_size` is a power of two of at least 8 bytes everywhere in this module (the memory page
//! size is 4 KiB to 128 MiB).

/// Size of one PRP entry.
pub const ENTRY_SIZE: usize = 8;

/// Offset of `addr` within its page.
pub const fn page_offset(addr: u64, page_size: usize) -> usize {
    (addr & (page_size as u64).wrapping_sub(1)) as usize
}

/// The start of the page holding `addr`.
pub const fn page_base(addr: u64, page_size: usize) -> u64 {
    addr & !(page_size as u64).wrapping_sub(1)
}

/// Number of PRP entries (pages touched) of a transfer of `len` bytes at `addr`; 0 when `len`
/// is 0.
pub const fn entry_count(addr: u64, len: usize, page_size: usize) -> usize {
    if len == 0 {
        return 0;
    }
    (page_offset(addr, page_size) + len).div_ceil(page_size)
}

/// Whether PRP2 is used at all (the transfer touches two pages or more).
pub const fn prp2_used(addr: u64, len: usize, page_size: usize) -> bool {
    entry_count(addr, len, page_size) > 1
}

/// Whether PRP2 points to a PRP list (the transfer touches more than two pages).
pub const fn prp2_is_list(addr: u64, len: usize, page_size: usize) -> bool {
    entry_count(addr, len, page_size) > 2
}

/// Number of entry slots in one list page.
pub const fn entries_per_list_page(page_size: usize) -> usize {
    page_size / ENTRY_SIZE
}

/// Slots available in the list page that `list_ptr` points into: from the pointer to the end
/// of its page.
pub const fn list_slots_at(list_ptr: u64, page_size: usize) -> usize {
    (page_size - page_offset(list_ptr, page_size)) / ENTRY_SIZE
}

/// Whether slot `slot` of a list page with `slots` slots holds a pointer to the next list page,
/// when `remaining` entries (counting the one in this slot) are still to be described.
pub const fn is_chain_slot(slot: usize, slots: usize, remaining: usize) -> bool {
    slot + 1 == slots && remaining > 1
}

/// Number of page-aligned list pages needed for a transfer (0 when PRP2 is not a list).
/// A full list page carries `entries_per_list_page - 1` entries and a chain pointer; the last
/// page carries up to `entries_per_list_page` entries.
pub const fn list_pages(addr: u64, len: usize, page_size: usize) -> usize {
    let n = entry_count(addr, len, page_size);
    if n <= 2 {
        return 0;
    }
    let in_lists = n - 1;
    let per_page = entries_per_list_page(page_size);
    if per_page < 2 {
        return usize::MAX;
    }
    // k pages hold k * (per_page - 1) + 1 entries.
    (in_lists - 1).div_ceil(per_page - 1)
}

/// Whether `entry` may be used as a PRP entry: the first entry of a command (PRP1) must be
/// dword aligned, every other entry page aligned. A device answers `INVALID PRP OFFSET`
/// otherwise.
pub const fn is_valid_entry(entry: u64, first: bool, page_size: usize) -> bool {
    if first {
        entry & 3 == 0
    } else {
        page_offset(entry, page_size) == 0
    }
}

/// The memory segments `(address, length)` a transfer of `len` bytes at `addr` touches, one per
/// PRP entry: the first from `addr` to the end of its page, the rest whole pages, the last
/// what remains.
pub fn prp_entries(addr: u64, len: usize, page_size: usize) -> PrpSegments {
    PrpSegments {
        addr,
        remaining: len,
        page_size,
    }
}

/// Iterator returned by [`prp_entries`].
#[derive(Clone, Debug)]
pub struct PrpSegments {
    addr: u64,
    remaining: usize,
    page_size: usize,
}

impl Iterator for PrpSegments {
    type Item = (u64, usize);

    fn next(&mut self) -> Option<(u64, usize)> {
        if self.remaining == 0 {
            return None;
        }
        let room = self.page_size - page_offset(self.addr, self.page_size);
        let len = room.min(self.remaining);
        let seg = (self.addr, len);
        self.addr = self.addr.wrapping_add(len as u64);
        self.remaining -= len;
        Some(seg)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = entry_count(self.addr, self.remaining, self.page_size);
        (n, Some(n))
    }
}

impl ExactSizeIterator for PrpSegments {}

impl core::iter::FusedIterator for PrpSegments {}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: usize = 4096;

    #[test]
    fn counts() {
        assert_eq!(page_offset(0x1234, PS), 0x234);
        assert_eq!(page_base(0x1234, PS), 0x1000);
        assert_eq!(entry_count(0x1000, 0, PS), 0);
        assert_eq!(entry_count(0x1000, 512, PS), 1);
        assert_eq!(entry_count(0x1000, 4096, PS), 1);
        assert_eq!(entry_count(0x1e00, 1024, PS), 2);
        assert_eq!(entry_count(0x1000, 8192, PS), 2);
        assert_eq!(entry_count(0x1004, 8192, PS), 3);
        assert!(!prp2_used(0x1000, 4096, PS));
        assert!(prp2_used(0x1e00, 1024, PS));
        assert!(!prp2_is_list(0x1000, 8192, PS));
        assert!(prp2_is_list(0x1000, 8193, PS));
        assert_eq!(entries_per_list_page(PS), 512);
        assert_eq!(list_slots_at(0x5ff8, PS), 1);
        assert_eq!(list_slots_at(0x5000, PS), 512);
    }

    #[test]
    fn list_pages_follow_the_chain_rule() {
        assert_eq!(list_pages(0, 2 * PS, PS), 0);
        assert_eq!(list_pages(0, 3 * PS, PS), 1);
        // 513 entries: PRP1 and 512 in one full list page.
        assert_eq!(list_pages(0, 513 * PS, PS), 1);
        // 514 entries: 511 + chain, then 2.
        assert_eq!(list_pages(0, 514 * PS, PS), 2);
        // 1 + 511 + 512 fits in two pages, one more needs a third.
        assert_eq!(list_pages(0, 1024 * PS, PS), 2);
        assert_eq!(list_pages(0, 1025 * PS, PS), 3);
        assert!(is_chain_slot(511, 512, 2));
        assert!(!is_chain_slot(511, 512, 1));
        assert!(!is_chain_slot(510, 512, 100));
    }

    #[test]
    fn segments() {
        let s: Vec<_> = prp_entries(0x1e00, 0x2400, PS).collect();
        assert_eq!(
            s,
            vec![
                (0x1e00, 0x200),
                (0x2000, 0x1000),
                (0x3000, 0x1000),
                (0x4000, 0x200)
            ]
        );
        assert_eq!(prp_entries(0x1e00, 0x2400, PS).len(), 4);
        assert_eq!(prp_entries(0x1000, 0, PS).count(), 0);
        assert_eq!(
            prp_entries(0x1000, 512, PS).collect::<Vec<_>>(),
            vec![(0x1000, 512)]
        );
        for (addr, len) in [
            (0u64, 1usize),
            (0xffc, 8),
            (0x1234, 100_000),
            (0x3000, 3 * PS),
        ] {
            let segs: Vec<_> = prp_entries(addr, len, PS).collect();
            assert_eq!(segs.len(), entry_count(addr, len, PS));
            assert_eq!(segs.iter().map(|s| s.1).sum::<usize>(), len);
            assert!(segs.iter().skip(1).all(|s| is_valid_entry(s.0, false, PS)));
        }
    }

    #[test]
    fn entry_alignment() {
        assert!(is_valid_entry(0x1004, true, PS));
        assert!(!is_valid_entry(0x1002, true, PS));
        assert!(!is_valid_entry(0x1004, false, PS));
        assert!(is_valid_entry(0x2000, false, PS));
    }
}
