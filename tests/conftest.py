"""Configuration of the project's own tests.

The tests exercise the package in python/ whether or not it is installed in the running Python
(the native module may still be unbuilt), and use pytest's `pytester` to run inner sessions.

A device warning that a test does not expect fails it: in tests/ (and only there: scripts keep
pynvme's behaviour, where an error status is a warning), "ERROR status: ..." (a miscompare is
"ERROR status: 07/81") and the driver's other reports of device misbehaviour are errors unless
the test catches them with `pytest.warns`.
"""

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
PYTHON_SOURCE = str(TESTS.parent / "python")
if PYTHON_SOURCE not in sys.path:
    sys.path.insert(0, PYTHON_SOURCE)

pytest_plugins = ["pytester"]

#: Warnings of the device under test that fail a test of tests/ unless it expects them.
UNEXPECTED_DEVICE_WARNINGS = (
    "error:ERROR status",
    "error:drive timeout",
    "error:AER notification",
)


def pytest_collection_modifyitems(items):
    """Marks every test of tests/ so an unexpected device warning is an error. The mark comes
    first among the test's own marks, so a test's own `filterwarnings` still wins."""
    for item in items:
        if TESTS in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings(*UNEXPECTED_DEVICE_WARNINGS), append=False)


@pytest.fixture
def sim(pcie):
    """The fault injection handle of the simulated SSD under test; its faults are cleared
    after the test."""
    s = pcie.sim
    assert s is not None, "fault injection needs the simulated SSD"
    yield s
    s.clear()
