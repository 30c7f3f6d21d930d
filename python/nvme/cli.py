"""`pynvme`: the command line of pynvme-rs.

    pynvme list                 NVMe functions on this machine, and the simulated SSD
    pynvme setup [--pciaddr=BDF] [--memsize=MB]
    pynvme reset [--pciaddr=BDF]
    pynvme id-ctrl [--pciaddr=ADDR] [--json]              Identify Controller
    pynvme id-ns [--nsid=N] [--pciaddr=ADDR] [--json]     Identify Namespace
    pynvme smart-log [--pciaddr=ADDR] [--json]            SMART / Health Information log page
    pynvme get-feature --fid=F [--sel=S] [--nsid=N] [--cdw11=V] [--pciaddr=ADDR] [--json]
    pynvme monitor [--pciaddr=ADDR] [--port=PORT] [--host=ADDR] [--time=S] [SCRIPT [ARG ...]]

`list` reads /sys/bus/pci/devices and needs no privileges. `setup` (root) binds NVMe functions
to vfio-pci when the kernel runs an IOMMU, else to uio_pci_generic with `--memsize` MB of 2 MiB
hugepages; it refuses a device that is mounted, used as swap, held by LVM/RAID or that carries
the running system, unless `--force`. `reset` (root) gives them back to the kernel's nvme driver.
The simulated SSD needs neither.

The quick-look commands (`id-ctrl`, `id-ns`, `smart-log`, `get-feature`) open the device with
the driver, as nvme-cli does through the kernel: `--pciaddr` is a PCI address or a `sim://`
URI; without it, the one function bound for testing, else the simulated SSD (as the pytest
plugin chooses). They print the fields by the spec's names, or one JSON document with `--json`.
A device that cannot be opened or a command that fails is a message and exit status 1.
The simulated SSD needs neither. `monitor` opens the device and serves the live monitor
(`nvme.monitor`) in the browser, while it runs SCRIPT with `pcie`, `nvme0` and `nvme0n1` given,
or until Ctrl-C or `--time` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
# quick look: id-ctrl, id-ns, smart-log, get-feature


class CommandError(Exception):
    """A quick-look command could not be done: the message says why (no traceback)."""


def default_device(pciaddr: str, root: Path = SYSFS_PCI_DEVICES) -> str:
    """The device a command or test run uses: `pciaddr` if given, else the one NVMe function
    bound for testing, else '' (the simulated SSD).

    With exactly one function bound to vfio-pci or uio_pci_generic (`pynvme setup`), it is the
    default; with none or several the simulated SSD stays the default. `sim://` always names the
    simulated SSD.
    """
    if pciaddr:
        return pciaddr
    bound = bound_for_testing(root)
    return bound[0].bdf if len(bound) == 1 else ""


def use_hugepages_for_uio(pciaddr: str, root: Path = SYSFS_PCI_DEVICES) -> None:
    """For a function bound to uio_pci_generic, make DMA memory come from hugepages (no IOMMU:
    buffers need physical addresses), unless PYNVME_DMA_MEMORY says otherwise."""
    if pciaddr == "" or pciaddr.startswith("sim:"):
        return
    bdf = normalize_bdf(pciaddr)
    if _link_name(root / (bdf or "-") / "driver") == "uio_pci_generic":
        os.environ.setdefault("PYNVME_DMA_MEMORY", "hugepage")


@contextmanager
def open_controller(pciaddr: str, root: Path = SYSFS_PCI_DEVICES) -> Iterator[Any]:
    """Open the device (see `default_device`) and initialise its controller; closed after."""
    import nvme  # noqa: PLC0415 - `list`, `setup` and `reset` work without the native module

    if not nvme.native_available():
        raise CommandError(f"the driver is not built ({nvme._native_error}); run `make install`")
    address = default_device(pciaddr, root)
    use_hugepages_for_uio(address, root)
    try:
        pcie = nvme.Pcie(address)
    except Exception as e:
        raise CommandError(str(e)) from None
    try:
        try:
            controller = nvme.Controller(pcie)
        except Exception as e:
            raise CommandError(f"controller of {address or SIM_ADDRESS}: {e}") from None
        yield controller
    finally:
        pcie.close()


def _checked(what: str, run: Any) -> Any:
    """Run `run()`, turning a completion error status (a warning) into a CommandError."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = run()
        except Exception as e:
            raise CommandError(f"{what} failed: {e}") from None
    errors = [str(w.message) for w in caught if "ERROR status" in str(w.message)]
    if errors:
        status = errors[0].rpartition(" ")[2]
        meaning = f" ({STATUS_NAMES[status]})" if status in STATUS_NAMES else ""
        raise CommandError(f"{what} failed: {errors[0]}{meaning}")
    return value


