"""The IO generator seen from a script: `Namespace.ioworker(...)` on the simulated SSD.

Every parameter and output, pynvme's argument checks, exact LBA sequences, throttling, verified
overlapping workers, workers through resets, many workers, and device errors. Any warning a test
does not expect fails it.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest

import nvme
from nvme import Buffer, Controller, Namespace, NvmeArgumentError, Pcie, Qpair

pytestmark = [
    pytest.mark.skipif(not nvme.native_available(), reason="nvme._native is not built"),
    pytest.mark.filterwarnings("error::UserWarning"),
    pytest.mark.device,
]


def lbas(cmdlog):
    return [e[0] for e in cmdlog if e[1]]


# ---- the guide's examples ----------------------------------------------------------------------


def test_guide_random_4k_write(nvme0n1):
    log = [None] * 500
    r = (
        nvme0n1.ioworker(
            io_size=8,
            lba_align=8,
            lba_random=True,
            read_percentage=0,
            time=1,
            output_cmdlog_list=log,
        )
        .start()
        .close()
    )
    assert r.io_count_write > 500
    assert r.io_count_read == 0
    assert r.io_count_nonread == r.io_count_write
    assert r.lba_count_write == 8 * r.io_count_write
    assert all(lba % 8 == 0 for lba in lbas(log))
    assert 1000 <= r.mseconds < 3000
    assert r.error == 0


def test_with_statement_runs_beside_the_script(nvme0, nvme0n1):
    seen = []
    with nvme0n1.ioworker(io_size=8, time=1) as w:
        assert w.running
        while w.running:
            seen.append(nvme0.iostat())
            nvme0.getfeatures(7).waitdone()  # admin commands while it runs
            time.sleep(0.1)
    r = w.close()
    assert r.io_count_read > 0
    assert not w.running
    assert max(s[1] for s in seen) > 0, "iostat saw the worker's IO"


def test_io_size_forms(nvme0n1):
    for io_size, want in [
        ([8, 16, 256], {8, 16, 256}),
        ({8: 50, 16: 25, 256: 25}, {8, 16, 256}),
        (range(1, 4), {1, 2, 3}),
        (4, {4}),
    ]:
        log = [None] * 300
        nvme0n1.ioworker(io_size=io_size, io_count=300, output_cmdlog_list=log).start().close()
        assert {e[1] for e in log} == want, io_size


def test_io_size_weights_shape_the_mix(nvme0n1):
    log = [None] * 4000
    nvme0n1.ioworker(io_size={1: 90, 8: 10}, io_count=4000, output_cmdlog_list=log).start().close()
    ones = sum(1 for e in log if e[1] == 1)
    assert 3400 < ones < 3800


def test_lba_align_per_size(nvme0n1):
    log = [None] * 400
    nvme0n1.ioworker(
        io_size=[1, 8], lba_align=[1, 8], io_count=400, output_cmdlog_list=log
    ).start().close()
    assert all(e[0] % 8 == 0 for e in log if e[1] == 8)
    assert any(e[0] % 8 != 0 for e in log if e[1] == 1)


# ---- how long it runs ----------------------------------------------------------------------------


def test_time_limits_the_run(nvme0n1):
    t = time.time()
    r = nvme0n1.ioworker(io_size=8, time=2).start().close()
    assert 2.0 <= time.time() - t < 4
    assert 2000 <= r.mseconds < 3000


def test_io_count_sends_exactly_that_many(nvme0n1):
    r = nvme0n1.ioworker(io_size=8, io_count=10000).start().close()
    assert r.io_count_read == 10000
    r = nvme0n1.ioworker(io_size=8, io_count=1).start().close()
    assert (r.io_count_read, r.io_count_nonread) == (1, 0)


def test_lba_count_stops_after_that_many_blocks(nvme0n1):
    r = nvme0n1.ioworker(io_size=[8, 16], lba_count=8000, qdepth=1).start().close()
    assert 8000 <= r.lba_count_read < 8016


def test_sequential_without_limit_makes_one_pass(nvme0n1):
    log = [None] * 20
    r = (
        nvme0n1.ioworker(
            io_size=8, lba_random=False, region_start=1, region_end=77, output_cmdlog_list=log
        )
        .start()
        .close()
    )
    assert r.lba_count_read == 76
    # Completions may come in any order: the IOs, sorted, cover the region once.
    assert sorted(e[:2] for e in log if e[1]) == [(lba, 8) for lba in range(1, 73, 8)] + [(73, 4)]


def test_nothing_to_stop_it_is_refused(nvme0n1):
    with pytest.raises(NvmeArgumentError, match="when to stop the ioworker"):
        nvme0n1.ioworker(io_size=8).start()


# ---- LBAs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "step", "size", "count", "want"),
    [
        (0, 2, 1, 10, list(range(0, 20, 2))),
        (10, -1, 1, 10, list(range(10, 0, -1))),
        (10, 0, 1, 5, [10] * 5),
        (100, -4, 8, 5, [100, 96, 92, 88, 84]),
    ],
)
def test_lba_step_exact_sequences(nvme0n1, start, step, size, count, want):
    log = [None] * count
    nvme0n1.ioworker(
        io_size=size,
        lba_random=False,
        lba_start=start,
        lba_step=step,
        io_count=count,
        qdepth=1,
        output_cmdlog_list=log,
    ).start().close()
    assert lbas(log) == want


def test_region_bounds_every_io(nvme0n1):
    log = [None] * 1000
    nvme0n1.ioworker(
        io_size=8, region_start=0x10, region_end=0x100, io_count=1000, output_cmdlog_list=log
    ).start().close()
    assert all(0x10 <= e[0] and e[0] + e[1] <= 0x100 for e in log)


def test_lba_random_percentage(nvme0n1):
    log = [None] * 2000
    nvme0n1.ioworker(
        io_size=1, lba_random=50, io_count=2000, qdepth=1, output_cmdlog_list=log
    ).start().close()
    seq = sum(1 for a, b in zip(log, log[1:]) if b[0] == a[0] + 1)
    # Both of two consecutive IOs are sequential a quarter of the time.
    assert 380 < seq < 620


@pytest.mark.sim_only
def test_random_lbas_cover_a_32t_namespace():
    pcie = Pcie("sim://?capacity=32T&null=1")
    try:
        ns = Namespace(Controller(pcie), 1)
        log = [None] * 2000
        ns.ioworker(io_size=1, io_count=2000, output_cmdlog_list=log).start().close()
        nsze = ns.id_ns().nsze
        assert nsze > 2**35
        high = sum(1 for e in log if e[0] >= 2**31)
        assert high > 1880, "random LBAs reach past 2^31 (31 in 32 of them should)"
        assert 850 < sum(1 for e in log if e[0] >= nsze // 2) < 1150
        ns.close()
    finally:
        pcie.close()


def test_distribution_jedec_workload(nvme0n1):
    nsze = nvme0n1.id_ns().nsze
    distribution = [1000] * 5 + [200] * 15 + [25] * 80
    log = [None] * 5000
    nvme0n1.ioworker(
        io_size={1: 4, 8: 67, 16: 10, 32: 7, 64: 3, 128: 3, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1},
        lba_random=True,
        distribution=distribution,
        read_percentage=0,
        io_count=5000,
        output_cmdlog_list=log,
    ).start().close()
    first5 = sum(1 for e in log if e[0] < nsze * 5 // 100)
    assert 2200 < first5 < 2800, first5


def test_seed_repeats_a_run(nvme0n1):
    def run(seed):
        log = [None] * 100
        nvme0n1.ioworker(
            io_size=[1, 8], io_count=100, qdepth=1, seed=seed, output_cmdlog_list=log
        ).start().close()
        return [e[:2] for e in log]

    assert run(5) == run(5)
    assert run(5) != run(6)
    nvme.srand(11)
    a = run(None)
    nvme.srand(11)
    assert run(None) == a


def test_sequential_write_skips_uncorrectable_lbas(nvme0, nvme0n1, qpair, verify):
    if not nvme0.id_ctrl().oncs & 0x2:
        pytest.skip("the controller does not support Write Uncorrectable (ONCS bit 1)")
    nvme0n1.write_uncorrectable(qpair, 1000, 64).waitdone()
    log = [None] * 200
    nvme0n1.ioworker(
        io_size=1,
        lba_random=False,
        read_percentage=0,
        region_start=990,
        region_end=1100,
        output_cmdlog_list=log,
    ).start().close()
    written = lbas(log)
    assert 999 in written and 1064 in written
    assert not any(1000 <= lba < 1064 for lba in written)


# ---- opcodes and data ----------------------------------------------------------------------------


def test_read_percentage_mixes_reads_and_writes(nvme0n1):
    r = nvme0n1.ioworker(io_size=8, read_percentage=30, io_count=5000).start().close()
    assert 1200 < r.io_count_read < 1800
    assert r.io_count_write == 5000 - r.io_count_read


def test_op_percentage_any_opcode_and_actual_counts(nvme0n1, verify):
    ops = {2: 40, 9: 30, 1: 30}
    r = nvme0n1.ioworker(op_percentage=ops, io_size=8, io_count=6000).start().close()
    assert sum(ops.values()) == 6000, "the dict is overwritten with the counts"
    for op, share in [(2, 40), (9, 30), (1, 30)]:
        assert abs(ops[op] - share * 60) < 6 * share, ops
    assert r.io_count_nonread == ops[9] + ops[1]


def test_every_media_opcode(nvme0, nvme0n1, verify):
    # The optional commands the controller supports (ONCS), each with a share of the IO.
    oncs = nvme0.id_ctrl().oncs
    optional = {5: 0, 4: 1, 9: 2, 8: 3, 0xC: 7}
    ops = {op: 10 for op, bit in optional.items() if oncs >> bit & 1}
    ops[0] = 10
    ops[1] = (100 - sum(ops.values())) // 2
    ops[2] = 100 - sum(ops.values())
    with pytest.warns(UserWarning) as record:
        r = (
            nvme0n1.ioworker(
                op_percentage=ops, io_size=1, io_count=3000, region_end=64, exit_on_error=False
            )
            .start()
            .close()
        )
    # A read of an LBA written uncorrectable fails (02/81), and so does a compare of random
    # data (02/85): the device answers each opcode; nothing is a miscompare of verification.
    texts = {str(w.message) for w in record}
    assert texts <= {
        "ioworker device respond an ERROR status: 02/81",
        "ioworker device respond an ERROR status: 02/85",
    }, texts
    assert all(ops[op] > 0 for op in ops), ops
    assert r.io_count_read + r.io_count_nonread == 3000


def test_sgl_writes_read_back_verified(nvme0n1, verify):
    nvme0n1.ioworker(
        io_size=8, lba_random=False, region_end=4096, read_percentage=0, sgl_percentage=100
    ).start().close()
    r = (
        nvme0n1.ioworker(io_size=8, lba_random=False, region_end=4096, sgl_percentage=50)
        .start()
        .close()
    )
    assert r.lba_count_read == 4096
    assert r.error == 0


def test_write_pattern_and_stamps(nvme0n1, qpair, verify):
    nvme0n1.ioworker(
        io_size=8,
        lba_random=False,
        region_end=64,
        read_percentage=0,
        ptype=32,
        pvalue=0x55555555,
    ).start().close()
    b = Buffer(512)
    nvme0n1.read(qpair, b, 9).waitdone()
    assert b[0] == 9, "the first 8 bytes name the LBA"
    assert b[8:16] == b"\x55" * 8


def test_default_write_data_does_not_compress(nvme0n1, qpair):
    nvme0n1.ioworker(io_size=8, lba_random=False, region_end=8, read_percentage=0).start().close()
    b = Buffer(4096)
    nvme0n1.read(qpair, b, 0, 8).waitdone()
    assert len(zlib.compress(b[0:4096])) > 4000


def test_io_sequence_is_replayed(nvme0n1):
    log = [None] * 2
    t = time.time()
    r = (
        nvme0n1.ioworker(
            io_sequence=[(0, 1, 2, 0), (0, 1, 1, 500000)],
            ptype=0,
            pvalue=0,
            output_cmdlog_list=log,
        )
        .start()
        .close()
    )
    assert time.time() - t >= 0.5
    assert (r.io_count_read, r.io_count_write) == (1, 1)
    assert [e[2] for e in log] == [2, 1]
    assert log[1][3] >= 500000
    assert "latency_percentiles_intended" in r


def test_io_flags_range_is_checked(nvme0n1):
    r = nvme0n1.ioworker(io_size=8, read_percentage=0, io_flags=0x4000, io_count=100)
    assert r.start().close().io_count_write == 100
    with pytest.raises(NvmeArgumentError, match="io_flags"):
        nvme0n1.ioworker(io_size=8, io_flags=1 << 16, io_count=1)


# ---- pace ----------------------------------------------------------------------------------------


def test_iops_throttle_per_second(nvme0n1):
    # A rate any device and host here can keep, an emulated one included: the throttle's
    # accuracy is what is checked (12345/s, the guide's rate, is in the sim-only test below).
    ios = []
    r = nvme0n1.ioworker(io_size=1, iops=1500, time=3, output_io_per_second=ios).start().close()
    assert len(ios) == 3
    # Sent on schedule, 4500 in 3 s (a loaded machine may hold the worker back: within 2 %);
    # counted by completion time, so an IO sent at a second's end may count in the next: each
    # second within 5 %.
    assert 4410 <= sum(ios) <= 4501, ios
    assert all(1425 <= n <= 1575 for n in ios), ios
    assert r.iops_consistency > 0.9


@pytest.mark.sim_only
def test_iops_throttle_at_the_guides_rate(nvme0n1):
    ios = []
    nvme0n1.ioworker(io_size=1, iops=12345, time=2, output_io_per_second=ios).start().close()
    assert len(ios) == 2
    assert all(12000 <= n <= 12700 for n in ios), ios


@pytest.mark.sim_only
def test_qdepth_bounds_the_outstanding_commands(nvme0n1, sim):
    sim.inject("delay", 2, opcode=2)
    peaks = []
    with nvme0n1.ioworker(io_size=1, qdepth=127, time=1) as w:
        while w.running:
            peaks.append(w.progress()["outstanding"])
            time.sleep(0.01)
    assert max(peaks) == 127


@pytest.mark.sim_only
def test_slow_latency_warns(nvme0n1, sim):
    # Far apart, so that a loaded machine does not make another IO count as slow.
    sim.inject("delay", 300, opcode=2, count=3)
    with pytest.warns(UserWarning, match="ioworker: 3 IOs slower than 100000 us"):
        r = nvme0n1.ioworker(io_size=1, io_count=100, slow_latency=100000).start().close()
    assert r.latency_max_us >= 300000


# ---- outputs -------------------------------------------------------------------------------------


def test_result_fields(nvme0n1):
    r = nvme0n1.ioworker(io_size=8, io_count=100).start().close()
    for k in [
        "io_count_read",
        "io_count_nonread",
        "io_count_write",
        "lba_count_read",
        "lba_count_nonread",
        "lba_count_write",
        "mseconds",
        "latency_max_us",
        "latency_average_us",
        "latency_distribution",
        "error",
        "error_cmd",
        "error_cpl",
        "cpu_usage",
        "test_start_sec",
        "test_start_nsec",
    ]:
        assert getattr(r, k) == r[k]
    assert r.latency_distribution is None
    assert r.error_cmd == [0] * 16
    assert abs(r.test_start_sec - time.time()) < 10
    assert 0 < r.cpu_usage <= 1.5
    assert r.latency_average_us <= r.latency_max_us


def test_percentile_latency_and_distribution(nvme0n1):
    pct = dict.fromkeys([50, 99, 99.9, 99.999])
    r = nvme0n1.ioworker(io_size=8, io_count=20000, output_percentile_latency=pct).start().close()
    values = [pct[k] for k in sorted(pct)]
    assert values == sorted(values) and values[0] > 0
    assert values[-1] <= r.latency_max_us + 1
    assert len(r.latency_distribution) == 1_000_000
    assert sum(r.latency_distribution) == 20000


def test_percentile_latency_of_one_opcode(nvme0n1):
    pct = dict.fromkeys([99])
    ops = {2: 40, 9: 30, 1: 30}
    r = (
        nvme0n1.ioworker(
            op_percentage=ops,
            io_size=8,
            io_count=3000,
            output_percentile_latency=pct,
            output_percentile_latency_opcode=9,
        )
        .start()
        .close()
    )
    assert sum(r.latency_distribution) == ops[9]


@pytest.mark.sim_only
def test_cmdlog_list_entries_and_error_only(nvme0n1, sim):
    log = [None] * 10
    nvme0n1.ioworker(io_size=8, io_count=5, output_cmdlog_list=log).start().close()
    assert all(len(e) == 6 for e in log)
    assert [e[5] for e in log[:5]] == [0] * 5
    assert log[5:] == [(0, 0, 0, 0, 0, 0)] * 5
    assert all(e[4] >= e[3] for e in log[:5])
    sim.inject("status", 0x0281, opcode=2, count=2)
    errors = [None] * 4
    with pytest.warns(UserWarning, match="ioworker device respond an ERROR status: 02/81"):
        r = (
            nvme0n1.ioworker(
                io_size=1,
                io_count=200,
                exit_on_error=False,
                cmdlog_error_only=True,
                output_cmdlog_list=errors,
            )
            .start()
            .close()
        )
    assert [e[5] for e in errors[:2]] == [0x0281, 0x0281]
    assert errors[2:] == [(0, 0, 0, 0, 0, 0)] * 2
    assert r.io_count_read == 200
    assert r.error == 0x0281


@pytest.mark.sim_only
def test_exit_on_error_stops_at_the_first_failure(nvme0n1, sim):
    sim.inject("status", 0x0281, opcode=2, count=1)
    with pytest.warns(UserWarning, match="ioworker device respond an ERROR status: 02/81"):
        r = nvme0n1.ioworker(io_size=1, io_count=100000).start().close()
    assert r.io_count_read < 1000
    assert r.error == 0x0281
    assert r.error_cpl[3] >> 17 == 0x0281
    assert r.error_cmd[0] & 0xFF == 2


@pytest.mark.sim_only
def test_a_dropped_completion_times_out_in_the_worker(nvme0, nvme0n1, sim):
    nvme0.timeout = 500
    sim.inject("drop", opcode=2, count=1)
    with pytest.warns(UserWarning, match="ERROR status: 07/ff"):
        r = nvme0n1.ioworker(io_size=1, io_count=50).start().close()
    assert r.error == 0x07FF


@pytest.mark.sim_only
@pytest.mark.parametrize("exit_on_error", [True, False])
def test_a_device_that_dies_under_a_worker_ends_it_in_bounded_time(
    nvme0, nvme0n1, sim, subsystem, exit_on_error
):
    nvme0.timeout = 500
    t0 = time.time()
    with pytest.warns(UserWarning, match="ioworker device respond an ERROR status: 07/ff"):
        # Timed-out IO is an error here, not a slow IO (a loaded machine may see the timeout
        # late, past the default 1 s slow_latency).
        with nvme0n1.ioworker(
            io_size=8, time=2, exit_on_error=exit_on_error, slow_latency=30_000_000
        ) as w:
            time.sleep(0.3)
            sim.surprise_removal()
    r = w.close()
    # Its time, plus the command timeout for what was outstanding, plus a little.
    assert time.time() - t0 < 2 + 0.5 + 1.5
    assert r.error == 0x07FF
    assert r.io_count_read > 0
    sim.reinsert()
    subsystem.power_cycle(0)
    nvme0.reset()
    r = nvme0n1.ioworker(io_size=8, io_count=100).start().close()
    assert r.io_count_read == 100


@pytest.mark.sim_only
def test_miscompare_ends_the_worker(nvme0n1, sim, verify):
    nvme0n1.ioworker(
        io_size=8, lba_random=False, region_end=1024, read_percentage=0
    ).start().close()
    sim.inject("flip_bits", 1, opcode=2, count=1)
    with pytest.warns(UserWarning, match="ERROR status: 07/81"):
        r = nvme0n1.ioworker(io_size=8, region_end=1024, io_count=1000).start().close()
    assert r.error == 0x0781
    assert len(r.miscompares) == 1


def test_iops_consistency_needs_the_series(nvme0n1):
    w = nvme0n1.ioworker(io_size=8, io_count=10)
    w.start().close()
    with pytest.raises(NvmeArgumentError, match="iops consistency data is not collected"):
        w.iops_consistency()


# ---- argument checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "arg", "text"),
    [
        ({"io_size": 0}, "io_size", "io_size cannot be 0"),
        ({"io_size": 65537}, "io_size", "16bit-field"),
        ({"lba_align": 0}, "lba_align", "lba_align cannot be 0"),
        ({"io_size": [1, 8], "lba_align": [1]}, "lba_align", "size and align not match"),
        ({"lba_random": 101}, "lba_random", "0-100"),
        ({"lba_random": "x"}, "lba_random", "percentage, int"),
        ({"read_percentage": 101}, "read_percentage", "0..100"),
        ({"op_percentage": {2: 50, 1: 40}}, "op_percentage", "definition error"),
        ({"time": 1000 * 3600 + 1}, "time", "worker needs a rest"),
        ({"distribution": [100] * 99}, "distribution", "100 equal sections"),
        ({"distribution": [10] * 100}, "distribution", "10000 IO"),
        ({"distribution": [100] * 100, "lba_random": 50}, "distribution", "all random"),
        ({"output_percentile_latency": {100: None}}, "output_percentile_latency", "(0, 100)"),
        ({"io_sequence": [(0, 1, 2, 0)], "iops": 10}, "iops", "run sequence instead"),
        ({"region_start": 10, "region_end": 10}, "region_end", "empty"),
        ({"qdepth": 0}, "qdepth", "is not 1.."),
        ({"qdepth": 5000}, "qdepth", "is not 1.."),
    ],
)
def test_argument_errors_name_the_argument(nvme0n1, kw, arg, text):
    kw.setdefault("io_count", 1)
    with pytest.raises(NvmeArgumentError) as e:
        nvme0n1.ioworker(**kw).start()
    assert str(e.value).startswith(f"{arg}:")
    assert text in str(e.value)


def test_parameters_are_keywords_only(nvme0n1):
    with pytest.raises(TypeError):
        nvme0n1.ioworker(8)


# ---- many workers, overlap, resets ---------------------------------------------------------------


def test_overlapping_verified_workers_never_miscompare(nvme0n1, verify):
    # A count, not a time: on a slow device (an emulated one on a loaded machine) one second
    # held too few IOs for the workers to overlap much.
    workers = [
        nvme0n1.ioworker(
            io_size=[1, 8],
            op_percentage={2: 40, 1: 40, 9: 10, 8: 10},
            region_end=512,
            qdepth=16,
            io_count=1000,
            time=60,
            # A command waits for the other workers' commands on its LBAs (fairly: it claims
            # them after 2 ms); on an emulated device at a high load that can pass the default
            # 1 s. Not a slow device.
            slow_latency=60_000_000,
        ).start()
        for _ in range(4)
    ]
    results = [w.close() for w in workers]
    assert all(r.error == 0 for r in results)
    assert [r.io_count_read + r.io_count_nonread for r in results] == [1000] * 4
    assert sum(r.io_count_read for r in results) > 1000


def test_script_io_beside_a_worker_on_the_same_lbas(nvme0n1, qpair, verify):
    b = Buffer(4096)
    with nvme0n1.ioworker(io_size=8, region_end=64, read_percentage=50, time=1) as w:
        n = 0
        while w.running:
            nvme0n1.write(qpair, b, n % 8 * 8, 8).waitdone()
            nvme0n1.read(qpair, b, n % 8 * 8, 8).waitdone()
            n += 1
    assert n > 10


def test_controller_reset_while_workers_run(nvme0, nvme0n1, verify):
    workers = [
        nvme0n1.ioworker(io_size=8, read_percentage=50, region_end=1 << 16, time=2).start()
        for _ in range(4)
    ]
    for _ in range(4):
        time.sleep(0.3)
        nvme0.reset()
    results = [w.close() for w in workers]
    assert all(r.error == 0 for r in results)
    assert sum(r.io_count_aborted for r in results) > 0
    assert all(r.io_count_read > 100 for r in results)
    # The controller and a new qpair work after.
    q = Qpair(nvme0, 8)
    nvme0n1.read(q, Buffer(4096), 0, 8).waitdone()
    q.delete()


@pytest.mark.sim_only
@pytest.mark.parametrize(
    "event",
    [
        "controller reset",
        "flr",
        "hot reset",
        "subsystem reset",
        "dirty power cycle",
        "clean power cycle",
    ],
)
def test_workers_go_on_through_each_lifecycle_event(nvme0, nvme0n1, pcie, subsystem, verify, event):
    def happen():
        if event == "flr":
            pcie.flr()
        elif event == "hot reset":
            pcie.reset()
        elif event == "subsystem reset":
            subsystem.reset()
        elif event == "dirty power cycle":
            subsystem.poweroff()
            subsystem.poweron()
        elif event == "clean power cycle":
            subsystem.shutdown_notify()
            subsystem.poweroff()
            subsystem.poweron()
        nvme0.reset()

    workers = [
        nvme0n1.ioworker(
            io_size=8, read_percentage=50, region_end=1 << 14, qdepth=16, time=1.5
        ).start()
        for _ in range(4)
    ]
    time.sleep(0.3)
    happen()
    time.sleep(0.3)
    happen()
    results = [w.close() for w in workers]
    assert all(r.error == 0 for r in results), [r.error_cpl for r in results]
    assert sum(r.io_count_aborted for r in results) > 0
    # Every worker did IO after the second event: its last IOs completed late in its run.
    assert all(r.io_count_per_second[-1] > 0 for r in results)


def test_guide_reset_during_ioworker(nvme0, nvme0n1):
    with nvme0n1.ioworker(io_size=1, iops=1000, time=2):
        time.sleep(0.5)
        nvme0[0x14] = 0
        nvme0.wait_csts(rdy=False)
        nvme0.reset()


@pytest.mark.sim_only
def test_sixty_four_workers_at_once():
    pcie = Pcie("sim://?queues=80")
    try:
        nvme0 = Controller(pcie)
        ns = Namespace(nvme0, 1)
        # Long enough that the first is still running when a loaded machine started the last.
        workers = [ns.ioworker(io_size=8, time=60, qdepth=8).start() for _ in range(64)]
        assert len({w.qid for w in workers}) == 64
        assert all(w.running for w in workers)
        time.sleep(0.5)
        for w in workers:
            w.stop()
        results = [w.close() for w in workers]
        assert all(r.io_count_read > 0 and r.error == 0 for r in results)
        ns.close()
    finally:
        pcie.close()


@pytest.mark.sim_only
def test_no_free_queue_is_a_clear_error():
    pcie = Pcie("sim://?queues=2")
    try:
        ns = Namespace(Controller(pcie), 1)
        workers = [ns.ioworker(io_size=8, time=1).start() for _ in range(2)]
        with pytest.raises(nvme.QpairCreationError, match="all 2 IO queues are in use"):
            ns.ioworker(io_size=8, time=1).start()
        assert all(w.close().io_count_read > 0 for w in workers)
        ns.close()
    finally:
        pcie.close()


def test_cpu_id_pins_the_worker_thread(nvme0n1):
    cpu = max(os.sched_getaffinity(0))
    found = []

    def look(qid):
        for task in Path("/proc/self/task").iterdir():
            try:
                if (task / "comm").read_text().strip() == f"ioworker-q{qid}":
                    status = (task / "status").read_text()
                    found.append(
                        next(
                            line.split()[1]
                            for line in status.splitlines()
                            if line.startswith("Cpus_allowed_list")
                        )
                    )
            except OSError:
                pass

    with nvme0n1.ioworker(io_size=8, time=1, cpu_id=cpu) as w:
        time.sleep(0.2)
        look(w.qid)
    assert found == [str(cpu)]


def test_progress_moves_while_running(nvme0n1):
    with nvme0n1.ioworker(io_size=8, time=1) as w:
        time.sleep(0.3)
        a = w.progress()
        time.sleep(0.3)
        b = w.progress()
    assert b["reads"] > a["reads"] > 0
    assert b["elapsed"] > a["elapsed"]


def test_workers_from_threads(nvme0n1):
    results = []

    def run():
        results.append(nvme0n1.ioworker(io_size=8, io_count=1000).start().close())

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.io_count_read for r in results] == [1000] * 4


# ---- progress line -------------------------------------------------------------------------------

WORKER_SCRIPT = """
import nvme
pcie = nvme.Pcie("sim://?null=1")
ns = nvme.Namespace(nvme.Controller(pcie), 1)
r = ns.ioworker(io_size=8, time=2.5).start().close()
print("reads", r.io_count_read > 0)
ns.close()
pcie.close()
"""


@pytest.mark.sim_only
def test_a_worker_shows_its_progress_line_on_a_terminal_only():
    import test_report  # noqa: PLC0415 - the pseudo-terminal runner of the report tests

    out = test_report._run_in_pty([sys.executable, "-c", WORKER_SCRIPT])
    assert "reads True" in out
    assert re.search(r"\[r=[\d.]+[kM]? w=0 IOPS\]\[[\d.]+MB/s\]\[lat avg \d+us", out), out
    assert re.search(r"\[00:0[12]/00:0[23] \d+%\]", out), out
    piped = subprocess.run(
        [sys.executable, "-c", WORKER_SCRIPT],
        capture_output=True,
        text=True,
        env=test_report._python_env(),
        timeout=60,
        check=True,
    )
    assert piped.stdout == "reads True\n"
    assert piped.stderr == ""


# ---- run report ----------------------------------------------------------------------------------


@pytest.mark.sim_only
def test_a_worker_lands_in_the_run_report(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(
        test_run="""
