"""The ioworker examples of the PyNVMe3 Script Development Guide, made to run.

Each test is the guide's script (run times shortened to keep the suite quick: the guide's
10-second runs take 1-2 seconds here) with assertions on what the guide says should happen. An
IO that completes with an error status fails the test, as do the ioworker's own error warnings.
"""

import logging
import os
import time

import pytest

from nvme import *

pytestmark = [
    pytest.mark.filterwarnings("error:ERROR status"),
    pytest.mark.filterwarnings("error:ioworker"),
]


@pytest.mark.device
def test_ioworker(nvme0, nvme0n1, qpair):
    """A 2 s 4 KiB random write ioworker writes only and runs 2-4 s.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run io_size 8, aligned, random, 0% reads, 2 s.
    2. Check writes only and the run time.
    """
    r = (
        nvme0n1.ioworker(
            io_size=8,  # 4K io size
            lba_align=8,  # 4K aligned
            lba_random=True,  # random
            read_percentage=0,  # write
            time=2,  # 2 seconds
        )
        .start()
        .close()
    )
    assert r.io_count_write > 0 and r.io_count_read == 0
    assert 2000 <= r.mseconds < 4000


@pytest.mark.device
def test_ioworker_with_statement(nvme0, nvme0n1):
    """An ioworker used as a context manager runs while iostat() reports progress.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Start a 2 s ioworker in a with block; poll iostat() every 0.5 s.
    2. Check it read.
    """
    with nvme0n1.ioworker(io_size=8, time=2) as w:
        while w.running:
            time.sleep(0.5)
            speed, iops = nvme0.iostat()
            logging.info("iostat: %dB/s, %dIOPS", speed, iops)
    assert w.close().io_count_read > 0


@pytest.mark.device
def test_admin_func(nvme0, nvme0n1):
    """A controller reset while an ioworker runs: the worker and the controller survive.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVMe 2.0 base spec 3.7.2
    Controller Reset.

    Steps:
    1. Run a 1000 IOPS ioworker for 2 s.
    2. After 0.5 s clear CC.EN, wait RDY = 0, reset.
    3. Any error status or ioworker error fails the test.
    """
    # reset the controller during IO
    with nvme0n1.ioworker(io_size=1, iops=1000, time=2) as w:
        time.sleep(0.5)
        nvme0[0x14] = 0
        nvme0.wait_csts(rdy=False)
        nvme0.reset()
    # The worker went on after the reset: its 2 s at 1000 IOPS, less what the reset cut.
    assert w.close().io_count_read > 1500


@pytest.mark.device
def test_verify(nvme0, nvme0n1, qpair, buf, verify):
    """Verified IO: a written region, a zeroed range, and a full read-back agree.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.8 Write
    Zeroes.

    Steps:
    1. Write LBA 0 and 8..255 (ioworker); Write Zeroes 256..263.
    2. Read 0..263 with verification: 264 LBAs, no mismatch.
    """
    # write data
    nvme0n1.write(qpair, buf, 0).waitdone()
    nvme0n1.ioworker(
        io_size=8, lba_random=False, region_start=8, region_end=256, read_percentage=0
    ).start().close()
    nvme0n1.write_zeroes(qpair, 256, 8).waitdone()
    # verify data
    r = (
        nvme0n1.ioworker(io_size=8, lba_random=False, region_end=264, read_percentage=100)
        .start()
        .close()
    )
    assert r.lba_count_read == 264


@pytest.mark.device
def test_ioworker_io_size(nvme0n1):
    """io_size as a list and as a weighted dict both run.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run with io_size [8, 16, 256], then {8: 50, 16: 25, 256: 25}.
    2. Check the sizes of the last 300 IOs are the three given. An IO that starts within its
       size of the end of the namespace is cut at the end (as pynvme's ioworker does): IOs
       that end at the end are left out of the check.
    """
    nsze = nvme0n1.id_data(7, 0)
    for io_size in ([8, 16, 256], {8: 50, 16: 25, 256: 25}):
        log = [None] * 300
        nvme0n1.ioworker(
            io_size=io_size, lba_random=True, read_percentage=100, time=1, output_cmdlog_list=log
        ).start().close()
        ios = [e for e in log if e and e[1]]
        assert {n for lba, n, *_ in ios if lba + n < nsze} == {8, 16, 256}
        assert all(n <= 256 for _, n, *_ in ios)


