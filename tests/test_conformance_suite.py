"""The conformance suite's own rules (scripts/conformance/conftest.py), checked by running a
throw-away test file inside the suite's folder in a pytest of its own on the simulated SSD."""

import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BODY = '''
import pytest
from nvme import *


def test_unexpected(nvme0):
    """An invalid opcode the test does not expect to fail."""
    nvme0.send_cmd(0x7F).waitdone()


def test_expected(nvme0):
    """The same, expected."""
    with pytest.warns(UserWarning, match="ERROR status: 00/01"):
        nvme0.send_cmd(0x7F).waitdone()
'''


def test_an_unexpected_device_error_fails_a_conformance_test(tmp_path):
    path = ROOT / "scripts" / "conformance" / f"test_policy_{uuid.uuid4().hex[:8]}.py"
    path.write_text(BODY)
    try:
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-o",
                "log_cli=false",
                f"--results={tmp_path}",
                str(path),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
    finally:
        path.unlink()
    assert "1 failed, 1 passed" in p.stdout, p.stdout + p.stderr
    assert "test_unexpected" in p.stdout and "ERROR status: 00/01" in p.stdout, p.stdout
