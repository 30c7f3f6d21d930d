"""Errors: device statuses are warnings, script mistakes are exceptions naming the argument.

A failing completion is the UserWarning "ERROR status: SCT/SC" and never an exception; every bad
argument raises NvmeArgumentError, which is both a ValueError and an AssertionError (pynvme
scripts catch the latter) and whose message starts with the argument's name.
"""

import warnings

import pytest

from nvme import *


def argument_error(call, name):
    """Run `call`, check it raises NvmeArgumentError naming `name`, return the exception."""
    with pytest.raises(NvmeArgumentError) as info:
        call()
    assert str(info.value).startswith(f"{name}:"), f"message does not name {name}: {info.value}"
    return info.value


def test_argument_error_is_value_and_assertion_error():
    assert issubclass(NvmeArgumentError, ValueError)
    assert issubclass(NvmeArgumentError, AssertionError)
    with pytest.raises(ValueError):
        Buffer(0)
    with pytest.raises(AssertionError):
        Buffer(0)


def test_exception_classes_exported():
    for cls in (
        NvmeEnumerateError,
        NvmeDeletionError,
        QpairCreationError,
        QpairDeletionError,
        NamespaceCreationError,
        NamespaceDeletionError,
        NvmeShutdownStatusTimeoutError,
    ):
        assert issubclass(cls, Exception)
        assert not issubclass(cls, NvmeArgumentError)


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("buf", lambda c: c.identify(Buffer(512))),
        ("size", lambda c: c.getlogpage(2, Buffer(512), 3)),
        ("opcode", lambda c: c.supports(512)),
        ("fid", lambda c: c.setfeatures(0x100)),
        ("fid", lambda c: c.getfeatures(0x100)),
        ("timeout", lambda c: setattr(c, "timeout", 0)),
    ],
)
def test_controller_argument_errors(nvme0, name, call):
    argument_error(lambda: call(nvme0), name)


def test_register_offset_must_be_dword_aligned(nvme0):
    argument_error(lambda: nvme0[3], "offset")


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("lba_count", lambda ns, q: ns.read(q, Buffer(4096), 0, 0)),
        ("lba_count", lambda ns, q: ns.write(q, Buffer(4096), 0, 65537)),
        ("buf", lambda ns, q: ns.read(q, Buffer(512), 0, 2)),
        ("buf", lambda ns, q: ns.dsm(q, Buffer(16), 2)),
    ],
)
def test_namespace_argument_errors(nvme0n1, qpair, name, call):
    argument_error(lambda: call(nvme0n1, qpair), name)


@pytest.mark.parametrize("depth", [0, 1, 1025])
def test_qpair_depth_argument_error(nvme0, depth):
    error = argument_error(lambda: Qpair(nvme0, depth), "depth")
    assert str(depth) in str(error)


def test_pcie_argument_errors(pcie):
    argument_error(lambda: pcie.register(0, 9), "byte_count")
    argument_error(lambda: setattr(pcie, "aspm", 4), "aspm")
    argument_error(lambda: setattr(pcie, "power_state", 4), "power_state")
    argument_error(lambda: pcie.mem_dword_read(2), "addr")
    argument_error(lambda: pcie.mem_qword_read(4), "addr")


def test_device_error_is_a_warning_not_an_exception(nvme0):
    with pytest.warns(UserWarning, match="ERROR status: 00/01") as record:
        nvme0.send_cmd(0x7F).waitdone()
    assert len([w for w in record if "ERROR status" in str(w.message)]) == 1


def test_error_status_text_format(nvme0n1, qpair, buf):
    nsze = nvme0n1.id_ns().nsze
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        nvme0n1.read(qpair, buf, nsze).waitdone()
    assert [str(w.message) for w in record] == ["ERROR status: 00/80"]
    assert record[0].category is UserWarning


def test_error_warning_comes_after_the_callback(nvme0):
    order = []

    def cb(cqe):
        order.append(("callback", cqe.sct, cqe.sc))

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        nvme0.send_cmd(0x7F, cb=cb).waitdone()
        order.append(("warnings", len(record)))
    assert order == [("callback", 0, 1), ("warnings", 1)]


def test_assertion_in_callback_is_a_warning(nvme0):
    def cb(cqe):
        assert cqe.cdw0 == 12345, "cdw0 is not 12345"

    with pytest.warns(UserWarning, match="ASSERT: cdw0 is not 12345"):
        nvme0.getfeatures(7, cb=cb).waitdone()


def test_type_error_in_callback_is_a_warning(nvme0):
    def cb(cqe):
        return cqe + "x"

    with pytest.warns(UserWarning, match="callback: "):
        nvme0.getfeatures(7, cb=cb).waitdone()


def test_other_exception_in_callback_reaches_the_script(nvme0):
    def cb(cqe):
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        nvme0.getfeatures(7, cb=cb).waitdone()
    # The controller is still usable.
    assert nvme0.getfeatures(7).waitdone() == 0x003F003F


def test_unknown_sim_key_is_an_enumerate_error():
    with pytest.raises(NvmeEnumerateError, match="bogus"):
        Pcie("sim://?bogus=1")


def test_closed_pcie_raises(pciaddr):
    p = Pcie(pciaddr)
    p.close()
    with pytest.raises(NvmeArgumentError, match="pcie"):
        p[0]


# ---- what the spec forbids reaches the device ------------------------------------------------


def test_firmware_download_of_a_size_and_offset_the_spec_forbids_reaches_the_device(nvme0):
    # 10 bytes and offset 10 are not dwords: sent as pynvme encodes them (NUMD 1, OFST 2), and the
    # simulated SSD (FWUG 0: no granularity) takes them.
    nvme0.fw_download(Buffer(10), 0).waitdone()
    nvme0.fw_download(Buffer(4096), 10).waitdone()


def test_firmware_download_below_a_dword_is_refused_as_unsafe_for_the_host(nvme0):
    # NUMD would wrap to 0xffffffff: a 16 GiB read from a 2-byte buffer.
    with pytest.raises(NvmeArgumentError, match="unsafe for the host"):
        nvme0.fw_download(Buffer(2), 0)


def test_limited_retry_in_place_reaches_the_device(nvme0, nvme0n1, qpair, verify):
    w = Buffer(512, ptype=32, pvalue=0x5A5A5A5A)
    nvme0n1.write(qpair, w, 9, 1, io_flags=1 << 31).waitdone()
    assert "80000000" in qpair.cmdlog(1)[0], qpair.cmdlog(1)[0]
    r = Buffer(512)
    nvme0n1.read(qpair, r, 9, 1, io_flags=(1 << 31) | (1 << 30)).waitdone()
    assert r[:512] == w[:512]


def test_io_flags_in_both_halves_cannot_be_encoded(nvme0n1, qpair, buf):
    with pytest.raises(NvmeArgumentError, match="io_flags"):
        nvme0n1.read(qpair, buf, 0, 1, io_flags=0x1_0001)


def test_a_write_above_mdts_reaches_the_device(nvme0, nvme0n1, qpair):
    b = Buffer(1 << 20)
    assert nvme0.mdts < len(b)
    with pytest.warns(UserWarning, match="ERROR status: 00/02"):
        nvme0n1.write(qpair, b, 0, (1 << 20) // 512).waitdone()
