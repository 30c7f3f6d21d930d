#!/bin/sh
# tools/qemu/in-guest.sh: runs inside the QEMU guest (tools/qemu/guest): hands the emulated NVMe
# controller to the test driver with `pynvme setup`, runs pytest on it, gives it back.
#   tools/qemu/in-guest.sh [PYTEST ARGS...]     (default: the lane's selection, see tools/qemu/run)
# Environment: EXPECT_DRIVER (vfio-pci or uio_pci_generic): fail unless setup chose it.
set -u
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export PYTHONDONTWRITEBYTECODE=1
BDF=$(for d in /sys/bus/pci/devices/*; do [ "$(cat "$d/class")" = 0x010802 ] && basename "$d"; done | head -1)
[ -n "$BDF" ] || { echo "no NVMe function in the guest" >&2; exit 2; }
echo "== guest: kernel $(uname -r), NVMe function $BDF, IOMMU groups: $(ls /sys/kernel/iommu_groups 2>/dev/null | wc -l)"
$PY -m nvme.cli setup --pciaddr="$BDF" --memsize="${MEMSIZE:-512}" || exit 3
DRIVER=$(basename "$(readlink /sys/bus/pci/devices/$BDF/driver)")
if [ -n "${EXPECT_DRIVER:-}" ] && [ "$DRIVER" != "$EXPECT_DRIVER" ]; then
  echo "setup bound $BDF to $DRIVER, expected $EXPECT_DRIVER" >&2; exit 3
fi
$PY -m nvme.cli list
# A power cycle: with the power channel (tools/qemu/guest's default controller), the slot is
# powered off and QEMU deletes the controller and adds a new one (tools/qemu/power-switch).
# Without it (the features lane's controllers) a conventional reset of the function.
export PYNVME_QEMU_DRIVER=$DRIVER
if grep -qx pynvme.power /sys/class/virtio-ports/*/name 2>/dev/null; then
  export PYNVME_POWER_OFF=${PYNVME_POWER_OFF:-"$PWD/tools/qemu/power-switch off"}
  export PYNVME_POWER_ON=${PYNVME_POWER_ON:-"$PWD/tools/qemu/power-switch on"}
else
  export PYNVME_POWER_OFF=${PYNVME_POWER_OFF:-true}
  export PYNVME_POWER_ON=${PYNVME_POWER_ON:-'echo 1 > /sys/bus/pci/devices/$PYNVME_PCIADDR/reset'}
fi
echo "== guest: power off: $PYNVME_POWER_OFF; power on: $PYNVME_POWER_ON"
# No --pciaddr: the plugin finds the one function bound for testing.
# Known differences from the simulated SSD run as expected failures (DIFFERENCES.md).
PYTHONPATH=tools/qemu $PY -m pytest -p no:cacheprovider -p known_differences --results="${RESULTS:-results/qemu}" "$@"
rc=$?
$PY -m nvme.cli reset --pciaddr="$BDF" >/dev/null || echo "reset of $BDF failed" >&2
exit $rc
