"""pytest plugin of the QEMU lane: the tests whose QEMU answers are known to differ.

Each entry is explained in tools/qemu/DIFFERENCES.md. The tests still run: they are reported as
xfail (XPASS once the difference is gone), so the lane fails only on a difference nobody has
looked at yet. Loaded by tools/qemu/in-guest.sh with `-p known_differences`.
"""

from __future__ import annotations

import pytest

SPEC_ALLOWS = "QEMU's answer is a choice the spec allows; the test assumes the simulator's"
QEMU_BUG = "QEMU deviates from the spec"

#: node id suffix -> reason (see DIFFERENCES.md).
KNOWN: dict[str, str] = {
    "01_admin/test_features.py::test_arbitration_roundtrip": SPEC_ALLOWS
    + " (Arbitration not changeable: 01/0E)",
    "01_admin/test_features.py::test_interrupt_coalescing_roundtrip": SPEC_ALLOWS
    + " (Interrupt Coalescing not changeable: 01/0E)",
    "01_admin/test_features.py::test_power_management_invalid_state": SPEC_ALLOWS
    + " (Power Management not changeable: 01/0E before the field check)",
    "01_admin/test_features.py::test_get_features_default_value": SPEC_ALLOWS
    + " (Interrupt Coalescing not changeable: 01/0E)",
    "01_admin/test_logpage.py::test_smart_log_power_on_counters": QEMU_BUG + ": Power Cycles is 0",
    "01_admin/test_logpage.py::test_firmware_slot_log": QEMU_BUG
    + ": FRS1 differs from Identify FR",
    "01_admin/test_logpage.py::test_unsupported_log_page": QEMU_BUG
    + ": a reserved log page gets 00/02, not 01/09",
    "01_admin/test_queue.py::test_delete_missing_queue": QEMU_BUG
    + ": Delete I/O CQ of a missing queue gets 01/00, not 01/01",
    "02_nvm/test_optional_commands.py::test_copy": "QEMU reports MSSRL=MCL=MSRC=0 "
    "with Copy in ONCS and answers 01/83; the test does not read the limits",
    "tools/qemu/test_qemu_features.py::test_metadata_namespace_extended_lba": "driver bug: "
    "PRPs sized without the metadata of an extended LBA (4096+8), QEMU answers 00/13",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the known differences as non-strict expected failures."""
    for item in items:
        for suffix, reason in KNOWN.items():
            if item.nodeid.endswith(suffix):
                item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
