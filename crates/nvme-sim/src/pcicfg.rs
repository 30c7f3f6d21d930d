//! PCI configuration space of the function: a type 0 header, PM, MSI-X and PCI Express
//! capabilities, and the AER and Device Serial Number extended capabilities.
//!
//! Each byte has a write mask (bits software may change) and a write-1-to-clear mask, so writes to
//! read-only bits are ignored as hardware ignores them; BAR sizing falls out of the masks.

use crate::config::SimConfig;

/// Vendor ID 0x5A5A: both bytes non-zero, as in every vendor id PCI-SIG assigns (scripts check
/// Identify Controller VID/SSVID byte by byte), and not a vendor id the project knows to belong
/// to a real vendor, so the simulated function impersonates none. Drivers must match it by class
/// code (NVMe 0x010802).
pub const VENDOR_ID: u16 = 0x5A5A;
/// Device ID of the simulated SSD.
pub const DEVICE_ID: u16 = 0x5353;
/// Offset of the power management capability.
pub const PM_CAP: usize = 0x40;
/// Offset of the MSI-X capability.
pub const MSIX_CAP: usize = 0x50;
/// Offset of the PCI Express capability.
pub const PCIE_CAP: usize = 0x60;
/// Offset of the Advanced Error Reporting extended capability.
pub const AER_CAP: usize = 0x100;
/// Offset of the Device Serial Number extended capability.
pub const DSN_CAP: usize = 0x148;

/// Where things are in BAR0: registers, doorbells, then the MSI-X table and PBA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar0Layout {
    /// Size of BAR0 in bytes (a power of two).
    pub size: u64,
    /// First byte after the last doorbell.
    pub doorbell_end: u64,
    /// Offset of the MSI-X table (4 KiB aligned, after the doorbells).
    pub msix_table: u64,
    /// Offset of the MSI-X pending bit array (4 KiB aligned, after the table).
    pub msix_pba: u64,
    /// Number of MSI-X vectors.
    pub vectors: u16,
}

impl Bar0Layout {
    /// The layout for a configuration.
    pub fn new(c: &SimConfig) -> Bar0Layout {
        let align = |x: u64| (x + 0xfff) & !0xfff;
        let doorbell_end = 0x1000 + 2 * (c.queues as u64 + 1) * (4u64 << c.dstrd);
        let msix_table = align(doorbell_end);
        let msix_pba = align(msix_table + 16 * c.msix_vectors as u64);
        let end = msix_pba + (c.msix_vectors as u64).div_ceil(64) * 8;
        Bar0Layout {
            size: end.next_power_of_two().max(0x4000),
            doorbell_end,
            msix_table,
            msix_pba,
            vectors: c.msix_vectors,
        }
    }
}

/// Side effects of a configuration write that the device must act on.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CfgEffects {
    /// PCIe device control "initiate function level reset" was written 1.
    pub flr: bool,
    /// The power state field changed to this (0 D0, 3 D3hot).
    pub power_state: Option<u8>,
}

/// The 4 KiB configuration space.
pub(crate) struct ConfigSpace {
    data: Box<[u8; 4096]>,
    wmask: Box<[u8; 4096]>,
    w1c: Box<[u8; 4096]>,
    initial: Box<[u8; 4096]>,
}