@pytest.mark.device
def test_ioworker_time(nvme0n1):
    """time=2 runs 2-4 s.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run for 2 s; check mseconds.
    """
    r = nvme0n1.ioworker(io_size=8, time=2).start().close()
    assert 2000 <= r.mseconds < 4000


@pytest.mark.device
def test_ioworker_io_count(nvme0n1):
    """io_count=10000 issues exactly 10000 reads.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run with io_count 10000; check the read count.
    """
    r = nvme0n1.ioworker(io_size=8, io_count=10000).start().close()
    assert r.io_count_read == 10000


@pytest.mark.device
def test_ioworker_lba_count(nvme0n1):
    """lba_count=80000 reads at least 80000 LBAs.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run with io sizes 8 and 16 until 80000 LBAs; check lba_count_read.
    """
    r = nvme0n1.ioworker(io_size=[8, 16], lba_count=80000).start().close()
    assert r.lba_count_read >= 80000


@pytest.mark.device
def test_ioworker_lba_random(nvme0n1):
    """Sequential and 50% random LBA choices both run.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run with lba_random False, then 50.
    """
    log = [None] * 100
    nvme0n1.ioworker(io_size=8, lba_random=False, time=1, output_cmdlog_list=log).start().close()
    assert all(e[0] % 8 == 0 for e in log), "sequential 8-block IOs from LBA 0"
    assert nvme0n1.ioworker(io_size=8, lba_random=50, time=1).start().close().io_count_read


@pytest.mark.device
def test_ioworker_lba_start(nvme0n1):
    """lba_start sets the first LBA of a sequential worker.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run one IO from LBA 100 with a command log.
    2. Check its LBA is 100.
    """
    log = [None] * 1
    nvme0n1.ioworker(
        io_size=8, lba_random=False, lba_start=100, io_count=1, output_cmdlog_list=log
    ).start().close()
    assert log[0][0] == 100


@pytest.mark.device
def test_ioworker_lba_step(nvme0n1):
    """lba_step moves sequential LBAs forward, backward or not at all.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Step 16 from 0: LBAs 0, 16, ... 144.
    2. Step -1 from 10: 10 down to 1.
    3. Step 0: always LBA 10.
    """
    # 4K sequential read with a 4K gap between IOs
    log = [None] * 10
    nvme0n1.ioworker(
        io_size=8, lba_random=False, lba_step=16, io_count=10, qdepth=1, output_cmdlog_list=log
    ).start().close()
    assert [e[0] for e in log] == list(range(0, 160, 16))
    # reverse order: LBA 10, 9, ..., 1
    nvme0n1.ioworker(
        io_size=1,
        lba_random=False,
        lba_start=10,
        lba_step=-1,
        io_count=10,
        qdepth=1,
        output_cmdlog_list=log,
    ).start().close()
    assert [e[0] for e in log] == list(range(10, 0, -1))
    # the same LBA again and again
    nvme0n1.ioworker(
        io_size=1,
        lba_random=False,
        lba_start=10,
        lba_step=0,
        io_count=10,
        read_percentage=50,
        output_cmdlog_list=log,
    ).start().close()
    assert {e[0] for e in log} == {10}


@pytest.mark.device
def test_ioworker_read_percentage(nvme0n1):
    """read_percentage=50 gives about half reads.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run 4000 IOs at 50% reads; check 1600 < reads < 2400.
    """
    r = nvme0n1.ioworker(io_size=8, read_percentage=50, io_count=4000).start().close()
    assert 1600 < r.io_count_read < 2400


@pytest.mark.device
def test_ioworker_op_percentage(nvme0n1):
    """op_percentage mixes Read, DSM and Write by weight.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write, 3.2.3 Dataset Management.

    Steps:
    1. Run {Read 40, DSM 30, Write 30} for 1 s.
    """
    op = {2: 40, 9: 30, 1: 30}
    nvme0n1.ioworker(op_percentage=op, io_size=8, time=1).start().close()
    assert op[2] > 0 and op[9] > 0 and op[1] > 0


@pytest.mark.device
def test_ioworker_sgl_percentage(nvme0n1):
    """sgl_percentage=50 sends half the IOs with SGLs.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVMe 2.0 base spec 4.1.2 SGL.

    Steps:
    1. Skip without SGL support.
    2. Run 1 s with sgl_percentage 50.
    """
    if not nvme0n1.nvme.id_ctrl().sgls & 0x3:
        pytest.skip("the controller does not support SGLs for NVM commands (SGLS)")
    r = nvme0n1.ioworker(io_size=8, sgl_percentage=50, time=1).start().close()
    assert r.io_count_read > 0 and r.error == 0


