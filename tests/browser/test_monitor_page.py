"""The live monitor's page in headless chromium, with ioworkers running on the simulated SSD.

`PYNVME_MONITOR_SCREENSHOT=docs/monitor.png` saves the screenshot of the page (the README's
picture) there; otherwise it goes to the test's temporary folder.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path
from typing import Any

import pytest

import nvme
from nvme import monitor

pytestmark = pytest.mark.skipif(
    not nvme.native_available(),
    reason=f"native module nvme._native cannot be imported: {nvme._native_error}",
)


@pytest.fixture
def served(nvme0: nvme.Controller, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A process-wide monitor of `nvme0` on a free port, stopped after the test (one that
    `pytest --monitor` runs is left alone)."""
    monkeypatch.setattr(monitor, "_active", None)
    m = monitor.serve(nvme0, port=0)
    yield m
    monitor.stop()


def meter(page: Any, name: str) -> float:
    """The value a meter shows, as the page keeps it in `data-value`."""
    value = page.get_attribute(f"#{name}", "data-value")
    assert value, f"meter {name} has no value yet"
    return float(value)


def wait_for_samples(page: Any, count: int) -> None:
    """Wait until the page rendered `count` more samples."""
    seq = int(page.get_attribute("body", "data-seq") or 0)
    page.wait_for_function(
        f"Number(document.body.dataset.seq || 0) >= {seq + count}",
        timeout=(count + 10) * 1000,  # samples come once per second
    )


def test_page_shows_the_worker_queue_and_live_iops(
    served: monitor.Monitor, page: Any, nvme0: nvme.Controller, nvme0n1: nvme.Namespace
) -> None:
    ident = nvme0.id_ctrl()
    with nvme0n1.ioworker(io_size=8, time=60, qdepth=16, read_percentage=70) as w:
        qid = w.qid
        page.goto(served.url)
        page.wait_for_selector(f'.qpair[data-qid="{qid}"] tr.cmd', timeout=15_000)
        card = page.locator(f'.qpair[data-qid="{qid}"]')
        assert card.locator(".qname").inner_text() == f"qpair {qid}"
        assert card.locator(".tag").inner_text() == "ioworker"
        assert card.locator(".depth").inner_text() == "17"
        commands = card.locator("tr.cmd td:nth-child(3)").all_inner_texts()
        assert commands and set(commands) <= {"Read", "Write"}

        header = page.inner_text("header")
        assert ident.mn.strip() in header and ident.sn.strip() in header
        assert ident.fr.strip() in header
        assert page.locator(f'tr.worker[data-worker-qid="{qid}"]').count() == 1
        assert page.locator(".qpair[data-qid='0'] tr.cmd").count() > 0  # the admin queue

        page.wait_for_function(
            "document.getElementById('iops-total').dataset.value > 0", timeout=15_000
        )
        first = meter(page, "iops-total")
        time.sleep(1.0)
        wait_for_samples(page, 1)
        second = meter(page, "iops-total")
        assert first > 0 and second > 0
        assert second != first, "the IOPS meter did not change in a second"
        assert meter(page, "bw-total") > 0
        assert page.locator("#chart-iops polyline").count() == 1
        w.stop()
    # Closed, the worker leaves the page.
    wait_for_samples(page, 2)
    assert page.locator(f'tr.worker[data-worker-qid="{qid}"]').count() == 0
    assert page.locator(f'.qpair[data-qid="{qid}"]').count() == 0


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG file's header (and that it is a PNG)."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_screenshot_with_running_workers(
    served: monitor.Monitor,
    page: Any,
    nvme0: nvme.Controller,
    nvme0n1: nvme.Namespace,
    tmp_path: Path,
) -> None:
    target = Path(os.environ.get("PYNVME_MONITOR_SCREENSHOT") or tmp_path / "monitor.png")
    q = nvme.Qpair(nvme0, 64)
    buf = nvme.Buffer(4096)
    nvme0n1.write(q, buf, 0, 8).waitdone()
    reader = nvme0n1.ioworker(io_size=8, time=60, qdepth=32, read_percentage=100).start()
    mixed = nvme0n1.ioworker(
        io_size={8: 3, 64: 1}, time=60, qdepth=8, read_percentage=30, iops=20_000
    ).start()
    try:
        page.goto(served.url)
        # A few seconds of history in the charts; more for the README's picture.
        wait_for_samples(page, 20 if os.environ.get("PYNVME_MONITOR_SCREENSHOT") else 5)
        assert page.locator("tr.worker").count() == 2
        assert page.locator("#chart-latency polyline").count() == 2
        page.screenshot(path=str(target), full_page=True)
    finally:
        reader.stop()
        mixed.stop()
        reader.close()
        mixed.close()
        q.delete()
    width, height = png_size(target)
    assert width == 1400 and height >= 1000
