"""NVMe drives in a labgrid lab: the session holds a place, the device and its power come from it.

These tests are not part of `make check` (pyproject.toml's `norecursedirs` leaves this folder
out of `pytest tests/`); `make labgrid` (`tools/labgrid/run`) installs the pinned labgrid,
starts a coordinator and an exporter on this machine, makes the place and runs them with
`--lg-env`. Without labgrid or without an environment they are skipped, unless
`PYNVME_LABGRID_REQUIRED=1` (`tools/labgrid/run` sets it), which turns that into a failure.
"""

from __future__ import annotations

import os

import pytest


def _missing(what: str) -> None:
    """Skip for `what` is missing, or fail when the labgrid lane requires it."""
    if os.environ.get("PYNVME_LABGRID_REQUIRED") == "1":
        pytest.fail(f"{what} (PYNVME_LABGRID_REQUIRED=1)", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest):
    """The session's `nvme.lab.LabSession`: the labgrid place it holds."""
    try:
        import labgrid  # noqa: F401, PLC0415
    except ImportError:
        _missing("labgrid is not installed (tools/labgrid/run installs it)")
    session = request.config.pluginmanager.get_plugin("nvme-lab")
    if session is None:
        _missing("no labgrid environment with a place: give --lg-env (tools/labgrid/run)")
    return session