#: Meaning of the completion statuses (SCT/SC) an admin quick look may meet.
STATUS_NAMES = {
    "00/01": "Invalid Command Opcode",
    "00/02": "Invalid Field in Command",
    "00/06": "Internal Error",
    "00/0b": "Invalid Namespace or Format",
    "01/09": "Invalid Log Page",
    "01/0d": "Feature Identifier Not Saveable",
    "01/0e": "Feature Not Changeable",
    "01/0f": "Feature Not Namespace Specific",
}


#: Identify Controller fields in the order of the NVMe base specification.
ID_CTRL_ORDER = (
    "vid ssvid sn mn fr rab ieee cmic mdts cntlid ver rtd3r rtd3e oaes ctratt rrls cntrltype "
    "fguid crdt1 crdt2 crdt3 nvmsr vwci mec oacs acl aerl frmw lpa elpe npss avscc apsta "
    "wctemp cctemp mtfa hmpre hmmin tnvmcap unvmcap rpmbs edstt dsto fwug kas hctma mntmt "
    "mxtmt sanicap hmminds hmmaxd nsetidmax endgidmax anatt anacap anagrpmax nanagrpid pels "
    "domainid megcap sqes cqes maxcmd nn oncs fuses fna vwc awun awupf icsvscc nwpc acwu "
    "cdfs sgls mnan maxdna maxcna subnqn ioccsz iorcsz icdoff fcatt msdbd ofcs psd vs"
).split()
#: Identify Namespace fields in the order of the NVMe base specification.
ID_NS_ORDER = (
    "nsze ncap nuse nsfeat nlbaf flbas mc dpc dps nmic rescap fpi dlfeat nawun nawupf nacwu "
    "nabsn nabo nabspf noiob nvmcap npwg npwa npdg npda nows mssrl mcl msrc nulbaf anagrpid "
    "nsattr nvmsetid endgid nguid eui64 lbaf vs"
).split()
#: Fields shown in hexadecimal (bit fields and identifiers).
HEX_FIELDS = frozenset(
    "vid ssvid ieee cmic ver oaes ctratt cntrltype oacs frmw lpa avscc apsta sanicap anacap "
    "sqes cqes oncs fuses fna vwc icsvscc nwpc fcatt ofcs sgls cdfs nsfeat flbas mc dpc dps "
    "nmic rescap fpi dlfeat nsattr".split()
)


def identify_fields(data: Any, order: list[str]) -> dict[str, Any]:
    """The fields of an `IdentifyData` in spec order (unknown ones after, by name), without
    `raw`; bytes stay bytes."""
    names = [n for n in dir(data) if n != "raw"]
    ordered = [n for n in order if n in names] + sorted(n for n in names if n not in order)
    return {name: getattr(data, name) for name in ordered}