impl ConfigSpace {
    pub fn new(c: &SimConfig, layout: &Bar0Layout) -> ConfigSpace {
        let mut s = ConfigSpace {
            data: Box::new([0; 4096]),
            wmask: Box::new([0; 4096]),
            w1c: Box::new([0; 4096]),
            initial: Box::new([0; 4096]),
        };
        s.put16(0x00, VENDOR_ID);
        s.put16(0x02, DEVICE_ID);
        // Command: I/O space, memory space, bus master, parity, SERR, INTx disable.
        s.mask16(0x04, 0x0547);
        // Status: capabilities list; the error bits are write-1-to-clear.
        s.put16(0x06, 0x0010);
        s.w1c16(0x06, 0xf900);
        s.data[0x08] = 0x01; // revision
        s.data[0x09] = 0x02; // programming interface: NVM Express
        s.data[0x0a] = 0x08; // subclass: non-volatile memory controller
        s.data[0x0b] = 0x01; // class: mass storage
        s.wmask[0x0c] = 0xff; // cache line size
        s.wmask[0x0d] = 0x00;
        s.data[0x0e] = 0x00; // header type 0, single function
                             // BAR0/1: 64-bit non-prefetchable memory.
        s.data[0x10] = 0x04;
        s.mask32(0x10, (!(layout.size - 1) as u32) & 0xffff_fff0);
        s.mask32(0x14, 0xffff_ffff);
        if c.cmb_size != 0 {
            // BAR2/3: 64-bit prefetchable memory, the controller memory buffer.
            s.data[0x18] = 0x0c;
            s.mask32(0x18, (!(c.cmb_size - 1) as u32) & 0xffff_fff0);
            s.mask32(0x1c, (!(c.cmb_size - 1) >> 32) as u32);
        }
        s.put16(0x2c, VENDOR_ID);
        s.put16(0x2e, 0x0001);
        s.data[0x34] = PM_CAP as u8;
        s.wmask[0x3c] = 0xff; // interrupt line
        s.data[0x3d] = 0x01; // INTA

        // Power management, version 3 (PMC), PMCSR power state writable, No_Soft_Reset set.
        s.data[PM_CAP] = 0x01;
        s.data[PM_CAP + 1] = MSIX_CAP as u8;
        s.put16(PM_CAP + 2, 0x0003);
        s.put16(PM_CAP + 4, 0x0008);
        s.mask16(PM_CAP + 4, 0x0103);
        s.w1c16(PM_CAP + 4, 0x8000);

        // MSI-X: table and PBA in BAR0.
        s.data[MSIX_CAP] = 0x11;
        s.data[MSIX_CAP + 1] = PCIE_CAP as u8;
        s.put16(MSIX_CAP + 2, c.msix_vectors - 1);
        s.mask16(MSIX_CAP + 2, 0xc000);
        s.put32(MSIX_CAP + 4, layout.msix_table as u32);
        s.put32(MSIX_CAP + 8, layout.msix_pba as u32);

        // PCI Express capability, version 2, endpoint.
        let p = PCIE_CAP;
        s.data[p] = 0x10;
        s.data[p + 1] = 0;
        s.put16(p + 2, 0x0002);
        // Device capabilities: max payload 256 B, role-based error reporting, FLR capable.
        s.put32(p + 4, 0x1 | (1 << 15) | (1 << 28));
        // Device control: error reporting enables, relaxed ordering, max payload, no snoop,
        // max read request; bit 15 initiates an FLR and always reads 0.
        s.put16(p + 8, 0x2810);
        s.mask16(p + 8, 0x7fff);
        s.w1c16(p + 0x0a, 0x000f);
        // Link capabilities: 16 GT/s, x4, ASPM L0s and L1, port 0.
        s.put32(p + 0x0c, 0x4 | (4 << 4) | (3 << 10));
        // Link control: ASPM control, RCB, common clock, extended synch, clock PM writable.
        s.mask16(p + 0x10, 0x01c3);
        // Link status: 16 GT/s, x4, slot clock configuration.
        s.put16(p + 0x12, 0x4 | (4 << 4) | (1 << 12));
        // Device capabilities 2: completion timeout ranges, timeout disable supported.
        s.put32(p + 0x24, 0xf | (1 << 4));
        s.mask16(p + 0x28, 0x041f);
        // Link capabilities 2: 2.5, 5, 8 and 16 GT/s.
        s.put32(p + 0x2c, 0b1_1110);
        // Link control 2: target link speed 16 GT/s, writable.
        s.put16(p + 0x30, 0x4);
        s.mask16(p + 0x30, 0x000f);

        // AER, version 2.
        let a = AER_CAP;
        s.put32(a, 0x0001 | (2 << 16) | ((DSN_CAP as u32) << 20));
        s.w1c32(a + 0x04, 0x03ff_f030); // uncorrectable status
        s.mask32(a + 0x08, 0x03ff_f030); // uncorrectable mask
        s.put32(a + 0x0c, 0x0006_2030); // uncorrectable severity
        s.mask32(a + 0x0c, 0x03ff_f030);
        s.w1c32(a + 0x10, 0x0000_f1c1); // correctable status
        s.put32(a + 0x14, 0x0000_6000); // correctable mask
        s.mask32(a + 0x14, 0x0000_f1c1);
        s.mask32(a + 0x18, 0x0000_0140); // ECRC generation/check enables

        // Device serial number, from the configured serial.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in c.serial.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        s.put32(DSN_CAP, 0x0003 | (1 << 16));
        s.put32(DSN_CAP + 4, h as u32);
        s.put32(DSN_CAP + 8, (h >> 32) as u32);

        *s.initial = *s.data;
        s
    }

