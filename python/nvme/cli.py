"""`pynvme`: the command line of pynvme-rs.

    pynvme list                 NVMe functions on this machine, and the simulated SSD
    pynvme setup [--pciaddr=BDF] [--memsize=MB]
    pynvme reset [--pciaddr=BDF]
    pynvme monitor [--pciaddr=ADDR] [--port=PORT] [--host=ADDR] [--time=S] [SCRIPT [ARG ...]]

`list` reads /sys/bus/pci/devices and needs no privileges. `setup` (root) binds NVMe functions
to vfio-pci when the kernel runs an IOMMU, else to uio_pci_generic with `--memsize` MB of 2 MiB
hugepages; it refuses a device that is mounted, used as swap, held by LVM/RAID or that carries
the running system, unless `--force`. `reset` (root) gives them back to the kernel's nvme driver.
The simulated SSD needs neither. `monitor` opens the device and serves the live monitor
(`nvme.monitor`) in the browser, while it runs SCRIPT with `pcie`, `nvme0` and `nvme0n1` given,
or until Ctrl-C or `--time` seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from nvme.monitor import DEFAULT_HOST, DEFAULT_PORT

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


# --------------------------------------------------------------------------------------------
# setup / reset

#: Drivers that hand a function to the user-space driver.
TEST_DRIVERS = ("vfio-pci", "uio_pci_generic")
#: Where Linux lists PCI drivers.
SYSFS_PCI_DRIVERS = Path("/sys/bus/pci/drivers")
#: 2 MiB hugepages: reserved here, counted in MB by `--memsize`.
HUGEPAGES = Path("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")


class SetupError(Exception):
    """A refusal or failure of `setup` / `reset`, with what to do about it."""


def normalize_bdf(addr: str) -> str | None:
    """`01:00.0` or `0000:01:00.0` in canonical form, or None if it is not a PCI address."""
    m = re.fullmatch(
        r"(?:([0-9a-fA-F]{1,4}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])", addr
    )
    if not m or int(m.group(3), 16) > 0x1F:
        return None
    domain = int(m.group(1) or "0", 16)
    return f"{domain:04x}:{int(m.group(2), 16):02x}:{int(m.group(3), 16):02x}.{m.group(4)}"


def block_devices(bdf: str, root: Path = SYSFS_PCI_DEVICES) -> list[str]:
    """Names of the block devices (namespaces) of the NVMe function, e.g. ['nvme0n1']."""
    names: set[str] = set()
    for ctrl in sorted((root / bdf / "nvme").glob("nvme*")):
        for ns in ctrl.glob(ctrl.name + "*n*"):
            # A multipath path node nvme0c0n1 belongs to the block device nvme0n1.
            names.add(re.sub(r"c\d+n", "n", ns.name))
    return sorted(names)


def in_use(
    devices: list[str], mounts: str, swaps: str, holders: dict[str, list[str]]
) -> str | None:
    """Why the block devices of a function may not be taken from the kernel, or None.

    `mounts` and `swaps` are the texts of /proc/mounts and /proc/swaps, `holders` the entries of
    /sys/block/<dev>/holders (LVM, md, dm-crypt).
    """
    for dev in devices:
        pattern = re.compile(rf"^/dev/{re.escape(dev)}(p\d+)?$")
        for line in mounts.splitlines():
            fields = line.split()
            if len(fields) >= 2 and pattern.match(fields[0]):
                where = fields[1]
                if where == "/":
                    return f"/dev/{dev} carries the running system (mounted on /)"
                return f"{fields[0]} is mounted on {where}"
        for line in swaps.splitlines()[1:]:
            fields = line.split()
            if fields and pattern.match(fields[0]):
                return f"{fields[0]} is in use as swap"
        if holders.get(dev):
            return f"/dev/{dev} is held by {', '.join(holders[dev])} (LVM, RAID or dm-crypt)"
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _holders(devices: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for dev in devices:
        block = Path("/sys/block") / dev
        names = [h.name for h in (block / "holders").glob("*")]
        for part in block.glob(dev + "p*"):
            names += [h.name for h in (part / "holders").glob("*")]
        found[dev] = names
    return found


def refusal(bdf: str, root: Path = SYSFS_PCI_DEVICES) -> str | None:
    """Why `setup` must not take this function from the running system (None: it may)."""
    devices = block_devices(bdf, root)
    return in_use(
        devices, _read(Path("/proc/mounts")), _read(Path("/proc/swaps")), _holders(devices)
    )


def iommu_enabled(root: Path = SYSFS_PCI_DEVICES) -> bool:
    """Whether the kernel runs an IOMMU (it then puts devices into IOMMU groups)."""
    groups = root.parent.parent.parent / "kernel" / "iommu_groups"
    try:
        return any(groups.iterdir())
    except OSError:
        return False


def choose_driver(function: PciFunction, iommu: bool) -> str:
    """vfio-pci behind an IOMMU, else uio_pci_generic."""
    return "vfio-pci" if iommu and function.iommu_group else "uio_pci_generic"


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as e:
        raise SetupError(f"cannot write {value.strip()!r} to {path}: {e.strerror or e}") from e


def _modprobe(module: str) -> None:
    if (Path("/sys/module") / module.replace("-", "_")).exists():
        return
    try:
        subprocess.run(["modprobe", module], check=True, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise SetupError(f"cannot load kernel module {module}: modprobe not found") from e
    except subprocess.CalledProcessError as e:
        raise SetupError(f"cannot load kernel module {module}: {e.stderr.strip()}") from e


def bind(bdf: str, driver: str, root: Path = SYSFS_PCI_DEVICES) -> None:
    """Bind the function to `driver` (through driver_override) and check that it took it."""
    dev = root / bdf
    current = _link_name(dev / "driver")
    if current == driver:
        return
    if current:
        _write(dev / "driver" / "unbind", bdf)
    _write(dev / "driver_override", driver)
    try:
        (root.parent / "drivers_probe").write_text(bdf)
    except OSError:
        pass
    now = _link_name(dev / "driver")
    if now != driver:
        raise SetupError(f"{bdf}: {driver} did not take the function (driver now: {now or 'none'})")


def reserve_hugepages(memsize_mb: int, path: Path = HUGEPAGES) -> int:
    """Reserve at least `memsize_mb` MB of 2 MiB hugepages; return the number granted."""
    want = max(1, (memsize_mb + 1) // 2)
    have = int(_read(path).strip() or 0)
    if have < want:
        _write(path, str(want))
        have = int(_read(path).strip() or 0)
    if have == 0:
        raise SetupError(
            "no hugepages could be reserved (memory too fragmented? reserve them at boot with "
            "hugepages=N on the kernel command line)"
        )
    if have < want:
        print(
            f"warning: only {have} of {want} hugepages (2 MiB) could be reserved", file=sys.stderr
        )
    return have


def _selected(pciaddr: str, root: Path) -> list[PciFunction]:
    functions = nvme_functions(root)
    if not pciaddr:
        return functions
    bdf = normalize_bdf(pciaddr)
    if bdf is None:
        raise SetupError(f"{pciaddr!r} is not a PCI address like 0000:01:00.0")
    chosen = [f for f in functions if f.bdf == bdf]
    if not chosen:
        raise SetupError(f"{bdf} is not an NVMe function on this machine (see `pynvme list`)")
    return chosen


def _need_root(command: str) -> None:
    if os.geteuid() != 0:
        raise SetupError(f"pynvme {command} must run as root (sudo make {command} ...)")


def cmd_setup(args: argparse.Namespace) -> int:
    """Hand NVMe functions to the user-space driver: vfio-pci, or uio_pci_generic + hugepages."""
    root = Path(args.sysfs)
    try:
        _need_root("setup")
        functions = _selected(args.pciaddr, root)
        if not functions:
            raise SetupError("no NVMe function found on this machine")
        iommu = iommu_enabled(root)
        done = 0
        for function in functions:
            why = refusal(function.bdf, root)
            if why and not args.force:
                print(
                    f"{function.bdf}: not taken: {why} (unmount it first, or --force)",
                    file=sys.stderr,
                )
                continue
            driver = choose_driver(function, iommu)
            _modprobe(driver)
            if driver == "uio_pci_generic":
                granted = reserve_hugepages(args.memsize)
                print(f"hugepages: {granted} x 2 MiB reserved (no IOMMU: uio_pci_generic)")
            bind(function.bdf, driver, root)
            print(f"{function.bdf}: bound to {driver}")
            done += 1
        if done == 0:
            raise SetupError("no NVMe function was set up")
    except SetupError as e:
        print(f"pynvme setup: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    """Give NVMe functions bound for testing back to the kernel's nvme driver."""
    root = Path(args.sysfs)
    try:
        _need_root("reset")
        functions = [f for f in _selected(args.pciaddr, root) if f.driver in TEST_DRIVERS]
        _modprobe("nvme")
        for function in functions:
            dev = root / function.bdf
            _write(dev / "driver" / "unbind", function.bdf)
            _write(dev / "driver_override", "\n")
            try:
                (root.parent / "drivers_probe").write_text(function.bdf)
            except OSError:
                pass
            now = _link_name(dev / "driver")
            print(f"{function.bdf}: bound to {now or 'no driver'}")
        if not functions:
            print("no NVMe function is bound for testing")
    except SetupError as e:
        print(f"pynvme reset: {e}", file=sys.stderr)
        return 1
    return 0


