# pynvme-rs: build, install, test.
#
#   make                      install, then run $(TESTS) on the simulated SSD
#   make test TESTS=scripts/conformance pciaddr=0000:01:00.0 nsid=1
#   make check                the project's own tests: Rust and Python, format and lint (CI)
#   make soak                 the lifecycle stress and property tests, long (SOAK_MINUTES, default 60)
#   make setup pciaddr=0000:01:00.0   hand a real SSD to the test driver (root); make reset gives it back
#   make qemu                 the QEMU lane: device tests on QEMU's NVMe controller, vfio and uio (CI)
#   make browser              the browser lane: the live monitor's page in headless chromium (CI)
#   make labgrid              the labgrid lane: a place with the simulated SSD and its power port (CI)
#   make catalogue            docs/conformance.md from the docstrings of scripts/conformance
#
# pciaddr: device under test; empty = the simulated SSD, or sim://?capacity=1T&namespaces=2
# nsid:    namespace of the nvme0n1 fixture
# TESTS:   what pytest runs (folders, files, file::test)
# memsize: MB of DMA memory `make setup` reserves for a real device
# PY:      the Python that runs the tests (default: the project's venv)

pciaddr ?=
nsid ?= 1
TESTS ?= scripts/conformance
memsize ?= 10000
VENV ?= .venv
PY ?= $(VENV)/bin/python
PYTHON3 ?= python3
PYTEST_ARGS ?=

SHELL := /bin/bash
.DEFAULT_GOAL := all
.PHONY: all install system-deps test check soak setup reset list bench qemu browser labgrid catalogue clean distclean

PY_DIRS := $(wildcard python tests scripts bench tools)
# Everything the native module is built from; Python sources are installed editable.
NATIVE_INPUTS := pyproject.toml Cargo.toml $(wildcard Cargo.lock) \
	$(shell find crates \( -name '*.rs' -o -name Cargo.toml -o -name build.rs \) 2>/dev/null)

all: test

# ---- install ------------------------------------------------------------------------------

install: system-deps $(VENV)/.native-installed

# Debian packages, installed only if something is missing (then `apt-get update` once):
# venv/ensurepip, libpython for the PyO3 crate's `cargo test`, a C linker for rustc.
system-deps:
	@missing=""; \
	$(PYTHON3) -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	$(PYTHON3) -c 'import os, sysconfig as s; \
		lib = os.path.join(s.get_config_var("LIBDIR") or "", s.get_config_var("LDLIBRARY") or ""); \
		raise SystemExit(not os.path.exists(lib))' || missing="$$missing python3-dev"; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc libc6-dev"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "missing system packages:$$missing (run as root or install them)" >&2; exit 1; \
		fi; \
		echo "installing system packages:$$missing"; \
		apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/bin/python:
	$(PYTHON3) -m venv $(VENV)

$(VENV)/.dev-installed: requirements-dev.txt | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install -q -r requirements-dev.txt
	touch $@

# Builds crates/nvme-python in release mode into python/nvme/ and installs the package
# editable (a .pth to python/), with the `pynvme` command and the pytest plugin.
$(VENV)/.native-installed: $(NATIVE_INPUTS) $(VENV)/.dev-installed
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release
	$(VENV)/bin/python -c 'import nvme._native, nvme; print("nvme", nvme.__version__, "installed")'
	touch $@

# ---- run ----------------------------------------------------------------------------------

# pytest's exit status 5 (nothing collected) is not a failure of the device.
test: install
	@$(PY) -m pytest $(TESTS) --pciaddr='$(pciaddr)' --nsid=$(nsid) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no test collected in $(TESTS)"; rc=0; fi; exit $$rc

check: install
	cargo fmt --all -- --check
	$(PY) -m ruff format --check $(PY_DIRS)
	$(PY) -m ruff check $(PY_DIRS)
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test --workspace
	$(PY) -m pytest tests/

# The lifecycle tests of `make check`, run long (tools/soak): round after round for SOAK_MINUTES,
# each with a new seed, threads doing verified IO through SOAK_EVENTS random resets and power
# cycles (Rust and Python), and SOAK_CASES cases of the property test.
SOAK_MINUTES ?= 60
SOAK_EVENTS ?= 300
SOAK_CASES ?= 500
soak: install
	SOAK_MINUTES=$(SOAK_MINUTES) SOAK_EVENTS=$(SOAK_EVENTS) SOAK_CASES=$(SOAK_CASES) PY=$(PY) tools/soak

setup: $(VENV)/.dev-installed
	PYTHONPATH=$(CURDIR)/python $(VENV)/bin/python -m nvme.cli setup \
		--pciaddr='$(pciaddr)' --memsize=$(memsize)

reset: $(VENV)/.dev-installed
	PYTHONPATH=$(CURDIR)/python $(VENV)/bin/python -m nvme.cli reset --pciaddr='$(pciaddr)'

list: $(VENV)/.dev-installed
	@PYTHONPATH=$(CURDIR)/python $(VENV)/bin/python -m nvme.cli list

# QEMU_LANES: vfio uio features (default: all); tools/qemu/README.md tells what each runs.
qemu:
	tools/qemu/run $(QEMU_LANES)

# Installs chromium (apt-get, as root) and the pinned Playwright if missing; tools/browser/run.
browser:
	tools/browser/run

# Installs the pinned labgrid into the venv, starts a labgrid coordinator and exporter on
# localhost and runs tests/labgrid through a place; tools/labgrid/run.
labgrid:
	tools/labgrid/run

# docs/conformance.md: the suite's catalogue (folder, file, test, purpose, spec section, steps)
# generated from the docstrings of scripts/conformance.
catalogue:
	$(PYTHON3) tools/catalogue.py

bench: install
	@if [ -x bench/run ]; then PY=$(abspath $(PY)) bench/run; \
	else echo "no benchmarks: bench/run does not exist or is not executable"; fi

# ---- clean --------------------------------------------------------------------------------

clean:
	rm -rf results .pytest_cache .ruff_cache target/wheels
	rm -f python/nvme/_native*.so $(VENV)/.native-installed
	find python tests scripts bench -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true

distclean: clean
	rm -rf $(VENV)
