//! Random SQEs, register writes and doorbell values: the simulator never panics, never touches
//! host memory outside the window it was given (the test host refuses and records it), and always
//! answers a well-formed command with a status the spec defines.

mod common;

use common::*;
use nvme_spec::{regs, Sqe};
use proptest::prelude::*;
use std::time::Duration;

#[derive(Debug, Clone)]
enum Op {
    Admin(Sqe),
    Io(Sqe),
    Reg(u32, u32),
    Doorbell(u16, u32),
}

fn sqe_strategy() -> impl Strategy<Value = Sqe> {
    (
        any::<u8>(),
        0u32..4,
        any::<[u32; 6]>(),
        any::<u64>(),
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(|(opc, nsid, dw, p, in_window, psdt)| {
            let mut s = Sqe::new(opc, if nsid == 3 { 0xffff_ffff } else { nsid });
            s.set_psdt(psdt & 1);
            s.cdw10 = dw[0];
            s.cdw11 = dw[1];
            s.cdw12 = dw[2] & 0x00ff_00ff;
            s.cdw13 = dw[3];
            s.cdw14 = dw[4];
            s.cdw15 = dw[5];
            // Half the pointers land in the host window, half anywhere.
            s.prp1 = if in_window {
                BASE + (p % (60 << 20))
            } else {
                p
            };
            s.prp2 = if in_window {
                (BASE + ((p >> 7) % (60 << 20))) & !7
            } else {
                p.rotate_left(17)
            };
            s.mptr = p.rotate_left(3);
            s
        })
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => sqe_strategy().prop_map(Op::Admin),
        6 => sqe_strategy().prop_map(Op::Io),
        1 => (prop::sample::select(vec![0x0cu32, 0x10, 0x24, 0x38, 0x3c, 0x50, 0x58, 0xe00, 0x2000, 0x200c]), any::<u32>())
            .prop_map(|(o, v)| Op::Reg(o, v)),
        1 => (0u16..8, 0u32..40).prop_map(|(q, v)| Op::Doorbell(q, v)),
    ]
}

fn defined(st: nvme_spec::Status) -> bool {
    st.name() != "UNKNOWN" && st.sct != 7
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_commands_registers_and_doorbells(ops in prop::collection::vec(op_strategy(), 1..40)) {
        let mut r = Rig::new();
        r.enable();
        r.io_pair(1, 32);
        for op in ops {
            match op {
                Op::Admin(s) => {
                    // Commands that would change the test's own queues or power are skipped.
                    if matches!(s.opc(), 0x00 | 0x01 | 0x04 | 0x05 | 0x0c | 0x84 | 0x80 | 0x0d | 0x15) {
                        continue;
                    }
                    if r.reg32(regs::CSTS) & 3 != 1 {
                        break;
                    }
                    let cid = r.post(0, s);
                    r.ring(0);
                    if let Some(c) = r.reap_timeout(0, Duration::from_secs(2)) {
                        prop_assert_eq!(c.cid, cid);
                        prop_assert!(defined(c.status()), "admin {:#x}: {}", s.opc(), c.status());
                    } else {
                        // Only a lost SQ fetch (fatal) may leave a command unanswered.
                        prop_assert!(r.reg32(regs::CSTS) & 2 != 0, "admin {:#x} unanswered", s.opc());
                        break;
                    }
                }
                Op::Io(mut s) => {
                    s.nsid = if s.nsid == 0xffff_ffff { 1 } else { s.nsid };
                    let cid = r.post(1, s);
                    r.ring(1);
                    let c = r.reap_timeout(1, Duration::from_secs(2));
                    prop_assert!(c.is_some(), "io {:#x} unanswered", s.opc());
                    let c = c.unwrap();
                    prop_assert_eq!(c.cid, cid);
                    prop_assert!(defined(c.status()), "io {:#x}: {}", s.opc(), c.status());
                }
                Op::Reg(o, v) => r.set_reg32(o, v),
                Op::Doorbell(q, v) => {
                    if q > 1 {
                        r.dev.bar_write32(0, r.sq_doorbell(q), v);
                    }
                }
            }
        }
        // The device's code never failed: a caught panic would show as a fatal status above.
        prop_assert_eq!(r.dev.crash_count(), 0, "the device thread panicked");
        // Still alive: an identify completes (unless a fatal status was raised on purpose).
        if r.reg32(regs::CSTS) & 3 == 1 {
            let (st, _) = r.identify(1, 0);
            prop_assert!(st.is_success());
        }
        // Every refused access was outside the window: nothing inside was ever refused.
        for (a, l) in r.host.refused_log.lock().iter() {
            prop_assert!(*a < BASE || a.saturating_add(*l as u64) > BASE + (64 << 20));
        }
    }
}