def test_load(nvme0n1):
    r = nvme0n1.ioworker(io_size=8, read_percentage=50, time=2).start().close()
    assert r.io_count_read > 0
"""
    )
    pytester.runpytest_subprocess("-p", "nvme.pytest_plugin").assert_outcomes(passed=1)
    (folder,) = sorted((pytester.path / "results").iterdir())
    doc = json.loads((folder / "results.json").read_text())
    (test,) = doc["tests"]
    (worker,) = test["ioworkers"]
    assert worker["args"]["read_percentage"] == 50
    per_second = worker["result"]["io_count_per_second"]
    assert len(per_second) == 2 and all(per_second)
    assert worker["result"]["latency_percentiles"]["99.9"] > 0
    csvs = sorted(p.name for p in folder.glob("test_load_ioworker1*.csv"))
    pngs = sorted(folder.glob("test_load_ioworker1*.png"))
    assert csvs and pngs
    assert all(p.stat().st_size > 1000 for p in pngs)


@pytest.mark.sim_only
def test_plots_can_be_left_out_of_the_report(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(
        test_run="""
def test_load(nvme0n1):
    nvme0n1.ioworker(io_size=8, io_count=1000).start().close()
"""
    )
    pytester.runpytest_subprocess("-p", "nvme.pytest_plugin", "--plots=0").assert_outcomes(passed=1)
    (folder,) = sorted((pytester.path / "results").iterdir())
    assert list(folder.glob("test_load_ioworker1*.csv"))
    assert not list(folder.glob("*.png"))


@pytest.mark.sim_only
def test_workers_started_together_start_together(nvme0n1):
    workers = [nvme0n1.ioworker(io_size=8, time=1, qdepth=8) for _ in range(8)]
    t0 = time.time()
    nvme.IOWorker.start_together(*workers)
    results = [w.close() for w in workers]
    starts = [r.test_start_sec + r.test_start_nsec / 1e9 for r in results]
    # Released by one gate: their clocks start within scheduling noise of each other.
    assert max(starts) - min(starts) < 0.05, starts
    assert min(starts) >= t0
    assert all(r.io_count_read > 0 for r in results)


def test_start_together_cleans_up_when_one_cannot_start(nvme0n1):
    good = nvme0n1.ioworker(io_size=8, time=5)
    bad = nvme0n1.ioworker(io_size=8, time=5, qdepth=5000)
    t0 = time.time()
    with pytest.raises(NvmeArgumentError, match="qdepth"):
        nvme.IOWorker.start_together(good, bad)
    assert not good.running
    assert time.time() - t0 < 2, "the worker already made was stopped, not run for its time"


FW_DEBUG_SCRIPT = """
import nvme
pcie = nvme.Pcie("sim://")
nvme0 = nvme.Controller(pcie)
ns = nvme.Namespace(nvme0, 1)
pcie.sim.inject("status", 0x0081, opcode=2, count=1)
r = ns.ioworker(io_size=8, io_count=20, region_end=1024, fw_debug={fw_debug}).start().close()
print("close returned", hex(r.error))
"""


@pytest.mark.sim_only
@pytest.mark.parametrize("fw_debug", [True, False])
def test_fw_debug_ends_the_test_process_on_a_failed_run(fw_debug):
    """pynvme's fw_debug: a run that ends on a failing IO ends the process in close(), with
    the error's SC as exit status, the drive left as it is; without it close() returns."""
    p = subprocess.run(
        [sys.executable, "-c", FW_DEBUG_SCRIPT.format(fw_debug=fw_debug)],
        # Its own simulated SSD, whose DMA memory is the heap's whatever this session uses.
        env={k: v for k, v in os.environ.items() if k != "PYNVME_DMA_MEMORY"},
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if fw_debug:
        assert p.returncode == 0x81, (p.returncode, p.stderr)
        assert "close returned" not in p.stdout
        assert "ioworker fw_debug: the device responded an ERROR status 00/81" in p.stderr
        assert "qpair 1 is left on the device" in p.stderr, p.stderr
    else:
        assert p.returncode == 0, p.stderr
        assert "close returned 0x81" in p.stdout
