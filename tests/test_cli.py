"""`pynvme setup` / `reset` rules and the default device, against a fake sysfs tree."""

from __future__ import annotations

from pathlib import Path

import pytest

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
