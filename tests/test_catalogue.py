"""tools/catalogue.py: the conformance catalogue is generated from the test docstrings.

Every test function under scripts/conformance has a docstring with its purpose, a "Spec:"
section and numbered "Steps:"; the committed docs/conformance.md is what the generator writes.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import catalogue  # noqa: E402


def rel(e):
    return e.file if e.folder == "(top)" else f"{e.folder}/{e.file}"


def test_every_test_function_is_documented():
    entries = catalogue.collect()
    assert len(entries) >= 250
    bad = [f"{rel(e)}::{e.name}: {', '.join(e.problems)}" for e in entries if e.problems]
    assert not bad, "test functions without a catalogue docstring:\n" + "\n".join(bad)


def test_generator_writes_every_test(tmp_path):
    out = tmp_path / "conformance.md"
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "catalogue.py"), "--output", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    entries = catalogue.collect()
    for e in entries:
        assert f"`{e.name}`" in text
    documented = [e for e in entries if not e.problems]
    assert documented
    e = documented[0]
    assert f"- Purpose: {e.purpose}" in text
    assert f"- Spec: {e.spec}" in text
    assert f"  1. {e.steps[0]}" in text
    assert "| folder | file | test | purpose | spec section |" in text


def test_committed_catalogue_is_current():
    committed = ROOT / "docs" / "conformance.md"
    if not committed.exists():
        pytest.fail("docs/conformance.md is missing: run `make catalogue`")
    assert committed.read_text() == catalogue.render(catalogue.collect()), (
        "docs/conformance.md is out of date: run `make catalogue`"
    )


@pytest.mark.parametrize(
    "doc,problems",
    [
        (None, ["no docstring"]),
        ("Purpose only.", ["no 'Spec:' section", "no numbered 'Steps:'"]),
        ("Purpose.\n\nSpec: NVMe 2.0 5.1\n\nSteps:\n1. one\n3. three", ["step 3 out of order"]),
        ("Purpose.\n\nSpec: NVMe 2.0 5.1\n\nSteps:\n1. one\n   more\n2. two", []),
    ],
)
def test_docstring_parser(doc, problems):
    purpose, spec, steps, found = catalogue.parse_docstring(doc)
    assert found == problems
    if not problems:
        assert (purpose, spec, steps) == ("Purpose.", "NVMe 2.0 5.1", ["one more", "two"])