def bound_for_testing(root: Path = SYSFS_PCI_DEVICES) -> list[PciFunction]:
    """The NVMe functions bound to vfio-pci or uio_pci_generic."""
    return [f for f in nvme_functions(root) if f.driver in TEST_DRIVERS]


# --------------------------------------------------------------------------------------------
# monitor


def cmd_monitor(args: argparse.Namespace) -> int:
    """Open the device, serve the live monitor, run the script (or wait); close the device."""
    pciaddr = args.pciaddr
    if not pciaddr:
        bound = bound_for_testing()
        pciaddr = bound[0].bdf if len(bound) == 1 else ""
    if pciaddr and not pciaddr.startswith("sim:"):
        bdf = normalize_bdf(pciaddr)
        if _link_name(SYSFS_PCI_DEVICES / (bdf or "-") / "driver") == "uio_pci_generic":
            # Without an IOMMU, DMA memory must be hugepages (as the pytest plugin does).
            os.environ.setdefault("PYNVME_DMA_MEMORY", "hugepage")
    import runpy  # noqa: PLC0415
    import time  # noqa: PLC0415

    import nvme  # noqa: PLC0415 (the native module is loaded only by this command)
    from nvme import monitor  # noqa: PLC0415

    pcie = nvme.Pcie(pciaddr)
    try:
        nvme0 = nvme.Controller(pcie)
        nvme0n1 = nvme.Namespace(nvme0, args.nsid)
        try:
            m = monitor.serve(nvme0, port=args.port, host=args.host)
        except OSError as e:
            print(f"pynvme monitor: cannot serve on {args.host}:{args.port}: {e}", file=sys.stderr)
            return 1
        print(f"live monitor of {pciaddr or SIM_ADDRESS}: {m.url}", flush=True)
        try:
            if args.script:
                saved = sys.argv
                sys.argv = [args.script, *args.args]
                try:
                    runpy.run_path(
                        args.script,
                        init_globals={"pcie": pcie, "nvme0": nvme0, "nvme0n1": nvme0n1},
                        run_name="__main__",
                    )
                finally:
                    sys.argv = saved
            else:
                end = time.monotonic() + args.time if args.time else None
                while end is None or time.monotonic() < end:
                    time.sleep(0.2 if end is None else max(0.0, min(0.2, end - time.monotonic())))
        except KeyboardInterrupt:
            pass
        finally:
            monitor.stop()
            nvme0n1.close()
    finally:
        pcie.close()
    return 0


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
        "setup",
        help="hand NVMe devices to the user-space driver (vfio-pci, or uio_pci_generic)",
    )
    setup.add_argument("--pciaddr", default="", help="one device (default: all)")
    setup.add_argument(
        "--memsize", type=int, default=10000, help="hugepages to reserve without an IOMMU, MB"
    )
    setup.add_argument(
        "--force", action="store_true", help="take a device even if it is mounted or in use"
    )
    setup.add_argument("--sysfs", default=str(SYSFS_PCI_DEVICES), help=argparse.SUPPRESS)
    setup.set_defaults(func=cmd_setup)

    reset = commands.add_parser("reset", help="give NVMe devices back to the kernel's nvme driver")
    reset.add_argument("--pciaddr", default="", help="one device (default: all)")
    reset.add_argument("--sysfs", default=str(SYSFS_PCI_DEVICES), help=argparse.SUPPRESS)
    reset.set_defaults(func=cmd_reset)

    mon = commands.add_parser(
        "monitor",
        help="open a device and serve the live monitor in the browser, running a script or "
        "until Ctrl-C",
    )
    mon.add_argument(
        "--pciaddr", default="", help="device (default: the one bound for testing, or sim://)"
    )
    mon.add_argument("--nsid", type=int, default=1, help="namespace given to the script")
    mon.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (0: any free port)")
    mon.add_argument(
        "--host", default=DEFAULT_HOST, help="address to bind (0.0.0.0: other machines too)"
    )
    mon.add_argument("--time", type=float, default=0, help="without a script: stop after S seconds")
    mon.add_argument(
        "script", nargs="?", help="Python script run with pcie, nvme0, nvme0n1 defined"
    )
    mon.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the script")
    mon.set_defaults(func=cmd_monitor)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `pynvme` with `argv` (default: the command line); return the exit status."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
