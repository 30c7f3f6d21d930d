#!/bin/sh
# tools/qemu/bench-in-guest.sh: runs inside the QEMU guest (tools/qemu/guest): one ioworker
# against fio on the same emulated NVMe controller, the same workload (4 KiB random reads,
# 63 outstanding, SECS seconds): fio first, through the kernel's nvme driver with io_uring and
# O_DIRECT, then `pynvme perf` through vfio-pci. Prints both IOPS and their ratio.
# Environment: SECS (default 10). Needs fio on the host (the guest sees the host's root).
set -u
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
SECS=${SECS:-10}
export PYTHONDONTWRITEBYTECODE=1
BDF=$(for d in /sys/bus/pci/devices/*; do [ "$(cat "$d/class")" = 0x010802 ] && basename "$d"; done | head -1)
[ -n "$BDF" ] || { echo "no NVMe function in the guest" >&2; exit 2; }
command -v fio >/dev/null || { echo "fio is not installed on the host" >&2; exit 2; }
modprobe nvme 2>/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -e /dev/nvme0n1 ] && break; sleep 1; done
[ -e /dev/nvme0n1 ] || { echo "the kernel's nvme driver made no /dev/nvme0n1" >&2; exit 2; }
fio --name=guest --filename=/dev/nvme0n1 --ioengine=io_uring --direct=1 --rw=randread \
    --bs=4k --iodepth=63 --time_based --runtime="$SECS" --output-format=json > /tmp/fio.json || exit 3
$PY -m nvme.cli setup --pciaddr="$BDF" --memsize=512 >/dev/null || exit 3
$PY -m nvme.cli perf --rw randread --bs 4k --iodepth 63 --runtime "$SECS" --json > /tmp/perf.json
rc=$?
$PY -m nvme.cli reset --pciaddr="$BDF" >/dev/null || echo "reset of $BDF failed" >&2
[ $rc -eq 0 ] || exit 3
$PY - <<'PY'
import json
fio = json.load(open("/tmp/fio.json"))["jobs"][0]["read"]["iops"]
ours = json.load(open("/tmp/perf.json"))["read"]["iops"]
print(f"guest bench: fio io_uring {fio:.0f} IOPS, ioworker {ours:.0f} IOPS, "
      f"ratio {ours / fio:.2f} (4 KiB randread, QD 63, one job each)")
PY
