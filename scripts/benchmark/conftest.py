"""Fixtures of the benchmark suite: `bench` (its parameters, see benchlib.BenchParams and the
options `--quick` and `--bench KEY=VALUE`), `lbas` (the part of the namespace it uses) and `sim`
(the simulated SSD's handle, None on a real drive)."""

from __future__ import annotations

from typing import Any

import pytest
from benchlib import BenchParams, make_params

from nvme import *


@pytest.fixture(scope="session")
def bench(request: pytest.FixtureRequest) -> BenchParams:
    """The suite's parameters (defaults, `--quick`, `--bench KEY=VALUE`)."""
    return make_params(
        bool(request.config.getoption("quick", default=False)),
        list(request.config.getoption("bench", default=None) or []),
    )


@pytest.fixture
def lbas(nvme0n1: Namespace, bench: BenchParams) -> int:
    """LBAs of the namespace the suite may use (`max_bytes` caps it)."""
    n = nvme0n1.id_ns().nsze
    if bench.max_bytes:
        n = min(n, bench.max_bytes // nvme0n1.sector_size)
    return n


@pytest.fixture
def sim(pcie: Pcie) -> Any:
    """The simulated SSD's handle, or None on a real drive."""
    return pcie.sim


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a wrong `--bench KEY=VALUE` before any test runs (a usage error naming it)."""
    make_params(
        bool(config.getoption("quick", default=False)),
        list(config.getoption("bench", default=None) or []),
    )