@pytest.mark.device
def test_ioworker_qdepth(nvme0n1):
    """A queue depth of 127 runs when MQES allows it.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVMe 2.0 base spec 3.1.3.1
    CAP.MQES.

    Steps:
    1. Skip if MQES < 127.
    2. Run 1 s at QD 127.
    """
    if nvme0n1.nvme.cap & 0xFFFF < 127:
        pytest.skip("CAP.MQES is below 127")
    with nvme0n1.ioworker(io_size=8, qdepth=127, time=1) as w:
        depths = {q["qid"]: q["depth"] for q in nvme0n1.nvme.qpairs_info()}
        assert depths[w.qid] == 128, "the worker's queue has qdepth + 1 entries"
    assert w.close().io_count_read > 0


@pytest.mark.device
def test_ioworker_qprio(nvme0, nvme0n1):
    """qprio=0 runs under the default round robin.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVMe 2.0 base spec 5.5 (QPRIO).

    Steps:
    1. Run 1 s with qprio 0.
    """
    # only valid with weighted round robin arbitration (CC.AMS = 1)
    assert nvme0n1.ioworker(io_size=8, qprio=0, time=1).start().close().io_count_read > 0


@pytest.mark.device
def test_ioworker_region_start(nvme0n1):
    """region_start keeps every LBA at or above it.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run 100 IOs from region 10h with a command log.
    2. Check every LBA >= 10h.
    """
    log = [None] * 100
    nvme0n1.ioworker(
        io_size=8, region_start=0x10, io_count=100, output_cmdlog_list=log
    ).start().close()
    assert all(e[0] >= 0x10 for e in log)


@pytest.mark.device
def test_ioworker_region_end(nvme0n1):
    """A sequential worker covers region_start..region_end exactly once.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run sequentially over 10h..100h.
    2. Check F0h LBAs were read.
    """
    log = [None] * 100
    r = (
        nvme0n1.ioworker(
            io_size=8, lba_random=False, region_start=0x10, region_end=0x100, output_cmdlog_list=log
        )
        .start()
        .close()
    )
    assert r.lba_count_read == 0x100 - 0x10


@pytest.mark.device
def test_ioworker_iops(nvme0n1):
    """iops=12345 holds each second's IO count near 12345.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run 2 s throttled to 12345 IOPS.
    2. Check each second is 12000-12700, unless an IO completed more than 50 ms after the time
       it was due (the device, or the machine running it, stalled: an emulated device on a
       busy machine does); then the IOs of one second slip into the next, and the check is on
       the run's total.
    """
    ios = []
    r = nvme0n1.ioworker(io_size=8, iops=12345, time=2, output_io_per_second=ios).start().close()
    if r.latency_max_intended_us < 50_000:
        assert all(12000 < n < 12700 for n in ios), ios
    else:
        assert 2 * 12000 < sum(ios) < 2 * 12700, (ios, r.latency_max_intended_us)


@pytest.mark.device
def test_ioworker_io_flags(nvme0n1):
    """io_flags=4000h (FUA) writes run.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.6 Write
    (FUA).

    Steps:
    1. Run 1 s of FUA writes.
    """
    # write with FUA
    r = nvme0n1.ioworker(io_size=8, read_percentage=0, io_flags=0x4000, time=1).start().close()
    assert r.io_count_write > 0 and r.error == 0


@pytest.mark.device
def test_ioworker_jedec_workload(nvme0n1):
    """The JEDEC client workload (size mix, LBA distribution) writes.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run 1 s with the JEDEC size mix and 100-region distribution, QD 32.
    2. Check writes were done.
    """
    distribution = [1000] * 5 + [200] * 15 + [25] * 80
    iosz_distribution = {
        1: 4,
        2: 1,
        3: 1,
        4: 1,
        5: 1,
        6: 1,
        7: 1,
        8: 67,
        16: 10,
        32: 7,
        64: 3,
        128: 3,
    }
    r = (
        nvme0n1.ioworker(
            io_size=iosz_distribution,
            lba_random=True,
            qdepth=32,
            distribution=distribution,
            read_percentage=0,
            ptype=0xBEEF,
            pvalue=100,
            time=1,
        )
        .start()
        .close()
    )
    assert r.io_count_write > 0


