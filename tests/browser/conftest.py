"""The live monitor's page in a real headless browser: Debian's chromium driven by Playwright.

These tests are not part of `make check` (pyproject.toml's `norecursedirs` leaves this folder
out of `pytest tests/`); `make browser` or `tools/browser/run` installs chromium and the pinned
Playwright, then runs them. Nothing is downloaded at run time: Playwright launches the system
chromium (`PYNVME_CHROMIUM`, default the `chromium` on PATH).

Without Playwright or chromium the tests are skipped, unless `PYNVME_BROWSER_REQUIRED=1`
(`tools/browser/run` sets it), which turns the missing piece into a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder `browser`."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)


def pytest_configure(config: pytest.Config) -> None:
    """Declare the `browser` marker."""
    config.addinivalue_line("markers", "browser: runs the live monitor's page in chromium")


def _missing(what: str) -> None:
    """Skip for `what` is missing, or fail when the browser lane requires it."""
    if os.environ.get("PYNVME_BROWSER_REQUIRED") == "1":
        pytest.fail(f"{what} (PYNVME_BROWSER_REQUIRED=1)", pytrace=False)
    pytest.skip(what)


def chromium_path() -> str | None:
    """The chromium executable: `PYNVME_CHROMIUM`, else `chromium` on PATH."""
    path = os.environ.get("PYNVME_CHROMIUM") or shutil.which("chromium")
    return path if path and os.access(path, os.X_OK) else None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless chromium (the system's), launched once per session by Playwright."""
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        _missing("Playwright is not installed (tools/browser/run installs it)")
    path = chromium_path()
    if path is None:
        _missing("no chromium executable (apt-get install chromium, or set PYNVME_CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page of 1400x1000 CSS pixels; a script error or console error on it fails the
    test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    p.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    yield p
    context.close()
    assert not errors, errors
