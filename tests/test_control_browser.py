"""Trade-offs in a real browser with a random control: the grey crosses and their legend entry
are drawn (plotly's SVG), no exception box; the screenshot lands in
artifacts/tradeoffs-control.png for a human to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_runs import fake_control, fake_run
from test_browser import (
    ARTIFACTS,
    CHROMIUM,
    _goto,
    _no_exception,
    app_server,
    browser_page,
)

from core.store.runs import Store
from ui.figures import CONTROL_NAME

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"chromium not found at {CHROMIUM}")


def test_tradeoffs_shows_the_control_crosses_in_the_browser(tmp_path: Path) -> None:
    """A recorded run and control (tests/fake_runs.py): this test is about the drawing, and
    tests/test_control.py trains real controls."""
    store_path = tmp_path / "browser.db"
    store = Store(store_path)
    run_id = fake_run(store, nodes=5, steps=5, k=3, noise_seeds=2)
    fake_control(store, run_id, 4)
    ARTIFACTS.mkdir(exist_ok=True)
    with (
        app_server(store_path, tmp_path / "server.log", AUTOSHRINK_SAMPLES="off") as base,
        browser_page(1400, 1100) as page,
    ):
        page.goto(base)
        page.locator("[data-testid='stSidebarNav']").wait_for(timeout=60_000)
        _goto(page, base, "Trade-offs")
        page.locator(".legendtext", has_text=CONTROL_NAME).first.wait_for(timeout=30_000)
        assert page.locator(".scatterlayer .point").count() > 0
        assert page.get_by_text("Run a random control").count() >= 1
        assert page.get_by_text("by more than the noise").count() >= 1
        _no_exception(page, "tradeoffs-control")
