"""pytest plugin of the QEMU lane: the tests whose QEMU answers are known to differ.

Each entry is explained in tools/qemu/DIFFERENCES.md; only QEMU's deviations from the spec are
listed (where QEMU made a choice the spec allows, the tests read the capability and skip).
The tests still run: they are reported as xfail (XPASS once the difference is gone), so the
lane fails only on a difference nobody has looked at yet. Loaded by tools/qemu/in-guest.sh
with `-p known_differences`.
"""

from __future__ import annotations

import pytest

QEMU_BUG = "QEMU deviates from the spec"

#: node id suffix -> reason (see DIFFERENCES.md).
KNOWN: dict[str, str] = {
    "01_admin/test_logpage.py::test_smart_log_power_on_counters": QEMU_BUG + ": Power Cycles is 0",
    "01_admin/test_logpage.py::test_firmware_slot_log": QEMU_BUG
    + ": FRS1 differs from Identify FR",
    "01_admin/test_logpage.py::test_unsupported_log_page": QEMU_BUG
    + ": a reserved log page gets 00/02, not 01/09",
    "01_admin/test_queue.py::test_delete_missing_queue": QEMU_BUG
    + ": Delete I/O CQ of a missing queue gets 01/00, not 01/01",
    "01_admin/test_logpage_more.py::test_smart_power_cycles_increment": QEMU_BUG
    + ": Power Cycles is 0 (expected from the test above; not yet confirmed on the lane)",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the known differences as non-strict expected failures."""
    for item in items:
        for suffix, reason in KNOWN.items():
            if item.nodeid.endswith(suffix):
                item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