@pytest.mark.device
def test_ioworker_pvalue(nvme0n1):
    """Writes with a compressible random pattern (ptype BEEFh, pvalue 100) run.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run 1 s of writes with the pattern.
    2. Check writes ran, 8 blocks each at most (a random IO that would pass the namespace's end
       is cut there, as pynvme does).
    """
    r = (
        nvme0n1.ioworker(io_size=8, ptype=0xBEEF, pvalue=100, read_percentage=0, time=1)
        .start()
        .close()
    )
    assert r.io_count_write > 0 and 0 < r.lba_count_write <= 8 * r.io_count_write


@pytest.mark.device
def test_ioworker_io_sequence(nvme0n1):
    """io_sequence replays a write then a read at a given time.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Replay write at 0 s and read at 1 s.
    2. Check one of each and a run of at least 1 s.
    """
    r = (
        nvme0n1.ioworker(io_sequence=[(0, 1, 2, 0), (0, 1, 1, 1000000)], ptype=0, pvalue=0)
        .start()
        .close()
    )
    assert (r.io_count_read, r.io_count_write) == (1, 1)
    assert r.mseconds >= 1000


@pytest.mark.device
def test_ioworker_slow_latency(nvme0n1):
    """No IO exceeds the slow_latency threshold of 2 s.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run 1 s with slow_latency 2 s; check latency_max_us.
    """
    r = nvme0n1.ioworker(io_size=8, slow_latency=2_000_000, time=1).start().close()
    assert r.latency_max_us < 2_000_000


@pytest.mark.device
def test_ioworker_exit_on_error(nvme0n1):
    """exit_on_error=False: a run without errors reports error 0.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run 1 s; check error is 0.
    """
    r = nvme0n1.ioworker(io_size=8, exit_on_error=False, time=1).start().close()
    assert r.error == 0


@pytest.mark.device
def test_ioworker_output_io_per_second(nvme0n1):
    """A 2 s run fills two non-zero per-second counts.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run 2 s with output_io_per_second.
    2. Check two non-zero entries.
    """
    io_per_second = []
    nvme0n1.ioworker(io_size=8, time=2, output_io_per_second=io_per_second).start().close()
    logging.info(io_per_second)
    assert len(io_per_second) == 2 and all(io_per_second)


@pytest.mark.device
def test_ioworker_output_percentile_latency(nvme0n1):
    """Latency percentiles are ordered and the distribution has 1,000,000 buckets.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run 1 s asking for 99, 99.9, 99.999 percentiles.
    2. Check their order and the distribution length.
    """
    percentile_latency = dict.fromkeys([99, 99.9, 99.999])
    r = (
        nvme0n1.ioworker(io_size=8, time=1, output_percentile_latency=percentile_latency)
        .start()
        .close()
    )
    logging.info(percentile_latency)
    assert percentile_latency[99] <= percentile_latency[99.9] <= percentile_latency[99.999]
    assert len(r.latency_distribution) == 1_000_000


@pytest.mark.device
def test_ioworker_output_percentile_latency_opcode(nvme0n1):
    """Latency output restricted to DSM counts only DSM commands.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.3 Dataset
    Management.

    Steps:
    1. Run a mix with latency for opcode 09h only.
    2. Check the distribution's total.
    """
    percentile_latency = dict.fromkeys([99, 99.9, 99.999])
    op = {2: 40, 9: 30, 1: 30}
    r = (
        nvme0n1.ioworker(
            op_percentage=op,
            io_size=8,
            time=1,
            output_percentile_latency=percentile_latency,
            output_percentile_latency_opcode=9,
        )
        .start()
        .close()
    )
    assert sum(r.latency_distribution) == op[9]


