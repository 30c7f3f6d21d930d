"""`pynvme setup` / `reset` rules and the default device, against a fake sysfs tree; the
quick-look commands (id-ctrl, id-ns, smart-log, get-feature) on the simulated SSD."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nvme
from nvme import cli, pytest_plugin


def fake_function(root: Path, bdf: str, driver: str | None, group: str | None = "3") -> Path:
    """An NVMe function under root/bus/pci/devices with namespaces nvme0n1 and nvme0c0n2."""
    devices = root / "bus/pci/devices"
    dev = devices / bdf
    dev.mkdir(parents=True)
    (dev / "class").write_text("0x010802\n")
    (dev / "vendor").write_text("0x1b36\n")
    (dev / "device").write_text("0x0010\n")
    (dev / "nvme/nvme0/nvme0n1").mkdir(parents=True)
    (dev / "nvme/nvme0/nvme0c0n2").mkdir(parents=True)
    if driver:
        drv = root / "bus/pci/drivers" / driver
        drv.mkdir(parents=True, exist_ok=True)
        (dev / "driver").symlink_to(drv)
    if group:
        grp = root / "kernel/iommu_groups" / group
        grp.mkdir(parents=True, exist_ok=True)
        (dev / "iommu_group").symlink_to(grp)
    return devices


def test_bdf_forms() -> None:
    assert cli.normalize_bdf("01:00.0") == "0000:01:00.0"
    assert cli.normalize_bdf("0000:AF:1f.7") == "0000:af:1f.7"
    assert cli.normalize_bdf("01:20.0") is None
    assert cli.normalize_bdf("sim://") is None


def test_block_devices_and_driver_choice(tmp_path: Path) -> None:
    devices = fake_function(tmp_path, "0000:01:00.0", "nvme")
    assert cli.block_devices("0000:01:00.0", devices) == ["nvme0n1", "nvme0n2"]
    assert cli.iommu_enabled(devices)
    (function,) = cli.nvme_functions(devices)
    assert cli.choose_driver(function, iommu=True) == "vfio-pci"
    assert cli.choose_driver(function, iommu=False) == "uio_pci_generic"


def test_no_iommu_means_uio(tmp_path: Path) -> None:
    devices = fake_function(tmp_path, "0000:01:00.0", "nvme", group=None)
    assert not cli.iommu_enabled(devices)
    (function,) = cli.nvme_functions(devices)
    assert cli.choose_driver(function, iommu=cli.iommu_enabled(devices)) == "uio_pci_generic"


MOUNTS = """sysfs /sys sysfs rw 0 0
/dev/nvme1n1p2 / ext4 rw 0 0
/dev/nvme0n1p1 /data xfs rw 0 0
"""
SWAPS = """Filename Type Size Used Priority
/dev/nvme2n1p3 partition 1000 0 -2
"""


@pytest.mark.parametrize(
    ("devices", "holders", "reason"),
    [
        (["nvme0n1"], {}, "/dev/nvme0n1p1 is mounted on /data"),
        (["nvme1n1"], {}, "/dev/nvme1n1 carries the running system (mounted on /)"),
        (["nvme2n1"], {}, "/dev/nvme2n1p3 is in use as swap"),
        (
            ["nvme3n1"],
            {"nvme3n1": ["dm-0"]},
            "/dev/nvme3n1 is held by dm-0 (LVM, RAID or dm-crypt)",
        ),
        (["nvme3n1"], {"nvme3n1": []}, None),
        (["nvme0n11"], {}, None),
        ([], {}, None),
    ],
)
def test_refusal_rules(
    devices: list[str], holders: dict[str, list[str]], reason: str | None
) -> None:
    assert cli.in_use(devices, MOUNTS, SWAPS, holders) == reason


def test_setup_and_reset_need_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    assert cli.main(["setup", "--pciaddr=01:00.0"]) == 1
    assert "must run as root" in capsys.readouterr().err
    assert cli.main(["reset"]) == 1
    assert "must run as root" in capsys.readouterr().err


def test_setup_refuses_a_mounted_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    devices = fake_function(tmp_path, "0000:01:00.0", "nvme")
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    monkeypatch.setattr(cli, "refusal", lambda bdf, root: "/dev/nvme0n1p1 is mounted on /data")
    assert cli.main(["setup", "--pciaddr=01:00.0", f"--sysfs={devices}"]) == 1
    err = capsys.readouterr().err
    assert "not taken: /dev/nvme0n1p1 is mounted on /data" in err
    assert "--force" in err
    assert cli.main(["setup", "--pciaddr=02:00.0", f"--sysfs={devices}"]) == 1
    assert "not an NVMe function" in capsys.readouterr().err


def test_hugepage_reservation(tmp_path: Path) -> None:
    nr = tmp_path / "nr_hugepages"
    nr.write_text("0\n")
    assert cli.reserve_hugepages(100, nr) == 50
    nr.write_text("64\n")
    assert cli.reserve_hugepages(100, nr) == 64
    nr.write_text("0\n")
    nr.chmod(0o444)
    if not nr.exists() or cli.os.geteuid() == 0:
        return  # root writes read-only files
    with pytest.raises(cli.SetupError):
        cli.reserve_hugepages(10, nr)


def test_default_device(tmp_path: Path) -> None:
    devices = fake_function(tmp_path, "0000:01:00.0", "nvme")
    assert pytest_plugin.default_device("", devices) == ""
    assert pytest_plugin.default_device("sim://", devices) == "sim://"
    (devices / "0000:01:00.0/driver").unlink()
    drv = tmp_path / "bus/pci/drivers/vfio-pci"
    drv.mkdir(parents=True)
    (devices / "0000:01:00.0/driver").symlink_to(drv)
    assert pytest_plugin.default_device("", devices) == "0000:01:00.0"
    assert pytest_plugin.default_device("sim://", devices) == "sim://"
    fake_function(tmp_path / "other", "0000:02:00.0", "vfio-pci")
    (devices / "0000:02:00.0").symlink_to(tmp_path / "other/bus/pci/devices/0000:02:00.0")
    # Two bound: no guess, the simulated SSD stays the default.
    assert pytest_plugin.default_device("", devices) == ""


# ---------------------------------------------------------------------------------------------
# quick look: id-ctrl, id-ns, smart-log, get-feature on the simulated SSD

needs_native = pytest.mark.skipif(
    not nvme.native_available(),
    reason=f"native module nvme._native cannot be imported: {nvme._native_error}",
)

SIM = "sim://?model=ACME-X1&serial=SN42&fw=FW9&temperature=320&namespaces=2"


def quick(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> tuple[str, str]:
    """Run a pynvme command; check its exit status, return its output and error text."""
    assert cli.main(list(argv)) == status
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return out, err


def field(out: str, name: str) -> str:
    """The value of `name : value` in human-readable output."""
    m = re.search(rf"^{re.escape(name)} +: (.*)$", out, re.M)
    assert m, f"no {name} in:\n{out}"
    return m.group(1)


@needs_native
def test_id_ctrl(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = quick(capsys, "id-ctrl", f"--pciaddr={SIM}")
    assert field(out, "mn") == "ACME-X1"
    assert field(out, "sn") == "SN42"
    assert field(out, "fr") == "FW9"
    assert field(out, "nn") == "32"
    assert field(out, "ver") == "0x20000"
    assert re.search(r"^ps +0 +: mp:\d+\.\d\dW operational enlat:\d+", out, re.M)
    names = [line.split(" ")[0] for line in out.splitlines()]
    assert names.index("vid") < names.index("sn") < names.index("mdts") < names.index("nn")
    assert "raw" not in names

    doc = json.loads(quick(capsys, "id-ctrl", f"--pciaddr={SIM}", "--json")[0])
    assert (doc["mn"], doc["sn"], doc["fr"]) == ("ACME-X1", "SN42", "FW9")
    assert doc["vid"] == doc["ssvid"] and doc["mdts"] == 5
    assert len(doc["power_states"]) == doc["npss"] + 1
    assert len(bytes.fromhex(doc["psd"])) == 1024
    assert "raw" not in doc


@needs_native
def test_id_ns(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = quick(capsys, "id-ns", "--pciaddr=sim://?lba=4096&capacity=1G")
    assert field(out, "nsid") == "1"
    assert field(out, "nsze") == str(2**30 // 4096)
    assert re.search(r"^lbaf +\d+ +: ms:0 +lbads:12 rp:\d \(in use\)$", out, re.M)

    doc = json.loads(quick(capsys, "id-ns", f"--pciaddr={SIM}", "--nsid=2", "--json")[0])
    assert doc["nsid"] == 2 and doc["nsze"] > 0
    (in_use,) = [f for f in doc["lba_formats"] if f["in_use"]]
    assert in_use["data_size"] == 512 and in_use["ms"] == 0

    _, err = quick(capsys, "id-ns", f"--pciaddr={SIM}", "--nsid=5", status=1)
    assert err.startswith("pynvme id-ns: cannot open namespace 5: ")


@needs_native
def test_smart_log(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = quick(capsys, "smart-log", f"--pciaddr={SIM}")
    assert field(out, "temperature") == "47 °C (320 K)"
    assert field(out, "avail_spare").endswith("%")
    assert field(out, "critical_warning") == "0x0"

    doc = json.loads(quick(capsys, "smart-log", f"--pciaddr={SIM}", "--json")[0])
    assert doc["temperature"] == 320
    assert doc["critical_warning"] == 0
    assert doc["power_cycles"] >= 1
    assert {"data_units_read", "host_write_commands", "media_errors"} <= set(doc)


def test_smart_log_parsing() -> None:
    page = bytearray(512)
    page[0] = 0x04
    page[1:3] = (300).to_bytes(2, "little")
    page[32:48] = (2**70).to_bytes(16, "little")
    page[200:202] = (301).to_bytes(2, "little")
    smart = cli.parse_smart_log(bytes(page))
    assert smart["critical_warning"] == 4
    assert smart["temperature"] == 300
    assert smart["data_units_read"] == 2**70
    assert smart["temperature_sensor_1"] == 301
    assert smart["thm_temp2_total_time"] == 0


@needs_native
def test_get_feature(capsys: pytest.CaptureFixture[str]) -> None:
    nvme0 = nvme.Controller(nvme.Pcie(SIM))
    queues = nvme0.getfeatures(7).waitdone()
    nvme0.pcie.close()
    out, _ = quick(capsys, "get-feature", f"--pciaddr={SIM}", "--fid=7")
    assert out == f"get-feature:0x07 (Number of Queues), Current value:{queues:#010x}\n"

    doc = json.loads(
        quick(capsys, "get-feature", f"--pciaddr={SIM}", "-f", "6", "-s", "3", "--json")[0]
    )
    assert doc["name"] == "Volatile Write Cache" and doc["select"] == "Supported capabilities"
    assert doc["capabilities"] == {
        "saveable": bool(doc["value"] & 1),
        "namespace_specific": bool(doc["value"] & 2),
        "changeable": bool(doc["value"] & 4),
    }
    doc = json.loads(quick(capsys, "get-feature", f"--pciaddr={SIM}", "--fid=0x0e", "--json")[0])
    assert doc["name"] == "Timestamp" and len(bytes.fromhex(doc["data"])) == 8


@needs_native
def test_get_feature_errors(capsys: pytest.CaptureFixture[str]) -> None:
    _, err = quick(capsys, "get-feature", f"--pciaddr={SIM}", "--fid=0x77", status=1)
    assert err == (
        "pynvme get-feature: Get Features fid 0x77 (unknown feature), sel 0 failed: "
        "ERROR status: 00/02 (Invalid Field in Command)\n"
    )
    for bad in ("--fid=300", "--fid=seven"):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["get-feature", bad])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert "argument --fid/-f: fid must be" in err and "Traceback" not in err


@needs_native
@pytest.mark.parametrize(
    ("pciaddr", "message"),
    [
        ("0000:7f:1f.7", "no PCI function 0000:7f:1f.7 on this machine"),
        ("nonsense", "not a PCI address"),
        ("sim://?bogus=1", 'unknown key "bogus"'),
    ],
)
def test_quick_look_names_a_bad_device(
    capsys: pytest.CaptureFixture[str], pciaddr: str, message: str
) -> None:
    for command in ("id-ctrl", "id-ns", "smart-log"):
        _, err = quick(capsys, command, f"--pciaddr={pciaddr}", status=1)
        assert err.startswith(f"pynvme {command}: ") and message in err


@needs_native
def test_quick_look_uses_the_one_device_bound_for_testing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    devices = fake_function(tmp_path, "0000:7f:1f.6", "vfio-pci")
    _, err = quick(capsys, "id-ctrl", f"--sysfs={devices}", status=1)
    assert "0000:7f:1f.6" in err  # it tried the bound function, which this machine lacks
    out, _ = quick(capsys, "id-ctrl", f"--sysfs={tmp_path / 'none'}")
    assert field(out, "mn") == "pynvme-rs simulated SSD"


@needs_native
def test_quick_look_from_the_shell() -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(cli.__file__).parent.parent))
    argv = [sys.executable, "-m", "nvme.cli"]
    ok = subprocess.run(
        [*argv, "id-ctrl", "--pciaddr=sim://?model=SHELL"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert ok.returncode == 0 and field(ok.stdout, "mn") == "SHELL"
    bad = subprocess.run(
        [*argv, "smart-log", "--pciaddr=0000:7f:1f.7"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("pynvme smart-log: ") and "Traceback" not in bad.stderr


@needs_native
def test_perf_text(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = quick(capsys, "perf", "--pciaddr=sim://?null=1", "--runtime=1", "--iodepth=8")
    assert out.startswith("perf: (rw=randread, bs=4096B, iodepth=8) nsid 1, 1.")
    assert re.search(r"^  read: IOPS=[\d.]+[kM]?, BW=[\d.]+MiB/s", out, re.M)
    assert "write:" not in out
    assert re.search(r"lat percentiles \(usec\): 1\.00th=\[\d+\]", out)
    assert "read lat percentiles" not in out, "per direction only for a mix"
    out, _ = quick(capsys, "perf", "--pciaddr=sim://?null=1", "--runtime=1", "--rw=randrw")
    assert re.search(r"^    read lat percentiles \(usec\): 1\.00th=\[\d+\]", out, re.M)
    assert re.search(r"^    write lat percentiles \(usec\): 1\.00th=\[\d+\]", out, re.M)


@needs_native
def test_perf_json_mix_and_verify(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = quick(
        capsys,
        "perf",
        "--pciaddr=sim://?capacity=1G",
        "--rw=randrw",
        "--rwmixread=70",
        "--bs=8k",
        "--size=16m",
        "--runtime=1",
        "--verify",
        "--json",
    )
    doc = json.loads(out)
    assert doc["options"]["bs"] == 8192 and doc["options"]["rwmixread"] == 70
    reads, writes = doc["read"]["total_ios"], doc["write"]["total_ios"]
    assert reads > writes > 0
    assert 0.6 < reads / (reads + writes) < 0.8
    assert doc["read"]["io_bytes"] == reads * 8192
    assert doc["error"] == 0 and doc["warnings"] == []
    p = doc["lat_ns"]["percentile"]
    assert p["50.000000"] <= p["99.000000"] <= doc["lat_ns"]["max"]
    # Per direction too, each from its own IOs.
    for d in ("read", "write"):
        q = doc[d]["lat_ns"]["percentile"]
        assert 0 < q["50.000000"] <= q["99.000000"] <= doc[d]["lat_ns"]["max"], (d, q)
    lo, hi = sorted(doc[d]["lat_ns"]["percentile"]["50.000000"] for d in ("read", "write"))
    assert lo * 0.99 <= p["50.000000"] <= hi * 1.01, "the median of the mix lies between them"


@needs_native
def test_perf_refuses_a_bad_block_size(capsys: pytest.CaptureFixture[str]) -> None:
    _, err = quick(capsys, "perf", "--pciaddr=sim://", "--bs=1000", status=1)
    assert "--bs 1000 is not a multiple of the 512-byte block" in err
    with pytest.raises(SystemExit):
        cli.main(["perf", "--bs=lots"])
    assert "is not a size" in capsys.readouterr().err