def power_states(psd: bytes, npss: int) -> list[dict[str, Any]]:
    """The power state descriptors (NPSS + 1 of them): max power (W), non-operational, entry
    and exit latency (µs), relative read/write throughput and latency."""
    states = []
    for i in range(min(npss + 1, len(psd) // 32)):
        d = psd[i * 32 : (i + 1) * 32]
        mp, flags, enlat, exlat = struct.unpack_from("<HxBII", d, 0)
        scale = 0.0001 if flags & 1 else 0.01
        states.append(
            {
                "ps": i,
                "max_power_w": round(mp * scale, 4),
                "non_operational": bool(flags & 2),
                "enlat_us": enlat,
                "exlat_us": exlat,
                "rrt": d[12] & 0x1F,
                "rrl": d[13] & 0x1F,
                "rwt": d[14] & 0x1F,
                "rwl": d[15] & 0x1F,
            }
        )
    return states


def lba_formats(lbaf: bytes, nlbaf: int, flbas: int) -> list[dict[str, Any]]:
    """The LBA formats (NLBAF + 1 of them): metadata size, data size (bytes), relative
    performance, and which one is in use (FLBAS)."""
    in_use = (flbas & 0xF) | ((flbas >> 1) & 0x30)
    formats = []
    for i in range(min(nlbaf + 1, len(lbaf) // 4)):
        (value,) = struct.unpack_from("<I", lbaf, i * 4)
        formats.append(
            {
                "lbaf": i,
                "ms": value & 0xFFFF,
                "lbads": (value >> 16) & 0xFF,
                "data_size": 1 << ((value >> 16) & 0xFF),
                "rp": (value >> 24) & 0x3,
                "in_use": i == in_use,
            }
        )
    return formats


def _json_value(value: Any) -> Any:
    """A field for JSON: bytes as hex text."""
    return value.hex() if isinstance(value, bytes) else value


def _show_value(name: str, value: Any) -> str:
    """A field for people: hex for bit fields, bytes shortened."""
    if isinstance(value, bytes):
        if not any(value):
            return f"0 ({len(value)} bytes, all zero)"
        return value.hex() if len(value) <= 16 else f"{value[:16].hex()}... ({len(value)} bytes)"
    if isinstance(value, int) and name in HEX_FIELDS:
        return f"{value:#x}"
    return str(value)


def _print_fields(fields: dict[str, Any]) -> None:
    """Print `name : value` lines, names padded to one width."""
    width = max((len(n) for n in fields), default=0)
    for name, value in fields.items():
        print(f"{name:<{width}} : {value}")


def _print_json(document: Any) -> None:
    """Print one JSON document."""
    print(json.dumps(document, indent=2))


def cmd_id_ctrl(args: argparse.Namespace) -> int:
    """Show Identify Controller, with the power state descriptors decoded."""
    with open_controller(args.pciaddr, Path(args.sysfs)) as controller:
        data = _checked("Identify Controller", controller.id_ctrl)
    fields = identify_fields(data, ID_CTRL_ORDER)
    states = power_states(fields.get("psd", b""), int(fields.get("npss", 0)))
    if args.json:
        document = {name: _json_value(value) for name, value in fields.items()}
        document["power_states"] = states
        _print_json(document)
        return 0
    shown = {n: _show_value(n, v) for n, v in fields.items() if n not in ("psd", "vs")}
    for state in states:
        shown[f"ps {state['ps']:>4}"] = (
            f"mp:{state['max_power_w']:.2f}W {'non-' if state['non_operational'] else ''}"
            f"operational enlat:{state['enlat_us']} exlat:{state['exlat_us']} "
            f"rrt:{state['rrt']} rrl:{state['rrl']} rwt:{state['rwt']} rwl:{state['rwl']}"
        )
    _print_fields(shown)
    return 0


def cmd_id_ns(args: argparse.Namespace) -> int:
    """Show Identify Namespace of `--nsid`, with the LBA formats decoded."""
    import nvme  # noqa: PLC0415

    with open_controller(args.pciaddr, Path(args.sysfs)) as controller:
        try:
            namespace = nvme.Namespace(controller, args.nsid)
        except Exception as e:
            raise CommandError(f"cannot open namespace {args.nsid}: {e}") from None
        try:
            data = _checked(f"Identify Namespace {args.nsid}", namespace.id_ns)
        finally:
            namespace.close()
    fields = identify_fields(data, ID_NS_ORDER)
    formats = lba_formats(
        fields.get("lbaf", b""), int(fields.get("nlbaf", 0)), int(fields.get("flbas", 0))
    )
    if args.json:
        document = {"nsid": args.nsid}
        document.update({name: _json_value(value) for name, value in fields.items()})
        document["lba_formats"] = formats
        _print_json(document)
        return 0
    shown = {"nsid": str(args.nsid)}
    shown.update({n: _show_value(n, v) for n, v in fields.items() if n not in ("lbaf", "vs")})
    for f in formats:
        shown[f"lbaf {f['lbaf']:>2}"] = f"ms:{f['ms']:<3} lbads:{f['lbads']:<2} rp:{f['rp']}" + (
            " (in use)" if f["in_use"] else ""
        )
    _print_fields(shown)
    return 0


#: SMART / Health Information (log page 02h): name, byte offset, size in bytes.
SMART_FIELDS = (
    ("critical_warning", 0, 1),
    ("temperature", 1, 2),
    ("avail_spare", 3, 1),
    ("spare_thresh", 4, 1),
    ("percent_used", 5, 1),
    ("endurance_grp_critical_warning_summary", 6, 1),
    ("data_units_read", 32, 16),
    ("data_units_written", 48, 16),
    ("host_read_commands", 64, 16),
    ("host_write_commands", 80, 16),
    ("controller_busy_time", 96, 16),
    ("power_cycles", 112, 16),
    ("power_on_hours", 128, 16),
    ("unsafe_shutdowns", 144, 16),
    ("media_errors", 160, 16),
    ("num_err_log_entries", 176, 16),
    ("warning_temp_time", 192, 4),
    ("critical_comp_time", 196, 4),
    *((f"temperature_sensor_{i + 1}", 200 + 2 * i, 2) for i in range(8)),
    ("thm_temp1_trans_count", 216, 4),
    ("thm_temp2_trans_count", 220, 4),
    ("thm_temp1_total_time", 224, 4),
    ("thm_temp2_total_time", 228, 4),
)


def parse_smart_log(data: bytes) -> dict[str, int]:
    """The fields of a SMART / Health Information log page (512 bytes), as integers
    (temperatures in Kelvin, data units in thousands of 512-byte units, as the spec counts)."""
    return {
        name: int.from_bytes(data[offset : offset + size], "little")
        for name, offset, size in SMART_FIELDS
    }


def cmd_smart_log(args: argparse.Namespace) -> int:
    """Show the SMART / Health Information log page of the controller."""
    import nvme  # noqa: PLC0415

    with open_controller(args.pciaddr, Path(args.sysfs)) as controller:
        buf = nvme.Buffer(512, "smart log")
        _checked("Get Log Page 02h (SMART)", lambda: controller.getlogpage(2, buf, 512).waitdone())
        smart = parse_smart_log(bytes(buf[0:512]))
    if args.json:
        _print_json(smart)
        return 0
    shown: dict[str, str] = {}
    for name, value in smart.items():
        if name.startswith("temperature_sensor_") and value == 0:
            continue  # not implemented by the device
        if name == "temperature" or name.startswith("temperature_sensor_"):
            shown[name] = f"{value - 273} °C ({value} K)"
        elif name in ("avail_spare", "spare_thresh", "percent_used"):
            shown[name] = f"{value}%"
        elif name.startswith("data_units_"):
            shown[name] = f"{value:,} ({value * 512_000 / 1e9:,.1f} GB)"
        elif name == "critical_warning":
            shown[name] = f"{value:#x}"
        else:
            shown[name] = f"{value:,}"
    _print_fields(shown)
    return 0


#: Feature identifiers (Get / Set Features) and their names.
FEATURES = {
    0x01: "Arbitration",
    0x02: "Power Management",
    0x03: "LBA Range Type",
    0x04: "Temperature Threshold",
    0x05: "Error Recovery",
    0x06: "Volatile Write Cache",
    0x07: "Number of Queues",
    0x08: "Interrupt Coalescing",
    0x09: "Interrupt Vector Configuration",
    0x0A: "Write Atomicity Normal",
    0x0B: "Asynchronous Event Configuration",
    0x0C: "Autonomous Power State Transition",
    0x0D: "Host Memory Buffer",
    0x0E: "Timestamp",
    0x0F: "Keep Alive Timer",
    0x10: "Host Controlled Thermal Management",
    0x11: "Non-Operational Power State Config",
    0x12: "Read Recovery Level Config",
    0x13: "Predictable Latency Mode Config",
    0x14: "Predictable Latency Mode Window",
    0x16: "Host Behavior Support",
    0x17: "Sanitize Config",
    0x18: "Endurance Group Event Configuration",
    0x19: "I/O Command Set Profile",
    0x1A: "Spinup Control",
    0x7D: "Enhanced Controller Metadata",
    0x7E: "Controller Metadata",
    0x7F: "Namespace Metadata",
    0x80: "Software Progress Marker",
    0x81: "Host Identifier",
    0x82: "Reservation Notification Mask",
    0x83: "Reservation Persistence",
    0x84: "Namespace Write Protection Config",
}
#: Bytes of data that Get Features returns for the features that have data.
FEATURE_DATA = {0x03: 4096, 0x0C: 256, 0x0D: 4096, 0x0E: 8, 0x16: 512, 0x81: 16}
#: Get Features select values.
SELECTS = {0: "Current", 1: "Default", 2: "Saved", 3: "Supported capabilities"}


def _int_in(low: int, high: int, what: str) -> Any:
    """An argparse type: an integer (decimal or 0x hex) in [low, high]."""

    def parse(text: str) -> int:
        """Parse the text, or raise ArgumentTypeError with what is allowed."""
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, not {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be in {low:#x}..{high:#x}, not {text}")
        return value

    return parse


def cmd_get_feature(args: argparse.Namespace) -> int:
    """Show the value (dword 0) of a feature, and its data for the features that have some."""
    import nvme  # noqa: PLC0415

    name = FEATURES.get(args.fid, "unknown feature")
    size = FEATURE_DATA.get(args.fid, 0) if args.sel != 3 else 0
    with open_controller(args.pciaddr, Path(args.sysfs)) as controller:
        buf = nvme.Buffer(size, "feature data") if size else None
        value = _checked(
            f"Get Features fid {args.fid:#04x} ({name}), sel {args.sel}",
            lambda: controller.getfeatures(
                args.fid, sel=args.sel, buf=buf, nsid=args.nsid, cdw11=args.cdw11
            ).waitdone(),
        )
        data = bytes(buf[0:size]) if buf is not None else b""
    document: dict[str, Any] = {
        "fid": args.fid,
        "name": name,
        "sel": args.sel,
        "select": SELECTS[args.sel],
        "nsid": args.nsid,
        "value": value,
    }
    if args.sel == 3:
        document["capabilities"] = {
            "saveable": bool(value & 1),
            "namespace_specific": bool(value & 2),
            "changeable": bool(value & 4),
        }
    if data:
        document["data"] = data.hex()
    if args.json:
        _print_json(document)
        return 0
    print(f"get-feature:{args.fid:#04x} ({name}), {SELECTS[args.sel]} value:{value:#010x}")
    if "capabilities" in document:
        print("  " + ", ".join(f"{k}: {v}" for k, v in document["capabilities"].items()))
    if data:
        used = len(data.rstrip(b"\0"))
        for offset in range(0, max(16, (used + 15) // 16 * 16), 16):
            print(f"  {offset:04x}: {data[offset : offset + 16].hex(' ')}")
    return 0


#: fio's --rw names: (random percentage, read percentage).
PERF_RW = {
    "read": (0, 100),
    "write": (0, 0),
    "rw": (0, 50),
    "randread": (100, 100),
    "randwrite": (100, 0),
    "randrw": (100, 50),
}


def _size(text: str) -> int:
    """An argparse type: bytes with an optional k/m/g/t suffix (powers of 1024)."""
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    number, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "")
    try:
        value = int(float(number) * units[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (4096, 4k, 128k, 1g)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size above 0")
    return value


def _rate(value: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"


def cmd_perf(args: argparse.Namespace) -> int:
    """Run one ioworker and print fio-like results (or one JSON document with --json)."""
    import nvme  # noqa: PLC0415

    random_pct, read_pct = PERF_RW[args.rw]
    if args.rwmixread is not None:
        read_pct = args.rwmixread
    with open_controller(args.pciaddr, Path(args.sysfs)) as controller:
        try:
            ns = nvme.Namespace(controller, args.nsid)
        except Exception as e:
            raise CommandError(f"namespace {args.nsid}: {e}") from None
        try:
            block = ns.sector_size
            if args.bs % block:
                raise CommandError(f"--bs {args.bs} is not a multiple of the {block}-byte block")
            nlb = args.bs // block
            region = ns.id_ns().nsze if args.size is None else max(1, args.size // block)
            if args.verify:
                ns.verify_enable(True)
            kw: dict[str, Any] = {}
            if args.cpu is not None:
                kw["cpu_id"] = args.cpu
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    r = (
                        ns.ioworker(
                            io_size=nlb,
                            lba_align=nlb,
                            lba_random=random_pct,
                            read_percentage=read_pct,
                            qdepth=args.iodepth,
                            region_end=region,
                            iops=args.iops,
                            time=args.runtime,
                            seed=args.seed,
                            **kw,
                        )
                        .start()
                        .close()
                    )
                except Exception as e:
                    raise CommandError(str(e)) from None
        finally:
            ns.close()
    document = _perf_document(args, r, block, read_pct, [str(w.message) for w in caught])
    if args.json:
        _print_json(document)
    else:
        _print_perf(document, r)
    return 1 if r.error else 0


def _perf_document(
    args: argparse.Namespace, r: Any, block: int, read_pct: int, warned: list[str]
) -> dict[str, Any]:
    """`pynvme perf`'s results as one fio-like document: options, totals, latency (all IOs,
    and per direction when it has IOs)."""
    seconds = r.mseconds / 1000
    document: dict[str, Any] = {
        "device": args.pciaddr or SIM_ADDRESS,
        "options": {
            "rw": args.rw,
            "bs": args.bs,
            "iodepth": args.iodepth,
            "runtime": args.runtime,
            "rwmixread": read_pct,
            "nsid": args.nsid,
            "verify": args.verify,
        },
        "runtime_ms": r.mseconds,
        "cpu_usage": r.cpu_usage,
        "error": r.error,
        "warnings": warned,
        "lat_ns": {
            "mean": r.latency_average_us * 1000,
            "max": r.latency_max_us * 1000,
            "percentile": {
                f"{float(k):f}": round(v * 1000) for k, v in sorted(r.latency_percentiles.items())
            },
        },
    }
    for name, ios, lbas in (
        ("read", r.io_count_read, r.lba_count_read),
        ("write", r.io_count_write, r.lba_count_write),
    ):
        document[name] = {
            "total_ios": ios,
            "io_bytes": lbas * block,
            "iops": ios / seconds,
            "bw_bytes": lbas * block / seconds,
        }
        if f"latency_percentiles_{name}" in r:
            document[name]["lat_ns"] = {
                "max": r[f"latency_max_{name}_us"] * 1000,
                "percentile": {
                    f"{float(k):f}": round(v * 1000)
                    for k, v in sorted(r[f"latency_percentiles_{name}"].items())
                },
            }
    return document


def _print_perf(document: dict[str, Any], r: Any) -> None:
    """`pynvme perf`'s text output, from its document and the ioworker's result."""
    seconds = r.mseconds / 1000
    o = document["options"]
    print(
        f"perf: (rw={o['rw']}, bs={o['bs']}B, iodepth={o['iodepth']}) nsid {o['nsid']}, "
        f"{seconds:.1f} s, verify {'on' if o['verify'] else 'off'}"
    )
    for name in ("read", "write"):
        d = document[name]
        if d["total_ios"]:
            print(
                f"  {name}: IOPS={_rate(d['iops'])}, BW={d['bw_bytes'] / 2**20:.1f}MiB/s "
                f"({d['io_bytes'] / 2**20:.1f}MiB/{seconds:.1f}s)"
            )
    print(f"    lat (usec): avg={r.latency_average_us}, max={r.latency_max_us}")

    def percentiles(title: str, pct: dict[float, float]) -> None:
        shown = [k for k in (1, 5, 10, 50, 90, 99, 99.9, 99.99) if float(k) in pct]
        print(
            f"    {title} (usec): "
            + ", ".join(f"{float(k):.2f}th=[{pct[float(k)]:.0f}]" for k in shown)
        )

    percentiles("lat percentiles", r.latency_percentiles)
    # Per direction when the run mixed them.
    if r.io_count_read and r.io_count_write:
        for name in ("read", "write"):
            percentiles(f"{name} lat percentiles", r[f"latency_percentiles_{name}"])
    print(f"  cpu: {r.cpu_usage:.1%}")
    for w in document["warnings"]:
        print(f"  warning: {w}")


def _run_quick(func: Any) -> Any:
    """Wrap a quick-look command: a CommandError becomes a message and exit status 1."""

    def run(args: argparse.Namespace) -> int:
        """Run the command; a CommandError is printed, status 1."""
        try:
            return int(func(args))
        except CommandError as e:
            print(f"pynvme {args.command}: {e}", file=sys.stderr)
            return 1

    run.__doc__ = func.__doc__
    return run


def _add_quick_look(commands: Any) -> None:
    """Add id-ctrl, id-ns, smart-log and get-feature to the subcommands."""

    def common(parser: argparse.ArgumentParser) -> None:
        """Add --pciaddr, --json and the hidden --sysfs."""
        parser.add_argument(
            "--pciaddr",
            default="",
            help="PCI address or sim:// URI (default: the one device bound for testing, "
            "else the simulated SSD)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON document")
        parser.add_argument("--sysfs", default=str(SYSFS_PCI_DEVICES), help=argparse.SUPPRESS)

    id_ctrl = commands.add_parser("id-ctrl", help="show Identify Controller")
    common(id_ctrl)
    id_ctrl.set_defaults(func=_run_quick(cmd_id_ctrl))

    id_ns = commands.add_parser("id-ns", help="show Identify Namespace")
    id_ns.add_argument(
        "--nsid", type=_int_in(1, 0xFFFFFFFE, "nsid"), default=1, help="namespace (default 1)"
    )
    common(id_ns)
    id_ns.set_defaults(func=_run_quick(cmd_id_ns))

    smart = commands.add_parser("smart-log", help="show the SMART / Health Information log page")
    common(smart)
    smart.set_defaults(func=_run_quick(cmd_smart_log))

    feature = commands.add_parser("get-feature", help="show a feature's value (Get Features)")
    feature.add_argument(
        "--fid", "-f", type=_int_in(0, 0xFF, "fid"), required=True, help="feature identifier"
    )
    feature.add_argument(
        "--sel",
        "-s",
        type=_int_in(0, 3, "sel"),
        default=0,
        help="0 current (default), 1 default, 2 saved, 3 supported capabilities",
    )
    feature.add_argument(
        "--nsid", "-n", type=_int_in(0, 0xFFFFFFFF, "nsid"), default=0, help="namespace"
    )
    feature.add_argument(
        "--cdw11", type=_int_in(0, 0xFFFFFFFF, "cdw11"), default=0, help="command dword 11"
    )
    common(feature)
    feature.set_defaults(func=_run_quick(cmd_get_feature))

    perf = commands.add_parser("perf", help="run an ioworker and show fio-like results")
    perf.add_argument("--rw", choices=sorted(PERF_RW), default="randread", help="workload")
    perf.add_argument("--bs", type=_size, default=4096, help="bytes per IO (default 4k)")
    perf.add_argument(
        "--iodepth", type=_int_in(1, 65535, "iodepth"), default=63, help="IOs outstanding"
    )
    perf.add_argument("--runtime", type=float, default=5.0, help="seconds (default 5)")
    perf.add_argument("--rwmixread", type=_int_in(0, 100, "rwmixread"), help="percentage of reads")
    perf.add_argument(
        "--size", type=_size, help="bytes of the namespace to use from LBA 0 (default: all)"
    )
    perf.add_argument("--iops", type=_int_in(0, 1 << 40, "iops"), default=0, help="rate limit")
    perf.add_argument("--nsid", type=_int_in(1, 0xFFFFFFFE, "nsid"), default=1)
    perf.add_argument("--verify", action="store_true", help="check every read's data")
    perf.add_argument("--cpu", type=int, help="pin the worker to this CPU")
    perf.add_argument("--seed", type=int, help="seed of the LBA generator")
    common(perf)
    perf.set_defaults(func=_run_quick(cmd_perf))


# monitor


def cmd_monitor(args: argparse.Namespace) -> int:
    """Open the device, serve the live monitor, run the script (or wait); close the device."""
    pciaddr = default_device(args.pciaddr)
    use_hugepages_for_uio(pciaddr)
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
        prog="pynvme",
        description="NVMe SSD test platform: devices, their set-up, and a quick look at them.",
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
    _add_quick_look(commands)

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
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # The reader went away (`pynvme id-ctrl | head`): not an error of the command.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