@pytest.mark.device
def test_power_cycle_dirty(nvme0, nvme0n1, subsystem):
    """A dirty power cycle after a write ioworker; the controller comes back.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVMe 2.0 base spec 3.6 (power loss
    without shutdown).

    Steps:
    1. Run 1 s of 128 KiB writes with a command log of 1000.
    2. Power off and on without notification; reinitialise.
    3. Check the log holds 1000 writes.
    """
    cmdlog_list = [None] * 1000
    # 128K random write
    with nvme0n1.ioworker(
        io_size=256,
        lba_align=256,
        lba_random=True,
        read_percentage=0,
        region_end=256 * 1000,
        time=1,
        output_cmdlog_list=cmdlog_list,
    ) as w:
        time.sleep(0.5)
        # sudden power loss before the ioworker end
        subsystem.poweroff()
    # power on and reset controller
    subsystem.poweron()
    start = time.time()
    nvme0.reset()
    logging.info("controller ready after %.3f s", time.time() - start)
    # the latest writes (at most 1000) are in the list; those the power loss cut are not errors
    # (00/08, counted in io_count_aborted: none when the worker had nothing in flight at that
    # instant, as seen once on QEMU's controller)
    r = w.close()
    assert r.error == 0
    assert sum(1 for e in cmdlog_list if e[2] == 1) == min(1000, r.io_count_write)


@pytest.mark.device
def test_ioworker_cmdlog_error_only(nvme0n1):
    """cmdlog_error_only keeps only failed commands: none in a clean run.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run 1 s with an error-only log of 10.
    2. Check every entry is empty.
    """
    errors = [None] * 10
    nvme0n1.ioworker(
        io_size=8, time=1, cmdlog_error_only=True, output_cmdlog_list=errors
    ).start().close()
    assert errors == [(0, 0, 0, 0, 0, 0)] * 10


@pytest.mark.device
def test_ioworker_full_disk(nvme0n1):
    """A sequential read covers the region (first 64 MiB) exactly.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Read sequentially up to min(NSZE, 2^17) at QD 16.
    2. Check the LBAs read.
    """
    ns_size = min(nvme0n1.id_data(7, 0), 1 << 17)  # the first 64 MiB on a 512-byte format
    r = (
        nvme0n1.ioworker(
            io_size=8, lba_random=False, region_end=ns_size, qdepth=16, read_percentage=100
        )
        .start()
        .close()
    )
    assert r.lba_count_read == ns_size


@pytest.mark.device
def test_ioworker_qpair(nvme0n1):
    """A 4 KiB random write ioworker at QD 16 over 2^17 LBAs runs on its own qpair.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Run 1 s of aligned random writes over the region; any error fails the test.
    """
    # 4K full disk random write (a region of it here)
    log = [None] * 1000
    r = (
        nvme0n1.ioworker(
            io_size=8,
            lba_align=8,
            lba_random=True,
            qdepth=16,
            region_end=1 << 17,
            read_percentage=0,
            time=1,
            output_cmdlog_list=log,
        )
        .start()
        .close()
    )
    assert r.io_count_write > 0
    assert all(e[0] % 8 == 0 and e[0] + e[1] <= 1 << 17 for e in log if e[1])


@pytest.mark.device
def test_reset_controller_reset_ioworker(nvme0, nvme0n1):
    """A controller reset one second into a 2 s ioworker.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVMe 2.0 base spec 3.7.2
    Controller Reset.

    Steps:
    1. Run a 2 s ioworker; reset after 1 s.
    2. Any error fails the test.
    """
    # issue controller reset while ioworker is running
    with nvme0n1.ioworker(io_size=8, time=2) as w:
        time.sleep(1)
        nvme0.reset()
    # IO went on in the second after the reset.
    assert w.close().io_count_per_second[-1] > 0


@pytest.mark.device
def test_ioworker_cpu_id(nvme0, nvme0n1):
    """Two ioworkers pinned to CPUs run and report their IOPS.

    Spec: PyNVMe3 Script Development Guide ioworker example; NVM command set spec 3.2.4 Read,
    3.2.6 Write.

    Steps:
    1. Start two random read workers, each on a CPU of the affinity set.
    2. Check they completed IO.
    """
    cpus = sorted(os.sched_getaffinity(0))
    qcount = 2
    iosize = 8
    iok = iosize * nvme0n1.sector_size / 1024 / 1024
    workers = []
    for i in range(qcount):
        a = nvme0n1.ioworker(
            io_size=iosize,
            lba_align=iosize,
            region_end=1 << 20,
            lba_random=True,
            qdepth=16,
            read_percentage=100,
            time=1,
            cpu_id=cpus[i % len(cpus)],
        ).start()
        workers.append(a)
    io_total = 0
    for a in workers:
        r = a.close()
        io_total += r.io_count_read + r.io_count_nonread
    logging.info("Q %d IOPS: %.3fK, %dMB/s", qcount, io_total / 1000, io_total * iok)
    assert io_total > 0
