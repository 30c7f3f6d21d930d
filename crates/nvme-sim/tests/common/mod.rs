//! A small test host: host memory with a bus-address window, and raw admin/IO queues driven
//! through BAR0 and config space, with no host driver in between.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nvme_sim::{DmaFault, HostMemory, SimConfig, SimDevice};
use nvme_spec::regs;
use nvme_spec::{Cqe, Sqe, Status};
use parking_lot::Mutex;

pub const BASE: u64 = 0x1_0000_0000;
pub const PAGE: u64 = 4096;

/// Host memory: one window of bus addresses; every access outside it is refused and counted.
pub struct TestHost {
    pub base: u64,
    pub mem: Mutex<Vec<u8>>,
    next: AtomicU64,
    pub refused: AtomicUsize,
    pub accesses: AtomicUsize,
    /// Accesses that were refused, for inspection.
    pub refused_log: Mutex<Vec<(u64, usize)>>,
}

impl TestHost {
    pub fn new(size: usize) -> Arc<TestHost> {
        Arc::new(TestHost {
            base: BASE,
            mem: Mutex::new(vec![0; size]),
            next: AtomicU64::new(BASE),
            refused: AtomicUsize::new(0),
            accesses: AtomicUsize::new(0),
            refused_log: Mutex::new(Vec::new()),
        })
    }

    fn check(&self, addr: u64, len: usize) -> Result<usize, DmaFault> {
        self.accesses.fetch_add(1, Relaxed);
        let size = self.mem.lock().len() as u64;
        match addr.checked_sub(self.base) {
            Some(off) if off.checked_add(len as u64).is_some_and(|e| e <= size) => Ok(off as usize),
            _ => {
                self.refused.fetch_add(1, Relaxed);
                self.refused_log.lock().push((addr, len));
                Err(DmaFault { addr, len })
            }
        }
    }

    /// Allocates `size` bytes aligned to `align` (zeroed).
    pub fn alloc(&self, size: u64, align: u64) -> u64 {
        loop {
            let cur = self.next.load(SeqCst);
            let a = (cur + align - 1) & !(align - 1);
            if self
                .next
                .compare_exchange(cur, a + size, SeqCst, SeqCst)
                .is_ok()
            {
                assert!(
                    a + size <= self.base + self.mem.lock().len() as u64,
                    "test host out of memory"
                );
                self.fill(a, size as usize, 0);
                return a;
            }
        }
    }

    pub fn fill(&self, addr: u64, len: usize, v: u8) {
        let o = (addr - self.base) as usize;
        self.mem.lock()[o..o + len].fill(v);
    }

    pub fn put(&self, addr: u64, data: &[u8]) {
        let o = (addr - self.base) as usize;
        self.mem.lock()[o..o + data.len()].copy_from_slice(data);
    }

    pub fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        let o = (addr - self.base) as usize;
        self.mem.lock()[o..o + len].to_vec()
    }

    pub fn u32_at(&self, addr: u64) -> u32 {
        u32::from_le_bytes(self.get(addr, 4).try_into().unwrap())
    }

    pub fn put_u32(&self, addr: u64, v: u32) {
        self.put(addr, &v.to_le_bytes());
    }

    pub fn put_u64(&self, addr: u64, v: u64) {
        self.put(addr, &v.to_le_bytes());
    }
}