    fn put16(&mut self, o: usize, v: u16) {
        self.data[o..o + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn put32(&mut self, o: usize, v: u32) {
        self.data[o..o + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn mask16(&mut self, o: usize, v: u16) {
        self.wmask[o..o + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn mask32(&mut self, o: usize, v: u32) {
        self.wmask[o..o + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn w1c16(&mut self, o: usize, v: u16) {
        self.w1c[o..o + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn w1c32(&mut self, o: usize, v: u32) {
        self.w1c[o..o + 4].copy_from_slice(&v.to_le_bytes());
    }

    pub fn get16(&self, o: usize) -> u16 {
        u16::from_le_bytes([self.data[o], self.data[o + 1]])
    }
    pub fn get32(&self, o: usize) -> u32 {
        u32::from_le_bytes([
            self.data[o],
            self.data[o + 1],
            self.data[o + 2],
            self.data[o + 3],
        ])
    }

    /// Back to power-on values (FLR, conventional reset).
    pub fn reset(&mut self) {
        *self.data = *self.initial;
    }

    pub fn read(&self, offset: u16, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            let o = offset as usize + i;
            *b = if o < 4096 { self.data[o] } else { 0xff };
        }
    }

    pub fn write(&mut self, offset: u16, bytes: &[u8]) -> CfgEffects {
        let old_ps = self.data[PM_CAP + 4] & 3;
        let mut fx = CfgEffects::default();
        for (i, &v) in bytes.iter().enumerate() {
            let o = offset as usize + i;
            if o >= 4096 {
                break;
            }
            let m = self.wmask[o];
            self.data[o] = (self.data[o] & !m) | (v & m);
            self.data[o] &= !(v & self.w1c[o]);
        }
        // Initiate FLR: a write-only bit that always reads 0.
        let flr_byte = PCIE_CAP + 9;
        if let Some(i) = flr_byte.checked_sub(offset as usize) {
            if bytes.get(i).is_some_and(|b| b & 0x80 != 0) {
                fx.flr = true;
            }
        }
        let ps = self.data[PM_CAP + 4] & 3;
        if ps == 1 || ps == 2 {
            // D1/D2 are not supported: the write has no effect on the state.
            self.data[PM_CAP + 4] = (self.data[PM_CAP + 4] & !3) | old_ps;
        } else if ps != old_ps {
            fx.power_state = Some(ps);
        }
        fx
    }

    pub fn command(&self) -> u16 {
        self.get16(0x04)
    }

    pub fn msix_control(&self) -> u16 {
        self.get16(MSIX_CAP + 2)
    }

    /// The bus address BAR2 (64-bit) is programmed to.
    pub fn bar2_address(&self) -> u64 {
        ((self.get32(0x1c) as u64) << 32) | (self.get32(0x18) & 0xffff_fff0) as u64
    }
}
