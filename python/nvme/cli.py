"""`pynvme`: the command line of pynvme-rs.

    pynvme list                 NVMe functions on this machine, and the simulated SSD
    pynvme setup [--pciaddr=BDF] [--memsize=MB]
    pynvme reset [--pciaddr=BDF]

`list` reads /sys/bus/pci/devices and needs no privileges. `setup` (hand a real device to the
user-space driver, reserve DMA memory) and `reset` (give it back to the kernel's nvme driver)
are not implemented yet: the simulated SSD, which needs neither, is the only device so far.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

#: PCI class code of an NVM Express I/O controller (mass storage, NVM, NVMe interface).
NVME_CLASS = 0x010802
#: Where Linux lists PCI functions.
SYSFS_PCI_DEVICES = Path("/sys/bus/pci/devices")
#: The `--pciaddr` value of the default simulated SSD.
SIM_ADDRESS = "sim://"


@dataclass(frozen=True)
class PciFunction:
    """One NVMe PCI function as sysfs shows it."""

    bdf: str
    vendor: int
    device: int
    driver: str | None
    iommu_group: str | None


def _read_hex(path: Path) -> int | None:
    """Read a sysfs attribute like `0x010802`, or None if it cannot be read."""
    try:
        return int(path.read_text().strip(), 16)
    except (OSError, ValueError):
        return None


def _link_name(path: Path) -> str | None:
    """Last component of a sysfs symlink target (driver, iommu_group), or None."""
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def nvme_functions(root: Path = SYSFS_PCI_DEVICES) -> list[PciFunction]:
    """List the NVMe functions (class 0x010802) under `root`, sorted by address."""
    found = []
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    for entry in entries:
        if _read_hex(entry / "class") != NVME_CLASS:
            continue
        found.append(
            PciFunction(
                bdf=entry.name,
                vendor=_read_hex(entry / "vendor") or 0,
                device=_read_hex(entry / "device") or 0,
                driver=_link_name(entry / "driver"),
                iommu_group=_link_name(entry / "iommu_group"),
            )
        )
    return found


def cmd_list(args: argparse.Namespace) -> int:
    """Print one line per NVMe function, then the simulated SSD."""
    functions = nvme_functions(Path(args.sysfs))
    print(f"{'address':<16} {'vendor:device':<14} {'driver':<16} iommu group")
    for function in functions:
        print(
            f"{function.bdf:<16} {function.vendor:04x}:{function.device:04x}      "
            f"{function.driver or '-':<16} {function.iommu_group or '-'}"
        )
    print(f"{SIM_ADDRESS:<16} {'-':<14} {'(in-process)':<16} -   simulated SSD")
    if not functions:
        print("no NVMe PCI function found; --pciaddr= (empty) selects the simulated SSD")
    return 0


def cmd_not_implemented(args: argparse.Namespace) -> int:
    """Refuse `setup` / `reset` clearly until real devices are supported."""
    target = args.pciaddr or "all NVMe functions"
    print(
        f"pynvme {args.command}: not implemented yet for real devices ({target}); "
        "the simulated SSD (--pciaddr= or sim://...) needs no setup",
        file=sys.stderr,
    )
    return 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `pynvme`."""
    parser = argparse.ArgumentParser(
        prog="pynvme", description="NVMe SSD test platform: devices and their set-up."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="list NVMe functions and the simulated SSD")
    listing.add_argument("--sysfs", default=str(SYSFS_PCI_DEVICES), help=argparse.SUPPRESS)
    listing.set_defaults(func=cmd_list)

    setup = commands.add_parser(
        "setup", help="hand NVMe devices to the user-space driver (not implemented yet)"
    )
    setup.add_argument("--pciaddr", default="", help="one device (default: all)")
    setup.add_argument("--memsize", type=int, default=10000, help="DMA memory to reserve, MB")
    setup.set_defaults(func=cmd_not_implemented)

    reset = commands.add_parser(
        "reset", help="give NVMe devices back to the kernel's nvme driver (not implemented yet)"
    )
    reset.add_argument("--pciaddr", default="", help="one device (default: all)")
    reset.set_defaults(func=cmd_not_implemented)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `pynvme` with `argv` (default: the command line); return the exit status."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