impl HostMemory for TestHost {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        let o = self.check(addr, buf.len())?;
        buf.copy_from_slice(&self.mem.lock()[o..o + buf.len()]);
        Ok(())
    }
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), DmaFault> {
        let o = self.check(addr, data.len())?;
        self.mem.lock()[o..o + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn write_dword_release(&self, addr: u64, value: u32) -> Result<(), DmaFault> {
        let o = self.check(addr, 4)?;
        self.mem.lock()[o..o + 4].copy_from_slice(&value.to_le_bytes());
        Ok(())
    }
}

pub struct Queue {
    pub sq: u64,
    pub cq: u64,
    pub size: u32,
    pub tail: u32,
    pub head: u32,
    pub phase: bool,
    pub cid: u16,
}

/// A device with a test host, MSI-X set up, and raw queues.
pub struct Rig {
    pub dev: SimDevice,
    pub host: Arc<TestHost>,
    pub queues: Vec<Option<Queue>>,
    pub msix: u64,
    pub dstrd: u8,
}

pub const TIMEOUT: Duration = Duration::from_secs(5);

impl Rig {
    pub fn with(cfg: SimConfig) -> Rig {
        let host = TestHost::new(64 << 20);
        let dstrd = cfg.dstrd;
        let dev = SimDevice::new(cfg, host.clone()).expect("device");
        let msix = host.alloc(PAGE, PAGE);
        let mut rig = Rig {
            dev,
            host,
            queues: (0..1100).map(|_| None).collect(),
            msix,
            dstrd,
        };
        rig.pci_setup();
        rig
    }

    pub fn new() -> Rig {
        Rig::with(SimConfig::default())
    }

    /// Memory space + bus master on, MSI-X enabled with every vector pointing at host memory.
    pub fn pci_setup(&mut self) {
        self.dev.config_write(0x04, &0x0006u16.to_le_bytes());
        let l = self.dev.bar0_layout();
        for v in 0..l.vectors as u64 {
            let e = l.msix_table + v * 16;
            self.dev.bar_write32(0, e, (self.msix + v * 4) as u32);
            self.dev
                .bar_write32(0, e + 4, ((self.msix + v * 4) >> 32) as u32);
            self.dev.bar_write32(0, e + 8, 0x100 + v as u32);
            self.dev.bar_write32(0, e + 12, 0);
        }
        let mc = 0x50 + 2;
        let mut b = [0u8; 2];
        self.dev.config_read(mc, &mut b);
        let v = u16::from_le_bytes(b) | 0x8000;
        self.dev.config_write(mc, &v.to_le_bytes());
    }

    pub fn reg32(&self, off: u32) -> u32 {
        self.dev.bar_read32(0, off as u64)
    }

    pub fn set_reg32(&self, off: u32, v: u32) {
        self.dev.bar_write32(0, off as u64, v)
    }

    pub fn wait_csts(&self, mask: u32, want: u32) -> bool {
        let t = Instant::now();
        while t.elapsed() < TIMEOUT {
            if self.reg32(regs::CSTS) & mask == want {
                return true;
            }
            std::thread::yield_now();
        }
        false
    }

    /// Sets up the admin queue and enables the controller.
    pub fn enable_with(&mut self, entries: u32) {
        self.set_reg32(regs::CC, 0);
        assert!(self.wait_csts(1, 0), "not ready to enable");
        let sq = self.host.alloc(entries as u64 * 64, PAGE);
        let cq = self.host.alloc(entries as u64 * 16, PAGE);
        self.set_reg32(
            regs::AQA,
            regs::aqa::build(entries as u16 - 1, entries as u16 - 1),
        );
        self.dev.bar_write64(0, regs::ASQ as u64, sq);
        self.dev.bar_write64(0, regs::ACQ as u64, cq);
        self.set_reg32(regs::CC, regs::cc::DEFAULT | regs::cc::EN);
        assert!(self.wait_csts(1, 1), "CSTS.RDY did not follow CC.EN");
        self.queues[0] = Some(Queue {
            sq,
            cq,
            size: entries,
            tail: 0,
            head: 0,
            phase: true,
            cid: 0,
        });
    }

    pub fn enable(&mut self) {
        self.enable_with(32);
    }

    pub fn sq_doorbell(&self, qid: u16) -> u64 {
        regs::sq_tail_doorbell(qid, self.dstrd) as u64
    }

    pub fn cq_doorbell(&self, qid: u16) -> u64 {
        regs::cq_head_doorbell(qid, self.dstrd) as u64
    }

    /// Puts a command in the SQ (assigning a CID) without ringing.
    pub fn post(&mut self, qid: u16, mut sqe: Sqe) -> u16 {
        let q = self.queues[qid as usize].as_mut().expect("queue");
        q.cid = q.cid.wrapping_add(1);
        sqe.set_cid(q.cid);
        let addr = q.sq + q.tail as u64 * 64;
        self.host.put(addr, zerocopy::IntoBytes::as_bytes(&sqe));
        q.tail = (q.tail + 1) % q.size;
        q.cid
    }

    pub fn ring(&self, qid: u16) {
        let q = self.queues[qid as usize].as_ref().expect("queue");
        self.dev.bar_write32(0, self.sq_doorbell(qid), q.tail);
    }

    /// The next CQE if its phase says it is new (does not release it).
    pub fn peek(&self, qid: u16) -> Option<Cqe> {
        let q = self.queues[qid as usize].as_ref().expect("queue");
        let addr = q.cq + q.head as u64 * 16;
        let b = self.host.get(addr, 16);
        let d = [0, 4, 8, 12].map(|i| u32::from_le_bytes(b[i..i + 4].try_into().unwrap()));
        let c = Cqe::from_dwords(d);
        (c.phase() == q.phase).then_some(c)
    }

    /// Takes the next CQE without ringing the head doorbell.
    pub fn take(&mut self, qid: u16, timeout: Duration) -> Option<Cqe> {
        let t = Instant::now();
        loop {
            if let Some(c) = self.peek(qid) {
                let q = self.queues[qid as usize].as_mut().unwrap();
                q.head = (q.head + 1) % q.size;
                if q.head == 0 {
                    q.phase = !q.phase;
                }
                return Some(c);
            }
            if t.elapsed() > timeout {
                return None;
            }
            std::thread::yield_now();
        }
    }

    pub fn release(&self, qid: u16) {
        let q = self.queues[qid as usize].as_ref().expect("queue");
        self.dev.bar_write32(0, self.cq_doorbell(qid), q.head);
    }

    /// Waits for one completion and releases it.
    pub fn reap(&mut self, qid: u16) -> Cqe {
        let c = self
            .take(qid, TIMEOUT)
            .unwrap_or_else(|| panic!("no completion on queue {qid}"));
        self.release(qid);
        c
    }

    pub fn reap_timeout(&mut self, qid: u16, t: Duration) -> Option<Cqe> {
        let c = self.take(qid, t)?;
        self.release(qid);
        Some(c)
    }

    /// Submits one command and waits for its completion.
    pub fn cmd(&mut self, qid: u16, sqe: Sqe) -> Cqe {
        let cid = self.post(qid, sqe);
        self.ring(qid);
        let c = self.reap(qid);
        assert_eq!(c.cid, cid, "completion for another command");
        assert_eq!(c.sqid, qid);
        c
    }

    pub fn admin(&mut self, sqe: Sqe) -> Cqe {
        self.cmd(0, sqe)
    }

    /// Admin command with a data buffer of `len` bytes (PRP1/PRP2 set up); returns CQE and data.
    pub fn admin_data(
        &mut self,
        mut sqe: Sqe,
        data_in: Option<&[u8]>,
        len: usize,
    ) -> (Cqe, Vec<u8>) {
        let (p1, p2) = self.prp_buffer(len);
        if let Some(d) = data_in {
            self.host.put(p1.0, d);
        }
        sqe.prp1 = p1.1;
        sqe.prp2 = p2;
        let c = self.admin(sqe);
        (c, self.host.get(p1.0, len))
    }

    /// A physically contiguous buffer with PRPs describing it: ((buffer, prp1), prp2).
    pub fn prp_buffer(&self, len: usize) -> ((u64, u64), u64) {
        let pages = (len as u64).div_ceil(PAGE).max(1);
        let buf = self.host.alloc(pages * PAGE, PAGE);
        let prp2 = if pages == 1 {
            0
        } else if pages == 2 {
            buf + PAGE
        } else {
            let list = self.host.alloc(PAGE, PAGE);
            for i in 1..pages {
                self.host.put_u64(list + (i - 1) * 8, buf + i * PAGE);
            }
            list
        };
        ((buf, buf), prp2)
    }

    pub fn identify(&mut self, cns: u8, nsid: u32) -> (Status, Vec<u8>) {
        let mut s = Sqe::new(nvme_spec::cmd::admin::IDENTIFY, nsid);
        s.cdw10 = cns as u32;
        let (c, d) = self.admin_data(s, None, 4096);
        (c.status(), d)
    }

    pub fn set_features(&mut self, fid: u8, dw11: u32) -> Cqe {
        let mut s = Sqe::new(nvme_spec::cmd::admin::SET_FEATURES, 0);
        s.cdw10 = fid as u32;
        s.cdw11 = dw11;
        self.admin(s)
    }

    pub fn get_features(&mut self, fid: u8, sel: u8, dw11: u32) -> Cqe {
        let mut s = Sqe::new(nvme_spec::cmd::admin::GET_FEATURES, 0);
        s.cdw10 = fid as u32 | (sel as u32) << 8;
        s.cdw11 = dw11;
        self.admin(s)
    }

    pub fn create_cq(&mut self, qid: u16, size: u32, iv: u16, ien: bool) -> Status {
        let cq = self.host.alloc(size as u64 * 16, PAGE);
        let mut s = Sqe::new(nvme_spec::cmd::admin::CREATE_IO_CQ, 0);
        s.prp1 = cq;
        s.cdw10 = qid as u32 | (size - 1) << 16;
        s.cdw11 = 1 | (ien as u32) << 1 | (iv as u32) << 16;
        let c = self.admin(s);
        if c.status().is_success() {
            self.queues[qid as usize] = Some(Queue {
                sq: 0,
                cq,
                size,
                tail: 0,
                head: 0,
                phase: true,
                cid: 0,
            });
        }
        c.status()
    }

    pub fn create_sq(&mut self, qid: u16, size: u32, cqid: u16) -> Status {
        let sq = self.host.alloc(size as u64 * 64, PAGE);
        let mut s = Sqe::new(nvme_spec::cmd::admin::CREATE_IO_SQ, 0);
        s.prp1 = sq;
        s.cdw10 = qid as u32 | (size - 1) << 16;
        s.cdw11 = 1 | (cqid as u32) << 16;
        let c = self.admin(s);
        if c.status().is_success() {
            if let Some(q) = self.queues[qid as usize].as_mut() {
                q.sq = sq;
                q.size = q.size.min(size).max(size);
            }
        }
        c.status()
    }

    /// Creates CQ and SQ `qid` of `size` entries, interrupts on vector `qid`.
    pub fn io_pair(&mut self, qid: u16, size: u32) {
        assert!(self.create_cq(qid, size, qid, true).is_success());
        assert!(self.create_sq(qid, size, qid).is_success());
    }

    /// Reads or writes `nlb` blocks with a fresh buffer; returns (status, buffer address).
    #[allow(clippy::too_many_arguments)]
    pub fn rw(
        &mut self,
        qid: u16,
        opc: u8,
        nsid: u32,
        slba: u64,
        nlb: u32,
        data: Option<&[u8]>,
        bs: usize,
    ) -> (Status, u64) {
        let len = nlb as usize * bs;
        let ((buf, prp1), prp2) = self.prp_buffer(len);
        if let Some(d) = data {
            self.host.put(buf, d);
        }
        let mut s = Sqe::new(opc, nsid);
        s.prp1 = prp1;
        s.prp2 = prp2;
        s.set_slba(slba);
        s.cdw12 = nlb - 1;
        (self.cmd(qid, s).status(), buf)
    }

    pub fn write(&mut self, qid: u16, slba: u64, data: &[u8]) -> Status {
        let nlb = (data.len() / 512) as u32;
        self.rw(
            qid,
            nvme_spec::cmd::nvm::WRITE,
            1,
            slba,
            nlb,
            Some(data),
            512,
        )
        .0
    }

    pub fn read(&mut self, qid: u16, slba: u64, nlb: u32) -> (Status, Vec<u8>) {
        let (st, buf) = self.rw(qid, nvme_spec::cmd::nvm::READ, 1, slba, nlb, None, 512);
        (st, self.host.get(buf, nlb as usize * 512))
    }

    /// The MSI-X message dword of vector `v` (0 until a message arrives).
    pub fn msix_word(&self, v: u16) -> u32 {
        self.host.u32_at(self.msix + v as u64 * 4)
    }

    pub fn clear_msix(&self, v: u16) {
        self.host.put_u32(self.msix + v as u64 * 4, 0);
    }

    pub fn wait_msix(&self, v: u16, timeout: Duration) -> bool {
        let t = Instant::now();
        while t.elapsed() < timeout {
            if self.msix_word(v) == 0x100 + v as u32 {
                return true;
            }
            std::thread::yield_now();
        }
        false
    }
}

pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
